/* dlq.c — dead-letter producer; see dlq.h. */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "log.h"

struct dlq {
	rd_kafka_t *rk;
	char *topic;
	int failed;                       /* deliveries failed since the last flush */
	char last_error[256];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct dlq *d = opaque;

	if (m->err) {
		d->failed++;
		snprintf(d->last_error, sizeof(d->last_error), "%s", rd_kafka_err2str(m->err));
	}
}

struct dlq *dlq_new(const struct config *cfg, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct dlq *d = calloc(1, sizeof(*d));
	char e[512];

	d->topic = strdup(cfg->dead_letter_topic);
	if (consumer_set_props(conf, &cfg->kafka_props, 1, err, errlen))
		goto fail;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "acks", "all", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "5", e, sizeof(e)) ||
	    rd_kafka_conf_set(conf, "client.id", "cdcrouter-dlq", e, sizeof(e))) {
		snprintf(err, errlen, "dead-letter producer: %s", e);
		goto fail;
	}
	rd_kafka_conf_set_opaque(conf, d);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
	d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	if (!d->rk) {
		snprintf(err, errlen, "dead-letter producer: %s", e);
		goto fail;
	}
	return d;
fail:
	rd_kafka_conf_destroy(conf);
	free(d->topic);
	free(d);
	return NULL;
}

void dlq_free(struct dlq **dp)
{
	struct dlq *d = *dp;

	if (!d)
		return;
	rd_kafka_flush(d->rk, 5000);
	rd_kafka_destroy(d->rk);
	free(d->topic);
	free(d);
	*dp = NULL;
}

const char *dlq_topic(const struct dlq *d) { return d->topic; }

static void hdr(rd_kafka_headers_t *h, const char *name, const char *v)
{
	if (v)
		rd_kafka_header_add(h, name, -1, v, -1);
}

int dlq_send(struct dlq *d, const rd_kafka_message_t *orig, const struct dlq_error *e, char *err, size_t errlen)
{
	rd_kafka_headers_t *h, *oh = NULL;
	char part[16], off[24];
	rd_kafka_resp_err_t rc;

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
	rc = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                       RD_KAFKA_V_KEY(orig->key, orig->key_len),
	                       RD_KAFKA_V_VALUE(orig->payload, orig->len), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
	if (rc) {
		rd_kafka_headers_destroy(h);
		snprintf(err, errlen, "dead-letter produce: %s", rd_kafka_err2str(rc));
		return -1;
	}
	return 0;
}

int dlq_flush(struct dlq *d, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_resp_err_t rc = rd_kafka_flush(d->rk, timeout_ms);
	int failed = d->failed;

	d->failed = 0;
	if (rc) {
		snprintf(err, errlen, "dead-letter flush: %s (%d still in flight)", rd_kafka_err2str(rc),
		         rd_kafka_outq_len(d->rk));
		return -1;
	}
	if (failed) {
		snprintf(err, errlen, "dead-letter delivery failed for %d message(s): %s", failed, d->last_error);
		return -1;
	}
	return 0;
}
