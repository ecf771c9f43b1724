/* apply.c — batches applied exactly once; see apply.h. */
#include "util.h"
#include "apply_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Not a sink verdict: the attempt was rolled back to wait for dead-letter
 * acknowledgements first; retry at once. */
#define REDO ((enum sink_result)100)
#define DLQ_WAIT_LOG_MS 5000      /* dead-letter acks outstanding this long: say so */

void apply_init(struct apply *a)
{
	memset(a, 0, sizeof(*a));
	batch_init(&a->works[0].b);
	batch_init(&a->works[1].b);
	a->cur = &a->works[0];
	a->x = extract_new();
	a->wt.parts = &a->parts;
	a->wt.cons = &a->cons;
	a->wt.dlq = &a->dlq;
}

static void release_tickets(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		dlq_release(&b->m[i].dlq);
}

void apply_free(struct apply *a)
{
	for (int i = 0; i < 2; i++) {
		release_tickets(&a->works[i].b);
		batch_free(&a->works[i].b);
		free(a->works[i].adv);
	}
	wait_free(&a->wt);
	parts_free(&a->parts);
	extract_free(&a->x);
	memset(a, 0, sizeof(*a));
}

static void work_reset(struct apply_work *w);

void apply_drop_all(struct apply *a)
{
	for (int i = 0; i < 2; i++)
		work_reset(&a->works[i]);
	a->fly = NULL;
	wait_drop_all(&a->wt);
	parts_free(&a->parts);
}

rd_kafka_message_t *apply_take_held(struct apply *a) { return wait_take(&a->wt); }
void apply_hold_back(struct apply *a, rd_kafka_message_t *m) { wait_hold_back(&a->wt, m); }

static int idle(struct apply *a, long ms) { return wait_idle(&a->wt, ms); }

int apply_backoff(struct apply *a, int attempt)
{
	return wait_backoff(&a->wt, attempt, a->cfg->retry_backoff_ms, a->cfg->retry_backoff_max_ms);
}

/* ---- telling what happened ---------------------------------------------- */

/* Tell telemetry what became of one message. The operation is reported
 * when it was known and the message reached the sink (or was ignored). */
static void report(struct apply *a, const struct batch *b, const struct bmsg *m, uint64_t end)
{
	const rd_kafka_message_t *k = m->rkm;
	int op_known = m->outcome == OUT_APPLIED || m->outcome == OUT_IGNORED || m->err == EK_SQL;
	struct tele_msg tm;

	if (!a->tele)
		return;
	tm = (struct tele_msg){
		.topic = m->topic, .partition = k->partition, .offset = k->offset,
		.group = a->cfg->group_id, .route = m->route ? m->route->name : NULL,
		.key = k->key, .key_len = k->key_len, .tombstone = k->payload == NULL,
		.db_op = op_known ? route_op_name(m->op) : NULL, .superseded = m->superseded,
		.db_collection = m->route ? m->route->table : NULL, .outcome = outcome_name(m->outcome),
		.error_kind = m->err ? err_kind_name(m->err) : NULL, .error_msg = batch_errmsg(b, m),
		.sqlstate = m->sqlstate[0] ? m->sqlstate : NULL, .source_ts_ms = m->source_ts_ms,
		.start_ns = m->start_ns, .end_ns = end,
	};
	tele_msg_done(a->tele, &m->ctx, &tm);
}

static void log_msg(enum log_level lv, const struct batch *b, const struct bmsg *m, const char *msg)
{
	const rd_kafka_message_t *k = m->rkm;

	log_at(lv, &m->ctx, msg, LF_S("topic", m->topic), LF_I("partition", k->partition),
	       LF_I("offset", k->offset), LF_B("key", k->key, k->key_len),
	       LF_S("route", m->route ? m->route->name : NULL),
	       LF_S("op", m->outcome == OUT_APPLIED || m->outcome == OUT_IGNORED ? route_op_name(m->op) : NULL),
	       LF_S("outcome", outcome_name(m->outcome)),
	       LF_S("error_kind", m->err ? err_kind_name(m->err) : NULL),
	       LF_S("sqlstate", m->sqlstate[0] ? m->sqlstate : NULL), LF_S("error", batch_errmsg(b, m)));
}

/* ---- data errors -------------------------------------------------------- */

static enum error_policy policy_of(const struct apply *a, const struct bmsg *m)
{
	return m->route ? (enum error_policy)m->route->policy : a->cfg->policy;
}

/* A message failed for good: apply its policy. Returns -1 when the policy
 * is stop (m->outcome = OUT_FAILED). Dead-letter messages are produced by
 * dlq_settle(). */
static int fail_message(struct apply *a, struct bmsg *m, const struct batch *b)
{
	enum error_policy p = policy_of(a, m);

	if (p == POLICY_STOP) {
		m->outcome = OUT_FAILED;
		log_msg(LOG_ERROR, b, m, "message failed, policy stop: exiting with offsets untouched");
		report(a, b, m, real_ns());
		return -1;
	}
	m->outcome = p == POLICY_DLQ ? OUT_DLQ : OUT_SKIPPED;
	return 0;
}

/* A dead-letter message that could not be delivered: said once per message. */
static void dlq_failed(struct apply *a, const struct batch *b, struct bmsg *m, int too_large, const char *why)
{
	tele_stall(a->tele, too_large ? "dlq_too_large" : "dlq_delivery");
	if (m->dlq_warned)
		return;
	m->dlq_warned = 1;
	if (too_large)
		log_error("the dead-letter topic refuses this message for its size: raise the topic's "
		          "max.message.bytes (and the broker's message.max.bytes) above it; the partition waits, "
		          "nothing is committed past the message",
		          LF_S("dead_letter_topic", a->dlq ? dlq_topic(a->dlq) : NULL), LF_S("topic", m->topic),
		          LF_I("partition", m->rkm->partition), LF_I("offset", m->rkm->offset),
		          LF_I("bytes", m->rkm->len + m->rkm->key_len), LF_S("error", why));
	else
		log_error("dead-letter delivery failed: retrying with back-off; the partition waits, nothing is "
		          "committed past the message",
		          LF_S("dead_letter_topic", a->dlq ? dlq_topic(a->dlq) : NULL), LF_S("topic", m->topic),
		          LF_I("partition", m->rkm->partition), LF_I("offset", m->rkm->offset), LF_S("error", why),
		          LF_S("reason", batch_errmsg(b, m)));
}

/* Every dead-letter message of w produced and acknowledged by the broker:
 * 0; -1 when stopping (nothing may then be committed). A failed delivery is
 * produced again after a back-off, for as long as it takes. */
static int dlq_settle(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;
	uint64_t start = mono_ns();
	int warned = 0;

	for (int attempt = 0;;) {
		size_t waiting = 0, failed = 0;

		for (size_t i = 0; i < b->n; i++) {
			struct bmsg *m = &b->m[i];
			char why[256] = "";
			int too_large = 0;

			if (m->outcome != OUT_DLQ)
				continue;
			if (!m->dlq) {
				struct dlq_error de = { err_kind_name(m->err), batch_errmsg(b, m), m->sqlstate,
					                m->route ? m->route->name : NULL };

				if (!a->dlq)
					snprintf(why, sizeof(why), "no dead-letter producer");
				if (!a->dlq || dlq_send(a->dlq, m->rkm, &de, &m->dlq, &too_large, why, sizeof(why))) {
					dlq_failed(a, b, m, too_large, why);
					failed++;
				} else {
					waiting++;
				}
				continue;
			}
			switch (dlq_ticket_state(m->dlq, &too_large, why, sizeof(why))) {
			case DLQ_QUEUED:
				waiting++;
				break;
			case DLQ_FAILED:
				dlq_failed(a, b, m, too_large, why);
				dlq_release(&m->dlq);
				failed++;
				break;
			default:
				break;
			}
		}
		if (!waiting && !failed)
			return 0;
		if (waiting && !warned && mono_ns() - start > DLQ_WAIT_LOG_MS * 1000000ULL) {
			warned = 1;
			log_warn("waiting for the dead-letter topic to acknowledge messages; the partition waits",
			         LF_I("messages", waiting), LF_S("dead_letter_topic", dlq_topic(a->dlq)));
		}
		if (failed ? apply_backoff(a, attempt++) : idle(a, 20))
			return -1;
	}
}

/* SINK_PERMANENT: replay message by message; failed ones get their policy.
 * Dead-letter acks must come before the commit, and are not waited for
 * inside an open transaction: then REDO. */
static enum sink_result isolate(struct apply *a, struct apply_work *w, char *err, size_t errlen)
{
	struct batch *b = &w->b;
	enum sink_result rc = sink_apply_isolating(a->sink, b, w->adv, w->nadv, err, errlen);
	int dlq = 0;

	if (rc)
		return rc;
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome != OUT_PENDING || m->err != EK_SQL)
			continue;
		if (fail_message(a, m, b)) {
			sink_rollback(a->sink);
			return SINK_PERMANENT;
		}
		dlq |= m->outcome == OUT_DLQ;
	}
	if (dlq) {
		sink_rollback(a->sink);
		return REDO;
	}
	return sink_commit(a->sink, err, errlen);
}

/* Undo the SQL verdicts of a failed attempt so the next one starts clean. */
static void reset_sql_errors(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->err == EK_SQL && (m->outcome == OUT_PENDING || m->outcome == OUT_SKIPPED)) {
			m->err = EK_NONE;
			m->sqlstate[0] = '\0';
			m->outcome = OUT_PENDING;
		}
	}
}

/* What to fix, for a stall. */
static const char *stall_hint(const char *st)
{
	static const struct { const char *state, *hint; } hints[] = {
		{ "42501", "the sink role lacks a privilege on a table the routes write: GRANT it (INSERT, UPDATE, "
		           "DELETE, and USAGE on the schema)" },
		{ "42P01", "a table the routes write does not exist on the sink: create it, or fix the route" },
		{ "42703", "a column the routes write does not exist on the sink: add it, or fix the route" },
		{ "25006", "the sink is read-only (a standby, or default_transaction_read_only): point sink.conninfo "
		           "at a writable primary" },
		{ "53100", "the sink's disk is full: free space" },
		{ "3D000", "the sink database does not exist" },
		{ "3F000", "a schema the routes write does not exist on the sink" },
		{ "uniform", "every message of the batch fails the same way, so the cause is not one message: fix the "
		             "sink or the route" },
	};

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (!strcmp(st, hints[i].state))
			return hints[i].hint;
	if (!strncmp(st, "28", 2))
		return "the sink refuses cdcrouter's credentials";
	return "the sink refuses the routes' statements: fix the route or the sink";
}

/* ---- committed -------------------------------------------------------- */

/* The sink committed w: remember its offsets, commit them to Kafka, report. */
static void finish(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;
	uint64_t end = real_ns();
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)w->nadv);

	for (size_t j = 0; j < w->nadv; j++) {
		parts_find(&a->parts, w->adv[j].topic, w->adv[j].partition, 1)->next = w->adv[j].next;
		rd_kafka_topic_partition_list_add(offs, w->adv[j].topic, w->adv[j].partition)->offset = w->adv[j].next;
	}
	if (offs->cnt && a->cons)
		consumer_commit(a->cons, offs);
	rd_kafka_topic_partition_list_destroy(offs);

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome == OUT_PENDING)
			m->outcome = OUT_APPLIED;
		switch (m->outcome) {
		case OUT_APPLIED: a->n_applied++; break;
		case OUT_IGNORED: a->n_ignored++; break;
		case OUT_DUPLICATE: a->n_dup++; break;
		default: a->n_failed++;
		}
		if (m->outcome == OUT_SKIPPED || m->outcome == OUT_DLQ)
			log_msg(LOG_WARN, b, m, m->outcome == OUT_DLQ ? "message failed, sent to the dead-letter topic"
			                                             : "message failed, skipped");
		else
			log_msg(LOG_DEBUG, b, m, "message processed");
		report(a, b, m, end);
	}
	a->n_batches++;
	if (b->n) {
		tele_batch_done(a->tele, b->n, w->t0, end);
		log_debug("batch committed", LF_I("messages", b->n), LF_I("bytes", b->bytes), LF_I("partitions", w->nadv),
		          LF_I("collect_us", (long long)(w->t0 - b->m[0].start_ns) / 1000),
		          LF_I("extract_us", (long long)w->extract_ns / 1000),
		          LF_I("sink_us", (long long)(end - w->t0 - w->extract_ns) / 1000));
	}
}

static void work_reset(struct apply_work *w)
{
	release_tickets(&w->b);
	batch_reset(&w->b);
	w->sent = 0;
	w->rc = SINK_OK;
}

/* Bring w to a committed end from a failed (or successful) first attempt:
 * isolate data errors, retry transient ones and stalls with back-off after
 * re-reading the stored offsets, re-read them after a fence. Empties w.
 * Returns APPLY_OK, or APPLY_POLICY_STOP. A stop request during retries
 * returns APPLY_OK with nothing committed: the next run resumes from the stored
 * offsets. */
static enum apply_result settle(struct apply *a, struct apply_work *w, enum sink_result rc, char *err, size_t errlen)
{
	enum apply_result ret = APPLY_OK;

	a->settling = w;
	for (int attempt = 0;; attempt++) {
		if (rc == SINK_PERMANENT) {
			log_warn("batch failed with a data error, isolating the message(s)", LF_S("error", err),
			         LF_I("messages", w->b.n));
			rc = isolate(a, w, err, errlen);
			if (rc == SINK_PERMANENT) {
				ret = APPLY_POLICY_STOP;
				break;
			}
		}
		if (rc == SINK_OK) {
			finish(a, w);
			break;
		}
		if (rc != REDO)
			reset_sql_errors(&w->b);
		if (rc == SINK_FENCED) {
			log_warn("stored offsets moved under us: re-reading them", LF_S("error", err));
		} else if (rc == SINK_STALL) {
			const char *st = sink_last_sqlstate(a->sink);

			tele_stall(a->tele, st);
			log_error("the sink refuses the batch for a reason that is not one message's: offsets kept, "
			          "retrying with back-off", LF_S("sqlstate", st), LF_S("fix", stall_hint(st)),
			          LF_S("error", err), LF_I("attempt", attempt + 1), LF_I("messages", w->b.n));
		} else if (rc == SINK_CHANGED) {
			log_warn("the sink changed while the batch was replayed message by message (a table altered "
			         "between two messages?): no message blamed, replaying the batch", LF_S("error", err),
			         LF_I("attempt", attempt + 1), LF_I("messages", w->b.n));
		} else if (rc != REDO) {
			log_warn("sink unavailable, retrying the batch", LF_S("error", err), LF_I("attempt", attempt + 1));
		}
		if ((rc == SINK_STALL || rc == SINK_TRANSIENT || rc == SINK_CHANGED) && apply_backoff(a, attempt))
			break;
		if (apply_reload_offsets(a, w))
			break;
		apply_build_advances(a, w);
		if (dlq_settle(a, w))
			break;
		if (!w->nadv) {         /* nothing left to apply (dropped by a rebalance or a rewind, or all duplicates) */
			finish(a, w);
			break;
		}
		batch_reduce(&w->b);
		rc = sink_apply(a->sink, &w->b, w->adv, w->nadv, err, errlen);
	}
	a->settling = NULL;
	work_reset(w);
	wait_resume(&a->wt);
	return ret;
}

/* ---- the three steps ---------------------------------------------------- */

/* A message without a route: its topic lost its route in a reload, and
 * the revoke has not come yet. Nothing of the partition is applied, nor
 * dead-lettered: it is paused, and resumes from here when a route returns. */
static void park(struct apply *a, struct bmsg *m)
{
	struct part *p = parts_find(&a->parts, m->topic, m->rkm->partition, 1);

	if (p->parked)
		return;
	p->parked = 1;
	p->parked_from = m->rkm->offset;
	if (!p->paused && consumer_pause(a->cons, p->topic, p->partition, 1) == 0)
		p->paused = 1;
	log_warn("no route for the topic (removed by a reload?): partition paused, nothing of it applied; it "
	         "resumes when a route for it is loaded", LF_S("topic", p->topic), LF_I("partition", p->partition),
	         LF_I("offset", p->parked_from));
}

enum apply_result apply_prepare(struct apply *a)
{
	struct apply_work *w = a->cur;
	struct batch *b = &w->b;

	w->t0 = real_ns();
	apply_filter_applied(a, w);
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		struct part *p;

		if (m->outcome == OUT_DUPLICATE)
			continue;
		p = parts_find(&a->parts, m->topic, m->rkm->partition, 0);
		if (p && p->parked)
			continue;
		if (extract_message(a->x, a->cfg->routes, b, m) == 0)
			continue;
		if (m->err == EK_NO_ROUTE) {
			park(a, m);
			continue;
		}
		if (fail_message(a, m, b))
			return APPLY_POLICY_STOP;
	}
	for (size_t i = 0; i < a->parts.n; i++)
		if (a->parts.v[i]->parked)
			apply_drop_partition(b, a->parts.v[i]->topic, a->parts.v[i]->partition);
	w->extract_ns = real_ns() - w->t0;
	return APPLY_OK;
}

enum apply_result apply_launch(struct apply *a)
{
	struct apply_work *w = a->cur;
	enum sink_result rc = SINK_OK;
	char err[1024] = "";

	a->cur = w == &a->works[0] ? &a->works[1] : &a->works[0];
	apply_filter_applied(a, w);              /* the previous batch may have moved the offsets */
	apply_build_advances(a, w);
	a->settling = w;
	if (dlq_settle(a, w)) {            /* stopping: nothing committed */
		a->settling = NULL;
		work_reset(w);
		wait_resume(&a->wt);
		return APPLY_OK;
	}
	a->settling = NULL;
	apply_build_advances(a, w);              /* a rebalance during the wait may have dropped messages */
	wait_resume(&a->wt);
	batch_reduce(&w->b);
	rc = sink_send(a->sink, &w->b, w->adv, w->nadv, err, sizeof(err));
	if (rc != SINK_OK)
		return settle(a, w, rc, err, sizeof(err));
	w->sent = 1;
	a->fly = w;
	return APPLY_OK;
}

/* The batch in flight gets its verdict, inside a rebalance callback (or
 * before any other use of the sink): a commit finishes it; a failure is
 * kept for apply_complete() to settle outside the callback. */
void apply_quiesce(struct apply *a)
{
	struct apply_work *w = a->fly;
	char err[1024] = "";

	if (!w || !w->sent)
		return;
	w->sent = 0;
	w->rc = sink_wait(a->sink, err, sizeof(err));
	if (w->rc == SINK_OK) {
		finish(a, w);
		work_reset(w);
		a->fly = NULL;
	}
}

void apply_revoke(struct apply *a, const rd_kafka_topic_partition_list_t *l)
{
	apply_quiesce(a);
	for (int k = 0; k < l->cnt; k++) {
		apply_drop_everywhere(a, l->elems[k].topic, l->elems[k].partition);
		parts_forget(&a->parts, l->elems[k].topic, l->elems[k].partition);
	}
	if (a->settling)
		apply_build_advances(a, a->settling);
}

enum apply_result apply_complete(struct apply *a)
{
	struct apply_work *w = a->fly;
	char err[1024] = "";
	enum sink_result rc;

	if (!w)
		return APPLY_OK;
	if (a->wt.in_rebalance) {
		apply_quiesce(a);
		return APPLY_OK;
	}
	a->fly = NULL;
	rc = w->sent ? sink_wait(a->sink, err, sizeof(err)) : w->rc;
	if (!w->sent && rc != SINK_OK)
		snprintf(err, sizeof(err), "the attempt made during a rebalance failed");
	w->sent = 0;
	return settle(a, w, rc, err, sizeof(err));
}
