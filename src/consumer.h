/*
 * consumer.h — the Kafka side: one consumer in one group, manual offsets.
 *
 * Auto-commit and auto offset store are off: offsets live in the sink and
 * are committed to Kafka only after the sink committed (for lag tools). On
 * assignment the owner's on_assign fills each partition's start offset from
 * the sink (RD_KAFKA_OFFSET_INVALID = use the group's committed offset,
 * then auto.offset.reset).
 */
#ifndef CDCR_CONSUMER_H
#define CDCR_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

struct consumer_cbs {
	void *opaque;
	/* Fill parts[i].offset; return 0, or -1 to abort (shutdown). */
	int (*on_assign)(void *opaque, rd_kafka_topic_partition_list_t *parts);
	void (*on_revoke)(void *opaque, const rd_kafka_topic_partition_list_t *parts);
};

struct consumer;

struct consumer *consumer_new(const struct config *cfg, const struct consumer_cbs *cbs, char *err,
                              size_t errlen);
/* Leaves the group cleanly; NULLs *cp. */
void consumer_close(struct consumer **cp);

int consumer_subscribe(struct consumer *c, char **topics, size_t n, char *err, size_t errlen);

/* Next message, or NULL after timeout_ms (plus at most NUDGE_WAIT_MS when
 * the empty queue calls for a fetch nudge, see nudge.h). Consumer errors
 * are logged; a fatal one sets *fatal. */
rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms, int *fatal);

/* Commit next offsets (async) after the sink committed. */
void consumer_commit(struct consumer *c, const rd_kafka_topic_partition_list_t *offsets);

/* Call fn for each assigned partition with its lag (high watermark −
 * position; -1 unknown). Never blocks on the network. */
void consumer_each_lag(struct consumer *c, void (*fn)(void *opaque, const char *topic, int32_t partition,
                                                      int64_t lag), void *opaque);

/* The current assignment (the caller destroys it); NULL if none. */
rd_kafka_topic_partition_list_t *consumer_assignment(struct consumer *c);
/* Pause or resume one assigned partition. Pausing drops what was fetched
 * for it; resuming fetches again from the message after the last one
 * handed out (or from where a seek put it). 0, or -1 (logged). */
int consumer_pause(struct consumer *c, const char *topic, int32_t partition, int pause);
/* Move an assigned partition's position to offset (RD_KAFKA_OFFSET_BEGINNING
 * allowed); what was fetched for it is dropped, a pause is kept. 0, or -1
 * with err. */
int consumer_seek(struct consumer *c, const char *topic, int32_t partition, int64_t offset, char *err,
                  size_t errlen);

/* Apply "name=value" properties (for_producer: leave out consumer-only
 * ones); returns -1 with err on the first bad one. */
int consumer_set_props(rd_kafka_conf_t *conf, const struct strlist *props, int for_producer, char *err,
                       size_t errlen);
/* librdkafka's log lines as our JSON log lines. */
void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
