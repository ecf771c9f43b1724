/* bench/pglimit.c — PostgreSQL's own limit for the benchmark's writes: the
 * same final writes a batched, exactly-once applier must make, with nothing
 * else in the way (no Kafka, no JSON, arrays prepared before the clock
 * starts).
 *
 * Input: the --tsv file of t/lib/gen.py (one line per Kafka message).  The
 * messages are cut into batches of -B messages, like cdcrouter's batches;
 * each batch is reduced to the last event per id (in message order), and
 * its deletes and upserts are turned into PostgreSQL array literals.  Then,
 * timed: per batch, one pipelined round trip in one implicit transaction
 *   DELETE FROM public.customer WHERE id = ANY($1::uuid[])
 *   INSERT INTO public.customer SELECT * FROM unnest($1::uuid[], $2::text[],
 *          $3::text[], $4::timestamptz[]) ON CONFLICT (id) DO UPDATE ...
 *   UPDATE bench.pglimit_offsets SET next_offset = $1      (the offset row)
 * — the statements of routes/customer.route's upsert_batch/delete_batch.
 *
 * Build:  cc -O2 -o pglimit pglimit.c $(pkg-config --cflags --libs libpq)
 * Usage:  pglimit -d CONNINFO -f EVENTS.tsv [-B 5000]
 * Prints "messages events rows batches seconds" on stdout.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ev {
	char op;                    /* c u d t */
	char *id, *email, *status, *upd;
};

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* "x" quoted as an array element (our values hold no " or \, checked). */
static void elem(struct buf *b, const char *s, int first)
{
	if (strpbrk(s, "\"\\")) {
		fprintf(stderr, "pglimit: unexpected quote or backslash in %s\n", s);
		exit(1);
	}
	if (!first)
		put(b, ",", 1);
	put(b, "\"", 1);
	put(b, s, strlen(s));
	put(b, "\"", 1);
}

struct batch {
	struct buf del, id, email, status, upd;
	int ndel, nup;
	long long next_offset;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, PGconn *c)
{
	fprintf(stderr, "pglimit: %s: %s\n", what, c ? PQerrorMessage(c) : "");
	exit(1);
}

static void ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_SYNC)
		die(what, c);
	PQclear(r);
}

static unsigned long hash(const char *s)
{
	unsigned long h = 1469598103934665603UL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211UL;
	return h;
}

int main(int argc, char **argv)
{
	const char *conninfo = NULL, *file = NULL;
	int bsize = 5000, opt;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct ev *ev = NULL;
	size_t nev = 0, capev = 0, nmsg = 0, nevents = 0, rows = 0;
	struct batch *bt;
	size_t nb;
	int *slot;
	size_t nslot = 1;
	PGconn *pg;
	double t0, t1;

	while ((opt = getopt(argc, argv, "d:f:B:")) != -1) {
		switch (opt) {
		case 'd': conninfo = optarg; break;
		case 'f': file = optarg; break;
		case 'B': bsize = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!conninfo || !file || bsize < 1) {
		fprintf(stderr, "usage: pglimit -d CONNINFO -f EVENTS.tsv [-B batch]\n");
		return 2;
	}
	if (!(f = fopen(file, "r"))) {
		perror(file);
		return 1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *save, *tok[5] = { 0 };
		int k = 0;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		for (char *p = strtok_r(line, "\t", &save); p && k < 5; p = strtok_r(NULL, "\t", &save))
			tok[k++] = strdup(p);
		if (nev == capev) {
			capev = capev ? capev * 2 : 1 << 16;
			ev = realloc(ev, capev * sizeof(*ev));
		}
		ev[nev++] = (struct ev){ tok[0][0], tok[1], tok[2], tok[3], tok[4] };
		free(tok[0]);
	}
	fclose(f);
	nmsg = nev;

	/* prepare every batch's arrays (untimed) */
	while (nslot < (size_t)bsize * 2)
		nslot *= 2;
	slot = malloc(nslot * sizeof(*slot));
	nb = (nev + (size_t)bsize - 1) / (size_t)bsize;
	bt = calloc(nb, sizeof(*bt));
	for (size_t b = 0; b < nb; b++) {
		size_t lo = b * (size_t)bsize, hi = lo + (size_t)bsize < nev ? lo + (size_t)bsize : nev;
		struct batch *x = &bt[b];

		memset(slot, 0xff, nslot * sizeof(*slot));
		for (size_t i = lo; i < hi; i++) {      /* last event per id wins */
			size_t s;

			if (ev[i].op == 't')
				continue;
			nevents++;
			for (s = hash(ev[i].id) & (nslot - 1);; s = (s + 1) & (nslot - 1)) {
				if (slot[s] < 0 || !strcmp(ev[slot[s]].id, ev[i].id)) {
					slot[s] = (int)i;
					break;
				}
			}
		}
		put(&x->del, "{", 1);
		put(&x->id, "{", 1);
		put(&x->email, "{", 1);
		put(&x->status, "{", 1);
		put(&x->upd, "{", 1);
		for (size_t i = lo; i < hi; i++) {
			size_t s;

			if (ev[i].op == 't')
				continue;
			for (s = hash(ev[i].id) & (nslot - 1); strcmp(ev[slot[s]].id, ev[i].id); s = (s + 1) & (nslot - 1))
				;
			if (slot[s] != (int)i)
				continue;               /* superseded in this batch */
			if (ev[i].op == 'd') {
				elem(&x->del, ev[i].id, x->ndel++ == 0);
			} else {
				elem(&x->id, ev[i].id, x->nup == 0);
				elem(&x->email, ev[i].email, x->nup == 0);
				elem(&x->status, ev[i].status, x->nup == 0);
				elem(&x->upd, ev[i].upd, x->nup == 0);
				x->nup++;
			}
		}
		put(&x->del, "}", 1);
		put(&x->id, "}", 1);
		put(&x->email, "}", 1);
		put(&x->status, "}", 1);
		put(&x->upd, "}", 1);
		x->next_offset = (long long)hi;
		rows += (size_t)(x->ndel + x->nup);
	}

	pg = PQconnectdb(conninfo);
	if (PQstatus(pg) != CONNECTION_OK)
		die("connect", pg);
	ok(pg, PQexec(pg, "CREATE SCHEMA IF NOT EXISTS bench; "
	                  "CREATE TABLE IF NOT EXISTS bench.pglimit_offsets (id int PRIMARY KEY, next_offset bigint); "
	                  "INSERT INTO bench.pglimit_offsets VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET next_offset = 0"),
	   "offsets table");
	ok(pg, PQprepare(pg, "db", "DELETE FROM public.customer WHERE id = ANY($1::uuid[])", 1, NULL), "prepare");
	ok(pg, PQprepare(pg, "ub",
	                 "INSERT INTO public.customer (id, email, status, updated_at) "
	                 "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) "
	                 "ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, status = EXCLUDED.status, "
	                 "updated_at = EXCLUDED.updated_at", 4, NULL), "prepare");
	ok(pg, PQprepare(pg, "off", "UPDATE bench.pglimit_offsets SET next_offset = $1::bigint WHERE id = 1", 1, NULL),
	   "prepare");

	t0 = now();
	for (size_t b = 0; b < nb; b++) {
		struct batch *x = &bt[b];
		char off[32];
		const char *v[4];
		int nq = 0;
		PGresult *r;

		if (!PQenterPipelineMode(pg))
			die("pipeline", pg);
		if (x->ndel) {
			v[0] = x->del.p;
			if (!PQsendQueryPrepared(pg, "db", 1, v, NULL, NULL, 0))
				die("send", pg);
			nq++;
		}
		if (x->nup) {
			v[0] = x->id.p;
			v[1] = x->email.p;
			v[2] = x->status.p;
			v[3] = x->upd.p;
			if (!PQsendQueryPrepared(pg, "ub", 4, v, NULL, NULL, 0))
				die("send", pg);
			nq++;
		}
		snprintf(off, sizeof(off), "%lld", x->next_offset);
		v[0] = off;
		if (!PQsendQueryPrepared(pg, "off", 1, v, NULL, NULL, 0) || !PQpipelineSync(pg))
			die("send", pg);
		nq++;
		for (int q = 0; q < nq; q++) {
			ok(pg, PQgetResult(pg), "batch");
			if ((r = PQgetResult(pg)))     /* the NULL after each query's result */
				die("unexpected result", pg);
		}
		r = PQgetResult(pg);
		if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			die("sync", pg);
		PQclear(r);
		if (!PQexitPipelineMode(pg))
			die("exit pipeline", pg);
	}
	t1 = now();
	printf("%zu %zu %zu %zu %.3f\n", nmsg, nevents, rows, nb, t1 - t0);
	PQfinish(pg);
	return 0;
}
