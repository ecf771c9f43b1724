/* util.h — small helpers shared by the modules, and the conventions every
 * module follows.
 *
 * Conventions:
 * - A module x is src/x.c with src/x.h; its exported functions start with
 *   x_ (some older enum constants, OP_*, POLICY_*, EXIT_*, do not),
 *   everything else is static. Includes point down
 *   (t/tools/include-graph).
 * - Objects: struct x *x_new(..., char *err, size_t errlen) returns NULL
 *   with a one-line reason in err; void x_free(struct x **xp) frees *xp,
 *   sets it to NULL and accepts NULL. Embedded structs have x_init/x_free(struct x *).
 * - Errors: functions return 0 or a module's own result enum (never a process
 *   exit status: only engine.c and main.c map results to exit codes), or -1
 *   with err/errlen filled when they take them.
 * - Pointers: parameters are not NULL unless the header says "may be NULL";
 *   what a function keeps (borrowed, owned) is said where it is declared.
 * - Memory: xrealloc, xcalloc, xstrdup, xstrndup never return NULL. Running
 *   out of memory is not a condition cdcrouter can handle in a useful way:
 *   it exits, and the offsets stored in the sink make the restart resume
 *   exactly where it was. (The telemetry side, otlp.c, exporter.c and
 *   telemetry.c, still passes allocation failures up as errors.)
 *
 * Clocks: mono_ns, the monotonic clock, for timeouts, intervals and
 * back-offs; real_ns, the wall clock, for timestamps that leave the process
 * (spans, logs, latency against Kafka and source times). */
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

static inline char *xstrndup(const char *s, size_t n)
{
	size_t l = strnlen(s, n);
	char *r = xrealloc(NULL, l + 1);

	memcpy(r, s, l);
	r[l] = '\0';
	return r;
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
