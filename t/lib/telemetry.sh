# shellcheck shell=bash disable=SC2034  # variables used by the test files that source it
# t/lib/telemetry.sh — helpers of the telemetry tests t/40-*.t (sourced after
# setup.sh). They run against the native stack's real OpenTelemetry
# Collector, Jaeger and Prometheus (docker/stack up otelcol jaeger prometheus,
# idempotent), which are shared: every run tags its telemetry with its own
# service.instance.id ($RUN_ID) and only looks at that.
#
#   CDCR_SKIP_OTEL=1   skip these tests (no Go toolchain to build the stack, ...)
#   CDCR_STACK_DIR     the stack's state directory (default <srcdir>/.stack)

if [[ -n ${CDCR_SKIP_OTEL:-} ]]; then
    echo "1..0 # SKIP CDCR_SKIP_OTEL is set"
    exit 0
fi
for _tool in curl jq flock; do
    command -v "$_tool" >/dev/null || bail "$_tool is needed"
done

STACK=$CDCR_SRCDIR/docker/stack
OTEL_STACK_DIR=${CDCR_STACK_DIR:-$CDCR_SRCDIR/.stack}
OTELCOL_LOGS_FILE=$OTEL_STACK_DIR/otel/logs.json    # the collector's file exporter (docker/lib/otel.sh)
OTLP_ENDPOINT=http://127.0.0.1:4318
JAEGER_URL=http://127.0.0.1:16686
PROM_URL=http://127.0.0.1:9090
RUN_ID=$(basename "$0" .t)-$(date +%s)-$$             # our service.instance.id = Prometheus "instance"
PKG_VERSION=$("$CDCR" -V | awk '{print $2}')

# otel_up shared|exclusive: start the collector, Jaeger and Prometheus if
# they are not running. A lock keeps a test that stops the collector
# (exclusive) away from the others (shared) of concurrent runs. It is held
# by a flock(1) process of its own (-o: not passed on), so that nothing this
# test starts (PostgreSQL, the collector) inherits it; that process ends with
# the test.
otel_up() {
    mkdir -p "$OTEL_STACK_DIR"
    local mode=-s
    [[ $1 == exclusive ]] && mode=-x
    flock "$mode" -o -w 600 "$OTEL_STACK_DIR/.otel-tests.lock" \
        sh -c "echo >'$T_TMP/otel.locked'; exec tail --pid=$$ -f /dev/null" </dev/null >/dev/null 2>&1 &
    T_PIDS+=($!)
    local holder=$!
    until [[ -e $T_TMP/otel.locked ]]; do
        kill -0 "$holder" 2>/dev/null || bail "another telemetry test held $OTEL_STACK_DIR/.otel-tests.lock for 10 minutes"
        sleep 0.1
    done
    if ! "$STACK" up otelcol jaeger prometheus >"$T_TMP/stack.log" 2>&1; then
        sed 's/^/# /' "$T_TMP/stack.log"
        bail "docker/stack up otelcol jaeger prometheus failed"
    fi
    diag "service.instance.id of this run: $RUN_ID"
}

# otel_conf [extra otlp settings]: the otlp section for write_conf (short
# export interval so that the tests wait seconds, not minutes).
otel_conf() {
    echo "otlp = { endpoint = \"$OTLP_ENDPOINT\"; export_interval_ms = 500; resource = [ \"service.instance.id=$RUN_ID\" ]; ${1:-} };"
}

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
hex_id() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }    # hex_id <bytes>

# ---- Prometheus ---------------------------------------------------------------
# prom <promql>: the result vector as JSON ([] on any error).
prom() {
    curl -fsS -G --max-time 5 "$PROM_URL/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        jq -c '.data.result // []' 2>/dev/null || echo '[]'
}
# prom_val <promql>: the value of a one-element result, "" otherwise.
prom_val() { prom "$1" | jq -r 'if length == 1 then .[0].value[1] else "" end'; }
# prom_is <promql> <value>: succeeds when the query gives exactly that value.
prom_is() { [[ $(prom_val "$1") == "$2" ]]; }
# prom_true <promql>: succeeds when the query (a comparison) returns a sample.
prom_true() { [[ $(prom "$1" | jq length) -gt 0 ]]; }
# prom_wait_is <seconds> <promql> <value> <test name>: a TAP test that waits
# for the value (export interval + scrape interval + some slack).
prom_wait_is() {
    local timeout=$1 q=$2 want=$3 name=$4
    if wait_until "$timeout" "$q == $want" prom_is "$q" "$want"; then
        ok 0 "$name"
    else
        ok 1 "$name"; diag "  query: $q"; diag "  got:  '$(prom_val "$q")'"; diag "  want: '$want'"
    fi
}
# Selector of this run's series.
SEL="job=\"cdcrouter\",instance=\"$RUN_ID\""

# ---- Jaeger -------------------------------------------------------------------
# jaeger_search <tags json>: traces of service cdcrouter with these tags
# (string values only; process tags such as service.instance.id work too).
jaeger_search() {
    curl -fsS -G --max-time 10 "$JAEGER_URL/api/traces" --data-urlencode service=cdcrouter \
        --data-urlencode "tags=$1" --data-urlencode limit="${2:-100}" --data-urlencode lookback=2h 2>/dev/null ||
        echo '{"data":[]}'
}
# jaeger_trace <trace id>: {"data":[trace]} or an error object.
jaeger_trace() { curl -sS --max-time 10 "$JAEGER_URL/api/traces/$1" 2>/dev/null || echo '{"data":[]}'; }
# Jaeger JSON (one or more traces) -> one flat object per span: id, trace,
# name, refs, tags (key -> value), process tags, logs, start, duration.
JQ_SPANS='.data[]? as $t | $t.spans[] |
  { trace: .traceID, id: .spanID, name: .operationName, refs: .references, start: .startTime,
    duration: .duration, warnings: .warnings,
    tags: (.tags | map({(.key): .value}) | add),
    service: $t.processes[.processID].serviceName,
    process: ($t.processes[.processID].tags | map({(.key): .value}) | add),
    events: [.logs[]? | .fields | map({(.key): .value}) | add] }'
# span_at <topic> <offset>: this run's span(s) for the message, one JSON object per line.
span_at() {
    jaeger_search "{\"service.instance.id\":\"$RUN_ID\",\"messaging.destination.name\":\"$1\",\"messaging.kafka.offset\":\"$2\"}" |
        jq -c "$JQ_SPANS"
}
has_span_at() { [[ -n $(span_at "$1" "$2") ]]; }
# run_span_count: how many spans this run has in Jaeger (each message is its own trace).
run_span_count() {
    jaeger_search "{\"service.instance.id\":\"$RUN_ID\"}" 5000 | jq '[.data[].spans[]] | length'
}

# ---- logs ---------------------------------------------------------------------
# log_at <msg> <offset> [topic]: cdcrouter's stderr JSON line about that message.
log_at() {
    jq -cR --arg m "$1" --argjson o "$2" --arg t "${3:-${TOPIC:-}}" \
        'fromjson? | select(.msg == $m and .offset == $o and (.topic == $t or $t == ""))' "$T_TMP/cdcr.log" | tail -n 1
}
# otlp_logs_of <trace id>: this run's OTLP log records with that trace id, as
# written by the collector's file exporter (one JSON object per line).
otlp_logs_of() {
    [[ -f $OTELCOL_LOGS_FILE ]] || return 0
    jq -c --arg run "$RUN_ID" --arg tid "$1" '.resourceLogs[]
        | select(any(.resource.attributes[]; .key == "service.instance.id" and .value.stringValue == $run))
        | .scopeLogs[].logRecords[] | select(.traceId == $tid)' "$OTELCOL_LOGS_FILE" 2>/dev/null
}
has_otlp_log() { [[ -n $(otlp_logs_of "$1") ]]; }

# ---- process ------------------------------------------------------------------
# proc_kb <pid> <field> <var>: VmRSS / VmHWM of a process in kB into <var>,
# without forking (for sampling loops).
proc_kb() {
    local k v _
    while read -r k v _; do
        [[ $k == "$2:" ]] && { printf -v "$3" '%s' "$v"; return 0; }
    done <"/proc/$1/status"
    return 1
}

# todo_is <got> <want> <name> <reason>: a TAP TODO test (a known bug, reported;
# it does not fail the file, and prove says when it unexpectedly passes).
todo_is() {
    T_N=$((T_N + 1))
    if [[ "$1" == "$2" ]]; then
        echo "ok $T_N - $3 # TODO $4"
    else
        echo "not ok $T_N - $3 # TODO $4"; echo "#   got:  '$1'"; echo "#   want: '$2'"
    fi
}

# check <name> <command...>: a test that passes when the command succeeds
# (a failing command does not end the script under set -e).
check() { local name=$1; shift; if "$@"; then ok 0 "$name"; else ok 1 "$name"; fi; }
