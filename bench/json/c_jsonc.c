/* c_jsonc.c — json-c 0.16: json_tokener_parse_ex (strict, UTF-8 checked),
 * json_object_object_get_ex.  Numbers as json-c prints them: a double
 * keeps the text it was parsed from, an integer is printed from its int64
 * or uint64. */
#include "cand.h"

#include <json.h>
#include <string.h>

int cand_jsonc(const char *json, size_t len, struct out *o)
{
	static json_tokener *tok;
	struct json_object *root, *v;
	size_t end;

	if (!tok) {
		tok = json_tokener_new();
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	json_tokener_reset(tok);
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || !json_object_is_type(root, json_type_object))
		goto bad;
	/* parse_ex stops after the first value: the rest must be white space */
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!strchr(" \t\r\n", json[end]))
			goto bad;
	for (int i = 0; i < o->nwant; i++) {
		size_t n;
		const char *s;

		if (!json_object_object_get_ex(root, o->want[i], &v))
			continue;
		switch (json_object_get_type(v)) {   /* json null is a NULL object */
		case json_type_null: out_put(o, i, K_NULL, "null", 4); break;
		case json_type_boolean:
			if (json_object_get_boolean(v))
				out_put(o, i, K_TRUE, "true", 4);
			else
				out_put(o, i, K_FALSE, "false", 5);
			break;
		case json_type_string:
			out_put(o, i, K_STRING, json_object_get_string(v), (size_t)json_object_get_string_len(v));
			break;
		default:
			s = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &n);
			out_put(o, i, json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)
			              ? K_NUMBER : K_JSON, s, n);
		}
	}
	json_object_put(root);
	return 0;
bad:
	json_object_put(root);
	return -1;
}
