/* Route and extraction cases as data: every t/unit/cases/NAME.test (in the
 * manner of jq's tests/jq.test) is read by this one runner. A file is a
 * series of blocks:
 *
 *   # a comment
 *   route <<                       the route the next cases use (a route file's text)
 *   topic = "cdc.t"; params = { id = ".id"; }; key = [ "id" ]; upsert = "SELECT :id";
 *   >>
 *   case NAME                      one message...
 *   topic cdc.t                    (default: cdc.t)
 *   key {"id":1}                   (default: no key)
 *   value {"id":1}                 (or: tombstone)
 *   header traceparent 00-…        (any number)
 *   op upsert                      ...and what extraction must make of it:
 *   param id 1                     the bound text of a param (NULL: SQL NULL)
 *   error needs a number           or: a data error whose message contains this
 *   end
 *
 * One TAP line per expectation, named file:line. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "extract.h"
#include "route.h"
#include "tap.h"

#define MAXH 8
#define MAXP 32

struct expect {
	int line;
	char *what, *name, *text;   /* what: "op", "param", "error" */
};

struct tcase {
	char name[256];
	int line;
	char topic[256];
	char *key, *value;
	int tombstone;
	struct extract_header h[MAXH];
	size_t nh;
	struct expect e[MAXP];
	size_t ne;
};

static struct routes *load_route(const char *text, const char *where)
{
	char dir[] = "/tmp/cdcr-cases-XXXXXX", path[128];
	struct errlist errs = { 0 };
	struct routes *rs;
	FILE *f;

	if (!mkdtemp(dir))
		return NULL;
	snprintf(path, sizeof(path), "%s/case.route", dir);
	if (!(f = fopen(path, "w")))
		return NULL;
	fputs(text, f);
	fclose(f);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	for (size_t i = 0; i < errs.n; i++)
		diag("%s: %s", where, errs.v[i]);
	errlist_free(&errs);
	unlink(path);
	rmdir(dir);
	return rs;
}

static void case_free(struct tcase *c)
{
	free(c->key);
	free(c->value);
	for (size_t i = 0; i < c->nh; i++) {
		free((char *)c->h[i].name);
		free((char *)c->h[i].value);
	}
	for (size_t i = 0; i < c->ne; i++) {
		free(c->e[i].what);
		free(c->e[i].name);
		free(c->e[i].text);
	}
	memset(c, 0, sizeof(*c));
}

static const char *param_text(const struct batch *b, const struct bmsg *m, const char *name, int *found)
{
	*found = 0;
	for (int i = 0; m->route && i < m->route->nparams; i++) {
		if (strcmp(m->route->params[i].name, name) == 0) {
			struct bval *v = batch_val((struct batch *)b, m, i);

			*found = 1;
			return v->off < 0 ? NULL : batch_str((struct batch *)b, v->off);
		}
	}
	return NULL;
}

static void run_case(struct extractor *x, struct routes *rs, struct tcase *c, const char *file)
{
	struct extract_msg km = { 0 };
	struct batch b;
	struct bmsg *m;
	int rc;

	km.topic = c->topic[0] ? c->topic : "cdc.t";
	km.timestamp = -1;
	km.key = c->key;
	km.key_len = c->key ? strlen(c->key) : 0;
	km.value = c->tombstone ? NULL : c->value ? c->value : "";
	km.value_len = km.value ? strlen(km.value) : 0;
	km.headers = c->nh ? c->h : NULL;
	km.nheaders = c->nh;
	batch_init(&b);
	m = batch_add(&b, NULL);
	rc = rs ? extract_view(x, rs, &b, m, &km) : -1;
	for (size_t i = 0; i < c->ne; i++) {
		const struct expect *e = &c->e[i];

		if (!strcmp(e->what, "error")) {
			const char *msg = batch_errmsg(&b, m);

			if (!ok(rc != 0 && msg && strstr(msg, e->text), "%s:%d %s: error contains '%s'", file, e->line,
			        c->name, e->text))
				diag("  got: %s", rc ? (msg ? msg : "(no message)") : "no error");
			continue;
		}
		if (rc != 0) {
			ok(0, "%s:%d %s: %s %s", file, e->line, c->name, e->what, e->name ? e->name : e->text);
			diag("  data error: %s", batch_errmsg(&b, m) ? batch_errmsg(&b, m) : "(none)");
			continue;
		}
		if (!strcmp(e->what, "op")) {
			if (!ok(!strcmp(route_op_name(m->op), e->text), "%s:%d %s: op %s", file, e->line, c->name, e->text))
				diag("  got: %s", route_op_name(m->op));
		} else {
			int found;
			const char *got = param_text(&b, m, e->name, &found);
			const char *want = strcmp(e->text, "NULL") ? e->text : NULL;
			int same = found && (got && want ? !strcmp(got, want) : got == want);

			if (!ok(same, "%s:%d %s: param %s = %s", file, e->line, c->name, e->name, e->text))
				diag("  got: %s", !found ? "(no such param)" : got ? got : "NULL");
		}
	}
	batch_free(&b);
}

static void run_file(struct extractor *x, const char *path, const char *file)
{
	FILE *f = fopen(path, "r");
	char line[65536], *route = NULL;
	size_t rlen = 0;
	int n = 0, in_route = 0, in_case = 0;
	struct routes *rs = NULL;
	struct tcase c = { 0 };

	if (!f) {
		ok(0, "%s: cannot read", file);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);
		char where[300];

		n++;
		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		if (in_route) {
			if (!strcmp(line, ">>")) {
				in_route = 0;
				routes_free(&rs);
				snprintf(where, sizeof(where), "%s:%d", file, n);
				rs = load_route(route ? route : "", where);
				ok(rs != NULL, "%s:%d the route loads", file, n);
				free(route);
				route = NULL;
				rlen = 0;
			} else {
				route = realloc(route, rlen + l + 2);
				memcpy(route + rlen, line, l);
				rlen += l;
				route[rlen++] = '\n';
				route[rlen] = '\0';
			}
			continue;
		}
		if (!l || line[0] == '#')
			continue;
		if (!strcmp(line, "route <<")) {
			in_route = 1;
		} else if (!strncmp(line, "case ", 5)) {
			case_free(&c);
			snprintf(c.name, sizeof(c.name), "%.255s", line + 5);
			c.line = n;
			in_case = 1;
		} else if (!in_case) {
			ok(0, "%s:%d: '%s' outside a case", file, n, line);
		} else if (!strncmp(line, "topic ", 6)) {
			snprintf(c.topic, sizeof(c.topic), "%.255s", line + 6);
		} else if (!strncmp(line, "key ", 4)) {
			c.key = strdup(line + 4);
		} else if (!strncmp(line, "value ", 6)) {
			c.value = strdup(line + 6);
		} else if (!strcmp(line, "tombstone")) {
			c.tombstone = 1;
		} else if (!strncmp(line, "header ", 7) && c.nh < MAXH) {
			char *sp = strchr(line + 7, ' ');

			c.h[c.nh].name = sp ? strndup(line + 7, (size_t)(sp - line - 7)) : strdup(line + 7);
			c.h[c.nh].value = sp ? strdup(sp + 1) : NULL;
			c.h[c.nh].len = sp ? strlen(sp + 1) : 0;
			c.nh++;
		} else if ((!strncmp(line, "op ", 3) || !strncmp(line, "error ", 6)) && c.ne < MAXP) {
			char *sp = strchr(line, ' ');

			c.e[c.ne++] = (struct expect){ n, strndup(line, (size_t)(sp - line)), NULL, strdup(sp + 1) };
		} else if (!strncmp(line, "param ", 6) && c.ne < MAXP) {
			char *sp = strchr(line + 6, ' ');

			if (!sp) {
				ok(0, "%s:%d: param needs a name and a text", file, n);
				continue;
			}
			c.e[c.ne++] = (struct expect){ n, strdup("param"), strndup(line + 6, (size_t)(sp - line - 6)),
			                               strdup(sp + 1) };
		} else if (!strcmp(line, "end")) {
			if (!c.ne)
				ok(0, "%s:%d %s: a case without expectations", file, c.line, c.name);
			run_case(x, rs, &c, file);
			case_free(&c);
			in_case = 0;
		} else {
			ok(0, "%s:%d: cannot read '%s'", file, n, line);
		}
	}
	if (in_route || in_case)
		ok(0, "%s: ends inside a %s", file, in_route ? "route" : "case");
	case_free(&c);
	free(route);
	routes_free(&rs);
	fclose(f);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	const char *src = getenv("CDCR_SRCDIR");
	char dir[4096], path[8192], *names[256];
	size_t nn = 0;
	struct extractor *x = extract_new();
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/t/unit/cases", src ? src : ".");
	if (!(d = opendir(dir))) {
		printf("Bail out! no %s (set CDCR_SRCDIR)\n", dir);
		return 255;
	}
	while ((de = readdir(d)) && nn < 256) {
		size_t l = strlen(de->d_name);

		if (l > 5 && !strcmp(de->d_name + l - 5, ".test"))
			names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(*names), cmp);
	ok(nn > 0, "case files in t/unit/cases");
	for (size_t i = 0; i < nn; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		run_file(x, path, names[i]);
		free(names[i]);
	}
	extract_free(&x);
	return done_testing();
}
