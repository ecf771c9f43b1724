/* extract.c — parse once, extract parameters; see extract.h. */
#include "extract.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void extract_store_value(struct batch *b, struct bval *out, jv v)
{
	char num[64];

	switch (jv_get_kind(v)) {
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		out->off = -1;
		out->len = 0;
		break;
	case JV_KIND_STRING:
		out->len = jv_string_length_bytes(jv_copy(v));
		out->off = batch_put(b, jv_string_value(v), (size_t)out->len);
		break;
	case JV_KIND_NUMBER: {
		double d = jv_number_value(v);

		if (d == floor(d) && fabs(d) < 9.2e18)
			snprintf(num, sizeof(num), "%.0f", d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		out->len = (int32_t)strlen(num);
		out->off = batch_put(b, num, (size_t)out->len);
		break;
	}
	case JV_KIND_TRUE:
	case JV_KIND_FALSE: {
		const char *s = jv_get_kind(v) == JV_KIND_TRUE ? "true" : "false";

		out->len = (int32_t)strlen(s);
		out->off = batch_put(b, s, (size_t)out->len);
		break;
	}
	default: {                          /* object, array: compact JSON */
		jv d = jv_dump_string(jv_copy(v), 0);

		out->len = jv_string_length_bytes(jv_copy(d));
		out->off = batch_put(b, jv_string_value(d), (size_t)out->len);
		jv_free(d);
	}
	}
	jv_free(v);
}

/* Follow a plain path; a missing field or a non-object on the way gives null. */
static jv follow(jv root, const jv *path, int n)
{
	jv cur = jv_copy(root);

	for (int i = 0; i < n; i++) {
		if (jv_get_kind(cur) != JV_KIND_OBJECT) {
			jv_free(cur);
			return jv_null();
		}
		cur = jv_object_get(cur, jv_copy(path[i]));
		if (!jv_is_valid(cur)) {
			jv_free(cur);
			return jv_null();
		}
	}
	return cur;
}

static jv parse_key(const rd_kafka_message_t *rkm)
{
	jv k;

	if (!rkm->key)
		return jv_null();
	k = jv_parse_sized(rkm->key, (int)rkm->key_len);
	if (!jv_is_valid(k)) {
		jv_free(k);
		k = jv_string_sized(rkm->key, (int)rkm->key_len);   /* not JSON: the key as a string */
	}
	return k;
}

static jv build_meta(const rd_kafka_message_t *rkm)
{
	rd_kafka_headers_t *hdrs = NULL;
	jv meta = jv_object(), h = jv_object();
	rd_kafka_timestamp_type_t tt;
	int64_t ts = rd_kafka_message_timestamp(rkm, &tt);

	meta = jv_object_set(meta, jv_string("topic"), jv_string(rd_kafka_topic_name(rkm->rkt)));
	meta = jv_object_set(meta, jv_string("partition"), jv_number(rkm->partition));
	meta = jv_object_set(meta, jv_string("offset"), jv_number((double)rkm->offset));
	meta = jv_object_set(meta, jv_string("timestamp"), ts >= 0 ? jv_number((double)ts) : jv_null());
	if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t sz;

		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
			h = jv_object_set(h, jv_string(name), val ? jv_string_sized(val, (int)sz) : jv_null());
	}
	return jv_object_set(meta, jv_string("headers"), h);
}

static jv meta_field(const rd_kafka_message_t *rkm, enum meta_field f)
{
	rd_kafka_timestamp_type_t tt;
	int64_t ts;

	switch (f) {
	case MF_TOPIC: return jv_string(rd_kafka_topic_name(rkm->rkt));
	case MF_PARTITION: return jv_number(rkm->partition);
	case MF_OFFSET: return jv_number((double)rkm->offset);
	default:
		ts = rd_kafka_message_timestamp(rkm, &tt);
		return ts >= 0 ? jv_number((double)ts) : jv_null();
	}
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

static int invalid_msg(jv inv, char *buf, size_t len)
{
	jv msg = jv_invalid_get_msg(inv);

	if (jv_get_kind(msg) == JV_KIND_STRING)
		snprintf(buf, len, "%s", jv_string_value(msg));
	else {
		jv d = jv_dump_string(msg, 0);

		snprintf(buf, len, "%s", jv_string_value(d));
		jv_free(d);
		return 0;
	}
	jv_free(msg);
	return 0;
}

static enum route_op default_op(jv value)
{
	jv d;
	enum route_op op = OP_UPSERT;

	if (jv_get_kind(value) == JV_KIND_NULL)
		return OP_IGNORE;
	if (jv_get_kind(value) != JV_KIND_OBJECT)
		return OP_UPSERT;
	d = jv_object_get(jv_copy(value), jv_string("__deleted"));
	if (jv_get_kind(d) == JV_KIND_STRING && strcmp(jv_string_value(d), "true") == 0)
		op = OP_DELETE;
	else if (jv_get_kind(d) == JV_KIND_TRUE)
		op = OP_DELETE;
	jv_free(d);
	return op;
}

int extract_message(struct routes *rs, struct batch *b, struct bmsg *m)
{
	const rd_kafka_message_t *rkm = m->rkm;
	const struct route *r;
	jv value, input = jv_invalid(), key = jv_invalid();
	char err[512];
	int rc = -1;

	r = m->route = routes_match(rs, rd_kafka_topic_name(rkm->rkt));
	if (!r) {
		batch_set_error(b, m, EK_NO_ROUTE, "no route for topic '%s'", rd_kafka_topic_name(rkm->rkt));
		return -1;
	}
	if (!rkm->payload) {
		value = jv_null();
	} else {
		value = jv_parse_sized(rkm->payload, (int)rkm->len);
		if (!jv_is_valid(value)) {
			invalid_msg(value, err, sizeof(err));
			batch_set_error(b, m, EK_INVALID_JSON, "invalid JSON value: %s", err);
			return -1;
		}
	}
	if (jv_get_kind(value) == JV_KIND_OBJECT) {
		jv ts = jv_object_get(jv_copy(value), jv_string("__source_ts_ms"));

		if (jv_get_kind(ts) == JV_KIND_NUMBER)
			m->source_ts_ms = (int64_t)jv_number_value(ts);
		jv_free(ts);
	}
	if (r->uses_key || r->uses_jq) {
		key = parse_key(rkm);
		input = JV_ARRAY(jv_copy(key), r->uses_meta ? build_meta(rkm) : jv_null(), jv_copy(value));
	}

	/* the operation */
	if (r->op_jq) {
		jv op = run_jq(r->op_jq, jv_copy(input));

		if (jv_get_kind(op) == JV_KIND_STRING && !strcmp(jv_string_value(op), "upsert"))
			m->op = OP_UPSERT;
		else if (jv_get_kind(op) == JV_KIND_STRING && !strcmp(jv_string_value(op), "delete"))
			m->op = OP_DELETE;
		else if (jv_get_kind(op) == JV_KIND_STRING && !strcmp(jv_string_value(op), "ignore"))
			m->op = OP_IGNORE;
		else {
			if (!jv_is_valid(op))
				invalid_msg(jv_copy(op), err, sizeof(err));
			else
				snprintf(err, sizeof(err), "op expression gave %s, not \"upsert\", \"delete\" or \"ignore\"",
				         jv_kind_name(jv_get_kind(op)));
			jv_free(op);
			batch_set_error(b, m, EK_OP, "%s", err);
			goto out;
		}
		jv_free(op);
	} else {
		m->op = default_op(value);
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
	if (jv_get_kind(value) != JV_KIND_OBJECT && rkm->payload) {
		/* plain paths on a scalar or array would silently give null */
		for (int i = 0; i < r->nparams; i++) {
			if (r->params[i].kind == PK_VALUE_PATH) {
				batch_set_error(b, m, EK_EXTRACT, "value is a JSON %s, not an object",
				                jv_kind_name(jv_get_kind(value)));
				goto out;
			}
		}
	}

	/* the parameters */
	batch_alloc_vals(b, m, r->nparams);
	for (int i = 0; i < r->nparams; i++) {
		const struct route_param *pm = &r->params[i];
		jv v;

		switch (pm->kind) {
		case PK_VALUE_PATH: v = follow(value, pm->path, pm->npath); break;
		case PK_KEY_PATH: v = follow(key, pm->path, pm->npath); break;
		case PK_META: v = meta_field(rkm, pm->meta); break;
		default: v = run_jq(pm->jq, jv_copy(input)); break;
		}
		if (!jv_is_valid(v)) {
			invalid_msg(v, err, sizeof(err));
			batch_set_error(b, m, EK_EXTRACT, "param '%s': %s", pm->name, err);
			goto out;
		}
		if (pm->required && jv_get_kind(v) == JV_KIND_NULL) {
			jv_free(v);
			batch_set_error(b, m, EK_REQUIRED, "required param '%s' is missing or null", pm->name);
			goto out;
		}
		extract_store_value(b, batch_val(b, m, i), v);
	}
	rc = 0;
out:
	jv_free(value);
	jv_free(input);
	jv_free(key);
	return rc;
}
