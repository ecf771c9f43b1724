/*
 * batch.h — the messages of one sink transaction and their extracted
 * parameters.
 *
 * Parameter values live in one arena per batch (offsets, not pointers, so
 * the arena may grow): a batch of thousands of messages costs a handful of
 * allocations, reused from batch to batch. The batch owns its
 * rd_kafka_message_t references until batch_reset().
 */
#ifndef CDCR_BATCH_H
#define CDCR_BATCH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "route.h"
#include "telemetry.h"

enum outcome {
	OUT_PENDING = 0,  /* to be applied */
	OUT_APPLIED,      /* executed (or superseded by a later event of its key) */
	OUT_IGNORED,      /* op = ignore, e.g. a tombstone */
	OUT_SKIPPED,      /* failed, policy skip */
	OUT_DLQ,          /* failed, sent to the dead-letter topic */
	OUT_FAILED,       /* failed, policy stop */
	OUT_DUPLICATE,    /* already applied: offset below the sink's stored offset */
};
const char *outcome_name(enum outcome o);

enum err_kind { EK_NONE = 0, EK_INVALID_JSON, EK_NO_ROUTE, EK_EXTRACT, EK_REQUIRED, EK_OP, EK_SQL };
const char *err_kind_name(enum err_kind k);

struct dlq_ticket;

struct bval {
	int64_t off;             /* into the arena; -1 = SQL NULL */
	int32_t len;             /* at most BATCH_VALUE_MAX */
};

/* The longest value a parameter may have: PostgreSQL's limit for one field. */
#define BATCH_VALUE_MAX ((size_t)1 << 30)

struct bmsg {
	rd_kafka_message_t *rkm;
	const char *topic;       /* rkm's topic name (part of the key identity) */
	const struct route *route;
	enum route_op op;
	enum outcome outcome;
	enum err_kind err;
	int superseded;          /* a later message of the same key in this batch wins */
	size_t vals;             /* index of the first of route->nparams values */
	int64_t errmsg;          /* arena offset of the error text, -1 none */
	char sqlstate[6];
	struct dlq_ticket *dlq;  /* OUT_DLQ: its dead-letter delivery (owned by apply), NULL until sent */
	int dlq_warned;          /* its dead-letter failure was logged */
	int64_t source_ts_ms;
	uint64_t start_ns;
	struct tele_ctx ctx;
};

struct batch {
	struct bmsg *m;
	size_t n, cap;
	size_t bytes;            /* keys and values of the messages held */
	struct bval *vals;
	size_t nvals, capvals;
	char *arena;
	size_t alen, acap;
	/* reduction hash table (indices into m, -1 empty) */
	int32_t *slots;
	size_t nslots;
};

void batch_init(struct batch *b);
/* Destroys the messages still held and empties the batch, keeping buffers. */
void batch_reset(struct batch *b);
void batch_free(struct batch *b);

/* Append a message (takes ownership of rkm, which may be NULL when the
 * caller fills the message otherwise) and return its slot. */
struct bmsg *batch_add(struct batch *b, rd_kafka_message_t *rkm);

/* Arena helpers. */
int64_t batch_put(struct batch *b, const char *s, size_t n);     /* returns the offset */
static inline const char *batch_str(const struct batch *b, int64_t off) { return b->arena + off; }
/* Reserve nparams value slots for m (all NULL). */
void batch_alloc_vals(struct batch *b, struct bmsg *m, int nparams);
static inline struct bval *batch_val(struct batch *b, const struct bmsg *m, int i)
{
	return &b->vals[m->vals + (size_t)i];
}
void batch_set_error(struct batch *b, struct bmsg *m, enum err_kind k, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *batch_errmsg(const struct batch *b, const struct bmsg *m);

/* Per-key reduction: among PENDING messages of routes with reduce on, mark
 * every message superseded whose key (route, topic and key param values)
 * appears again later in the batch. Returns the number superseded. */
size_t batch_reduce(struct batch *b);

#endif
