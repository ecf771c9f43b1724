/* jsonl.h — the pieces of a JSON log line, shared by log.c (cdcrouter's
 * lines) and exporter.c (the export thread's own lines, which must not go
 * through telemetry): string escaping and the timestamp. */
#ifndef CDCR_JSONL_H
#define CDCR_JSONL_H

#include <stddef.h>

/* Append s (len bytes) JSON-escaped, without quotes, to buf (NUL
 * terminated); binary=1 also escapes bytes >= 0x7f. Returns the number of
 * bytes written (truncates at cap). */
size_t jsonl_escape(char *buf, size_t cap, const char *s, size_t len, int binary);

/* The current time as "2026-12-04T19:55:00.123Z" (out: at least 32 bytes). */
void jsonl_time(char *out, size_t cap);

#endif
