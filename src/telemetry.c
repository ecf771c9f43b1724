/*
 * telemetry.c — the API of telemetry.h: span contexts and sampling, the
 * per-message CONSUMER span, log records, and the cumulative metric series
 * that the export thread snapshots every export interval.
 *
 * Threads: the data path calls tele_* on its own thread(s); the export thread
 * (exporter.c) calls collect() back. Shared state: the id generator (rng_mu)
 * and the series table (t->mu), each held for a few hundred nanoseconds.
 */
#include "telemetry.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "exporter.h"
#include "otlp.h"
#include "util.h"

#define SPAN_STR_MAX    1024    /* any one string of a queued span */
#define LOG_STR_MAX     2048    /* any one string of a queued log record */
#define LOG_ATTRS_MAX   32      /* as many as log_write passes */
#define KEY_ATTR_MAX    TELE_KEY_ATTR_MAX
#define LABEL_MAX       256     /* a metric attribute value */
#define MAX_KEYS        5       /* attributes per metric series */
#define MAX_BOUNDS      16
#define MAX_SERIES      1024    /* all metrics together, overflow series included */
#define HASH_SLOTS      2048    /* power of two, > MAX_SERIES */

/* ---- ids: xoshiro256** seeded from getrandom(2), shared by all tele
 * objects (and usable with tele == NULL, so log lines carry ids even with
 * export disabled). */

static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_s[4];
static int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next_locked(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

/* Fill p with random bytes, never all zero (an invalid W3C id). */
static void random_id(uint8_t *p, size_t n)
{
	pthread_mutex_lock(&rng_mu);
	if (!rng_seeded) {
		if (getrandom(rng_s, sizeof(rng_s), 0) != (ssize_t)sizeof(rng_s)) {
			/* no entropy source: fall back to clocks and pid, ids stay unique enough */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			rng_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
			rng_s[1] = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rng_s[2] = (uint64_t)ts.tv_nsec;
			rng_s[3] = 0x2545F4914F6CDD1Dull;
		}
		if (!(rng_s[0] | rng_s[1] | rng_s[2] | rng_s[3]))
			rng_s[0] = 1;
		rng_seeded = 1;
	}
	for (;;) {
		uint64_t any = 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rng_next_locked();
			size_t k = n - i < 8 ? n - i : 8;
			memcpy(p + i, &r, k);
			any |= r;
		}
		if (any)
			break;
	}
	pthread_mutex_unlock(&rng_mu);
}

static void to_hex(char *out, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Lowercase hex only, as W3C trace-context requires. */
static int from_hex(uint8_t *out, const char *s, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		int v;
		if (s[i] >= '0' && s[i] <= '9')
			v = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = s[i] - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int tele_parse_traceparent(const char *s, size_t len, uint8_t trace_id[16], uint8_t span_id[8],
                           uint8_t *flags)
{
	uint8_t ver[1], fl[1];

	if (!s)
		return -1;
	while (len && s[len - 1] == '\0')       /* tolerate a C producer's NUL */
		len--;
	if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (from_hex(ver, s, 1) || ver[0] == 0xff)
		return -1;
	/* version 00 is exactly 55 bytes; later versions may append "-..." */
	if (ver[0] == 0 ? len != 55 : (len > 55 && s[55] != '-'))
		return -1;
	if (from_hex(trace_id, s + 3, 16) || from_hex(span_id, s + 36, 8) || from_hex(fl, s + 53, 1))
		return -1;
	if (all_zero(trace_id, 16) || all_zero(span_id, 8))
		return -1;
	*flags = fl[0];
	return 0;
}

void tele_format_traceparent(const struct tele_ctx *ctx, char out[56])
{
	snprintf(out, 56, "00-%s-%s-%02x", ctx->trace_hex, ctx->span_hex, ctx->sampled ? 1 : 0);
}


/* ---- metrics: definitions */

enum {
	M_PROCESSED, M_DURATION, M_ERRORS, M_DBWRITES, M_LAG, M_BATCH, M_FRESHNESS,
	M_RELOAD_GEN, M_RELOAD_FAIL, M_DROPPED, M_SC_CONSUMED, M_SC_DURATION, M_REDUCED, M_STALLS, M_REWINDS,
	M_COUNT
};

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

static const char *const no_labels[1] = { NULL };    /* for metrics without attributes */

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

static void m_add(struct tele *t, int metric, const char *const *vals, int64_t v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		s->ival += v;
}

static void m_set(struct tele *t, int metric, const char *const *vals, int64_t v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		s->ival = v;
}

static void m_observe(struct tele *t, int metric, const char *const *vals, double v)
{
	struct series *s = series_get(t, metric, vals);
	if (s)
		hist_add(s, &mdefs[metric], v);
}

/* Export thread: snapshot all series (under t->mu, values copied; the label
 * strings are never freed before tele_free, so they are borrowed) and encode. */
static int collect(void *arg, const struct exporter_stats *st, uint8_t **buf, size_t *len,
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
		m_set(t, M_DROPPED, v1, (int64_t)st->queue_full[s]);
		m_set(t, M_DROPPED, v2, (int64_t)st->failed[s]);
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

/* ---- spans */

/* See telemetry.h. */
void tele_key_attr(char *out, const char *key, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 > KEY_ATTR_MAX)
				break;
			out[o++] = (char)c;
		} else if (c == '\\') {
			if (o + 2 > KEY_ATTR_MAX)
				break;
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			if (o + 4 > KEY_ATTR_MAX)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hx[c >> 4];
			out[o++] = hx[c & 15];
		}
	}
	out[o] = '\0';
}

static int str_eq(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

/* failed/dlq/skipped with an error kind: ERROR status, errors counter. */
static int is_error(const struct tele_msg *m)
{
	return m->error_kind && (!m->outcome || str_eq(m->outcome, "failed") || str_eq(m->outcome, "dlq")
	                         || str_eq(m->outcome, "skipped"));
}

#define A_STR(k, v) (struct otlp_attr){ .key = (k), .type = OTLP_STR, .s = (v) }
#define A_INT(k, v) (struct otlp_attr){ .key = (k), .type = OTLP_INT, .i = (v) }
#define A_BOOL(k, v) (struct otlp_attr){ .key = (k), .type = OTLP_BOOL, .i = (v) }

static void emit_span(struct tele *t, const struct tele_ctx *ctx, const struct tele_msg *m)
{
	struct otlp_attr a[32], ea[3];
	struct otlp_event ev;
	struct otlp_span s;
	char name[300], part[16], key[KEY_ATTR_MAX + 1];
	size_t n = 0, ne = 0;
	const char *topic = m->topic ? m->topic : "";

	memset(&s, 0, sizeof(s));
	snprintf(name, sizeof(name), "process %s", topic);
	snprintf(part, sizeof(part), "%d", (int)m->partition);

	/* the attributes of the Kafka spec, then their current semconv names */
	a[n++] = A_STR("messaging.system", "kafka");
	a[n++] = A_STR("messaging.destination.name", topic);
	if (m->group) {
		a[n++] = A_STR("messaging.kafka.consumer.group", m->group);
		a[n++] = A_STR("messaging.consumer.group.name", m->group);
	}
	a[n++] = A_INT("messaging.kafka.partition", m->partition);
	a[n++] = A_STR("messaging.destination.partition.id", part);
	a[n++] = A_INT("messaging.kafka.message.offset", m->offset);
	a[n++] = A_INT("messaging.kafka.offset", m->offset);
	a[n++] = A_STR("messaging.operation", "process");
	a[n++] = A_STR("messaging.operation.type", "process");
	a[n++] = A_STR("messaging.operation.name", "process");
	if (m->key) {
		tele_key_attr(key, m->key, m->key_len);
		a[n++] = A_STR("messaging.kafka.message.key", key);
	}
	if (m->tombstone)
		a[n++] = A_BOOL("messaging.kafka.message.tombstone", 1);
	a[n++] = A_STR("db.system.name", "postgresql");
	a[n++] = A_STR("db.system", "postgresql");
	if (m->db_op) {
		a[n++] = A_STR("db.operation", m->db_op);
		a[n++] = A_STR("db.operation.name", m->db_op);
	}
	if (m->db_collection)
		a[n++] = A_STR("db.collection.name", m->db_collection);
	if (m->route)
		a[n++] = A_STR("cdcrouter.route", m->route);
	if (m->outcome)
		a[n++] = A_STR("cdcrouter.outcome", m->outcome);
	if (m->source_ts_ms >= 0)
		a[n++] = A_INT("cdcrouter.source_ts_ms", m->source_ts_ms);

	if (is_error(m)) {
		a[n++] = A_STR("error.type", m->error_kind);
		if (m->sqlstate)
			a[n++] = A_STR("db.response.status_code", m->sqlstate);
		ea[ne++] = A_STR("exception.type", m->error_kind);
		ea[ne++] = A_STR("exception.message", m->error_msg ? m->error_msg : m->error_kind);
		if (m->sqlstate)
			ea[ne++] = A_STR("db.response.status_code", m->sqlstate);
		ev = (struct otlp_event){ .name = "exception", .time_ns = m->end_ns, .attrs = ea, .n_attrs = ne };
		s.events = &ev;
		s.n_events = 1;
		s.status_code = OTLP_STATUS_ERROR;
		s.status_msg = m->error_msg ? m->error_msg : m->error_kind;
	}

	memcpy(s.trace_id, ctx->trace_id, 16);
	memcpy(s.span_id, ctx->span_id, 8);
	memcpy(s.parent_span_id, ctx->parent_span_id, 8);
	s.name = name;
	s.kind = OTLP_SPAN_KIND_CONSUMER;
	s.start_ns = m->start_ns;
	s.end_ns = m->end_ns >= m->start_ns ? m->end_ns : m->start_ns;
	/* a parent span id only ever comes from a traceparent header: remote */
	s.flags = (ctx->sampled ? 1u : 0u) | OTLP_SPAN_FLAGS_HAS_IS_REMOTE
	          | (all_zero(ctx->parent_span_id, 8) ? 0u : OTLP_SPAN_FLAGS_IS_REMOTE);
	s.attrs = a;
	s.n_attrs = n;

	struct otlp_span *copy = otlp_span_dup(&s, SPAN_STR_MAX);
	if (!copy)
		atomic_fetch_add(&t->local_dropped, 1);
	else
		exporter_push_span(t->exp, copy);
}

/* ---- API */

void tele_ctx_start(struct tele *t, const char *traceparent, size_t len, struct tele_ctx *out)
{
	uint8_t flags = 0;

	memset(out, 0, sizeof(*out));
	if (traceparent && tele_parse_traceparent(traceparent, len, out->trace_id, out->parent_span_id,
	                                          &flags) == 0) {
		out->sampled = flags & 1;               /* parent-based */
	} else {
		memset(out->parent_span_id, 0, sizeof(out->parent_span_id));
		random_id(out->trace_id, sizeof(out->trace_id));
		/* TraceIdRatioBased: the low 56 bits of the random trace id against the ratio */
		uint64_t low = 0;
		for (int i = 9; i < 16; i++)
			low = low << 8 | out->trace_id[i];
		out->sampled = t && (double)low < t->ratio * 72057594037927936.0;  /* 2^56 */
	}
	random_id(out->span_id, sizeof(out->span_id));
	to_hex(out->trace_hex, out->trace_id, 16);
	to_hex(out->span_hex, out->span_id, 8);
}

void tele_declare_error_kind(struct tele *t, const char *kind)
{
	const char *v[] = { kind };

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	m_add(t, M_ERRORS, v, 0);
	pthread_mutex_unlock(&t->mu);
}

void tele_msg_done(struct tele *t, const struct tele_ctx *ctx, const struct tele_msg *m)
{
	if (!t || !m)
		return;
	if (ctx && ctx->sampled)
		emit_span(t, ctx, m);

	double dur = m->end_ns > m->start_ns ? (double)(m->end_ns - m->start_ns) / 1e9 : 0.0;
	int err = is_error(m);
	const char *v_proc[] = { m->topic, m->route, m->outcome };
	const char *v_dur[] = { m->topic, m->route };
	const char *v_sc[] = { "kafka", "process", m->topic, m->group, err ? m->error_kind : NULL };

	pthread_mutex_lock(&t->mu);
	m_add(t, M_PROCESSED, v_proc, 1);
	m_observe(t, M_DURATION, v_dur, dur);
	m_add(t, M_SC_CONSUMED, v_sc, 1);
	m_observe(t, M_SC_DURATION, v_sc, dur);
	if (err) {
		const char *v[] = { m->error_kind };
		m_add(t, M_ERRORS, v, 1);
	}
	if (m->db_op && !str_eq(m->db_op, "ignore") && (!m->outcome || str_eq(m->outcome, "applied"))) {
		const char *v[] = { m->db_op };
		m_add(t, m->superseded ? M_REDUCED : M_DBWRITES, v, 1);
	}
	if (m->source_ts_ms >= 0) {
		const char *v[] = { m->topic };
		double fresh = (double)m->end_ns / 1e9 - (double)m->source_ts_ms / 1e3;
		m_observe(t, M_FRESHNESS, v, fresh > 0 ? fresh : 0);
	}
	pthread_mutex_unlock(&t->mu);
}

void tele_batch_done(struct tele *t, size_t n_messages, uint64_t start_ns, uint64_t end_ns)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	m_observe(t, M_BATCH, no_labels, (double)n_messages);
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
	m_set(t, M_LAG, v, lag);
	pthread_mutex_unlock(&t->mu);
}

void tele_stall(struct tele *t, const char *reason)
{
	const char *v[] = { reason };

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	m_add(t, M_STALLS, v, 1);
	pthread_mutex_unlock(&t->mu);
}

void tele_rewind(struct tele *t, const char *topic)
{
	const char *v[] = { topic };

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	m_add(t, M_REWINDS, v, 1);
	pthread_mutex_unlock(&t->mu);
}

void tele_set_reload(struct tele *t, int64_t generation, int ok)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	m_set(t, M_RELOAD_GEN, no_labels, generation);
	m_add(t, M_RELOAD_FAIL, no_labels, ok ? 0 : 1);
	pthread_mutex_unlock(&t->mu);
}

static const char *severity_text(int sev)
{
	static const char *const names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL" };
	if (sev < 1 || sev > 24)
		return "";
	return names[(sev - 1) / 4];
}

void tele_log(struct tele *t, int severity, const char *message,
              const struct tele_kv *attrs, size_t n_attrs, const struct tele_ctx *ctx)
{
	struct otlp_attr a[LOG_ATTRS_MAX];
	struct otlp_log l;

	if (!t)
		return;
	memset(&l, 0, sizeof(l));
	l.time_ns = l.observed_ns = real_ns();
	l.severity = severity;
	l.severity_text = severity_text(severity);
	l.body = message ? message : "";
	if (n_attrs > LOG_ATTRS_MAX)
		n_attrs = LOG_ATTRS_MAX;
	for (size_t i = 0; i < n_attrs; i++)
		a[i] = A_STR(attrs[i].key, attrs[i].value);
	l.attrs = a;
	l.n_attrs = n_attrs;
	if (ctx && !all_zero(ctx->trace_id, 16)) {
		memcpy(l.trace_id, ctx->trace_id, 16);
		memcpy(l.span_id, ctx->span_id, 8);
		l.flags = ctx->sampled ? 1 : 0;
	}
	struct otlp_log *copy = otlp_log_dup(&l, LOG_STR_MAX);
	if (!copy)
		atomic_fetch_add(&t->local_dropped, 1);
	else
		exporter_push_log(t->exp, copy);
}

uint64_t tele_dropped(const struct tele *t)
{
	if (!t)
		return 0;
	return exporter_dropped(t->exp) + atomic_load(&t->local_dropped);
}

/* ---- life cycle */

static int res_set(struct tele *t, const char *key, const char *value)
{
	char *v = strdup(value ? value : "");
	if (!v)
		return -1;
	for (size_t i = 0; i < t->n_res; i++)
		if (strcmp(t->res_attrs[i].key, key) == 0) {     /* configured extras override */
			free((char *)t->res_attrs[i].s);
			t->res_attrs[i].s = v;
			return 0;
		}
	char *k = strdup(key);
	if (!k) {
		free(v);
		return -1;
	}
	t->res_attrs[t->n_res++] = A_STR(k, v);
	return 0;
}

static void uuid4(char out[37])
{
	uint8_t u[16];
	char hx[33];
	random_id(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	to_hex(hx, u, 16);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12, hx + 16, hx + 20);
}

struct tele *tele_new(const struct tele_config *cfg, char *err, size_t errlen)
{
	struct tele *t;
	struct exporter_header *hdrs;
	char host[256] = "", uuid[37];

	if (errlen)
		err[0] = '\0';
	if (!cfg->endpoint || !*cfg->endpoint)
		return NULL;            /* disabled: NULL with an empty err */
	t = calloc(1, sizeof(*t));
	if (!t)
		goto nomem;
	pthread_mutex_init(&t->mu, NULL);
	memset(t->slots, 0xff, sizeof(t->slots));
	for (int m = 0; m < M_COUNT; m++)
		t->overflow_idx[m] = -1;
	t->ratio = cfg->sample_ratio >= 0 ? (cfg->sample_ratio <= 1 ? cfg->sample_ratio : 1) : 0;
	t->series = calloc(MAX_SERIES, sizeof(*t->series));
	t->res_attrs = calloc(4 + cfg->n_resource, sizeof(*t->res_attrs));
	if (!t->series || !t->res_attrs)
		goto nomem;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (!cfg->instance_id || !*cfg->instance_id)
		uuid4(uuid);
	if (res_set(t, "service.name", cfg->service_name ? cfg->service_name : "cdcrouter")
	    || res_set(t, "service.version", cfg->service_version ? cfg->service_version : "")
	    || res_set(t, "service.instance.id",
	               cfg->instance_id && *cfg->instance_id ? cfg->instance_id : uuid)
	    || res_set(t, "host.name", host))
		goto nomem;
	for (size_t i = 0; i < cfg->n_resource; i++) {
		if (!cfg->resource[i].key || !*cfg->resource[i].key) {
			snprintf(err, errlen, "telemetry resource attribute with an empty key");
			goto fail;
		}
		if (res_set(t, cfg->resource[i].key, cfg->resource[i].value))
			goto nomem;
	}
	t->res.attrs = t->res_attrs;
	t->res.n_attrs = t->n_res;
	t->res.scope_name = "cdcrouter";
	t->res.scope_version = cfg->service_version ? cfg->service_version : "";

	hdrs = xcalloc(cfg->n_headers + 1, sizeof(*hdrs));
	for (size_t i = 0; i < cfg->n_headers; i++)
		hdrs[i] = (struct exporter_header){ cfg->headers[i].key, cfg->headers[i].value };
	struct exporter_config ec = {
		.endpoint = cfg->endpoint, .headers = hdrs, .n_headers = cfg->n_headers,
		.resource = &t->res, .interval_ms = cfg->export_interval_ms, .queue_max = cfg->queue_max,
		.max_batch = cfg->max_batch, .timeout_ms = cfg->timeout_ms, .gzip = cfg->gzip,
		.collect_metrics = collect, .collect_arg = t,
	};
	t->exp = exporter_new(&ec, err, errlen);
	free(hdrs);             /* the exporter keeps its own copy */
	if (!t->exp)
		goto fail;
	return t;

nomem:
	snprintf(err, errlen, "out of memory");
fail:
	tele_free(&t, 0);
	return NULL;
}

void tele_free(struct tele **tp, int timeout_ms)
{
	struct tele *t = *tp;

	if (!t)
		return;
	*tp = NULL;
	exporter_free(&t->exp, timeout_ms);     /* its final flush still reads t */
	for (int i = 0; i < t->n_series; i++)
		for (size_t k = 0; k < MAX_KEYS; k++)
			free(t->series[i].vals[k]);
	free(t->series);
	for (size_t i = 0; i < t->n_res; i++) {
		free((char *)t->res_attrs[i].key);
		free((char *)t->res_attrs[i].s);
	}
	free(t->res_attrs);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
