/* main.c — command line, signals, start-up; the work is in engine.c. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "util.h"
#include "telemetry.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/cdcrouter/cdcrouter.conf"

static struct engine_flags flags;

static void on_stop(int sig) { flags.stop = 1; (void)sig; }
static void on_hup(int sig) { flags.reload = 1; (void)sig; }
static void on_usr1(int sig) { flags.status = 1; (void)sig; }

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: cdcrouter [-c FILE] [--check] [-l LEVEL]\n"
	        "Apply Debezium change events from Kafka to PostgreSQL, as declared by route files.\n"
	        "\n"
	        "  -c, --config FILE   main configuration (default " DEFAULT_CONF ");\n"
	        "                      drop-ins from conf.d/*.conf and routes from routes/*.route beside it\n"
	        "  -t, --check         validate the configuration and every route, print errors as\n"
	        "                      file:line: message, exit 0 if all is well, 1 otherwise\n"
	        "  -l, --log-level L   override log.level: debug | info | warn | error\n"
	        "      --help-config   list every setting with its type and default\n"
	        "  -V, --version       print the version\n"
	        "  -h, --help          this text\n"
	        "\n"
	        "Signals: SIGHUP reloads conf.d/ and routes/ (a bad configuration is refused and the\n"
	        "running one kept); SIGTERM/SIGINT finish the batch in flight and exit 0; SIGUSR1 logs a\n"
	        "progress line now; SIGUSR2 is ignored.\n"
	        "Environment: CDCROUTER_<SECTION>_<KEY> overrides a setting, e.g. CDCROUTER_KAFKA_BROKERS,\n"
	        "CDCROUTER_SINK_CONNINFO, CDCROUTER_OTLP_ENDPOINT; CDCROUTER_SINK_PASSWORD is the sink password.\n"
	        "Exit status: 0 ok, 1 configuration error, 2 a message failed under policy stop, 3 fatal error.\n"
	        "See cdcrouter(8), cdcrouter.conf(5), cdcrouter.route(5).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help-config", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONF, *level = NULL;
	int check = 0, opt, rc;
	struct errlist errs = { 0 };
	struct config *cfg;
	struct engine *e;
	struct tele *tele;
	struct sigaction sa = { 0 };
	char err[1024];
	enum log_level lv;

	while ((opt = getopt_long(argc, argv, "c:tl:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'l': level = optarg; break;
		case 'H': config_print_reference(); return 0;
		case 'V': printf("cdcrouter %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cdcrouter: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_CONFIG;
	}
	if (level && log_level_parse(level, &lv)) {
		fprintf(stderr, "cdcrouter: unknown log level '%s'\n", level);
		return EXIT_CONFIG;
	}

	cfg = config_load(path, &errs);
	if (check) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		if (cfg)
			printf("%s: configuration ok (%zu route%s)\n", path, cfg->routes->n, cfg->routes->n == 1 ? "" : "s");
		else
			fprintf(stderr, "%s: %zu error%s\n", path, errs.n, errs.n == 1 ? "" : "s");
		rc = cfg ? 0 : EXIT_CONFIG;
		errlist_free(&errs);
		config_free(&cfg);
		return rc;
	}
	if (!cfg) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("configuration error", LF_S("error", errs.v[i]));
		log_error("refusing to start", LF_S("config", path), LF_I("errors", errs.n));
		errlist_free(&errs);
		return EXIT_CONFIG;
	}
	if (level) {
		free(cfg->log_level);
		cfg->log_level = xstrdup(level);
	}
	log_level_parse(cfg->log_level, &lv);
	log_set_level(lv);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);   /* reserved: ignored, never the default (which kills) */

	tele = engine_telemetry(cfg, &rc);
	log_set_tele(tele);
	log_info("starting", LF_S("version", PACKAGE_VERSION), LF_S("config", path), LF_I("pid", getpid()));
	e = engine_new(cfg, tele, &flags, err, sizeof(err));     /* owns tele from here */
	if (!e) {
		log_error("cannot start", LF_S("error", err));
		config_free(&cfg);
		return EXIT_CONFIG;
	}
	rc = engine_run(e);
	tele = engine_take_telemetry(e);   /* the current one: a reload may have replaced it */
	engine_free(&e);
	log_info("stopped", LF_I("exit_code", rc));
	log_set_tele(NULL);
	tele_free(&tele, 3000);
	return rc;
}
