/* telemetry_int.h — what the files of the telemetry module share, behind
 * the one telemetry.h: telemetry_ids.c (trace context: ids, the random
 * generator, traceparent, sampling), telemetry_metrics.c (metric
 * definitions, the series table, collection for the exporter, the metric
 * API) and telemetry.c (spans, log records, the life cycle). Not for use
 * outside src/telemetry*.c. */
#ifndef CDCR_TELEMETRY_INT_H
#define CDCR_TELEMETRY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "exporter.h"
#include "otlp.h"
#include "telemetry.h"

#define SPAN_STR_MAX    1024    /* any one string of a queued span */
#define LOG_STR_MAX     2048    /* any one string of a queued log record */
#define LOG_ATTRS_MAX   32      /* as many as log_write passes */
#define KEY_ATTR_MAX    TELE_KEY_ATTR_MAX
#define LABEL_MAX       256     /* a metric attribute value */
#define MAX_KEYS        5       /* attributes per metric series */
#define MAX_BOUNDS      16
#define MAX_SERIES      1024    /* all metrics together, overflow series included */
#define HASH_SLOTS      2048    /* power of two, > MAX_SERIES */

enum {
	M_PROCESSED, M_DURATION, M_ERRORS, M_DBWRITES, M_LAG, M_BATCH, M_FRESHNESS,
	M_RELOAD_GEN, M_RELOAD_FAIL, M_DROPPED, M_SC_CONSUMED, M_SC_DURATION, M_REDUCED, M_STALLS, M_REWINDS,
	M_COUNT
};

struct series {
	int metric;
	int overflow;                   /* the otel.metric.overflow=true series of its metric */
	char *vals[MAX_KEYS];           /* "" = attribute not sent */
	uint64_t start_ns;
	int64_t ival;                   /* sum / gauge */
	uint64_t count;                 /* histogram */
	double sum, min, max;
	uint64_t buckets[MAX_BOUNDS + 1];
};

struct tele {
	struct exporter *exp;
	struct otlp_resource res;
	struct otlp_attr *res_attrs;    /* n_res of them; keys and string values owned */
	size_t n_res;
	double ratio;
	atomic_uint_fast64_t local_dropped;     /* records we could not even copy */

	pthread_mutex_t mu;             /* the series table */
	struct series *series;          /* MAX_SERIES, n_series used */
	int n_series;
	int16_t slots[HASH_SLOTS];      /* index into series, -1 = empty */
	int overflow_idx[M_COUNT];      /* -1 until created */
};

/* ---- telemetry_ids.c */
/* Fill p with random bytes, never all zero (an invalid W3C id). */
void tele_random_id(uint8_t *p, size_t n);
/* n bytes as 2n lower-case hex digits and a NUL. */
void tele_to_hex(char *out, const uint8_t *p, size_t n);
int tele_all_zero(const uint8_t *p, size_t n);

/* ---- telemetry_metrics.c (t->mu held) */
void tele_m_add(struct tele *t, int metric, const char *const *vals, int64_t v);
void tele_m_observe(struct tele *t, int metric, const char *const *vals, double v);
/* The exporter's collect callback: the series as an ExportMetricsServiceRequest. */
int tele_collect(void *arg, const struct exporter_stats *st, uint8_t **buf, size_t *len, size_t *n_points);

#endif
