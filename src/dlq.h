/*
 * dlq.h — the dead-letter producer.
 *
 * A failed message is produced with its original key, value and headers
 * plus cdcrouter.error.* headers (reason, kind, sqlstate, route, source
 * topic/partition/offset). Each produced message has a ticket that records
 * what became of it: queued, delivered (the broker acknowledged it) or
 * failed (for good: message.timeout.ms passed, the topic refused it, ...).
 * The caller moves an offset past a dead-lettered message only once its
 * ticket says delivered; a failed one is produced again. Delivery is at
 * least once: a crash between the ack and the sink commit sends it again.
 *
 * The producer is sized to carry any message the consumer can receive
 * (message.max.bytes from the consumer's receive.message.max.bytes, unless
 * kafka.properties sets it), and is made anew when librdkafka declares it
 * fatally failed (an idempotent producer can, after a timeout).
 */
#ifndef CDCR_DLQ_H
#define CDCR_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

struct dlq;
struct dlq_ticket;

struct dlq_error {
	const char *kind;
	const char *reason;
	const char *sqlstate;     /* may be NULL */
	const char *route;        /* may be NULL */
};

enum dlq_state { DLQ_QUEUED = 0, DLQ_DELIVERED, DLQ_FAILED };

struct dlq *dlq_new(const struct config *cfg, char *err, size_t errlen);
/* Waits up to 5 s for queued messages, then drops them (their tickets, if
 * still held, say failed). NULLs *dp. */
void dlq_free(struct dlq **dp);
const char *dlq_topic(const struct dlq *d);

/* Queue one message and hand back its ticket (the caller owns it until
 * dlq_release). Returns -1 with err when it could not even be queued (no
 * ticket then); *too_large is set when the reason is its size. */
int dlq_send(struct dlq *d, const rd_kafka_message_t *orig, const struct dlq_error *e, struct dlq_ticket **t,
             int *too_large, char *err, size_t errlen);
/* Serve delivery reports, waiting up to timeout_ms for one (0: never waits). */
void dlq_poll(struct dlq *d, int timeout_ms);

/* A ticket's state; for DLQ_FAILED, err gets the reason and *too_large is
 * set when the broker refused the message for its size. */
enum dlq_state dlq_ticket_state(const struct dlq_ticket *t, int *too_large, char *err, size_t errlen);
/* Forget a ticket, delivered or not (a report still to come frees it). */
void dlq_release(struct dlq_ticket **tp);

#endif
