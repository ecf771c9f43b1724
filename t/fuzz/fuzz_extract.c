/* libFuzzer target: message extraction (plain paths read by the simdjson
 * scanner, jq programs, $key, $meta, headers, the op rules) on arbitrary
 * keys, values and headers. The input is split at the first two NUL bytes:
 * key \0 value \0 header value (a missing part is absent: no key, a
 * tombstone, no header); the first byte picks the topic, so both routes and
 * the no-route path are reached. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "extract.h"
#include "route.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct routes *rs;
static struct extractor *x;

static const char plain[] =
	"name = \"plain\"; topic = \"cdc.public.t\"; table = \"public.t\";\n"
	"params = { id = \".id\"; n = \".n\"; a = \".a\"; o = \".o\"; k = \"$key.id\"; off = \"$meta.offset\";\n"
	"           h = \"$meta.headers.traceparent\"; ts = \".__source_ts_ms\"; };\n"
	"required = [ \"id\" ]; key = [ \"id\" ];\n"
	"upsert = \"INSERT INTO public.t VALUES (:id, :n, :a, :o, :k, :off, :h, :ts)\";\n"
	"delete = \"DELETE FROM public.t WHERE id = :id\";\n";
static const char jq[] =
	"name = \"jq\"; topic_regex = \"cdc\\\\.jq\\\\..*\"; table = \"public.j\";\n"
	"params = { s = \".a | map(tostring) | join(\\\",\\\")\"; n = \".n + 1\"; all = \".\"; };\n"
	"op = \"if . == null then \\\"delete\\\" elif .skip then \\\"ignore\\\" else \\\"upsert\\\" end\";\n"
	"upsert = \"INSERT INTO public.j VALUES (:s, :n, :all)\";\n"
	"delete = \"DELETE FROM public.j\";\n";

static void put(const char *dir, const char *name, const char *text)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (!(f = fopen(p, "w")))
		abort();
	fputs(text, f);
	fclose(f);
}

/* At exit, before LeakSanitizer's last look: a live jq_state holds its
 * stack by a one-past-the-end pointer, which LSan does not count as one. */
static void fin(void)
{
	extract_free(&x);
	routes_free(&rs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/cdcr-fuzz-extract-XXXXXX", p[128];
	struct errlist errs = { 0 };

	if (!mkdtemp(dir))
		abort();
	put(dir, "plain.route", plain);
	put(dir, "jq.route", jq);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "fuzz_extract: %s\n", errs.v[i]);
	if (!rs)
		abort();
	errlist_free(&errs);
	snprintf(p, sizeof(p), "%s/plain.route", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/jq.route", dir);
	unlink(p);
	rmdir(dir);
	x = extract_new();
	atexit(fin);
	return 0;
}

/* the next part of [*p, end) up to a NUL (NULL when none is left), copied
 * to its own allocation so an overread is seen */
static char *part(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *s = *p, *z;
	char *out;

	if (!s)
		return NULL;
	z = memchr(s, 0, (size_t)(end - s));
	*len = (size_t)((z ? z : end) - s);
	out = malloc(*len ? *len : 1);
	memcpy(out, s, *len);
	*p = z ? z + 1 : NULL;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *topics[] = { "cdc.public.t", "cdc.jq.x", "other" };
	const uint8_t *p = data + (size ? 1 : 0), *end = data + size;
	size_t klen = 0, vlen = 0, hlen = 0;
	char *key, *value, *hval;
	struct extract_header h = { "traceparent", NULL, 0 };
	struct extract_msg km = { 0 };
	struct batch b;
	struct bmsg *m;

	if (!size)
		return 0;
	key = part(&p, end, &klen);
	value = part(&p, end, &vlen);
	hval = part(&p, end, &hlen);
	h.value = hval;
	h.len = hlen;
	km.topic = topics[data[0] % 3];
	km.partition = 0;
	km.offset = data[0];
	km.timestamp = -1;
	km.key = key;
	km.key_len = klen;
	km.value = value;
	km.value_len = vlen;
	km.headers = hval ? &h : NULL;
	km.nheaders = hval ? 1 : 0;
	batch_init(&b);
	m = batch_add(&b, NULL);
	extract_view(x, rs, &b, m, &km);
	batch_reduce(&b);
	batch_free(&b);
	free(key);
	free(value);
	free(hval);
	return 0;
}
