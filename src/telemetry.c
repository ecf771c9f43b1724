/*
 * telemetry.c — the API of telemetry.h: the per-message CONSUMER span,
 * log records and the life cycle (trace context is in telemetry_ids.c, the
 * metric series in telemetry_metrics.c).
 *
 * Threads: the data path calls tele_* on its own thread(s); the export thread
 * (exporter.c) calls tele_collect() back. Shared state: the id generator (rng_mu)
 * and the series table (t->mu), each held for a few hundred nanoseconds.
 */
#include "util.h"
#include "telemetry_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	          | (tele_all_zero(ctx->parent_span_id, 8) ? 0u : OTLP_SPAN_FLAGS_IS_REMOTE);
	s.attrs = a;
	s.n_attrs = n;

	struct otlp_span *copy = otlp_span_dup(&s, SPAN_STR_MAX);
	if (!copy)
		atomic_fetch_add(&t->local_dropped, 1);
	else
		exporter_push_span(t->exp, copy);
}

/* ---- API */

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
	tele_m_add(t, M_PROCESSED, v_proc, 1);
	tele_m_observe(t, M_DURATION, v_dur, dur);
	tele_m_add(t, M_SC_CONSUMED, v_sc, 1);
	tele_m_observe(t, M_SC_DURATION, v_sc, dur);
	if (err) {
		const char *v[] = { m->error_kind };
		tele_m_add(t, M_ERRORS, v, 1);
	}
	if (m->db_op && !str_eq(m->db_op, "ignore") && (!m->outcome || str_eq(m->outcome, "applied"))) {
		const char *v[] = { m->db_op };
		tele_m_add(t, m->superseded ? M_REDUCED : M_DBWRITES, v, 1);
	}
	if (m->source_ts_ms >= 0) {
		const char *v[] = { m->topic };
		double fresh = (double)m->end_ns / 1e9 - (double)m->source_ts_ms / 1e3;
		tele_m_observe(t, M_FRESHNESS, v, fresh > 0 ? fresh : 0);
	}
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
	if (ctx && !tele_all_zero(ctx->trace_id, 16)) {
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
	tele_random_id(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	tele_to_hex(hx, u, 16);
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
		.collect_metrics = tele_collect, .collect_arg = t,
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
