/* telemetry_metrics.c — the metric definitions, the cumulative series
 * table (t->mu) that the export thread snapshots every export interval
 * (tele_collect), and the metric calls of telemetry.h. */
#include "util.h"
#include "telemetry_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metrics: definitions */


static const double b_latency[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25, 0.5, 1, 2.5, 5, 10 };
static const double b_semconv[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
                                    1, 2.5, 5, 7.5, 10 };
static const double b_batch[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000 };
static const double b_fresh[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600 };

#define NB(a) (sizeof(a) / sizeof((a)[0]))
#define SEMCONV_KEYS { "messaging.system", "messaging.operation.name", "messaging.destination.name", \
	               "messaging.consumer.group.name", "error.type" }, 5

struct mdef {
	const char *name, *desc, *unit;
	enum otlp_metric_type type;
	int monotonic;
	const double *bounds;
	size_t n_bounds;
	const char *keys[MAX_KEYS];
	size_t n_keys;
};

/* Units are UCUM; the Prometheus exporter turns "s" into _seconds and drops
 * curly-brace annotations ({message}), so names stay as documented. */
static const struct mdef mdefs[M_COUNT] = {
	[M_PROCESSED] = { "cdcrouter.messages.processed", "Messages processed, by outcome", "{message}",
	                  OTLP_SUM, 1, NULL, 0, { "topic", "route", "outcome" }, 3 },
	[M_DURATION] = { "cdcrouter.process.duration", "From taking a message to its commit", "s",
	                 OTLP_HISTOGRAM, 0, b_latency, NB(b_latency), { "topic", "route" }, 2 },
	[M_ERRORS] = { "cdcrouter.errors", "Failed messages, by error kind", "{error}",
	               OTLP_SUM, 1, NULL, 0, { "kind" }, 1 },
	[M_DBWRITES] = { "cdcrouter.db.writes", "Rows written to PostgreSQL, by operation", "{write}",
	                 OTLP_SUM, 1, NULL, 0, { "operation" }, 1 },
	[M_REDUCED] = { "cdcrouter.events.reduced",
	                "Events applied through a later event of their key in the same batch (not written themselves)",
	                "{event}", OTLP_SUM, 1, NULL, 0, { "operation" }, 1 },
	[M_STALLS] = { "cdcrouter.stalls",
	               "Attempts held back, offsets kept, by a cause that is not one message's (SQLSTATE, dlq_*)",
	               "{attempt}", OTLP_SUM, 1, NULL, 0, { "reason" }, 1 },
	[M_REWINDS] = { "cdcrouter.offsets.rewinds",
	                "Partitions re-read because the offset stored in the sink went backwards", "{rewind}",
	                OTLP_SUM, 1, NULL, 0, { "topic" }, 1 },
	[M_LAG] = { "cdcrouter.consumer.lag", "Messages behind the partition's high watermark", "{message}",
	            OTLP_GAUGE, 0, NULL, 0, { "topic", "partition" }, 2 },
	[M_BATCH] = { "cdcrouter.batch.size", "Messages per committed transaction", "{message}",
	              OTLP_HISTOGRAM, 0, b_batch, NB(b_batch), { NULL }, 0 },
	[M_FRESHNESS] = { "cdcrouter.freshness", "Commit time minus the source commit time", "s",
	                  OTLP_HISTOGRAM, 0, b_fresh, NB(b_fresh), { "topic" }, 1 },
	[M_RELOAD_GEN] = { "cdcrouter.reload.generation", "Generation of the live configuration", "{generation}",
	                   OTLP_GAUGE, 0, NULL, 0, { NULL }, 0 },
	[M_RELOAD_FAIL] = { "cdcrouter.reload.failures", "Configuration reloads refused", "{reload}",
	                    OTLP_SUM, 1, NULL, 0, { NULL }, 0 },
	[M_DROPPED] = { "cdcrouter.telemetry.dropped", "Telemetry items dropped", "{item}",
	                OTLP_SUM, 1, NULL, 0, { "signal", "reason" }, 2 },
	[M_SC_CONSUMED] = { "messaging.client.consumed.messages", "Messages delivered to the application",
	                    "{message}", OTLP_SUM, 1, NULL, 0, SEMCONV_KEYS },
	[M_SC_DURATION] = { "messaging.process.duration", "Duration of processing operation", "s",
	                    OTLP_HISTOGRAM, 0, b_semconv, NB(b_semconv), SEMCONV_KEYS },
};



/* ---- metrics: series table (callers hold t->mu) */

static uint64_t series_hash(int metric, const char *const *vals, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)metric;
	for (size_t i = 0; i < n; i++) {
		for (const unsigned char *p = (const unsigned char *)vals[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;      /* separator: ("a","bc") != ("ab","c") */
	}
	return h;
}

static int series_match(const struct series *s, int metric, const char *const *vals, size_t n)
{
	if (s->metric != metric || s->overflow)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(s->vals[i], vals[i], LABEL_MAX - 1) != 0)
			return 0;
	return 1;
}

static struct series *series_new(struct tele *t, int metric, const char *const *vals, size_t n,
                                 int overflow)
{
	struct series *s = &t->series[t->n_series];
	memset(s, 0, sizeof(*s));
	s->metric = metric;
	s->overflow = overflow;
	s->start_ns = real_ns();
	for (size_t i = 0; i < n; i++) {
		s->vals[i] = strdup(overflow ? "" : vals[i]);     /* already cut by series_get */
		if (!s->vals[i]) {
			while (i--)
				free(s->vals[i]);
			return NULL;
		}
	}
	t->n_series++;
	return s;
}

/* The series of metric with these attribute values (NULL means ""), created
 * on first use. Past the cap, new label sets all go to one overflow series
 * per metric (the OpenTelemetry cardinality-limit convention), so hostile
 * topic names cannot grow memory. NULL only on allocation failure. */
static struct series *series_get(struct tele *t, int metric, const char *const *in)
{
	const char *vals[MAX_KEYS];
	size_t n = mdefs[metric].n_keys;
	char cut[MAX_KEYS][LABEL_MAX];

	for (size_t i = 0; i < n; i++) {
		vals[i] = in[i] ? in[i] : "";
		if (strlen(vals[i]) >= LABEL_MAX) {     /* hash what is stored */
			memcpy(cut[i], vals[i], LABEL_MAX - 1);
			cut[i][LABEL_MAX - 1] = '\0';
			vals[i] = cut[i];
		}
	}
	uint64_t h = series_hash(metric, vals, n);
	size_t slot = h & (HASH_SLOTS - 1);
	for (; t->slots[slot] >= 0; slot = (slot + 1) & (HASH_SLOTS - 1)) {
		struct series *s = &t->series[t->slots[slot]];
		if (series_match(s, metric, vals, n))
			return s;
	}
	/* keep room for one overflow series per metric */
	if (t->n_series < MAX_SERIES - M_COUNT) {
		struct series *s = series_new(t, metric, vals, n, 0);
		if (s)
			t->slots[slot] = (int16_t)(s - t->series);
		return s;
	}
	if (t->overflow_idx[metric] < 0) {
		struct series *s = series_new(t, metric, vals, n, 1);
		if (!s)
			return NULL;
		t->overflow_idx[metric] = (int)(s - t->series);
	}
	return &t->series[t->overflow_idx[metric]];
}

static const char *const tele_no_labels[1] = { NULL };    /* for metrics without attributes */

static void hist_add(struct series *s, const struct mdef *d, double v)
{
	size_t i = 0;
	if (isnan(v))
		return;
	while (i < d->n_bounds && v > d->bounds[i])
		i++;
	s->buckets[i]++;
	if (s->count == 0 || v < s->min)
		s->min = v;
	if (s->count == 0 || v > s->max)
		s->max = v;
	s->count++;
	s->sum += v;
}

void tele_m_add(struct tele *t, int metric, const char *const *vals, int64_t v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		s->ival += v;
}

static void tele_m_set(struct tele *t, int metric, const char *const *vals, int64_t v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		s->ival = v;
}

void tele_m_observe(struct tele *t, int metric, const char *const *vals, double v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		hist_add(s, &mdefs[metric], v);
}

/* Export thread: snapshot all series (under t->mu, values copied; the label
 * strings are never freed before tele_free, so they are borrowed) and encode. */
int tele_collect(void *arg, const struct exporter_stats *st, uint8_t **buf, size_t *len,
                   size_t *n_points)
{
	static const char *const sigs[EXPORTER_NSIGNALS] = { "traces", "metrics", "logs" };
	struct tele *t = arg;
	struct otlp_metric ms[M_COUNT];
	struct otlp_point *pts = NULL;
	struct otlp_attr *attrs = NULL;
	uint64_t *bk = NULL;
	size_t nm = 0, np = 0, na = 0;
	uint64_t now = real_ns();
	int rc = -1;

	pthread_mutex_lock(&t->mu);
	for (int s = 0; s < EXPORTER_NSIGNALS; s++) {
		const char *v1[] = { sigs[s], "queue_full" }, *v2[] = { sigs[s], "export_failed" };
		tele_m_set(t, M_DROPPED, v1, (int64_t)st->queue_full[s]);
		tele_m_set(t, M_DROPPED, v2, (int64_t)st->failed[s]);
	}
	size_t n = (size_t)t->n_series;
	pts = calloc(n ? n : 1, sizeof(*pts));
	attrs = calloc(n * MAX_KEYS + 1, sizeof(*attrs));
	bk = calloc(n * (MAX_BOUNDS + 1) + 1, sizeof(*bk));
	if (!pts || !attrs || !bk) {
		pthread_mutex_unlock(&t->mu);
		goto out;
	}
	/* group the points by metric, in definition order */
	for (int m = 0; m < M_COUNT; m++) {
		const struct mdef *d = &mdefs[m];
		size_t first = np;
		for (size_t i = 0; i < n; i++) {
			const struct series *s = &t->series[i];
			struct otlp_point *p = &pts[np];
			if (s->metric != m)
				continue;
			p->attrs = &attrs[na];
			if (s->overflow) {
				attrs[na++] = (struct otlp_attr){ .key = "otel.metric.overflow", .type = OTLP_BOOL, .i = 1 };
			} else {
				for (size_t k = 0; k < d->n_keys; k++)
					if (s->vals[k][0])
						attrs[na++] = (struct otlp_attr){ .key = d->keys[k], .type = OTLP_STR, .s = s->vals[k] };
			}
			p->n_attrs = (size_t)(&attrs[na] - p->attrs);
			p->start_ns = d->type == OTLP_GAUGE ? 0 : s->start_ns;
			p->time_ns = now;
			p->as_int = s->ival;
			if (d->type == OTLP_HISTOGRAM) {
				p->count = s->count;
				p->sum = s->sum;
				p->min = s->min;
				p->max = s->max;
				memcpy(&bk[np * (MAX_BOUNDS + 1)], s->buckets, sizeof(s->buckets));
				p->bucket_counts = &bk[np * (MAX_BOUNDS + 1)];
			}
			np++;
		}
		if (np == first)
			continue;
		ms[nm] = (struct otlp_metric){ .name = d->name, .description = d->desc, .unit = d->unit,
		                               .type = d->type, .monotonic = d->monotonic,
		                               .bounds = d->bounds, .n_bounds = d->n_bounds,
		                               .points = &pts[first], .n_points = np - first };
		nm++;
	}
	pthread_mutex_unlock(&t->mu);
	if (nm && otlp_encode_metrics(&t->res, ms, nm, buf, len) == 0) {
		*n_points = np;
		rc = 0;
	}
out:
	free(pts);
	free(attrs);
	free(bk);
	return rc;
}

/* ---- metrics: the API */

/* Add v to the series of a counter with one attribute. */
static void count(struct tele *t, int metric, const char *value, int64_t v)
{
	const char *vals[] = { value };

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	tele_m_add(t, metric, vals, v);
	pthread_mutex_unlock(&t->mu);
}

void tele_declare_error_kind(struct tele *t, const char *kind) { count(t, M_ERRORS, kind, 0); }

void tele_batch_done(struct tele *t, size_t n_messages, uint64_t start_ns, uint64_t end_ns)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	tele_m_observe(t, M_BATCH, tele_no_labels, (double)n_messages);
	pthread_mutex_unlock(&t->mu);
}

void tele_set_lag(struct tele *t, const char *topic, int32_t partition, int64_t lag)
{
	char part[16];
	const char *v[] = { topic, part };

	if (!t)
		return;
	snprintf(part, sizeof(part), "%d", (int)partition);
	pthread_mutex_lock(&t->mu);
	tele_m_set(t, M_LAG, v, lag);
	pthread_mutex_unlock(&t->mu);
}

void tele_stall(struct tele *t, const char *reason) { count(t, M_STALLS, reason, 1); }
void tele_rewind(struct tele *t, const char *topic) { count(t, M_REWINDS, topic, 1); }

void tele_set_reload(struct tele *t, int64_t generation, int ok)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	tele_m_set(t, M_RELOAD_GEN, tele_no_labels, generation);
	tele_m_add(t, M_RELOAD_FAIL, tele_no_labels, ok ? 0 : 1);
	pthread_mutex_unlock(&t->mu);
}
