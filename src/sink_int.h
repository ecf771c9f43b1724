/* sink_int.h — what the files of the sink module share: sink.c
 * (connection, statements, offsets, classification, commit), sink_apply.c
 * (parameter marshalling and the pipelined fast path) and sink_isolate.c
 * (the message-by-message slow path). Not for use outside src/sink*.c. */
#ifndef CDCR_SINK_INT_H
#define CDCR_SINK_INT_H

#include <libpq-fe.h>

#include "sink.h"

/* A pipelined batch: queries sent, results read, the first failure. */
struct pipe {
	size_t sent, done;         /* queries sent / whose results were read */
	int synced;
	enum sink_result rc;       /* first failure */
	char sqlstate[6];
};

struct sink {
	char *conninfo;
	char *password;
	char *group_id;
	PGconn *conn;
	const struct routes *routes;
	int prepared;             /* statements of `routes` are prepared on `conn` */
	int in_txn;               /* sink_apply_isolating left a transaction open */
	int pending;              /* a pipelined batch awaits sink_wait() */
	struct pipe pipe;
	char pipe_err[1024];
	/* scratch buffers, reused across batches */
	const char **values;
	int *lengths;
	size_t nvalues;
	char **arrays;            /* per-parameter array literals for set statements */
	size_t *arraylen, *arraycap;
	size_t narrays;
	const char **topics;      /* distinct topics of a route in a batch */
	size_t ntopics;
	char last_state[8];       /* SQLSTATE of the last failure */
	char last_primary[256];   /* its primary message */
};

struct advbuf {              /* the text of cdcrouter.advance()'s parameters */
	char part[16], exp[24], nxt[24];
};

/* Remember a failure's SQLSTATE (and whether statements must be prepared again). */
void sink_note_failure(struct sink *s, enum sink_result rc, const char *code, const PGresult *r);
/* One line "what: primary message (detail)" into err. */
void sink_set_err(char *err, size_t errlen, const char *what, PGconn *c, const PGresult *r);
/* The result of a synchronous command, classified and consumed; sqlstate
 * (may be NULL) receives the failure's SQLSTATE. */
enum sink_result sink_check_state(struct sink *s, PGresult *r, const char *what, char *sqlstate, char *err,
                                  size_t errlen);
enum sink_result sink_check(struct sink *s, PGresult *r, const char *what, char *err, size_t errlen);
/* The prepared statement's name: cdcr_<kind>_<route index>. */
void sink_stmt_name(char *buf, size_t len, size_t route, const char *kind);
/* Bind one message's parameters of st into the scratch values. */
void sink_bind_row(struct sink *s, const struct batch *b, const struct bmsg *m, const struct route_stmt *st);
/* Bind the five parameters of cdcrouter.advance(); buf holds their text. */
void sink_bind_advance(struct sink *s, const struct sink_advance *a, struct advbuf *buf);
/* The index of r in the sink's routes. */
size_t sink_route_index(const struct sink *s, const struct route *r);

#endif
