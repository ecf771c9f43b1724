/*
 * apply.h — applying batches exactly once: route + extract each message,
 * handle data errors by policy, then one sink transaction per batch that
 * also advances the partitions' stored offsets; retries, isolation and the
 * bookkeeping of what the sink holds.
 *
 * Two batches are in play: the engine collects and prepares the next one
 * while the sink works on the one in flight (apply_launch() sends it,
 * apply_complete() waits for its verdict). Nothing else uses the sink while
 * a batch is in flight: reloads and rebalances call apply_complete() first.
 */
#ifndef CDCR_APPLY_H
#define CDCR_APPLY_H

#include <stdint.h>

#include "batch.h"
#include "config.h"
#include "consumer.h"
#include "dlq.h"
#include "engine.h"
#include "extract.h"
#include "sink.h"
#include "telemetry.h"

/* What this process knows of a partition's offset stored in the sink. */
struct apply_part {
	char *topic;
	int32_t partition;
	int64_t next;             /* stored next offset; -1 = no row yet */
};

struct apply_work {
	struct batch b;
	struct sink_advance *adv;
	size_t nadv, capadv;
	uint64_t t0;              /* processing started */
	uint64_t extract_ns;
	int dlq_queued;           /* dead-letter messages queued, not yet acknowledged */
};

struct apply {
	/* set by the engine (and replaced on reload); not owned */
	struct config *cfg;
	struct sink *sink;
	struct dlq *dlq;
	struct tele *tele;
	struct consumer *cons;
	struct engine_flags *flags;
	/* owned */
	struct extractor *x;
	struct apply_part *parts;
	size_t nparts;
	struct apply_work works[2];
	struct apply_work *cur;   /* being collected and prepared */
	struct apply_work *fly;   /* sent to the sink, verdict pending; NULL if none */
	uint64_t n_applied, n_failed, n_ignored, n_dup, n_batches;
};

void apply_init(struct apply *a);
void apply_free(struct apply *a);

uint64_t apply_now_ns(void);
/* Exponential back-off with jitter, interrupted by stop; -1 if stopping. */
int apply_backoff(struct apply *a, int attempt);

/* Stored offset of a partition (retrying while the sink is away): its next
 * offset, or RD_KAFKA_OFFSET_INVALID when none is stored. -1 = stopping. */
int apply_partition_start(struct apply *a, const char *topic, int32_t partition, int64_t *offset);
void apply_forget_partition(struct apply *a, const char *topic, int32_t partition);

/* Route + extract a->cur; data errors get their policy. 0 or an exit code. */
int apply_prepare(struct apply *a);
/* Send a->cur to the sink and make it the batch in flight (settling it
 * synchronously if sending fails). 0 or an exit code. */
int apply_launch(struct apply *a);
/* Wait for the batch in flight, retry or isolate as needed, then commit
 * Kafka offsets, log and report it. 0 (also when none) or an exit code. */
int apply_complete(struct apply *a);

#endif
