/* engine.c — the data path; see engine.h. */
#include "util.h"
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "consumer.h"
#include "dlq.h"
#include "extract.h"
#include "log.h"
#include "sink.h"

/* What this process knows of a partition's offset stored in the sink. */
struct part {
	char *topic;
	int32_t partition;
	int64_t next;             /* stored next offset; -1 = no row yet */
};

struct engine {
	struct config *cfg;
	struct tele *tele;
	struct engine_flags *flags;
	struct consumer *cons;
	struct sink *sink;
	struct dlq *dlq;
	struct batch batch;
	struct part *parts;
	size_t nparts;
	int64_t generation;
	int exit_code;
	uint64_t last_stats_ns, last_lag_ns;
	uint64_t n_applied, n_failed, n_ignored, n_dup, n_batches;
	struct sink_advance *adv;
	size_t nadv, capadv;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Sleep up to ms, waking early on stop; returns -1 if stopping. */
static int nap(struct engine *e, int ms)
{
	while (ms > 0 && !e->flags->stop) {
		int step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
	return e->flags->stop ? -1 : 0;
}

/* Exponential back-off with full jitter. */
static int backoff(struct engine *e, int attempt)
{
	long ms = e->cfg->retry_backoff_ms;

	for (int i = 0; i < attempt && ms < e->cfg->retry_backoff_max_ms; i++)
		ms *= 2;
	if (ms > e->cfg->retry_backoff_max_ms)
		ms = e->cfg->retry_backoff_max_ms;
	ms = ms / 2 + random() % (ms / 2 + 1);
	return nap(e, (int)ms);
}

/* ---- partitions ------------------------------------------------------- */

static struct part *part_find(struct engine *e, const char *topic, int32_t partition, int create)
{
	for (size_t i = 0; i < e->nparts; i++)
		if (e->parts[i].partition == partition && strcmp(e->parts[i].topic, topic) == 0)
			return &e->parts[i];
	if (!create)
		return NULL;
	e->parts = xrealloc(e->parts, (e->nparts + 1) * sizeof(*e->parts));
	e->parts[e->nparts] = (struct part){ strdup(topic), partition, -1 };
	return &e->parts[e->nparts++];
}

static void part_remove(struct engine *e, const char *topic, int32_t partition)
{
	struct part *p = part_find(e, topic, partition, 0);

	if (!p)
		return;
	free(p->topic);
	*p = e->parts[--e->nparts];
}

/* Read the stored offset, retrying while the sink is away. */
static int part_load(struct engine *e, struct part *p)
{
	char err[512];

	for (int attempt = 0;; attempt++) {
		int64_t next;
		int rc = sink_load_offset(e->sink, p->topic, p->partition, &next, err, sizeof(err));

		if (rc >= 0) {
			p->next = rc ? next : -1;
			return 0;
		}
		log_warn("cannot read stored offsets, retrying", LF_S("topic", p->topic),
		         LF_I("partition", p->partition), LF_S("error", err));
		if (backoff(e, attempt))
			return -1;
	}
}

static int on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;

	for (int i = 0; i < parts->cnt; i++) {
		struct part *p = part_find(e, parts->elems[i].topic, parts->elems[i].partition, 1);

		if (part_load(e, p))
			return -1;
		parts->elems[i].offset = p->next >= 0 ? p->next : RD_KAFKA_OFFSET_INVALID;
	}
	return 0;
}

/* Messages of a revoked partition not yet applied are dropped: their
 * offsets were not stored, so whoever gets the partition reads them again. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;
	struct batch *b = &e->batch;
	size_t o = 0;

	for (size_t i = 0; i < b->n; i++) {
		rd_kafka_message_t *m = b->m[i].rkm;
		int revoked = 0;

		for (int k = 0; k < parts->cnt && !revoked; k++)
			revoked = m->partition == parts->elems[k].partition &&
			          strcmp(rd_kafka_topic_name(m->rkt), parts->elems[k].topic) == 0;
		if (revoked)
			rd_kafka_message_destroy(m);
		else
			b->m[o++] = b->m[i];
	}
	b->n = o;
	for (int k = 0; k < parts->cnt; k++)
		part_remove(e, parts->elems[k].topic, parts->elems[k].partition);
}

/* ---- setup and reload -------------------------------------------------- */

static int start_consumer(struct engine *e, char *err, size_t errlen)
{
	struct consumer_cbs cbs = { e, on_assign, on_revoke };
	size_t n;
	char **topics;
	int rc;

	e->cons = consumer_new(e->cfg, &cbs, err, errlen);
	if (!e->cons)
		return -1;
	topics = routes_topics(e->cfg->routes, &n);
	rc = consumer_subscribe(e->cons, topics, n, err, errlen);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			log_info("subscribed", LF_S("topic", topics[i]));
		free(topics[i]);
	}
	free(topics);
	return rc;
}

static void apply_log_level(const struct config *c)
{
	enum log_level lv;

	if (log_level_parse(c->log_level, &lv) == 0)
		log_set_level(lv);
}

struct engine *engine_new(struct config *cfg, struct tele *tele, struct engine_flags *flags, char *err,
                          size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	char serr[512];
	enum sink_result rc;

	e->cfg = cfg;
	e->tele = tele;
	e->flags = flags;
	e->generation = 1;
	batch_init(&e->batch);
	apply_log_level(cfg);
	e->sink = sink_new(cfg->conninfo, cfg->password, cfg->group_id);
	sink_set_routes(e->sink, cfg->routes);
	rc = sink_ensure(e->sink, serr, sizeof(serr));
	if (rc == SINK_PERMANENT) {
		/* the database answered and refused a statement: a configuration error */
		snprintf(err, errlen, "%s", serr);
		goto fail;
	}
	if (rc != SINK_OK)
		log_warn("sink not available yet, will retry", LF_S("error", serr));
	if (*cfg->dead_letter_topic && !(e->dlq = dlq_new(cfg, err, errlen)))
		goto fail;
	if (start_consumer(e, err, errlen))
		goto fail;
	tele_set_reload(tele, e->generation, 1);
	return e;
fail:
	e->cfg = NULL;              /* the caller keeps cfg on failure */
	engine_free(&e);
	return NULL;
}

static int same_topics(const struct routes *a, const struct routes *b)
{
	size_t na, nb;
	char **ta = routes_topics(a, &na), **tb = routes_topics(b, &nb);
	int same = na == nb;

	for (size_t i = 0; i < na && same; i++) {
		int found = 0;

		for (size_t j = 0; j < nb; j++)
			found |= strcmp(ta[i], tb[j]) == 0;
		same = found;
	}
	for (size_t i = 0; i < na; i++)
		free(ta[i]);
	for (size_t i = 0; i < nb; i++)
		free(tb[i]);
	free(ta);
	free(tb);
	return same;
}

/* SIGHUP: build the new configuration beside the running one; swap only if
 * it is entirely valid (including its statements preparing on the sink). */
static void reload(struct engine *e)
{
	struct errlist errs = { 0 };
	struct config *nc = config_load(e->cfg->path, &errs), *old = e->cfg;
	char err[512];

	if (!nc) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("reload: configuration error", LF_S("error", errs.v[i]));
		log_error("reload failed, the running configuration stays", LF_I("generation", e->generation),
		          LF_I("errors", errs.n));
		errlist_free(&errs);
		tele_set_reload(e->tele, e->generation, 0);
		return;
	}
	if (!config_sink_changed(old, nc)) {
		sink_set_routes(e->sink, nc->routes);
		if (sink_ensure(e->sink, err, sizeof(err)) == SINK_PERMANENT) {
			log_error("reload failed, a statement does not prepare; the running configuration stays",
			          LF_S("error", err), LF_I("generation", e->generation));
			sink_set_routes(e->sink, old->routes);
			config_free(&nc);
			tele_set_reload(e->tele, e->generation, 0);
			return;
		}
	}
	e->cfg = nc;
	if (config_sink_changed(old, nc)) {
		sink_free(&e->sink);
		e->sink = sink_new(nc->conninfo, nc->password, nc->group_id);
		sink_set_routes(e->sink, nc->routes);
		log_info("sink settings changed: reconnecting");
	}
	if (config_kafka_changed(old, nc)) {
		log_info("kafka settings changed: restarting the consumer");
		consumer_close(&e->cons);
		if (start_consumer(e, err, sizeof(err))) {
			log_error("cannot start the consumer with the new settings", LF_S("error", err));
			e->flags->stop = 1;
			e->exit_code = EXIT_FATAL;
		}
	} else if (!same_topics(old->routes, nc->routes)) {
		size_t n;
		char **topics = routes_topics(nc->routes, &n);

		if (consumer_subscribe(e->cons, topics, n, err, sizeof(err)))
			log_error("re-subscribe failed", LF_S("error", err));
		for (size_t i = 0; i < n; i++) {
			log_info("subscribed", LF_S("topic", topics[i]));
			free(topics[i]);
		}
		free(topics);
	}
	if (strcmp(old->dead_letter_topic, nc->dead_letter_topic) || config_kafka_changed(old, nc)) {
		dlq_free(&e->dlq);
		if (*nc->dead_letter_topic && !(e->dlq = dlq_new(nc, err, sizeof(err))))
			log_error("dead-letter producer", LF_S("error", err));
	}
	apply_log_level(nc);
	config_free(&old);
	e->generation++;
	log_info("configuration reloaded", LF_I("generation", e->generation), LF_I("routes", nc->routes->n));
	tele_set_reload(e->tele, e->generation, 1);
}

/* ---- one batch ----------------------------------------------------------- */

static enum error_policy policy_of(const struct engine *e, const struct bmsg *m)
{
	return m->route ? (enum error_policy)m->route->policy : e->cfg->policy;
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
 * is stop, or when it could not be queued to the dead-letter topic. */
static int fail_message(struct engine *e, struct bmsg *m, char *err, size_t errlen)
{
	struct batch *b = &e->batch;
	enum error_policy p = policy_of(e, m);

	if (p == POLICY_STOP) {
		m->outcome = OUT_FAILED;
		log_msg(LOG_ERROR, b, m, "message failed, policy stop: exiting with offsets untouched");
		return -1;
	}
	if (p == POLICY_DLQ && e->dlq) {
		struct dlq_error de = { err_kind_name(m->err), batch_errmsg(b, m), m->sqlstate,
			                m->route ? m->route->name : NULL };

		if (dlq_send(e->dlq, m->rkm, &de, err, errlen))
			return -1;
		m->outcome = OUT_DLQ;
	} else {
		m->outcome = OUT_SKIPPED;
	}
	return 0;
}

/* Messages below the stored offset were applied already (a redelivery, or a
 * commit whose answer was lost): mark them duplicate. */
static void filter_applied(struct engine *e)
{
	struct batch *b = &e->batch;

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		struct part *p = part_find(e, rd_kafka_topic_name(m->rkm->rkt), m->rkm->partition, 0);

		if (p && p->next >= 0 && m->rkm->offset < p->next && m->outcome != OUT_DUPLICATE) {
			m->outcome = OUT_DUPLICATE;
			m->superseded = 0;
		}
	}
}

/* The advance of every partition with a message still to take effect. */
static void build_advances(struct engine *e)
{
	struct batch *b = &e->batch;

	e->nadv = 0;
	for (size_t i = 0; i < b->n; i++) {
		const rd_kafka_message_t *k = b->m[i].rkm;
		const char *topic = rd_kafka_topic_name(k->rkt);
		struct sink_advance *a = NULL;
		struct part *p;

		if (b->m[i].outcome == OUT_DUPLICATE)
			continue;
		for (size_t j = 0; j < e->nadv && !a; j++)
			if (e->adv[j].partition == k->partition && strcmp(e->adv[j].topic, topic) == 0)
				a = &e->adv[j];
		if (!a) {
			if (e->nadv == e->capadv) {
				e->capadv = e->capadv ? e->capadv * 2 : 8;
				e->adv = xrealloc(e->adv, e->capadv * sizeof(*e->adv));
			}
			p = part_find(e, topic, k->partition, 1);
			a = &e->adv[e->nadv++];
			*a = (struct sink_advance){ p->topic, k->partition, p->next, k->offset + 1 };
		}
		if (k->offset + 1 > a->next)
			a->next = k->offset + 1;
	}
}

/* After a transient error or a fence, re-read what the sink holds. */
static int reload_offsets(struct engine *e)
{
	for (size_t j = 0; j < e->nadv; j++) {
		struct part *p = part_find(e, e->adv[j].topic, e->adv[j].partition, 1);

		if (part_load(e, p))
			return -1;
	}
	filter_applied(e);
	return 0;
}

/* SINK_PERMANENT: replay message by message; failed ones get their policy. */
static enum sink_result isolate(struct engine *e, char *err, size_t errlen)
{
	struct batch *b = &e->batch;
	enum sink_result rc = sink_apply_isolating(e->sink, b, e->adv, e->nadv, err, errlen);
	int queued = 0;

	if (rc)
		return rc;
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome != OUT_PENDING || m->err != EK_SQL)
			continue;
		if (fail_message(e, m, err, errlen)) {
			sink_rollback(e->sink);
			return m->outcome == OUT_FAILED ? SINK_PERMANENT : SINK_TRANSIENT;
		}
		queued |= m->outcome == OUT_DLQ;
	}
	if (queued && dlq_flush(e->dlq, 30000, err, errlen)) {
		sink_rollback(e->sink);
		return SINK_TRANSIENT;
	}
	return sink_commit(e->sink, err, errlen);
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

/* Telemetry and logs for a committed batch; Kafka offset commit. */
static void finish_batch(struct engine *e, uint64_t start_ns)
{
	struct batch *b = &e->batch;
	uint64_t end = now_ns();
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)e->nadv);

	for (size_t j = 0; j < e->nadv; j++) {
		struct part *p = part_find(e, e->adv[j].topic, e->adv[j].partition, 1);

		p->next = e->adv[j].next;
		rd_kafka_topic_partition_list_add(offs, e->adv[j].topic, e->adv[j].partition)->offset = e->adv[j].next;
	}
	if (offs->cnt && e->cons)
		consumer_commit(e->cons, offs);
	rd_kafka_topic_partition_list_destroy(offs);

	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];
		const rd_kafka_message_t *k = m->rkm;
		struct tele_msg tm;

		if (m->outcome == OUT_PENDING)
			m->outcome = OUT_APPLIED;
		switch (m->outcome) {
		case OUT_APPLIED: e->n_applied++; break;
		case OUT_IGNORED: e->n_ignored++; break;
		case OUT_DUPLICATE: e->n_dup++; break;
		default: e->n_failed++;
		}
		if (m->outcome == OUT_SKIPPED || m->outcome == OUT_DLQ)
			log_msg(LOG_WARN, b, m, m->outcome == OUT_DLQ ? "message failed, sent to the dead-letter topic"
			                                             : "message failed, skipped");
		else
			log_msg(LOG_DEBUG, b, m, "message processed");
		if (!e->tele)
			continue;
		tm = (struct tele_msg){
			.topic = rd_kafka_topic_name(k->rkt), .partition = k->partition, .offset = k->offset,
			.group = e->cfg->group_id, .route = m->route ? m->route->name : NULL,
			.key = k->key, .key_len = k->key_len, .tombstone = k->payload == NULL,
			.db_op = m->outcome == OUT_APPLIED || m->outcome == OUT_IGNORED ? route_op_name(m->op) : NULL,
			.db_collection = m->route ? m->route->table : NULL, .outcome = outcome_name(m->outcome),
			.error_kind = m->err ? err_kind_name(m->err) : NULL, .error_msg = batch_errmsg(b, m),
			.sqlstate = m->sqlstate[0] ? m->sqlstate : NULL, .source_ts_ms = m->source_ts_ms,
			.start_ns = m->start_ns, .end_ns = end,
		};
		tele_msg_done(e->tele, &m->ctx, &tm);
	}
	e->n_batches++;
	tele_batch_done(e->tele, b->n, start_ns, end);
}

/* Apply the collected batch exactly once. Returns 0, or an exit code. */
static int process_batch(struct engine *e)
{
	struct batch *b = &e->batch;
	uint64_t t0 = now_ns();
	char err[1024];
	int queued = 0;

	/* route + extract, once per message */
	filter_applied(e);
	for (size_t i = 0; i < b->n; i++) {
		struct bmsg *m = &b->m[i];

		if (m->outcome == OUT_DUPLICATE)
			continue;
		if (extract_message(e->cfg->routes, b, m) == 0)
			continue;
		if (fail_message(e, m, err, sizeof(err))) {
			if (m->outcome == OUT_FAILED)
				return EXIT_POLICY_STOP;
			log_error("dead-letter produce failed", LF_S("error", err));
			return EXIT_FATAL;
		}
		queued |= m->outcome == OUT_DLQ;
	}

	for (int attempt = 0;; attempt++) {
		enum sink_result rc = SINK_OK;

		if (e->flags->stop && attempt > 0)
			return EXIT_OK;        /* nothing committed; the next run resumes here */
		build_advances(e);
		if (queued && dlq_flush(e->dlq, 30000, err, sizeof(err)))
			rc = SINK_TRANSIENT;
		else
			queued = 0;
		if (rc == SINK_OK) {
			batch_reduce(b);
			rc = sink_apply(e->sink, b, e->adv, e->nadv, err, sizeof(err));
			if (rc == SINK_PERMANENT) {
				log_warn("batch failed with a data error, isolating the message(s)",
				         LF_S("error", err), LF_I("messages", b->n));
				rc = isolate(e, err, sizeof(err));
				if (rc == SINK_PERMANENT) {
					/* a stop policy: leave offsets where they are */
					return EXIT_POLICY_STOP;
				}
			}
		}
		if (rc == SINK_OK) {
			finish_batch(e, t0);
			return EXIT_OK;
		}
		reset_sql_errors(b);
		if (rc == SINK_FENCED) {
			log_warn("stored offsets moved under us: re-reading them", LF_S("error", err));
		} else {
			log_warn("sink unavailable, retrying the batch", LF_S("error", err), LF_I("attempt", attempt + 1));
			if (backoff(e, attempt))
				return EXIT_OK;
		}
		if (reload_offsets(e))
			return EXIT_OK;
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void lag_cb(void *opaque, const char *topic, int32_t partition, int64_t lag)
{
	struct engine *e = opaque;

	if (lag >= 0)
		tele_set_lag(e->tele, topic, partition, lag);
}

static void periodic(struct engine *e)
{
	uint64_t now = now_ns();

	if (e->cons && now - e->last_lag_ns > 1000000000ULL) {
		consumer_each_lag(e->cons, lag_cb, e);
		e->last_lag_ns = now;
	}
	if (e->cfg->stats_interval_ms > 0 && now - e->last_stats_ns > (uint64_t)e->cfg->stats_interval_ms * 1000000ULL) {
		if (e->last_stats_ns)
			log_info("progress", LF_I("applied", e->n_applied), LF_I("ignored", e->n_ignored),
			         LF_I("failed", e->n_failed), LF_I("duplicates", e->n_dup), LF_I("batches", e->n_batches),
			         LF_I("generation", e->generation));
		e->last_stats_ns = now;
	}
}

/* Collect up to batch_size messages, waiting at most batch_wait_ms once the
 * first one arrived. */
static int collect(struct engine *e)
{
	struct batch *b = &e->batch;
	uint64_t deadline = 0;
	int fatal = 0;

	while (b->n < (size_t)e->cfg->batch_size && !e->flags->stop && !e->flags->reload) {
		int timeout = 200;
		rd_kafka_message_t *k;

		if (b->n) {
			uint64_t now = now_ns();

			if (now >= deadline)
				break;
			timeout = (int)((deadline - now) / 1000000ULL);
		}
		k = consumer_poll(e->cons, timeout, &fatal);
		if (fatal)
			return -1;
		if (!k) {
			if (!b->n)
				periodic(e);
			continue;
		}
		{
			struct bmsg *m = batch_add(b, k);
			rd_kafka_headers_t *h;
			const void *tp = NULL;
			size_t tplen = 0;

			m->start_ns = now_ns();
			if (b->n == 1)
				deadline = m->start_ns + (uint64_t)e->cfg->batch_wait_ms * 1000000ULL;
			if (rd_kafka_message_headers(k, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
				rd_kafka_header_get_last(h, "traceparent", &tp, &tplen);
			tele_ctx_start(e->tele, tp, tplen, &m->ctx);
		}
	}
	return 0;
}

int engine_run(struct engine *e)
{
	log_info("cdcrouter running", LF_S("group", e->cfg->group_id), LF_I("routes", e->cfg->routes->n),
	         LF_I("generation", e->generation));
	while (!e->flags->stop) {
		int rc;

		if (e->flags->reload) {
			e->flags->reload = 0;
			reload(e);
			continue;
		}
		if (collect(e)) {
			e->exit_code = EXIT_FATAL;
			break;
		}
		if (!e->batch.n)
			continue;
		rc = process_batch(e);
		batch_reset(&e->batch);
		if (rc) {
			e->exit_code = rc;
			break;
		}
		periodic(e);
	}
	log_info("stopping", LF_I("applied", e->n_applied), LF_I("failed", e->n_failed),
	         LF_I("exit_code", e->exit_code));
	return e->exit_code;
}

void engine_free(struct engine **ep)
{
	struct engine *e = *ep;

	if (!e)
		return;
	batch_free(&e->batch);
	consumer_close(&e->cons);       /* leaves the group cleanly */
	dlq_free(&e->dlq);
	sink_free(&e->sink);
	for (size_t i = 0; i < e->nparts; i++)
		free(e->parts[i].topic);
	free(e->parts);
	free(e->adv);
	config_free(&e->cfg);
	free(e);
	*ep = NULL;
}
