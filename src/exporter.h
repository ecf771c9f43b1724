/*
 * exporter.h — the OTLP/HTTP export thread: bounded queues of spans and log
 * records, batching by size and time, periodic metric collection, and one
 * keep-alive libcurl handle per signal POSTing application/x-protobuf to
 * <endpoint>/v1/traces, /v1/metrics and /v1/logs.
 *
 * The push functions never block on I/O: when a queue is full the record is
 * dropped and counted. Failed requests are retried only on 429/502/503/504
 * and transport errors (backoff with jitter, Retry-After honoured); other
 * statuses are logged and the batch is dropped and counted.
 *
 * The export thread logs its own problems as JSON lines written straight to
 * stderr (never through the engine's log module, which feeds tele_log and
 * would loop back into this queue), at most one line per signal and kind
 * every few seconds.
 */
#ifndef CDCR_EXPORTER_H
#define CDCR_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "otlp.h"

enum exporter_signal { EXPORTER_TRACES, EXPORTER_METRICS, EXPORTER_LOGS, EXPORTER_NSIGNALS };

/* Cumulative counts per signal; items are spans, log records or metric
 * data points. */
struct exporter_stats {
	uint64_t queue_full[EXPORTER_NSIGNALS];   /* refused by a full queue */
	uint64_t failed[EXPORTER_NSIGNALS];       /* in requests given up on (or not sent at shutdown) */
	uint64_t sent[EXPORTER_NSIGNALS];         /* accepted by the collector */
	uint64_t requests[EXPORTER_NSIGNALS];     /* HTTP requests made, retries included */
};

/* Called on the export thread every interval_ms and once more at the final
 * flush: encode the current metrics into a malloc'd ExportMetricsServiceRequest
 * (*buf, *len, *n_points; the exporter frees it). Return 0, or -1 for nothing
 * to send. st is a snapshot of the exporter's counters. */
typedef int (*exporter_collect_fn)(void *arg, const struct exporter_stats *st,
                                   uint8_t **buf, size_t *len, size_t *n_points);

struct exporter_header {             /* an extra HTTP header: "name: value" */
	const char *name;
	const char *value;
};

struct exporter_config {
	const char *endpoint;               /* base URL; trailing '/' ignored */
	const struct exporter_header *headers;  /* extra HTTP headers */
	size_t n_headers;
	const struct otlp_resource *resource;   /* borrowed: must outlive the exporter */
	int interval_ms;                    /* metrics period; max age of a queued span/log */
	int queue_max;                      /* per queue */
	int max_batch;                      /* records per request */
	int timeout_ms;                     /* per HTTP request */
	int gzip;
	exporter_collect_fn collect_metrics;    /* may be NULL */
	void *collect_arg;
};

/* Validates the config, creates the curl handles and starts the thread.
 * NULL with a message in err on failure. */
struct exporter *exporter_new(const struct exporter_config *cfg, char *err, size_t errlen);

/* Hand over a record made by otlp_span_dup()/otlp_log_dup(): the exporter
 * owns it from now on (it is freed at once if the queue is full). 0 if
 * queued, -1 if dropped. */
int exporter_push_span(struct exporter *e, struct otlp_span *s);
int exporter_push_log(struct exporter *e, struct otlp_log *l);

void exporter_stats(struct exporter *e, struct exporter_stats *out);
/* Total of queue_full and failed over all signals. */
uint64_t exporter_dropped(struct exporter *e);

/* Flush what is queued (and the metrics once more) for at most timeout_ms,
 * drop the rest, stop and join the thread, free everything; NULLs *ep. */
void exporter_free(struct exporter **ep, int timeout_ms);

#endif
