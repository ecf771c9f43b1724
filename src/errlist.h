/* errlist.h — every problem found while loading, as "file:line: message",
 * collected so that a user sees them all at once (config and route
 * loading, --check). */
#ifndef CDCR_ERRLIST_H
#define CDCR_ERRLIST_H

#include <stddef.h>

struct errlist {
	char **v;
	size_t n;
};

/* Append "file:line: message" ("file: message" when line <= 0). */
void errlist_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void errlist_free(struct errlist *e);

#endif
