/* otlpdec.h — for the unit tests that decode what cdcrouter encodes
 * (header-only): attribute lookups in decoded OTLP messages, byte compares,
 * a resource. */
#ifndef CDCR_T_OTLPDEC_H
#define CDCR_T_OTLPDEC_H

#include <string.h>

#include "otlp.h"
#include "otlp.pb-c.h"

static const Otlp__AnyValue *find_attr(Otlp__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i]->value;
	return NULL;
}

static const char *attr_s(Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Otlp__AnyValue *v = find_attr(kv, n, key);
	return v && v->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE ? v->string_value : NULL;
}

/* int value, or -12345 when absent or not an int */
static long long attr_i(Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Otlp__AnyValue *v = find_attr(kv, n, key);
	return v && v->value_case == OTLP__ANY_VALUE__VALUE_INT_VALUE ? v->int_value : -12345;
}

static int attr_b(Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Otlp__AnyValue *v = find_attr(kv, n, key);
	return v && v->value_case == OTLP__ANY_VALUE__VALUE_BOOL_VALUE ? v->bool_value : -1;
}

static int bytes_eq(ProtobufCBinaryData b, const uint8_t *p, size_t n)
{
	return b.len == n && memcmp(b.data, p, n) == 0;
}

static const struct otlp_attr res_attrs[] = {
	{ .key = "service.name", .type = OTLP_STR, .s = "cdcrouter" },
	{ .key = "service.instance.id", .type = OTLP_STR, .s = "i-1" },
};
static const struct otlp_resource res = { res_attrs, 2, "cdcrouter", "0.1.0" };

#endif
