/*
 * sink.h — the PostgreSQL side: one connection, prepared statements per
 * route, and the offsets table that makes apply effectively-once.
 *
 * Every batch runs in one transaction which first advances the stored
 * offsets of its partitions (cdcrouter.advance() raises SQLSTATE CR001 if
 * the stored offset is not the one this process last saw: another process
 * applied them, or an earlier commit's outcome was unknown) and then
 * applies the rows. Values are always bound parameters.
 */
#ifndef CDCR_SINK_H
#define CDCR_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "route.h"

struct sink;

/* a result the caller must look at (pgbouncer's _MUSTCHECK) */
#define SINK_MUSTCHECK __attribute__((warn_unused_result))

enum sink_result {
	SINK_OK = 0,
	SINK_TRANSIENT,   /* connection lost, serialization, resources, shutdown: retry the batch */
	SINK_PERMANENT,   /* a data error somewhere in the batch: isolate it */
	SINK_FENCED,      /* stored offsets moved: reload them and filter the batch */
	SINK_STALL,       /* not about one message: a privilege, a missing table or column, a
	                     read-only or full sink, or every message failing the same way; keep the
	                     offsets, retry the batch after a back-off until it is fixed */
	SINK_CHANGED,     /* the sink changed while the batch was replayed message by message
	                     (two replays disagree): retry the batch */
};

/* Advance of one partition within a batch. expected < 0: no row stored yet. */
struct sink_advance {
	const char *topic;
	int32_t partition;
	int64_t expected;
	int64_t next;
};

struct sink *sink_new(const char *conninfo, const char *password, const char *group_id);
void sink_free(struct sink **sp);

/* A new route set (after load or reload): statements are (re)prepared
 * before the next apply. The routes must outlive their use by the sink. */
void sink_set_routes(struct sink *s, const struct routes *rs);

/* Connect if needed, create the cdcrouter schema, prepare statements. */
enum sink_result sink_ensure(struct sink *s, char *err, size_t errlen) SINK_MUSTCHECK;

/* Stored next offset: 1 found, 0 none, -1 error (err filled). */
int sink_load_offset(struct sink *s, const char *topic, int32_t partition, int64_t *next,
                     char *err, size_t errlen) SINK_MUSTCHECK;

/* Every stored offset of the group, one call of fn per row, in one query
 * 0, or -1 (err filled). */
int sink_each_offset(struct sink *s, void (*fn)(void *arg, const char *topic, int32_t partition, int64_t next),
                     void *arg, char *err, size_t errlen) SINK_MUSTCHECK;

/* Fast path: apply every PENDING, non-superseded message of b in one
 * pipelined transaction (set-based statements where the route has them)
 * and commit it. On failure nothing is committed. */
enum sink_result sink_apply(struct sink *s, struct batch *b, const struct sink_advance *adv, size_t nadv,
                            char *err, size_t errlen) SINK_MUSTCHECK;

/* The same in two halves, so the caller can prepare the next batch while
 * the server works on this one: sink_send() queues the whole transaction
 * (SINK_OK: now pending), sink_wait() waits for its verdict. Nothing else
 * may use the sink while a batch is pending. */
enum sink_result sink_send(struct sink *s, struct batch *b, const struct sink_advance *adv, size_t nadv,
                           char *err, size_t errlen) SINK_MUSTCHECK;
enum sink_result sink_wait(struct sink *s, char *err, size_t errlen) SINK_MUSTCHECK;
/* The server has started answering the pending batch (never blocks). */
int sink_answering(const struct sink *s);

/* Slow path, after SINK_PERMANENT: one transaction, every PENDING message in
 * offset order under its own savepoint (reduction ignored). Messages that
 * fail permanently get err = EK_SQL, sqlstate and a message, and stay
 * PENDING for the caller's policy. When at least two were tried and every
 * one failed with the same SQLSTATE and message, that is no message's fault:
 * SINK_STALL (rolled back). When some fail and some do not, a second replay
 * must fail the same messages, or the sink changed under the first (DDL slips
 * in between two messages): SINK_CHANGED (rolled back). After SINK_STALL or
 * SINK_CHANGED the messages still carry the last replay's EK_SQL verdicts:
 * the caller drops them before it retries. On SINK_OK the transaction is left OPEN: the caller must sink_commit() or
 * sink_rollback(). */
enum sink_result sink_apply_isolating(struct sink *s, struct batch *b, const struct sink_advance *adv,
                                      size_t nadv, char *err, size_t errlen) SINK_MUSTCHECK;
enum sink_result sink_commit(struct sink *s, char *err, size_t errlen) SINK_MUSTCHECK;
void sink_rollback(struct sink *s);

/* Drop the connection (after a transient error, or to apply a new conninfo). */
void sink_disconnect(struct sink *s);

/* Classify a SQLSTATE (NULL = no server error, i.e. connection trouble). */
enum sink_result sink_classify(const char *sqlstate);
/* The SQLSTATE of the last failure ("uniform" for a SINK_STALL found by
 * isolation: every message failing the same way; "" if none). */
const char *sink_last_sqlstate(const struct sink *s);

#endif
