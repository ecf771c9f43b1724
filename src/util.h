/* util.h — small helpers shared by the modules.
 *
 * xrealloc, xcalloc, xstrdup: allocation that cannot fail silently. Running out of memory is
 * not a condition cdcrouter can handle in a useful way: it exits, and the
 * offsets stored in the sink make the restart resume exactly where it was.
 * mono_ns: the monotonic clock, for timeouts, intervals and back-offs;
 * real_ns: the wall clock, for timestamps that leave the process (spans,
 * logs, latency against Kafka and source times). */
#ifndef CDCR_UTIL_H
#define CDCR_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
		abort();
	}
	return q;
}

static inline void *xcalloc(size_t n, size_t size)
{
	size_t bytes = n * size;

	return memset(xrealloc(NULL, bytes), 0, bytes);
}

static inline char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xrealloc(NULL, n), s, n);
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
