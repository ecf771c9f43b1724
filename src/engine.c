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
	struct engine_flags *flags;
	struct apply ap;          /* the batches, and the configuration and clients (ap.cfg, ap.sink,
	                             ap.dlq, ap.tele, ap.cons), which the engine makes, replaces and frees */
	int64_t generation;
	int exit_code;
	uint64_t last_stats_ns, last_lag_ns;   /* monotonic */
	int64_t lag;              /* summed over the partitions at the last look; -1 unknown */
};

static void periodic(void *opaque);

/* The process exit status for what the data path returned. */
static int exit_of(enum apply_result r)
{
	return r == APPLY_POLICY_STOP ? EXIT_POLICY_STOP : EXIT_OK;
}

/* Finish the batch in flight before anything else touches the sink. */
static void settle_inflight(struct engine *e)
{
	enum apply_result rc = apply_complete(&e->ap);

	if (rc && !e->exit_code) {
		e->exit_code = exit_of(rc);
		e->flags->stop = 1;
	}
}

/* ---- partitions ------------------------------------------------------- */

static int on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;
	int was = e->ap.wt.in_rebalance, rc;

	e->ap.wt.in_rebalance = 1;
	rc = apply_assign(&e->ap, parts);
	e->ap.wt.in_rebalance = was;
	return rc;
}

/* Messages of a revoked partition not yet applied are dropped: their
 * offsets were not stored, so whoever gets the partition reads them again. */
static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
	struct engine *e = opaque;
	int was = e->ap.wt.in_rebalance;

	e->ap.wt.in_rebalance = 1;
	apply_revoke(&e->ap, parts);
	e->ap.wt.in_rebalance = was;
}

/* ---- setup and reload -------------------------------------------------- */

struct tele *engine_telemetry(const struct config *c, int *failed)
{
	struct tele_kv hdr[32], res[32];
	char err[256], *copies[64];
	size_t nh = 0, nr = 0, nc = 0;
	struct tele *t;
	struct tele_config tc = { 0 };

	*failed = 0;
	if (!*c->otlp_endpoint)
		return NULL;
	for (size_t i = 0; i < c->otlp_headers.n && nh < 32; i++) {
		char *s = copies[nc++] = xstrdup(c->otlp_headers.v[i]), *colon = strchr(s, ':');

		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		hdr[nh++] = (struct tele_kv){ s, colon };
	}
	for (size_t i = 0; i < c->otlp_resource.n && nr < 32; i++) {
		char *s = copies[nc++] = xstrdup(c->otlp_resource.v[i]), *eq = strchr(s, '=');

		*eq++ = '\0';
		res[nr++] = (struct tele_kv){ s, eq };
	}
	tc.endpoint = c->otlp_endpoint;
	tc.headers = hdr;
	tc.n_headers = nh;
	tc.resource = res;
	tc.n_resource = nr;
	tc.service_name = "cdcrouter";
	tc.service_version = PACKAGE_VERSION;
	tc.sample_ratio = c->otlp_sample_ratio;
	tc.export_interval_ms = c->otlp_export_interval_ms;
	tc.queue_max = c->otlp_queue_size;
	tc.max_batch = 512;
	tc.timeout_ms = c->otlp_timeout_ms;
	tc.gzip = c->otlp_gzip;
	t = tele_new(&tc, err, sizeof(err));
	if (!t) {
		*failed = 1;
		log_error("telemetry cannot start", LF_S("error", err));
	} else {
		log_info("telemetry on", LF_S("endpoint", c->otlp_endpoint));
	}
	for (size_t i = 0; i < nc; i++)
		free(copies[i]);
	return t;
}

static void declare_telemetry(struct engine *e)
{
	tele_set_reload(e->ap.tele, e->generation, 1);
	for (int k = EK_NONE + 1; k <= EK_SQL; k++)
		tele_declare_error_kind(e->ap.tele, err_kind_name((enum err_kind)k));
}

static int subscribe(struct engine *e, char *err, size_t errlen)
{
	size_t n;
	char **topics = routes_topics(e->ap.cfg->routes, &n);
	int rc = consumer_subscribe(e->ap.cons, topics, n, err, errlen);

	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			log_info("subscribed", LF_S("topic", topics[i]));
		free(topics[i]);
	}
	free(topics);
	return rc;
}

static struct consumer *new_consumer(struct engine *e, const struct config *c, char *err, size_t errlen)
{
	struct consumer_cbs cbs = { e, on_assign, on_revoke };

	return consumer_new(c, &cbs, err, errlen);
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
	struct engine *e = xrealloc(NULL, sizeof(*e));
	char serr[512];
	enum sink_result rc;

	memset(e, 0, sizeof(*e));
	apply_init(&e->ap);
	e->ap.cfg = cfg;
	e->ap.tele = tele;
	e->ap.wt.stop = &flags->stop;
	e->ap.wt.tick = periodic;
	e->ap.wt.tick_opaque = e;
	e->flags = flags;
	e->generation = 1;
	e->lag = -1;
	apply_log_level(cfg);
	e->ap.sink = sink_new(cfg->conninfo, cfg->password, cfg->group_id);
	sink_set_routes(e->ap.sink, cfg->routes);
	rc = sink_ensure(e->ap.sink, serr, sizeof(serr));
	if (rc == SINK_PERMANENT || rc == SINK_STALL) {
		/* the database answered and refused a statement: a configuration error */
		snprintf(err, errlen, "%s", serr);
		goto fail;
	}
	if (rc != SINK_OK)
		log_warn("sink not available yet, will retry", LF_S("error", serr));
	if (*cfg->dead_letter_topic && !(e->ap.dlq = dlq_new(cfg, err, errlen)))
		goto fail;
	if (!(e->ap.cons = new_consumer(e, cfg, err, errlen)))
		goto fail;
	if (subscribe(e, err, errlen))
		goto fail;
	declare_telemetry(e);
	return e;
fail:
	e->ap.cfg = NULL;           /* the caller keeps cfg on failure */
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

static void refuse(struct engine *e, const char *why, const char *err)
{
	log_error("reload failed, the running configuration stays", LF_S("reason", why), LF_S("error", err),
	          LF_I("generation", e->generation));
	tele_set_reload(e->ap.tele, e->generation, 0);
}

/* SIGHUP: build the new configuration and every client it changes beside
 * the running ones (the new sink connected and its statements prepared, the
 * dead-letter producer and the consumer made, telemetry started); swap only
 * when all of it stands. What a changed setting needs is the settings
 * table's word (config_changes). */
static void reload(struct engine *e)
{
	struct errlist errs = { 0 };
	struct config *nc = config_load(e->ap.cfg->path, &errs), *old = e->ap.cfg;
	struct sink *nsink = NULL;
	struct dlq *ndlq = NULL;
	struct tele *ntele = NULL;
	struct consumer *ncons = NULL;
	unsigned changes;
	char err[512] = "", what[64];
	enum sink_result rc;
	int failed = 0;

	settle_inflight(e);
	if (!nc) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("reload: configuration error", LF_S("error", errs.v[i]));
		snprintf(err, sizeof(err), "%zu error(s) in the configuration", errs.n);
		refuse(e, "invalid configuration", err);
		errlist_free(&errs);
		return;
	}
	changes = config_changes(old, nc);
	if (changes & CONFIG_R_SINK) {
		nsink = sink_new(nc->conninfo, nc->password, nc->group_id);
		sink_set_routes(nsink, nc->routes);
		if ((rc = sink_ensure(nsink, err, sizeof(err))) != SINK_OK) {
			refuse(e, "the new sink is not ready (connected, statements prepared)", err);
			goto fail;
		}
	} else {
		sink_set_routes(e->ap.sink, nc->routes);
		rc = sink_ensure(e->ap.sink, err, sizeof(err));
		if (rc == SINK_PERMANENT || rc == SINK_STALL) {
			refuse(e, "a statement does not prepare", err);
			goto fail;
		}
		if (rc != SINK_OK)
			log_warn("reload: the sink is away, the statements are prepared when it is back",
			         LF_S("error", err));
	}
	if ((changes & CONFIG_R_DLQ) && *nc->dead_letter_topic && !(ndlq = dlq_new(nc, err, sizeof(err)))) {
		refuse(e, "the dead-letter producer cannot start", err);
		goto fail;
	}
	if ((changes & CONFIG_R_TELEMETRY) && (ntele = engine_telemetry(nc, &failed), failed)) {
		refuse(e, "telemetry cannot start", "see the previous line");
		goto fail;
	}
	if ((changes & CONFIG_R_CONSUMER) && !(ncons = new_consumer(e, nc, err, sizeof(err)))) {
		refuse(e, "the consumer cannot start", err);
		goto fail;
	}

	/* everything stands: swap */
	e->ap.cfg = nc;
	if (nsink) {
		sink_free(&e->ap.sink);
		e->ap.sink = nsink;
		log_info("sink settings changed: using the new connection");
	}
	if (changes & CONFIG_R_DLQ) {
		dlq_free(&e->ap.dlq);
		e->ap.dlq = ndlq;
	}
	if (changes & CONFIG_R_TELEMETRY) {
		struct tele *ot = e->ap.tele;

		e->ap.tele = ntele;
		log_set_tele(ntele);
		tele_free(&ot, 2000);
		declare_telemetry(e);
		log_info("telemetry settings changed: exporter restarted", LF_S("endpoint", nc->otlp_endpoint));
	}
	if (ncons) {
		log_info("kafka settings changed: a new consumer");
		apply_drop_all(&e->ap);           /* not applied: read again from the stored offsets */
		consumer_close(&e->ap.cons);
		e->ap.cons = ncons;
		if (subscribe(e, err, sizeof(err))) {
			log_error("cannot subscribe with the new settings", LF_S("error", err));
			e->flags->stop = 1;
			e->exit_code = EXIT_FATAL;
		}
	} else {
		if (!same_topics(old->routes, nc->routes) && subscribe(e, err, sizeof(err)))
			log_error("re-subscribe failed", LF_S("error", err));
		if (nsink)
			apply_sink_changed(&e->ap);
		apply_routes_changed(&e->ap);
	}
	apply_log_level(nc);
	config_free(&old);
	e->generation++;
	log_info("configuration reloaded", LF_I("generation", e->generation), LF_I("routes", nc->routes->n),
	         LF_S("settings", changes & ~CONFIG_R_LIVE ? config_reload_name(changes & ~CONFIG_R_LIVE, what,
	                                                                          sizeof(what))
	                                                     : changes ? "live" : "unchanged"));
	tele_set_reload(e->ap.tele, e->generation, 1);
	return;
fail:
	if (!nsink)
		sink_set_routes(e->ap.sink, old->routes);   /* it was given the new ones to prepare */
	sink_free(&nsink);
	dlq_free(&ndlq);
	tele_free(&ntele, 0);
	consumer_close(&ncons);
	config_free(&nc);
}

/* ---- the loop ------------------------------------------------------------ */

static void lag_cb(void *opaque, const char *topic, int32_t partition, int64_t lag)
{
	struct engine *e = opaque;

	if (lag >= 0) {
		tele_set_lag(e->ap.tele, topic, partition, lag);
		e->lag = (e->lag < 0 ? 0 : e->lag) + lag;
	}
}

static void progress(struct engine *e)
{
	const struct apply *a = &e->ap;

	log_info("progress", LF_I("applied", a->n_applied), LF_I("ignored", a->n_ignored),
	         LF_I("failed", a->n_failed), LF_I("duplicates", a->n_dup), LF_I("batches", a->n_batches),
	         LF_I("lag", e->lag), LF_I("generation", e->generation));
}

/* Lag (every second) and the progress line; also while a batch waits. */
static void periodic(void *opaque)
{
	struct engine *e = opaque;
	uint64_t now = mono_ns();

	if (e->ap.cons && now - e->last_lag_ns > 1000000000ULL) {
		e->lag = -1;
		consumer_each_lag(e->ap.cons, lag_cb, e);
		e->last_lag_ns = now;
	}
	if (e->flags->status) {
		e->flags->status = 0;
		progress(e);
	}
	if (e->ap.cfg->stats_interval_ms > 0 && now - e->last_stats_ns > (uint64_t)e->ap.cfg->stats_interval_ms * 1000000ULL) {
		if (e->last_stats_ns)
			progress(e);
		e->last_stats_ns = now;
	}
}

static void take(struct engine *e, struct batch *b, rd_kafka_message_t *k, uint64_t *deadline)
{
	struct bmsg *m = batch_add(b, k);
	rd_kafka_headers_t *h;
	const void *tp = NULL;
	size_t tplen = 0;

	m->start_ns = real_ns();
	if (b->n == 1)
		*deadline = mono_ns() + (uint64_t)e->ap.cfg->batch_wait_ms * 1000000ULL;
	if (rd_kafka_message_headers(k, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_header_get_last(h, "traceparent", &tp, &tplen);
	tele_ctx_start(e->ap.tele, tp, tplen, &m->ctx);
}

/* k would take b over apply.batch_bytes: it waits for the next batch
 * (a message bigger than that goes alone). */
static int full(struct engine *e, const struct batch *b, rd_kafka_message_t *k)
{
	if (!b->n || b->bytes + k->len + k->key_len <= (size_t)e->ap.cfg->batch_bytes)
		return 0;
	apply_hold_back(&e->ap, k);
	return 1;
}

/* Collect up to batch_size messages (or batch_bytes of keys and values).
 * While the sink is idle, a batch goes as soon as the consumer has nothing
 * more at hand (low latency at low rates); while a batch is in flight,
 * collection goes on until the sink answers, the batch is full or
 * batch_wait_ms passed (big batches at high rates). With nothing to read
 * and a batch in flight, return at once so it gets committed without
 * waiting for more traffic. Messages held during a wait come first. */
static int collect(struct engine *e)
{
	struct batch *b = &e->ap.cur->b;
	uint64_t deadline = 0;
	int fatal = 0;

	while (b->n < (size_t)e->ap.cfg->batch_size && !e->flags->stop && !e->flags->reload) {
		int timeout = e->ap.fly ? 0 : 200;
		rd_kafka_message_t *k = apply_take_held(&e->ap);

		if (k) {
			if (full(e, b, k))
				break;
			take(e, b, k, &deadline);
			continue;
		}
		if (b->n) {
			if (mono_ns() >= deadline || !e->ap.fly || sink_answering(e->ap.sink))
				timeout = 0;
			else
				timeout = 1;
		}
		k = consumer_poll(e->ap.cons, timeout, &fatal);
		if (fatal)
			return -1;
		if (!k) {
			if (b->n) {
				if (!e->ap.fly || sink_answering(e->ap.sink) || mono_ns() >= deadline)
					break;
				continue;
			}
			if (e->ap.fly)
				break;
			apply_idle(&e->ap);
			periodic(e);
			continue;
		}
		if (full(e, b, k))
			break;
		take(e, b, k, &deadline);
	}
	return 0;
}

/* The loop: while the sink works on one batch, collect and extract the next. */
int engine_run(struct engine *e)
{
	log_info("cdcrouter running", LF_S("group", e->ap.cfg->group_id), LF_I("routes", e->ap.cfg->routes->n),
	         LF_I("generation", e->generation));
	while (!e->flags->stop) {
		enum apply_result rc = APPLY_OK, rc2;

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
			e->exit_code = exit_of(rc);
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
	apply_drop_all(&e->ap);         /* librdkafka wants its messages back before it goes */
	consumer_close(&e->ap.cons);    /* leaves the group cleanly */
	dlq_free(&e->ap.dlq);
	sink_free(&e->ap.sink);
	config_free(&e->ap.cfg);
	if (e->ap.tele) {
		log_set_tele(NULL);
		tele_free(&e->ap.tele, 3000);
	}
	apply_free(&e->ap);
	free(e);
	*ep = NULL;
}

struct tele *engine_take_telemetry(struct engine *e)
{
	struct tele *t = e->ap.tele;

	e->ap.tele = NULL;
	return t;
}
