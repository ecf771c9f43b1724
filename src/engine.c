/* engine.c — the data path; see engine.h. */
#include "util.h"
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "consumer.h"
#include "dlq.h"
#include "log.h"
#include "sink.h"

struct engine {
	struct config *cfg;
	struct tele *tele;
	struct engine_flags *flags;
	struct consumer *cons;
	struct sink *sink;
	struct dlq *dlq;
	struct apply ap;          /* the batches; its pointers mirror the ones above */
	int64_t generation;
	int exit_code;
	uint64_t last_stats_ns, last_lag_ns;
};

/* Point the applier at the current configuration and clients. */
static void sync_apply(struct engine *e)
{
	e->ap.cfg = e->cfg;
	e->ap.sink = e->sink;
	e->ap.dlq = e->dlq;
	e->ap.tele = e->tele;
	e->ap.cons = e->cons;
	e->ap.flags = e->flags;
}

/* Finish the batch in flight before anything else touches the sink. */
static void settle_inflight(struct engine *e)
{
	int rc = apply_complete(&e->ap);

	if (rc && !e->exit_code) {
		e->exit_code = rc;
		e->flags->stop = 1;
	}
}

/* ---- partitions ------------------------------------------------------- */

static int on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;

	settle_inflight(e);
	for (int i = 0; i < parts->cnt; i++)
		if (apply_partition_start(&e->ap, parts->elems[i].topic, parts->elems[i].partition,
		                          &parts->elems[i].offset))
			return -1;
	return 0;
}

/* Messages of a revoked partition not yet applied are dropped: their
 * offsets were not stored, so whoever gets the partition reads them again. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;
	struct batch *b = &e->ap.cur->b;
	size_t o = 0;

	settle_inflight(e);
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
		apply_forget_partition(&e->ap, parts->elems[k].topic, parts->elems[k].partition);
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
	apply_init(&e->ap);
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
	sync_apply(e);
	if (start_consumer(e, err, errlen))
		goto fail;
	sync_apply(e);
	tele_set_reload(tele, e->generation, 1);
	for (int k = EK_NONE + 1; k <= EK_SQL; k++)
		tele_declare_error_kind(tele, err_kind_name((enum err_kind)k));
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

	settle_inflight(e);

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
	sync_apply(e);
	config_free(&old);
	e->generation++;
	log_info("configuration reloaded", LF_I("generation", e->generation), LF_I("routes", nc->routes->n));
	tele_set_reload(e->tele, e->generation, 1);
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
	uint64_t now = apply_now_ns();
	const struct apply *a = &e->ap;

	if (e->cons && now - e->last_lag_ns > 1000000000ULL) {
		consumer_each_lag(e->cons, lag_cb, e);
		e->last_lag_ns = now;
	}
	if (e->cfg->stats_interval_ms > 0 && now - e->last_stats_ns > (uint64_t)e->cfg->stats_interval_ms * 1000000ULL) {
		if (e->last_stats_ns)
			log_info("progress", LF_I("applied", a->n_applied), LF_I("ignored", a->n_ignored),
			         LF_I("failed", a->n_failed), LF_I("duplicates", a->n_dup), LF_I("batches", a->n_batches),
			         LF_I("generation", e->generation));
		e->last_stats_ns = now;
	}
}

/* Collect up to batch_size messages. While the sink is idle, a batch goes
 * as soon as the consumer has nothing more at hand (low latency at low
 * rates); while a batch is in flight, collection goes on until the sink
 * answers, the batch is full or batch_wait_ms passed (big batches at high
 * rates). With nothing to read and a batch in flight, return at once so it
 * gets committed without waiting for more traffic. */
static int collect(struct engine *e)
{
	struct batch *b = &e->ap.cur->b;
	uint64_t deadline = 0;
	int fatal = 0;

	while (b->n < (size_t)e->cfg->batch_size && !e->flags->stop && !e->flags->reload) {
		int timeout = e->ap.fly ? 0 : 200;
		rd_kafka_message_t *k;

		if (b->n) {
			uint64_t now = apply_now_ns();

			if (now >= deadline || !e->ap.fly || sink_answering(e->sink))
				timeout = 0;
			else
				timeout = 1;
		}
		k = consumer_poll(e->cons, timeout, &fatal);
		if (fatal)
			return -1;
		if (!k) {
			if (b->n) {
				if (!e->ap.fly || sink_answering(e->sink) || apply_now_ns() >= deadline)
					break;
				continue;
			}
			if (e->ap.fly)
				break;
			periodic(e);
			continue;
		}
		{
			struct bmsg *m = batch_add(b, k);
			rd_kafka_headers_t *h;
			const void *tp = NULL;
			size_t tplen = 0;

			m->start_ns = apply_now_ns();
			if (b->n == 1)
				deadline = m->start_ns + (uint64_t)e->cfg->batch_wait_ms * 1000000ULL;
			if (rd_kafka_message_headers(k, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
				rd_kafka_header_get_last(h, "traceparent", &tp, &tplen);
			tele_ctx_start(e->tele, tp, tplen, &m->ctx);
		}
	}
	return 0;
}

/* The loop: while the sink works on one batch, collect and extract the next. */
int engine_run(struct engine *e)
{
	log_info("cdcrouter running", LF_S("group", e->cfg->group_id), LF_I("routes", e->cfg->routes->n),
	         LF_I("generation", e->generation));
	while (!e->flags->stop) {
		int rc = EXIT_OK, rc2;

		if (e->flags->reload) {
			e->flags->reload = 0;
			reload(e);
			continue;
		}
		if (collect(e)) {
			e->exit_code = EXIT_FATAL;
			break;
		}
		if (e->ap.cur->b.n)
			rc = apply_prepare(&e->ap);
		rc2 = apply_complete(&e->ap);          /* the previous batch */
		if (!rc)
			rc = rc2;
		if (!rc && e->ap.cur->b.n)
			rc = apply_launch(&e->ap);
		if (rc) {
			e->exit_code = rc;
			break;
		}
		periodic(e);
	}
	settle_inflight(e);
	log_info("stopping", LF_I("applied", e->ap.n_applied), LF_I("failed", e->ap.n_failed),
	         LF_I("exit_code", e->exit_code));
	return e->exit_code;
}

void engine_free(struct engine **ep)
{
	struct engine *e = *ep;

	if (!e)
		return;
	settle_inflight(e);
	batch_reset(&e->ap.cur->b);
	consumer_close(&e->cons);       /* leaves the group cleanly */
	dlq_free(&e->dlq);
	sink_free(&e->sink);
	apply_free(&e->ap);
	config_free(&e->cfg);
	free(e);
	*ep = NULL;
}
