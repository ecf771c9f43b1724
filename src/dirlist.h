/* dirlist.h — the files of a directory with a given suffix, in lexical
 * order: conf.d/NAME.conf drop-ins and routes/NAME.route files. */
#ifndef CDCR_DIRLIST_H
#define CDCR_DIRLIST_H

#include <stddef.h>

/* Sorted malloc'd paths dir/<name><suffix> (names starting with '.' skipped);
 * a missing directory gives an empty list (NULL, *np = 0). Free each path
 * and the array. */
char **dirlist_sorted(const char *dir, const char *suffix, size_t *np);

#endif
