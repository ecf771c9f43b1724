/*
 * config.h — cdcrouter settings: cdcrouter.conf plus conf.d/NAME.conf drop-ins
 * (libconfig syntax), read in lexical order, later files overriding earlier
 * keys, then CDCROUTER_* environment overrides.
 *
 * Every setting is declared once in the table in config.c (key, type,
 * default, what a change needs on reload, doc); --help-config prints it,
 * the reload diff is derived from it, and t/10-cli.t checks that the sample
 * config and the man page agree with it.
 */
#ifndef CDCR_CONFIG_H
#define CDCR_CONFIG_H

#include <stddef.h>

#include "errlist.h"
#include "route.h"

struct strlist {
	char **v;
	size_t n;
};

struct config {
	char *path;                 /* main file, as given */
	char *dir;                  /* its directory: relative paths resolve from here */

	/* kafka */
	char *brokers;
	char *group_id;
	char *auto_offset_reset;
	struct strlist kafka_props; /* "key=value" passed to librdkafka */

	/* sink */
	char *conninfo;
	char *password;             /* from CDCROUTER_SINK_PASSWORD only; never logged */

	/* apply */
	int batch_size;
	int batch_bytes;
	int batch_wait_ms;
	char *on_error;             /* dlq | skip | stop; "" = dlq when dead_letter_topic is set, else skip */
	enum error_policy policy;   /* resolved */
	char *dead_letter_topic;
	int retry_backoff_ms;
	int retry_backoff_max_ms;

	/* paths */
	char *conf_dir;
	char *routes_dir;

	/* log */
	char *log_level;
	int stats_interval_ms;

	/* otlp */
	char *otlp_endpoint;        /* "" disables telemetry */
	struct strlist otlp_headers;   /* "Name: value" */
	struct strlist otlp_resource;  /* "key=value" */
	double otlp_sample_ratio;
	int otlp_export_interval_ms;
	int otlp_queue_size;
	int otlp_timeout_ms;
	int otlp_gzip;

	struct routes *routes;      /* owned */
};

/* Load everything (main file, drop-ins, environment, routes). Returns NULL
 * and fills errs when anything is wrong; never half-applies. */
struct config *config_load(const char *path, struct errlist *errs);
void config_free(struct config **cp);

/* Print the settings table (key, type, default, doc) for --help-config. */
void config_print_reference(void);

/* What a changed setting needs on reload: the settings table says it. */
enum {
	CONFIG_R_CONSUMER = 1,      /* a new Kafka consumer */
	CONFIG_R_SINK = 2,          /* a new sink connection (the password counts) */
	CONFIG_R_DLQ = 4,           /* a new dead-letter producer */
	CONFIG_R_TELEMETRY = 8,     /* the telemetry exporter restarted */
	CONFIG_R_LIVE = 16,         /* applied at the next batch */
};
/* The CONFIG_R_* of every setting that differs between a and b. */
unsigned config_changes(const struct config *a, const struct config *b);
/* "live", or e.g. "consumer,dead-letter", for a CONFIG_R_* mask without LIVE. */
const char *config_reload_name(unsigned r, char *buf, size_t len);

#endif
