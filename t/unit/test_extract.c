/* Extraction: op detection, parameter conversion, $key/$meta, data errors. */
#include "extract.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "kmsg.h"
#include "tap.h"

#define TOPIC "cdc.public.customer"

static struct routes *load(const char *text)
{
	char dir[] = "/tmp/cdcr-extract-XXXXXX", path[128];
	struct errlist errs = { 0 };
	struct routes *rs;
	FILE *f;

	if (!mkdtemp(dir))
		kmsg_die("mkdtemp", "failed");
	snprintf(path, sizeof(path), "%s/r.route", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	for (size_t i = 0; i < errs.n; i++)
		diag("%s", errs.v[i]);
	errlist_free(&errs);
	unlink(path);
	rmdir(dir);
	return rs;
}

static const char *val(struct batch *b, struct bmsg *m, int i)
{
	struct bval *v = batch_val(b, m, i);

	return v->off < 0 ? NULL : batch_str(b, v->off);
}

static struct extractor *x;

static struct bmsg *run(struct routes *rs, struct batch *b, const char *key, const char *value, int *rc)
{
	struct bmsg *m = batch_add(b, kmsg(TOPIC, key, key ? strlen(key) : 0, value, "traceparent", "00-x"));

	*rc = extract_message(x, rs, b, m);
	return m;
}

int main(void)
{
	struct batch b;
	struct bmsg *m;
	int rc;
	struct routes *rs, *rj;

	kmsg_init(TOPIC);
	batch_init(&b);
	x = extract_new();
	rs = load("topic = \"" TOPIC "\";\n"
	          "params = { id = \".id\"; email = \".email\"; n = \".n\"; flag = \".flag\"; obj = \".obj\";"
	          "           deep = \".a.b\"; ts = \".__source_ts_ms\"; };\n"
	          "required = [ \"id\" ];\n key = [ \"id\" ];\n"
	          "upsert = \"SELECT :id, :email, :n, :flag, :obj, :deep, :ts\";\n"
	          "delete = \"SELECT :id\";\n");
	ok(rs != NULL, "route loads");

	m = run(rs, &b, "{\"id\":\"k1\"}",
	        "{\"id\":\"k1\",\"email\":\"a@x\",\"n\":42,\"flag\":true,\"obj\":{\"z\":[1,2]},"
	        "\"a\":{\"b\":\"deep\"},\"__deleted\":\"false\",\"__source_ts_ms\":1714564800123}", &rc);
	is_int(rc, 0, "upsert extracts");
	is_int(m->op, OP_UPSERT, "__deleted false is an upsert");
	is_str(val(&b, m, 0), "k1", "string as text");
	is_str(val(&b, m, 2), "42", "integer without exponent");
	is_str(val(&b, m, 3), "true", "boolean as text");
	is_str(val(&b, m, 4), "{\"z\":[1,2]}", "object as compact JSON");
	is_str(val(&b, m, 5), "deep", "nested plain path");
	is_str(val(&b, m, 6), "1714564800123", "large integer exact");
	is_int(m->source_ts_ms, 1714564800123LL, "source timestamp taken");

	m = run(rs, &b, "{\"id\":\"k1\"}", "{\"id\":\"k1\",\"email\":null,\"__deleted\":\"true\"}", &rc);
	is_int(m->op, OP_DELETE, "__deleted true is a delete");
	ok(val(&b, m, 1) == NULL, "JSON null is SQL NULL");
	ok(val(&b, m, 2) == NULL, "missing field is SQL NULL");

	m = run(rs, &b, "{\"id\":\"k1\"}", NULL, &rc);
	is_int(rc, 0, "tombstone is not an error");
	is_int(m->op, OP_IGNORE, "tombstone is ignored");
	is_int(m->outcome, OUT_IGNORED, "tombstone outcome ignored");

	m = run(rs, &b, NULL, "{\"id\":1.5}", &rc);
	is_str(val(&b, m, 0), "1.5", "fraction kept");

	m = run(rs, &b, NULL, "{\"id\": ", &rc);
	ok(rc == -1 && m->err == EK_INVALID_JSON, "malformed JSON is a data error");
	ok(strstr(batch_errmsg(&b, m), "invalid JSON") != NULL, "with a readable reason: %s", batch_errmsg(&b, m));

	m = run(rs, &b, NULL, "[1,2,3]", &rc);
	ok(rc == -1 && m->err == EK_EXTRACT, "a non-object value is a data error");

	m = run(rs, &b, NULL, "{\"email\":\"x\"}", &rc);
	ok(rc == -1 && m->err == EK_REQUIRED, "missing required param is a data error");

	{
		char deep[4000];
		size_t n = 0;

		for (int i = 0; i < 1000; i++)
			deep[n++] = '[';
		deep[n] = '\0';
		m = run(rs, &b, NULL, deep, &rc);
		ok(rc == -1 && m->err == EK_INVALID_JSON, "deeply nested document refused, no crash");
	}
	{
		/* a 2 MB field and a 5,000-key object: extracted, nothing truncated */
		size_t big = 2u << 20, o = 0;
		char *v = malloc(big + 200000);

		o += (size_t)sprintf(v, "{\"id\":\"big\",\"email\":\"");
		memset(v + o, 'x', big);
		o += big;
		o += (size_t)sprintf(v + o, "\"");
		for (int i = 0; i < 5000; i++)
			o += (size_t)sprintf(v + o, ",\"f%d\":%d", i, i);
		sprintf(v + o, "}");
		m = run(rs, &b, NULL, v, &rc);
		ok(rc == 0 && batch_val(&b, m, 1)->len == (int32_t)big, "huge value: a 2 MB field extracted whole");
		free(v);
	}
	{
		char bin[] = { 'k', 0, (char)0xff, 'z' };
		struct bmsg *mb = batch_add(&b, kmsg(TOPIC, bin, sizeof(bin), "{\"id\":\"b\"}", NULL, NULL));

		is_int(extract_message(x, rs, &b, mb), 0, "binary key does not disturb plain paths");
	}

	rj = load("topic_regex = \"^cdc\\\\.public\\\\..*\";\n"
	          "params = { k = \"$key.id\"; part = \"$meta.partition\"; off = \"$meta.offset\";"
	          "           t = \"$meta.topic\"; h = \"$meta.headers.traceparent\"; up = \".email | ascii_upcase\";"
	          "           whole = \"$key\"; bad = \".email | tonumber? // \\\"nan\\\"\"; };\n"
	          "op = \"if .op == \\\"x\\\" then \\\"ignore\\\" else \\\"upsert\\\" end\";\n"
	          "upsert = \"SELECT :k, :part, :off, :t, :h, :up, :whole, :bad\";\n");
	ok(rj != NULL, "jq route with topic_regex loads");
	m = run(rj, &b, "{\"id\":\"kk\"}", "{\"email\":\"ann@x\"}", &rc);
	is_int(rc, 0, "jq params extract");
	is_str(val(&b, m, 0), "kk", "$key.id");
	is_str(val(&b, m, 1), "0", "$meta.partition");
	ok(val(&b, m, 2) && atoll(val(&b, m, 2)) == m->rkm->offset, "$meta.offset is the message offset");
	is_str(val(&b, m, 3), TOPIC, "$meta.topic");
	is_str(val(&b, m, 4), "00-x", "$meta.headers");
	is_str(val(&b, m, 5), "ANN@X", "a jq program");
	is_str(val(&b, m, 6), "{\"id\":\"kk\"}", "$key whole, as JSON");
	is_str(val(&b, m, 7), "nan", "jq alternative operator");
	m = run(rj, &b, "plain-key", "{\"op\":\"x\"}", &rc);
	is_int(m->op, OP_IGNORE, "op expression can ignore");
	m = run(rj, &b, "plain-key", "{\"email\":\"e\"}", &rc);
	is_str(val(&b, m, 6), "plain-key", "a non-JSON key is a string");
	ok(val(&b, m, 0) == NULL, "$key.id of a string key is NULL");
	{
		struct routes *rbad = load("topic = \"" TOPIC "\";\nparams = { x = \".a | error(\\\"boom\\\")\"; };\n"
		                           "upsert = \"SELECT :x\";\n");

		m = run(rbad, &b, NULL, "{\"a\":1}", &rc);
		ok(rc == -1 && m->err == EK_EXTRACT && strstr(batch_errmsg(&b, m), "boom"),
		   "a jq runtime error is a data error: %s", batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "");
		routes_free(&rbad);
	}
	{
		struct routes *rop = load("topic = \"" TOPIC "\";\nparams = { x = \".a\"; };\nop = \".a\";\n"
		                          "upsert = \"SELECT :x\";\n");

		m = run(rop, &b, NULL, "{\"a\":\"merge\"}", &rc);
		ok(rc == -1 && m->err == EK_OP, "an op other than upsert/delete/ignore is a data error");
		routes_free(&rop);
	}
	{
		struct bmsg *mo = batch_add(&b, kmsg(TOPIC, NULL, 0, "{}", NULL, NULL));
		struct routes *none = load("topic = \"other\";\nparams = { x = \".a\"; };\nupsert = \"SELECT :x\";\n");

		ok(extract_message(x, none, &b, mo) == -1 && mo->err == EK_NO_ROUTE, "no route is a data error");
		routes_free(&none);
	}

	{
		/* numbers reach SQL as their literal text, whatever their size */
		struct routes *rn = load("topic = \"" TOPIC "\";\n"
		                         "params = { a = \".a\"; b = \".b\"; c = \".c\"; d = \".d\"; e = \".e\"; f = \".f\";"
		                         " g = \".g\"; h = \".g2.h\"; k = \"$key.id\"; kw = \"$key\"; all = \".\";"
		                         " hd = \"$meta.headers.traceparent\"; };\n"
		                         "upsert = \"SELECT :a, :b, :c, :d, :e, :f, :g, :h, :k, :kw, :all, :hd\";\n");
		const char *v = "{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":9007199254740993,"
		                "\"d\":123456789012345678901234567890.123,\"e\":1e-7,\"f\":-0.0,"
		                "\"g\":[9007199254740993, {\"h\":1.10}],\"g2\":{\"h\":1E+2}}";

		m = run(rn, &b, "{\"id\": 1152921504606846977}", v, &rc);
		is_int(rc, 0, "edge numbers extract");
		is_str(val(&b, m, 0), "9223372036854775807", "int64 max kept");
		is_str(val(&b, m, 1), "-9223372036854775808", "int64 min kept");
		is_str(val(&b, m, 2), "9007199254740993", "2^53 + 1 kept (a double would give ...992)");
		is_str(val(&b, m, 3), "123456789012345678901234567890.123", "33-digit numeric kept");
		is_str(val(&b, m, 4), "1e-7", "exponent form kept");
		is_str(val(&b, m, 5), "-0.0", "negative zero kept");
		is_str(val(&b, m, 6), "[9007199254740993,{\"h\":1.10}]", "array as compact JSON, numbers literal");
		is_str(val(&b, m, 7), "1E+2", "nested path, literal");
		is_str(val(&b, m, 8), "1152921504606846977", "$key.id above 2^53 kept");
		is_str(val(&b, m, 9), "{\"id\":1152921504606846977}", "$key whole as compact JSON, literal");
		is_str(val(&b, m, 10), "{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":9007199254740993,"
		       "\"d\":123456789012345678901234567890.123,\"e\":1e-7,\"f\":-0.0,"
		       "\"g\":[9007199254740993,{\"h\":1.10}],\"g2\":{\"h\":1E+2}}", "the whole value (.), compact, literal");
		is_str(val(&b, m, 11), "00-x", "$meta.headers.NAME read without jq");
		m = run(rn, &b, NULL, "{\"a\":\"first\",\"a\":\"last\",\"g2\":{\"h\":1},\"g2\":{\"z\":2}}", &rc);
		is_str(val(&b, m, 0), "last", "a repeated key: the last one counts (as in jq)");
		ok(val(&b, m, 7) == NULL, "a repeated object replaces the first one's fields");
		routes_free(&rn);
	}
	{
		/* jq programs: exact results pass, results that depend on lost digits are refused */
		struct routes *rq = load("name = \"nums\";\ntopic = \"" TOPIC "\";\n"
		                         "params = { plus = \".id + 0\"; str = \".id | tostring\"; low = \".email | ascii_downcase\";"
		                         " tenth = \".x / 10\"; three = \".y * 3\"; obj = \"{v: .id}\"; };\n"
		                         "upsert = \"SELECT :plus, :str, :low, :tenth, :three, :obj\";\n");
		const char *p;

		m = run(rq, &b, NULL, "{\"id\":7,\"email\":\"A@X\",\"x\":1,\"y\":1.1}", &rc);
		ok(rc == 0, "jq over exact numbers: %s", batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "ok");
		is_str(val(&b, m, 0), "7", "integer result");
		is_str(val(&b, m, 3), "0.1", "0.1 in its shortest exact form");
		is_str(val(&b, m, 4), "3.3000000000000003", "a computed double in its shortest exact form");
		is_str(val(&b, m, 5), "{\"v\":7}", "object result");
		m = run(rq, &b, NULL, "{\"id\":9007199254740993,\"email\":\"A@X\",\"x\":1,\"y\":1}", &rc);
		p = batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "";
		ok(rc == -1 && m->err == EK_EXTRACT, "a jq result that depends on a number above 2^53 is a data error");
		ok(strstr(p, "route 'nums'") && strstr(p, "param 'plus'") && strstr(p, "9007199254740993"),
		   "naming the route, the param and the value: %s", p);
		{
			struct routes *rs2 = load("name = \"s\";\ntopic = \"" TOPIC "\";\n"
			                          "params = { str = \".id | tostring\"; };\nupsert = \"SELECT :str\";\n");
			struct routes *rs3 = load("name = \"l\";\ntopic = \"" TOPIC "\";\n"
			                          "params = { id = \".id\"; low = \".email | ascii_downcase\"; };\n"
			                          "upsert = \"SELECT :id, :low\";\n");
			struct routes *rs4 = load("name = \"b\";\ntopic = \"" TOPIC "\";\n"
			                          "params = { big = \"pow(2; 60)\"; };\nupsert = \"SELECT :big\";\n");
			struct routes *rs5 = load("name = \"o\";\ntopic = \"" TOPIC "\";\n"
			                          "params = { obj = \"{v: .id}\"; };\nupsert = \"SELECT :obj\";\n");
			struct routes *rs6 = load("name = \"k\";\ntopic = \"" TOPIC "\";\n"
			                          "params = { k = \"$key | .id + 1\"; };\nupsert = \"SELECT :k\";\n");

			m = run(rs2, &b, NULL, "{\"id\":9007199254740993}", &rc);
			ok(rc == -1 && m->err == EK_EXTRACT, "tostring of a number above 2^53 is refused too");
			m = run(rs3, &b, NULL, "{\"id\":9007199254740993,\"email\":\"A@X\"}", &rc);
			is_int(rc, 0, "a program that does not read the big number is fine beside it");
			is_str(val(&b, m, 0), "9007199254740993", "the big number itself by its plain path");
			is_str(val(&b, m, 1), "a@x", "and the program's result");
			m = run(rs4, &b, NULL, "{}", &rc);
			ok(rc == -1 && strstr(batch_errmsg(&b, m), "1152921504606846976"),
			   "a computed integer of 2^53 or more is refused: %s", batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "");
			m = run(rs5, &b, NULL, "{\"id\":12345678901234567890}", &rc);
			ok(rc == -1 && m->err == EK_EXTRACT, "an object result holding a lost number is refused");
			m = run(rs6, &b, "{\"id\":9007199254740993}", "{}", &rc);
			ok(rc == -1 && strstr(batch_errmsg(&b, m), "(key)"), "a lost number in the key is found too: %s",
			   batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "");
			m = run(rs6, &b, "{\"id\":41}", "{}", &rc);
			is_str(val(&b, m, 0), "42", "and an exact key number computes");
			routes_free(&rs2);
			routes_free(&rs3);
			routes_free(&rs4);
			routes_free(&rs5);
			routes_free(&rs6);
		}
		routes_free(&rq);
	}

	/* which number literals a double holds exactly, exponents of any size
	 * (an exponent beyond a long once overflowed: found by t/fuzz/fuzz_extract) */
	{
		static const struct { const char *lit; int exact; } nums[] = {
			{ "0", 1 }, { "-0.0", 1 }, { "0e99999999999999999999999999", 1 }, { "1.5", 1 },
			{ "9007199254740992", 1 }, { "9007199254740993", 0 }, { "1e400", 0 }, { "1e-400", 0 },
			{ "1e23456789012345678901234567894", 0 }, { "-1e-23456789012345678901234567894", 0 },
			{ "123456789012345.5", 0 }, { "1e22", 1 },
		};

		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
			ok(json_number_exact(nums[i].lit, strlen(nums[i].lit)) == nums[i].exact, "%s is %sexact as a double",
			   nums[i].lit, nums[i].exact ? "" : "not ");
	}

	batch_free(&b);
	extract_free(&x);
	routes_free(&rs);
	routes_free(&rj);
	kmsg_done();
	return done_testing();
}
