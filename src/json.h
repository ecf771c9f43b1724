/*
 * json.h — a route's paths read out of a JSON document, exactly.
 *
 * A json_paths is the set of field paths a route reads from one kind of
 * document (the message value, or its key): ".id", ".a.b", or the root.
 * json_scan() walks the whole document once with simdjson's On-Demand API,
 * validating all of it (malformed JSON, trailing bytes, bad escapes, invalid
 * UTF-8 and numbers outside JSON's grammar are errors), and fills one
 * json_val per path with what the document holds there:
 *
 *   string          its text, unescaped
 *   number          its literal text, byte for byte as in the document
 *                   (9223372036854775807, 1e-7, -0.0, 30-digit numerics)
 *   true, false     "true", "false"
 *   object, array   compact JSON (whitespace outside strings removed; the
 *                   literal text of every number kept)
 *   null, missing   no text
 *
 * A path through a value that is not an object gives missing; a key that
 * appears twice in an object counts as its last occurrence (as in jq). The
 * texts point into the scanner's buffers and are valid until its next scan.
 *
 * When asked (JSON_SCAN_INEXACT), the scan also records where the document
 * has a number that an IEEE double (libjq 1.6's only number type) does not
 * hold exactly: more than 15 significant digits, other than an integer of at
 * most 2^53 in magnitude, or a magnitude out of a double's range.
 *
 * One scanner per thread; a json_paths is read-only once built and may be
 * shared. Allocation failure aborts (util.h).
 */
#ifndef CDCR_JSON_H
#define CDCR_JSON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum json_kind { JSON_MISSING = 0, JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
	         JSON_OBJECT };
const char *json_kind_name(enum json_kind k);

struct json_val {
	enum json_kind kind;
	const char *p;          /* text (not NUL-terminated), NULL for null and missing */
	size_t n;
};

/* A number literal of the last scanned document, by its byte offset. */
struct json_span {
	size_t off, len;
};

struct json_paths;
struct json_scanner;

struct json_paths *json_paths_new(void);
void json_paths_free(struct json_paths **pp);
/* Add a path of nfields field names (0 = the document itself); returns its
 * slot, 0..json_paths_count()-1. The same path added twice has one slot. */
int json_paths_add(struct json_paths *ps, const char *const *fields, int nfields);
int json_paths_count(const struct json_paths *ps);

struct json_scanner *json_scanner_new(void);
void json_scanner_free(struct json_scanner **sp);

enum { JSON_SCAN_INEXACT = 1 };

/* Scan doc (len bytes; need not be padded or NUL-terminated). out has
 * json_paths_count(ps) entries (ps may be NULL: validate only); *root gets
 * the kind of the document itself. Returns 0, or -1 with a message in err. */
int json_scan(struct json_scanner *s, const struct json_paths *ps, const char *doc, size_t len, int flags,
              struct json_val *out, enum json_kind *root, char *err, size_t errlen);

/* The numbers a double does not hold exactly, found by the last scan made
 * with JSON_SCAN_INEXACT (offsets into the document scanned). */
size_t json_inexact(const struct json_scanner *s, const struct json_span **spans);

/* Whether a number literal (valid JSON number text) is held exactly by a
 * double, in the sense above. */
int json_number_exact(const char *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif
