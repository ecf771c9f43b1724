/* consumer.c — librdkafka consumer with sink-stored offsets; see consumer.h. */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nudge.h"
#include "util.h"

#define CLOSE_MAX_MS 5000      /* longest wait to leave the group on close */

struct consumer {
	rd_kafka_t *rk;
	struct consumer_cbs cbs;
	int closing;
	struct nudge *nudge;
};

/* Properties only a consumer understands (a producer warns about them). */
static int consumer_only(const char *name)
{
	static const char *const prefixes[] = { "group.", "session.timeout.ms", "heartbeat.interval.ms",
		"max.poll.interval.ms", "auto.", "enable.auto.", "fetch.", "queued.", "partition.assignment.strategy",
		"isolation.level", "check.crcs", "enable.partition.eof", "coordinator.query.interval.ms", NULL };

	for (int i = 0; prefixes[i]; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

int consumer_set_props(rd_kafka_conf_t *conf, const struct strlist *props, int for_producer, char *err,
                       size_t errlen)
{
	for (size_t i = 0; i < props->n; i++) {
		char *kv = xstrdup(props->v[i]), *eq = strchr(kv, '=');
		char e[256];

		*eq = '\0';
		if (for_producer && consumer_only(kv)) {
			free(kv);
			continue;
		}
		if (rd_kafka_conf_set(conf, kv, eq + 1, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "kafka.properties '%s': %s", kv, e);
			free(kv);
			return -1;
		}
		free(kv);
	}
	return 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
	struct consumer *c = opaque;
	int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *e = NULL;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++)
			parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
		if (c->cbs.on_assign && c->cbs.on_assign(c->cbs.opaque, parts) != 0) {
			log_warn("partition assignment abandoned (shutting down)", LF_I("partitions", parts->cnt));
			return;
		}
		for (int i = 0; i < parts->cnt; i++)
			log_info("partition assigned", LF_S("topic", parts->elems[i].topic),
			         LF_I("partition", parts->elems[i].partition),
			         LF_I("start_offset", parts->elems[i].offset));
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
	} else {
		if (c->cbs.on_revoke)
			c->cbs.on_revoke(c->cbs.opaque, parts);
		for (int i = 0; i < parts->cnt; i++)
			log_info("partition revoked", LF_S("topic", parts->elems[i].topic),
			         LF_I("partition", parts->elems[i].partition));
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (e) {
		log_error("rebalance failed", LF_S("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
}

void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (level <= 3)
		log_error("librdkafka", LF_S("facility", fac), LF_S("detail", buf));
	else if (level <= 4)
		log_warn("librdkafka", LF_S("facility", fac), LF_S("detail", buf));
	else
		log_debug("librdkafka", LF_S("facility", fac), LF_S("detail", buf));
}

static long conf_long(rd_kafka_conf_t *conf, const char *name)
{
	char v[64];
	size_t n = sizeof(v);

	return rd_kafka_conf_get(conf, name, v, &n) == RD_KAFKA_CONF_OK ? atol(v) : 0;
}

/* One fetch response may overshoot the prefetch queue by fetch.max.bytes
 * (per broker). librdkafka sizes it to queued.max.messages.kbytes (16 MB);
 * 4 MB keeps the overshoot small and is still ~15,000 events per round
 * trip. Unless the properties set it: then it is theirs, and it must stay
 * >= message.max.bytes, which librdkafka checks. */
static int cap_fetch(rd_kafka_conf_t *conf, const struct strlist *props, char *err, size_t errlen)
{
	long cap = 4L << 20, mmb = conf_long(conf, "message.max.bytes");
	char v[32], e[256];

	for (size_t i = 0; i < props->n; i++)
		if (strncmp(props->v[i], "fetch.max.bytes=", 16) == 0)
			return 0;
	snprintf(v, sizeof(v), "%ld", mmb > cap ? mmb : cap);
	if (rd_kafka_conf_set(conf, "fetch.max.bytes", v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "fetch.max.bytes: %s", e);
		return -1;
	}
	return 0;
}

struct consumer *consumer_new(const struct config *cfg, const struct consumer_cbs *cbs, char *err,
                              size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct consumer *c = xcalloc(1, sizeof(*c));
	char e[512];
	const struct { const char *k, *v; } fixed[] = {
		{ "bootstrap.servers", cfg->brokers },
		{ "group.id", cfg->group_id },
		{ "auto.offset.reset", cfg->auto_offset_reset },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "enable.partition.eof", "false" },
		{ "client.id", "cdcrouter" },
		{ "fetch.wait.max.ms", "50" },
		/* how long the group waits for a cdcrouter that died, and the
		 * longest exit while Kafka is away (librdkafka's destroy waits
		 * that long for the group it could not leave) */
		{ "session.timeout.ms", "10000" },
		/* a small prefetch queue (~2 batches, ≤ 16 MB) is enough
		 * with fetch nudges (nudge.h) */
		{ "queued.min.messages", "10000" },
		{ "queued.max.messages.kbytes", "16384" },
	};
	long qmsgs, qkb;

	c->cbs = *cbs;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (rd_kafka_conf_set(conf, fixed[i].k, fixed[i].v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s: %s", fixed[i].k, e);
			goto fail;
		}
	}
	if (consumer_set_props(conf, &cfg->kafka_props, 0, err, errlen))
		goto fail;
	if (cap_fetch(conf, &cfg->kafka_props, err, errlen))
		goto fail;
	qmsgs = conf_long(conf, "queued.min.messages");
	qkb = conf_long(conf, "queued.max.messages.kbytes");
	/* ours, whatever the properties say: offsets are managed here */
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof(e));
	rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", e, sizeof(e));
	rd_kafka_conf_set_opaque(conf, c);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
	if (!c->rk) {
		snprintf(err, errlen, "kafka consumer: %s", e);
		goto fail;          /* rd_kafka_new takes conf only on success */
	}
	conf = NULL;                /* owned by rk now */
	rd_kafka_poll_set_consumer(c->rk);
	c->nudge = nudge_new(c->rk, (size_t)qmsgs, (size_t)qkb * 1024);
	return c;
fail:
	rd_kafka_conf_destroy(conf);
	free(c);
	return NULL;
}

int consumer_subscribe(struct consumer *c, char **topics, size_t n, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
	rd_kafka_resp_err_t e;

	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(c->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(e));
		return -1;
	}
	return 0;
}

rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms, int *fatal)
{
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);

	if (!m) {
		nudge_dry(c->nudge);
		return NULL;
	}
	if (!m->err) {
		nudge_seen(c->nudge, m->len);
		return m;
	}
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		rd_kafka_message_destroy(m);
		return NULL;
	}
	if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[512];

		rd_kafka_fatal_error(c->rk, buf, sizeof(buf));
		log_error("kafka fatal error", LF_S("error", buf));
		*fatal = 1;
	} else {
		log_warn("kafka consumer error", LF_S("error", rd_kafka_message_errstr(m)),
		         LF_S("topic", m->rkt ? rd_kafka_topic_name(m->rkt) : NULL), LF_I("partition", m->partition));
	}
	rd_kafka_message_destroy(m);
	return NULL;
}

void consumer_commit(struct consumer *c, const rd_kafka_topic_partition_list_t *offsets)
{
	rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, offsets, 1);

	if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_debug("kafka offset commit not sent (the sink holds the truth)", LF_S("error", rd_kafka_err2str(e)));
}

void consumer_each_lag(struct consumer *c, void (*fn)(void *, const char *, int32_t, int64_t), void *opaque)
{
	rd_kafka_topic_partition_list_t *a = NULL;

	if (rd_kafka_assignment(c->rk, &a) || !a)
		return;
	rd_kafka_position(c->rk, a);
	for (int i = 0; i < a->cnt; i++) {
		int64_t lo, hi, lag = -1;

		if (rd_kafka_get_watermark_offsets(c->rk, a->elems[i].topic, a->elems[i].partition, &lo, &hi) == 0 &&
		    hi >= 0 && a->elems[i].offset >= 0)
			lag = hi - a->elems[i].offset > 0 ? hi - a->elems[i].offset : 0;
		fn(opaque, a->elems[i].topic, a->elems[i].partition, lag);
	}
	rd_kafka_topic_partition_list_destroy(a);
}


rd_kafka_topic_partition_list_t *consumer_assignment(struct consumer *c)
{
	rd_kafka_topic_partition_list_t *a = NULL;

	if (rd_kafka_assignment(c->rk, &a) || !a)
		return NULL;
	return a;
}

int consumer_pause(struct consumer *c, const char *topic, int32_t partition, int pause)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t e;

	rd_kafka_topic_partition_list_add(l, topic, partition);
	e = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
	if (!e)
		e = l->elems[0].err;
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		log_warn(pause ? "cannot pause a partition" : "cannot resume a partition", LF_S("topic", topic),
		         LF_I("partition", partition), LF_S("error", rd_kafka_err2str(e)));
		return -1;
	}
	return 0;
}

int consumer_seek(struct consumer *c, const char *topic, int32_t partition, int64_t offset, char *err,
                  size_t errlen)
{
	/* rd_kafka_seek, not rd_kafka_seek_partitions: the latter's wait in
	 * librdkafka 2.0.2 is 1000 times too short (#4230) */
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
	rd_kafka_resp_err_t e;

	if (!rkt) {
		snprintf(err, errlen, "seek %s[%d]: %s", topic, partition, rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	e = rd_kafka_seek(rkt, partition, offset, 5000);
	rd_kafka_topic_destroy(rkt);
	if (e) {
		snprintf(err, errlen, "seek %s[%d] to %lld: %s", topic, partition, (long long)offset, rd_kafka_err2str(e));
		return -1;
	}
	return 0;
}

/* Leave the group (the revoke callback runs from here) for at most
 * CLOSE_MAX_MS: rd_kafka_consumer_close() waits for as long as the group
 * coordinator is unreachable. Returns 1 when the consumer is closed. */
static int leave_group(rd_kafka_t *rk)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_error_t *e = rd_kafka_consumer_close_queue(rk, q);
	uint64_t deadline = mono_ns() + CLOSE_MAX_MS * 1000000ull;
	int closed;

	if (e) {
		log_warn("kafka consumer close failed", LF_S("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	} else {
		do
			rd_kafka_queue_poll_callback(q, 100);
		while (!rd_kafka_consumer_closed(rk) && mono_ns() < deadline);
	}
	closed = rd_kafka_consumer_closed(rk);
	if (!closed)
		log_warn("left the consumer group without saying so (Kafka unreachable): the group rebalances "
		         "after session.timeout.ms; the offsets are in the sink", LF_I("waited_ms", CLOSE_MAX_MS));
	rd_kafka_queue_destroy(q);
	return closed;
}

void consumer_close(struct consumer **cp)
{
	struct consumer *c = *cp;
	int closed;

	if (!c)
		return;
	c->closing = 1;
	log_debug("kafka consumer closing", LF_I("fetch_nudges", (long long)nudge_count(c->nudge)));
	closed = leave_group(c->rk);
	nudge_free(&c->nudge);
	rd_kafka_destroy_flags(c->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	free(c);
	*cp = NULL;
}
