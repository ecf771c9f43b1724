/* Per-key reduction: the last event per key wins, order kept, NULL keys. */
#include "batch.h"

#include "config.h"
#include "extract.h"
#include "kmsg.h"
#include <unistd.h>

#include "tap.h"

#define TOPIC "t"

static struct extractor *x;

/* A message from its parts: topic, value (key NULL). */
static struct bmsg *view(struct routes *rs, struct batch *b, const char *topic, const char *value)
{
	struct bmsg *m = batch_add(b, NULL);
	struct extract_msg km = { .topic = topic, .offset = (int64_t)b->n, .timestamp = -1,
		                  .value = value, .value_len = strlen(value) };

	extract_view(x, rs, b, m, &km);
	return m;
}

int main(void)
{
	struct errlist errs = { 0 };
	char dir[] = "/tmp/cdcr-batch-XXXXXX", path[128];
	struct routes *rs;
	struct batch b;
	FILE *f;
	const char *vals[] = {
		"{\"id\":\"a\",\"v\":1}", "{\"id\":\"b\",\"v\":1}", "{\"id\":\"a\",\"v\":2}",
		"{\"id\":\"a\",\"__deleted\":\"true\"}", "{\"id\":\"c\",\"v\":1}", "{\"id\":\"b\",\"v\":2}",
		"{\"id\":\"ab\",\"v\":1}", "{\"id\":\"a\",\"v\":3}",
	};
	int want_sup[] = { 1, 1, 1, 1, 0, 0, 0, 0 };

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/r.route", dir);
	f = fopen(path, "w");
	fputs("topic = \"t\";\nparams = { id = \".id\"; v = \".v\"; };\nkey = [\"id\"];\n"
	      "upsert = \"SELECT :id, :v\";\ndelete = \"SELECT :id\";\n", f);
	fclose(f);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	ok(rs != NULL, "route loads");
	kmsg_init(TOPIC);
	batch_init(&b);
	x = extract_new();
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, vals[i], NULL, NULL)));
	is_int((long long)batch_reduce(&b), 4, "four events superseded");
	for (size_t i = 0; i < b.n; i++)
		is_int(b.m[i].superseded, want_sup[i], vals[i]);
	is_int(b.m[7].op, OP_UPSERT, "the last event of 'a' (an upsert after a delete) survives");

	/* a failed or ignored message never supersedes or is superseded */
	batch_reset(&b);
	extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, "{\"id\":\"x\",\"v\":1}", NULL, NULL)));
	extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, NULL, NULL, NULL)));
	b.m[1].outcome = OUT_SKIPPED;
	extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, "{\"v\":1}", NULL, NULL)));
	extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, "{\"v\":2}", NULL, NULL)));
	is_int((long long)batch_reduce(&b), 1, "NULL keys compare equal to each other only");
	ok(!b.m[0].superseded && b.m[2].superseded && !b.m[3].superseded, "reduction marks the earlier NULL key");

	/* many keys: hash table growth */
	batch_reset(&b);
	for (int i = 0; i < 600; i++) {
		char v[64];

		snprintf(v, sizeof(v), "{\"id\":\"k%d\",\"v\":%d}", i % 200, i);
		extract_message(x, rs, &b, batch_add(&b, kmsg(TOPIC, NULL, 0, v, NULL, NULL)));
	}
	is_int((long long)batch_reduce(&b), 400, "600 events over 200 keys reduce to 200");
	{
		int bad = 0;

		for (size_t i = 0; i < b.n; i++)
			bad += b.m[i].superseded != (i < 400);
		is_int(bad, 0, "exactly the last event of each key survives");
	}
	/* keys are their exact text: two ids above 2^53 that one double would merge stay apart */
	batch_reset(&b);
	view(rs, &b, TOPIC, "{\"id\":9007199254740993,\"v\":1}");
	view(rs, &b, TOPIC, "{\"id\":9007199254740992,\"v\":2}");
	view(rs, &b, TOPIC, "{\"id\":1152921504606846977,\"v\":3}");
	view(rs, &b, TOPIC, "{\"id\":1152921504606846976,\"v\":4}");
	is_int((long long)batch_reduce(&b), 0, "ids 2^53+1 / 2^53 and 2^60+1 / 2^60 are four keys");
	routes_free(&rs);
	unlink(path);

	/* a regex route over two topics: the same id in each is two keys */
	f = fopen(path, "w");
	fputs("topic_regex = \"cdc\\\\.public\\\\..*\";\nparams = { id = \".id\"; v = \".v\"; };\nkey = [\"id\"];\n"
	      "upsert = \"SELECT :id, :v\";\ndelete = \"SELECT :id\";\n", f);
	fclose(f);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	ok(rs != NULL, "regex route loads");
	batch_reset(&b);
	view(rs, &b, "cdc.public.a", "{\"id\":1,\"v\":1}");
	view(rs, &b, "cdc.public.b", "{\"id\":1,\"v\":2}");
	view(rs, &b, "cdc.public.a", "{\"id\":1,\"v\":3}");
	is_int((long long)batch_reduce(&b), 1, "id 1 of cdc.public.a and of cdc.public.b are two keys");
	ok(b.m[0].superseded && !b.m[1].superseded && !b.m[2].superseded, "only a's earlier event is superseded");

	batch_free(&b);
	extract_free(&x);
	routes_free(&rs);
	kmsg_done();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
