/* sink_isolate.c — the sink's slow path after a data error: the batch
 * replayed message by message under savepoints, twice when some fail; see
 * sink.h. */
#include "util.h"
#include "sink_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the isolating slow path ------------------------------------------- */

static enum sink_result exec_params(struct sink *s, const char *stmt, int n, char *sqlstate,
                                    char *err, size_t errlen)
{
	return sink_check_state(s, PQexecPrepared(s->conn, stmt, n, s->values, s->lengths, NULL, 0), "apply",
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
	if ((rc = sink_check(s, PQexec(s->conn, "BEGIN"), "begin", err, errlen)))
		return rc;
	s->in_txn = 1;
	for (size_t i = 0; i < nadv; i++) {
		struct advbuf buf = { "", "", "" };

		sink_bind_advance(s, &adv[i], &buf);
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
		if ((rc = sink_check(s, PQexec(s->conn, "SAVEPOINT cdcr_msg"), "savepoint", err, errlen)))
			return rc;
		sink_bind_row(s, b, m, st);
		sink_stmt_name(name, sizeof(name), sink_route_index(s, m->route), m->op == OP_DELETE ? "d" : "u");
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
			if ((rc = sink_check(s, PQexec(s->conn, "ROLLBACK TO SAVEPOINT cdcr_msg"), "rollback to savepoint",
			                     err, errlen)))
				return rc;
			continue;
		}
		if (rc) {
			snprintf(err, errlen, "%s", msg);
			return rc;
		}
		if ((rc = sink_check(s, PQexec(s->conn, "RELEASE SAVEPOINT cdcr_msg"), "release savepoint", err, errlen)))
			return rc;
		ps->nok++;
	}
	return SINK_OK;
}

/* Forget the SQL verdicts of the first pass before the second; failed[i]
 * says whether message i had one. */
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
	if (differ) {           /* the caller drops the verdicts, as after a stall */
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

