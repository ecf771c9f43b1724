/* kmsg.h — real rd_kafka_message_t objects for unit tests, made by
 * producing to librdkafka's in-process mock cluster and consuming back
 * (hand-built messages would lack librdkafka's hidden fields: headers,
 * timestamps). Header-only; one topic, partition 0. */
#ifndef CDCR_KMSG_H
#define CDCR_KMSG_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_t *kmsg_prod, *kmsg_cons;
static int64_t kmsg_next;

static void kmsg_die(const char *what, const char *why)
{
	printf("Bail out! %s: %s\n", what, why);
	exit(255);
}

static void kmsg_init(const char *topic)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	const char *boot;

	if (rd_kafka_conf_set(c, "test.mock.num.brokers", "1", err, sizeof(err)))
		kmsg_die("mock", err);
	rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
	rd_kafka_conf_set(c, "linger.ms", "0", err, sizeof(err));
	rd_kafka_conf_set(c, "message.max.bytes", "10000000", err, sizeof(err));
	if (!(kmsg_prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err))))
		kmsg_die("producer", err);
	boot = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(kmsg_prod));
	rd_kafka_mock_topic_create(rd_kafka_handle_mock_cluster(kmsg_prod), topic, 1, 1);
	c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", boot, err, sizeof(err));
	rd_kafka_conf_set(c, "group.id", "kmsg", err, sizeof(err));
	rd_kafka_conf_set(c, "fetch.wait.max.ms", "1", err, sizeof(err));
	rd_kafka_conf_set(c, "fetch.message.max.bytes", "10000000", err, sizeof(err));
	rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
	if (!(kmsg_cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err))))
		kmsg_die("consumer", err);
	rd_kafka_poll_set_consumer(kmsg_cons);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, 0)->offset = 0;
	rd_kafka_assign(kmsg_cons, l);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Produce one message (value NULL = tombstone; hname may be NULL) and
 * return it as consumed. The caller owns the result. */
static rd_kafka_message_t *kmsg(const char *topic, const char *key, size_t klen, const char *value,
                                const char *hname, const char *hval)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(2);
	rd_kafka_resp_err_t e;
	rd_kafka_message_t *m;

	if (hname)
		rd_kafka_header_add(h, hname, -1, hval, -1);
	e = rd_kafka_producev(kmsg_prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key ? klen : 0),
	                      RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0), RD_KAFKA_V_HEADERS(h),
	                      RD_KAFKA_V_END);
	if (e)
		kmsg_die("produce", rd_kafka_err2str(e));
	rd_kafka_flush(kmsg_prod, 10000);
	for (int i = 0; i < 200; i++) {
		m = rd_kafka_consumer_poll(kmsg_cons, 100);
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->offset != kmsg_next)
			kmsg_die("consume", "unexpected offset");
		kmsg_next++;
		return m;
	}
	kmsg_die("consume", "timeout");
	return NULL;
}

static void kmsg_done(void)
{
	rd_kafka_consumer_close(kmsg_cons);
	rd_kafka_destroy(kmsg_cons);
	rd_kafka_destroy(kmsg_prod);
}

#endif
