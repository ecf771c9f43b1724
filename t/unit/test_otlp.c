/*
 * test_otlp.c — OTLP encoding: encode spans, metrics and logs, decode them
 * with the generated protobuf-c unpackers, compare field by field; the
 * collector's responses. (Telemetry and the exporter: test_telemetry.c.)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp.pb-c.h"
#include "tap.h"
#include "otlpdec.h"

/* ---- pure encoding */

static void test_spans(void)
{
	struct otlp_attr a[] = {
		{ .key = "s", .type = OTLP_STR, .s = "v\xff" "x" },     /* invalid UTF-8 byte */
		{ .key = "i", .type = OTLP_INT, .i = -42 },
		{ .key = "b", .type = OTLP_BOOL, .i = 1 },
		{ .key = "d", .type = OTLP_DOUBLE, .d = 2.5 },
		{ .key = "long", .type = OTLP_STR, .s = "0123456789abcdef" },
	};
	struct otlp_attr ea[] = { { .key = "exception.type", .type = OTLP_STR, .s = "sql" } };
	struct otlp_event ev = { "exception", 1700000000500000000ull, ea, 1 };
	struct otlp_span s = { .name = "process t", .kind = OTLP_SPAN_KIND_CONSUMER,
	                       .start_ns = 1700000000000000000ull, .end_ns = 1700000000900000000ull,
	                       .flags = 0x301, .attrs = a, .n_attrs = 5, .events = &ev, .n_events = 1,
	                       .status_code = OTLP_STATUS_ERROR, .status_msg = "boom" };
	struct otlp_span root = { .name = "root", .kind = OTLP_SPAN_KIND_INTERNAL, .start_ns = 1, .end_ns = 2 };
	for (int i = 0; i < 16; i++)
		s.trace_id[i] = root.trace_id[i] = (uint8_t)(i + 1);
	for (int i = 0; i < 8; i++) {
		s.span_id[i] = root.span_id[i] = (uint8_t)(0xa0 + i);
		s.parent_span_id[i] = (uint8_t)(0x10 + i);
	}

	struct otlp_span *d = otlp_span_dup(&s, 10);        /* strings cut at 10 bytes */
	const struct otlp_span *batch[] = { d, &root };
	uint8_t *buf = NULL;
	size_t len = 0;
	ok(d != NULL, "span dup");
	is_int(otlp_encode_spans(&res, batch, 2, &buf, &len), 0, "encode spans");
	Otlp__ExportTraceServiceRequest *r = otlp__export_trace_service_request__unpack(NULL, len, buf);
	ok(r != NULL, "spans decode");
	if (!r || r->n_resource_spans != 1 || r->resource_spans[0]->n_scope_spans != 1) {
		ok(0, "request shape");
		goto out;
	}
	Otlp__ResourceSpans *rs = r->resource_spans[0];
	Otlp__ScopeSpans *ss = rs->scope_spans[0];
	is_str(attr_s(rs->resource->attributes, rs->resource->n_attributes, "service.name"), "cdcrouter",
	       "resource service.name");
	is_str(ss->scope->name, "cdcrouter", "scope name");
	is_str(ss->scope->version, "0.1.0", "scope version");
	is_int((long long)ss->n_spans, 2, "two spans");
	Otlp__Span *p = ss->spans[0];
	ok(bytes_eq(p->trace_id, s.trace_id, 16), "trace_id bytes");
	ok(bytes_eq(p->span_id, s.span_id, 8), "span_id bytes");
	ok(bytes_eq(p->parent_span_id, s.parent_span_id, 8), "parent_span_id bytes");
	is_str(p->name, "process t", "name");
	is_int(p->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER, "kind CONSUMER");
	ok(p->start_time_unix_nano == s.start_ns && p->end_time_unix_nano == s.end_ns, "times");
	is_int(p->flags, 0x301, "flags");
	is_int((long long)p->n_attributes, 5, "5 attributes");
	is_str(attr_s(p->attributes, p->n_attributes, "s"), "v?x", "invalid UTF-8 replaced");
	is_int(attr_i(p->attributes, p->n_attributes, "i"), -42, "int attribute");
	is_int(attr_b(p->attributes, p->n_attributes, "b"), 1, "bool attribute");
	const Otlp__AnyValue *dv = find_attr(p->attributes, p->n_attributes, "d");
	ok(dv && dv->value_case == OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE && dv->double_value == 2.5, "double attribute");
	is_str(attr_s(p->attributes, p->n_attributes, "long"), "0123456789", "string cut at max_str");
	ok(p->status && p->status->code == OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR, "status ERROR");
	is_str(p->status ? p->status->message : NULL, "boom", "status message");
	ok(p->n_events == 1 && strcmp(p->events[0]->name, "exception") == 0
	   && p->events[0]->time_unix_nano == ev.time_ns, "event name and time");
	is_str(p->n_events ? attr_s(p->events[0]->attributes, p->events[0]->n_attributes, "exception.type") : NULL,
	       "sql", "event attribute");
	Otlp__Span *q = ss->spans[1];
	is_int((long long)q->parent_span_id.len, 0, "root span: no parent_span_id");
	ok(q->status == NULL, "root span: no status");
	is_int(q->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL, "kind INTERNAL");
out:
	if (r)
		otlp__export_trace_service_request__free_unpacked(r, NULL);
	free(buf);
	free(d);
}

static void test_metrics(void)
{
	static const double bounds[] = { 0.1, 1, 10 };
	uint64_t bk[] = { 1, 2, 0, 1 };
	struct otlp_attr pa[] = { { .key = "topic", .type = OTLP_STR, .s = "t1" } };
	struct otlp_point sp = { pa, 1, 100, 200, 0, 7, 0, 0, 0, 0, 0, NULL };
	struct otlp_point gp = { pa, 1, 0, 200, 0, -3, 0, 0, 0, 0, 0, NULL };
	struct otlp_point hp = { pa, 1, 100, 200, 0, 0, 0, 4, 12.5, 0.05, 11, bk };
	struct otlp_point hz = { NULL, 0, 100, 200, 0, 0, 0, 0, 0, 0, 0, (uint64_t[4]){ 0 } };
	struct otlp_point hps[] = { hp, hz };
	struct otlp_metric m[] = {
		{ "c", "a counter", "{message}", OTLP_SUM, 1, NULL, 0, &sp, 1 },
		{ "g", "a gauge", "{message}", OTLP_GAUGE, 0, NULL, 0, &gp, 1 },
		{ "h", "a histogram", "s", OTLP_HISTOGRAM, 0, bounds, 3, hps, 2 },
	};
	uint8_t *buf = NULL;
	size_t len = 0;

	is_int(otlp_encode_metrics(&res, m, 3, &buf, &len), 0, "encode metrics");
	Otlp__ExportMetricsServiceRequest *r = otlp__export_metrics_service_request__unpack(NULL, len, buf);
	ok(r && r->n_resource_metrics == 1 && r->resource_metrics[0]->n_scope_metrics == 1
	   && r->resource_metrics[0]->scope_metrics[0]->n_metrics == 3, "metrics decode, 3 metrics");
	if (!r || r->n_resource_metrics != 1 || r->resource_metrics[0]->scope_metrics[0]->n_metrics != 3)
		goto out;
	Otlp__Metric **mm = r->resource_metrics[0]->scope_metrics[0]->metrics;
	is_str(mm[0]->name, "c", "sum name");
	is_str(mm[0]->unit, "{message}", "sum unit");
	ok(mm[0]->data_case == OTLP__METRIC__DATA_SUM, "sum type");
	is_int(mm[0]->sum->aggregation_temporality, OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE,
	       "sum cumulative");
	ok(mm[0]->sum->is_monotonic, "sum monotonic");
	Otlp__NumberDataPoint *np = mm[0]->sum->data_points[0];
	ok(np->value_case == OTLP__NUMBER_DATA_POINT__VALUE_AS_INT && np->as_int == 7, "sum as_int 7");
	ok(np->start_time_unix_nano == 100 && np->time_unix_nano == 200, "sum times");
	is_str(attr_s(np->attributes, np->n_attributes, "topic"), "t1", "point attribute");
	ok(mm[1]->data_case == OTLP__METRIC__DATA_GAUGE && mm[1]->gauge->data_points[0]->as_int == -3
	   && mm[1]->gauge->data_points[0]->start_time_unix_nano == 0, "gauge -3, no start time");
	ok(mm[2]->data_case == OTLP__METRIC__DATA_HISTOGRAM, "histogram type");
	is_int(mm[2]->histogram->aggregation_temporality,
	       OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE, "histogram cumulative");
	Otlp__HistogramDataPoint *h = mm[2]->histogram->data_points[0];
	is_int((long long)h->n_explicit_bounds, 3, "3 bounds");
	is_int((long long)h->n_bucket_counts, 4, "bucket counts = bounds + 1");
	ok(h->explicit_bounds[1] == 1 && h->bucket_counts[1] == 2 && h->bucket_counts[3] == 1, "bounds and buckets");
	ok(h->count == 4 && h->opt_sum_case == OTLP__HISTOGRAM_DATA_POINT__OPT_SUM_SUM && h->sum == 12.5,
	   "count and sum");
	ok(h->opt_min_case && h->min == 0.05 && h->opt_max_case && h->max == 11, "min and max");
	Otlp__HistogramDataPoint *z = mm[2]->histogram->data_points[1];
	ok(z->count == 0 && z->opt_sum_case == OTLP__HISTOGRAM_DATA_POINT__OPT_SUM_SUM && z->sum == 0
	   && !z->opt_min_case && !z->opt_max_case, "empty histogram: sum 0 sent, no min/max");
out:
	if (r)
		otlp__export_metrics_service_request__free_unpacked(r, NULL);
	free(buf);
}

static void test_logs(void)
{
	struct otlp_attr a[] = { { .key = "route", .type = OTLP_STR, .s = "customer" } };
	struct otlp_log l = { .time_ns = 5, .observed_ns = 6, .severity = 17, .severity_text = "ERROR",
	                      .body = "sql failed", .attrs = a, .n_attrs = 1, .flags = 1 };
	struct otlp_log plain = { .time_ns = 7, .severity = 9, .severity_text = "INFO", .body = "hello" };
	for (int i = 0; i < 16; i++)
		l.trace_id[i] = (uint8_t)(0xf0 - i);
	for (int i = 0; i < 8; i++)
		l.span_id[i] = (uint8_t)(i + 1);
	struct otlp_log *d = otlp_log_dup(&l, 1024);
	const struct otlp_log *batch[] = { d, &plain };
	uint8_t *buf = NULL;
	size_t len = 0;

	is_int(otlp_encode_logs(&res, batch, 2, &buf, &len), 0, "encode logs");
	Otlp__ExportLogsServiceRequest *r = otlp__export_logs_service_request__unpack(NULL, len, buf);
	ok(r && r->n_resource_logs == 1 && r->resource_logs[0]->scope_logs[0]->n_log_records == 2, "logs decode");
	if (r && r->n_resource_logs == 1 && r->resource_logs[0]->scope_logs[0]->n_log_records == 2) {
		Otlp__LogRecord **lr = r->resource_logs[0]->scope_logs[0]->log_records;
		ok(lr[0]->time_unix_nano == 5 && lr[0]->observed_time_unix_nano == 6, "log times");
		ok(lr[0]->severity_number == 17 && strcmp(lr[0]->severity_text, "ERROR") == 0, "severity");
		ok(lr[0]->body && lr[0]->body->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE
		   && strcmp(lr[0]->body->string_value, "sql failed") == 0, "body");
		ok(bytes_eq(lr[0]->trace_id, l.trace_id, 16) && bytes_eq(lr[0]->span_id, l.span_id, 8),
		   "log trace_id and span_id");
		is_int(lr[0]->flags, 1, "log flags sampled");
		is_str(attr_s(lr[0]->attributes, lr[0]->n_attributes, "route"), "customer", "log attribute");
		ok(lr[1]->trace_id.len == 0 && lr[1]->span_id.len == 0, "no context: no ids");
	}
	if (r)
		otlp__export_logs_service_request__free_unpacked(r, NULL);
	free(buf);
	free(d);
}

static void test_responses(void)
{
	Otlp__ExportLogsPartialSuccess ps = OTLP__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
	Otlp__ExportLogsServiceResponse resp = OTLP__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
	Otlp__RpcStatus st = OTLP__RPC_STATUS__INIT;
	uint8_t buf[256];
	size_t n;
	int64_t rej;
	char msg[64];

	ps.rejected_log_records = 3;
	ps.error_message = "too old";
	resp.partial_success = &ps;
	n = otlp__export_logs_service_response__pack(&resp, buf);
	is_int(otlp_decode_partial_success("logs", buf, n, &rej, msg, sizeof(msg)), 1, "partial success seen");
	ok(rej == 3 && strcmp(msg, "too old") == 0, "rejected count and message");
	is_int(otlp_decode_partial_success("traces", buf, 0, &rej, msg, sizeof(msg)), 0, "empty body = success");
	resp.partial_success = NULL;
	n = otlp__export_logs_service_response__pack(&resp, buf);
	is_int(otlp_decode_partial_success("logs", buf, n, &rej, msg, sizeof(msg)), 0, "no partial_success");
	is_int(otlp_decode_partial_success("metrics", (const uint8_t *)"\xff\xff", 2, &rej, msg, sizeof(msg)), -1,
	       "garbage does not decode");
	st.code = 3;
	st.message = "bad payload";
	n = otlp__rpc_status__pack(&st, buf);
	ok(otlp_decode_status(buf, n, msg, sizeof(msg)) == 0 && strcmp(msg, "bad payload") == 0,
	   "google.rpc.Status message");
}

int main(void)
{
	test_spans();
	test_metrics();
	test_logs();
	test_responses();
	return done_testing();
}
