/* consumer.c — librdkafka consumer with sink-stored offsets; see consumer.h. */
#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Fetch nudges (see nudge()): first retry after NUDGE_MIN_MS, doubling while
 * the nudged partition does not move, up to librdkafka's own 1 s wake-up. */
#define NUDGE_MIN_MS 10
#define NUDGE_MAX_MS 1000

struct consumer {
	rd_kafka_t *rk;
	struct consumer_cbs cbs;
	int closing;
	/* fetch nudges */
	unsigned long polled;       /* messages handed out */
	unsigned long nudge_polled; /* ... as of the last nudge */
	int64_t nudge_at_ms;        /* no nudge before this */
	int nudge_gap_ms;
	int nudge_next;             /* round robin over the assignment */
	unsigned long nudges;
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
		char *kv = strdup(props->v[i]), *eq = strchr(kv, '=');
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

struct consumer *consumer_new(const struct config *cfg, const struct consumer_cbs *cbs, char *err,
                              size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct consumer *c = calloc(1, sizeof(*c));
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
		/* a small prefetch queue (~2 batches, ≤ 16 MB) is enough
		 * with fetch nudges, see nudge(); one fetch response may
		 * overshoot it by fetch.max.bytes */
		{ "queued.min.messages", "10000" },
		{ "queued.max.messages.kbytes", "16384" },
		{ "fetch.max.bytes", "4194304" },
	};

	c->cbs = *cbs;
	c->nudge_gap_ms = NUDGE_MIN_MS;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (rd_kafka_conf_set(conf, fixed[i].k, fixed[i].v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s: %s", fixed[i].k, e);
			goto fail;
		}
	}
	if (consumer_set_props(conf, &cfg->kafka_props, 0, err, errlen))
		goto fail;
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

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The prefetch queue ran dry. librdkafka before 2.2 re-decides a fetch
 * that its queue thresholds (queued.min.messages, queued.max.messages.kbytes)
 * held back only when the partition's broker thread wakes, up to 1 s later
 * (2.2 made that wait fetch.queue.backoff.ms, default still 1 s): with a
 * queue smaller than a second of traffic the consumer would idle for most
 * of every second. So when the queue is dry while a partition is behind its
 * high watermark (as of the last fetch), ask its leader for the watermarks:
 * the request wakes that broker thread, which then fetches at once. One
 * partition per nudge, round robin (a broker fetches all its partitions
 * together). When no message came since the last nudge (a broker that is
 * away; a transaction marker at the end of the log keeps the position one
 * short of the high watermark) the gap doubles, so an idle consumer is
 * never busy. */
static void nudge(struct consumer *c)
{
	rd_kafka_topic_partition_list_t *a = NULL;

	if (mono_ms() < c->nudge_at_ms || rd_kafka_assignment(c->rk, &a) || !a)
		return;
	rd_kafka_position(c->rk, a);
	for (int k = 0; k < a->cnt; k++) {
		rd_kafka_topic_partition_t *p = &a->elems[(c->nudge_next + k) % a->cnt];
		int64_t lo, hi;

		if (p->offset < 0 ||
		    rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) || hi <= p->offset)
			continue;
		if (c->polled == c->nudge_polled)
			c->nudge_gap_ms = c->nudge_gap_ms * 2 > NUDGE_MAX_MS ? NUDGE_MAX_MS : c->nudge_gap_ms * 2;
		else
			c->nudge_gap_ms = NUDGE_MIN_MS;
		c->nudge_polled = c->polled;
		c->nudge_next = (c->nudge_next + k + 1) % a->cnt;
		c->nudges++;
		log_debug("fetch nudge", LF_S("topic", p->topic), LF_I("partition", p->partition),
		          LF_I("offset", p->offset), LF_I("high_watermark", hi), LF_I("next_gap_ms", c->nudge_gap_ms));
		rd_kafka_query_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi, 100);
		break;
	}
	c->nudge_at_ms = mono_ms() + c->nudge_gap_ms;
	rd_kafka_topic_partition_list_destroy(a);
}

rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms, int *fatal)
{
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);

	if (!m) {
		nudge(c);
		return NULL;
	}
	if (!m->err) {
		c->polled++;
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

rd_kafka_t *consumer_handle(struct consumer *c) { return c->rk; }

void consumer_close(struct consumer **cp)
{
	struct consumer *c = *cp;

	if (!c)
		return;
	c->closing = 1;
	log_debug("kafka consumer closing", LF_I("fetch_nudges", (int64_t)c->nudges));
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	free(c);
	*cp = NULL;
}
