/* log.c — JSON lines on stderr; see log.h. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jsonl.h"

static enum log_level cur_level = LOG_INFO;
static struct tele *log_tele;

static const char *const level_name[] = { "debug", "info", "warn", "error" };
static const int level_severity[] = { 5, 9, 13, 17 };

void log_set_level(enum log_level level) { cur_level = level; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_tele(struct tele *t) { log_tele = t; }

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_name) / sizeof(level_name[0]); i++) {
		if (strcasecmp(s, level_name[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* A bounded line builder: a log line never allocates. */
struct line {
	char buf[8192];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->len + n >= sizeof(l->buf) - 2)
		n = sizeof(l->buf) - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s, size_t n, int binary)
{
	put(l, "\"", 1);
	l->len += jsonl_escape(l->buf + l->len, sizeof(l->buf) - 2 - l->len, s, n, binary);
	put(l, "\"", 1);
}

static void put_key(struct line *l, const char *k)
{
	put(l, ",", 1);
	put_str(l, k, strlen(k), 0);
	put(l, ":", 1);
}

#define KEY_TRUNCATE 64

void log_write(enum log_level level, const struct tele_ctx *ctx, const char *msg,
               const struct log_field *fields, size_t n)
{
	struct line l;
	char tbuf[64], nbuf[32];
	struct tele_kv kv[32];
	char kvbuf[32][TELE_KEY_ATTR_MAX + 32];   /* keys, numbers */
	size_t nkv = 0;

	if (level < cur_level)
		return;
	jsonl_time(tbuf, sizeof(tbuf));
	l.len = 0;
	l.len += (size_t)snprintf(l.buf, sizeof(l.buf), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", tbuf,
	                          level_name[level]);
	put_str(&l, msg, strlen(msg), 0);
	for (size_t i = 0; i < n; i++) {
		const struct log_field *f = &fields[i];
		const char *v = NULL;

		put_key(&l, f->key);
		switch (f->kind) {
		case 'i':
			snprintf(nbuf, sizeof(nbuf), "%lld", f->num);
			put(&l, nbuf, strlen(nbuf));
			v = nbuf;
			break;
		case 'b':
			if (!f->str) {
				put(&l, "null", 4);
				break;
			}
			put_str(&l, f->str, f->len > KEY_TRUNCATE ? KEY_TRUNCATE : f->len, 1);
			if (nkv < 32) {
				tele_key_attr(kvbuf[nkv], f->str, f->len);
				kv[nkv].key = f->key;
				kv[nkv].value = kvbuf[nkv];
				nkv++;
			}
			break;
		default:
			if (f->str) {
				put_str(&l, f->str, strlen(f->str), 0);
				v = f->str;
			} else {
				put(&l, "null", 4);
			}
		}
		if (v && nkv < 32) {
			if (v == nbuf) {
				snprintf(kvbuf[nkv], sizeof(kvbuf[nkv]), "%s", nbuf);
				v = kvbuf[nkv];
			}
			kv[nkv].key = f->key;
			kv[nkv].value = v;
			nkv++;
		}
	}
	if (ctx) {
		put_key(&l, "trace_id");
		put_str(&l, ctx->trace_hex, 32, 0);
		put_key(&l, "span_id");
		put_str(&l, ctx->span_hex, 16, 0);
	}
	put(&l, "}\n", 2);
	fwrite(l.buf, 1, l.len, stderr);
	if (log_tele)
		tele_log(log_tele, level_severity[level], msg, kv, nkv, ctx);
}
