/*
 * extract.h — from a Kafka message to a route, an operation and the
 * statement's parameter values (as text, in the batch arena).
 *
 * Plain paths (., .a.b, $key, $key.id, $meta.offset, $meta.headers.NAME)
 * are read straight from the message's bytes in one validating pass over
 * the value (json.h), and over the key when the route reads it. Their
 * values are exact: JSON null or missing → SQL NULL, strings as
 * themselves, numbers as their literal text, booleans as true/false,
 * objects and arrays as compact JSON with every number's literal text.
 *
 * jq programs (any other expression) run on libjq, whose numbers are IEEE
 * doubles. A program's result is refused as a data error, never passed on
 * altered, when it depends on a number of the message that a double does
 * not hold exactly (found by running the program again on the message with
 * those numbers moved to the next double: a different result means it
 * depends on them), or when it is an integer of magnitude 2^53 or more (its
 * neighbours are more than 1 apart, so arithmetic may have rounded it).
 * Other numbers print in their shortest exact form (0.1, 3.3000000000000003).
 */
#ifndef CDCR_EXTRACT_H
#define CDCR_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "route.h"

/* A Kafka message as extraction reads it. */
struct extract_header {
	const char *name;
	const char *value;          /* NULL: a header without a value */
	size_t len;
};

struct extract_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t timestamp;          /* ms; -1 when the message has none */
	const char *key;            /* NULL: no key */
	size_t key_len;
	const char *value;          /* NULL: a tombstone */
	size_t value_len;
	const struct extract_header *headers;
	size_t nheaders;
};

/* Scratch space of one thread's extraction (the JSON scanner, buffers). */
struct extractor;
struct extractor *extract_new(void);
void extract_free(struct extractor **xp);

/* Fill m (already added to b) from m->rkm: route, op, params, source_ts_ms.
 * On a data error sets m->err / errmsg and returns -1 (m->route may still be
 * set, to choose the error policy). */
int extract_message(struct extractor *x, struct routes *rs, struct batch *b, struct bmsg *m);

/* The same from a message given as its parts (m->rkm is not read; m->topic
 * is set to km->topic when NULL, so km->topic must outlive the batch). */
int extract_view(struct extractor *x, struct routes *rs, struct batch *b, struct bmsg *m,
                 const struct extract_msg *km);

#endif
