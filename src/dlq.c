/* dlq.c — dead-letter producer with per-message tickets; see dlq.h. */
#include "util.h"
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"

/* Room for the cdcrouter.error.* headers beyond the largest consumable message. */
#define DLQ_HEADROOM 65536
#define DLQ_MAX_BYTES 1000000000L      /* librdkafka's ceiling for message.max.bytes */

struct dlq_ticket {
	enum dlq_state state;
	int orphan;                         /* released before its report came: the report frees it */
	int too_large;
	char err[200];
};

struct dlq {
	rd_kafka_t *rk;
	rd_kafka_conf_t *conf;              /* a copy, to make the producer anew */
	char *topic;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct dlq_ticket *t = m->_private;

	(void)rk;
	(void)opaque;
	if (!t)
		return;
	if (t->orphan) {
		free(t);
		return;
	}
	if (m->err) {
		t->state = DLQ_FAILED;
		t->too_large = m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
		               m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
		snprintf(t->err, sizeof(t->err), "%s", rd_kafka_err2str(m->err));
	} else {
		t->state = DLQ_DELIVERED;
	}
}

static int has_prop(const struct strlist *props, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < props->n; i++)
		if (strncmp(props->v[i], name, n) == 0 && props->v[i][n] == '=')
			return 1;
	return 0;
}

/* The largest message a consumer with these properties can receive. */
static long consumable_bytes(const struct strlist *props, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char v[64];
	size_t n = sizeof(v);
	long bytes = 100000000;

	if (consumer_set_props(c, props, 0, err, errlen) == 0 &&
	    rd_kafka_conf_get(c, "receive.message.max.bytes", v, &n) == RD_KAFKA_CONF_OK)
		bytes = atol(v);
	rd_kafka_conf_destroy(c);
	return bytes;
}

static rd_kafka_t *producer(struct dlq *d, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(d->conf);
	char e[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));

	if (!rk) {
		snprintf(err, errlen, "dead-letter producer: %s", e);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

struct dlq *dlq_new(const struct config *cfg, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct dlq *d = xrealloc(NULL, sizeof(*d));
	char e[256], mmb[32];
	long bytes;

	memset(d, 0, sizeof(*d));
	d->topic = xstrdup(cfg->dead_letter_topic);
	if (consumer_set_props(conf, &cfg->kafka_props, 1, err, errlen))
		goto fail;
	bytes = consumable_bytes(&cfg->kafka_props, err, errlen) + DLQ_HEADROOM;
	snprintf(mmb, sizeof(mmb), "%ld", bytes < DLQ_MAX_BYTES ? bytes : DLQ_MAX_BYTES);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "acks", "all", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "5", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "client.id", "cdcrouter-dlq", e, sizeof(e)) ||
	    (!has_prop(&cfg->kafka_props, "message.max.bytes") &&
	     rd_kafka_conf_set(conf, "message.max.bytes", mmb, e, sizeof(e)))) {
		snprintf(err, errlen, "dead-letter producer: %s", e);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
	d->conf = conf;
	conf = NULL;
	if (!(d->rk = producer(d, err, errlen)))
		goto fail;
	return d;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	dlq_free(&d);
	return NULL;
}

/* Wait for what is queued (bounded), drop the rest: every report fires. */
static void close_producer(rd_kafka_t *rk, int timeout_ms)
{
	rd_kafka_flush(rk, timeout_ms);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(rk, 0);
	rd_kafka_destroy(rk);
}

void dlq_free(struct dlq **dp)
{
	struct dlq *d = *dp;

	if (!d)
		return;
	if (d->rk)
		close_producer(d->rk, 5000);
	if (d->conf)
		rd_kafka_conf_destroy(d->conf);
	free(d->topic);
	free(d);
	*dp = NULL;
}

const char *dlq_topic(const struct dlq *d) { return d->topic; }

/* librdkafka declared the producer failed for good: make a new one. */
static void restart(struct dlq *d)
{
	char reason[512], err[512];
	rd_kafka_t *rk;

	rd_kafka_fatal_error(d->rk, reason, sizeof(reason));
	log_error("dead-letter producer failed fatally, making a new one", LF_S("error", reason));
	if (!(rk = producer(d, err, sizeof(err)))) {
		log_error("cannot make a new dead-letter producer", LF_S("error", err));
		return;
	}
	close_producer(d->rk, 0);
	d->rk = rk;
}

static void hdr(rd_kafka_headers_t *h, const char *name, const char *v)
{
	if (v)
		rd_kafka_header_add(h, name, -1, v, -1);
}

int dlq_send(struct dlq *d, const rd_kafka_message_t *orig, const struct dlq_error *e, struct dlq_ticket **tp,
             int *too_large, char *err, size_t errlen)
{
	rd_kafka_headers_t *h, *oh = NULL;
	char part[16], off[24];
	rd_kafka_resp_err_t rc;
	struct dlq_ticket *t;

	*tp = NULL;
	*too_large = 0;
	if (rd_kafka_fatal_error(d->rk, NULL, 0))
		restart(d);
	if (rd_kafka_message_headers(orig, &oh) == RD_KAFKA_RESP_ERR_NO_ERROR)
		h = rd_kafka_headers_copy(oh);
	else
		h = rd_kafka_headers_new(8);
	snprintf(part, sizeof(part), "%d", orig->partition);
	snprintf(off, sizeof(off), "%lld", (long long)orig->offset);
	hdr(h, "cdcrouter.error.kind", e->kind);
	hdr(h, "cdcrouter.error.reason", e->reason);
	hdr(h, "cdcrouter.error.sqlstate", e->sqlstate && *e->sqlstate ? e->sqlstate : NULL);
	hdr(h, "cdcrouter.error.route", e->route);
	hdr(h, "cdcrouter.source.topic", rd_kafka_topic_name(orig->rkt));
	hdr(h, "cdcrouter.source.partition", part);
	hdr(h, "cdcrouter.source.offset", off);
	t = xrealloc(NULL, sizeof(*t));
	memset(t, 0, sizeof(*t));
	rc = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                       RD_KAFKA_V_KEY(orig->key, orig->key_len),
	                       RD_KAFKA_V_VALUE(orig->payload, orig->len), RD_KAFKA_V_HEADERS(h),
	                       RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
	if (rc) {
		rd_kafka_headers_destroy(h);
		free(t);
		*too_large = rc == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
		snprintf(err, errlen, "dead-letter produce to '%s': %s", d->topic, rd_kafka_err2str(rc));
		return -1;
	}
	*tp = t;
	return 0;
}

void dlq_poll(struct dlq *d, int timeout_ms)
{
	rd_kafka_poll(d->rk, timeout_ms);
}

enum dlq_state dlq_ticket_state(const struct dlq_ticket *t, int *too_large, char *err, size_t errlen)
{
	if (t->state == DLQ_FAILED) {
		*too_large = t->too_large;
		snprintf(err, errlen, "%s", t->err);
	}
	return t->state;
}

void dlq_release(struct dlq_ticket **tp)
{
	struct dlq_ticket *t = *tp;

	if (!t)
		return;
	if (t->state == DLQ_QUEUED)
		t->orphan = 1;          /* its report frees it */
	else
		free(t);
	*tp = NULL;
}
