/*
 * route.h — route files: how a Kafka topic's messages become SQL.
 *
 * A route file (libconfig syntax, one route per file, routes/<name>.route):
 *
 *   name   = "customer";                    # default: the file name
 *   topic  = "cdc.public.customer";         # or topic_regex = "^cdc\\.public\\..*"
 *   table  = "public.customer";             # reported as db.collection.name
 *   params = { id = ".id"; email = ".email"; lsn = ".__lsn"; part = "$meta.partition"; };
 *   required = [ "id" ];                    # missing/null → data error
 *   key    = [ "id" ];                      # row identity: per-key order, batch reduction
 *   reduce = true;                          # default: true when key is set
 *   op     = "if . == null then \"ignore\" elif .__deleted == \"true\" then \"delete\" else \"upsert\" end";
 *   upsert = "INSERT … VALUES (:id, :email) ON CONFLICT (id) DO UPDATE …";
 *   delete = "DELETE FROM … WHERE id = :id";
 *   upsert_batch = "INSERT … SELECT * FROM unnest(:id::uuid[], …) ON CONFLICT …";   # optional
 *   delete_batch = "DELETE FROM … WHERE id = ANY(:id::uuid[])";                      # optional
 *   on_error = "dlq";                        # dlq | skip | stop (default from the config)
 *
 * params are jq expressions over the message value (.), with $key (the key,
 * parsed as JSON when it is JSON, else a string) and $meta ({topic,
 * partition, offset, timestamp, headers}). Plain paths (., .a.b, $key,
 * $key.id, $meta.offset, $meta.headers.NAME) are read straight from the
 * message's bytes (json.h), numbers as their literal text; anything else
 * runs a compiled jq program.
 */
#ifndef CDCR_ROUTE_H
#define CDCR_ROUTE_H

#include <regex.h>
#include <stddef.h>

#include "json.h"

struct errlist;
struct jq_state;                /* jq.h: only route.c and extract.c run programs */

/* What happens to a message that fails for good: DEFAULT = the config's. */
enum error_policy { POLICY_DEFAULT = 0, POLICY_DLQ, POLICY_SKIP, POLICY_STOP };
/* "dlq", "skip", "stop" or "" (DEFAULT): 0, else -1. */
int route_policy_parse(const char *s, enum error_policy *out);

enum route_op { OP_UPSERT = 0, OP_DELETE, OP_IGNORE };
const char *route_op_name(enum route_op op);

enum param_kind { PK_VALUE_PATH, PK_KEY_PATH, PK_META, PK_HEADER, PK_JQ };
enum meta_field { MF_TOPIC, MF_PARTITION, MF_OFFSET, MF_TIMESTAMP };

struct route_param {
	char *name;
	char *expr;
	int line;
	enum param_kind kind;
	int slot;                /* PK_VALUE_PATH, PK_KEY_PATH: its slot in route->vpaths / kpaths */
	enum meta_field meta;    /* PK_META */
	char *header;            /* PK_HEADER: the header name */
	struct jq_state *jq;     /* PK_JQ */
	int required;
};

/* A prepared statement: SQL with $n and, for each $n, the route param index. */
struct route_stmt {
	char *sql;
	int nparams;
	int *param;              /* param[i] = index into route->params for $(i+1) */
	int present;
};

struct route {
	char *name;
	char *file;
	int line;
	char *topic;             /* exact topic, or NULL */
	char *topic_regex;       /* or a POSIX extended regex, matching the whole topic name */
	regex_t re;
	char *table;             /* may be NULL */
	struct route_param *params;
	int nparams;
	int *key;                /* param indices */
	int nkey;
	int reduce;
	char *op_expr;           /* NULL: default op detection */
	struct jq_state *op_jq;
	struct json_paths *vpaths;   /* what is read of the value: the value paths, __deleted, __source_ts_ms */
	struct json_paths *kpaths;   /* of the key: the key paths; NULL if none */
	int slot_deleted, slot_source_ts;   /* in vpaths */
	int key_root_slot;       /* the slot of $key in kpaths, -1 if no param reads the whole key */
	int value_fields;        /* some value path names a field (the value must be an object) */
	int jq_key, jq_meta;     /* some jq program reads $key / $meta */
	int uses_headers;        /* some param reads $meta.headers */
	int uses_jq;             /* some param or the op runs a jq program */
	struct route_stmt upsert, del, upsert_batch, delete_batch;
	enum error_policy policy;   /* resolved: never DEFAULT */
};

struct routes {
	struct route *v;
	size_t n;
	/* topic → route cache, filled by routes_match() */
	struct { char *topic; const struct route *r; } cache[64];
	size_t ncache;
};

/* Load every dir/NAME.route; a route without on_error gets default_policy.
 * Errors (file:line) go to errs; returns NULL if any. */
struct routes *routes_load(const char *dir, enum error_policy default_policy, struct errlist *errs);
void routes_free(struct routes **rp);

/* The route for a topic: an exact topic first, else the first regex route
 * in file order whose topic_regex matches the whole topic name. NULL if none. */
const struct route *routes_match(struct routes *rs, const char *topic);

/* Whether a regex route's topic_regex matches the whole topic name; m (nm
 * entries, may be NULL) receives the subexpressions. */
int route_regex_match(const struct route *r, const char *topic, regmatch_t *m, size_t nm);

/* Subscription list for librdkafka (exact names, and "^(regex)$": the same
 * whole-name rule as routes_match); malloc'd array of malloc'd strings. */
char **routes_topics(const struct routes *rs, size_t *n);

#endif
