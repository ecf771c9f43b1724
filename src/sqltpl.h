/*
 * sqltpl.h — SQL templates with named placeholders.
 *
 * "UPDATE t SET email = :email WHERE id = :id::uuid" becomes
 * "UPDATE t SET email = $1 WHERE id = $2::uuid" with names [email, id].
 * The scanner respects '…' and E'…' strings, "…" identifiers, $tag$…$tag$
 * dollar quotes, -- and nested C-style comments, and :: casts, so a colon in
 * any of those is never a placeholder. Values are only ever bound, never
 * spliced into the text.
 */
#ifndef CDCR_SQLTPL_H
#define CDCR_SQLTPL_H

#include <stddef.h>

struct sqltpl {
	char *sql;          /* with $1..$n */
	char **names;       /* names[i] is the parameter bound to $(i+1) */
	int nparams;
};

/* Parse text. On error returns -1 and writes a message (with the 1-based
 * line within the template) to err. */
int sqltpl_parse(const char *text, struct sqltpl *out, char *err, size_t errlen);
void sqltpl_free(struct sqltpl *t);

#endif
