/* bench.c — JSON candidates for cdcrouter's extraction, side by side on the
 * same messages (bench/json/run drives it; see RESULTS.md).
 *
 *   jsonbench time EVENTS [PASSES]      ns per message, best of PASSES
 *   jsonbench count EVENTS CAND WHAT N  N messages inside callgrind's
 *                                       collection (WHAT: value | key)
 *   jsonbench edge                      literal numbers, malformed input
 *
 * EVENTS is t/lib/gen.py's output, "key<TAB>value" lines; tombstones (empty
 * values) are skipped. */
#define _GNU_SOURCE
#include "cand.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>

static const struct {
	const char *name;
	cand_fn fn;
} cands[] = {
	{ "jq", cand_jq },
	{ "simdjson", cand_simdjson },
	{ "simdjson-haswell", cand_simdjson_haswell },
	{ "yajl", cand_yajl },
	{ "jansson", cand_jansson },
	{ "json-c", cand_jsonc },
};
#define NCANDS (int)(sizeof(cands) / sizeof(cands[0]))

/* the fields routes/customer.route needs, and what cdcrouter reads itself */
static const char *const value_want[] = { "id", "email", "status", "updated_at", "__deleted", "__source_ts_ms" };
static const char *const key_want[] = { "id" };

void out_reset(struct out *o)
{
	o->used = 0;
	for (int i = 0; i < o->nwant; i++)
		o->v[i].kind = K_MISSING;
}

void out_put(struct out *o, int i, int kind, const char *p, size_t n)
{
	if (o->used + n > o->cap) {
		o->cap = 2 * (o->used + n);
		if (!(o->buf = realloc(o->buf, o->cap)))
			abort();
	}
	memcpy(o->buf + o->used, p, n);
	o->v[i] = (struct fval){ kind, o->used, n };
	o->used += n;
}

int out_want(const struct out *o, const char *k, size_t n)
{
	for (int i = 0; i < o->nwant; i++)
		if (o->wlen[i] == n && !memcmp(o->want[i], k, n))
			return i;
	return -1;
}

static void out_init(struct out *o, const char *const *want, int nwant)
{
	memset(o, 0, sizeof(*o));
	o->want = want;
	o->nwant = nwant;
	for (int i = 0; i < nwant; i++)
		o->wlen[i] = strlen(want[i]);
}

/* ---- the events ---- */

struct msg {
	const char *k, *v;
	size_t kn, vn;
};

static struct msg *msgs;
static size_t nmsgs;

static void load(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t n;

	if (!f) {
		perror(path);
		exit(2);
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		char *tab = memchr(line, '\t', (size_t)n), *copy;

		if (line[n - 1] == '\n')
			n--;
		if (!tab || tab + 1 == line + n)
			continue;                       /* tombstone */
		if (nmsgs == alloc && !(msgs = realloc(msgs, (alloc = alloc ? 2 * alloc : 65536) * sizeof(*msgs))))
			abort();
		if (!(copy = malloc((size_t)n)))    /* each message in its own buffer, as from librdkafka */
			abort();
		memcpy(copy, line, (size_t)n);
		msgs[nmsgs++] = (struct msg){ copy, copy + (tab - line) + 1, (size_t)(tab - line),
		                              (size_t)(line + n - tab - 1) };
	}
	free(line);
	fclose(f);
	if (!nmsgs) {
		fprintf(stderr, "%s: no messages\n", path);
		exit(2);
	}
}

/* Parse messages [0, n) (values or keys); a checksum of the fields taken. */
static uint64_t pass(cand_fn fn, size_t n, int key, struct out *o)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		out_reset(o);
		if (key ? fn(msgs[i].k, msgs[i].kn, o) : fn(msgs[i].v, msgs[i].vn, o)) {
			fprintf(stderr, "message %zu rejected\n", i);
			exit(1);
		}
		sum += o->used;
	}
	return sum;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every candidate must take the same fields as jq from every message. */
static void check_same(void)
{
	struct out ref, o;

	for (int key = 0; key <= 1; key++) {
		const char *const *want = key ? key_want : value_want;
		int nwant = key ? 1 : 6;

		out_init(&ref, want, nwant);
		out_init(&o, want, nwant);
		for (size_t i = 0; i < nmsgs; i++) {
			const char *j = key ? msgs[i].k : msgs[i].v;
			size_t jn = key ? msgs[i].kn : msgs[i].vn;

			out_reset(&ref);
			if (cand_jq(j, jn, &ref))
				goto bad;
			for (int c = 1; c < NCANDS; c++) {
				out_reset(&o);
				if (cands[c].fn(j, jn, &o))
					goto bad;
				for (int f = 0; f < nwant; f++)
					if (o.v[f].kind != ref.v[f].kind || o.v[f].len != ref.v[f].len
					    || memcmp(o.buf + o.v[f].off, ref.buf + ref.v[f].off, o.v[f].len)) {
						fprintf(stderr, "%s differs from jq on message %zu field %s\n",
						        cands[c].name, i, want[f]);
						exit(1);
					}
			}
			continue;
bad:
			fprintf(stderr, "message %zu (%s) rejected\n", i, key ? "key" : "value");
			exit(1);
		}
		free(ref.buf);
		free(o.buf);
	}
}

static int cmd_time(const char *path, int passes)
{
	uint64_t best[NCANDS][2], sum[NCANDS][2];
	struct out o[2];

	load(path);
	check_same();
	out_init(&o[0], value_want, 6);
	out_init(&o[1], key_want, 1);
	memset(best, 0xff, sizeof(best));
	/* candidates interleaved within each pass, so drift hits them alike */
	for (int p = 0; p < passes; p++)
		for (int c = 0; c < NCANDS; c++)
			for (int key = 0; key <= 1; key++) {
				uint64_t t0 = now_ns(), t;

				sum[c][key] = pass(cands[c].fn, nmsgs, key, &o[key]);
				t = now_ns() - t0;
				if (t < best[c][key])
					best[c][key] = t;
			}
	printf("messages\t%zu\n", nmsgs);
	printf("value_bytes\t%.1f\n", ({ double b = 0; for (size_t i = 0; i < nmsgs; i++) b += (double)msgs[i].vn; b / (double)nmsgs; }));
	printf("simdjson\tstage 1 %s, On-Demand builtin %s; -march=haswell build: builtin %s\n",
	       simdjson_impl(), simdjson_builtin(), simdjson_haswell_builtin());
	for (int c = 0; c < NCANDS; c++)
		printf("time\t%s\t%.1f\t%.1f\t%llu\n", cands[c].name, (double)best[c][0] / (double)nmsgs,
		       (double)best[c][1] / (double)nmsgs, (unsigned long long)(sum[c][0] + sum[c][1]));
	return 0;
}

static int cmd_count(const char *path, const char *name, const char *what, size_t n)
{
	int c, key = !strcmp(what, "key");
	struct out o;

	for (c = 0; c < NCANDS && strcmp(cands[c].name, name); c++)
		;
	if (c == NCANDS) {
		fprintf(stderr, "no candidate %s\n", name);
		return 2;
	}
	load(path);
	if (n > nmsgs)
		n = nmsgs;
	out_init(&o, key ? key_want : value_want, key ? 1 : 6);
	pass(cands[c].fn, n < 1000 ? n : 1000, key, &o);     /* warm: allocations, dispatch */
	CALLGRIND_TOGGLE_COLLECT;
	pass(cands[c].fn, n, key, &o);
	CALLGRIND_TOGGLE_COLLECT;
	printf("messages\t%zu\nsimdjson\tstage 1 %s\n", n, simdjson_impl());
	return 0;
}

/* ---- edge cases ---- */

static const char *const edge_want[] = { "a", "b", "c", "d", "e", "f", "g" };
static const char edge_doc[] =
	"{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":9007199254740993,"
	"\"d\":123456789012345678901234567890,\"e\":1e-7,\"f\":-0.0,"
	"\"g\":[9007199254740993,{\"h\":1.10}]}";
static const char *const edge_lit[] = { "9223372036854775807", "-9223372036854775808", "9007199254740993",
	"123456789012345678901234567890", "1e-7", "-0.0", "[9007199254740993,{\"h\":1.10}]" };

struct input {
	const char *name, *brief;   /* for the detail table, for the summary */
	char *text;
	size_t len;
};

static struct input mk(const char *name, const char *brief, const char *text)
{
	return (struct input){ name, brief, strdup(text), strlen(text) };
}

static struct input nested(const char *name, const char *brief, int depth, int closed)
{
	char *t = malloc(2 * (size_t)depth + 8);
	size_t n = 0;

	n += (size_t)sprintf(t, "{\"a\":");
	memset(t + n, '[', (size_t)depth), n += (size_t)depth;
	if (closed) {
		memset(t + n, ']', (size_t)depth), n += (size_t)depth;
		t[n++] = '}';
	}
	return (struct input){ name, brief, t, n };
}

static void md_cell(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '|')
			fputs("\\|", stdout);
		else
			putchar(s[i]);
}

static int cmd_edge(void)
{
	struct input bad[] = {
		mk("`{\"id\": \"x\", oops}`", "oops", "{\"id\": \"x\", oops}"),
		mk("`{\"a\":tru}`", "tru", "{\"a\":tru}"),
		mk("`{\"a\":1}x`", "1}x", "{\"a\":1}x"),
		mk("`{\"a\":01}`", "01", "{\"a\":01}"),
		mk("`{\"a\":\"\\x01\"}` (raw U+0001)", "raw U+0001", "{\"a\":\"\x01\"}"),
		mk("`{\"a\":\"\\xff\\xfe\"}` (invalid UTF-8)", "invalid UTF-8", "{\"a\":\"\xff\xfe\"}"),
		mk("`{\"a\":\"\\xc0\\xaf\"}` (overlong UTF-8)", "overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"),
		nested("`{\"a\":` + 1000 `[`, unclosed", "1000 [ unclosed", 1000, 0),
		mk("`{\"a\":1}}`", "1}}", "{\"a\":1}}"),
		mk("`{\"a\":1}{\"b\":2}`", "two documents", "{\"a\":1}{\"b\":2}"),
		mk("`{\"a\":nul}`", "nul", "{\"a\":nul}"),
		mk("`{\"a\":1.}`", "1.", "{\"a\":1.}"),
		mk("`{\"a\":\"\\u12\"}`", "\\u12", "{\"a\":\"\\u12\"}"),
	};
	struct input good[] = {
		nested("`{\"a\":` 1000 nested arrays `}`", "depth 1000", 1000, 1),
		nested("`{\"a\":` 100 nested arrays `}`", "depth 100", 100, 1),
		nested("`{\"a\":` 2000 nested arrays `}`", "depth 2000", 2000, 1),
		nested("`{\"a\":` 1,000,000 nested arrays `}` (2 MB)", "depth 1000000", 1000000, 1),
		mk("`{\"a\":1}` + `\\n\\t `", "trailing white space", "{\"a\":1}\n\t "),
		mk("`{\"a\":1e400}`", "1e400", "{\"a\":1e400}"),
		mk("`{\"a\":\"\\u0000\"}`", "\\u0000", "{\"a\":\"\\u0000\"}"),
		mk("`{\"a\":\"\\ud83d\\ude00\"}`", "surrogate pair", "{\"a\":\"\\ud83d\\ude00\"}"),
	};
	const int nbad = sizeof(bad) / sizeof(bad[0]), ngood = sizeof(good) / sizeof(good[0]);
	/* per candidate: literal numbers; malformed accepted; valid rejected */
	char lit[NCANDS][64], acc[NCANDS][256] = { { 0 } }, rej[NCANDS][256] = { { 0 } };
	int nrej[NCANDS] = { 0 };
	struct out o;

	out_init(&o, edge_want, 7);

	printf("### Numbers: `%s`\n\nWhat each candidate gives back for each field (**bold**: the literal text).\n\n", edge_doc);
	printf("| candidate |");
	for (int f = 0; f < 7; f++)
		printf(" %s |", edge_want[f]);
	printf("\n|---|");
	for (int f = 0; f < 7; f++)
		printf("---|");
	printf("\n");
	for (int c = 0; c < NCANDS; c++) {
		int kept = 0;

		out_reset(&o);
		printf("| %s |", cands[c].name);
		if (cands[c].fn(edge_doc, strlen(edge_doc), &o)) {
			for (int f = 0; f < 7; f++)
				printf(" rejected |");
			snprintf(lit[c], sizeof(lit[c]), "no (rejects the document)");
		} else {
			for (int f = 0; f < 7; f++) {
				const char *s = o.buf + o.v[f].off;
				int same = o.v[f].len == strlen(edge_lit[f]) && !memcmp(s, edge_lit[f], o.v[f].len);

				kept += same;
				printf(same ? " **`" : " `");
				md_cell(s, o.v[f].len);
				printf(same ? "`** |" : "` |");
			}
			snprintf(lit[c], sizeof(lit[c]), "%s (%d/7)", kept == 7 ? "yes" : "no", kept);
		}
		printf("\n");
	}

	printf("\n### Malformed input (must be rejected) and valid edge cases\n\n");
	printf("| input | JSON | short name |");
	for (int c = 0; c < NCANDS; c++)
		printf(" %s |", cands[c].name);
	printf("\n|---|---|---|");
	for (int c = 0; c < NCANDS; c++)
		printf("---|");
	printf("\n");
	for (int valid = 0; valid <= 1; valid++) {
		struct input *in = valid ? good : bad;
		int n = valid ? ngood : nbad;

		for (int i = 0; i < n; i++) {
			printf("| %s | %s | %s |", in[i].name, valid ? "valid" : "malformed", in[i].brief);
			for (int c = 0; c < NCANDS; c++) {
				int r;
				char *v = valid ? rej[c] : acc[c];

				out_reset(&o);
				r = cands[c].fn(in[i].text, in[i].len, &o) != 0;
				printf(" %s |", r ? "rejected" : "accepted");
				nrej[c] += r && !valid;
				if (r == valid)
					snprintf(v + strlen(v), 256 - strlen(v), "%s`%s`", *v ? ", " : "", in[i].brief);
			}
			printf("\n");
		}
	}
	printf("\n");
	for (int c = 0; c < NCANDS; c++)
		printf("verdict\t%s\t%s\t%d/%d%s%s%s\t%s\n", cands[c].name, lit[c], nrej[c], nbad,
		       *acc[c] ? " (accepts " : "", acc[c], *acc[c] ? ")" : "", *rej[c] ? rej[c] : "–");
	free(o.buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "time"))
		return cmd_time(argv[2], argc > 3 ? atoi(argv[3]) : 5);
	if (argc == 6 && !strcmp(argv[1], "count"))
		return cmd_count(argv[2], argv[3], argv[4], (size_t)atol(argv[5]));
	if (argc == 2 && !strcmp(argv[1], "edge"))
		return cmd_edge();
	fprintf(stderr, "usage: jsonbench time EVENTS [PASSES] | count EVENTS CAND value|key N | edge\n");
	return 2;
}
