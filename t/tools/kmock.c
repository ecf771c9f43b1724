/* kmock — a Kafka broker for tests: librdkafka's mock cluster in its own
 * process. Prints the bootstrap servers on stdout, creates the topics named
 * on the command line (topic[:partitions]), and runs until SIGTERM/SIGINT
 * or until stdin reaches EOF. */
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
		char buf[64];

		if (poll(&p, 1, 200) > 0 && read(0, buf, sizeof(buf)) <= 0)
			break;
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
