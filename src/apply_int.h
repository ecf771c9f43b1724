/* apply_int.h — what the files of the apply module share: apply.c (the
 * batch steps, data errors, settling, reporting) and apply_offsets.c (what
 * the sink holds per partition: start offsets, advances, rewinds, idle
 * checks). Not for use outside src/apply*.c. */
#ifndef CDCR_APPLY_INT_H
#define CDCR_APPLY_INT_H

#include "apply.h"

/* The back-off before retry attempt n (0-based), the consumer served; -1
 * when stopping. */
int apply_backoff(struct apply *a, int attempt);
/* The batch in flight gets its verdict (inside a rebalance callback, or
 * before any other use of the sink): a commit finishes it; a failure is
 * kept for apply_complete() to settle. */
void apply_quiesce(struct apply *a);
/* Drop the messages of one partition from a batch, or from every batch and
 * the held messages. */
void apply_drop_partition(struct batch *b, const char *topic, int32_t partition);
void apply_drop_everywhere(struct apply *a, const char *topic, int32_t partition);
/* Messages below the stored offset were applied already: marked duplicate. */
void apply_filter_applied(struct apply *a, struct apply_work *w);
/* The advance of every partition of w with a message still to take effect. */
void apply_build_advances(struct apply *a, struct apply_work *w);
/* After a transient error, a stall or a fence: re-read the stored offsets
 * of w's partitions (0, or -1 when stopping). */
int apply_reload_offsets(struct apply *a, struct apply_work *w);

#endif
