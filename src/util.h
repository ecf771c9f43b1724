/* util.h — allocation that cannot fail silently. Running out of memory is
 * not a condition cdcrouter can handle in a useful way: it exits, and the
 * offsets stored in the sink make the restart resume exactly where it was. */
#ifndef CDCR_UTIL_H
#define CDCR_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
		abort();
	}
	return q;
}

#endif
