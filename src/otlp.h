/*
 * otlp.h — our internal telemetry records and their encoding as OTLP
 * protobuf export requests (ExportTrace/Metrics/LogsServiceRequest).
 *
 * Pure functions: no I/O, no globals, no threads, so the unit tests can
 * encode, decode with the generated protobuf-c unpackers and compare.
 *
 * Records as queued (struct otlp_span, struct otlp_log) are single
 * allocations made by otlp_span_dup()/otlp_log_dup(): the struct, its arrays
 * and all its strings live in one malloc block, released with free().
 * Everything else here is borrowed for the duration of the call.
 */
#ifndef CDCR_OTLP_H
#define CDCR_OTLP_H

#include <stddef.h>
#include <stdint.h>

enum otlp_type { OTLP_STR, OTLP_INT, OTLP_BOOL, OTLP_DOUBLE };

struct otlp_attr {
	const char *key;
	enum otlp_type type;
	const char *s;                  /* OTLP_STR; NULL is sent as "" */
	int64_t i;                      /* OTLP_INT, and OTLP_BOOL (0/1) */
	double d;                       /* OTLP_DOUBLE */
};

/* Resource and instrumentation scope, shared by all requests. */
struct otlp_resource {
	const struct otlp_attr *attrs;
	size_t n_attrs;
	const char *scope_name;
	const char *scope_version;
};

/* ---- traces */

enum { OTLP_SPAN_KIND_INTERNAL = 1, OTLP_SPAN_KIND_CONSUMER = 5 };
enum { OTLP_STATUS_UNSET = 0, OTLP_STATUS_OK = 1, OTLP_STATUS_ERROR = 2 };
/* Span.flags bits above the W3C trace flags (trace.proto SpanFlags). */
#define OTLP_SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define OTLP_SPAN_FLAGS_IS_REMOTE     0x200u

struct otlp_event {
	const char *name;
	uint64_t time_ns;
	const struct otlp_attr *attrs;
	size_t n_attrs;
};

struct otlp_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];      /* all zero = root span, not sent */
	const char *name;
	int kind;
	uint64_t start_ns, end_ns;
	uint32_t flags;
	const struct otlp_attr *attrs;
	size_t n_attrs;
	const struct otlp_event *events;
	size_t n_events;
	int status_code;
	const char *status_msg;         /* NULL = none */
};

/* ---- logs */

struct otlp_log {
	uint64_t time_ns, observed_ns;
	int severity;                   /* SeverityNumber: 5 DEBUG, 9 INFO, 13 WARN, 17 ERROR */
	const char *severity_text;
	const char *body;
	const struct otlp_attr *attrs;
	size_t n_attrs;
	uint8_t trace_id[16];           /* all zero = no trace context, ids not sent */
	uint8_t span_id[8];
	uint32_t flags;                 /* W3C trace flags */
};

/* ---- metrics: a snapshot of cumulative series, encoded as is */

enum otlp_metric_type { OTLP_GAUGE, OTLP_SUM, OTLP_HISTOGRAM };

struct otlp_point {
	const struct otlp_attr *attrs;
	size_t n_attrs;
	uint64_t start_ns, time_ns;     /* start_ns 0 = not sent (gauges) */
	/* OTLP_GAUGE / OTLP_SUM */
	int is_double;
	int64_t as_int;
	double as_double;
	/* OTLP_HISTOGRAM: n_bounds + 1 bucket counts */
	uint64_t count;
	double sum, min, max;           /* min/max sent only when count > 0 */
	const uint64_t *bucket_counts;
};

struct otlp_metric {
	const char *name, *description, *unit;
	enum otlp_metric_type type;
	int monotonic;                  /* OTLP_SUM */
	const double *bounds;           /* OTLP_HISTOGRAM */
	size_t n_bounds;
	const struct otlp_point *points;
	size_t n_points;
};

/* Deep copies into one malloc block (free() it), which bounds the memory a
 * queued record holds: each string value (not attribute keys) is cut to
 * max_str bytes. Invalid UTF-8
 * bytes (including a sequence cut in two) become '?', since protobuf strings
 * must be UTF-8. NULL on allocation failure. */
struct otlp_span *otlp_span_dup(const struct otlp_span *s, size_t max_str);
struct otlp_log *otlp_log_dup(const struct otlp_log *l, size_t max_str);

/* Encode an export request into a malloc'd buffer (*out, *outlen), owned by
 * the caller. Sum and histogram points are sent CUMULATIVE. 0 on success,
 * -1 on allocation failure (*out untouched). */
int otlp_encode_spans(const struct otlp_resource *res, const struct otlp_span *const *spans,
                      size_t n, uint8_t **out, size_t *outlen);
int otlp_encode_logs(const struct otlp_resource *res, const struct otlp_log *const *logs,
                     size_t n, uint8_t **out, size_t *outlen);
int otlp_encode_metrics(const struct otlp_resource *res, const struct otlp_metric *metrics,
                        size_t n, uint8_t **out, size_t *outlen);

/* Decode a response body. Export*ServiceResponse (signal "traces",
 * "metrics" or "logs"): sets *rejected and msg from partial_success; returns
 * 1 if a partial success was reported, 0 if not, -1 if the body does not
 * decode. An empty body is a full success (0). */
int otlp_decode_partial_success(const char *signal, const uint8_t *body, size_t len,
                                int64_t *rejected, char *msg, size_t msglen);
/* google.rpc.Status of an error response: its message into msg; 0, or -1
 * if the body does not decode. */
int otlp_decode_status(const uint8_t *body, size_t len, char *msg, size_t msglen);

#endif
