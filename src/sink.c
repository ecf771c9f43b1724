/* sink.c — the sink's connection, prepared statements, stored offsets,
 * error classification and commit; see sink.h (the fast path is in
 * sink_apply.c, the slow path in sink_isolate.c). */
#include "util.h"
#include "sink_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const char *sink_last_sqlstate(const struct sink *s) { return s->last_state; }

/* Remember a failure's SQLSTATE; statements are prepared again before the
 * next use unless the failure was about one message (a table may have been
 * re-created, a column type changed: "cached plan must not change result type"). */
void sink_note_failure(struct sink *s, enum sink_result rc, const char *code, const PGresult *r)
{
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	snprintf(s->last_state, sizeof(s->last_state), "%s", code ? code : "");
	snprintf(s->last_primary, sizeof(s->last_primary), "%s", primary ? primary : "");
	if (rc != SINK_PERMANENT)
		s->prepared = 0;
}

static const char schema_sql[] =
	"SELECT pg_advisory_xact_lock(727274321);\n"
	"CREATE SCHEMA IF NOT EXISTS cdcrouter;\n"
	"CREATE TABLE IF NOT EXISTS cdcrouter.offsets (\n"
	"  group_id text NOT NULL, topic text NOT NULL, partition int NOT NULL,\n"
	"  next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"  PRIMARY KEY (group_id, topic, partition));\n"
	"CREATE OR REPLACE FUNCTION cdcrouter.advance(g text, t text, p int, expected bigint, nxt bigint)\n"
	"RETURNS void LANGUAGE plpgsql AS $fn$\n"
	"BEGIN\n"
	"  IF expected IS NULL THEN\n"
	"    INSERT INTO cdcrouter.offsets (group_id, topic, partition, next_offset)\n"
	"    VALUES (g, t, p, nxt) ON CONFLICT DO NOTHING;\n"
	"  ELSE\n"
	"    UPDATE cdcrouter.offsets SET next_offset = nxt, updated_at = now()\n"
	"    WHERE group_id = g AND topic = t AND partition = p AND next_offset = expected;\n"
	"  END IF;\n"
	"  IF NOT FOUND THEN\n"
	"    RAISE EXCEPTION 'offsets of %/%[%] are not at % any more', g, t, p, coalesce(expected::text, 'none')\n"
	"      USING ERRCODE = 'CR001';\n"
	"  END IF;\n"
	"END $fn$;\n";

static const char offset_sql[] =
	"SELECT next_offset FROM cdcrouter.offsets WHERE group_id = $1 AND topic = $2 AND partition = $3";

enum sink_result sink_classify(const char *st)
{
	if (!st || !*st)
		return SINK_TRANSIENT;
	if (!strcmp(st, "CR001"))
		return SINK_FENCED;
	/* about the sink or the routes, never about one message's values:
	 * privileges, missing tables/columns (class 42 at execution time), a
	 * read-only transaction, a full disk, no such database/schema, auth */
	if (!strncmp(st, "42", 2) || !strcmp(st, "25006") || !strcmp(st, "53100") || !strcmp(st, "3D000") ||
	    !strcmp(st, "3F000") || !strncmp(st, "28", 2))
		return SINK_STALL;
	if (!strncmp(st, "08", 2) || !strncmp(st, "40", 2) || !strncmp(st, "53", 2) ||
	    !strncmp(st, "57P", 3) || !strncmp(st, "58", 2) || !strcmp(st, "55P03") ||
	    !strcmp(st, "55006") || !strcmp(st, "26000") || !strcmp(st, "0A000") ||
	    !strcmp(st, "25P02") || !strcmp(st, "57014"))
		return SINK_TRANSIENT;
	return SINK_PERMANENT;
}

struct sink *sink_new(const char *conninfo, const char *password, const char *group_id)
{
	struct sink *s = xcalloc(1, sizeof(*s));

	s->conninfo = xstrdup(conninfo);
	s->password = password ? xstrdup(password) : NULL;
	s->group_id = xstrdup(group_id);
	return s;
}

void sink_disconnect(struct sink *s)
{
	if (s->conn)
		PQfinish(s->conn);
	s->conn = NULL;
	s->prepared = 0;
	s->in_txn = 0;
	s->pending = 0;
}

void sink_free(struct sink **sp)
{
	struct sink *s = *sp;

	if (!s)
		return;
	sink_disconnect(s);
	free(s->conninfo);
	if (s->password) {
		memset(s->password, 0, strlen(s->password));
		free(s->password);
	}
	free(s->group_id);
	free(s->values);
	free(s->lengths);
	for (size_t i = 0; i < s->narrays; i++)
		free(s->arrays[i]);
	free(s->arrays);
	free(s->arraylen);
	free(s->arraycap);
	free(s->topics);
	free(s);
	*sp = NULL;
}

void sink_set_routes(struct sink *s, const struct routes *rs)
{
	s->routes = rs;
	s->prepared = 0;
}


/* One line: "what: primary message (detail)"; PostgreSQL's multi-line
 * messages would break log lines and Kafka headers. */
void sink_set_err(char *err, size_t errlen, const char *what, PGconn *c, const PGresult *r)
{
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *m = primary ? primary : r ? PQresultErrorMessage(r) : c ? PQerrorMessage(c) : "";

	if (detail)
		snprintf(err, errlen, "%s: %s (%s)", what, m, detail);
	else
		snprintf(err, errlen, "%s: %s", what, m && *m ? m : "unknown error");
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	for (size_t n = strlen(err); n && err[n - 1] == ' '; n--)
		err[n - 1] = '\0';
}

/* The result of a synchronous command, classified (and consumed); sqlstate,
 * when not NULL, receives the failure's SQLSTATE. A failure that lost the
 * connection is transient whatever the server said. */
enum sink_result sink_check_state(struct sink *s, PGresult *r, const char *what, char *sqlstate,
                                    char *err, size_t errlen)
{
	enum sink_result rc = SINK_OK;
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		rc = sink_classify(code);
		if (sqlstate)
			snprintf(sqlstate, 6, "%s", code ? code : "");
		sink_set_err(err, errlen, what, s->conn, r);
		sink_note_failure(s, rc, code, r);
	}
	PQclear(r);
	if (rc != SINK_OK && PQstatus(s->conn) != CONNECTION_OK) {
		sink_disconnect(s);
		rc = SINK_TRANSIENT;
	}
	return rc;
}

enum sink_result sink_check(struct sink *s, PGresult *r, const char *what, char *err, size_t errlen)
{
	return sink_check_state(s, r, what, NULL, err, errlen);
}

void sink_stmt_name(char *buf, size_t len, size_t route, const char *kind)
{
	snprintf(buf, len, "cdcr_%s_%zu", kind, route);
}

static enum sink_result prepare_all(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc;
	static const char *const kinds[] = { "u", "d", "ub", "db" };

	rc = sink_check(s, PQexec(s->conn, "DEALLOCATE ALL"), "deallocate", err, errlen);
	if (rc)
		return rc;
	rc = sink_check(s, PQprepare(s->conn, "cdcr_advance", "SELECT cdcrouter.advance($1, $2, $3, $4, $5)", 5, NULL),
	           "prepare advance", err, errlen);
	if (rc)
		return rc;

	for (size_t i = 0; s->routes && i < s->routes->n && rc == SINK_OK; i++) {
		const struct route *r = &s->routes->v[i];
		const struct route_stmt *st[] = { &r->upsert, &r->del, &r->upsert_batch, &r->delete_batch };

		for (int k = 0; k < 4 && rc == SINK_OK; k++) {
			char name[64], what[160];

			if (!st[k]->present)
				continue;
			sink_stmt_name(name, sizeof(name), i, kinds[k]);
			snprintf(what, sizeof(what), "route '%s' (%s): prepare %s", r->name, r->file,
			         k == 0 ? "upsert" : k == 1 ? "delete" : k == 2 ? "upsert_batch" : "delete_batch");
			rc = sink_check(s, PQprepare(s->conn, name, st[k]->sql, st[k]->nparams, NULL), what, err, errlen);
		}
	}
	if (rc == SINK_OK)
		s->prepared = 1;
	return rc;
}

/* Server notices go to the log (at debug), not raw to stderr. */
static void notice(void *arg, const char *message)
{
	char line[512];
	size_t n;

	(void)arg;
	snprintf(line, sizeof(line), "%s", message);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("sink notice", LF_S("notice", line));
}

/* Connected, with the cdcrouter schema; the routes' statements may not be
 * prepared yet (reading stored offsets needs none of them). */
static enum sink_result ensure_connected(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc;

	if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
		sink_disconnect(s);
	if (!s->conn) {
		const char *keys[] = { "dbname", "password", "application_name", "connect_timeout",
			               "keepalives_idle", "keepalives_interval", NULL };
		const char *vals[] = { s->conninfo, s->password, "cdcrouter", "10", "30", "10", NULL };

		if (!s->password) {                 /* libpq falls back to PGPASSWORD / ~/.pgpass */
			keys[1] = "application_name"; vals[1] = "cdcrouter";
			keys[2] = "connect_timeout"; vals[2] = "10";
			keys[3] = NULL;
		}
		s->conn = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(s->conn) != CONNECTION_OK) {
			sink_set_err(err, errlen, "connect to sink", s->conn, NULL);
			sink_disconnect(s);
			return SINK_TRANSIENT;
		}
		PQsetNoticeProcessor(s->conn, notice, NULL);
		rc = sink_check(s, PQexec(s->conn, "BEGIN"), "begin", err, errlen);
		if (!rc)
			rc = sink_check(s, PQexec(s->conn, schema_sql), "create cdcrouter schema", err, errlen);
		if (!rc)
			rc = sink_check(s, PQexec(s->conn, "COMMIT"), "commit schema", err, errlen);
		if (rc) {
			sink_disconnect(s);
			return rc == SINK_FENCED ? SINK_TRANSIENT : rc;
		}
	}
	return SINK_OK;
}

enum sink_result sink_ensure(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc = ensure_connected(s, err, errlen);

	if (rc)
		return rc;
	if (!s->prepared) {
		rc = prepare_all(s, err, errlen);
		if (rc) {
			/* a statement that does not prepare is a configuration error */
			if (rc == SINK_PERMANENT)
				s->prepared = 0;
			return rc;
		}
	}
	return SINK_OK;
}

int sink_load_offset(struct sink *s, const char *topic, int32_t partition, int64_t *next,
                     char *err, size_t errlen)
{
	char pbuf[16];
	const char *vals[3] = { s->group_id, topic, pbuf };
	PGresult *r;
	int found = 0;

	if (ensure_connected(s, err, errlen) != SINK_OK)
		return -1;
	snprintf(pbuf, sizeof(pbuf), "%d", partition);
	/* not the prepared statement: a route whose table is gone must not keep
	 * cdcrouter from knowing where it is */
	r = PQexecParams(s->conn, offset_sql, 3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		sink_set_err(err, errlen, "read stored offsets", s->conn, r);
		PQclear(r);
		if (PQstatus(s->conn) != CONNECTION_OK)
			sink_disconnect(s);
		return -1;
	}
	if (PQntuples(r) == 1) {
		*next = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		found = 1;
	}
	PQclear(r);
	return found;
}

int sink_each_offset(struct sink *s, void (*fn)(void *arg, const char *topic, int32_t partition, int64_t next),
                     void *arg, char *err, size_t errlen)
{
	const char *vals[1] = { s->group_id };
	PGresult *r;

	if (ensure_connected(s, err, errlen) != SINK_OK)
		return -1;
	r = PQexecParams(s->conn, "SELECT topic, partition, next_offset FROM cdcrouter.offsets WHERE group_id = $1",
	                 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		sink_set_err(err, errlen, "read stored offsets", s->conn, r);
		PQclear(r);
		if (PQstatus(s->conn) != CONNECTION_OK)
			sink_disconnect(s);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), (int32_t)atoi(PQgetvalue(r, i, 1)), strtoll(PQgetvalue(r, i, 2), NULL, 10));
	PQclear(r);
	return 0;
}

enum sink_result sink_commit(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc;

	s->in_txn = 0;
	rc = sink_check(s, PQexec(s->conn, "COMMIT"), "commit", err, errlen);
	/* a COMMIT that fails without a server error has an unknown outcome:
	 * SINK_TRANSIENT makes the caller reload the stored offsets */
	return rc;
}

void sink_rollback(struct sink *s)
{
	if (s->conn && s->in_txn) {
		PQclear(PQexec(s->conn, "ROLLBACK"));
		if (PQstatus(s->conn) != CONNECTION_OK)
			sink_disconnect(s);
	}
	s->in_txn = 0;
}
