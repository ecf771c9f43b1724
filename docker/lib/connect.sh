# shellcheck shell=bash
# Component `connect`: Kafka Connect (distributed mode, one worker) on
# http://127.0.0.1:8083 (CDCR_CONNECT_PORT overrides it) with the Debezium
# PostgreSQL source connector and the Debezium JDBC sink connector.  Sourced by docker/stack after common.sh and
# kafka.sh (it runs from Kafka's lib dir).
#
# Plugins: docker/connect/pom.xml (pins the Debezium versions) unpacked once
# into $CACHE_DIR/connect-plugins-<sha>/ = plugin.path.  State:
# $STACK_DIR/connect/worker.properties (Connect keeps its own state in the
# Kafka topics connect-configs/-offsets/-status); log: $LOG_DIR/connect.log.
#
# The connector config docker/connect/customer-connector.json reads the
# database address through Kafka's EnvVarConfigProvider (${env:CDC_PG_HOST},
# ${env:CDC_PG_PORT}), so the same file works here and in Compose; the worker
# is started with CDC_PG_HOST=127.0.0.1 CDC_PG_PORT=<pg port>.

CONNECT_POM=$REPO_DIR/docker/connect/pom.xml
CONNECT_PORT=${CDCR_CONNECT_PORT:-8083}
CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
CONNECT_HOME=$STACK_DIR/connect
CONNECT_HEAP=${CDCR_CONNECT_HEAP:--Xms256m -Xmx1g}
CONNECTOR_NAME=cdc-customer
CONNECTOR_JSON=$REPO_DIR/docker/connect/customer-connector.json

connect_plugins_dir() {
    echo "$CACHE_DIR/connect-plugins-$(sha256sum "$CONNECT_POM" | cut -c1-12)"
}

connect_install() {
    kafka_install
    local dir tmp
    dir=$(connect_plugins_dir)
    if [[ -f $dir/.complete ]]; then return 0; fi
    say "connect: unpacking Debezium connector plugins from Maven Central (docker/connect/pom.xml)"
    tmp=$dir.tmp.$$
    rm -rf "$tmp"
    stack_mvn -f "$CONNECT_POM" dependency:unpack -Dplugins.dir="$tmp" ||
        { rm -rf "$tmp"; die "connect: mvn dependency:unpack failed"; }
    local p
    for p in debezium-connector-postgres debezium-connector-jdbc; do
        [[ -d $tmp/$p ]] || { rm -rf "$tmp"; die "connect: $p missing after unpack"; }
    done
    rm -rf "$tmp/.markers"   # maven-dependency-plugin bookkeeping, not a plugin
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

connect_write_config() {
    mkdir -p "$CONNECT_HOME"
    cat > "$CONNECT_HOME/worker.properties" <<EOF
# Written by docker/lib/connect.sh on every start; edit that file, not this one.
bootstrap.servers=$KAFKA_BOOTSTRAP
group.id=cdc-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic=connect-configs
offset.storage.topic=connect-offsets
status.storage.topic=connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
# Commit source offsets (and so Debezium's confirmed LSN) every second, not
# every minute: a killed worker then re-sends at most ~1 s of changes.
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$(connect_plugins_dir)
# Debezium's plugins ship ServiceLoader manifests: skip the slow reflective scan.
plugin.discovery=service_load
# \${env:NAME} in connector configs (customer-connector.json).
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
EOF
}

connect_ready() {
    curl -sf --max-time 5 "$CONNECT_URL/connector-plugins" 2>/dev/null |
        grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}

connect_launch() {
    port_open "$CONNECT_PORT" && die "connect: 127.0.0.1:$CONNECT_PORT is taken by a process that is not this stack's"
    connect_write_config
    say "connect: starting Kafka Connect on $CONNECT_URL"
    # shellcheck disable=SC2086  # CONNECT_HEAP is a list of options
    start_bg connect env CDC_PG_HOST=127.0.0.1 CDC_PG_PORT="${PG_PORT:-5433}" \
        java $CONNECT_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$LOG_DIR" \
        -cp "$KAFKA_LIB/*" org.apache.kafka.connect.cli.ConnectDistributed \
        "$CONNECT_HOME/worker.properties"
}

connect_start() {
    connect_install
    stack_daemon connect 240 connect_ready connect_launch ||
        die "connect: not healthy (see $LOG_DIR/connect.log)"
}

connect_stop() {
    if pid_alive connect; then say "connect: stopping"; fi
    stop_bg connect 60
}

connect_status() { pid_alive connect && connect_ready; }

connect_where() {
    echo "connect    $CONNECT_URL (Kafka Connect REST; connector $CONNECTOR_NAME -> topic cdc.public.customer)"
}

# connector_state: prints "<connector state> <task states...>" or nothing.
connector_state() {
    curl -sf --max-time 5 "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" 2>/dev/null |
        jq -r '[.connector.state] + [.tasks[].state] | join(" ")' 2>/dev/null
}

connector_running() {
    local s
    s=$(connector_state) || return 1
    [[ $s =~ ^RUNNING(\ RUNNING)+$ ]]
}

connector_failed() {
    [[ $(connector_state) == *FAILED* ]]
}

# connector_fetch_config: current config (sorted JSON, empty when the
# connector does not exist) into $RUN_DIR/connector-config.json.
connector_fetch_config() {
    local out=$RUN_DIR/connector-config.json code
    code=$(curl -s --max-time 5 -o "$out.tmp" -w '%{http_code}' \
        "$CONNECT_URL/connectors/$CONNECTOR_NAME/config") || return 1
    case $code in
        200) jq -S . "$out.tmp" > "$out" ;;
        404) : > "$out" ;;
        *) return 1 ;;
    esac
    rm -f "$out.tmp"
}

connector_put() {
    local out code
    out=$(mktemp)
    code=$(curl -s --max-time 30 -o "$out" -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/json' --data-binary "@$CONNECTOR_JSON" \
        "$CONNECT_URL/connectors/$CONNECTOR_NAME/config") || code=000
    case $code in
        200|201) rm -f "$out"; return 0 ;;
        409|000|5*) rm -f "$out"; return 1 ;;   # rebalancing / starting: retry
        *) say "connect: PUT config answered HTTP $code: $(cat "$out")"; rm -f "$out"; return 2 ;;
    esac
}

# connect_register: PUT docker/connect/customer-connector.json as the config
# of connector cdc-customer, then wait until the connector and its task run.
connect_register() {
    command -v jq >/dev/null || die "jq is needed (docker/stack install)"
    jq -e . "$CONNECTOR_JSON" >/dev/null || die "connect: $CONNECTOR_JSON is not valid JSON"
    connect_status || die "connect: Kafka Connect is not running (docker/stack up connect)"
    local want have
    want=$(jq -S --arg n "$CONNECTOR_NAME" '. + {name: $n}' "$CONNECTOR_JSON")
    # Current config: 200 = registered, 404 = not yet; 409 (rebalancing right
    # after a start) or no answer: ask again.
    wait_for 120 "Connect to answer GET /connectors/$CONNECTOR_NAME/config" connector_fetch_config ||
        die "connect: no answer from $CONNECT_URL (see $LOG_DIR/connect.log)"
    have=$(cat "$RUN_DIR/connector-config.json")
    local deadline=$((SECONDS + 120)) rc
    if [[ $want == "$have" ]]; then
        # An identical PUT would still restart the connector.
        say "connect: connector $CONNECTOR_NAME already has this config"
    else
        say "connect: registering connector $CONNECTOR_NAME from docker/connect/customer-connector.json"
    fi
    while [[ $want != "$have" ]]; do
        rc=0; connector_put || rc=$?
        ((rc == 0)) && break
        ((rc == 2)) && die "connect: connector config rejected"
        ((SECONDS < deadline)) || die "connect: could not PUT the connector config (see $LOG_DIR/connect.log)"
        sleep 1
    done
    local restarted=
    deadline=$((SECONDS + 120))
    until connector_running; do
        if connector_failed && [[ -z $restarted ]]; then
            say "connect: connector $CONNECTOR_NAME FAILED ($(connector_state)); restarting it once"
            curl -sf -X POST "$CONNECT_URL/connectors/$CONNECTOR_NAME/restart?includeTasks=true&onlyFailed=true" >/dev/null || true
            restarted=1
        elif connector_failed; then
            curl -sf "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" | jq -r '.connector.trace // empty, .tasks[].trace // empty' | head -40 >&2
            die "connect: connector $CONNECTOR_NAME FAILED"
        fi
        ((SECONDS < deadline)) || die "connect: connector $CONNECTOR_NAME not RUNNING after 120s: $(connector_state)"
        sleep 0.5
    done
    say "connect: connector $CONNECTOR_NAME RUNNING ($(connector_state))"
}
