# shellcheck shell=bash disable=SC2034  # variables used by the test files that source it
# t/lib/setup.sh — shared setup of the integration tests (sourced).
# Gives a temporary directory removed on exit, TAP helpers, a private
# PostgreSQL (initdb as a non-root user), librdkafka's mock broker, and
# start/stop of cdcrouter. Everything listens on 127.0.0.1 only.
set -euo pipefail

: "${CDCR_SRCDIR:?run through make check}"
: "${CDCR_BUILDDIR:?run through make check}"
CDCR=$CDCR_BUILDDIR/cdcrouter
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

T_TMP=$(mktemp -d /tmp/cdcr-t.XXXXXX)
chmod 755 "$T_TMP"
T_PIDS=()
cleanup() {
    local rc=$?
    for p in "${T_PIDS[@]:-}"; do [[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true; done
    if [[ -n ${PGDATA_T:-} && -f $PGDATA_T/postmaster.pid ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA_T" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ -z ${CDCR_KEEP:-} ]]; then rm -rf "$T_TMP"; else echo "# kept $T_TMP" >&2; fi
    exit $rc
}
trap cleanup EXIT

# ---- TAP -------------------------------------------------------------------
T_N=0; T_FAILED=0
ok()   { T_N=$((T_N+1)); if [[ $1 == 0 ]]; then echo "ok $T_N - $2"; else echo "not ok $T_N - $2"; T_FAILED=$((T_FAILED+1)); fi; }
is()   { local got=$1 want=$2 name=$3; if [[ "$got" == "$want" ]]; then ok 0 "$name"; else ok 1 "$name"; echo "#   got:  '$got'"; echo "#   want: '$want'"; fi; }
like() { local got=$1 re=$2 name=$3; if [[ "$got" =~ $re ]]; then ok 0 "$name"; else ok 1 "$name"; echo "#   got:  '$got'"; echo "#   want match: /$re/"; fi; }
diag() { echo "# $*"; }
bail() { echo "Bail out! $*"; exit 255; }
done_testing() { echo "1..$T_N"; [[ $T_FAILED == 0 ]]; }

# wait_until <seconds> <description> <command...>: poll until the command succeeds.
wait_until() {
    local timeout=$1 what=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then diag "timed out after ${timeout}s: $what"; return 1; fi
        sleep 0.1
    done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- PostgreSQL --------------------------------------------------------------
PG_USER=$(id -un)
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
    PGDATA_T=$T_TMP/pg
    PGPORT_T=${PGPORT_T:-$(free_port)}
    mkdir -p "$PGDATA_T"
    [[ $(id -u) == 0 ]] && chown postgres "$PGDATA_T"
    if [[ ! -f $PGDATA_T/PG_VERSION ]]; then
        as_pg "$PGBIN/initdb" -D "$PGDATA_T" -U cdcr -A trust --no-sync >"$T_TMP/initdb.log" 2>&1 || { cat "$T_TMP/initdb.log"; bail "initdb failed"; }
        cat >>"$PGDATA_T/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT_T
unix_socket_directories = '$PGDATA_T'
fsync = off
shared_buffers = 128MB
max_connections = 50
CONF
    fi
    pg_up
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT_T" -U cdcr -d postgres -qAt -c "CREATE DATABASE sink" >/dev/null 2>&1 || true
    SINK_CONNINFO="host=127.0.0.1 port=$PGPORT_T dbname=sink user=cdcr"
}
pg_up()   { as_pg "$PGBIN/pg_ctl" -D "$PGDATA_T" -l "$PGDATA_T/pg.log" -w -t 60 start >/dev/null || { tail -20 "$PGDATA_T/pg.log"; bail "postgres did not start"; }; }
pg_down() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA_T" -m fast -w stop >/dev/null; }
sql()     { psql -h 127.0.0.1 -p "$PGPORT_T" -U cdcr -d sink -qAtX -v ON_ERROR_STOP=1 "$@"; }

# ---- Kafka (mock) ------------------------------------------------------------
kmock_start() {   # kmock_start topic[:parts] ...
    coproc KMOCK { exec "$CDCR_BUILDDIR/t/tools/kmock" "$@"; }
    T_PIDS+=("$KMOCK_PID")
    read -r -t 10 BROKERS <&"${KMOCK[0]}" || bail "kmock did not start"
    export BROKERS
}
# kmock_cmd <command>: a fault for the mock broker (see t/tools/kmock.c), e.g.
# "perr 0 5 29": the next 5 Produce requests fail with TOPIC_AUTHORIZATION_FAILED.
# Sets KMOCK_REPLY to what follows "ok" (bcnt's count).
kmock_cmd() {
    local reply
    echo "$*" >&"${KMOCK[1]}"
    read -r -t 10 reply <&"${KMOCK[0]}" || bail "kmock did not answer: $*"
    [[ $reply == ok || $reply == "ok "* ]] || bail "kmock: $reply"
    KMOCK_REPLY=${reply#ok}; KMOCK_REPLY=${KMOCK_REPLY# }
}
# produce <topic> [kcat args]: lines "key<TAB>value" on stdin; an empty value is a tombstone.
produce() { local t=$1; shift; kcat -P -b "$BROKERS" -t "$t" -K $'\t' -Z "$@"; }
consume_all() { local t=$1; shift; kcat -C -b "$BROKERS" -t "$t" -e -q "$@"; }

# ---- cdcrouter ---------------------------------------------------------------
# write_conf <dir> [extra config text]: a config pointing at the test broker and sink.
write_conf() {
    local d=$1; shift
    mkdir -p "$d/conf.d" "$d/routes"
    cat >"$d/cdcrouter.conf" <<CONF
kafka = { brokers = "$BROKERS"; group_id = "t"; properties = [ "topic.metadata.refresh.interval.ms=1000", "session.timeout.ms=6000", "heartbeat.interval.ms=500" ]; };
sink = { conninfo = "$SINK_CONNINFO"; };
apply = { batch_size = ${BATCH_SIZE:-500}; batch_wait_ms = 20; retry_backoff_ms = 50; retry_backoff_max_ms = 500; };
log = { level = "${LOG_LEVEL:-info}"; stats_interval_ms = 0; };
CONF
    printf '%s\n' "${*:-}" >"$d/conf.d/90-test.conf"
}

# CDCR_WRAP runs the daemon under a tool, e.g. CDCR_WRAP='valgrind --error-exitcode=99'.
cdcr_start() {   # cdcr_start <confdir>; log in $T_TMP/cdcr.log
    ${CDCR_WRAP:-} "$CDCR" -c "$1/cdcrouter.conf" >>"$T_TMP/cdcr.log" 2>&1 &
    CDCR_PID=$!
    T_PIDS+=("$CDCR_PID")
}
cdcr_stop() { kill -TERM "$CDCR_PID" 2>/dev/null || true; CDCR_RC=0; wait "$CDCR_PID" 2>/dev/null || CDCR_RC=$?; }
cdcr_wait() { CDCR_RC=0; wait "$CDCR_PID" 2>/dev/null || CDCR_RC=$?; }
cdcr_alive() { kill -0 "$CDCR_PID" 2>/dev/null; }
log_has() { grep -q -- "$1" "$T_TMP/cdcr.log"; }

# ---- customer data -----------------------------------------------------------
GEN=$CDCR_SRCDIR/t/lib/gen.py
SINK_CUSTOMER_SQL="CREATE TABLE IF NOT EXISTS public.customer (
  id uuid PRIMARY KEY, email text NOT NULL CHECK (email LIKE '%@%'), status text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now())"
# The sink's customer table in the same text form as gen.py --expect.
sink_customers() {
    sql -c "SET timezone = 'UTC'; COPY (SELECT id, email, status,
      to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM public.customer ORDER BY id::text)
      TO STDOUT WITH (FORMAT text, DELIMITER '|')"
}
stored_offset() {   # stored_offset <group> <topic> <partition>; -1 if none (or no table yet)
    sql -c "SELECT coalesce((SELECT next_offset FROM cdcrouter.offsets WHERE group_id='$1' AND topic='$2' AND partition=$3), -1)" 2>/dev/null || echo -1
}
offset_is() { [[ $(stored_offset "$1" "$2" "$3" 2>/dev/null) == "$4" ]]; }
# wait_offset <seconds> <group> <topic> <partition> <next>: fails early if cdcrouter died.
wait_offset() {
    local deadline=$((SECONDS + $1))
    until offset_is "$2" "$3" "$4" "$5"; do
        if ! cdcr_alive; then diag "cdcrouter exited; log tail:"; tail -5 "$T_TMP/cdcr.log" | sed 's/^/# /'; return 1; fi
        if ((SECONDS >= deadline)); then diag "timed out: offset of $3[$4] is $(stored_offset "$2" "$3" "$4"), want $5"; return 1; fi
        sleep 0.1
    done
}

# customer_setup [option...] [conf text...]: the usual start of a test of the
# customer route: a private PostgreSQL with the customer table, the mock
# broker with $TOPIC:1, and the config directory $c (write_conf with the conf
# texts; BATCH_SIZE and LOG_LEVEL apply) holding the shipped customer route.
#   --topic T:P   one more topic of the mock broker (repeatable)
#   --sql S       one more statement on the sink (repeatable)
#   --audit T     the audit table, its topic T and its route (audit_route)
customer_setup() {
    local topics=("$TOPIC:1") stmts=(-c "$SINK_CUSTOMER_SQL") audit=""
    while (($#)); do
        case $1 in
            --topic) topics+=("$2"); shift 2 ;;
            --sql) stmts+=(-c "$2"); shift 2 ;;
            --audit) audit=$2; topics+=("$2:1"); stmts+=(-c "$AUDIT_SQL"); shift 2 ;;
            *) break ;;
        esac
    done
    pg_start
    kmock_start "${topics[@]}"
    sql "${stmts[@]}"
    c=$T_TMP/conf
    write_conf "$c" "$@"
    cp "$CDCR_SRCDIR/routes/customer.route" "$c/routes/"
    if [[ -n $audit ]]; then audit_route "$audit" >"$c/routes/audit.route"; fi
}

# ---- the audit route: one row per applied event, no key, not idempotent -----
AUDIT_SQL="CREATE TABLE IF NOT EXISTS public.audit (topic text, part int, off bigint, id uuid, op text, email text)"
audit_route() {   # audit_route <topic> > file
    cat <<ROUTE
name = "audit";
topic = "$1";
params = { topic = "\$meta.topic"; part = "\$meta.partition"; off = "\$meta.offset";
           id = ".id"; op = ".__op"; email = ".email"; };
op = "if . == null then \"ignore\" else \"upsert\" end";
upsert = "INSERT INTO public.audit (topic, part, off, id, op, email)
          VALUES (:topic, :part::int, :off::bigint, :id::uuid, :op, :email)";
ROUTE
}
# audit_check <topic> <expected rows>: every non-tombstone offset exactly once.
audit_check() {
    is "$(sql -c "SELECT count(*) FROM public.audit WHERE topic = '$1'")" "$2" "audit: $2 events applied"
    is "$(sql -c "SELECT count(*) FROM (SELECT off FROM public.audit WHERE topic = '$1' GROUP BY off HAVING count(*) > 1) d")" 0 "audit: no event applied twice"
}
