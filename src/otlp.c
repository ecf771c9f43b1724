/*
 * otlp.c — build OTLP export requests from our records and pack them with
 * the protobuf-c code generated from otlp.proto.
 *
 * The generated message structs of one request are short-lived, so they are
 * carved out of a request-local arena and released in one go after packing;
 * they only borrow the strings and arrays of our records (protobuf-c's
 * string fields are `char *`, hence the casts: nothing here writes through
 * them).
 */
#include "otlp.h"

#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.pb-c.h"

/* ---- arena for the generated structs of one request */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct chunk *head;
	int failed;                     /* an allocation failed: the request is abandoned */
};

#define ARENA_CHUNK 16384u

static void *arena_alloc(struct arena *a, size_t n)
{
	const size_t al = alignof(max_align_t);
	struct chunk *c = a->head;

	n = (n + al - 1) / al * al;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c) {
			a->failed = 1;
			return NULL;
		}
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
}

/* n elements of size sz; NULL (not an error) when n == 0 */
static void *arena_array(struct arena *a, size_t n, size_t sz)
{
	if (n == 0)
		return NULL;
	if (n > SIZE_MAX / sz) {
		a->failed = 1;
		return NULL;
	}
	return arena_alloc(a, n * sz);
}

static char *str_or_empty(const char *s)
{
	return (char *)(s ? s : "");
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static ProtobufCBinaryData bytes_of(const uint8_t *p, size_t n)
{
	ProtobufCBinaryData b = { n, (uint8_t *)p };
	return b;
}

/* ---- building blocks */

static Otlp__KeyValue **build_attrs(struct arena *a, const struct otlp_attr *attrs, size_t n)
{
	Otlp__KeyValue **v = arena_array(a, n, sizeof(*v));
	Otlp__KeyValue *kv = arena_array(a, n, sizeof(*kv));
	Otlp__AnyValue *av = arena_array(a, n, sizeof(*av));

	if (n == 0 || a->failed)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		otlp__key_value__init(&kv[i]);
		otlp__any_value__init(&av[i]);
		kv[i].key = str_or_empty(attrs[i].key);
		kv[i].value = &av[i];
		switch (attrs[i].type) {
		case OTLP_STR:
			av[i].value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
			av[i].string_value = str_or_empty(attrs[i].s);
			break;
		case OTLP_INT:
			av[i].value_case = OTLP__ANY_VALUE__VALUE_INT_VALUE;
			av[i].int_value = attrs[i].i;
			break;
		case OTLP_BOOL:
			av[i].value_case = OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
			av[i].bool_value = attrs[i].i != 0;
			break;
		case OTLP_DOUBLE:
			av[i].value_case = OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
			av[i].double_value = attrs[i].d;
			break;
		}
		v[i] = &kv[i];
	}
	return v;
}

static Otlp__Resource *build_resource(struct arena *a, const struct otlp_resource *res)
{
	Otlp__Resource *r = arena_alloc(a, sizeof(*r));
	if (!r)
		return NULL;
	otlp__resource__init(r);
	r->n_attributes = res->n_attrs;
	r->attributes = build_attrs(a, res->attrs, res->n_attrs);
	return r;
}

static Otlp__InstrumentationScope *build_scope(struct arena *a, const struct otlp_resource *res)
{
	Otlp__InstrumentationScope *s = arena_alloc(a, sizeof(*s));
	if (!s)
		return NULL;
	otlp__instrumentation_scope__init(s);
	s->name = str_or_empty(res->scope_name);
	s->version = str_or_empty(res->scope_version);
	return s;
}

/* Pack msg into a fresh malloc'd buffer. */
static int pack(const ProtobufCMessage *msg, uint8_t **out, size_t *outlen)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);

	if (!buf)
		return -1;
	if (protobuf_c_message_pack(msg, buf) != n) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- traces */

static Otlp__Span *build_span(struct arena *a, const struct otlp_span *s)
{
	Otlp__Span *p = arena_alloc(a, sizeof(*p));
	if (!p)
		return NULL;
	otlp__span__init(p);
	p->trace_id = bytes_of(s->trace_id, sizeof(s->trace_id));
	p->span_id = bytes_of(s->span_id, sizeof(s->span_id));
	if (!all_zero(s->parent_span_id, sizeof(s->parent_span_id)))
		p->parent_span_id = bytes_of(s->parent_span_id, sizeof(s->parent_span_id));
	p->name = str_or_empty(s->name);
	p->kind = (Otlp__Span__SpanKind)s->kind;
	p->start_time_unix_nano = s->start_ns;
	p->end_time_unix_nano = s->end_ns;
	p->flags = s->flags;
	p->n_attributes = s->n_attrs;
	p->attributes = build_attrs(a, s->attrs, s->n_attrs);

	p->n_events = s->n_events;
	p->events = arena_array(a, s->n_events, sizeof(*p->events));
	Otlp__Span__Event *ev = arena_array(a, s->n_events, sizeof(*ev));
	if (a->failed)
		return NULL;
	for (size_t i = 0; i < s->n_events; i++) {
		otlp__span__event__init(&ev[i]);
		ev[i].name = str_or_empty(s->events[i].name);
		ev[i].time_unix_nano = s->events[i].time_ns;
		ev[i].n_attributes = s->events[i].n_attrs;
		ev[i].attributes = build_attrs(a, s->events[i].attrs, s->events[i].n_attrs);
		p->events[i] = &ev[i];
	}

	if (s->status_code != OTLP_STATUS_UNSET || s->status_msg) {
		Otlp__Status *st = arena_alloc(a, sizeof(*st));
		if (!st)
			return NULL;
		otlp__status__init(st);
		st->code = (Otlp__Status__StatusCode)s->status_code;
		st->message = str_or_empty(s->status_msg);
		p->status = st;
	}
	return p;
}

int otlp_encode_spans(const struct otlp_resource *res, const struct otlp_span *const *spans,
                      size_t n, uint8_t **out, size_t *outlen)
{
	struct arena a = { 0 };
	Otlp__ExportTraceServiceRequest req = OTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Otlp__ResourceSpans rs = OTLP__RESOURCE_SPANS__INIT;
	Otlp__ScopeSpans ss = OTLP__SCOPE_SPANS__INIT;
	Otlp__ResourceSpans *rsp = &rs;
	Otlp__ScopeSpans *ssp = &ss;
	int rc = -1;

	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	rs.resource = build_resource(&a, res);
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	ss.scope = build_scope(&a, res);
	ss.n_spans = n;
	ss.spans = arena_array(&a, n, sizeof(*ss.spans));
	for (size_t i = 0; i < n && !a.failed; i++)
		ss.spans[i] = build_span(&a, spans[i]);
	if (!a.failed)
		rc = pack(&req.base, out, outlen);
	arena_free(&a);
	return rc;
}

/* ---- logs */

static Otlp__LogRecord *build_log(struct arena *a, const struct otlp_log *l)
{
	Otlp__LogRecord *r = arena_alloc(a, sizeof(*r));
	Otlp__AnyValue *body = arena_alloc(a, sizeof(*body));
	if (!r || !body)
		return NULL;
	otlp__log_record__init(r);
	otlp__any_value__init(body);
	r->time_unix_nano = l->time_ns;
	r->observed_time_unix_nano = l->observed_ns;
	r->severity_number = l->severity;
	r->severity_text = str_or_empty(l->severity_text);
	body->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
	body->string_value = str_or_empty(l->body);
	r->body = body;
	r->n_attributes = l->n_attrs;
	r->attributes = build_attrs(a, l->attrs, l->n_attrs);
	if (!all_zero(l->trace_id, sizeof(l->trace_id))) {
		r->trace_id = bytes_of(l->trace_id, sizeof(l->trace_id));
		r->span_id = bytes_of(l->span_id, sizeof(l->span_id));
		r->flags = l->flags;
	}
	return r;
}

int otlp_encode_logs(const struct otlp_resource *res, const struct otlp_log *const *logs,
                     size_t n, uint8_t **out, size_t *outlen)
{
	struct arena a = { 0 };
	Otlp__ExportLogsServiceRequest req = OTLP__EXPORT_LOGS_SERVICE_REQUEST__INIT;
	Otlp__ResourceLogs rl = OTLP__RESOURCE_LOGS__INIT;
	Otlp__ScopeLogs sl = OTLP__SCOPE_LOGS__INIT;
	Otlp__ResourceLogs *rlp = &rl;
	Otlp__ScopeLogs *slp = &sl;
	int rc = -1;

	req.n_resource_logs = 1;
	req.resource_logs = &rlp;
	rl.resource = build_resource(&a, res);
	rl.n_scope_logs = 1;
	rl.scope_logs = &slp;
	sl.scope = build_scope(&a, res);
	sl.n_log_records = n;
	sl.log_records = arena_array(&a, n, sizeof(*sl.log_records));
	for (size_t i = 0; i < n && !a.failed; i++)
		sl.log_records[i] = build_log(&a, logs[i]);
	if (!a.failed)
		rc = pack(&req.base, out, outlen);
	arena_free(&a);
	return rc;
}

/* ---- metrics */

static Otlp__NumberDataPoint **build_number_points(struct arena *a, const struct otlp_metric *m)
{
	Otlp__NumberDataPoint **v = arena_array(a, m->n_points, sizeof(*v));
	Otlp__NumberDataPoint *p = arena_array(a, m->n_points, sizeof(*p));

	if (m->n_points == 0 || a->failed)
		return NULL;
	for (size_t i = 0; i < m->n_points; i++) {
		const struct otlp_point *src = &m->points[i];
		otlp__number_data_point__init(&p[i]);
		p[i].n_attributes = src->n_attrs;
		p[i].attributes = build_attrs(a, src->attrs, src->n_attrs);
		p[i].start_time_unix_nano = src->start_ns;
		p[i].time_unix_nano = src->time_ns;
		if (src->is_double) {
			p[i].value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
			p[i].as_double = src->as_double;
		} else {
			p[i].value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
			p[i].as_int = src->as_int;
		}
		v[i] = &p[i];
	}
	return v;
}

static Otlp__HistogramDataPoint **build_hist_points(struct arena *a, const struct otlp_metric *m)
{
	Otlp__HistogramDataPoint **v = arena_array(a, m->n_points, sizeof(*v));
	Otlp__HistogramDataPoint *p = arena_array(a, m->n_points, sizeof(*p));

	if (m->n_points == 0 || a->failed)
		return NULL;
	for (size_t i = 0; i < m->n_points; i++) {
		const struct otlp_point *src = &m->points[i];
		otlp__histogram_data_point__init(&p[i]);
		p[i].n_attributes = src->n_attrs;
		p[i].attributes = build_attrs(a, src->attrs, src->n_attrs);
		p[i].start_time_unix_nano = src->start_ns;
		p[i].time_unix_nano = src->time_ns;
		p[i].count = src->count;
		p[i].opt_sum_case = OTLP__HISTOGRAM_DATA_POINT__OPT_SUM_SUM;
		p[i].sum = src->sum;
		p[i].n_explicit_bounds = m->n_bounds;
		p[i].explicit_bounds = (double *)m->bounds;
		p[i].n_bucket_counts = m->n_bounds + 1;
		p[i].bucket_counts = (uint64_t *)src->bucket_counts;
		if (src->count > 0) {
			p[i].opt_min_case = OTLP__HISTOGRAM_DATA_POINT__OPT_MIN_MIN;
			p[i].min = src->min;
			p[i].opt_max_case = OTLP__HISTOGRAM_DATA_POINT__OPT_MAX_MAX;
			p[i].max = src->max;
		}
		v[i] = &p[i];
	}
	return v;
}

static Otlp__Metric *build_metric(struct arena *a, const struct otlp_metric *m)
{
	Otlp__Metric *p = arena_alloc(a, sizeof(*p));
	if (!p)
		return NULL;
	otlp__metric__init(p);
	p->name = str_or_empty(m->name);
	p->description = str_or_empty(m->description);
	p->unit = str_or_empty(m->unit);
	switch (m->type) {
	case OTLP_GAUGE: {
		Otlp__Gauge *g = arena_alloc(a, sizeof(*g));
		if (!g)
			return NULL;
		otlp__gauge__init(g);
		g->n_data_points = m->n_points;
		g->data_points = build_number_points(a, m);
		p->data_case = OTLP__METRIC__DATA_GAUGE;
		p->gauge = g;
		break;
	}
	case OTLP_SUM: {
		Otlp__Sum *s = arena_alloc(a, sizeof(*s));
		if (!s)
			return NULL;
		otlp__sum__init(s);
		s->n_data_points = m->n_points;
		s->data_points = build_number_points(a, m);
		s->aggregation_temporality = OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
		s->is_monotonic = m->monotonic != 0;
		p->data_case = OTLP__METRIC__DATA_SUM;
		p->sum = s;
		break;
	}
	case OTLP_HISTOGRAM: {
		Otlp__Histogram *h = arena_alloc(a, sizeof(*h));
		if (!h)
			return NULL;
		otlp__histogram__init(h);
		h->n_data_points = m->n_points;
		h->data_points = build_hist_points(a, m);
		h->aggregation_temporality = OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
		p->data_case = OTLP__METRIC__DATA_HISTOGRAM;
		p->histogram = h;
		break;
	}
	}
	return p;
}

int otlp_encode_metrics(const struct otlp_resource *res, const struct otlp_metric *metrics,
                        size_t n, uint8_t **out, size_t *outlen)
{
	struct arena a = { 0 };
	Otlp__ExportMetricsServiceRequest req = OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	Otlp__ResourceMetrics rm = OTLP__RESOURCE_METRICS__INIT;
	Otlp__ScopeMetrics sm = OTLP__SCOPE_METRICS__INIT;
	Otlp__ResourceMetrics *rmp = &rm;
	Otlp__ScopeMetrics *smp = &sm;
	int rc = -1;

	req.n_resource_metrics = 1;
	req.resource_metrics = &rmp;
	rm.resource = build_resource(&a, res);
	rm.n_scope_metrics = 1;
	rm.scope_metrics = &smp;
	sm.scope = build_scope(&a, res);
	sm.n_metrics = n;
	sm.metrics = arena_array(&a, n, sizeof(*sm.metrics));
	for (size_t i = 0; i < n && !a.failed; i++)
		sm.metrics[i] = build_metric(&a, &metrics[i]);
	if (!a.failed)
		rc = pack(&req.base, out, outlen);
	arena_free(&a);
	return rc;
}

/* ---- responses */

static void copy_msg(char *dst, size_t dstlen, const char *src)
{
	if (!dstlen)
		return;
	if (!src) {
		dst[0] = '\0';
		return;
	}
	size_t n = strlen(src);
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int otlp_decode_partial_success(const char *signal, const uint8_t *body, size_t len,
                                int64_t *rejected, char *msg, size_t msglen)
{
	int64_t rej = 0;
	const char *em = NULL;
	ProtobufCMessage *m = NULL;

	*rejected = 0;
	copy_msg(msg, msglen, NULL);
	if (len == 0)
		return 0;
	if (strcmp(signal, "traces") == 0) {
		Otlp__ExportTraceServiceResponse *r = otlp__export_trace_service_response__unpack(NULL, len, body);
		if (r && r->partial_success) {
			rej = r->partial_success->rejected_spans;
			em = r->partial_success->error_message;
		}
		m = r ? &r->base : NULL;
	} else if (strcmp(signal, "metrics") == 0) {
		Otlp__ExportMetricsServiceResponse *r = otlp__export_metrics_service_response__unpack(NULL, len, body);
		if (r && r->partial_success) {
			rej = r->partial_success->rejected_data_points;
			em = r->partial_success->error_message;
		}
		m = r ? &r->base : NULL;
	} else {
		Otlp__ExportLogsServiceResponse *r = otlp__export_logs_service_response__unpack(NULL, len, body);
		if (r && r->partial_success) {
			rej = r->partial_success->rejected_log_records;
			em = r->partial_success->error_message;
		}
		m = r ? &r->base : NULL;
	}
	if (!m)
		return -1;
	int partial = rej != 0 || (em && *em);
	*rejected = rej;
	copy_msg(msg, msglen, em);
	protobuf_c_message_free_unpacked(m, NULL);
	return partial;
}

int otlp_decode_status(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	Otlp__RpcStatus *st = otlp__rpc_status__unpack(NULL, len, body);

	copy_msg(msg, msglen, NULL);
	if (!st)
		return -1;
	copy_msg(msg, msglen, st->message);
	otlp__rpc_status__free_unpacked(st, NULL);
	return 0;
}

/* ---- deep copies of queued records */

/* Length of the longest valid UTF-8 sequence at s (1..4), or 0 if s starts
 * an invalid one (overlong forms, surrogates, > U+10FFFF, truncation). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0) lo = 0xA0;
		if (c == 0xED) hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0) lo = 0x90;
		if (c == 0xF4) hi = 0x8F;
	} else
		return 0;
	if (left < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

/* Bump allocator over the single block of a record being copied. */
struct blk {
	char *p, *end;
};

static void *blk_take(struct blk *b, size_t n)
{
	const size_t al = alignof(max_align_t);
	void *r = b->p;
	b->p += (n + al - 1) / al * al;
	return r;
}

#define NO_CUT ((size_t)PTRDIFF_MAX)

static size_t slen(const char *s, size_t max)
{
	return s ? strnlen(s, max) + 1 : 0;
}

static const char *blk_str(struct blk *b, const char *s, size_t max)
{
	if (!s)
		return NULL;
	size_t n = strnlen(s, max);
	unsigned char *d = (unsigned char *)b->p;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(u + i, n - i);
		if (k == 0) {
			d[i++] = '?';
			continue;
		}
		memcpy(d + i, u + i, k);
		i += k;
	}
	d[n] = '\0';
	b->p += n + 1;
	return (const char *)d;
}

static size_t round_al(size_t n)
{
	const size_t al = alignof(max_align_t);
	return (n + al - 1) / al * al;
}

static size_t attrs_size(const struct otlp_attr *a, size_t n, size_t max)
{
	size_t sz = round_al(n * sizeof(*a));
	for (size_t i = 0; i < n; i++) {
		sz += slen(a[i].key, NO_CUT);         /* keys are ours, never cut */
		if (a[i].type == OTLP_STR)
			sz += slen(a[i].s, max);
	}
	return sz;
}

/* Copy the attr array (the strings go to the string area at b->p afterwards:
 * arrays are laid out first so that they stay aligned). */
static struct otlp_attr *blk_attrs_array(struct blk *b, size_t n)
{
	return n ? blk_take(b, n * sizeof(struct otlp_attr)) : NULL;
}

static void blk_attrs_fill(struct blk *b, struct otlp_attr *dst, const struct otlp_attr *src,
                           size_t n, size_t max)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].key = blk_str(b, src[i].key, NO_CUT);
		dst[i].s = src[i].type == OTLP_STR ? blk_str(b, src[i].s, max) : NULL;
	}
}

struct otlp_span *otlp_span_dup(const struct otlp_span *s, size_t max)
{
	size_t sz = round_al(sizeof(*s)) + round_al(s->n_events * sizeof(*s->events))
	            + attrs_size(s->attrs, s->n_attrs, max)
	            + slen(s->name, max) + slen(s->status_msg, max);
	for (size_t i = 0; i < s->n_events; i++)
		sz += attrs_size(s->events[i].attrs, s->events[i].n_attrs, max)
		      + slen(s->events[i].name, max);

	char *mem = malloc(sz);
	if (!mem)
		return NULL;
	struct blk b = { mem, mem + sz };
	struct otlp_span *d = blk_take(&b, sizeof(*d));
	struct otlp_event *ev = s->n_events ? blk_take(&b, s->n_events * sizeof(*ev)) : NULL;
	struct otlp_attr *at = blk_attrs_array(&b, s->n_attrs);

	/* all arrays first (aligned), then the strings */
	for (size_t i = 0; i < s->n_events; i++) {
		ev[i] = s->events[i];
		ev[i].attrs = blk_attrs_array(&b, s->events[i].n_attrs);
	}
	*d = *s;
	d->name = blk_str(&b, s->name, max);
	d->status_msg = blk_str(&b, s->status_msg, max);
	blk_attrs_fill(&b, at, s->attrs, s->n_attrs, max);
	d->attrs = at;
	for (size_t i = 0; i < s->n_events; i++) {
		ev[i].name = blk_str(&b, s->events[i].name, max);
		/* our own block: the const is only for the readers */
		blk_attrs_fill(&b, (struct otlp_attr *)ev[i].attrs, s->events[i].attrs,
		               s->events[i].n_attrs, max);
	}
	d->events = ev;
	assert(b.p <= b.end);
	return d;
}

struct otlp_log *otlp_log_dup(const struct otlp_log *l, size_t max)
{
	size_t sz = round_al(sizeof(*l)) + attrs_size(l->attrs, l->n_attrs, max)
	            + slen(l->severity_text, max) + slen(l->body, max);
	char *mem = malloc(sz);
	if (!mem)
		return NULL;
	struct blk b = { mem, mem + sz };
	struct otlp_log *d = blk_take(&b, sizeof(*d));
	struct otlp_attr *at = blk_attrs_array(&b, l->n_attrs);

	*d = *l;
	d->severity_text = blk_str(&b, l->severity_text, max);
	d->body = blk_str(&b, l->body, max);
	blk_attrs_fill(&b, at, l->attrs, l->n_attrs, max);
	d->attrs = at;
	assert(b.p <= b.end);
	return d;
}
