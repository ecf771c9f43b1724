/*
 * wait.h — waiting without leaving the group.
 *
 * While a batch waits (a back-off after a sink error or a stall, dead-letter
 * acknowledgements outstanding) the Kafka consumer must still be polled:
 * past max.poll.interval.ms without a poll librdkafka leaves the group. So
 * a wait pauses every assigned partition (what was fetched for them is
 * dropped; once resumed they fetch again from the message after the last
 * one handed out), polls the consumer (rebalance callbacks run from there),
 * serves the dead-letter producer's reports and runs the owner's periodic
 * work (lag, progress). A message polled meanwhile (from a partition
 * assigned during the wait) is held for the next batch and its partition
 * paused. Inside a rebalance callback a wait only sleeps: polling there is
 * not allowed.
 *
 * Only partitions cdcrouter paused itself are resumed (librdkafka 2.0.2
 * #4637: resuming one that is not paused re-delivers messages); parked
 * ones (no route) stay paused.
 */
#ifndef CDCR_WAIT_H
#define CDCR_WAIT_H

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include "consumer.h"
#include "dlq.h"
#include "parts.h"

struct wait {
	/* where the owner keeps its clients (read at each use: a reload replaces them) */
	struct consumer *const *cons;
	struct dlq *const *dlq;   /* *dlq may be NULL */
	struct parts *parts;
	const volatile sig_atomic_t *stop;
	void (*tick)(void *opaque);
	void *tick_opaque;
	int in_rebalance;         /* inside a rebalance callback */
	/* owned */
	rd_kafka_message_t **held;
	size_t nheld, capheld;
	int waiting;              /* partitions are paused for a wait */
};

void wait_free(struct wait *w);

/* Wait ms (less when stopping: -1 then), the consumer served. */
int wait_idle(struct wait *w, long ms);
/* Exponential back-off from first_ms to max_ms with jitter; -1 if stopping. */
int wait_backoff(struct wait *w, int attempt, long first_ms, long max_ms);
/* The wait is over: resume what a wait paused. */
void wait_resume(struct wait *w);

/* The held messages, first in first out; wait_hold_back puts one first. */
rd_kafka_message_t *wait_take(struct wait *w);
void wait_hold_back(struct wait *w, rd_kafka_message_t *m);
/* Drop the held messages of one partition, or all of them. */
void wait_drop(struct wait *w, const char *topic, int32_t partition);
void wait_drop_all(struct wait *w);

#endif
