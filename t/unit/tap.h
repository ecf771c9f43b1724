/* tap.h — a minimal TAP producer for the C unit tests (header-only). */
#ifndef CDCR_TAP_H
#define CDCR_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static inline void plan(int n) { tap_planned = n; printf("1..%d\n", n); }

static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static inline void diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int is_int(long long got, long long want, const char *name)
{
	int r = ok(got == want, "%s", name);
	if (!r)
		diag("  got %lld, want %lld", got, want);
	return r;
}

static inline int is_str(const char *got, const char *want, const char *name)
{
	int r = ok(got && want ? strcmp(got, want) == 0 : got == want, "%s", name);
	if (!r)
		diag("  got '%s', want '%s'", got ? got : "(null)", want ? want : "(null)");
	return r;
}

/* Print the plan if none was given; return the process exit code. */
static inline int done_testing(void)
{
	if (!tap_planned)
		printf("1..%d\n", tap_n);
	else if (tap_planned != tap_n)
		return 255;
	return tap_failed ? 1 : 0;
}

#endif
