/* errlist.c — see errlist.h. */
#include "util.h"
#include "errlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void errlist_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
{
	char msg[1024], *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = asprintf(&s, "%s:%d: %s", file, line, msg);
	else
		n = asprintf(&s, "%s: %s", file, msg);
	if (n < 0)
		return;
	e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n++] = s;
}

void errlist_free(struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}
