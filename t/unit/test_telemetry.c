/*
 * test_telemetry.c — telemetry and the exporter: traceparent and sampling,
 * bounded queues, and the export to a loopback HTTP server (paths, headers,
 * gzip, retry on 503 with Retry-After, no retry on 400, partial success,
 * the series cap, bounded shutdown). (OTLP encoding: test_otlp.c.)
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "otlp.h"
#include "otlp.pb-c.h"
#include "telemetry.h"
#include "tap.h"
#include "httpd.h"
#include "otlpdec.h"

/* ---- trace context */

static void test_traceparent(void)
{
	uint8_t tid[16], sid[8], fl = 0;
	const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct {
		const char *s;
		const char *why;
	} bad[] = {
		{ "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "uppercase rejected" },
		{ "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zero trace id rejected" },
		{ "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "zero span id rejected" },
		{ "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff rejected" },
		{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "version 00 with a suffix rejected" },
		{ "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "short trace id rejected" },
		{ "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", "bad separators rejected" },
		{ "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", "bad flags rejected" },
		{ "", "empty rejected" },
	};

	is_int(tele_parse_traceparent(good, strlen(good), tid, sid, &fl), 0, "valid traceparent");
	ok(tid[0] == 0x4b && tid[15] == 0x36 && sid[0] == 0x00 && sid[7] == 0xb7 && fl == 1, "ids and flags parsed");
	is_int(tele_parse_traceparent(good, strlen(good) + 1, tid, sid, &fl), 0, "trailing NUL tolerated");
	const char *v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future";
	ok(tele_parse_traceparent(v1, strlen(v1), tid, sid, &fl) == 0 && fl == 0, "future version with suffix");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(tele_parse_traceparent(bad[i].s, strlen(bad[i].s), tid, sid, &fl), -1, bad[i].why);

	/* continuing a trace, with telemetry disabled (tele == NULL) */
	struct tele_ctx c;
	char tp[56];
	tele_ctx_start(NULL, good, strlen(good), &c);
	is_str(c.trace_hex, "4bf92f3577b34da6a3ce929d0e0e4736", "continued trace id");
	ok(c.parent_span_id[0] == 0x00 && c.parent_span_id[7] == 0xb7, "parent span id from header");
	ok(strcmp(c.span_hex, "00f067aa0ba902b7") != 0 && strlen(c.span_hex) == 16, "new span id");
	is_int(c.sampled, 1, "sampled flag inherited");
	tele_format_traceparent(&c, tp);
	ok(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0 && strncmp(tp + 36, c.span_hex, 16) == 0
	   && strcmp(tp + 52, "-01") == 0 && strlen(tp) == 55, "format traceparent: %s", tp);
	tele_ctx_start(NULL, bad[1].s, strlen(bad[1].s), &c);
	uint8_t zero[8] = { 0 };
	ok(memcmp(c.parent_span_id, zero, 8) == 0 && strcmp(c.trace_hex, "00000000000000000000000000000000") != 0,
	   "invalid header: new root trace");
	struct tele_ctx c2;
	tele_ctx_start(NULL, NULL, 0, &c2);
	ok(memcmp(c.trace_id, c2.trace_id, 16) != 0, "random trace ids differ");
}

static int timeout_ms = 2000;

static struct tele *new_tele(const char *endpoint, double ratio, int queue_max, int max_batch,
                             int interval_ms, int gzip)
{
	static const struct tele_kv hdr[] = { { "X-Test", "yes" } };
	static const struct tele_kv extra[] = { { "deployment.environment.name", "test" } };
	struct tele_config cfg = {
		.endpoint = endpoint, .headers = hdr, .n_headers = 1, .resource = extra, .n_resource = 1,
		.service_name = "cdcrouter", .service_version = "9.9.9", .instance_id = "inst-1",
		.sample_ratio = ratio, .export_interval_ms = interval_ms, .queue_max = queue_max,
		.max_batch = max_batch, .timeout_ms = timeout_ms, .gzip = gzip,
	};
	char err[256];
	struct tele *t = tele_new(&cfg, err, sizeof(err));
	if (!t)
		diag("tele_new: %s", err);
	return t;
}

static void test_sampling(void)
{
	char ep[64];
	const char *unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
	const char *sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct tele_ctx c;
	int n0 = 0, n1 = 0;

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", closed_port());
	struct tele *t0 = new_tele(ep, 0.0, 16, 8, 60000, 0), *t1 = new_tele(ep, 1.0, 16, 8, 60000, 0);
	struct tele *th = new_tele(ep, 0.5, 16, 8, 60000, 0);
	ok(t0 && t1 && th, "tele_new with ratios 0, 1, 0.5");
	for (int i = 0; i < 1000; i++) {
		tele_ctx_start(t0, NULL, 0, &c);
		n0 += c.sampled;
		tele_ctx_start(t1, NULL, 0, &c);
		n1 += c.sampled;
	}
	is_int(n0, 0, "ratio 0: no root sampled");
	is_int(n1, 1000, "ratio 1: every root sampled");
	int nh = 0;
	for (int i = 0; i < 4000; i++) {
		tele_ctx_start(th, NULL, 0, &c);
		nh += c.sampled;
	}
	ok(nh > 1700 && nh < 2300, "ratio 0.5: %d of 4000 sampled", nh);
	tele_ctx_start(t0, sampled, strlen(sampled), &c);
	is_int(c.sampled, 1, "ratio 0, sampled parent: sampled");
	tele_ctx_start(t1, unsampled, strlen(unsampled), &c);
	is_int(c.sampled, 0, "ratio 1, unsampled parent: not sampled");
	tele_free(&t0, 0);
	tele_free(&t1, 0);
	tele_free(&th, 0);
	ok(t0 == NULL, "tele_free NULLs the pointer");

	struct tele_config off = { .endpoint = "" };
	char err[64] = "x";
	ok(tele_new(&off, err, sizeof(err)) == NULL && err[0] == '\0', "empty endpoint: disabled, no error");
	static const struct tele_kv badh[] = { { "X-Bad", "a\r\nInjected: 1" } };
	struct tele_config bad = { .endpoint = "http://127.0.0.1:1", .headers = badh, .n_headers = 1 };
	ok(tele_new(&bad, err, sizeof(err)) == NULL && err[0], "header with CRLF refused: %s", err);
}

static double now_s(void)
{
	return httpd_now();
}

/* Collector down: pushes never block, overflow is dropped and counted. */
static void test_queue_full(void)
{
	char ep[64];
	struct tele_ctx c;
	struct tele_msg m = { .topic = "t", .outcome = "applied", .source_ts_ms = -1, .start_ns = 1, .end_ns = 2 };

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", closed_port());
	struct tele *t = new_tele(ep, 1.0, 4, 2, 50, 0);
	double t0 = now_s();
	for (int i = 0; i < 2000; i++) {
		tele_ctx_start(t, NULL, 0, &c);
		tele_msg_done(t, &c, &m);
		tele_log(t, 9, "hello", NULL, 0, &c);
	}
	double dt = now_s() - t0;
	ok(dt < 1.0, "4000 records with the collector down took %.3fs (no blocking)", dt);
	uint64_t dropped = tele_dropped(t);
	ok(dropped >= 3900, "dropped and counted: %" PRIu64, dropped);
	t0 = now_s();
	tele_free(&t, 300);
	dt = now_s() - t0;
	ok(dt < 1.5, "shutdown with the collector down took %.3fs", dt);
}

/* ---- against the loopback server */

static void *req_body(const struct httpd_req *r, size_t *len)
{
	if (strcmp(r->cenc, "gzip") != 0) {
		*len = r->len;
		return r->body;
	}
	size_t cap = r->len * 20 + 4096;
	uint8_t *out = malloc(cap);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	inflateInit2(&zs, 15 + 16);
	zs.next_in = r->body;
	zs.avail_in = (uInt)r->len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	int rc = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	*len = zs.total_out;
	return out;
}

static const struct httpd_req *last_req(struct httpd *h, const char *path)
{
	const struct httpd_req *r = NULL;
	for (int i = 0; i < h->n_req; i++)
		if (strcmp(h->req[i].path, path) == 0)
			r = &h->req[i];
	return r;
}

static Otlp__Metric *find_metric(Otlp__ScopeMetrics *sm, const char *name)
{
	for (size_t i = 0; i < sm->n_metrics; i++)
		if (strcmp(sm->metrics[i]->name, name) == 0)
			return sm->metrics[i];
	return NULL;
}

static long long sum_value(Otlp__ScopeMetrics *sm, const char *name, const char *k, const char *v)
{
	Otlp__Metric *m = find_metric(sm, name);
	if (!m || (m->data_case != OTLP__METRIC__DATA_SUM && m->data_case != OTLP__METRIC__DATA_GAUGE))
		return -1;
	Otlp__NumberDataPoint **p = m->data_case == OTLP__METRIC__DATA_SUM ? m->sum->data_points : m->gauge->data_points;
	size_t n = m->data_case == OTLP__METRIC__DATA_SUM ? m->sum->n_data_points : m->gauge->n_data_points;
	long long total = 0;
	for (size_t i = 0; i < n; i++)
		if (!k || (attr_s(p[i]->attributes, p[i]->n_attributes, k)
		           && strcmp(attr_s(p[i]->attributes, p[i]->n_attributes, k), v) == 0))
			total += p[i]->as_int;
	return total;
}


static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static Otlp__Span *find_span(Otlp__ExportTraceServiceRequest **rq, int n, const uint8_t *trace_id)
{
	for (int i = 0; i < n; i++)
		for (size_t j = 0; rq[i] && j < rq[i]->resource_spans[0]->scope_spans[0]->n_spans; j++) {
			Otlp__Span *s = rq[i]->resource_spans[0]->scope_spans[0]->spans[j];
			if (bytes_eq(s->trace_id, trace_id, 16))
				return s;
		}
	return NULL;
}

static void check_message_span(const Otlp__Span *p, const struct tele_ctx *c)
{
	Otlp__KeyValue **a = p->attributes;
	size_t n = p->n_attributes;

	is_str(p->name, "process cdc.public.customer", "span name");
	is_int(p->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER, "span kind CONSUMER");
	ok(bytes_eq(p->span_id, c->span_id, 8), "span_id = ctx span id");
	ok(bytes_eq(p->parent_span_id, c->parent_span_id, 8), "parent = the traceparent's span");
	is_int(p->flags, 0x301, "flags: sampled, parent remote");
	ok(p->end_time_unix_nano - p->start_time_unix_nano == 2000000, "span duration 2 ms");
	is_str(attr_s(a, n, "messaging.system"), "kafka", "messaging.system");
	is_str(attr_s(a, n, "messaging.destination.name"), "cdc.public.customer", "messaging.destination.name");
	is_str(attr_s(a, n, "messaging.kafka.consumer.group"), "cdcrouter", "messaging.kafka.consumer.group");
	is_int(attr_i(a, n, "messaging.kafka.partition"), 3, "messaging.kafka.partition (int)");
	is_int(attr_i(a, n, "messaging.kafka.message.offset"), 42, "messaging.kafka.message.offset (int)");
	is_str(attr_s(a, n, "messaging.operation"), "process", "messaging.operation");
	is_str(attr_s(a, n, "db.operation"), "upsert", "db.operation");
	is_str(attr_s(a, n, "messaging.consumer.group.name"), "cdcrouter", "messaging.consumer.group.name");
	is_str(attr_s(a, n, "messaging.destination.partition.id"), "3", "messaging.destination.partition.id (string)");
	is_int(attr_i(a, n, "messaging.kafka.offset"), 42, "messaging.kafka.offset (int)");
	is_str(attr_s(a, n, "messaging.operation.type"), "process", "messaging.operation.type");
	is_str(attr_s(a, n, "messaging.operation.name"), "process", "messaging.operation.name");
	is_str(attr_s(a, n, "db.operation.name"), "upsert", "db.operation.name");
	is_str(attr_s(a, n, "db.system.name"), "postgresql", "db.system.name");
	is_str(attr_s(a, n, "db.collection.name"), "public.customer", "db.collection.name");
	is_str(attr_s(a, n, "cdcrouter.route"), "customer", "cdcrouter.route");
	is_str(attr_s(a, n, "cdcrouter.outcome"), "applied", "cdcrouter.outcome");
	is_str(attr_s(a, n, "messaging.kafka.message.key"), "{\"id\":7}", "messaging.kafka.message.key");
	ok(find_attr(a, n, "messaging.kafka.message.tombstone") == NULL, "no tombstone attribute");
	ok(p->status == NULL || p->status->code == OTLP__STATUS__STATUS_CODE__STATUS_CODE_UNSET, "status unset");
	is_int((long long)p->n_events, 0, "no events");
}

static void check_error_span(const Otlp__Span *p)
{
	Otlp__KeyValue **a = p->attributes;
	size_t n = p->n_attributes;
	const char *key = attr_s(a, n, "messaging.kafka.message.key");

	is_int((long long)p->parent_span_id.len, 0, "root span: no parent");
	is_int(p->flags, 0x101, "flags: sampled, parent not remote");
	ok(key && strncmp(key, "\\x00\\xffab\\\\kkk", 15) == 0, "binary key escaped: %s", key ? key : "");
	ok(key && strlen(key) <= 64 && strlen(key) >= 60, "key cut to 64 bytes (%zu)", key ? strlen(key) : 0);
	is_int(attr_b(a, n, "messaging.kafka.message.tombstone"), 1, "tombstone attribute");
	is_str(attr_s(a, n, "db.operation"), "delete", "db.operation delete");
	ok(find_attr(a, n, "messaging.kafka.consumer.group") == NULL, "no group: no group attributes");
	ok(find_attr(a, n, "cdcrouter.route") == NULL, "no route: no route attribute");
	ok(p->status && p->status->code == OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR, "status ERROR");
	is_str(p->status ? p->status->message : NULL, "duplicate key", "status message");
	ok(p->n_events == 1 && strcmp(p->events[0]->name, "exception") == 0, "exception event");
	if (p->n_events == 1) {
		Otlp__KeyValue **e = p->events[0]->attributes;
		size_t ne = p->events[0]->n_attributes;
		is_str(attr_s(e, ne, "exception.type"), "sql", "exception.type");
		is_str(attr_s(e, ne, "exception.message"), "duplicate key", "exception.message");
		is_str(attr_s(e, ne, "db.response.status_code"), "23505", "db.response.status_code");
	}
}

static void check_metrics(Otlp__ExportMetricsServiceRequest *r)
{
	Otlp__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
	static const double semconv[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10 };
	Otlp__Metric *m;

	is_str(sm->scope->name, "cdcrouter", "metrics scope");
	is_int(sum_value(sm, "cdcrouter.messages.processed", "outcome", "applied"), 1, "processed{outcome=applied}");
	is_int(sum_value(sm, "cdcrouter.messages.processed", "route", "customer"), 1, "processed{route=customer}");
	is_int(sum_value(sm, "cdcrouter.messages.processed", NULL, NULL), 2, "processed total");
	is_int(sum_value(sm, "cdcrouter.errors", "kind", "sql"), 1, "errors{kind=sql}");
	is_int(sum_value(sm, "cdcrouter.db.writes", "operation", "upsert"), 1, "db.writes{operation=upsert}");
	is_int(sum_value(sm, "cdcrouter.db.writes", "operation", "delete"), 0, "failed delete not counted as a write");
	is_int(sum_value(sm, "cdcrouter.consumer.lag", "partition", "3"), 17, "consumer.lag{partition=3}");
	is_int(sum_value(sm, "cdcrouter.reload.generation", NULL, NULL), 5, "reload.generation");
	is_int(sum_value(sm, "cdcrouter.reload.failures", NULL, NULL), 1, "reload.failures");
	ok(sum_value(sm, "cdcrouter.telemetry.dropped", "reason", "queue_full") == 0, "telemetry.dropped present, 0");
	is_int(sum_value(sm, "messaging.client.consumed.messages", "messaging.system", "kafka"), 2,
	       "messaging.client.consumed.messages");
	m = find_metric(sm, "messaging.client.consumed.messages");
	is_str(m ? m->unit : NULL, "{message}", "consumed messages unit");
	ok(m && m->sum->is_monotonic && m->sum->aggregation_temporality
	   == OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE, "consumed: monotonic cumulative");
	if (m && m->sum->n_data_points) {
		Otlp__NumberDataPoint *p = m->sum->data_points[0];
		ok(attr_s(p->attributes, p->n_attributes, "messaging.operation.name")
		   && attr_s(p->attributes, p->n_attributes, "messaging.destination.name")
		   && attr_s(p->attributes, p->n_attributes, "messaging.consumer.group.name"), "semconv attributes");
		ok(p->start_time_unix_nano > 0 && p->start_time_unix_nano <= p->time_unix_nano, "start time set");
	}
	m = find_metric(sm, "messaging.process.duration");
	ok(m && m->data_case == OTLP__METRIC__DATA_HISTOGRAM && strcmp(m->unit, "s") == 0, "process.duration: histogram in s");
	if (m && m->data_case == OTLP__METRIC__DATA_HISTOGRAM && m->histogram->n_data_points) {
		Otlp__HistogramDataPoint *h = m->histogram->data_points[0];
		ok(h->n_explicit_bounds == 14 && memcmp(h->explicit_bounds, semconv, sizeof(semconv)) == 0,
		   "semconv bucket bounds");
		is_int((long long)h->n_bucket_counts, 15, "15 buckets");
		ok(h->count == 1 && h->bucket_counts[0] == 1, "2 ms lands in the first bucket");
	}
	m = find_metric(sm, "cdcrouter.freshness");
	ok(m && m->histogram->n_data_points == 1 && m->histogram->data_points[0]->count == 1
	   && m->histogram->data_points[0]->sum > 1.4 && m->histogram->data_points[0]->sum < 5,
	   "freshness: one sample of ~1.5 s (source_ts_ms < 0 not observed)");
	m = find_metric(sm, "cdcrouter.batch.size");
	ok(m && m->histogram->data_points[0]->count == 1 && m->histogram->data_points[0]->sum == 2, "batch.size");
	m = find_metric(sm, "cdcrouter.process.duration");
	ok(m && strcmp(m->unit, "s") == 0 && m->histogram->data_points[0]->n_bucket_counts
	   == m->histogram->data_points[0]->n_explicit_bounds + 1, "cdcrouter.process.duration buckets");
}

static void test_http_export(int gzip)
{
	struct httpd h;
	char ep[64], key2[105];
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct tele_ctx c1, c2;
	uint64_t now = real_ns();

	diag("export to a loopback server, gzip=%d", gzip);
	memset(&h, 0, sizeof(h));
	if (httpd_start(&h) != 0) {
		ok(0, "loopback server");
		return;
	}
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", h.port);
	struct tele *t = new_tele(ep, 1.0, 64, 16, 200, gzip);
	tele_ctx_start(t, tp, strlen(tp), &c1);
	tele_ctx_start(t, NULL, 0, &c2);
	struct tele_msg m1 = { .topic = "cdc.public.customer", .partition = 3, .offset = 42, .group = "cdcrouter",
	                       .route = "customer", .key = "{\"id\":7}", .key_len = 8, .db_op = "upsert",
	                       .db_collection = "public.customer", .outcome = "applied",
	                       .source_ts_ms = (int64_t)(now / 1000000) - 1500, .start_ns = now - 2000000, .end_ns = now };
	memcpy(key2, "\x00\xff" "ab\\", 5);
	memset(key2 + 5, 'k', sizeof(key2) - 5);
	struct tele_msg m2 = { .topic = "cdc.public.customer", .partition = 3, .offset = 43, .key = key2,
	                       .key_len = sizeof(key2), .tombstone = 1, .db_op = "delete", .outcome = "failed",
	                       .error_kind = "sql", .error_msg = "duplicate key", .sqlstate = "23505",
	                       .source_ts_ms = -1, .start_ns = now - 1000, .end_ns = now };
	static const struct tele_kv la[] = { { "route", "customer" } };
	tele_msg_done(t, &c1, &m1);
	tele_msg_done(t, &c2, &m2);
	tele_log(t, 17, "apply failed", la, 1, &c1);
	tele_set_lag(t, "cdc.public.customer", 3, 17);
	tele_set_reload(t, 5, 0);
	tele_batch_done(t, 2, now - 1000, now);
	usleep(450000);         /* let a periodic metrics export happen too */
	tele_free(&t, 3000);
	httpd_stop(&h);

	int nt = httpd_count(&h, "/v1/traces"), nl = httpd_count(&h, "/v1/logs"), nm = httpd_count(&h, "/v1/metrics");
	ok(nt >= 1 && nl >= 1 && nm >= 2, "requests: traces %d, logs %d, metrics %d", nt, nl, nm);
	ok(h.n_conn <= 3 && h.n_conn < h.n_req, "keep-alive: %d requests over %d connections", h.n_req, h.n_conn);
	int hdr_ok = 1;
	for (int i = 0; i < h.n_req; i++)
		hdr_ok &= strcmp(h.req[i].ctype, "application/x-protobuf") == 0 && strcmp(h.req[i].xtest, "yes") == 0
		          && (strcmp(h.req[i].cenc, "gzip") == 0) == gzip;
	ok(hdr_ok, "every request: Content-Type, configured header, Content-Encoding=%s", gzip ? "gzip" : "none");

	/* traces */
	Otlp__ExportTraceServiceRequest *trq[8] = { 0 };
	int ntr = 0;
	for (int i = 0; i < h.n_req && ntr < 8; i++) {
		size_t len;
		void *b;
		if (strcmp(h.req[i].path, "/v1/traces") != 0 || !(b = req_body(&h.req[i], &len)))
			continue;
		trq[ntr++] = otlp__export_trace_service_request__unpack(NULL, len, b);
		if (b != h.req[i].body)
			free(b);
	}
	ok(ntr >= 1 && trq[0], "trace request decodes");
	if (ntr >= 1 && trq[0]) {
		Otlp__Resource *rs = trq[0]->resource_spans[0]->resource;
		is_str(attr_s(rs->attributes, rs->n_attributes, "service.name"), "cdcrouter", "resource service.name");
		is_str(attr_s(rs->attributes, rs->n_attributes, "service.version"), "9.9.9", "resource service.version");
		is_str(attr_s(rs->attributes, rs->n_attributes, "service.instance.id"), "inst-1", "resource service.instance.id");
		ok(attr_s(rs->attributes, rs->n_attributes, "host.name")
		   && *attr_s(rs->attributes, rs->n_attributes, "host.name"), "resource host.name");
		is_str(attr_s(rs->attributes, rs->n_attributes, "deployment.environment.name"), "test", "extra resource attribute");
		is_str(trq[0]->resource_spans[0]->scope_spans[0]->scope->name, "cdcrouter", "scope name");
		const Otlp__Span *s1 = find_span(trq, ntr, c1.trace_id), *s2 = find_span(trq, ntr, c2.trace_id);
		ok(s1 != NULL, "span continues the traceparent's trace");
		if (s1)
			check_message_span(s1, &c1);
		ok(s2 != NULL, "error span found");
		if (s2)
			check_error_span(s2);
	}
	for (int i = 0; i < ntr; i++)
		if (trq[i])
			otlp__export_trace_service_request__free_unpacked(trq[i], NULL);

	/* logs */
	const struct httpd_req *rl = last_req(&h, "/v1/logs");
	size_t len = 0;
	void *b = rl ? req_body(rl, &len) : NULL;
	Otlp__ExportLogsServiceRequest *lr = b ? otlp__export_logs_service_request__unpack(NULL, len, b) : NULL;
	ok(lr && lr->resource_logs[0]->scope_logs[0]->n_log_records == 1, "log request decodes");
	if (lr && lr->resource_logs[0]->scope_logs[0]->n_log_records == 1) {
		Otlp__LogRecord *l = lr->resource_logs[0]->scope_logs[0]->log_records[0];
		ok(bytes_eq(l->trace_id, c1.trace_id, 16) && bytes_eq(l->span_id, c1.span_id, 8), "log carries trace context");
		ok(l->severity_number == 17 && strcmp(l->severity_text, "ERROR") == 0, "log severity ERROR");
		is_str(l->body->string_value, "apply failed", "log body");
		is_str(attr_s(l->attributes, l->n_attributes, "route"), "customer", "log attribute");
		ok(l->time_unix_nano >= now, "log time");
	}
	if (lr)
		otlp__export_logs_service_request__free_unpacked(lr, NULL);
	if (b && b != rl->body)
		free(b);

	/* metrics: the final flush is the last request */
	const struct httpd_req *rm = last_req(&h, "/v1/metrics");
	b = rm ? req_body(rm, &len) : NULL;
	Otlp__ExportMetricsServiceRequest *mr = b ? otlp__export_metrics_service_request__unpack(NULL, len, b) : NULL;
	ok(mr != NULL, "metrics request decodes");
	if (mr)
		check_metrics(mr);
	if (mr)
		otlp__export_metrics_service_request__free_unpacked(mr, NULL);
	if (b && b != rm->body)
		free(b);
	httpd_free(&h);
}

/* Hostile topic names cannot grow the series table without bound. */
static void test_series_cap(void)
{
	struct httpd h;
	char ep[64], topic[32];

	memset(&h, 0, sizeof(h));
	httpd_start(&h);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h.port);
	struct tele *t = new_tele(ep, 1.0, 64, 16, 60000, 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(topic, sizeof(topic), "topic-%d", i);
		tele_set_lag(t, topic, 0, 1);
	}
	tele_free(&t, 2000);
	httpd_stop(&h);
	const struct httpd_req *r = last_req(&h, "/v1/metrics");
	Otlp__ExportMetricsServiceRequest *mr = r ? otlp__export_metrics_service_request__unpack(NULL, r->len, r->body) : NULL;
	Otlp__Metric *m = mr ? find_metric(mr->resource_metrics[0]->scope_metrics[0], "cdcrouter.consumer.lag") : NULL;
	size_t n = m ? m->gauge->n_data_points : 0;
	int overflow = 0;
	for (size_t i = 0; i < n; i++) {
		Otlp__NumberDataPoint *p = m->gauge->data_points[i];
		overflow += attr_b(p->attributes, p->n_attributes, "otel.metric.overflow") == 1;
	}
	ok(n > 900 && n <= 1024, "5000 label sets capped at %zu series", n);
	is_int(overflow, 1, "one otel.metric.overflow=true series");
	if (mr)
		otlp__export_metrics_service_request__free_unpacked(mr, NULL);
	httpd_free(&h);
}

/* Wait up to 5 s for n requests on path. */
static int wait_requests(struct httpd *h, const char *path, int n)
{
	for (int i = 0; i < 500 && httpd_count(h, path) < n; i++)
		usleep(10000);
	return httpd_count(h, path) >= n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[65536];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

static void test_http_errors(void)
{
	struct httpd h;
	char ep[64], errpath[] = "/tmp/test_otlp_stderr.XXXXXX";
	uint8_t body[128];
	Otlp__RpcStatus st = OTLP__RPC_STATUS__INIT;
	Otlp__ExportLogsPartialSuccess ps = OTLP__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
	Otlp__ExportLogsServiceResponse resp = OTLP__EXPORT_LOGS_SERVICE_RESPONSE__INIT;

	/* the exporter's JSON lines go to stderr: capture them */
	int efd = mkstemp(errpath), saved = dup(2);
	fflush(stderr);
	dup2(efd, 2);

	/* 503 + Retry-After: 1, then 200 */
	memset(&h, 0, sizeof(h));
	h.logs_mode = HTTPD_503_THEN_OK;
	httpd_start(&h);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h.port);
	struct tele *t = new_tele(ep, 1.0, 64, 16, 100, 0);
	tele_log(t, 9, "one", NULL, 0, NULL);
	ok(wait_requests(&h, "/v1/logs", 2), "503: retried");
	httpd_stop(&h);
	double gap = h.n_logs >= 2 ? last_req(&h, "/v1/logs")->t - h.req[0].t : 0;
	for (int i = 0; i < h.n_req; i++)
		if (strcmp(h.req[i].path, "/v1/logs") == 0) {
			gap = last_req(&h, "/v1/logs")->t - h.req[i].t;
			break;
		}
	ok(gap >= 0.95 && gap < 3, "Retry-After honoured: %.2fs between attempts", gap);
	ok(tele_dropped(t) == 0, "nothing dropped after a successful retry");
	tele_free(&t, 0);
	httpd_free(&h);

	/* 400: logged, dropped, not retried */
	memset(&h, 0, sizeof(h));
	h.logs_mode = HTTPD_400;
	st.code = 3;
	st.message = "bad payload";
	h.resp_len = otlp__rpc_status__pack(&st, body);
	h.resp_body = body;
	httpd_start(&h);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h.port);
	t = new_tele(ep, 1.0, 64, 16, 100, 0);
	tele_log(t, 9, "two", NULL, 0, NULL);
	ok(wait_requests(&h, "/v1/logs", 1), "400: request made");
	usleep(1200000);        /* longer than the first backoff step */
	is_int(httpd_count(&h, "/v1/logs"), 1, "400: not retried");
	is_int((long long)tele_dropped(t), 1, "400: the record is counted as dropped");
	tele_free(&t, 0);
	httpd_stop(&h);
	httpd_free(&h);

	/* partial success: logged, not retried */
	memset(&h, 0, sizeof(h));
	h.logs_mode = HTTPD_PARTIAL;
	ps.rejected_log_records = 1;
	ps.error_message = "one too old";
	resp.partial_success = &ps;
	h.resp_len = otlp__export_logs_service_response__pack(&resp, body);
	h.resp_body = body;
	httpd_start(&h);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h.port);
	t = new_tele(ep, 1.0, 64, 16, 100, 0);
	tele_log(t, 9, "three", NULL, 0, NULL);
	ok(wait_requests(&h, "/v1/logs", 1), "partial success: request made");
	usleep(300000);
	is_int(httpd_count(&h, "/v1/logs"), 1, "partial success: not retried");
	tele_free(&t, 1000);
	httpd_stop(&h);
	httpd_free(&h);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(efd);
	const char *log = slurp(errpath);
	unlink(errpath);
	diag("exporter stderr:\n%s", log);
	ok(strstr(log, "\"level\":\"warn\",\"msg\":\"otlp export failed\",\"signal\":\"logs\",\"status\":503") != NULL,
	   "503 logged as a JSON line");
	ok(strstr(log, "\"msg\":\"otlp export recovered\",\"signal\":\"logs\"") != NULL, "recovery logged");
	ok(strstr(log, "\"status\":400,\"error\":\"bad payload\"") != NULL, "400 logged with the Status message");
	ok(strstr(log, "\"msg\":\"otlp partial success\",\"signal\":\"logs\",\"rejected\":1,\"error\":\"one too old\"")
	   != NULL, "partial success logged");
	ok(strncmp(log, "{\"time\":\"20", 11) == 0, "lines start with an ISO time");
}

/* A collector that accepts and never answers must not stall shutdown past
 * the flush timeout (the request timeout here is 10 s). */
static void test_hung_collector(void)
{
	struct httpd h;
	char ep[64];
	struct tele_ctx c;
	struct tele_msg m = { .topic = "t", .outcome = "applied", .source_ts_ms = -1, .start_ns = 1, .end_ns = 2 };

	memset(&h, 0, sizeof(h));
	h.traces_mode = HTTPD_HANG;
	httpd_start(&h);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", h.port);
	timeout_ms = 10000;
	struct tele *t = new_tele(ep, 1.0, 64, 1, 100, 0);
	timeout_ms = 2000;
	tele_ctx_start(t, NULL, 0, &c);
	tele_msg_done(t, &c, &m);
	ok(wait_requests(&h, "/v1/traces", 1), "hung collector got the request");
	double t0 = now_s();
	tele_free(&t, 300);
	double dt = now_s() - t0;
	ok(dt < 0.8, "shutdown bounded by the flush timeout: %.2fs", dt);
	httpd_stop(&h);
	httpd_free(&h);
}

int main(void)
{
	test_traceparent();
	test_sampling();
	test_queue_full();
	test_http_export(0);
	test_http_export(1);
	test_http_errors();
	test_series_cap();
	test_hung_collector();
	return done_testing();
}
