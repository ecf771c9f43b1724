/*
 * telemetry.h — OpenTelemetry traces, metrics and logs for cdcrouter,
 * exported as OTLP protobuf over HTTP by a background thread.
 *
 * The data path calls these functions; none of them blocks on I/O, takes
 * more than a short mutex, or grows memory without bound. When the queues are
 * full the item is dropped and counted (metric cdcrouter.telemetry.dropped).
 * All functions are safe to call with tele == NULL (telemetry disabled) and
 * from the main thread while the exporter thread runs.
 *
 * Strings passed in are copied; the caller keeps ownership.
 */
#ifndef CDCR_TELEMETRY_H
#define CDCR_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

struct tele;

struct tele_kv {                    /* a string attribute, e.g. a header or resource attribute */
	const char *key;
	const char *value;
};

struct tele_config {
	const char *endpoint;           /* base URL, e.g. "http://127.0.0.1:4318"; NULL or "" = disabled */
	const struct tele_kv *headers;  /* extra HTTP headers, n_headers of them */
	size_t n_headers;
	const struct tele_kv *resource; /* extra resource attributes */
	size_t n_resource;
	const char *service_name;       /* "cdcrouter" */
	const char *service_version;    /* PACKAGE_VERSION */
	const char *instance_id;        /* service.instance.id; NULL = generate a random UUID */
	double sample_ratio;            /* 0..1, for root spans; parent-based otherwise */
	int export_interval_ms;         /* metrics export period, and max wait of span/log batches */
	int queue_max;                  /* max queued spans, and separately max queued log records */
	int max_batch;                  /* max spans/logs per request */
	int timeout_ms;                 /* HTTP request timeout */
	int gzip;                       /* compress request bodies */
};

/* Span context of one processed message. */
struct tele_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];      /* all zero for a root span */
	int sampled;
	char trace_hex[33];             /* lowercase hex of trace_id, for log lines */
	char span_hex[17];
};

/* What the engine knows about one message once it is done with it. */
struct tele_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *group;              /* consumer group id */
	const char *route;              /* route name, NULL if no route matched */
	const char *key;                /* raw Kafka key bytes, may be binary, NULL for no key */
	size_t key_len;
	int tombstone;                  /* the value was null */
	const char *db_op;              /* "upsert" | "delete" | "ignore" | NULL (never reached the DB) */
	int superseded;                 /* applied through a later event of its key: no row written for it */
	const char *db_collection;      /* target table as written in the route, e.g. "public.customer"; may be NULL */
	const char *outcome;            /* "applied" | "ignored" | "skipped" | "dlq" | "failed" | "duplicate" */
	const char *error_kind;         /* NULL, or "invalid_json", "no_route", "extract", "required", "sql", ... */
	const char *error_msg;          /* NULL or a readable reason */
	const char *sqlstate;           /* NULL or the 5-char SQLSTATE */
	int64_t source_ts_ms;           /* Debezium __source_ts_ms, -1 if absent */
	uint64_t start_ns;              /* CLOCK_REALTIME when the message was taken from the consumer */
	uint64_t end_ns;                /* CLOCK_REALTIME when its transaction committed (or it was dropped) */
};

/* Starts the export thread. NULL with a message in err on failure; NULL with
 * err[0] == '\0' when cfg->endpoint is NULL or "" (telemetry disabled). */
struct tele *tele_new(const struct tele_config *cfg, char *err, size_t errlen);
/* Stops the exporter thread after a final flush bounded by timeout_ms; NULLs *tp. */
void tele_free(struct tele **tp, int timeout_ms);

/* Start the span context for a message: continue the trace of a W3C
 * traceparent header value (not NUL-terminated, len bytes; NULL = none),
 * or start a new trace sampled with the configured ratio. Never fails. */
void tele_ctx_start(struct tele *t, const char *traceparent, size_t len, struct tele_ctx *out);

/* The message is done: enqueue its CONSUMER span "process <topic>" (if
 * sampled) and update the message metrics (processed by topic/route/outcome,
 * latency histograms, messaging.client.consumed.messages,
 * messaging.process.duration, rows written (cdcrouter.db.writes) or events
 * reduced (cdcrouter.events.reduced) by operation, errors by kind,
 * freshness from source_ts_ms). */
void tele_msg_done(struct tele *t, const struct tele_ctx *ctx, const struct tele_msg *m);

/* Create the error counter's series for a kind at 0, so that rate() and
 * increase() in Prometheus see its first error. */
void tele_declare_error_kind(struct tele *t, const char *kind);

/* One batch was committed: its size goes to the batch size histogram
 * (start_ns and end_ns are not used yet: there is no batch span). */
void tele_batch_done(struct tele *t, size_t n_messages, uint64_t start_ns, uint64_t end_ns);

/* An attempt held back, offsets kept, by a cause that is not one message's
 * (reason: a SQLSTATE, "uniform", "dlq_delivery", "dlq_too_large", ...). */
void tele_stall(struct tele *t, const char *reason);
/* A partition re-read because its stored offset went backwards. */
void tele_rewind(struct tele *t, const char *topic);

/* Gauges. */
void tele_set_lag(struct tele *t, const char *topic, int32_t partition, int64_t lag);
void tele_set_reload(struct tele *t, int64_t generation, int ok);   /* ok=0 also counts a failed reload */

/* A log record (severity: 5 DEBUG, 9 INFO, 13 WARN, 17 ERROR) with its
 * message and string attributes (the same fields as the stderr JSON line),
 * correlated with ctx when not NULL. */
void tele_log(struct tele *t, int severity, const char *message,
              const struct tele_kv *attrs, size_t n_attrs, const struct tele_ctx *ctx);

/* A Kafka key (arbitrary bytes) as an attribute value: printable ASCII
 * kept, a backslash doubled, other bytes as \xNN; cut at
 * TELE_KEY_ATTR_MAX bytes (never inside an escape). out holds
 * TELE_KEY_ATTR_MAX + 1 bytes. Spans and log records use the same form. */
#define TELE_KEY_ATTR_MAX 64
void tele_key_attr(char *out, const char *key, size_t len);

/* Counters of what telemetry itself dropped, for tests and the log. */
uint64_t tele_dropped(const struct tele *t);

/* W3C traceparent helpers (also used by tele_ctx_start). Parse: version 00
 * exactly "00-<32 hex>-<16 hex>-<2 hex>" (later versions may append
 * "-..."), lowercase hex only, all-zero ids and version ff rejected; trailing
 * NUL bytes tolerated. 0 on success, -1 if invalid. Format: the header value
 * that continues ctx's trace with ctx's span as parent (55 chars + NUL). */
int tele_parse_traceparent(const char *s, size_t len, uint8_t trace_id[16], uint8_t span_id[8],
                           uint8_t *flags);
void tele_format_traceparent(const struct tele_ctx *ctx, char out[56]);

#endif
