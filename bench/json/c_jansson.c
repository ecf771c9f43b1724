/* c_jansson.c — jansson 2.14: json_loadb, json_object_get. */
#include "cand.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cand_jansson(const char *json, size_t len, struct out *o)
{
	json_error_t err;
	json_t *root = json_loadb(json, len, 0, &err);
	char num[64];

	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	for (int i = 0; i < o->nwant; i++) {
		json_t *v = json_object_get(root, o->want[i]);
		char *d;

		if (!v)
			continue;
		switch (json_typeof(v)) {
		case JSON_NULL: out_put(o, i, K_NULL, "null", 4); break;
		case JSON_TRUE: out_put(o, i, K_TRUE, "true", 4); break;
		case JSON_FALSE: out_put(o, i, K_FALSE, "false", 5); break;
		case JSON_STRING: out_put(o, i, K_STRING, json_string_value(v), json_string_length(v)); break;
		case JSON_INTEGER:
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			out_put(o, i, K_NUMBER, num, strlen(num));
			break;
		case JSON_REAL:
			snprintf(num, sizeof(num), "%.17g", json_real_value(v));
			out_put(o, i, K_NUMBER, num, strlen(num));
			break;
		default:
			d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			out_put(o, i, K_JSON, d, strlen(d));
			free(d);
		}
	}
	json_decref(root);
	return 0;
}
