/* telemetry_ids.c — trace context: span and trace ids from xoshiro256**
 * seeded by getrandom(2), W3C traceparent parsing and formatting, and the
 * sampling decision of tele_ctx_start(); see telemetry.h. */
#include "util.h"
#include "telemetry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- ids: xoshiro256** seeded from getrandom(2), shared by all tele
 * objects (and usable with tele == NULL, so log lines carry ids even with
 * export disabled). */

static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_s[4];
static int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next_locked(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

/* Fill p with random bytes, never all zero (an invalid W3C id). */
void tele_random_id(uint8_t *p, size_t n)
{
	pthread_mutex_lock(&rng_mu);
	if (!rng_seeded) {
		if (getrandom(rng_s, sizeof(rng_s), 0) != (ssize_t)sizeof(rng_s)) {
			/* no entropy source: fall back to clocks and pid, ids stay unique enough */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			rng_s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
			rng_s[1] = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rng_s[2] = (uint64_t)ts.tv_nsec;
			rng_s[3] = 0x2545F4914F6CDD1Dull;
		}
		if (!(rng_s[0] | rng_s[1] | rng_s[2] | rng_s[3]))
			rng_s[0] = 1;
		rng_seeded = 1;
	}
	for (;;) {
		uint64_t any = 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rng_next_locked();
			size_t k = n - i < 8 ? n - i : 8;
			memcpy(p + i, &r, k);
			any |= r;
		}
		if (any)
			break;
	}
	pthread_mutex_unlock(&rng_mu);
}

void tele_to_hex(char *out, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Lowercase hex only, as W3C trace-context requires. */
static int from_hex(uint8_t *out, const char *s, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		int v;
		if (s[i] >= '0' && s[i] <= '9')
			v = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = s[i] - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

int tele_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int tele_parse_traceparent(const char *s, size_t len, uint8_t trace_id[16], uint8_t span_id[8],
                           uint8_t *flags)
{
	uint8_t ver[1], fl[1];

	if (!s)
		return -1;
	while (len && s[len - 1] == '\0')       /* tolerate a C producer's NUL */
		len--;
	if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (from_hex(ver, s, 1) || ver[0] == 0xff)
		return -1;
	/* version 00 is exactly 55 bytes; later versions may append "-..." */
	if (ver[0] == 0 ? len != 55 : (len > 55 && s[55] != '-'))
		return -1;
	if (from_hex(trace_id, s + 3, 16) || from_hex(span_id, s + 36, 8) || from_hex(fl, s + 53, 1))
		return -1;
	if (tele_all_zero(trace_id, 16) || tele_all_zero(span_id, 8))
		return -1;
	*flags = fl[0];
	return 0;
}

void tele_format_traceparent(const struct tele_ctx *ctx, char out[56])
{
	snprintf(out, 56, "00-%s-%s-%02x", ctx->trace_hex, ctx->span_hex, ctx->sampled ? 1 : 0);
}


void tele_ctx_start(struct tele *t, const char *traceparent, size_t len, struct tele_ctx *out)
{
	uint8_t flags = 0;

	memset(out, 0, sizeof(*out));
	if (traceparent && tele_parse_traceparent(traceparent, len, out->trace_id, out->parent_span_id,
	                                          &flags) == 0) {
		out->sampled = flags & 1;               /* parent-based */
	} else {
		memset(out->parent_span_id, 0, sizeof(out->parent_span_id));
		tele_random_id(out->trace_id, sizeof(out->trace_id));
		/* TraceIdRatioBased: the low 56 bits of the random trace id against the ratio */
		uint64_t low = 0;
		for (int i = 9; i < 16; i++)
			low = low << 8 | out->trace_id[i];
		out->sampled = t && (double)low < t->ratio * 72057594037927936.0;  /* 2^56 */
	}
	tele_random_id(out->span_id, sizeof(out->span_id));
	tele_to_hex(out->trace_hex, out->trace_id, 16);
	tele_to_hex(out->span_hex, out->span_id, 8);
}
