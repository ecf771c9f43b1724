/*
 * log.h — structured JSON log lines on stderr, mirrored to OpenTelemetry.
 *
 * One line per event: {"time":…,"level":…,"msg":…, fields…, "trace_id":…,"span_id":…}.
 * Fields are (key, string) or (key, integer) pairs built with LF_S/LF_I/LF_B.
 * LF_B marks untrusted bytes (Kafka keys): truncated to 64 bytes and every
 * non-printable byte escaped, so binary keys stay readable and safe.
 */
#ifndef CDCR_LOG_H
#define CDCR_LOG_H

#include <stddef.h>
#include "telemetry.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log_field {
	const char *key;
	const char *str;        /* string value; NULL with is_num=0 → JSON null */
	size_t len;             /* for binary values (LF_B) */
	long long num;
	char kind;              /* 's' string, 'i' integer, 'b' binary */
};

#define LF_S(k, v)    ((struct log_field){ .key = (k), .str = (v), .kind = 's' })
#define LF_I(k, v)    ((struct log_field){ .key = (k), .num = (long long)(v), .kind = 'i' })
#define LF_B(k, v, n) ((struct log_field){ .key = (k), .str = (v), .len = (n), .kind = 'b' })

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out);    /* 0 ok, -1 unknown */
/* Mirror records to OTLP (NULL to stop). Not owned. */
void log_set_tele(struct tele *t);

void log_write(enum log_level level, const struct tele_ctx *ctx, const char *msg,
               const struct log_field *fields, size_t n);

/* log_at(LOG_INFO, ctx_or_NULL, "message", LF_S("k", v), …) */
#define log_at(level, ctx, msg, ...)                                                   \
	do {                                                                           \
		if ((level) >= log_get_level()) {                                      \
			const struct log_field lf__[] = { { 0 }, __VA_ARGS__ };        \
			log_write((level), (ctx), (msg), lf__ + 1,                     \
			          sizeof(lf__) / sizeof(lf__[0]) - 1);                 \
		}                                                                      \
	} while (0)

#define log_debug(msg, ...) log_at(LOG_DEBUG, NULL, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_at(LOG_INFO, NULL, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_at(LOG_WARN, NULL, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, NULL, msg, __VA_ARGS__)

#endif
