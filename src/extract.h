/*
 * extract.h — from a Kafka message to a route, an operation and the
 * statement's parameter values (as text, in the batch arena).
 *
 * The value is parsed once (jv_parse_sized); plain paths are looked up
 * directly; jq runs only for params that need it. Conversions: JSON
 * null/missing → SQL NULL, strings as themselves, numbers and booleans as
 * their text (integers without exponent), objects/arrays as compact JSON.
 */
#ifndef CDCR_EXTRACT_H
#define CDCR_EXTRACT_H

#include "batch.h"
#include "route.h"

/* Fill m (already added to b) from m->rkm: route, op, params, source_ts_ms.
 * On a data error sets m->err / errmsg and returns -1 (m->route may still be
 * set, to choose the error policy). */
int extract_message(struct routes *rs, struct batch *b, struct bmsg *m);

/* Convert one jv (consumed) to text in the arena. Exposed for tests. */
void extract_store_value(struct batch *b, struct bval *out, jv v);

#endif
