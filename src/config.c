/* config.c — the settings table and the loader; see config.h. */
#include "util.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dirlist.h"
#include "log.h"

enum ctype { C_STR, C_INT, C_FLOAT, C_BOOL, C_LIST };

struct setting {
	const char *key;        /* dotted path in the file */
	enum ctype type;
	size_t off;             /* into struct config */
	const char *def;        /* default, as text */
	unsigned reload;        /* CONFIG_R_*: what a change needs on SIGHUP; 0: applied at the next batch */
	const char *doc;
};

#define R_CONS CONFIG_R_CONSUMER
#define R_SINK CONFIG_R_SINK
#define R_DLQ CONFIG_R_DLQ
#define R_TELE CONFIG_R_TELEMETRY

#define OFF(f) offsetof(struct config, f)

/* The one declaration of every setting. */
static const struct setting settings[] = {
	{ "kafka.brokers", C_STR, OFF(brokers), "127.0.0.1:9092", R_CONS | R_DLQ, "bootstrap.servers" },
	{ "kafka.group_id", C_STR, OFF(group_id), "cdcrouter", R_CONS | R_SINK,
	  "consumer group id, and the key of the offsets stored in the sink" },
	{ "kafka.auto_offset_reset", C_STR, OFF(auto_offset_reset), "earliest", R_CONS,
	  "where to start without stored offsets: earliest | latest" },
	{ "kafka.properties", C_LIST, OFF(kafka_props), "", R_CONS | R_DLQ,
	  "extra librdkafka properties, each \"name=value\"" },
	{ "sink.conninfo", C_STR, OFF(conninfo), "host=127.0.0.1 port=5432 dbname=sink", R_SINK,
	  "libpq connection string; password from CDCROUTER_SINK_PASSWORD or ~/.pgpass" },
	{ "apply.batch_size", C_INT, OFF(batch_size), "5000", 0, "max messages per sink transaction" },
	{ "apply.batch_bytes", C_INT, OFF(batch_bytes), "16777216", 0,
	  "max bytes of keys and values per sink transaction (a bigger message goes alone)" },
	{ "apply.batch_wait_ms", C_INT, OFF(batch_wait_ms), "50", 0,
	  "longest a batch keeps filling while the previous one is in the sink (an idle sink gets it at once)" },
	{ "apply.on_error", C_STR, OFF(on_error), "", 0,
	  "default error policy: dlq | skip | stop (empty: dlq if dead_letter_topic is set, else skip)" },
	{ "apply.dead_letter_topic", C_STR, OFF(dead_letter_topic), "", R_DLQ,
	  "topic receiving messages that failed permanently" },
	{ "apply.retry_backoff_ms", C_INT, OFF(retry_backoff_ms), "200", 0,
	  "first back-off after a transient sink error" },
	{ "apply.retry_backoff_max_ms", C_INT, OFF(retry_backoff_max_ms), "10000", 0,
	  "back-off ceiling" },
	{ "conf_dir", C_STR, OFF(conf_dir), "conf.d", 0, "drop-in directory (main file only)" },
	{ "routes_dir", C_STR, OFF(routes_dir), "routes", 0, "directory of *.route files" },
	{ "log.level", C_STR, OFF(log_level), "info", 0, "debug | info | warn | error" },
	{ "log.stats_interval_ms", C_INT, OFF(stats_interval_ms), "30000", 0,
	  "period of the progress line (0: never)" },
	{ "otlp.endpoint", C_STR, OFF(otlp_endpoint), "", R_TELE,
	  "OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (empty: telemetry off)" },
	{ "otlp.headers", C_LIST, OFF(otlp_headers), "", R_TELE, "extra HTTP headers, each \"Name: value\"" },
	{ "otlp.resource", C_LIST, OFF(otlp_resource), "", R_TELE,
	  "extra resource attributes, each \"key=value\"" },
	{ "otlp.sample_ratio", C_FLOAT, OFF(otlp_sample_ratio), "1.0", R_TELE,
	  "fraction of root traces sampled (parent-based)" },
	{ "otlp.export_interval_ms", C_INT, OFF(otlp_export_interval_ms), "5000", R_TELE,
	  "metrics export period and max span batching delay" },
	{ "otlp.queue_size", C_INT, OFF(otlp_queue_size), "8192", R_TELE,
	  "max queued spans (and logs); beyond it telemetry is dropped and counted" },
	{ "otlp.timeout_ms", C_INT, OFF(otlp_timeout_ms), "5000", R_TELE, "HTTP request timeout" },
	{ "otlp.gzip", C_BOOL, OFF(otlp_gzip), "false", R_TELE, "gzip request bodies" },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* ---- values ---------------------------------------------------------- */

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void *field(struct config *c, const struct setting *s) { return (char *)c + s->off; }

static void set_default(struct config *c, const struct setting *s)
{
	void *p = field(c, s);

	switch (s->type) {
	case C_STR: *(char **)p = xstrdup(s->def); break;
	case C_INT: *(int *)p = atoi(s->def); break;
	case C_FLOAT: *(double *)p = strtod(s->def, NULL); break;
	case C_BOOL: *(int *)p = strcmp(s->def, "true") == 0; break;
	case C_LIST: memset(p, 0, sizeof(struct strlist)); break;
	}
}

static const struct setting *find_setting(const char *key)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static const char *type_name(enum ctype t)
{
	static const char *const names[] = { "a string", "an integer", "a number", "a boolean",
		                             "a list of strings" };
	return names[t];
}

/* Store one libconfig setting into c according to s; type errors go to errs. */
static void assign(struct config *c, const struct setting *s, config_setting_t *cs,
                   const char *file, struct errlist *errs)
{
	void *p = field(c, s);
	int line = config_setting_source_line(cs);
	int t = config_setting_type(cs);

	switch (s->type) {
	case C_STR:
		if (t != CONFIG_TYPE_STRING)
			goto wrong;
		free(*(char **)p);
		*(char **)p = xstrdup(config_setting_get_string(cs));
		return;
	case C_INT:
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			goto wrong;
		*(int *)p = config_setting_get_int(cs);
		return;
	case C_FLOAT:
		if (t == CONFIG_TYPE_FLOAT)
			*(double *)p = config_setting_get_float(cs);
		else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
			*(double *)p = (double)config_setting_get_int64(cs);
		else
			goto wrong;
		return;
	case C_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			goto wrong;
		*(int *)p = config_setting_get_bool(cs);
		return;
	case C_LIST: {
		struct strlist *l = p;
		int n;

		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
			goto wrong;
		n = config_setting_length(cs);
		for (int i = 0; i < n; i++) {
			if (config_setting_type(config_setting_get_elem(cs, (unsigned)i)) != CONFIG_TYPE_STRING)
				goto wrong;
		}
		strlist_free(l);
		l->v = xcalloc((size_t)n + 1, sizeof(char *));
		for (int i = 0; i < n; i++)
			l->v[i] = xstrdup(config_setting_get_string_elem(cs, i));
		l->n = (size_t)n;
		return;
	}
	}
wrong:
	errlist_add(errs, file, line, "%s must be %s", s->key, type_name(s->type));
}

/* Walk a group, mapping each leaf to the settings table by its dotted path. */
static void walk(struct config *c, config_setting_t *grp, const char *prefix, const char *file,
                 int is_main, struct errlist *errs)
{
	int n = config_setting_length(grp);

	for (int i = 0; i < n; i++) {
		config_setting_t *cs = config_setting_get_elem(grp, (unsigned)i);
		char key[256];
		const struct setting *s;

		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", config_setting_name(cs));
		s = find_setting(key);
		if (!s && config_setting_type(cs) == CONFIG_TYPE_GROUP) {
			int known_prefix = 0;
			size_t kl = strlen(key);

			for (size_t j = 0; j < NSETTINGS; j++)
				if (strncmp(settings[j].key, key, kl) == 0 && settings[j].key[kl] == '.')
					known_prefix = 1;
			if (known_prefix) {
				walk(c, cs, key, file, is_main, errs);
				continue;
			}
		}
		if (!s) {
			errlist_add(errs, file, config_setting_source_line(cs), "unknown setting '%s'", key);
			continue;
		}
		if (!is_main && strcmp(s->key, "conf_dir") == 0) {
			errlist_add(errs, file, config_setting_source_line(cs),
			            "conf_dir may only be set in the main configuration file");
			continue;
		}
		assign(c, s, cs, file, errs);
	}
}

static int read_file(struct config *c, const char *file, int is_main, struct errlist *errs)
{
	config_t cf;

	config_init(&cf);
	if (!config_read_file(&cf, file)) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			errlist_add(errs, file, 0, "cannot read: %s", strerror(errno ? errno : ENOENT));
		else
			errlist_add(errs, config_error_file(&cf) ? config_error_file(&cf) : file,
			            config_error_line(&cf), "%s", config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	walk(c, config_root_setting(&cf), "", file, is_main, errs);
	config_destroy(&cf);
	return 0;
}

static char *resolve(const struct config *c, const char *p)
{
	char *r;

	if (p[0] == '/' || !c->dir)
		return xstrdup(p);
	if (asprintf(&r, "%s/%s", c->dir, p) < 0)
		return NULL;
	return r;
}

/* CDCROUTER_<KEY> with dots as underscores, upper case: CDCROUTER_SINK_CONNINFO. */
static void apply_env(struct config *c, struct errlist *errs)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		char name[128] = "CDCROUTER_";
		size_t o = strlen(name);
		const char *v;
		char *end;

		for (const char *k = s->key; *k && o < sizeof(name) - 1; k++)
			name[o++] = *k == '.' ? '_' : (char)toupper((unsigned char)*k);
		name[o] = '\0';
		v = getenv(name);
		if (!v)
			continue;
		switch (s->type) {
		case C_STR:
			free(*(char **)field(c, s));
			*(char **)field(c, s) = xstrdup(v);
			break;
		case C_INT:
			errno = 0;
			*(int *)field(c, s) = (int)strtol(v, &end, 10);
			if (errno || *end || end == v)
				errlist_add(errs, name, 0, "must be an integer");
			break;
		case C_FLOAT:
			*(double *)field(c, s) = strtod(v, &end);
			if (*end || end == v)
				errlist_add(errs, name, 0, "must be a number");
			break;
		case C_BOOL:
			*(int *)field(c, s) = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
			break;
		case C_LIST:
			errlist_add(errs, name, 0, "list settings cannot be set from the environment");
			break;
		}
	}
	if (getenv("CDCROUTER_SINK_PASSWORD"))
		c->password = xstrdup(getenv("CDCROUTER_SINK_PASSWORD"));
}

static void validate(struct config *c, struct errlist *errs)
{
	enum log_level lv;

	if (!*c->brokers)
		errlist_add(errs, c->path, 0, "kafka.brokers is empty");
	if (!*c->group_id)
		errlist_add(errs, c->path, 0, "kafka.group_id is empty");
	if (strcmp(c->auto_offset_reset, "earliest") && strcmp(c->auto_offset_reset, "latest"))
		errlist_add(errs, c->path, 0, "kafka.auto_offset_reset must be earliest or latest");
	for (size_t i = 0; i < c->kafka_props.n; i++)
		if (!strchr(c->kafka_props.v[i], '='))
			errlist_add(errs, c->path, 0, "kafka.properties entry '%s' is not name=value",
			            c->kafka_props.v[i]);
	if (c->batch_size < 1 || c->batch_size > 1000000)
		errlist_add(errs, c->path, 0, "apply.batch_size must be between 1 and 1000000");
	if (c->batch_bytes < 1024 || c->batch_bytes > 268435456)
		errlist_add(errs, c->path, 0, "apply.batch_bytes must be between 1024 and 268435456 (256 MB)");
	if (c->batch_wait_ms < 0)
		errlist_add(errs, c->path, 0, "apply.batch_wait_ms must be >= 0");
	if (c->retry_backoff_ms < 1 || c->retry_backoff_max_ms < c->retry_backoff_ms)
		errlist_add(errs, c->path, 0, "apply.retry_backoff_ms must be >= 1 and <= retry_backoff_max_ms");
	if (route_policy_parse(c->on_error, &c->policy))
		errlist_add(errs, c->path, 0, "apply.on_error must be dlq, skip or stop");
	if (c->policy == POLICY_DEFAULT)
		c->policy = *c->dead_letter_topic ? POLICY_DLQ : POLICY_SKIP;
	if (c->policy == POLICY_DLQ && !*c->dead_letter_topic)
		errlist_add(errs, c->path, 0, "apply.on_error = \"dlq\" needs apply.dead_letter_topic");
	if (log_level_parse(c->log_level, &lv))
		errlist_add(errs, c->path, 0, "log.level must be debug, info, warn or error");
	if (c->otlp_sample_ratio < 0 || c->otlp_sample_ratio > 1)
		errlist_add(errs, c->path, 0, "otlp.sample_ratio must be between 0 and 1");
	if (c->otlp_export_interval_ms < 100)
		errlist_add(errs, c->path, 0, "otlp.export_interval_ms must be >= 100");
	if (c->otlp_queue_size < 16)
		errlist_add(errs, c->path, 0, "otlp.queue_size must be >= 16");
	for (size_t i = 0; i < c->otlp_headers.n; i++)
		if (!strchr(c->otlp_headers.v[i], ':'))
			errlist_add(errs, c->path, 0, "otlp.headers entry '%s' is not 'Name: value'",
			            c->otlp_headers.v[i]);
	for (size_t i = 0; i < c->otlp_resource.n; i++)
		if (!strchr(c->otlp_resource.v[i], '='))
			errlist_add(errs, c->path, 0, "otlp.resource entry '%s' is not key=value",
			            c->otlp_resource.v[i]);
}

struct config *config_load(const char *path, struct errlist *errs)
{
	struct config *c = xcalloc(1, sizeof(*c));
	size_t nerr0 = errs->n, nf = 0;
	char **files = NULL, *confdir = NULL, *routesdir = NULL;
	const char *slash;

	c->path = xstrdup(path);
	slash = strrchr(path, '/');
	c->dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
	for (size_t i = 0; i < NSETTINGS; i++)
		set_default(c, &settings[i]);

	if (read_file(c, path, 1, errs) == 0) {
		confdir = resolve(c, c->conf_dir);
		files = dirlist_sorted(confdir, ".conf", &nf);
		for (size_t i = 0; i < nf; i++)
			read_file(c, files[i], 0, errs);
	}
	apply_env(c, errs);
	validate(c, errs);
	if (errs->n == nerr0) {
		routesdir = resolve(c, c->routes_dir);
		c->routes = routes_load(routesdir, c->policy, errs);
		if (c->routes && c->routes->n == 0)
			errlist_add(errs, routesdir, 0, "no *.route files: nothing to consume");
		for (size_t i = 0; c->routes && i < c->routes->n; i++)
			if (c->routes->v[i].policy == POLICY_DLQ && !*c->dead_letter_topic)
				errlist_add(errs, c->routes->v[i].file, 0,
				            "on_error = \"dlq\" needs apply.dead_letter_topic in the configuration");
	}
	for (size_t i = 0; i < nf; i++)
		free(files[i]);
	free(files);
	free(confdir);
	free(routesdir);
	if (errs->n != nerr0) {
		config_free(&c);
		return NULL;
	}
	return c;
}

void config_free(struct config **cp)
{
	struct config *c = *cp;

	if (!c)
		return;
	for (size_t i = 0; i < NSETTINGS; i++) {
		void *p = field(c, &settings[i]);

		if (settings[i].type == C_STR)
			free(*(char **)p);
		else if (settings[i].type == C_LIST)
			strlist_free(p);
	}
	if (c->password) {
		memset(c->password, 0, strlen(c->password));
		free(c->password);
	}
	routes_free(&c->routes);
	free(c->path);
	free(c->dir);
	free(c);
	*cp = NULL;
}

const char *config_reload_name(unsigned r, char *buf, size_t len)
{
	static const char *const names[] = { "consumer", "sink", "dead-letter", "telemetry" };
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < 4; i++)
		if (r & (1u << i))
			o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", o ? "," : "", names[i]);
	if (!o)
		snprintf(buf, len, "live");
	return buf;
}

void config_print_reference(void)
{
	static const char *const tn[] = { "string", "integer", "number", "boolean", "list" };
	char r[64];

	printf("%-28s %-8s %-21s %s\n", "setting", "type", "on reload", "default / meaning");
	for (size_t i = 0; i < NSETTINGS; i++)
		printf("%-28s %-8s %-21s \"%s\" — %s\n", settings[i].key, tn[settings[i].type],
		       config_reload_name(settings[i].reload, r, sizeof(r)), settings[i].def, settings[i].doc);
	printf("\non reload (SIGHUP), a changed setting is: live = applied at the next batch; consumer = a new\n"
	       "Kafka consumer (it leaves and rejoins the group); sink = a new sink connection, its statements\n"
	       "prepared before the swap; dead-letter = a new dead-letter producer; telemetry = the exporter\n"
	       "restarted. Anything that fails to start keeps the running configuration.\n");
}

static int strlist_eq(const struct strlist *a, const struct strlist *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

unsigned config_changes(const struct config *a, const struct config *b)
{
	unsigned r = 0;

	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		const void *x = (const char *)a + s->off, *y = (const char *)b + s->off;
		int same;

		switch (s->type) {
		case C_STR: same = strcmp(*(char *const *)x, *(char *const *)y) == 0; break;
		case C_INT:
		case C_BOOL: same = *(const int *)x == *(const int *)y; break;
		case C_FLOAT: same = *(const double *)x == *(const double *)y; break;
		default: same = strlist_eq(x, y); break;
		}
		if (!same)
			r |= s->reload ? s->reload : CONFIG_R_LIVE;
	}
	if (strcmp(a->password ? a->password : "", b->password ? b->password : ""))
		r |= CONFIG_R_SINK;
	return r;
}
