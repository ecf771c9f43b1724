/*
 * nudge.h — wake librdkafka's fetcher when the prefetch queue ran dry.
 *
 * librdkafka before 2.2 looks again at partitions that its queue thresholds
 * (queued.min.messages, queued.max.messages.kbytes; one queue shared by all
 * partitions of a consumer) held back only when their broker thread wakes,
 * up to 1 s later (2.2 made that wait fetch.queue.backoff.ms, default still
 * 1 s). With a queue smaller than a second of traffic the consumer would
 * idle for most of every second. A ListOffsets request to a partition's
 * leader wakes that broker thread, which then fetches at once.
 *
 * The consumer reports every message it hands out (nudge_seen) and every
 * poll that found the queue empty (nudge_dry). A nudge is sent when the
 * queue is dry and either a partition is behind its high watermark as of
 * the last fetch, or enough was handed out since the queue was last dry
 * that it may have been over a threshold (then the cached high watermark
 * may be stale). One partition per nudge, round robin; each partition has
 * its own back-off, 10 ms doubling to 1 s while its position does not
 * move (a broker that is away; a transaction marker or an open
 * transaction keeps the position short of the high watermark for good),
 * so an idle consumer is never busy. A nudge blocks the caller for at most
 * NUDGE_WAIT_MS: the request wakes the broker thread when it is queued,
 * the reply does not matter.
 */
#ifndef CDCR_NUDGE_H
#define CDCR_NUDGE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#define NUDGE_WAIT_MS 20

struct nudge;

/* The queue thresholds as configured (queued.min.messages, and
 * queued.max.messages.kbytes in bytes). */
struct nudge *nudge_new(rd_kafka_t *rk, size_t queue_msgs, size_t queue_bytes);
void nudge_free(struct nudge **np);

/* One message handed out to the application (its payload length). */
void nudge_seen(struct nudge *n, size_t len);
/* A poll found the queue empty: nudge if that may help. */
void nudge_dry(struct nudge *n);
/* Nudges sent so far. */
unsigned long nudge_count(const struct nudge *n);

#endif
