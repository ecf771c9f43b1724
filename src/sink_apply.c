/* sink_apply.c — the sink's fast path: a batch's parameters marshalled
 * (set-based statements take one array literal per parameter) and the whole
 * transaction pipelined in one round trip; see sink.h. */
#include "util.h"
#include "sink_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
void sink_bind_row(struct sink *s, const struct batch *b, const struct bmsg *m, const struct route_stmt *st)
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
				sink_set_err(err, errlen, "sink connection", s->conn, NULL);
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
				sink_set_err(err, errlen, "apply batch", s->conn, r);
				sink_note_failure(s, p->rc, code, r);
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
		sink_set_err(err, errlen, "send", s->conn, NULL);
		p->rc = SINK_TRANSIENT;
		return -1;
	}
	p->sent++;
	/* keep the socket moving both ways so a long pipeline cannot deadlock */
	return pipe_read(s, p, 0, err, errlen);
}

/* Bind the five parameters of cdcrouter.advance(); buf holds their text. */
void sink_bind_advance(struct sink *s, const struct sink_advance *a, struct advbuf *buf)
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

		sink_bind_advance(s, &adv[i], &buf);
		if (pipe_send(s, p, "cdcr_advance", 5, err, errlen))
			return -1;
	}
	return 0;
}

size_t sink_route_index(const struct sink *s, const struct route *r)
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
		sink_set_err(err, errlen, "pipeline mode", s->conn, NULL);
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
				sink_stmt_name(name, sizeof(name), ri, kind[k]);
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
		sink_bind_row(s, b, m, st);
		sink_stmt_name(name, sizeof(name), sink_route_index(s, m->route), m->op == OP_DELETE ? "d" : "u");
		if (pipe_send(s, p, name, st->nparams, s->pipe_err, sizeof(s->pipe_err)))
			goto fail;
	}
	if (!PQpipelineSync(s->conn) || flush_all(s) < 0) {
		sink_set_err(s->pipe_err, sizeof(s->pipe_err), "pipeline sync", s->conn, NULL);
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

