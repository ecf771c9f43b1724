# shellcheck shell=bash disable=SC2034,SC2119,SC2120  # variables and optional arguments used by the t/e2e files
# t/lib/e2e.sh — end-to-end tests against the real native stack (sourced).
#
#   PostgreSQL `app`.public.customer --Debezium (Kafka Connect)--> Kafka
#   cdc.public.customer --cdcrouter--> PostgreSQL sink
#
# It sources setup.sh (TAP helpers, temp dir, cleanup trap), brings the stack
# up with `docker/stack up pg kafka connect` (idempotent: ~1 s when it runs)
# and gives:
#
# - A private sink database per test file, e2e_<test> (owner cdcrouter, the
#   schema of docker/sql/sink-schema.sql plus the audit table), dropped at the
#   start and, when every assertion passed, at the end (kept on failure for a
#   look).  The stack's own `sink` database is never touched.
# - Two cdcrouter processes per test, both with the repo's shipped
#   cdcrouter.conf (no conf.d/50-otlp.conf) and a test drop-in
#   conf.d/90-e2e.conf (brokers, per-test group id, sink conninfo, session
#   timeout 6 s, progress line every second):
#     main  — the shipped routes/customer.route, group e2e-<test>-<run>
#     audit — the audit route below, group e2e-<test>-<run>-audit
#   Fresh group ids start at the beginning of the topic, so each test replays
#   the topic's whole history into its empty sink: realistic, and the result
#   must still equal the source exactly.
# - The audit route (not idempotent): one row in public.audit per applied
#   message (partition, offset, id, __op, __lsn).  e2e_audit_check compares it
#   with the topic: every record that Debezium produced (it has the
#   __debezium.context.connectorName header) and that is not a tombstone must be
#   in the audit exactly once, and nothing else.  The audit process runs the
#   same exactly-once machinery as the main one (offsets stored in the same
#   sink transaction) and is killed/restarted alongside it, so a lost or
#   duplicated event there is a lost or duplicated event in cdcrouter.
# - Drain: e2e_drain writes a marker change in the source (an upsert of one
#   fixed row with a fresh nonce), waits until the main sink shows it (per-key
#   order on one partition: everything committed before it was applied), then
#   until both groups' stored offsets equal the topic's high watermark
#   (kcat -Q).  After that, e2e_compare compares source and sink exactly: every
#   column of every row, timestamps as UTC with microseconds.
# - Writers (a sustained load): e2e_writer_start / e2e_writer_stop.
# - Failure injection through docker/stack: e2e_stack stop|start <component>;
#   anything stopped is brought back by the exit trap (docker/stack up pg kafka
#   connect), so the next test finds a healthy stack.
# - e2e_on_exit "<shell command>": undo actions run by the exit trap (e.g.
#   test 08 drops the column it added to the source).
#
# Environment: CDCR_E2E_KEEP=1 keeps the sink database even on success;
# CDCR_KEEP=1 (setup.sh) keeps the temp dir with the cdcrouter logs.
# Wall-clock waits are all polls with timeouts (wait_until); no sleep is used
# to wait for readiness.

[[ $(type -t done_testing) == function ]] || source "$CDCR_SRCDIR/t/lib/setup.sh"

STACK=$CDCR_SRCDIR/docker/stack

# Where the stack listens: ask its own component files (so env overrides such
# as CDCR_PG_PORT apply here too).
eval "$(cd "$CDCR_SRCDIR" && REPO_DIR=$CDCR_SRCDIR bash -c '
    source docker/lib/common.sh; source docker/lib/pg.sh; source docker/lib/kafka.sh; source docker/lib/connect.sh
    printf "E2E_RUN_DIR=%q E2E_PG_PORT=%q E2E_BROKERS=%q E2E_CONNECT_URL=%q E2E_KAFKA_LIB=%q E2E_CONNECTOR=%q E2E_CONNECTOR_JSON=%q E2E_STACK_LOG=%q E2E_KAFKA_TOOLS_LOG4J=%q\n" \
        "$RUN_DIR" "$PG_PORT" "$KAFKA_BOOTSTRAP" "$CONNECT_URL" "$KAFKA_LIB" "$CONNECTOR_NAME" "$CONNECTOR_JSON" "$LOG_DIR" "$KAFKA_TOOLS_LOG4J"
')"
E2E_TOPIC=cdc.public.customer
E2E_DLQ=cdcrouter.dlq

E2E_NAME=$(basename "$0" .t)                       # 05-backlog
E2E_ID=${E2E_NAME//[^a-zA-Z0-9]/_}                 # 05_backlog
E2E_RUN=$(date +%s)-$$
E2E_DB=e2e_$E2E_ID
E2E_GROUP=e2e-$E2E_NAME-$E2E_RUN
E2E_MARKER_ID=00000000-0000-4000-8000-00000000e2e0
E2E_PIDFILE=$E2E_RUN_DIR/e2e-$E2E_ID.pids   # cdcrouter pids, for a later run to reap after a hard abort
declare -A E2E_PID=() E2E_CONFDIR=()
E2E_UNDO=()
E2E_STACK_TOUCHED=

# ---- SQL -----------------------------------------------------------------------
e2e_psql() { psql -h 127.0.0.1 -p "$E2E_PG_PORT" -qAtX -v ON_ERROR_STOP=1 "$@"; }
src_sql()   { PGPASSWORD=cdc e2e_psql -U cdc -d app "$@"; }                 # source, as Debezium's role
sink_sql()  { PGPASSWORD=cdcrouter e2e_psql -U cdcrouter -d "$E2E_DB" "$@"; } # this test's sink
admin_sql() { local db=$1; shift; PGPASSWORD=postgres e2e_psql -U postgres -d "$db" "$@"; }
sql() { sink_sql "$@"; }   # setup.sh's stored_offset/offset_is read the sink through `sql`

# Canonical text of a customer table: a header "name:type,..." then one line
# per row ordered by id, columns tab-separated (COPY text: NULL is \N),
# timestamptz as UTC ISO-8601 with 6 fraction digits.
# e2e_dump <src|sink> [column list "name:type,..."; default: all of its own]
e2e_columns() {   # e2e_columns <src|sink>
    "${1}_sql" -c "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position)
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customer'"
}
e2e_dump() {
    local side=$1 cols=${2:-} exprs=() c n t
    [[ -n $cols ]] || cols=$(e2e_columns "$side")
    IFS=, read -r -a c <<<"$cols"
    for n in "${c[@]}"; do
        t=${n#*:}; n=${n%%:*}
        case $t in
            "timestamp with time zone") exprs+=("to_char($n AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')") ;;
            "timestamp without time zone") exprs+=("to_char($n, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')") ;;
            *) exprs+=("$n::text") ;;
        esac
    done
    echo "$cols"
    local IFS=,
    "${side}_sql" -c "COPY (SELECT ${exprs[*]} FROM public.customer ORDER BY id) TO STDOUT"
}
# e2e_compare <name> [sink-columns]: ok if source and sink are identical (same
# columns, same rows, every value).  With "sink-columns" the source is
# compared on the sink's columns only (the source may have more: test 08).
e2e_compare() {
    local name=$1 mode=${2:-} cols
    if [[ $mode == sink-columns ]]; then cols=$(e2e_columns sink); else cols=; fi
    e2e_dump src "$cols" >"$T_TMP/cmp.src"
    e2e_dump sink >"$T_TMP/cmp.sink"
    if cmp -s "$T_TMP/cmp.src" "$T_TMP/cmp.sink"; then
        ok 0 "$name (source = sink: $(($(wc -l <"$T_TMP/cmp.src") - 1)) rows, every column)"
    else
        ok 1 "$name"
        diag "source $(wc -l <"$T_TMP/cmp.src") lines, sink $(wc -l <"$T_TMP/cmp.sink") lines; diff source sink:"
        diff "$T_TMP/cmp.src" "$T_TMP/cmp.sink" | head -20 | sed 's/^/#   /'
        return 1
    fi
}

# ---- Kafka ---------------------------------------------------------------------
topic_partitions() { kcat -L -b "$E2E_BROKERS" -t "$1" -J 2>/dev/null | jq -r '.topics[0].partitions[]?.partition'; }
# topic_hwm <topic> [partition]: the high watermark (next offset) of one partition, or the sum.
topic_hwm() {
    local t=$1 p sum=0 o parts=${2:-}
    [[ -n $parts ]] || parts=$(topic_partitions "$t")
    [[ -n $parts ]] || return 1
    for p in $parts; do
        o=$(kcat -Q -b "$E2E_BROKERS" -t "$t:$p:-1" 2>/dev/null | sed -n 's/.* offset \(-\{0,1\}[0-9]*\)$/\1/p')
        [[ $o =~ ^[0-9]+$ ]] || return 1
        sum=$((sum + o))
    done
    echo "$sum"
}
kafka_answers() { kcat -L -b "$E2E_BROKERS" -m 3 2>/dev/null | grep -q ' brokers:'; }
# topic_json <topic> [from-offset]: every record as kcat's JSON envelope, one per line.
topic_json() { kcat -C -b "$E2E_BROKERS" -t "$1" -o "${2:-beginning}" -e -q -J; }
# topic_events <topic> [from-offset]: Debezium's non-tombstone records as
# "partition<TAB>offset<TAB>id<TAB>op<TAB>lsn<TAB>email<TAB>status".
JQ_DBZ='select(.payload != null and ((.headers // []) | index("__debezium.context.connectorName")) != null)'
topic_events() {
    topic_json "$@" | jq -r "$JQ_DBZ"' | (.payload | fromjson) as $v
        | [.partition, .offset, $v.id, $v.__op, $v.__lsn, $v.email, $v.status] | map(tostring) | @tsv'
}
# topic_wait_record <topic> <from-offset> <jq condition on the kcat JSON envelope>
# [timeout=60]: print the offset of the first matching record once it is there.
topic_wait_record() {
    local t=$1 from=$2 cond=$3 deadline=$((SECONDS + ${4:-60})) o
    while :; do
        o=$(topic_json "$t" "$from" | jq -r "select($cond) | .offset" | head -1)
        [[ -n $o ]] && { echo "$o"; return 0; }
        ((SECONDS < deadline)) || { diag "no record matching $cond on $t after ${4:-60}s"; return 1; }
        sleep 0.2
    done
}
# e2e_wait_past <group> <offset> [timeout=60] [topic]: the group's stored offset is beyond <offset>.
e2e_past() { (($(stored_offset "$1" "${3:-$E2E_PIPE_TOPIC}" 0) > $2)); }
e2e_wait_past() { wait_until "${3:-60}" "$1 past offset $2" e2e_past "$1" "$2" "${4:-$E2E_PIPE_TOPIC}"; }
# group_caught_up <group> <topic>: the stored offset of every partition equals its high watermark.
group_caught_up() {
    local g=$1 t=$2 p hwm st parts
    parts=$(topic_partitions "$t"); [[ -n $parts ]] || return 1
    for p in $parts; do
        hwm=$(topic_hwm "$t" "$p") || return 1
        st=$(stored_offset "$g" "$t" "$p")
        [[ $st == "$hwm" || ($hwm == 0 && $st == -1) ]] || return 1
    done
}

# ---- the stack -----------------------------------------------------------------
e2e_stack() {   # e2e_stack <verb> [args]: docker/stack, output in $T_TMP/stack.log
    case $1 in stop|down) E2E_STACK_TOUCHED=1 ;; esac
    "$STACK" "$@" >>"$T_TMP/stack.log" 2>&1
}
connector_state() {   # connector_state [name]: "RUNNING RUNNING" (connector, tasks) or empty
    curl -sf --max-time 5 "$E2E_CONNECT_URL/connectors/${1:-$E2E_CONNECTOR}/status" 2>/dev/null |
        jq -r '[.connector.state] + [.tasks[].state] | join(" ")' 2>/dev/null
}
connector_running() { [[ $(connector_state "$@") =~ ^RUNNING(\ RUNNING)+$ ]]; }

# ---- cdcrouter -----------------------------------------------------------------
e2e_audit_route() {   # e2e_audit_route <topic>
    cat <<ROUTE
# e2e audit: one row per applied message, no key, no ON CONFLICT (not idempotent).
name = "audit";
topic = "$1";
params = { part = "\$meta.partition"; off = "\$meta.offset"; id = ".id"; op = ".__op"; lsn = ".__lsn"; };
op = "if . == null then \"ignore\" else \"upsert\" end";
upsert = "INSERT INTO public.audit (part, off, id, op, lsn) VALUES (:part::int, :off::bigint, :id::uuid, :op, :lsn::bigint)";
ROUTE
}
E2E_AUDIT_SQL="CREATE TABLE IF NOT EXISTS public.audit (
    part int NOT NULL, off bigint NOT NULL, id uuid, op text, lsn bigint,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"

# e2e_conf <instance> <group> <route-file>: a config dir: the shipped
# cdcrouter.conf, the route, and conf.d/90-e2e.conf.
e2e_conf() {
    local inst=$1 group=$2 route=$3 d=$T_TMP/$1
    mkdir -p "$d/conf.d" "$d/routes"
    cp "$CDCR_SRCDIR/cdcrouter.conf" "$d/"
    cp "$route" "$d/routes/"
    cat >"$d/conf.d/90-e2e.conf" <<CONF
# e2e drop-in: the stack's broker and this test's sink and group.  A dead
# member is noticed after 6 s instead of 45 s, so a process restarted after
# kill -9 gets its partition back quickly.
kafka = { brokers = "$E2E_BROKERS"; group_id = "$group";
          properties = [ "session.timeout.ms=6000", "heartbeat.interval.ms=1000" ]; };
sink = { conninfo = "host=127.0.0.1 port=$E2E_PG_PORT dbname=$E2E_DB user=cdcrouter"; };
log = { stats_interval_ms = 1000; };
CONF
    E2E_CONFDIR[$inst]=$d
}
e2e_start() {   # e2e_start <instance>; log in $T_TMP/<instance>.log
    local inst=$1
    echo "{\"e2e\":\"start $inst\"}" >>"$T_TMP/$inst.log"
    CDCROUTER_SINK_PASSWORD=cdcrouter "$CDCR" -c "${E2E_CONFDIR[$inst]}/cdcrouter.conf" >>"$T_TMP/$inst.log" 2>&1 &
    E2E_PID[$inst]=$!
    T_PIDS+=("$!")
    echo "$!" >>"$E2E_PIDFILE"
}
e2e_alive() { [[ -n ${E2E_PID[$1]:-} ]] && kill -0 "${E2E_PID[$1]}" 2>/dev/null; }
E2E_RC=
e2e_stop() {    # e2e_stop <instance>: SIGTERM, wait; exit status in E2E_RC
    E2E_RC=0
    kill -TERM "${E2E_PID[$1]}" 2>/dev/null || true
    wait "${E2E_PID[$1]}" 2>/dev/null || E2E_RC=$?
    echo "{\"e2e\":\"stopped $1 rc=$E2E_RC\"}" >>"$T_TMP/$1.log"
}
e2e_kill() {    # e2e_kill <instance>: SIGKILL, reap
    kill -KILL "${E2E_PID[$1]}" 2>/dev/null || true
    wait "${E2E_PID[$1]}" 2>/dev/null || true
    echo "{\"e2e\":\"killed $1\"}" >>"$T_TMP/$1.log"
}
# e2e_sink_ports <pid>: local ports of the process's TCP connections to the
# sink's port, comma-separated (from /proc: its socket inodes in /proc/net/tcp).
e2e_sink_ports() {
    local inodes hex out=
    inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l ' 2>/dev/null | tr -dc '0-9 ')
    [[ -n $inodes ]] || return 0
    for hex in $(awk -v want="$(printf '%04X' "$E2E_PG_PORT")" -v inodes="$inodes" '
        BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) ino[a[i]] = 1 }
        FNR > 1 && ($10 in ino) { split($2, l, ":"); split($3, r, ":"); if (r[2] == want && $4 == "01") print l[2] }
    ' /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        out+=${out:+,}$((16#$hex))
    done
    echo "$out"
}
# e2e_wait_in_tx <instance> [timeout=20]: wait until that process's sink
# session is inside a transaction that has written something (it has an xid
# in pg_stat_activity; the session is found by the process's client ports).
# The poll runs inside PostgreSQL (every 2 ms) so it reacts quickly.
e2e_wait_in_tx() {
    local ports
    ports=$(e2e_sink_ports "${E2E_PID[$1]}")
    [[ -n $ports ]] || return 1
    sink_sql -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '${2:-20} s'; BEGIN
        LOOP
            PERFORM pg_stat_clear_snapshot();
            EXIT WHEN EXISTS (SELECT FROM pg_stat_activity WHERE client_port IN ($ports) AND backend_xid IS NOT NULL);
            IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'timeout'; END IF;
            PERFORM pg_sleep(0.002);
        END LOOP; END \$\$" 2>/dev/null
}
# e2e_log <instance> <jq condition>: the log's JSON lines matching it.
e2e_log() { jq -c -R "fromjson? | select($2)" "$T_TMP/$1.log"; }
e2e_log_has() { [[ -n $(e2e_log "$@" | head -1) ]]; }
# e2e_failures_since <instance> <offset>: "message failed" lines for offsets
# >= <offset> (a fresh group replays the topic's history, which may hold the
# poison of earlier runs of test 07).
e2e_failures_since() { e2e_log "$1" "(.msg | startswith(\"message failed\")) and .offset >= $2" | wc -l; }
# e2e_last_progress <instance> <field>: that field of the last "progress" line.
e2e_last_progress() { e2e_log "$1" '.msg == "progress"' | tail -1 | jq -r ".$2 // empty"; }

# e2e_pipeline [topic]: write both configs (main: the shipped customer route,
# with its topic replaced when one is given; audit: the audit route) and start
# both processes.
e2e_pipeline() {
    local topic=${1:-$E2E_TOPIC}
    mkdir -p "$T_TMP/routes"
    sed "s/^topic *= *\"cdc\.public\.customer\";/topic = \"$topic\";/" "$CDCR_SRCDIR/routes/customer.route" \
        >"$T_TMP/routes/customer.route"
    grep -q "^topic = \"$topic\";" "$T_TMP/routes/customer.route" || bail "could not set the route's topic"
    e2e_audit_route "$topic" >"$T_TMP/routes/audit.route"
    E2E_PIPE_TOPIC=$topic
    e2e_conf main "$E2E_GROUP" "$T_TMP/routes/customer.route"
    e2e_conf audit "$E2E_GROUP-audit" "$T_TMP/routes/audit.route"
    e2e_start main
    e2e_start audit
}

# e2e_marker: a change in the source that the sink shows once everything
# committed before it has been applied.  Sets E2E_NONCE.
e2e_marker() {
    E2E_NONCE=m$RANDOM$RANDOM
    src_sql -c "INSERT INTO public.customer (id, email, status, updated_at)
                VALUES ('$E2E_MARKER_ID', 'marker@e2e.test', '$E2E_NONCE', clock_timestamp())
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at"
}
e2e_marker_applied() {
    [[ $(sink_sql -c "SELECT status FROM public.customer WHERE id = '$E2E_MARKER_ID'" 2>/dev/null) == "$E2E_NONCE" ]]
}
# e2e_drain [timeout=120]: marker, then wait for it in the sink and for both
# groups to have stored the high watermark.  Fails early if a process died.
e2e_drain() {
    local timeout=${1:-120} deadline inst t0=$SECONDS
    deadline=$((SECONDS + timeout))
    e2e_marker
    until e2e_marker_applied && group_caught_up "$E2E_GROUP" "$E2E_PIPE_TOPIC" &&
          group_caught_up "$E2E_GROUP-audit" "$E2E_PIPE_TOPIC"; do
        for inst in main audit; do
            if ! e2e_alive "$inst"; then
                diag "cdcrouter $inst is not running; log tail:"; tail -5 "$T_TMP/$inst.log" | sed 's/^/#   /'
                return 1
            fi
        done
        if ((SECONDS >= deadline)); then
            diag "drain timed out after ${timeout}s: marker applied: $(e2e_marker_applied && echo yes || echo no)," \
                 "hwm $(topic_hwm "$E2E_PIPE_TOPIC"), stored main $(stored_offset "$E2E_GROUP" "$E2E_PIPE_TOPIC" 0)," \
                 "audit $(stored_offset "$E2E_GROUP-audit" "$E2E_PIPE_TOPIC" 0)"
            return 1
        fi
        sleep 0.2
    done
    diag "drained in $((SECONDS - t0))s (topic $E2E_PIPE_TOPIC at $(topic_hwm "$E2E_PIPE_TOPIC"))"
}

# e2e_audit_check: the audit table holds exactly the topic's Debezium events
# (non-tombstone records with Debezium's headers), each once.
e2e_audit_check() {
    local topic=${1:-$E2E_PIPE_TOPIC} hwm
    hwm=$(topic_hwm "$topic")
    if [[ ${E2E_AUDIT_WANT_AT:-} != "$topic@$hwm" ]]; then   # reuse while the topic has not grown
        topic_events "$topic" | cut -f1-4 >"$T_TMP/audit.want"
        E2E_AUDIT_WANT_AT=$topic@$hwm
    fi
    sink_sql -F $'\t' -c "SELECT part, off, id, op FROM public.audit ORDER BY part, off, applied_at" >"$T_TMP/audit.got"
    local want got dup
    want=$(wc -l <"$T_TMP/audit.want"); got=$(wc -l <"$T_TMP/audit.got")
    dup=$(sink_sql -c "SELECT count(*) FROM (SELECT 1 FROM public.audit GROUP BY part, off HAVING count(*) > 1) d")
    is "$got" "$want" "audit: $want events that Debezium produced on $topic, $got applied"
    is "$dup" 0 "audit: no event applied twice"
    if cmp -s "$T_TMP/audit.want" "$T_TMP/audit.got"; then
        ok 0 "audit: exactly the topic's events (partition, offset, id, op), none lost, none extra"
    else
        ok 1 "audit: exactly the topic's events (partition, offset, id, op), none lost, none extra"
        diff "$T_TMP/audit.want" "$T_TMP/audit.got" | head -10 | sed 's/^/#   /'
    fi
}

# ---- a sustained write load on the source ----------------------------------------
# e2e_writer_start <tag> <keys> [pause-seconds]: one psql session fed by a
# loop: per transaction an upsert and an update of random keys among <keys>
# (ids md5('<tag>-<k>')::uuid), and in one transaction of four a delete.
# After each commit psql prints the transaction count to $T_TMP/writer.out.
e2e_writer_start() {
    local tag=$1 keys=$2 pause=${3:-}
    rm -f "$T_TMP/writer.stop"
    : >"$T_TMP/writer.out"
    (
        echo "$BASHPID" >>"$E2E_PIDFILE"
        i=0
        while [[ ! -e $T_TMP/writer.stop ]]; do
            i=$((i + 1)); k1=$((RANDOM % keys)); k2=$((RANDOM % keys)); k3=$((RANDOM % keys)); del=
            if ((RANDOM % 4 == 0)); then del="DELETE FROM public.customer WHERE id = md5('$tag-$k3')::uuid;"; fi
            printf "BEGIN;
INSERT INTO public.customer (id, email, status, updated_at) VALUES (md5('%s-%d')::uuid, 'w%d.%d@e2e.test', 'i%d', clock_timestamp())
  ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at;
UPDATE public.customer SET status = 'u%d', updated_at = clock_timestamp() WHERE id = md5('%s-%d')::uuid;
%s
COMMIT;
SELECT %d;
" "$tag" "$k1" "$k1" "$i" "$i" "$i" "$tag" "$k2" "$del" "$i"
            [[ -z $pause ]] || sleep "$pause"
        done
    ) | PGPASSWORD=cdc psql -h 127.0.0.1 -p "$E2E_PG_PORT" -U cdc -d app -qAtX -v ON_ERROR_STOP=1 \
        >"$T_TMP/writer.out" 2>"$T_TMP/writer.err" &
    E2E_WRITER_PID=$!
    T_PIDS+=("$E2E_WRITER_PID")
    echo "$E2E_WRITER_PID" >>"$E2E_PIDFILE"
}
e2e_writer_ticks() { local n; n=$(tail -n 1 "$T_TMP/writer.out" 2>/dev/null); echo "${n:-0}"; }
# e2e_writer_wait <n> [timeout]: until n more transactions committed.
e2e_writer_wait() {
    local target=$(($(e2e_writer_ticks) + $1))
    wait_until "${2:-60}" "writer to commit $1 more transactions" e2e_writer_at "$target"
}
e2e_writer_at() { (($(e2e_writer_ticks) >= $1)); }
e2e_writer_stop() {   # sets E2E_WRITER_RC; the writer's transaction count in E2E_WRITER_N
    touch "$T_TMP/writer.stop"
    E2E_WRITER_RC=0
    wait "$E2E_WRITER_PID" 2>/dev/null || E2E_WRITER_RC=$?
    E2E_WRITER_N=$(e2e_writer_ticks)
    [[ -s $T_TMP/writer.err ]] && sed 's/^/# writer: /' "$T_TMP/writer.err"
    unset E2E_WRITER_PID
}

# ---- set-up and tear-down ----------------------------------------------------------
e2e_on_exit() { E2E_UNDO+=("$1"); }

e2e_cleanup() {
    local rc=$? i inst
    [[ -n ${E2E_WRITER_PID:-} ]] && { touch "$T_TMP/writer.stop"; kill "$E2E_WRITER_PID" 2>/dev/null || true; }
    for inst in "${!E2E_PID[@]}"; do kill -KILL "${E2E_PID[$inst]}" 2>/dev/null || true; done
    for ((i = ${#E2E_UNDO[@]} - 1; i >= 0; i--)); do
        eval "${E2E_UNDO[i]}" >>"$T_TMP/stack.log" 2>&1 || echo "# cleanup step failed: ${E2E_UNDO[i]}" >&2
    done
    if [[ -n $E2E_STACK_TOUCHED ]]; then
        "$STACK" up pg kafka connect >>"$T_TMP/stack.log" 2>&1 || echo "# docker/stack up failed in cleanup" >&2
    fi
    if ((rc == 0 && T_FAILED == 0)) && [[ -z ${CDCR_E2E_KEEP:-} ]]; then
        admin_sql postgres -c "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" >/dev/null 2>&1 || true
    else
        echo "# kept sink database $E2E_DB (port $E2E_PG_PORT, user cdcrouter)" >&2
        if [[ -z ${CDCR_KEEP:-} ]]; then
            for inst in "${!E2E_PID[@]}"; do
                echo "# --- last lines of the $inst log:" >&2; tail -n 15 "$T_TMP/$inst.log" | sed 's/^/#   /' >&2
            done
        fi
    fi
    rm -f "$E2E_PIDFILE"
    (exit "$rc"); cleanup
}
trap e2e_cleanup EXIT

e2e_setup() {
    local pid
    # Processes left by an earlier run of this test that was killed before its
    # exit trap ran: cdcrouter (it would keep writing to a dropped database)
    # and the writer (its loop, a copy of the test script, and its psql).
    if [[ -f $E2E_PIDFILE ]]; then
        for pid in $(cat "$E2E_PIDFILE"); do
            [[ $pid != "$$" && -r /proc/$pid/cmdline ]] || continue
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
               grep -Eq "cdcrouter -c /tmp/cdcr-t\.|t/e2e/$E2E_NAME\.t|psql -h 127\.0\.0\.1 -p $E2E_PG_PORT -U cdc -d app"; then
                diag "killing $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-60)) left by an aborted run"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
        rm -f "$E2E_PIDFILE"
    fi
    "$STACK" up pg kafka connect >>"$T_TMP/stack.log" 2>&1 || {
        tail -n 20 "$T_TMP/stack.log"; bail "docker/stack up pg kafka connect failed"; }
    connector_running || bail "connector $E2E_CONNECTOR is not RUNNING: $(connector_state)"
    admin_sql postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" -c "CREATE DATABASE $E2E_DB OWNER cdcrouter" \
        >/dev/null || bail "cannot create database $E2E_DB"
    admin_sql "$E2E_DB" -f "$CDCR_SRCDIR/docker/sql/sink-schema.sql" >/dev/null || bail "sink schema"
    sink_sql -c "$E2E_AUDIT_SQL" || bail "audit table"
    diag "stack up; sink database $E2E_DB; group $E2E_GROUP"
}
e2e_setup
