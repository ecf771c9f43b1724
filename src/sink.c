/* sink.c — PostgreSQL apply with pipelining, set-based batches and
 * offsets in the same transaction; see sink.h. */
#include "util.h"
#include "sink.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A pipelined batch: queries sent, results read, the first failure. */
struct pipe {
	size_t sent, done;         /* queries sent / whose results were read */
	int synced;
	enum sink_result rc;       /* first failure */
	char sqlstate[6];
};

struct sink {
	char *conninfo;
	char *password;
	char *group_id;
	PGconn *conn;
	const struct routes *routes;
	int prepared;             /* statements of `routes` are prepared on `conn` */
	int in_txn;               /* sink_apply_isolating left a transaction open */
	int pending;              /* a pipelined batch awaits sink_wait() */
	struct pipe pipe;
	char pipe_err[1024];
	/* scratch buffers, reused across batches */
	const char **values;
	int *lengths;
	size_t nvalues;
	char **arrays;            /* per-parameter array literals for set statements */
	size_t *arraylen, *arraycap;
	size_t narrays;
	const char **topics;      /* distinct topics of a route in a batch */
	size_t ntopics;
	char last_state[8];       /* SQLSTATE of the last failure */
	char last_primary[256];   /* its primary message */
};

const char *sink_last_sqlstate(const struct sink *s) { return s->last_state; }

/* Remember a failure's SQLSTATE; statements are prepared again before the
 * next use unless the failure was about one message (a table may have been
 * re-created, a column type changed: "cached plan must not change result type"). */
static void note_failure(struct sink *s, enum sink_result rc, const char *code, const PGresult *r)
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
static void set_err(char *err, size_t errlen, const char *what, PGconn *c, const PGresult *r)
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
static enum sink_result check_state(struct sink *s, PGresult *r, const char *what, char *sqlstate,
                                    char *err, size_t errlen)
{
	enum sink_result rc = SINK_OK;
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		rc = sink_classify(code);
		if (sqlstate)
			snprintf(sqlstate, 6, "%s", code ? code : "");
		set_err(err, errlen, what, s->conn, r);
		note_failure(s, rc, code, r);
	}
	PQclear(r);
	if (rc != SINK_OK && PQstatus(s->conn) != CONNECTION_OK) {
		sink_disconnect(s);
		rc = SINK_TRANSIENT;
	}
	return rc;
}

static enum sink_result check(struct sink *s, PGresult *r, const char *what, char *err, size_t errlen)
{
	return check_state(s, r, what, NULL, err, errlen);
}

static void stmt_name(char *buf, size_t len, size_t route, const char *kind)
{
	snprintf(buf, len, "cdcr_%s_%zu", kind, route);
}

static enum sink_result prepare_all(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc;
	static const char *const kinds[] = { "u", "d", "ub", "db" };

	rc = check(s, PQexec(s->conn, "DEALLOCATE ALL"), "deallocate", err, errlen);
	if (rc)
		return rc;
	rc = check(s, PQprepare(s->conn, "cdcr_advance", "SELECT cdcrouter.advance($1, $2, $3, $4, $5)", 5, NULL),
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
			stmt_name(name, sizeof(name), i, kinds[k]);
			snprintf(what, sizeof(what), "route '%s' (%s): prepare %s", r->name, r->file,
			         k == 0 ? "upsert" : k == 1 ? "delete" : k == 2 ? "upsert_batch" : "delete_batch");
			rc = check(s, PQprepare(s->conn, name, st[k]->sql, st[k]->nparams, NULL), what, err, errlen);
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
			set_err(err, errlen, "connect to sink", s->conn, NULL);
			sink_disconnect(s);
			return SINK_TRANSIENT;
		}
		PQsetNoticeProcessor(s->conn, notice, NULL);
		rc = check(s, PQexec(s->conn, "BEGIN"), "begin", err, errlen);
		if (!rc)
			rc = check(s, PQexec(s->conn, schema_sql), "create cdcrouter schema", err, errlen);
		if (!rc)
			rc = check(s, PQexec(s->conn, "COMMIT"), "commit schema", err, errlen);
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
		set_err(err, errlen, "read stored offsets", s->conn, r);
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
		set_err(err, errlen, "read stored offsets", s->conn, r);
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

/* ---- parameter marshalling -------------------------------------------- */

static void ensure_values(struct sink *s, size_t n)
{
	if (n > s->nvalues) {
		s->values = xrealloc(s->values, n * sizeof(*s->values));
		s->lengths = xrealloc(s->lengths, n * sizeof(*s->lengths));
		s->nvalues = n;
	}
}

/* Point values[] at the message's params as the statement orders them. */
static void bind_row(struct sink *s, const struct batch *b, const struct bmsg *m, const struct route_stmt *st)
{
	ensure_values(s, (size_t)st->nparams + 1);
	for (int i = 0; i < st->nparams; i++) {
		const struct bval *v = &b->vals[m->vals + (size_t)st->param[i]];

		s->values[i] = v->off < 0 ? NULL : b->arena + v->off;
		s->lengths[i] = v->len;
	}
}

static void arr_put(struct sink *s, size_t i, const char *p, size_t n)
{
	if (s->arraylen[i] + n + 1 > s->arraycap[i]) {
		s->arraycap[i] = (s->arraylen[i] + n + 1) * 2;
		s->arrays[i] = xrealloc(s->arrays[i], s->arraycap[i]);
	}
	memcpy(s->arrays[i] + s->arraylen[i], p, n);
	s->arraylen[i] += n;
	s->arrays[i][s->arraylen[i]] = '\0';
}

/* Build one PostgreSQL array literal per statement parameter from the
 * messages of route r with operation op: {"v1","v2",NULL}. Each element is
 * double-quoted with \ and " escaped, so any text is carried verbatim.
 * Returns the number of rows. */
static size_t bind_set(struct sink *s, const struct batch *b, const struct route *r, const char *topic,
                       enum route_op op, const struct route_stmt *st)
{
	size_t rows = 0;

	if ((size_t)st->nparams > s->narrays) {
		s->arrays = xrealloc(s->arrays, (size_t)st->nparams * sizeof(char *));
		s->arraylen = xrealloc(s->arraylen, (size_t)st->nparams * sizeof(size_t));
		s->arraycap = xrealloc(s->arraycap, (size_t)st->nparams * sizeof(size_t));
		for (size_t i = s->narrays; i < (size_t)st->nparams; i++) {
			s->arrays[i] = NULL;
			s->arraycap[i] = 0;
		}
		s->narrays = (size_t)st->nparams;
	}
	for (int i = 0; i < st->nparams; i++) {
		s->arraylen[i] = 0;
		arr_put(s, (size_t)i, "{", 1);
	}
	for (size_t k = 0; k < b->n; k++) {
		const struct bmsg *m = &b->m[k];

		if (m->route != r || m->op != op || m->outcome != OUT_PENDING || m->superseded ||
		    (m->topic != topic && strcmp(m->topic, topic)))
			continue;
		for (int i = 0; i < st->nparams; i++) {
			const struct bval *v = &b->vals[m->vals + (size_t)st->param[i]];
			const char *p, *q, *end;

			if (rows)
				arr_put(s, (size_t)i, ",", 1);
			if (v->off < 0) {
				arr_put(s, (size_t)i, "NULL", 4);
				continue;
			}
			arr_put(s, (size_t)i, "\"", 1);
			p = b->arena + v->off;
			end = p + v->len;
			for (q = p; q < end; q++) {
				if (*q == '"' || *q == '\\') {
					arr_put(s, (size_t)i, p, (size_t)(q - p));
					arr_put(s, (size_t)i, "\\", 1);
					p = q;
				}
			}
			arr_put(s, (size_t)i, p, (size_t)(end - p));
			arr_put(s, (size_t)i, "\"", 1);
		}
		rows++;
	}
	ensure_values(s, (size_t)st->nparams + 1);
	for (int i = 0; i < st->nparams; i++) {
		arr_put(s, (size_t)i, "}", 1);
		s->values[i] = s->arrays[i];
		s->lengths[i] = (int)s->arraylen[i];
	}
	return rows;
}

/* The distinct topics of route r's pending messages in b, into s->topics. */
static size_t batch_topics(struct sink *s, const struct batch *b, const struct route *r)
{
	size_t n = 0;

	for (size_t k = 0; k < b->n; k++) {
		const struct bmsg *m = &b->m[k];
		size_t i;

		if (m->route != r || m->outcome != OUT_PENDING || m->superseded)
			continue;
		for (i = n; i-- > 0;)
			if (s->topics[i] == m->topic || !strcmp(s->topics[i], m->topic))
				break;
		if (i != (size_t)-1)
			continue;
		if (n == s->ntopics) {
			s->ntopics = s->ntopics ? s->ntopics * 2 : 8;
			s->topics = xrealloc(s->topics, s->ntopics * sizeof(*s->topics));
		}
		s->topics[n++] = m->topic;
	}
	return n;
}

/* ---- the pipelined fast path ------------------------------------------ */

/* Read whatever results are available (or, with block, until the sync). */
static int pipe_read(struct sink *s, struct pipe *p, int block, char *err, size_t errlen)
{
	for (;;) {
		int fl = PQflush(s->conn);

		if (fl < 0 || !PQconsumeInput(s->conn)) {
			if (p->rc == SINK_OK || p->rc == SINK_PERMANENT)
				set_err(err, errlen, "sink connection", s->conn, NULL);
			p->rc = SINK_TRANSIENT;
			return -1;
		}
		while (!PQisBusy(s->conn)) {
			PGresult *r;
			ExecStatusType st;

			if (p->done == p->sent && p->synced != 1)
				break;
			r = PQgetResult(s->conn);
			if (!r) {
				p->done++;
				continue;
			}
			st = PQresultStatus(r);
			if (st == PGRES_PIPELINE_SYNC) {
				PQclear(r);
				p->synced = 2;
				return 0;
			}
			if (st == PGRES_FATAL_ERROR && p->rc == SINK_OK) {
				const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);

				p->rc = sink_classify(code);
				snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", code ? code : "");
				set_err(err, errlen, "apply batch", s->conn, r);
				note_failure(s, p->rc, code, r);
			}
			PQclear(r);
		}
		if (!block)
			return 0;
		{
			struct pollfd pfd = { .fd = PQsocket(s->conn), .events = POLLIN | (fl == 1 ? POLLOUT : 0) };

			if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
				p->rc = SINK_TRANSIENT;
				return -1;
			}
		}
	}
}

static int pipe_send(struct sink *s, struct pipe *p, const char *stmt, int n, char *err, size_t errlen)
{
	if (!PQsendQueryPrepared(s->conn, stmt, n, s->values, s->lengths, NULL, 0)) {
		set_err(err, errlen, "send", s->conn, NULL);
		p->rc = SINK_TRANSIENT;
		return -1;
	}
	p->sent++;
	/* keep the socket moving both ways so a long pipeline cannot deadlock */
	return pipe_read(s, p, 0, err, errlen);
}

/* Bind the five parameters of cdcrouter.advance(); buf holds their text. */
struct advbuf {
	char part[16], exp[24], nxt[24];
};

static void bind_advance(struct sink *s, const struct sink_advance *a, struct advbuf *buf)
{
	snprintf(buf->part, sizeof(buf->part), "%d", a->partition);
	snprintf(buf->exp, sizeof(buf->exp), "%lld", (long long)a->expected);
	snprintf(buf->nxt, sizeof(buf->nxt), "%lld", (long long)a->next);
	ensure_values(s, 5);
	s->values[0] = s->group_id;
	s->values[1] = a->topic;
	s->values[2] = buf->part;
	s->values[3] = a->expected < 0 ? NULL : buf->exp;
	s->values[4] = buf->nxt;
	for (int k = 0; k < 5; k++)
		s->lengths[k] = s->values[k] ? (int)strlen(s->values[k]) : 0;
}

static int send_advances(struct sink *s, struct pipe *p, const struct sink_advance *adv, size_t nadv,
                         char *err, size_t errlen)
{
	for (size_t i = 0; i < nadv; i++) {
		struct advbuf buf = { "", "", "" };

		bind_advance(s, &adv[i], &buf);
		if (pipe_send(s, p, "cdcr_advance", 5, err, errlen))
			return -1;
	}
	return 0;
}

static size_t route_index(const struct sink *s, const struct route *r)
{
	return (size_t)(r - s->routes->v);
}

/* Push everything written so far to the server, reading its answers into
 * libpq's buffer meanwhile so neither side can block the other. */
static int flush_all(struct sink *s)
{
	for (;;) {
		int fl = PQflush(s->conn);
		struct pollfd pfd;

		if (fl <= 0)
			return fl;
		pfd = (struct pollfd){ .fd = PQsocket(s->conn), .events = POLLIN | POLLOUT };
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			return -1;
		if ((pfd.revents & POLLIN) && !PQconsumeInput(s->conn))
			return -1;
	}
}

/* After the pipeline ends (or breaks): leave pipeline mode, or drop a
 * connection whose state is unknown. Returns the batch's verdict. */
static enum sink_result pipe_end(struct sink *s, struct pipe *p)
{
	s->pending = 0;
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK && p->synced == 2) {
		PQsetnonblocking(s->conn, 0);
		PQexitPipelineMode(s->conn);
	} else {
		sink_disconnect(s);
		if (p->rc == SINK_OK || p->rc == SINK_PERMANENT)
			p->rc = SINK_TRANSIENT;
	}
	return p->rc;
}

enum sink_result sink_send(struct sink *s, struct batch *b, const struct sink_advance *adv, size_t nadv,
                           char *err, size_t errlen)
{
	struct pipe *p = &s->pipe;
	enum sink_result rc = sink_ensure(s, err, errlen);
	char name[64];

	if (rc)
		return rc;
	memset(p, 0, sizeof(*p));
	s->pending = 1;
	s->pipe_err[0] = '\0';
	if (!PQenterPipelineMode(s->conn) || PQsetnonblocking(s->conn, 1)) {
		set_err(err, errlen, "pipeline mode", s->conn, NULL);
		return pipe_end(s, p);
	}
	if (send_advances(s, p, adv, nadv, s->pipe_err, sizeof(s->pipe_err)))
		goto fail;

	/* set-based routes, per topic (a key is unique within a topic after
	 * reduction; a regex route's topics may share keys): all deletes, then
	 * all upserts */
	for (size_t ri = 0; ri < s->routes->n; ri++) {
		const struct route *r = &s->routes->v[ri];
		const struct route_stmt *sets[2] = { &r->delete_batch, &r->upsert_batch };
		static const char *const kind[2] = { "db", "ub" };
		static const enum route_op ops[2] = { OP_DELETE, OP_UPSERT };
		size_t nt;

		if (!sets[0]->present && !sets[1]->present)
			continue;
		nt = batch_topics(s, b, r);
		for (size_t ti = 0; ti < nt; ti++) {
			for (int k = 0; k < 2; k++) {
				if (!sets[k]->present)
					continue;
				if (bind_set(s, b, r, s->topics[ti], ops[k], sets[k]) == 0)
					continue;
				stmt_name(name, sizeof(name), ri, kind[k]);
				if (pipe_send(s, p, name, sets[k]->nparams, s->pipe_err, sizeof(s->pipe_err)))
					goto fail;
			}
		}
	}
	/* the rest, one pipelined statement per message in offset order */
	for (size_t i = 0; i < b->n && p->rc == SINK_OK; i++) {
		const struct bmsg *m = &b->m[i];
		const struct route_stmt *st;

		if (m->outcome != OUT_PENDING || m->superseded)
			continue;
		st = m->op == OP_DELETE ? &m->route->del : &m->route->upsert;
		if ((m->op == OP_DELETE ? m->route->delete_batch.present : m->route->upsert_batch.present))
			continue;
		bind_row(s, b, m, st);
		stmt_name(name, sizeof(name), route_index(s, m->route), m->op == OP_DELETE ? "d" : "u");
		if (pipe_send(s, p, name, st->nparams, s->pipe_err, sizeof(s->pipe_err)))
			goto fail;
	}
	if (!PQpipelineSync(s->conn) || flush_all(s) < 0) {
		set_err(s->pipe_err, sizeof(s->pipe_err), "pipeline sync", s->conn, NULL);
		p->rc = SINK_TRANSIENT;
		goto fail;
	}
	p->synced = 1;
	return SINK_OK;          /* the server is working; sink_wait() collects the verdict */
fail:
	snprintf(err, errlen, "%s", s->pipe_err);
	return pipe_end(s, p);
}

enum sink_result sink_wait(struct sink *s, char *err, size_t errlen)
{
	struct pipe *p = &s->pipe;

	if (!s->pending)
		return SINK_OK;
	pipe_read(s, p, 1, s->pipe_err, sizeof(s->pipe_err));
	if (p->rc != SINK_OK)
		snprintf(err, errlen, "%s", s->pipe_err[0] ? s->pipe_err : "sink connection lost");
	return pipe_end(s, p);
}


int sink_answering(const struct sink *s)
{
	struct pollfd pfd;

	if (!s->pending || !s->conn)
		return 0;
	pfd = (struct pollfd){ .fd = PQsocket(s->conn), .events = POLLIN };
	return poll(&pfd, 1, 0) > 0;
}

enum sink_result sink_apply(struct sink *s, struct batch *b, const struct sink_advance *adv, size_t nadv,
                            char *err, size_t errlen)
{
	enum sink_result rc = sink_send(s, b, adv, nadv, err, errlen);

	return rc ? rc : sink_wait(s, err, errlen);
}

/* ---- the isolating slow path ------------------------------------------- */

static enum sink_result exec_params(struct sink *s, const char *stmt, int n, char *sqlstate,
                                    char *err, size_t errlen)
{
	return check_state(s, PQexecPrepared(s->conn, stmt, n, s->values, s->lengths, NULL, 0), "apply",
	                   sqlstate, err, errlen);
}

/* What one pass of the slow path saw. */
struct pass {
	int nok, nfail, same;
	char state0[6], primary0[256];
};

/* One pass: BEGIN, the advances, every PENDING message under its own
 * savepoint. Failed messages get EK_SQL. The transaction stays open. */
static enum sink_result isolate_pass(struct sink *s, struct batch *b, const struct sink_advance *adv,
                                     size_t nadv, struct pass *ps, char *err, size_t errlen)
{
	char name[64], sqlstate[6], msg[1024];
	enum sink_result rc;

	*ps = (struct pass){ .same = 1 };
	if ((rc = check(s, PQexec(s->conn, "BEGIN"), "begin", err, errlen)))
		return rc;
	s->in_txn = 1;
	for (size_t i = 0; i < nadv; i++) {
		struct advbuf buf = { "", "", "" };

		bind_advance(s, &adv[i], &buf);
		if ((rc = exec_params(s, "cdcr_advance", 5, NULL, err, errlen)))
			return rc;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		const struct route_stmt *st;

		if (m->outcome != OUT_PENDING || m->err != EK_NONE)
			continue;
		m->superseded = 0;
		st = m->op == OP_DELETE ? &m->route->del : &m->route->upsert;
		if ((rc = check(s, PQexec(s->conn, "SAVEPOINT cdcr_msg"), "savepoint", err, errlen)))
			return rc;
		bind_row(s, b, m, st);
		stmt_name(name, sizeof(name), route_index(s, m->route), m->op == OP_DELETE ? "d" : "u");
		rc = exec_params(s, name, st->nparams, sqlstate, msg, sizeof(msg));
		if (rc == SINK_PERMANENT) {
			if (ps->nfail++ == 0) {
				snprintf(ps->state0, sizeof(ps->state0), "%s", sqlstate);
				snprintf(ps->primary0, sizeof(ps->primary0), "%s", s->last_primary);
			} else if (strcmp(ps->state0, sqlstate) || strcmp(ps->primary0, s->last_primary)) {
				ps->same = 0;
			}
			snprintf(m->sqlstate, sizeof(m->sqlstate), "%s", sqlstate);
			batch_set_error(b, m, EK_SQL, "%s", msg);
			if ((rc = check(s, PQexec(s->conn, "ROLLBACK TO SAVEPOINT cdcr_msg"), "rollback to savepoint",
			                err, errlen)))
				return rc;
			continue;
		}
		if (rc) {
			snprintf(err, errlen, "%s", msg);
			return rc;
		}
		if ((rc = check(s, PQexec(s->conn, "RELEASE SAVEPOINT cdcr_msg"), "release savepoint", err, errlen)))
			return rc;
		ps->nok++;
	}
	return SINK_OK;
}

/* Forget the SQL verdicts of a pass; failed[i] says whether message i had one. */
static void forget_sql_errors(struct batch *b, unsigned char *failed)
{
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		failed[i] = m->outcome == OUT_PENDING && m->err == EK_SQL;
		if (failed[i]) {
			m->err = EK_NONE;
			m->sqlstate[0] = '\0';
		}
	}
}

enum sink_result sink_apply_isolating(struct sink *s, struct batch *b, const struct sink_advance *adv,
                                      size_t nadv, char *err, size_t errlen)
{
	enum sink_result rc = sink_ensure(s, err, errlen);
	unsigned char *failed = NULL;
	struct pass ps;
	int differ = 0;

	if (rc)
		return rc;
	if ((rc = isolate_pass(s, b, adv, nadv, &ps, err, errlen)))
		goto fail;
	if (ps.nok == 0 && ps.nfail >= 2 && ps.same) {
		snprintf(err, errlen, "all %d messages of the batch fail the same way (SQLSTATE %s): %s", ps.nfail,
		         ps.state0, ps.primary0);
		snprintf(s->last_state, sizeof(s->last_state), "uniform");
		s->prepared = 0;
		rc = SINK_STALL;
		goto fail;
	}
	if (ps.nfail == 0 || ps.nok == 0)
		return SINK_OK;
	/* Some failed, some did not. A failed row's locks end with its
	 * savepoint, so the sink may have changed between two messages (a
	 * column made nullable, a constraint dropped): then the early failures
	 * are no message's fault. A second pass must agree message by message. */
	failed = xcalloc(b->n, 1);
	forget_sql_errors(b, failed);
	sink_rollback(s);
	if ((rc = isolate_pass(s, b, adv, nadv, &ps, err, errlen)))
		goto fail;
	for (size_t i = 0; i < b->n && !differ; i++)
		differ = failed[i] != (b->m[i].outcome == OUT_PENDING && b->m[i].err == EK_SQL);
	if (differ) {
		forget_sql_errors(b, failed);
		snprintf(err, errlen, "two message-by-message replays of the batch disagree on which messages fail");
		s->prepared = 0;
		rc = SINK_CHANGED;
		goto fail;
	}
	free(failed);
	return SINK_OK;
fail:
	free(failed);
	sink_rollback(s);
	return rc;
}

enum sink_result sink_commit(struct sink *s, char *err, size_t errlen)
{
	enum sink_result rc;

	s->in_txn = 0;
	rc = check(s, PQexec(s->conn, "COMMIT"), "commit", err, errlen);
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
