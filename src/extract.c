/* extract.c — plain paths read exactly, jq where needed; see extract.h. */
#include "util.h"
#include "extract.h"

#include <jq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

/* 2^53: from here on, a double's integers are more than 1 apart. */
#define EXACT_INT_LIMIT 9007199254740992.0

struct extractor {
	struct json_scanner *js, *jk;        /* for the value, for the key: both results are read together */
	struct json_val *vout, *kout;        /* the route's value and key paths, as scanned */
	size_t nvout, nkout;
	struct json_span *vspans, *kspans;   /* numbers a double does not hold, in value and key */
	size_t nvspans, nkspans, capv, capk;
	struct extract_header *hdrs;         /* headers of the current rd_kafka message */
	size_t caphdrs;
	char *alt;                           /* the value or key with those numbers moved */
	size_t capalt;
};

struct extractor *extract_new(void)
{
	struct extractor *x = xrealloc(NULL, sizeof(*x));

	memset(x, 0, sizeof(*x));
	x->js = json_scanner_new();
	x->jk = json_scanner_new();
	return x;
}

void extract_free(struct extractor **xp)
{
	struct extractor *x = *xp;

	if (!x)
		return;
	json_scanner_free(&x->js);
	json_scanner_free(&x->jk);
	free(x->vout);
	free(x->kout);
	free(x->vspans);
	free(x->kspans);
	free(x->hdrs);
	free(x->alt);
	free(x);
	*xp = NULL;
}

/* ---- values into the arena ---------------------------------------------- */

/* Text into the arena: 0, or -1 when it is longer than PostgreSQL takes. */
static int store_text(struct batch *b, struct bval *out, const char *p, size_t n)
{
	if (n > BATCH_VALUE_MAX)
		return -1;
	out->len = (int32_t)n;
	out->off = batch_put(b, p, n);
	return 0;
}

/* A scanned JSON value: exactly its text (null and missing: SQL NULL). */
static int store_json(struct batch *b, struct bval *out, const struct json_val *v)
{
	if (v->kind == JSON_MISSING || v->kind == JSON_NULL) {
		*out = (struct bval){ -1, 0 };
		return 0;
	}
	return store_text(b, out, v->p, v->n);
}

/* The shortest text that reads back as d (jq prints numbers the same way). */
static void format_double(double d, char *buf, size_t len)
{
	if (isnan(d)) {
		snprintf(buf, len, "NaN");
	} else if (isinf(d)) {
		snprintf(buf, len, d > 0 ? "Infinity" : "-Infinity");
	} else if (d == floor(d) && fabs(d) < EXACT_INT_LIMIT) {
		snprintf(buf, len, "%.0f", d);
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, len, "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
	}
}

/* Every number in v (not consumed) has an exact text: 0, or -1 with the
 * first one that has not in *bad. */
static int numbers_exact(jv v, double *bad)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_NUMBER: {
		double d = jv_number_value(v);

		if (d == floor(d) && fabs(d) >= EXACT_INT_LIMIT) {
			*bad = d;
			return -1;
		}
		return 0;
	}
	case JV_KIND_ARRAY:
		for (int i = 0; i < jv_array_length(jv_copy(v)); i++) {
			jv e = jv_array_get(jv_copy(v), i);
			int rc = numbers_exact(e, bad);

			jv_free(e);
			if (rc)
				return -1;
		}
		return 0;
	case JV_KIND_OBJECT: {
		int rc = 0;

		jv_object_foreach(v, k, e) {
			if (!rc)
				rc = numbers_exact(e, bad);
			jv_free(k);
			jv_free(e);
		}
		return rc;
	}
	default:
		return 0;
	}
}

/* A jq result (consumed) as text: 0, or -1 with a reason in err. */
static int store_jv(struct batch *b, struct bval *out, jv v, char *err, size_t errlen)
{
	char num[64];
	double bad;
	int rc = 0;

	if (numbers_exact(v, &bad)) {
		snprintf(err, errlen, "the result holds the number %.0f, beyond what libjq's doubles hold "
		         "exactly (integers up to 2^53); use a plain path for exact numbers", bad);
		jv_free(v);
		return -1;
	}
	switch (jv_get_kind(v)) {
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		*out = (struct bval){ -1, 0 };
		break;
	case JV_KIND_STRING:
		rc = store_text(b, out, jv_string_value(v), (size_t)jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_NUMBER:
		format_double(jv_number_value(v), num, sizeof(num));
		rc = store_text(b, out, num, strlen(num));
		break;
	case JV_KIND_TRUE:
		rc = store_text(b, out, "true", 4);
		break;
	case JV_KIND_FALSE:
		rc = store_text(b, out, "false", 5);
		break;
	default: {                          /* object, array: compact JSON */
		jv d = jv_dump_string(jv_copy(v), 0);

		rc = store_text(b, out, jv_string_value(d), (size_t)jv_string_length_bytes(jv_copy(d)));
		jv_free(d);
	}
	}
	jv_free(v);
	if (rc)
		snprintf(err, errlen, "the result is longer than PostgreSQL's limit of 1 GB for one value");
	return rc;
}

/* ---- the jq side --------------------------------------------------------- */

/* What one message gives its jq programs: [$key, $meta, .], and the same
 * with the numbers a double does not hold moved to the next double. */
struct jq_input {
	jv in, alt;
	int have, have_alt;
};

static jv build_meta(const struct extract_msg *km)
{
	jv meta = jv_object(), h = jv_object();

	meta = jv_object_set(meta, jv_string("topic"), jv_string(km->topic));
	meta = jv_object_set(meta, jv_string("partition"), jv_number(km->partition));
	meta = jv_object_set(meta, jv_string("offset"), jv_number((double)km->offset));
	meta = jv_object_set(meta, jv_string("timestamp"), km->timestamp >= 0 ? jv_number((double)km->timestamp)
	                                                                       : jv_null());
	for (size_t i = 0; i < km->nheaders; i++)
		h = jv_object_set(h, jv_string(km->headers[i].name),
		                  km->headers[i].value ? jv_string_sized(km->headers[i].value, (int)km->headers[i].len)
		                                       : jv_null());
	return jv_object_set(meta, jv_string("headers"), h);
}

/* text with each span replaced by the next double's text, parsed by libjq. */
static jv parse_moved(struct extractor *x, const char *text, size_t len, const struct json_span *sp, size_t n)
{
	size_t o = 0, at = 0;
	jv v;

	for (size_t i = 0; i <= n; i++) {
		size_t upto = i < n ? sp[i].off : len;
		char num[40] = "";

		if (i < n) {
			char lit[400];
			double d;

			snprintf(lit, sizeof(lit), "%.*s", (int)sp[i].len, text + sp[i].off);
			d = strtod(lit, NULL);
			d = !isfinite(d) ? 0.0 : d == 0 ? 1e-300 : nextafter(d, d > 0 ? INFINITY : -INFINITY);
			snprintf(num, sizeof(num), "%.17g", d);
		}
		if (o + (upto - at) + strlen(num) + 1 > x->capalt) {
			x->capalt = (o + (upto - at) + strlen(num) + 1) * 2;
			x->alt = xrealloc(x->alt, x->capalt);
		}
		memcpy(x->alt + o, text + at, upto - at);
		o += upto - at;
		memcpy(x->alt + o, num, strlen(num));
		o += strlen(num);
		at = i < n ? sp[i].off + sp[i].len : len;
	}
	v = jv_parse_sized(x->alt, (int)o);
	return v;
}

static jv key_jv(struct extractor *x, const struct extract_msg *km, int moved)
{
	jv k;

	if (!km->key)
		return jv_null();
	k = moved && x->nkspans ? parse_moved(x, km->key, km->key_len, x->kspans, x->nkspans)
	                        : jv_parse_sized(km->key, (int)km->key_len);
	if (!jv_is_valid(k)) {
		jv_free(k);
		k = jv_string_sized(km->key, (int)km->key_len);   /* not JSON: the key as a string */
	}
	return k;
}

/* Build the input(s) on first use; -1 with err if libjq cannot read the value. */
static int jq_input_get(struct extractor *x, const struct route *r, const struct extract_msg *km,
                        struct jq_input *ji, char *err, size_t errlen)
{
	for (int moved = 0; moved < 2; moved++) {
		jv v, in;

		if (moved ? ji->have_alt : ji->have)
			continue;
		if (moved && !x->nvspans && !x->nkspans)
			break;
		if (!km->value)
			v = jv_null();
		else if (moved && x->nvspans)
			v = parse_moved(x, km->value, km->value_len, x->vspans, x->nvspans);
		else
			v = jv_parse_sized(km->value, (int)km->value_len);
		if (!jv_is_valid(v)) {
			jv msg = jv_invalid_get_msg(v);

			snprintf(err, errlen, "libjq cannot read the value: %s",
			         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "parse error");
			jv_free(msg);
			return -1;
		}
		in = JV_ARRAY(r->jq_key ? key_jv(x, km, moved) : jv_null(), r->jq_meta ? build_meta(km) : jv_null(), v);
		if (moved) {
			ji->alt = in;
			ji->have_alt = 1;
		} else {
			ji->in = in;
			ji->have = 1;
		}
	}
	return 0;
}

static void jq_input_free(struct jq_input *ji)
{
	if (ji->have)
		jv_free(ji->in);
	if (ji->have_alt)
		jv_free(ji->alt);
}

/* First output of a compiled program over [key, meta, value]; no output →
 * null; an error → invalid with its message. Consumes input. */
static jv run_jq(jq_state *jq, jv input)
{
	jv out;

	jq_start(jq, input, 0);
	out = jq_next(jq);
	if (!jv_is_valid(out) && !jv_invalid_has_msg(jv_copy(out))) {
		jv_free(out);
		out = jv_null();
	}
	return out;
}

static void invalid_msg(jv inv, char *buf, size_t len)
{
	jv msg = jv_invalid_get_msg(inv);

	if (jv_get_kind(msg) == JV_KIND_STRING) {
		snprintf(buf, len, "%s", jv_string_value(msg));
	} else {
		jv d = jv_dump_string(jv_copy(msg), 0);

		snprintf(buf, len, "%s", jv_string_value(d));
		jv_free(d);
	}
	jv_free(msg);
}

/* The literal text of the numbers a double does not hold, for messages. */
static void inexact_list(const struct extractor *x, const struct extract_msg *km, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int side = 0; side < 2; side++) {
		const struct json_span *sp = side ? x->kspans : x->vspans;
		size_t n = side ? x->nkspans : x->nvspans;
		const char *text = side ? km->key : km->value;

		for (size_t i = 0; i < n && o + 8 < len; i++)
			o += (size_t)snprintf(buf + o, len - o, "%s%.*s%s", o ? ", " : "", (int)(sp[i].len > 40 ? 40 : sp[i].len),
			                      text + sp[i].off, side ? " (key)" : "");
	}
}

/* Run one program; its result, or invalid with a message (a jq error, or a
 * result that depends on numbers libjq does not hold exactly). */
static jv run_checked(struct extractor *x, const struct route *r, const struct extract_msg *km, jq_state *jq,
                      struct jq_input *ji, char *err, size_t errlen)
{
	jv out, alt;
	char nums[200];

	if (jq_input_get(x, r, km, ji, err, errlen))
		return jv_invalid_with_msg(jv_string(err));
	out = run_jq(jq, jv_copy(ji->in));
	if (!ji->have_alt || !jv_is_valid(out))
		return out;
	alt = run_jq(jq, jv_copy(ji->alt));
	if (jv_equal(jv_copy(out), alt))
		return out;
	jv_free(out);
	inexact_list(x, km, nums, sizeof(nums));
	snprintf(err, errlen, "the result depends on the number(s) %s, which libjq holds only as doubles "
	         "(not exactly); use a plain path for exact numbers", nums);
	return jv_invalid_with_msg(jv_string(err));
}

/* ---- one message --------------------------------------------------------- */

static void grow_out(struct json_val **v, size_t *cap, int n)
{
	if ((size_t)n > *cap) {
		*cap = (size_t)n;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
}

static void keep_spans(struct extractor *x, int key)
{
	const struct json_span *sp;
	size_t n = json_inexact(key ? x->jk : x->js, &sp);
	struct json_span **dst = key ? &x->kspans : &x->vspans;
	size_t *nd = key ? &x->nkspans : &x->nvspans, *cap = key ? &x->capk : &x->capv;

	if (n > *cap) {
		*cap = n;
		*dst = xrealloc(*dst, n * sizeof(**dst));
	}
	if (n)
		memcpy(*dst, sp, n * sizeof(*sp));
	*nd = n;
}

static const char *header_last(const struct extract_msg *km, const char *name, size_t *len)
{
	for (size_t i = km->nheaders; i-- > 0;)
		if (strcmp(km->headers[i].name, name) == 0) {
			*len = km->headers[i].len;
			return km->headers[i].value;
		}
	return NULL;
}

static void store_meta(struct batch *b, struct bval *out, const struct extract_msg *km, enum meta_field f)
{
	char num[32];

	switch (f) {
	case MF_TOPIC:
		(void)store_text(b, out, km->topic, strlen(km->topic));
		return;
	case MF_PARTITION:
		snprintf(num, sizeof(num), "%d", km->partition);
		break;
	case MF_OFFSET:
		snprintf(num, sizeof(num), "%lld", (long long)km->offset);
		break;
	default:
		if (km->timestamp < 0) {
			*out = (struct bval){ -1, 0 };
			return;
		}
		snprintf(num, sizeof(num), "%lld", (long long)km->timestamp);
	}
	(void)store_text(b, out, num, strlen(num));
}

static int set_op(struct extractor *x, const struct route *r, const struct extract_msg *km, struct bmsg *m,
                  struct jq_input *ji, char *err, size_t errlen)
{
	jv op;
	const char *s;

	if (!r->op_jq) {
		const struct json_val *d = &x->vout[r->slot_deleted];

		if (!km->value)
			m->op = OP_IGNORE;
		else if ((d->kind == JSON_STRING && d->n == 4 && !memcmp(d->p, "true", 4)) || d->kind == JSON_TRUE)
			m->op = OP_DELETE;
		else
			m->op = OP_UPSERT;
		return 0;
	}
	op = run_checked(x, r, km, r->op_jq, ji, err, errlen);
	s = jv_get_kind(op) == JV_KIND_STRING ? jv_string_value(op) : "";
	if (!strcmp(s, "upsert") || !strcmp(s, "delete") || !strcmp(s, "ignore")) {
		m->op = !strcmp(s, "upsert") ? OP_UPSERT : !strcmp(s, "delete") ? OP_DELETE : OP_IGNORE;
		jv_free(op);
		return 0;
	}
	if (!jv_is_valid(op))
		invalid_msg(jv_copy(op), err, errlen);
	else
		snprintf(err, errlen, "op expression gave %s, not \"upsert\", \"delete\" or \"ignore\"",
		         jv_kind_name(jv_get_kind(op)));
	jv_free(op);
	return -1;
}

static int extract_routed(struct extractor *x, const struct route *r, struct batch *b, struct bmsg *m,
                          const struct extract_msg *km)
{
	struct jq_input ji = { 0 };
	enum json_kind vroot = JSON_NULL, kroot;
	int flags = r->uses_jq ? JSON_SCAN_INEXACT : 0, rc = -1;
	char err[700];

	m->route = r;
	grow_out(&x->vout, &x->nvout, json_paths_count(r->vpaths));
	grow_out(&x->kout, &x->nkout, json_paths_count(r->kpaths));
	x->nvspans = x->nkspans = 0;
	if (!km->value) {
		for (int i = 0; i < json_paths_count(r->vpaths); i++)
			x->vout[i] = (struct json_val){ JSON_MISSING, NULL, 0 };
	} else if (json_scan(x->js, r->vpaths, km->value, km->value_len, flags, x->vout, &vroot, err, sizeof(err))) {
		batch_set_error(b, m, EK_INVALID_JSON, "invalid JSON value: %s", err);
		return -1;
	} else if (flags) {
		keep_spans(x, 0);
	}
	{
		const struct json_val *ts = &x->vout[r->slot_source_ts];

		if (ts->kind == JSON_NUMBER) {
			char lit[32];

			snprintf(lit, sizeof(lit), "%.*s", (int)(ts->n < 31 ? ts->n : 31), ts->p);
			m->source_ts_ms = strpbrk(lit, ".eE") ? (int64_t)strtod(lit, NULL) : strtoll(lit, NULL, 10);
		}
	}
	if (r->kpaths || (r->jq_key && flags)) {
		/* a key that is not JSON is a string: its paths give null, $key the string */
		if (!km->key || json_scan(x->jk, r->kpaths, km->key, km->key_len, flags, x->kout, &kroot, err, sizeof(err))) {
			for (int i = 0; i < json_paths_count(r->kpaths); i++)
				x->kout[i] = (struct json_val){ JSON_MISSING, NULL, 0 };
			if (km->key && r->key_root_slot >= 0)
				x->kout[r->key_root_slot] = (struct json_val){ JSON_STRING, km->key, km->key_len };
		} else if (flags) {
			keep_spans(x, 1);
		}
	}

	if (set_op(x, r, km, m, &ji, err, sizeof(err))) {
		batch_set_error(b, m, EK_OP, "route '%s' op: %s", r->name, err);
		goto out;
	}
	if (m->op == OP_IGNORE) {
		m->outcome = OUT_IGNORED;
		rc = 0;
		goto out;
	}
	if ((m->op == OP_DELETE && !r->del.present) || (m->op == OP_UPSERT && !r->upsert.present)) {
		batch_set_error(b, m, EK_OP, "route '%s' has no %s statement", r->name, route_op_name(m->op));
		goto out;
	}
	if (km->value && vroot != JSON_OBJECT && r->value_fields) {
		/* paths into a scalar or an array would silently give null */
		batch_set_error(b, m, EK_EXTRACT, "value is a JSON %s, not an object", json_kind_name(vroot));
		goto out;
	}

	batch_alloc_vals(b, m, r->nparams);
	for (int i = 0; i < r->nparams; i++) {
		const struct route_param *pm = &r->params[i];
		struct bval *out = batch_val(b, m, i);
		const struct json_val *jv_out = NULL;
		const char *h;
		size_t hlen = 0;

		switch (pm->kind) {
		case PK_VALUE_PATH: jv_out = &x->vout[pm->slot]; break;
		case PK_KEY_PATH: jv_out = &x->kout[pm->slot]; break;
		case PK_META: store_meta(b, out, km, pm->meta); break;
		case PK_HEADER:
			h = header_last(km, pm->header, &hlen);
			if (h && store_text(b, out, h, hlen)) {
				batch_set_error(b, m, EK_EXTRACT, "route '%s' param '%s': header longer than 1 GB",
				                r->name, pm->name);
				goto out;
			}
			break;
		default: {
			jv v = run_checked(x, r, km, pm->jq, &ji, err, sizeof(err));

			if (!jv_is_valid(v)) {
				invalid_msg(v, err, sizeof(err));
				batch_set_error(b, m, EK_EXTRACT, "route '%s' param '%s': %s", r->name, pm->name, err);
				goto out;
			}
			if (store_jv(b, out, v, err, sizeof(err))) {
				batch_set_error(b, m, EK_EXTRACT, "route '%s' param '%s': %s", r->name, pm->name, err);
				goto out;
			}
		}
		}
		if (jv_out && store_json(b, out, jv_out)) {
			batch_set_error(b, m, EK_EXTRACT, "route '%s' param '%s': value longer than PostgreSQL's limit "
			                "of 1 GB", r->name, pm->name);
			goto out;
		}
		if (pm->required && out->off < 0) {
			batch_set_error(b, m, EK_REQUIRED, "required param '%s' is missing or null", pm->name);
			goto out;
		}
	}
	rc = 0;
out:
	jq_input_free(&ji);
	return rc;
}

int extract_view(struct extractor *x, struct routes *rs, struct batch *b, struct bmsg *m,
                 const struct extract_msg *km)
{
	const struct route *r = routes_match(rs, km->topic);

	if (!m->topic)
		m->topic = km->topic;
	if (!r) {
		m->route = NULL;
		batch_set_error(b, m, EK_NO_ROUTE, "no route for topic '%s'", km->topic);
		return -1;
	}
	return extract_routed(x, r, b, m, km);
}

int extract_message(struct extractor *x, struct routes *rs, struct batch *b, struct bmsg *m)
{
	const rd_kafka_message_t *rkm = m->rkm;
	rd_kafka_timestamp_type_t tt;
	rd_kafka_headers_t *hdrs = NULL;
	struct extract_msg km = {
		.topic = rd_kafka_topic_name(rkm->rkt), .partition = rkm->partition, .offset = rkm->offset,
		.timestamp = rd_kafka_message_timestamp(rkm, &tt),
		.key = rkm->key, .key_len = rkm->key_len, .value = rkm->payload, .value_len = rkm->len,
	};
	const struct route *r = routes_match(rs, km.topic);

	if (!r) {
		m->route = NULL;
		batch_set_error(b, m, EK_NO_ROUTE, "no route for topic '%s'", km.topic);
		return -1;
	}
	if (r->uses_headers && rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t sz;

		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
			if (i == x->caphdrs) {
				x->caphdrs = x->caphdrs ? x->caphdrs * 2 : 8;
				x->hdrs = xrealloc(x->hdrs, x->caphdrs * sizeof(*x->hdrs));
			}
			x->hdrs[i] = (struct extract_header){ name, val, sz };
			km.nheaders = i + 1;
		}
		km.headers = x->hdrs;
	}
	return extract_routed(x, r, b, m, &km);
}
