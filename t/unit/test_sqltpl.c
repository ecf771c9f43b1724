/* Template parsing: placeholders, quoting, comments, casts, errors. */
#include "sqltpl.h"

#include "tap.h"

static void parses(const char *in, const char *want_sql, int want_n, const char *names, const char *label)
{
	struct sqltpl t;
	char err[256] = "";
	char got_names[256] = "";

	if (sqltpl_parse(in, &t, err, sizeof(err))) {
		ok(0, "%s: parse failed: %s", label, err);
		ok(0, "%s: params", label);
		return;
	}
	is_str(t.sql, want_sql, label);
	for (int i = 0; i < t.nparams; i++) {
		if (i)
			strcat(got_names, ",");
		strcat(got_names, t.names[i]);
	}
	ok(t.nparams == want_n && strcmp(got_names, names) == 0, "%s: params %s (got %d: %s)", label, names,
	   t.nparams, got_names);
	sqltpl_free(&t);
}

static void fails(const char *in, const char *want_err, const char *label)
{
	struct sqltpl t;
	char err[256] = "";
	int rc = sqltpl_parse(in, &t, err, sizeof(err));

	ok(rc == -1 && strstr(err, want_err) != NULL, "%s: error mentions '%s' (got '%s')", label, want_err, err);
}

int main(void)
{
	parses("SELECT :a, :b", "SELECT $1, $2", 2, "a,b", "two params");
	parses("SELECT :a + :a", "SELECT $1 + $1", 1, "a", "repeated name binds once");
	parses("SELECT :id::uuid", "SELECT $1::uuid", 1, "id", "cast after placeholder");
	parses("SELECT x::text FROM t WHERE y = :y", "SELECT x::text FROM t WHERE y = $1", 1, "y", "plain cast");
	parses("SELECT ':no', :yes", "SELECT ':no', $1", 1, "yes", "colon in a string");
	parses("SELECT 'it''s :no', :yes", "SELECT 'it''s :no', $1", 1, "yes", "doubled quote");
	parses("SELECT E'a\\' :no', :yes", "SELECT E'a\\' :no', $1", 1, "yes", "E-string backslash escape");
	parses("SELECT \":no\" FROM t WHERE a = :a", "SELECT \":no\" FROM t WHERE a = $1", 1, "a", "quoted identifier");
	parses("SELECT $$ :no $$, :yes", "SELECT $$ :no $$, $1", 1, "yes", "dollar quote");
	parses("SELECT $fn$ :no $x$ $fn$, :yes", "SELECT $fn$ :no $x$ $fn$, $1", 1, "yes", "tagged dollar quote");
	parses("SELECT 1 -- :no\n, :yes", "SELECT 1 -- :no\n, $1", 1, "yes", "line comment");
	parses("SELECT /* :no /* :nested */ :no */ :yes", "SELECT /* :no /* :nested */ :no */ $1", 1, "yes",
	       "nested block comment");
	parses("SELECT ARRAY[1,2][1:2], :a", "SELECT ARRAY[1,2][1:2], $1", 1, "a", "slice colon before a digit");
	parses("INSERT INTO t VALUES (:id_2, :Email)", "INSERT INTO t VALUES ($1, $2)", 2, "id_2,Email",
	       "underscores, digits, case");
	parses("SELECT * FROM unnest(:id::uuid[])", "SELECT * FROM unnest($1::uuid[])", 1, "id", "array cast");
	fails("SELECT 'open", "unterminated string", "unterminated string");
	fails("SELECT \"open", "unterminated quoted identifier", "unterminated identifier");
	fails("SELECT $$ open", "unterminated dollar", "unterminated dollar quote");
	fails("SELECT /* open", "unterminated /*", "unterminated comment");
	fails("SELECT $1", "positional parameter", "positional parameters refused");
	fails("SELECT 1,\n'x", "line 2", "error line within the template");
	return done_testing();
}
