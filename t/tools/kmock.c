/* kmock — a Kafka broker for tests: librdkafka's mock cluster in its own
 * process. Prints the bootstrap servers on stdout, creates the topics named
 * on the command line (topic[:partitions]), and runs until SIGTERM/SIGINT
 * or until stdin reaches EOF. Faults, one command per line on stdin, each
 * answered by a line "ok" (or "error: ...") on stdout:
 *   perr <api key> <count> <error code>   the next <count> requests of that
 *                                         kind fail with the error
 *                                         (0 = Produce; 29 = TOPIC_AUTHORIZATION_FAILED)
 *   clear <api key>                       forget the pushed errors
 *   bperr <broker id> <api key> <count> <error code>
 *                                         the same, on one broker's own stack
 *   bcnt <broker id> <api key>            answers "ok <n>": errors left on that stack
 *   down <broker id> | up <broker id>     the broker goes away / comes back */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static void command(rd_kafka_mock_cluster_t *mc, const char *line)
{
	char verb[16];
	int a = 0, b = 0, c = 0, d = 0, n = sscanf(line, "%15s %d %d %d %d", verb, &a, &b, &c, &d);
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (n < 1) {
		return;
	} else if (!strcmp(verb, "perr") && n == 4 && b > 0 && b <= 1000) {
		rd_kafka_resp_err_t errs[1000];

		for (int i = 0; i < b; i++)
			errs[i] = (rd_kafka_resp_err_t)c;
		rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)b, errs);
	} else if (!strcmp(verb, "bperr") && n == 5 && c > 0) {
		for (int i = 0; i < c && !e; i++)
			e = rd_kafka_mock_broker_push_request_error_rtts(mc, a, (int16_t)b, 1, (rd_kafka_resp_err_t)d, 0);
	} else if (!strcmp(verb, "bcnt") && n == 3) {
		size_t cnt = 0;

		e = rd_kafka_mock_broker_error_stack_cnt(mc, a, (int16_t)b, &cnt);
		if (!e) {
			printf("ok %zu\n", cnt);
			fflush(stdout);
			return;
		}
	} else if (!strcmp(verb, "clear") && n == 2) {
		rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
	} else if (!strcmp(verb, "down") && n == 2) {
		e = rd_kafka_mock_broker_set_down(mc, a);
	} else if (!strcmp(verb, "up") && n == 2) {
		e = rd_kafka_mock_broker_set_up(mc, a);
	} else {
		printf("error: unknown command: %s", line);
		fflush(stdout);
		return;
	}
	if (e)
		printf("error: %s\n", rd_kafka_err2str(e));
	else
		printf("ok\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;

	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
	if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err)))) {
		fprintf(stderr, "kmock: %s\n", err);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, 1);
	if (!mc) {
		fprintf(stderr, "kmock: cannot create the mock cluster\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		char *t = strdup(argv[i]), *colon = strchr(t, ':');
		int parts = 1;

		if (colon) {
			*colon = '\0';
			parts = atoi(colon + 1);
		}
		rd_kafka_mock_topic_create(mc, t, parts, 1);
		free(t);
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!stop) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		char line[256];

		if (poll(&p, 1, 200) <= 0)
			continue;
		if (!fgets(line, sizeof(line), stdin))
			break;
		command(mc, line);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
