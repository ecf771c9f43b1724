/* Configuration and route loading: every error reported with file:line,
 * drop-in order, environment overrides, topic matching. */
#include "config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static void clean(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s/conf.d/* %s/routes/* %s/main.conf", dir, dir, dir);
	if (system(cmd)) {}
}

static const char *good_route = "topic = \"t1\";\nparams = { id = \".id\"; };\nkey = [\"id\"];\n"
                                "upsert = \"INSERT INTO x VALUES (:id)\";\ndelete = \"DELETE FROM x WHERE id = :id\";\n";

/* Load; return the joined errors ("" if it loaded). */
static struct config *load(char *out, size_t len)
{
	struct errlist errs = { 0 };
	char p[128];
	struct config *c;

	snprintf(p, sizeof(p), "%s/main.conf", dir);
	c = config_load(p, &errs);
	out[0] = '\0';
	for (size_t i = 0; i < errs.n; i++) {
		strncat(out, errs.v[i], len - strlen(out) - 2);
		strcat(out, "\n");
	}
	errlist_free(&errs);
	return c;
}

static void expect_error(const char *main_conf, const char *route, const char *want, const char *label)
{
	char errs[4096];
	struct config *c;

	clean();
	put("main.conf", main_conf);
	if (route)
		put("routes/a.route", route);
	c = load(errs, sizeof(errs));
	ok(c == NULL && strstr(errs, want) != NULL, "%s", label);
	if (c || !strstr(errs, want))
		diag("want '%s' in: %s", want, errs);
	config_free(&c);
}

int main(void)
{
	char errs[4096], p[128];
	struct config *c;

	snprintf(dir, sizeof(dir), "/tmp/cdcr-route-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(p, sizeof(p), "%s/conf.d", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/routes", dir);
	mkdir(p, 0700);
	unsetenv("CDCROUTER_KAFKA_BROKERS");

	/* a good configuration, drop-ins in lexical order, env override */
	clean();
	put("main.conf", "kafka = { brokers = \"a:1\"; group_id = \"g\"; };\napply = { batch_size = 10; };\n");
	put("conf.d/20-b.conf", "apply = { batch_size = 30; };\n");
	put("conf.d/10-a.conf", "apply = { batch_size = 20; batch_wait_ms = 7; };\nkafka = { brokers = \"b:2\"; };\n");
	put("routes/a.route", good_route);
	setenv("CDCROUTER_KAFKA_BROKERS", "env:9", 1);
	c = load(errs, sizeof(errs));
	ok(c != NULL, "good configuration loads (%s)", errs);
	if (c) {
		is_int(c->batch_size, 30, "later drop-in wins");
		is_int(c->batch_wait_ms, 7, "earlier drop-in key kept");
		is_str(c->brokers, "env:9", "environment overrides files");
		is_str(c->group_id, "g", "main file key kept");
		is_int(c->policy, POLICY_SKIP, "default policy skip without a dead-letter topic");
		is_int((long long)c->routes->n, 1, "one route");
		is_str(c->routes->v[0].name, "a", "route name defaults to the file name");
		ok(c->routes->v[0].reduce, "reduce defaults on with a key");
		ok(routes_match(c->routes, "t1") == &c->routes->v[0], "exact topic matches");
		ok(routes_match(c->routes, "t2") == NULL, "other topic has no route");
	}
	config_free(&c);
	unsetenv("CDCROUTER_KAFKA_BROKERS");

	/* configuration errors, each with file:line */
	expect_error("kafka = { brokerz = \"x\"; };\n", good_route, "main.conf:1: unknown setting 'kafka.brokerz'",
	             "unknown key with file:line");
	expect_error("\n\napply = { batch_size = \"big\"; };\n", good_route,
	             "main.conf:3: apply.batch_size must be an integer", "wrong type with file:line");
	expect_error("apply = { batch_size = ; };\n", good_route, "main.conf:1:", "syntax error with file:line");
	expect_error("apply = { on_error = \"maybe\"; };\n", good_route, "apply.on_error must be dlq, skip or stop",
	             "bad policy");
	expect_error("apply = { on_error = \"dlq\"; };\n", good_route, "needs apply.dead_letter_topic",
	             "dlq without topic");
	expect_error("log = { level = \"loud\"; };\n", good_route, "log.level", "bad log level");
	expect_error("kafka = { properties = [ \"novalue\" ]; };\n", good_route, "not name=value", "bad property");

	/* route errors */
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nupsert = \"INSERT INTO x VALUES (:id, :nope)\";\n",
	             "a.route:3: upsert: placeholder ':nope' is not a param", "template names an undefined param");
	expect_error("", "topic = \"t\";\nparams = {\n id = \".id | \";\n};\nupsert = \"SELECT :id\";\n",
	             "a.route:3: param 'id': invalid jq expression", "invalid jq with line");
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nupsert = \"SELECT ':id\";\n",
	             "a.route:3: upsert: invalid SQL template: line 1: unterminated string", "invalid SQL template");
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nupsert = \"SELECT :id\";\nbogus = 1;\n",
	             "a.route:4: unknown route setting 'bogus'", "unknown route key");
	expect_error("", "params = { id = \".id\"; };\nupsert = \"SELECT :id\";\n",
	             "exactly one of 'topic' or 'topic_regex'", "route without topic");
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nkey = [\"zz\"];\nupsert = \"SELECT :id\";\n",
	             "a.route:3: key: 'zz' is not a param", "key names an undefined param");
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nupsert = \"SELECT :id\";\n"
	                 "upsert_batch = \"SELECT :id\";\nreduce = false;\n",
	             "need a 'key' with reduce = true", "set statement without reduction");
	expect_error("", "topic = \"t\";\nparams = { id = \".id\"; };\nop = \"if\";\nupsert = \"SELECT :id\";\n",
	             "a.route:3: op: invalid jq", "invalid op expression");
	expect_error("", "topic_regex = \"(\";\nparams = { id = \".id\"; };\nupsert = \"SELECT :id\";\n",
	             "a.route:1: invalid topic_regex", "invalid regex");
	expect_error("", "topic = \"t\";\nparams = { id = 5; };\nupsert = \"SELECT :id\";\n",
	             "a.route:2: param 'id' must be a string", "param of the wrong type");

	/* duplicates across files, and several errors reported at once */
	clean();
	put("main.conf", "");
	put("routes/a.route", "name = \"same\";\ntopic = \"t1\";\nparams = { id = \".id\"; };\nupsert = \"SELECT :id\";\n");
	put("routes/b.route", "name = \"same\";\ntopic = \"t1\";\nparams = { id = \".id\"; };\nupsert = \"SELECT :x\";\n");
	c = load(errs, sizeof(errs));
	ok(c == NULL && strstr(errs, "duplicate route name 'same'") && strstr(errs, "topic 't1' already routed") &&
	   strstr(errs, "':x' is not a param"), "duplicate name and topic, every error listed");
	config_free(&c);

	clean();
	put("main.conf", "");
	c = load(errs, sizeof(errs));
	ok(c == NULL && strstr(errs, "no *.route files"), "no routes is an error");

	snprintf(p, sizeof(p), "rm -rf %s", dir);
	if (system(p)) {}
	return done_testing();
}
