/* sqltpl.c — named placeholders to $n; see sqltpl.h. */
#include "util.h"
#include "sqltpl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ident_start(int c) { return isalpha(c) || c == '_'; }
static int ident_char(int c) { return isalnum(c) || c == '_'; }

static int line_of(const char *text, const char *p)
{
	int l = 1;

	for (const char *q = text; q < p; q++)
		l += *q == '\n';
	return l;
}

struct out {
	char *buf;
	size_t len, cap;
};

static void emit(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* Index of name in t->names, adding it if new. */
static int param_index(struct sqltpl *t, const char *name, size_t n)
{
	for (int i = 0; i < t->nparams; i++)
		if (strlen(t->names[i]) == n && memcmp(t->names[i], name, n) == 0)
			return i;
	t->names = xrealloc(t->names, (size_t)(t->nparams + 1) * sizeof(char *));
	t->names[t->nparams] = strndup(name, n);
	return t->nparams++;
}

int sqltpl_parse(const char *text, struct sqltpl *t, char *err, size_t errlen)
{
	struct out o = { 0 };
	const char *p = text, *start;

	memset(t, 0, sizeof(*t));
	emit(&o, "", 0);
	while (*p) {
		start = p;
		if (p[0] == '-' && p[1] == '-') {                       /* line comment */
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {                /* nested block comment */
			int depth = 1;

			p += 2;
			while (*p && depth) {
				if (p[0] == '/' && p[1] == '*') { depth++; p += 2; }
				else if (p[0] == '*' && p[1] == '/') { depth--; p += 2; }
				else p++;
			}
			if (depth) {
				snprintf(err, errlen, "line %d: unterminated /* comment", line_of(text, start));
				goto fail;
			}
		} else if (*p == '\'' || *p == '"') {                   /* string or quoted identifier */
			char q = *p;
			int backslash = q == '\'' && p > text && (p[-1] == 'E' || p[-1] == 'e') &&
			                (p - 1 == text || !ident_char((unsigned char)p[-2]));

			p++;
			for (;;) {
				if (!*p) {
					snprintf(err, errlen, "line %d: unterminated %s", line_of(text, start),
					         q == '"' ? "quoted identifier" : "string literal");
					goto fail;
				}
				if (backslash && *p == '\\' && p[1]) { p += 2; continue; }
				if (*p == q) {
					if (p[1] == q) { p += 2; continue; }    /* doubled quote */
					p++;
					break;
				}
				p++;
			}
		} else if (*p == '$' && (p[1] == '$' || ident_start((unsigned char)p[1])) &&
		           (p == text || !ident_char((unsigned char)p[-1]))) {
			/* $tag$ … $tag$ (a $1 positional parameter is not a tag: digits can't start one) */
			const char *tag = p++, *close;
			size_t tl;

			while (ident_char((unsigned char)*p))
				p++;
			if (*p != '$') {
				snprintf(err, errlen, "line %d: stray '$' (use :name placeholders)", line_of(text, start));
				goto fail;
			}
			p++;
			tl = (size_t)(p - tag);
			close = p;
			for (;;) {
				close = strchr(close, '$');
				if (!close) {
					snprintf(err, errlen, "line %d: unterminated dollar-quoted string", line_of(text, start));
					goto fail;
				}
				if (strncmp(close, tag, tl) == 0)
					break;
				close++;
			}
			p = close + tl;
		} else if (*p == '$' && isdigit((unsigned char)p[1])) {
			snprintf(err, errlen, "line %d: positional parameter '$%c' in a template (use :name)",
			         line_of(text, start), p[1]);
			goto fail;
		} else if (p[0] == ':' && p[1] == ':') {                /* cast */
			p += 2;
		} else if (p[0] == ':' && ident_start((unsigned char)p[1])) {
			char num[16];
			int idx;

			p++;
			start = p;
			while (ident_char((unsigned char)*p))
				p++;
			idx = param_index(t, start, (size_t)(p - start));
			snprintf(num, sizeof(num), "$%d", idx + 1);
			emit(&o, num, strlen(num));
			continue;
		} else {
			p++;
		}
		emit(&o, start, (size_t)(p - start));
	}
	t->sql = o.buf;
	return 0;
fail:
	free(o.buf);
	t->sql = NULL;
	sqltpl_free(t);
	return -1;
}

void sqltpl_free(struct sqltpl *t)
{
	free(t->sql);
	for (int i = 0; i < t->nparams; i++)
		free(t->names[i]);
	free(t->names);
	memset(t, 0, sizeof(*t));
}
