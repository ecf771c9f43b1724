/* bench/naive.c — the naive baseline of bench/run: a consumer like the
 * spec's original.  For every message, one sink transaction (BEGIN; one
 * prepared upsert or delete; COMMIT) and then one synchronous Kafka offset
 * commit.  Tombstones only get the offset commit.  The value is parsed once
 * with libjq's jv parser; the same four fields as routes/customer.route.
 *
 * Build:  cc -O2 -o naive naive.c $(pkg-config --cflags --libs rdkafka libpq) -ljq
 * Usage:  naive -b BROKERS -t TOPIC -g GROUP -d CONNINFO [--async-commit]
 * Reads partition 0 of TOPIC from the group's committed offset (earliest
 * without one) up to the end offset seen at start, then exits 0 once its
 * last offset commit is acknowledged.  Prints "naive: N messages" to stderr.
 */
#include <getopt.h>
#include <jv.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "naive: %s: %s\n", what, detail ? detail : "");
	exit(1);
}

static void exec_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		die(what, PQerrorMessage(c));
	PQclear(r);
}

/* A string field of the object, or NULL (SQL NULL); *buf keeps it alive. */
static const char *field(jv obj, const char *name, jv *buf)
{
	*buf = jv_object_get(jv_copy(obj), jv_string(name));
	return jv_get_kind(*buf) == JV_KIND_STRING ? jv_string_value(*buf) : NULL;
}

int main(int argc, char **argv)
{
	const char *brokers = NULL, *topic = NULL, *group = NULL, *conninfo = NULL;
	int async = 0, opt;
	static const struct option lo[] = { { "async-commit", no_argument, NULL, 'A' }, { NULL, 0, NULL, 0 } };
	char err[512];
	int64_t lo_off, hi_off, n = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *sub;
	PGconn *pg;

	while ((opt = getopt_long(argc, argv, "b:t:g:d:", lo, NULL)) != -1) {
		switch (opt) {
		case 'b': brokers = optarg; break;
		case 't': topic = optarg; break;
		case 'g': group = optarg; break;
		case 'd': conninfo = optarg; break;
		case 'A': async = 1; break;
		default: return 2;
		}
	}
	if (!brokers || !topic || !group || !conninfo) {
		fprintf(stderr, "usage: naive -b BROKERS -t TOPIC -g GROUP -d CONNINFO [--async-commit]\n");
		return 2;
	}

	pg = PQconnectdb(conninfo);
	if (PQstatus(pg) != CONNECTION_OK)
		die("connect", PQerrorMessage(pg));
	exec_ok(pg, PQprepare(pg, "up",
	                      "INSERT INTO public.customer (id, email, status, updated_at) "
	                      "VALUES ($1::uuid, $2, $3, $4::timestamptz) ON CONFLICT (id) DO UPDATE "
	                      "SET email = EXCLUDED.email, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at",
	                      4, NULL), "prepare upsert");
	exec_ok(pg, PQprepare(pg, "del", "DELETE FROM public.customer WHERE id = $1::uuid", 1, NULL), "prepare delete");

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err)))
		die("conf", err);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk)
		die("rd_kafka_new", err);
	rd_kafka_poll_set_consumer(rk);
	if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo_off, &hi_off, 10000))
		die("watermarks", topic);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(rk, sub))
		die("subscribe", topic);
	rd_kafka_topic_partition_list_destroy(sub);

	for (int64_t next = lo_off; next < hi_off;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
		rd_kafka_resp_err_t e;

		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "naive: consumer: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->payload) {
			jv v = jv_parse_sized(m->payload, (int)m->len), b_id, b_em, b_st, b_up, b_del;
			const char *vals[4];
			int isdel;

			if (jv_get_kind(v) != JV_KIND_OBJECT)
				die("not a JSON object at offset", NULL);
			vals[0] = field(v, "id", &b_id);
			vals[1] = field(v, "email", &b_em);
			vals[2] = field(v, "status", &b_st);
			vals[3] = field(v, "updated_at", &b_up);
			isdel = field(v, "__deleted", &b_del) && !strcmp(jv_string_value(b_del), "true");
			exec_ok(pg, PQexec(pg, "BEGIN"), "begin");
			if (isdel)
				exec_ok(pg, PQexecPrepared(pg, "del", 1, vals, NULL, NULL, 0), "delete");
			else
				exec_ok(pg, PQexecPrepared(pg, "up", 4, vals, NULL, NULL, 0), "upsert");
			exec_ok(pg, PQexec(pg, "COMMIT"), "commit");
			jv_free(b_id);
			jv_free(b_em);
			jv_free(b_st);
			jv_free(b_up);
			jv_free(b_del);
			jv_free(v);
		}
		/* after the database commit: at-least-once, one commit per message */
		e = rd_kafka_commit_message(rk, m, async);
		if (e)
			die("offset commit", rd_kafka_err2str(e));
		next = m->offset + 1;
		n++;
		rd_kafka_message_destroy(m);
	}
	if (async) {
		rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);   /* wait for the last one */

		if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
			die("final offset commit", rd_kafka_err2str(e));
	}
	fprintf(stderr, "naive: %lld messages\n", (long long)n);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	PQfinish(pg);
	return 0;
}
