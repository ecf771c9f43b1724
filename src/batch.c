/* batch.c — batch storage and per-key reduction; see batch.h. */
#include "util.h"
#include "batch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *outcome_name(enum outcome o)
{
	static const char *const names[] = { "pending", "applied", "ignored", "skipped",
		                             "dlq", "failed", "duplicate" };
	return names[o];
}

const char *err_kind_name(enum err_kind k)
{
	static const char *const names[] = { "none", "invalid_json", "no_route", "extract",
		                             "required", "op", "sql" };
	return names[k];
}

void batch_init(struct batch *b) { memset(b, 0, sizeof(*b)); }

void batch_reset(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->m[i].rkm)
			rd_kafka_message_destroy(b->m[i].rkm);
	b->n = 0;
	b->nvals = 0;
	b->alen = 0;
	b->bytes = 0;
}

void batch_free(struct batch *b)
{
	batch_reset(b);
	free(b->m);
	free(b->vals);
	free(b->arena);
	free(b->slots);
	memset(b, 0, sizeof(*b));
}

struct bmsg *batch_add(struct batch *b, rd_kafka_message_t *rkm)
{
	struct bmsg *m;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		b->m = xrealloc(b->m, b->cap * sizeof(*b->m));
	}
	m = &b->m[b->n++];
	memset(m, 0, sizeof(*m));
	m->rkm = rkm;
	m->topic = rkm ? rd_kafka_topic_name(rkm->rkt) : NULL;
	if (rkm)
		b->bytes += rkm->len + rkm->key_len;
	m->errmsg = -1;
	m->source_ts_ms = -1;
	return m;
}

int64_t batch_put(struct batch *b, const char *s, size_t n)
{
	int64_t off;

	if (b->alen + n + 1 > b->acap) {
		size_t cap = b->acap ? b->acap : 1 << 16;

		while (cap < b->alen + n + 1)
			cap *= 2;
		b->arena = xrealloc(b->arena, cap);
		b->acap = cap;
	}
	off = (int64_t)b->alen;
	memcpy(b->arena + b->alen, s, n);
	b->arena[b->alen + n] = '\0';
	b->alen += n + 1;
	return off;
}

void batch_alloc_vals(struct batch *b, struct bmsg *m, int nparams)
{
	if (b->nvals + (size_t)nparams > b->capvals) {
		b->capvals = (b->nvals + (size_t)nparams) * 2 + 1024;
		b->vals = xrealloc(b->vals, b->capvals * sizeof(*b->vals));
	}
	m->vals = b->nvals;
	for (int i = 0; i < nparams; i++)
		b->vals[b->nvals + (size_t)i] = (struct bval){ -1, 0 };
	b->nvals += (size_t)nparams;
}

void batch_set_error(struct batch *b, struct bmsg *m, enum err_kind k, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->err = k;
	m->errmsg = batch_put(b, msg, strlen(msg));
}

const char *batch_errmsg(const struct batch *b, const struct bmsg *m)
{
	return m->errmsg < 0 ? NULL : b->arena + m->errmsg;
}

/* FNV-1a over the route pointer, the topic and the key values
 * (length-prefixed, NULL distinct). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t key_hash(const struct batch *b, const struct bmsg *m)
{
	const struct route *r = m->route;
	uint64_t h = fnv(1469598103934665603ULL, &r, sizeof(r));

	if (m->topic)
		h = fnv(h, m->topic, strlen(m->topic) + 1);
	for (int k = 0; k < r->nkey; k++) {
		const struct bval *v = &b->vals[m->vals + (size_t)r->key[k]];
		int32_t len = v->off < 0 ? -1 : v->len;

		h = fnv(h, &len, sizeof(len));
		if (len > 0)
			h = fnv(h, b->arena + v->off, (size_t)len);
	}
	return h;
}

static int key_equal(const struct batch *b, const struct bmsg *x, const struct bmsg *y)
{
	const struct route *r = x->route;

	if (x->route != y->route)
		return 0;
	if (x->topic != y->topic && (!x->topic || !y->topic || strcmp(x->topic, y->topic)))
		return 0;
	for (int k = 0; k < r->nkey; k++) {
		const struct bval *a = &b->vals[x->vals + (size_t)r->key[k]];
		const struct bval *c = &b->vals[y->vals + (size_t)r->key[k]];

		if ((a->off < 0) != (c->off < 0))
			return 0;
		if (a->off >= 0 && (a->len != c->len || memcmp(b->arena + a->off, b->arena + c->off, (size_t)a->len)))
			return 0;
	}
	return 1;
}

size_t batch_reduce(struct batch *b)
{
	size_t need = 16, nsup = 0;

	while (need < b->n * 2)
		need *= 2;
	if (b->nslots < need) {
		free(b->slots);
		b->slots = xrealloc(NULL, need * sizeof(*b->slots));
		b->nslots = need;
	}
	memset(b->slots, 0xff, b->nslots * sizeof(*b->slots));
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		size_t s;

		m->superseded = 0;
		if (m->outcome != OUT_PENDING || m->err != EK_NONE || !m->route || !m->route->reduce ||
		    m->op == OP_IGNORE)
			continue;           /* a message in error has no (or partial) values */
		s = key_hash(b, m) & (b->nslots - 1);
		for (;;) {
			int32_t j = b->slots[s];

			if (j < 0) {
				b->slots[s] = (int32_t)i;
				break;
			}
			if (key_equal(b, &b->m[j], m)) {
				b->m[j].superseded = 1;      /* the later event wins */
				b->slots[s] = (int32_t)i;
				nsup++;
				break;
			}
			s = (s + 1) & (b->nslots - 1);
		}
	}
	return nsup;
}
