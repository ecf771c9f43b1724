/*
 * dlq.h — the dead-letter producer.
 *
 * A failed message is produced with its original key, value and headers
 * plus cdcrouter.error.* headers (reason, kind, sqlstate, route, source
 * topic/partition/offset). dlq_flush() waits for the broker's acks: the
 * caller moves the offset only after it returned 0. Delivery is at least
 * once: a crash between the ack and the sink commit sends it again.
 */
#ifndef CDCR_DLQ_H
#define CDCR_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

struct dlq;

struct dlq_error {
	const char *kind;
	const char *reason;
	const char *sqlstate;     /* may be NULL */
	const char *route;        /* may be NULL */
};

struct dlq *dlq_new(const struct config *cfg, char *err, size_t errlen);
void dlq_free(struct dlq **dp);
const char *dlq_topic(const struct dlq *d);

/* Queue one message; returns -1 with err if it could not even be queued. */
int dlq_send(struct dlq *d, const rd_kafka_message_t *orig, const struct dlq_error *e, char *err, size_t errlen);
/* Wait up to timeout_ms for every queued message's ack; 0 = all delivered. */
int dlq_flush(struct dlq *d, int timeout_ms, char *err, size_t errlen);

#endif
