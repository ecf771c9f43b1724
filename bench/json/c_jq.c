/* c_jq.c — the baseline: what cdcrouter does today (src/extract.c):
 * jv_parse_sized, then jv_object_get per wanted field, numbers formatted
 * from their double as extract_store_value does. */
#include "cand.h"

#include <jv.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void store(struct out *o, int i, jv v)
{
	char num[64];

	switch (jv_get_kind(v)) {
	case JV_KIND_INVALID: break;                 /* missing */
	case JV_KIND_NULL: out_put(o, i, K_NULL, "null", 4); break;
	case JV_KIND_TRUE: out_put(o, i, K_TRUE, "true", 4); break;
	case JV_KIND_FALSE: out_put(o, i, K_FALSE, "false", 5); break;
	case JV_KIND_STRING:
		out_put(o, i, K_STRING, jv_string_value(v), (size_t)jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_NUMBER: {
		double d = jv_number_value(v);

		if (d == floor(d) && fabs(d) < 9.2e18)
			snprintf(num, sizeof(num), "%.0f", d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		out_put(o, i, K_NUMBER, num, strlen(num));
		break;
	}
	default: {
		jv d = jv_dump_string(jv_copy(v), 0);

		out_put(o, i, K_JSON, jv_string_value(d), (size_t)jv_string_length_bytes(jv_copy(d)));
		jv_free(d);
	}
	}
	jv_free(v);
}

int cand_jq(const char *json, size_t len, struct out *o)
{
	/* cdcrouter builds its path keys once, when it loads the route */
	static const char *const *cached;
	static jv keys[16];
	jv v;

	if (o->want != cached) {
		for (int i = 0; cached && i < 16; i++)
			jv_free(keys[i]);
		for (int i = 0; i < 16; i++)
			keys[i] = i < o->nwant ? jv_string(o->want[i]) : jv_null();
		cached = o->want;
	}
	v = jv_parse_sized(json, (int)len);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		return -1;
	}
	for (int i = 0; i < o->nwant; i++)
		store(o, i, jv_object_get(jv_copy(v), jv_copy(keys[i])));
	jv_free(v);
	return 0;
}
