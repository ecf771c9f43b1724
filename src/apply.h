/*
 * apply.h — applying batches exactly once: route + extract each message,
 * handle data errors by policy, then one sink transaction per batch that
 * also advances the partitions' stored offsets; retries, isolation, stalls
 * and the bookkeeping of what the sink holds.
 *
 * Two batches are in play: the engine collects and prepares the next one
 * while the sink works on the one in flight (apply_launch() sends it,
 * apply_complete() waits for its verdict). Nothing else uses the sink while
 * a batch is in flight: reloads and rebalances wait for its verdict first.
 *
 * Nothing moves an offset past a message that was neither applied nor
 * acknowledged by the dead-letter topic's broker. While a batch waits (the
 * sink away or stalled, dead-letter deliveries outstanding) the consumer is
 * still served: the assigned partitions are paused, polls keep the group
 * membership, rebalances are handled, and the engine's periodic work (lag,
 * progress) goes on. A message polled meanwhile from a partition assigned
 * during the wait is held and goes into the next batch.
 *
 * A batch applies only if it continues the stored offset of each of its
 * partitions. When the sink's stored offset went backwards (a restore, a
 * failover, commits lost with synchronous_commit = off, an edited row, a
 * reload onto another sink), the partition is re-read from there; when the
 * sink holds no offset any more, from the partition's beginning.
 */
#ifndef CDCR_APPLY_H
#define CDCR_APPLY_H

#include <stdint.h>

#include "batch.h"
#include "config.h"
#include "consumer.h"
#include "dlq.h"
#include "extract.h"
#include "parts.h"
#include "sink.h"
#include "telemetry.h"
#include "wait.h"

struct apply_work {
	struct batch b;
	struct sink_advance *adv;
	size_t nadv, capadv;
	uint64_t t0;              /* processing started (realtime) */
	uint64_t extract_ns;
	int sent;                 /* in the sink's pipeline: its verdict is pending */
	enum sink_result rc;      /* not sent: the verdict of the attempt already made */
};

struct apply {
	/* the configuration and the clients: the engine makes, replaces (on
	 * reload) and frees them; apply and its waits use them from here */
	struct config *cfg;
	struct sink *sink;
	struct dlq *dlq;
	struct tele *tele;
	struct consumer *cons;
	/* owned */
	struct wait wt;           /* waits keep the consumer served (its cons and dlq point at the
	                             fields above; stop and tick are set by the engine) */
	struct extractor *x;
	struct parts parts;
	struct apply_work works[2];
	struct apply_work *cur;   /* being collected and prepared */
	struct apply_work *fly;   /* sent to the sink, or failed once; NULL if none */
	struct apply_work *settling;  /* being brought to an end (retries may wait) */
	uint64_t n_applied, n_failed, n_ignored, n_dup, n_batches;
	uint64_t idle_check_ns;   /* last idle look at the stored offsets (monotonic) */
};

void apply_init(struct apply *a);
void apply_free(struct apply *a);

/* Rebalance callbacks (the engine sets wt.in_rebalance around them). Assign:
 * each partition's start offset from the sink (retrying while it is away;
 * -1 = stopping). Revoke: the batch in flight gets its verdict, then what
 * is not applied of those partitions is dropped (whoever gets them reads
 * it again from the stored offsets). */
int apply_assign(struct apply *a, rd_kafka_topic_partition_list_t *parts);
void apply_revoke(struct apply *a, const rd_kafka_topic_partition_list_t *parts);

/* Before the consumer goes: drop every message held and forget the
 * partitions (nothing in flight may remain: apply_complete() first). */
void apply_drop_all(struct apply *a);

/* The next message held during a wait, or NULL (the caller owns it). */
rd_kafka_message_t *apply_take_held(struct apply *a);
/* Give a message back, to be taken first (a batch was full). */
void apply_hold_back(struct apply *a, rd_kafka_message_t *m);

/* After a reload: parked partitions whose topic is routed again resume
 * from their first message not applied; with a new sink, every partition
 * continues from the offset stored there. Needs no batch in flight. */
void apply_routes_changed(struct apply *a);
void apply_sink_changed(struct apply *a);
/* Nothing collected nor in flight: every APPLY_IDLE_CHECK_MS, compare the
 * offsets stored in the sink with what this process stored, and re-read a
 * partition whose stored offset went backwards (a restore, lost commits)
 * without waiting for its next message. */
#define APPLY_IDLE_CHECK_MS 2000
void apply_idle(struct apply *a);

/* What the batch steps return: APPLY_POLICY_STOP when a message failed
 * under on_error = "stop" (nothing of its batch committed). */
enum apply_result { APPLY_OK = 0, APPLY_POLICY_STOP };

/* Route + extract a->cur; data errors get their policy. */
enum apply_result apply_prepare(struct apply *a) __attribute__((warn_unused_result));
/* Send a->cur to the sink and make it the batch in flight (settling it
 * synchronously if sending fails). */
enum apply_result apply_launch(struct apply *a) __attribute__((warn_unused_result));
/* Wait for the batch in flight, retry or isolate as needed, then commit
 * Kafka offsets, log and report it (APPLY_OK also when none). */
enum apply_result apply_complete(struct apply *a) __attribute__((warn_unused_result));

#endif
