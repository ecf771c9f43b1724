/* apply.c — batches applied exactly once; see apply.h. */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define DLQ_FLUSH_MS 30000

uint64_t apply_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int apply_backoff(struct apply *a, int attempt)
{
	long ms = a->cfg->retry_backoff_ms;

	for (int i = 0; i < attempt && ms < a->cfg->retry_backoff_max_ms; i++)
		ms *= 2;
	if (ms > a->cfg->retry_backoff_max_ms)
		ms = a->cfg->retry_backoff_max_ms;
	ms = ms / 2 + random() % (ms / 2 + 1);          /* jitter */
	while (ms > 0 && !a->flags->stop) {
		long step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
	return a->flags->stop ? -1 : 0;
}

void apply_init(struct apply *a)
{
	memset(a, 0, sizeof(*a));
	batch_init(&a->works[0].b);
	batch_init(&a->works[1].b);
	a->cur = &a->works[0];
	a->x = extract_new();
}

void apply_free(struct apply *a)
{
	for (int i = 0; i < 2; i++) {
		batch_free(&a->works[i].b);
		free(a->works[i].adv);
	}
	for (size_t i = 0; i < a->nparts; i++)
		free(a->parts[i].topic);
	free(a->parts);
	extract_free(&a->x);
	memset(a, 0, sizeof(*a));
}

/* ---- what the sink holds ------------------------------------------------ */

static struct apply_part *part_find(struct apply *a, const char *topic, int32_t partition, int create)
{
	for (size_t i = 0; i < a->nparts; i++)
		if (a->parts[i].partition == partition && strcmp(a->parts[i].topic, topic) == 0)
			return &a->parts[i];
	if (!create)
		return NULL;
	a->parts = xrealloc(a->parts, (a->nparts + 1) * sizeof(*a->parts));
	a->parts[a->nparts] = (struct apply_part){ strdup(topic), partition, -1 };
	return &a->parts[a->nparts++];
}

void apply_forget_partition(struct apply *a, const char *topic, int32_t partition)
{
	struct apply_part *p = part_find(a, topic, partition, 0);

	if (!p)
		return;
	free(p->topic);
	*p = a->parts[--a->nparts];
}

/* Read the stored offset, retrying while the sink is away. */
static int part_load(struct apply *a, struct apply_part *p)
{
	char err[512];

	for (int attempt = 0;; attempt++) {
		int64_t next;
		int rc = sink_load_offset(a->sink, p->topic, p->partition, &next, err, sizeof(err));

		if (rc >= 0) {
			p->next = rc ? next : -1;
			return 0;
		}
		log_warn("cannot read stored offsets, retrying", LF_S("topic", p->topic),
		         LF_I("partition", p->partition), LF_S("error", err));
		if (apply_backoff(a, attempt))
			return -1;
	}
}

int apply_partition_start(struct apply *a, const char *topic, int32_t partition, int64_t *offset)
{
	struct apply_part *p = part_find(a, topic, partition, 1);

	if (part_load(a, p))
		return -1;
	*offset = p->next >= 0 ? p->next : RD_KAFKA_OFFSET_INVALID;
	return 0;
}

/* Messages below the stored offset were applied already (a redelivery, or a
 * commit whose answer was lost): mark them duplicate. */
static void filter_applied(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		struct apply_part *p = part_find(a, rd_kafka_topic_name(m->rkm->rkt), m->rkm->partition, 0);

		if (p && p->next >= 0 && m->rkm->offset < p->next && m->outcome != OUT_DUPLICATE) {
			m->outcome = OUT_DUPLICATE;
			m->superseded = 0;
		}
	}
}

/* The advance of every partition with a message still to take effect. */
static void build_advances(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;

	w->nadv = 0;
	for (size_t i = 0; i < b->n; i++) {
		const rd_kafka_message_t *k = b->m[i].rkm;
		const char *topic = rd_kafka_topic_name(k->rkt);
		struct sink_advance *adv = NULL;

		if (b->m[i].outcome == OUT_DUPLICATE)
			continue;
		for (size_t j = 0; j < w->nadv && !adv; j++)
			if (w->adv[j].partition == k->partition && strcmp(w->adv[j].topic, topic) == 0)
				adv = &w->adv[j];
		if (!adv) {
			struct apply_part *p = part_find(a, topic, k->partition, 1);

			if (w->nadv == w->capadv) {
				w->capadv = w->capadv ? w->capadv * 2 : 8;
				w->adv = xrealloc(w->adv, w->capadv * sizeof(*w->adv));
			}
			adv = &w->adv[w->nadv++];
			*adv = (struct sink_advance){ p->topic, k->partition, p->next, k->offset + 1 };
		}
		if (k->offset + 1 > adv->next)
			adv->next = k->offset + 1;
	}
}

/* After a transient error or a fence, re-read what the sink holds. */
static int reload_offsets(struct apply *a, struct apply_work *w)
{
	for (size_t j = 0; j < w->nadv; j++)
		if (part_load(a, part_find(a, w->adv[j].topic, w->adv[j].partition, 1)))
			return -1;
	filter_applied(a, w);
	return 0;
}

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
		.topic = rd_kafka_topic_name(k->rkt), .partition = k->partition, .offset = k->offset,
		.group = a->cfg->group_id, .route = m->route ? m->route->name : NULL,
		.key = k->key, .key_len = k->key_len, .tombstone = k->payload == NULL,
		.db_op = op_known ? route_op_name(m->op) : NULL,
		.db_collection = m->route ? m->route->table : NULL, .outcome = outcome_name(m->outcome),
		.error_kind = m->err ? err_kind_name(m->err) : NULL, .error_msg = batch_errmsg(b, m),
		.sqlstate = m->sqlstate[0] ? m->sqlstate : NULL, .source_ts_ms = m->source_ts_ms,
		.start_ns = m->start_ns, .end_ns = end,
	};
	tele_msg_done(a->tele, &m->ctx, &tm);
}

/* ---- data errors ------------------------------------------------------- */

static enum error_policy policy_of(const struct apply *a, const struct bmsg *m)
{
	return m->route ? (enum error_policy)m->route->policy : a->cfg->policy;
}

static void log_msg(enum log_level lv, const struct batch *b, const struct bmsg *m, const char *msg)
{
	const rd_kafka_message_t *k = m->rkm;

	log_at(lv, &m->ctx, msg, LF_S("topic", rd_kafka_topic_name(k->rkt)), LF_I("partition", k->partition),
	       LF_I("offset", k->offset), LF_B("key", k->key, k->key_len),
	       LF_S("route", m->route ? m->route->name : NULL),
	       LF_S("op", m->outcome == OUT_APPLIED || m->outcome == OUT_IGNORED ? route_op_name(m->op) : NULL),
	       LF_S("outcome", outcome_name(m->outcome)),
	       LF_S("error_kind", m->err ? err_kind_name(m->err) : NULL),
	       LF_S("sqlstate", m->sqlstate[0] ? m->sqlstate : NULL), LF_S("error", batch_errmsg(b, m)));
}

/* A message failed for good: apply its policy. Returns -1 when the policy
 * is stop (m->outcome = OUT_FAILED), or when it could not be queued to the
 * dead-letter topic. */
static int fail_message(struct apply *a, struct apply_work *w, struct bmsg *m, char *err, size_t errlen)
{
	struct batch *b = &w->b;
	enum error_policy p = policy_of(a, m);

	if (p == POLICY_STOP) {
		m->outcome = OUT_FAILED;
		log_msg(LOG_ERROR, b, m, "message failed, policy stop: exiting with offsets untouched");
		report(a, b, m, apply_now_ns());
		return -1;
	}
	if (p == POLICY_DLQ && a->dlq) {
		struct dlq_error de = { err_kind_name(m->err), batch_errmsg(b, m), m->sqlstate,
			                m->route ? m->route->name : NULL };

		if (dlq_send(a->dlq, m->rkm, &de, err, errlen))
			return -1;
		m->outcome = OUT_DLQ;
		w->dlq_queued = 1;
	} else {
		m->outcome = OUT_SKIPPED;
	}
	return 0;
}

/* SINK_PERMANENT: replay message by message; failed ones get their policy. */
static enum sink_result isolate(struct apply *a, struct apply_work *w, char *err, size_t errlen)
{
	struct batch *b = &w->b;
	enum sink_result rc = sink_apply_isolating(a->sink, b, w->adv, w->nadv, err, errlen);

	if (rc)
		return rc;
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome != OUT_PENDING || m->err != EK_SQL)
			continue;
		if (fail_message(a, w, m, err, errlen)) {
			sink_rollback(a->sink);
			return m->outcome == OUT_FAILED ? SINK_PERMANENT : SINK_TRANSIENT;
		}
	}
	if (w->dlq_queued && dlq_flush(a->dlq, DLQ_FLUSH_MS, err, errlen)) {
		sink_rollback(a->sink);
		return SINK_TRANSIENT;
	}
	w->dlq_queued = 0;
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

/* ---- committed -------------------------------------------------------- */

/* The sink committed w: remember its offsets, commit them to Kafka, report. */
static void finish(struct apply *a, struct apply_work *w)
{
	struct batch *b = &w->b;
	uint64_t end = apply_now_ns();
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)w->nadv);

	for (size_t j = 0; j < w->nadv; j++) {
		part_find(a, w->adv[j].topic, w->adv[j].partition, 1)->next = w->adv[j].next;
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
	tele_batch_done(a->tele, b->n, w->t0, end);
	log_debug("batch committed", LF_I("messages", b->n), LF_I("partitions", w->nadv),
	          LF_I("collect_us", (long long)(w->t0 - b->m[0].start_ns) / 1000),
	          LF_I("extract_us", (long long)w->extract_ns / 1000),
	          LF_I("sink_us", (long long)(end - w->t0 - w->extract_ns) / 1000));
}

/* Bring w to a committed end from a failed (or successful) first attempt:
 * isolate data errors, retry transient ones with back-off after re-reading
 * the stored offsets, re-read them after a fence. Empties w. Returns 0, or
 * an exit code (policy stop). A stop request during retries returns 0 with
 * nothing committed: the next run resumes from the stored offsets. */
static int settle(struct apply *a, struct apply_work *w, enum sink_result rc, char *err, size_t errlen)
{
	int ret = EXIT_OK;

	for (int attempt = 0;; attempt++) {
		if (rc == SINK_PERMANENT) {
			log_warn("batch failed with a data error, isolating the message(s)", LF_S("error", err),
			         LF_I("messages", w->b.n));
			rc = isolate(a, w, err, errlen);
			if (rc == SINK_PERMANENT) {
				ret = EXIT_POLICY_STOP;
				break;
			}
		}
		if (rc == SINK_OK) {
			finish(a, w);
			break;
		}
		reset_sql_errors(&w->b);
		if (rc == SINK_FENCED) {
			log_warn("stored offsets moved under us: re-reading them", LF_S("error", err));
		} else {
			log_warn("sink unavailable, retrying the batch", LF_S("error", err), LF_I("attempt", attempt + 1));
			if (apply_backoff(a, attempt))
				break;
		}
		if (reload_offsets(a, w))
			break;
		build_advances(a, w);
		if (w->dlq_queued && dlq_flush(a->dlq, DLQ_FLUSH_MS, err, errlen)) {
			rc = SINK_TRANSIENT;
			continue;
		}
		w->dlq_queued = 0;
		batch_reduce(&w->b);
		rc = sink_apply(a->sink, &w->b, w->adv, w->nadv, err, errlen);
	}
	batch_reset(&w->b);
	w->dlq_queued = 0;
	return ret;
}

/* ---- the three steps ---------------------------------------------------- */

int apply_prepare(struct apply *a)
{
	struct apply_work *w = a->cur;
	struct batch *b = &w->b;
	char err[512];

	w->t0 = apply_now_ns();
	filter_applied(a, w);
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome == OUT_DUPLICATE || extract_message(a->x, a->cfg->routes, b, m) == 0)
			continue;
		if (fail_message(a, w, m, err, sizeof(err))) {
			if (m->outcome == OUT_FAILED)
				return EXIT_POLICY_STOP;
			log_error("dead-letter produce failed", LF_S("error", err));
			return EXIT_FATAL;
		}
	}
	w->extract_ns = apply_now_ns() - w->t0;
	return EXIT_OK;
}

int apply_launch(struct apply *a)
{
	struct apply_work *w = a->cur;
	enum sink_result rc = SINK_OK;
	char err[1024] = "";

	a->cur = w == &a->works[0] ? &a->works[1] : &a->works[0];
	filter_applied(a, w);              /* the previous batch may have moved the offsets */
	build_advances(a, w);
	if (w->dlq_queued && dlq_flush(a->dlq, DLQ_FLUSH_MS, err, sizeof(err)))
		return settle(a, w, SINK_TRANSIENT, err, sizeof(err));
	w->dlq_queued = 0;
	batch_reduce(&w->b);
	rc = sink_send(a->sink, &w->b, w->adv, w->nadv, err, sizeof(err));
	if (rc != SINK_OK)
		return settle(a, w, rc, err, sizeof(err));
	a->fly = w;
	return EXIT_OK;
}

int apply_complete(struct apply *a)
{
	struct apply_work *w = a->fly;
	char err[1024] = "";

	if (!w)
		return EXIT_OK;
	a->fly = NULL;
	return settle(a, w, sink_wait(a->sink, err, sizeof(err)), err, sizeof(err));
}
