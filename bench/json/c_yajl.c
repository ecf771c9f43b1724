/* c_yajl.c — yajl 2.1 SAX: callbacks for the top-level fields, numbers as
 * their literal text (yajl_number), a nested object or array as the slice of
 * the input it spans (yajl_get_bytes_consumed is the offset just after the
 * token being reported). */
#include "cand.h"

#include <yajl/yajl_parse.h>

struct ys {
	struct out *o;
	yajl_handle h;
	const char *json;
	int depth;                  /* 1 inside the top-level object */
	int cur;                    /* wanted index of the current top-level key, or -1 */
	size_t start;               /* where the wanted nested value began */
};

static int scalar(void *c, int kind, const char *p, size_t n)
{
	struct ys *s = c;

	if (s->depth == 0)
		return 0;               /* the top level must be an object */
	if (s->depth == 1 && s->cur >= 0)
		out_put(s->o, s->cur, kind, p, n);
	return 1;
}

static int y_null(void *c) { return scalar(c, K_NULL, "null", 4); }
static int y_bool(void *c, int b) { return b ? scalar(c, K_TRUE, "true", 4) : scalar(c, K_FALSE, "false", 5); }
static int y_number(void *c, const char *p, size_t n) { return scalar(c, K_NUMBER, p, n); }
static int y_string(void *c, const unsigned char *p, size_t n) { return scalar(c, K_STRING, (const char *)p, n); }

static int y_key(void *c, const unsigned char *p, size_t n)
{
	struct ys *s = c;

	if (s->depth == 1)
		s->cur = out_want(s->o, (const char *)p, n);
	return 1;
}

static int y_start(void *c, int is_map)
{
	struct ys *s = c;

	if (s->depth == 0 && !is_map)
		return 0;
	if (++s->depth == 2 && s->cur >= 0)
		s->start = yajl_get_bytes_consumed(s->h) - 1;
	return 1;
}

static int y_end(void *c)
{
	struct ys *s = c;

	if (s->depth-- == 2 && s->cur >= 0)
		out_put(s->o, s->cur, K_JSON, s->json + s->start, yajl_get_bytes_consumed(s->h) - s->start);
	return 1;
}

static int y_start_map(void *c) { return y_start(c, 1); }
static int y_start_array(void *c) { return y_start(c, 0); }

static const yajl_callbacks cb = {
	.yajl_null = y_null, .yajl_boolean = y_bool, .yajl_number = y_number,
	.yajl_string = y_string, .yajl_start_map = y_start_map, .yajl_map_key = y_key,
	.yajl_end_map = y_end, .yajl_start_array = y_start_array, .yajl_end_array = y_end,
};

int cand_yajl(const char *json, size_t len, struct out *o)
{
	struct ys s = { .o = o, .json = json, .cur = -1 };
	int ok;

	/* a handle cannot be reused after yajl_complete_parse */
	s.h = yajl_alloc(&cb, NULL, &s);
	ok = yajl_parse(s.h, (const unsigned char *)json, len) == yajl_status_ok
	     && yajl_complete_parse(s.h) == yajl_status_ok;
	yajl_free(s.h);
	return ok ? 0 : -1;
}
