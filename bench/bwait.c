/* bench/bwait.c — bench/run's stopwatch: polls a progress counter until it
 * reaches a target, then prints the wall-clock time (epoch seconds) at
 * which it first saw the target.
 *
 *   bwait --pg CONNINFO --sql 'SELECT ...'           one number, from the sink
 *   bwait --kafka BROKERS --group G --topic T        the group's committed
 *                                                    offset of partition 0
 *   --target N        stop when the counter is >= N
 *   --pid P           also sample /proc/P/status VmRSS (kB) into the log
 *   --log FILE        one line per poll: "epoch_s counter rss_kB"
 *   --interval-ms M   poll period (default 50)
 *   --timeout S       give up after S seconds (exit 1; default 3600)
 *   --exit-with-pid   give up (exit 3) when process P is gone
 *
 * Build: cc -O2 -o bwait bwait.c $(pkg-config --cflags --libs rdkafka libpq)
 */
#include <getopt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	const char *pgc = NULL, *sql = NULL, *brokers = NULL, *group = NULL, *topic = NULL, *logf = NULL;
	long long target = -1;
	int pid = 0, interval = 50, exit_with_pid = 0, opt;
	double timeout = 3600, start = wall();
	static const struct option lo[] = {
		{ "pg", required_argument, NULL, 'p' }, { "sql", required_argument, NULL, 's' },
		{ "kafka", required_argument, NULL, 'k' }, { "group", required_argument, NULL, 'g' },
		{ "topic", required_argument, NULL, 't' }, { "target", required_argument, NULL, 'n' },
		{ "pid", required_argument, NULL, 'P' }, { "log", required_argument, NULL, 'l' },
		{ "interval-ms", required_argument, NULL, 'i' }, { "timeout", required_argument, NULL, 'T' },
		{ "exit-with-pid", no_argument, NULL, 'x' }, { NULL, 0, NULL, 0 }
	};
	PGconn *pg = NULL;
	rd_kafka_t *rk = NULL;
	FILE *log = NULL;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p': pgc = optarg; break;
		case 's': sql = optarg; break;
		case 'k': brokers = optarg; break;
		case 'g': group = optarg; break;
		case 't': topic = optarg; break;
		case 'n': target = atoll(optarg); break;
		case 'P': pid = atoi(optarg); break;
		case 'l': logf = optarg; break;
		case 'i': interval = atoi(optarg); break;
		case 'T': timeout = atof(optarg); break;
		case 'x': exit_with_pid = 1; break;
		default: return 2;
		}
	}
	if (target < 0 || !((pgc && sql) || (brokers && group && topic))) {
		fprintf(stderr, "usage: bwait (--pg CONNINFO --sql SQL | --kafka B --group G --topic T) --target N "
		                "[--pid P] [--log FILE] [--interval-ms M] [--timeout S] [--exit-with-pid]\n");
		return 2;
	}
	if (logf && !(log = fopen(logf, "w"))) {
		perror(logf);
		return 2;
	}
	if (pgc) {
		pg = PQconnectdb(pgc);
		if (PQstatus(pg) != CONNECTION_OK) {
			fprintf(stderr, "bwait: %s", PQerrorMessage(pg));
			return 2;
		}
	} else {
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		char err[256];

		if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) ||
		    !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
			fprintf(stderr, "bwait: %s\n", err);
			return 2;
		}
	}
	for (;;) {
		long long v = -1;
		double t;
		long rss = pid ? rss_kb(pid) : -1;

		if (pg) {
			PGresult *r = PQexec(pg, sql);

			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
				v = atoll(PQgetvalue(r, 0, 0));
			PQclear(r);
			if (PQstatus(pg) != CONNECTION_OK)
				PQreset(pg);
		} else {
			rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

			rd_kafka_topic_partition_list_add(l, topic, 0);
			if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && !l->elems[0].err)
				v = l->elems[0].offset;
			rd_kafka_topic_partition_list_destroy(l);
		}
		t = wall();
		if (log) {
			fprintf(log, "%.3f %lld %ld\n", t, v, rss);
			fflush(log);
		}
		if (v >= target) {
			printf("%.6f\n", t);
			break;
		}
		if (exit_with_pid && pid && kill(pid, 0) != 0) {
			fprintf(stderr, "bwait: process %d is gone (counter at %lld of %lld)\n", pid, v, target);
			return 3;
		}
		if (t - start > timeout) {
			fprintf(stderr, "bwait: timed out after %.0f s (counter at %lld of %lld)\n", timeout, v, target);
			return 1;
		}
		{
			struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (log)
		fclose(log);
	if (pg)
		PQfinish(pg);
	if (rk)
		rd_kafka_destroy(rk);
	return 0;
}
