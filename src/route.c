/* route.c — loading and matching route files; see route.h. */
#include "util.h"
#include "route.h"

#include <ctype.h>
#include <jq.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirlist.h"
#include "errlist.h"
#include "sqltpl.h"

const char *route_op_name(enum route_op op)
{
	static const char *const names[] = { "upsert", "delete", "ignore" };
	return names[op];
}

/* ---- jq ------------------------------------------------------------------ */

struct jq_err {
	char msg[512];
};

static void jq_err_cb(void *data, jv msg)
{
	struct jq_err *e = data;

	msg = jq_format_error(msg);
	if (!e->msg[0])
		snprintf(e->msg, sizeof(e->msg), "%s", jv_string_value(msg));
	jv_free(msg);
}

/* Compile expr so that it runs over the input [key, meta, value] with . =
 * value and $key/$meta bound (jq 1.6 binds --arg variables at compile time,
 * so per-message values must come through the input). */
static jq_state *compile_jq(const char *expr, char *err, size_t errlen)
{
	struct jq_err e = { { 0 } };
	jq_state *jq = jq_init();
	char *prog;

	if (!jq) {
		snprintf(err, errlen, "jq_init failed");
		return NULL;
	}
	if (asprintf(&prog, ". as [$key, $meta, $__value] | $__value | (%s\n)", expr) < 0) {
		jq_teardown(&jq);
		return NULL;
	}
	jq_set_error_cb(jq, jq_err_cb, &e);
	if (!jq_compile(jq, prog)) {
		snprintf(err, errlen, "invalid jq expression '%s': %s", expr, e.msg[0] ? e.msg : "compile error");
		jq_teardown(&jq);
	} else {
		jq_set_error_cb(jq, NULL, NULL);
	}
	free(prog);
	return jq;
}

/* "", ".", ".a.b" → 0, 0, 2 fields ("a", "b": malloc'd into *out). Returns
 * the number of fields, or -1 if expr is not a plain path. A path of
 * identifiers only: anything else (.["a b"], .a[0], …) is jq's. */
static int plain_path(const char *expr, char ***out)
{
	const char *p = expr;
	char **v = NULL;
	int n = 0;

	*out = NULL;
	if (strcmp(p, ".") == 0 || !*p)
		return 0;
	while (*p == '.') {
		const char *s = ++p;

		if (!(isalpha((unsigned char)*p) || *p == '_'))
			goto no;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		v = xrealloc(v, (size_t)(n + 1) * sizeof(*v));
		v[n++] = xstrndup(s, (size_t)(p - s));
	}
	if (*p)
		goto no;
	*out = v;
	return n;
no:
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -1;
}

/* Give a plain path its slot in the route's value (or key) path set. */
static int add_path(struct json_paths **ps, char **fields, int n)
{
	int slot;

	if (!*ps)
		*ps = json_paths_new();
	slot = json_paths_add(*ps, (const char *const *)fields, n);
	for (int i = 0; i < n; i++)
		free(fields[i]);
	free(fields);
	return slot;
}

static void classify_param(struct route *r, struct route_param *pm, const char *file,
                           struct errlist *errs)
{
	static const char *const meta_names[] = { "topic", "partition", "offset", "timestamp" };
	char err[700], **fields;
	const char *e = pm->expr;
	int n;
	size_t len;

	while (isspace((unsigned char)*e))
		e++;
	len = strlen(e);
	while (len && isspace((unsigned char)e[len - 1]))
		len--;
	{
		char *t = xstrndup(e, len);

		if (*t == '.' && (n = plain_path(t, &fields)) >= 0) {
			pm->kind = PK_VALUE_PATH;
			pm->slot = add_path(&r->vpaths, fields, n);
			r->value_fields |= n > 0;
		} else if (strncmp(t, "$key", 4) == 0 && (t[4] == '.' || !t[4]) && (n = plain_path(t + 4, &fields)) >= 0) {
			pm->kind = PK_KEY_PATH;
			pm->slot = add_path(&r->kpaths, fields, n);
			if (n == 0)
				r->key_root_slot = pm->slot;
		} else if (strncmp(t, "$meta.headers.", 14) == 0 && (n = plain_path(t + 13, &fields)) == 1) {
			pm->kind = PK_HEADER;
			pm->header = fields[0];
			free(fields);
			r->uses_headers = 1;
		} else {
			pm->kind = PK_JQ;
			for (int i = 0; i < 4 && strncmp(t, "$meta.", 6) == 0; i++)
				if (strcmp(t + 6, meta_names[i]) == 0) {
					pm->kind = PK_META;
					pm->meta = (enum meta_field)i;
				}
		}
		free(t);
	}
	if (pm->kind != PK_JQ)
		return;
	r->uses_jq = 1;
	pm->jq = compile_jq(pm->expr, err, sizeof(err));
	if (!pm->jq)
		errlist_add(errs, file, pm->line, "param '%s': %s", pm->name, err);
	if (strstr(pm->expr, "$key"))
		r->jq_key = 1;
	if (strstr(pm->expr, "$meta"))
		r->jq_meta = r->uses_headers = 1;
}

/* ---- loading ------------------------------------------------------------- */

static const char *const route_keys[] = { "name", "topic", "topic_regex", "table", "params",
	                                  "required", "key", "reduce", "op", "upsert", "delete",
	                                  "upsert_batch", "delete_batch", "on_error", NULL };

static int find_param(const struct route *r, const char *name)
{
	for (int i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return i;
	return -1;
}

static const char *get_str(config_t *cf, const char *key, const char *file, struct errlist *errs)
{
	config_setting_t *s = config_lookup(cf, key);

	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		errlist_add(errs, file, config_setting_source_line(s), "'%s' must be a string", key);
		return NULL;
	}
	return config_setting_get_string(s);
}

static void load_stmt(struct route *r, config_t *cf, const char *key, struct route_stmt *st,
                      const char *file, struct errlist *errs)
{
	const char *text = get_str(cf, key, file, errs);
	int line;
	struct sqltpl t;
	char err[256];

	if (!text)
		return;
	line = config_setting_source_line(config_lookup(cf, key));
	if (sqltpl_parse(text, &t, err, sizeof(err))) {
		errlist_add(errs, file, line, "%s: invalid SQL template: %s", key, err);
		return;
	}
	st->present = 1;
	st->sql = t.sql;
	t.sql = NULL;
	st->nparams = t.nparams;
	st->param = xcalloc((size_t)t.nparams + 1, sizeof(int));
	for (int i = 0; i < t.nparams; i++) {
		st->param[i] = find_param(r, t.names[i]);
		if (st->param[i] < 0)
			errlist_add(errs, file, line, "%s: placeholder ':%s' is not a param of route '%s'",
			            key, t.names[i], r->name);
	}
	sqltpl_free(&t);
}

/* Mark or index names listed in an array setting (required, key). */
static int *load_names(struct route *r, config_t *cf, const char *key, int *n, const char *file,
                       struct errlist *errs)
{
	config_setting_t *s = config_lookup(cf, key);
	int *idx, cnt;

	*n = 0;
	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) {
		errlist_add(errs, file, config_setting_source_line(s), "'%s' must be a list of param names", key);
		return NULL;
	}
	cnt = config_setting_length(s);
	idx = xcalloc((size_t)cnt + 1, sizeof(int));
	for (int i = 0; i < cnt; i++) {
		const char *nm = config_setting_get_string_elem(s, i);
		int p = nm ? find_param(r, nm) : -1;

		if (p < 0) {
			errlist_add(errs, file, config_setting_source_line(s), "%s: '%s' is not a param", key,
			            nm ? nm : "(not a string)");
			continue;
		}
		idx[(*n)++] = p;
	}
	return idx;
}

static void route_clear(struct route *r);

int route_policy_parse(const char *s, enum error_policy *out)
{
	if (!strcmp(s, "dlq")) *out = POLICY_DLQ;
	else if (!strcmp(s, "skip")) *out = POLICY_SKIP;
	else if (!strcmp(s, "stop")) *out = POLICY_STOP;
	else if (!*s) *out = POLICY_DEFAULT;
	else return -1;
	return 0;
}

static int load_one(struct route *r, const char *file, enum error_policy default_policy, struct errlist *errs)
{
	config_t cf;
	config_setting_t *root, *params, *s;
	const char *v, *base;
	size_t nerr0 = errs->n;
	int *req, nreq;
	char err[700];

	memset(r, 0, sizeof(*r));
	r->key_root_slot = -1;
	r->file = xstrdup(file);
	r->policy = default_policy;
	config_init(&cf);
	if (!config_read_file(&cf, file)) {
		errlist_add(errs, config_error_file(&cf) ? config_error_file(&cf) : file,
		            config_error_line(&cf), "%s", config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	root = config_root_setting(&cf);
	for (int i = 0; i < config_setting_length(root); i++) {
		const char *k = config_setting_name(config_setting_get_elem(root, (unsigned)i));
		int known = 0;

		for (int j = 0; route_keys[j]; j++)
			known |= strcmp(k, route_keys[j]) == 0;
		if (!known)
			errlist_add(errs, file, config_setting_source_line(config_setting_get_elem(root, (unsigned)i)),
			            "unknown route setting '%s'", k);
	}

	base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	v = get_str(&cf, "name", file, errs);
	r->name = v ? xstrdup(v) : xstrndup(base, strlen(base) - strlen(".route"));
	r->line = 1;
	if ((v = get_str(&cf, "table", file, errs)))
		r->table = xstrdup(v);
	if ((v = get_str(&cf, "topic", file, errs)))
		r->topic = xstrdup(v);
	if ((v = get_str(&cf, "topic_regex", file, errs))) {
		r->topic_regex = xstrdup(v);
		if (regcomp(&r->re, v, REG_EXTENDED)) {
			errlist_add(errs, file, config_setting_source_line(config_lookup(&cf, "topic_regex")),
			            "invalid topic_regex '%s'", v);
			free(r->topic_regex);
			r->topic_regex = NULL;
		}
	}
	if (!!r->topic == !!r->topic_regex && errs->n == nerr0)
		errlist_add(errs, file, 0, "a route needs exactly one of 'topic' or 'topic_regex'");

	params = config_lookup(&cf, "params");
	if (!params || config_setting_type(params) != CONFIG_TYPE_GROUP) {
		errlist_add(errs, file, params ? config_setting_source_line(params) : 0,
		            "'params' must be a group: params = { name = \"jq expression\"; … };");
	} else {
		r->nparams = config_setting_length(params);
		r->params = xcalloc((size_t)r->nparams + 1, sizeof(*r->params));
		for (int i = 0; i < r->nparams; i++) {
			struct route_param *pm = &r->params[i];

			s = config_setting_get_elem(params, (unsigned)i);
			pm->name = xstrdup(config_setting_name(s));
			pm->line = config_setting_source_line(s);
			if (config_setting_type(s) != CONFIG_TYPE_STRING) {
				errlist_add(errs, file, pm->line, "param '%s' must be a string (a jq expression)", pm->name);
				pm->expr = xstrdup("null");
				continue;
			}
			pm->expr = xstrdup(config_setting_get_string(s));
			classify_param(r, pm, file, errs);
		}
	}

	{	/* read from every value: the default operation and the freshness metric */
		const char *del[] = { "__deleted" }, *ts[] = { "__source_ts_ms" };

		if (!r->vpaths)
			r->vpaths = json_paths_new();
		r->slot_deleted = json_paths_add(r->vpaths, del, 1);
		r->slot_source_ts = json_paths_add(r->vpaths, ts, 1);
	}
	req = load_names(r, &cf, "required", &nreq, file, errs);
	for (int i = 0; i < nreq; i++)
		r->params[req[i]].required = 1;
	free(req);
	r->key = load_names(r, &cf, "key", &r->nkey, file, errs);
	r->reduce = r->nkey > 0;
	if ((s = config_lookup(&cf, "reduce"))) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			errlist_add(errs, file, config_setting_source_line(s), "'reduce' must be true or false");
		else
			r->reduce = config_setting_get_bool(s);
		if (r->reduce && r->nkey == 0)
			errlist_add(errs, file, config_setting_source_line(s), "reduce = true needs a 'key'");
	}
	if ((v = get_str(&cf, "op", file, errs))) {
		r->op_expr = xstrdup(v);
		r->uses_jq = 1;
		r->op_jq = compile_jq(v, err, sizeof(err));
		if (!r->op_jq)
			errlist_add(errs, file, config_setting_source_line(config_lookup(&cf, "op")), "op: %s", err);
		if (strstr(v, "$key"))
			r->jq_key = 1;
		if (strstr(v, "$meta"))
			r->jq_meta = r->uses_headers = 1;
	}
	load_stmt(r, &cf, "upsert", &r->upsert, file, errs);
	load_stmt(r, &cf, "delete", &r->del, file, errs);
	load_stmt(r, &cf, "upsert_batch", &r->upsert_batch, file, errs);
	load_stmt(r, &cf, "delete_batch", &r->delete_batch, file, errs);
	if (!r->upsert.present && !r->del.present && errs->n == nerr0)
		errlist_add(errs, file, 0, "a route needs an 'upsert' or a 'delete' statement");
	if ((r->upsert_batch.present && !r->upsert.present) || (r->delete_batch.present && !r->del.present))
		errlist_add(errs, file, 0, "upsert_batch/delete_batch need their per-row upsert/delete too "
		                          "(used to isolate a failing message)");
	if ((r->upsert_batch.present || r->delete_batch.present) && !r->reduce)
		errlist_add(errs, file, 0, "upsert_batch/delete_batch need a 'key' with reduce = true "
		                          "(a set-based statement may not touch a row twice)");
	if ((v = get_str(&cf, "on_error", file, errs))) {
		enum error_policy p;

		if (route_policy_parse(v, &p) || p == POLICY_DEFAULT)
			errlist_add(errs, file, config_setting_source_line(config_lookup(&cf, "on_error")),
			            "on_error must be dlq, skip or stop");
		else
			r->policy = p;
	}
	config_destroy(&cf);
	return errs->n == nerr0 ? 0 : -1;
}

struct routes *routes_load(const char *dir, enum error_policy default_policy, struct errlist *errs)
{
	struct routes *rs = xcalloc(1, sizeof(*rs));
	size_t nf, nerr0 = errs->n;
	char **files = dirlist_sorted(dir, ".route", &nf);

	if (!files) {
		FILE *f = fopen(dir, "r");

		if (!f)
			errlist_add(errs, dir, 0, "cannot open routes directory");
		else
			fclose(f);
	}
	rs->v = xcalloc(nf + 1, sizeof(*rs->v));
	for (size_t i = 0; i < nf; i++) {
		struct route *r = &rs->v[rs->n++];

		load_one(r, files[i], default_policy, errs);
		for (size_t j = 0; j + 1 < rs->n; j++) {
			const struct route *o = &rs->v[j];

			if (r->name && o->name && strcmp(r->name, o->name) == 0)
				errlist_add(errs, files[i], 1, "duplicate route name '%s' (also in %s)", r->name, o->file);
			if (r->topic && o->topic && strcmp(r->topic, o->topic) == 0)
				errlist_add(errs, files[i], 1, "topic '%s' already routed by %s", r->topic, o->file);
		}
		free(files[i]);
	}
	free(files);
	if (errs->n != nerr0)
		routes_free(&rs);
	return rs;
}

static void stmt_clear(struct route_stmt *st)
{
	free(st->sql);
	free(st->param);
}

static void route_clear(struct route *r)
{
	for (int i = 0; i < r->nparams; i++) {
		struct route_param *pm = &r->params[i];

		free(pm->header);
		if (pm->jq)
			jq_teardown(&pm->jq);
		free(pm->name);
		free(pm->expr);
	}
	free(r->params);
	json_paths_free(&r->vpaths);
	json_paths_free(&r->kpaths);
	free(r->key);
	if (r->op_jq)
		jq_teardown(&r->op_jq);
	free(r->op_expr);
	stmt_clear(&r->upsert);
	stmt_clear(&r->del);
	stmt_clear(&r->upsert_batch);
	stmt_clear(&r->delete_batch);
	if (r->topic_regex)
		regfree(&r->re);
	free(r->topic_regex);
	free(r->topic);
	free(r->table);
	free(r->name);
	free(r->file);
}

void routes_free(struct routes **rp)
{
	struct routes *rs = *rp;

	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		route_clear(&rs->v[i]);
	for (size_t i = 0; i < rs->ncache; i++)
		free(rs->cache[i].topic);
	free(rs->v);
	free(rs);
	*rp = NULL;
}

int route_regex_match(const struct route *r, const char *topic, regmatch_t *m, size_t nm)
{
	regmatch_t whole[10];

	if (!m || nm == 0) {
		m = whole;
		nm = 1;
	}
	/* POSIX matching is leftmost-longest: the whole name matches iff the
	 * match found starts at 0 and ends at the end */
	return regexec(&r->re, topic, nm, m, 0) == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == strlen(topic);
}

const struct route *routes_match(struct routes *rs, const char *topic)
{
	const struct route *found = NULL;

	for (size_t i = 0; i < rs->ncache; i++)
		if (strcmp(rs->cache[i].topic, topic) == 0)
			return rs->cache[i].r;
	for (size_t i = 0; i < rs->n && !found; i++)
		if (rs->v[i].topic && strcmp(rs->v[i].topic, topic) == 0)
			found = &rs->v[i];
	for (size_t i = 0; i < rs->n && !found; i++)
		if (rs->v[i].topic_regex && route_regex_match(&rs->v[i], topic, NULL, 0))
			found = &rs->v[i];
	if (rs->ncache < sizeof(rs->cache) / sizeof(rs->cache[0])) {
		rs->cache[rs->ncache].topic = xstrdup(topic);
		rs->cache[rs->ncache++].r = found;
	}
	return found;
}

char **routes_topics(const struct routes *rs, size_t *n)
{
	char **v = xcalloc(rs->n + 1, sizeof(char *));

	*n = 0;
	for (size_t i = 0; i < rs->n; i++) {
		const struct route *r = &rs->v[i];
		int dup = 0;

		if (r->topic) {
			for (size_t j = 0; j < *n; j++)
				dup |= strcmp(v[j], r->topic) == 0;
			if (!dup)
				v[(*n)++] = xstrdup(r->topic);
		} else if (asprintf(&v[*n], "^(%s)$", r->topic_regex) >= 0) {
			(*n)++;         /* librdkafka: glibc's regexec too, a search unless anchored */
		}
	}
	return v;
}
