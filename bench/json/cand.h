/* cand.h — the interface every JSON candidate implements (bench/json). */
#ifndef CAND_H
#define CAND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a wanted top-level field held. */
enum kind { K_MISSING, K_NULL, K_FALSE, K_TRUE, K_NUMBER, K_STRING, K_JSON };

struct fval {
	int kind;
	size_t off, len;            /* text in out.buf: unescaped string, number text, JSON text */
};

/* One message's wanted fields.  The caller sets want/nwant and clears the
 * fields (out_reset); a candidate copies each wanted value's text into buf,
 * as cdcrouter copies it into its batch (batch_put). */
struct out {
	const char *const *want;
	size_t wlen[16];            /* strlen of each want, computed once */
	int nwant;
	struct fval v[16];
	char *buf;
	size_t used, cap;
};

void out_reset(struct out *o);
void out_put(struct out *o, int i, int kind, const char *p, size_t n);
int out_want(const struct out *o, const char *k, size_t n);   /* index in want, or -1 */

/* Parse one JSON text (not NUL-terminated) whose top level must be an
 * object; fill o with the wanted fields.  0, or -1 if the text is not valid
 * JSON or not an object. */
typedef int (*cand_fn)(const char *json, size_t len, struct out *o);

int cand_jq(const char *json, size_t len, struct out *o);
int cand_simdjson(const char *json, size_t len, struct out *o);          /* built for x86-64 */
int cand_simdjson_haswell(const char *json, size_t len, struct out *o);  /* built -march=haswell */
int cand_yajl(const char *json, size_t len, struct out *o);
int cand_jansson(const char *json, size_t len, struct out *o);
int cand_jsonc(const char *json, size_t len, struct out *o);

const char *simdjson_impl(void);          /* runtime-selected stage-1 kernel */
const char *simdjson_builtin(void);       /* the kernel this On-Demand code was compiled for */
const char *simdjson_haswell_builtin(void);

#ifdef __cplusplus
}
#endif

#endif
