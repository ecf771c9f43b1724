# shellcheck shell=bash
# Component `kafka`: Apache Kafka 4.x, one combined KRaft broker+controller on
# 127.0.0.1:9092 (controller 127.0.0.1:9093; CDCR_KAFKA_PORT and
# CDCR_KAFKA_CONTROLLER_PORT override them), run from Maven Central jars.
# Sourced by docker/stack after common.sh.
#
# Jars: docker/kafka/pom.xml (it pins the versions) resolved once into
# $CACHE_DIR/kafka-<version>/lib; the same lib dir runs Kafka Connect
# (docker/lib/connect.sh).  State: $STACK_DIR/kafka/{server.properties,
# cluster.id,data}; log: $LOG_DIR/kafka.log.

KAFKA_POM=$REPO_DIR/docker/kafka/pom.xml
KAFKA_LOG4J=$REPO_DIR/docker/kafka/log4j2.properties
KAFKA_TOOLS_LOG4J=$REPO_DIR/docker/kafka/tools-log4j2.properties
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
KAFKA_LIB=$CACHE_DIR/kafka-$KAFKA_VERSION/lib
KAFKA_PORT=${CDCR_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${CDCR_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
KAFKA_HOME=$STACK_DIR/kafka
KAFKA_HEAP=${CDCR_KAFKA_HEAP:--Xms512m -Xmx1g}

# kafka_java <main-class> [args]: run a Kafka class (tools, StorageTool, ...).
kafka_java() {
    java -Xmx512m -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIB/*" "$@"
}

kafka_install() {
    stack_need_java
    local sum
    sum=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
    if [[ -f $KAFKA_LIB/.pom.sha256 && $(cat "$KAFKA_LIB/.pom.sha256") == "$sum" ]]; then
        return 0
    fi
    say "kafka: resolving Kafka $KAFKA_VERSION jars from Maven Central (docker/kafka/pom.xml)"
    local tmp=$KAFKA_LIB.tmp.$$
    rm -rf "$tmp"
    stack_mvn -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" ||
        { rm -rf "$tmp"; die "kafka: mvn dependency:copy-dependencies failed"; }
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka: kafka_2.13 jar missing in $tmp"
    echo "$sum" > "$tmp/.pom.sha256"
    rm -rf "$KAFKA_LIB"
    mkdir -p "$(dirname "$KAFKA_LIB")"
    mv "$tmp" "$KAFKA_LIB"
}

kafka_write_config() {
    mkdir -p "$KAFKA_HOME/data"
    cat > "$KAFKA_HOME/server.properties" <<EOF
# Written by docker/lib/kafka.sh on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
}

kafka_format() {
    [[ -s $KAFKA_HOME/data/meta.properties ]] && return 0
    [[ -s $KAFKA_HOME/cluster.id ]] ||
        kafka_java kafka.tools.StorageTool random-uuid > "$KAFKA_HOME/cluster.id"
    say "kafka: formatting KRaft storage (cluster id $(cat "$KAFKA_HOME/cluster.id"))"
    kafka_java kafka.tools.StorageTool format --standalone --ignore-formatted \
        -t "$(cat "$KAFKA_HOME/cluster.id")" -c "$KAFKA_HOME/server.properties" \
        >>"$LOG_DIR/kafka.log" 2>&1 || die "kafka: storage format failed (see $LOG_DIR/kafka.log)"
}

# Healthy: the broker answers a metadata request and lists itself.
kafka_ready() {
    if command -v kcat >/dev/null; then
        kcat -L -b "$KAFKA_BOOTSTRAP" -m 3 2>/dev/null | grep -q ' 1 brokers:'
    else
        port_open "$KAFKA_PORT" && kafka_java org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$KAFKA_BOOTSTRAP" --list >/dev/null 2>&1
    fi
}

kafka_launch() {
    port_open "$KAFKA_PORT" && die "kafka: 127.0.0.1:$KAFKA_PORT is taken by a process that is not this stack's"
    port_open "$KAFKA_CONTROLLER_PORT" && die "kafka: 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken by a process that is not this stack's"
    kafka_write_config
    kafka_format
    say "kafka: starting Kafka $KAFKA_VERSION on $KAFKA_BOOTSTRAP"
    # shellcheck disable=SC2086  # KAFKA_HEAP is a list of options
    start_bg kafka java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$LOG_DIR" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_HOME/server.properties"
}

kafka_start() {
    kafka_install
    mkdir -p "$KAFKA_HOME"
    stack_daemon kafka 120 kafka_ready kafka_launch ||
        die "kafka: not healthy (see $LOG_DIR/kafka.log)"
}

kafka_stop() {
    if pid_alive kafka; then say "kafka: stopping"; fi
    # Controlled shutdown of a single KRaft node takes a few seconds.
    stop_bg kafka 90
}

kafka_status() { pid_alive kafka && kafka_ready; }

kafka_where() {
    echo "kafka      $KAFKA_BOOTSTRAP (PLAINTEXT; KRaft controller 127.0.0.1:$KAFKA_CONTROLLER_PORT; Kafka $KAFKA_VERSION)"
}
