/* jsonl.c — see jsonl.h. */
#include "jsonl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

size_t jsonl_escape(char *buf, size_t cap, const char *s, size_t len, int binary)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\'; esc[1] = (char)c; n = 2;
		} else if (c == '\n') {
			esc[0] = '\\'; esc[1] = 'n'; n = 2;
		} else if (c < 0x20 || c == 0x7f || (binary && c > 0x7f)) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; n = 6;
		} else {
			esc[0] = (char)c; n = 1;
		}
		if (o + n >= cap)
			break;
		memcpy(buf + o, esc, n);
		o += n;
	}
	if (cap)
		buf[o < cap ? o : cap - 1] = '\0';
	return o;
}

void jsonl_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char t[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03ldZ", t, ts.tv_nsec / 1000000);
}
