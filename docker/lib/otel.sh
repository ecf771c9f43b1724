# shellcheck shell=bash
# Native telemetry backends for the stack: components otelcol, jaeger and
# prometheus (each with _install, _start, _stop, _status). Sourced after
# common.sh, never executed.
#
#   otelcol     OpenTelemetry Collector built with the collector builder (ocb)
#               from otel-collector/builder-config.yaml; config.yaml.
#               OTLP in 127.0.0.1:4318 (HTTP) / :4317 (gRPC), Prometheus
#               exporter :8889, health :13133, own metrics :18888.
#   jaeger      Jaeger v2 built from Go modules; otel-collector/jaeger.yaml.
#               OTLP in :14317 (gRPC) / :14318, UI and /api :16686.
#   prometheus  Debian's /usr/bin/prometheus; otel-collector/prometheus.yml,
#               127.0.0.1:9090.
#
# Builds go to $CACHE_DIR (Go module and build caches too, so a rebuild after
# a manifest change is quick); data and logs to $STACK_DIR. The first build
# needs Go >= 1.25 (or >= 1.21 with GOTOOLCHAIN=auto, which fetches a newer
# toolchain from the Go module proxy).

OTELCOL_VERSION=0.161.0                 # builder, core and contrib modules
JAEGER_MODULE_VERSION=v1.76.0           # the Go module tag of Jaeger v2.13.0
JAEGER_VERSION=v2.13.0

OTEL_CONF_DIR=$REPO_DIR/otel-collector
OTELCOL_DIR=$CACHE_DIR/otelcol-$OTELCOL_VERSION
OTELCOL_BIN=$OTELCOL_DIR/otelcol-cdc/otelcol-cdc
JAEGER_DIR=$CACHE_DIR/jaeger-$JAEGER_MODULE_VERSION
JAEGER_BIN=$JAEGER_DIR/jaeger
PROMETHEUS_BIN=/usr/bin/prometheus

# Where things are, for tests and tools that source the stack libraries.
OTELCOL_LOGS_FILE=$STACK_DIR/otel/logs.json     # file exporter: OTLP logs as JSON lines
OTELCOL_OTLP_HTTP=http://127.0.0.1:4318
JAEGER_URL=http://127.0.0.1:16686
PROMETHEUS_URL=http://127.0.0.1:9090

# _otel_go <command...>: run with the Go caches under $CACHE_DIR.
_otel_go() {
    env GOPATH="$CACHE_DIR/go" GOMODCACHE="$CACHE_DIR/go/pkg/mod" \
        GOCACHE="$CACHE_DIR/go/cache" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
        GOFLAGS="-mod=mod -buildvcs=false" "$@"
}

_otel_need_go() {
    command -v go >/dev/null 2>&1 \
        || die "go not found: building the collector and Jaeger needs Go >= 1.21 (1.25+ preferred)"
}

# _otel_port_free <name> <port...>: fail if one of the ports is taken by
# something other than our <name> process.
_otel_port_free() {
    local name=$1 port; shift
    pid_alive "$name" && return 0
    for port in "$@"; do
        if port_open "$port"; then
            say "port $port is already in use (not by our $name); stop whatever holds it"
            return 1
        fi
    done
}

# _otel_wait_started <name> <timeout> <status-fn>: wait until healthy; on
# failure show the end of the component's log.
_otel_wait_started() {
    local name=$1 timeout=$2 status=$3
    if ! wait_for "$timeout" "$name to become healthy" "$status"; then
        if ! pid_alive "$name"; then say "$name exited; end of $LOG_DIR/$name.log:"; fi
        tail -n 25 "$LOG_DIR/$name.log" >&2 || true
        return 1
    fi
}

# ---------------------------------------------------------------- otelcol

otelcol_install() {
    local manifest=$OTEL_CONF_DIR/builder-config.yaml
    local builder_dir=$CACHE_DIR/bin/builder-v$OTELCOL_VERSION hash
    hash=$(sha256sum "$manifest" | cut -d' ' -f1)
    if [[ -x $OTELCOL_BIN && $(cat "$OTELCOL_DIR/manifest.sha256" 2>/dev/null) == "$hash" ]]; then
        return 0
    fi
    grep -q "otlpreceiver v$OTELCOL_VERSION\$" "$manifest" \
        || die "$manifest does not build collector v$OTELCOL_VERSION (OTELCOL_VERSION in docker/lib/otel.sh)"
    _otel_need_go
    mkdir -p "$OTELCOL_DIR" "$builder_dir"
    (
        flock 9
        # Another clone may have built it while we waited for the lock.
        if [[ -x $OTELCOL_BIN && $(cat "$OTELCOL_DIR/manifest.sha256" 2>/dev/null) == "$hash" ]]; then
            exit 0
        fi
        start=$SECONDS
        if [[ ! -x $builder_dir/builder ]]; then
            say "otelcol: installing the collector builder v$OTELCOL_VERSION"
            if ! _otel_go GOBIN="$builder_dir" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" \
                    >"$OTELCOL_DIR/builder-install.log" 2>&1; then
                tail -n 30 "$OTELCOL_DIR/builder-install.log" >&2
                exit 1
            fi
        fi
        say "otelcol: building the collector v$OTELCOL_VERSION (first build: ~3 min, log $OTELCOL_DIR/build.log)"
        rm -f "$OTELCOL_DIR/manifest.sha256"
        # output_path in the manifest is relative: the build lands in $OTELCOL_DIR.
        if ! (cd "$OTELCOL_DIR" && _otel_go "$builder_dir/builder" --config "$manifest") \
                >"$OTELCOL_DIR/build.log" 2>&1; then
            tail -n 30 "$OTELCOL_DIR/build.log" >&2
            exit 1
        fi
        [[ -x $OTELCOL_BIN ]] || { say "builder did not produce $OTELCOL_BIN"; exit 1; }
        echo "$hash" >"$OTELCOL_DIR/manifest.sha256"
        say "otelcol: built in $((SECONDS - start))s"
    ) 9>"$CACHE_DIR/otelcol.lock" || die "building the collector failed"
}

otelcol_start() {
    otelcol_install
    pid_alive otelcol && return 0
    _otel_port_free otelcol 4317 4318 8889 13133 18888 || return 1
    mkdir -p "$(dirname "$OTELCOL_LOGS_FILE")"
    start_bg otelcol env \
        OTEL_LISTEN_HOST=127.0.0.1 \
        JAEGER_OTLP_ENDPOINT=127.0.0.1:14317 \
        OTEL_LOGS_FILE="$OTELCOL_LOGS_FILE" \
        "$OTELCOL_BIN" --config "file:$OTEL_CONF_DIR/config.yaml"
    _otel_wait_started otelcol 60 otelcol_status
}

otelcol_stop() { stop_bg otelcol; }

otelcol_where() {
    echo "otelcol    $OTELCOL_OTLP_HTTP (OTLP/HTTP; gRPC :4317; metrics for Prometheus :8889; logs -> $OTELCOL_LOGS_FILE)"
}

# Healthy: our process runs, health_check says so and OTLP/HTTP accepts
# connections.
otelcol_status() {
    pid_alive otelcol \
        && curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:13133/ \
        && port_open 4318
}

# ----------------------------------------------------------------- jaeger

jaeger_install() {
    [[ -x $JAEGER_BIN ]] && return 0
    _otel_need_go
    mkdir -p "$JAEGER_DIR/src"
    (
        flock 9
        [[ -x $JAEGER_BIN ]] && exit 0
        start=$SECONDS
        cd "$JAEGER_DIR/src" || exit 1
        # `go install …/cmd/jaeger@v1.76.0` is refused (Jaeger's go.mod has a
        # replace directive), and v2.x tags are not usable by the go command.
        # A throwaway module with Jaeger as a tool dependency builds it.
        if [[ ! -f go.mod ]]; then
            printf 'module cdcrouter.local/jaeger-build\n\ngo 1.24.6\n' >go.mod
        fi
        say "jaeger: building Jaeger $JAEGER_VERSION (first build: ~5 min, log $JAEGER_DIR/build.log)"
        {
            _otel_go go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION" \
            && _otel_go go build -trimpath \
                -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" \
                -o "$JAEGER_BIN.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
        } >"$JAEGER_DIR/build.log" 2>&1 || { tail -n 30 "$JAEGER_DIR/build.log" >&2; exit 1; }
        mv -f "$JAEGER_BIN.tmp" "$JAEGER_BIN"
        say "jaeger: built in $((SECONDS - start))s"
    ) 9>"$CACHE_DIR/jaeger.lock" || die "building Jaeger failed"
}

jaeger_start() {
    jaeger_install
    pid_alive jaeger && return 0
    _otel_port_free jaeger 14317 14318 16686 16685 14133 14269 || return 1
    start_bg jaeger env JAEGER_LISTEN_HOST=127.0.0.1 \
        "$JAEGER_BIN" --config "file:$OTEL_CONF_DIR/jaeger.yaml"
    _otel_wait_started jaeger 60 jaeger_status
}

jaeger_stop() { stop_bg jaeger; }

jaeger_where() {
    echo "jaeger     $JAEGER_URL (query API /api/traces?service=cdcrouter; OTLP in :14317; Jaeger $JAEGER_VERSION)"
}

jaeger_status() {
    pid_alive jaeger \
        && curl -fsS -o /dev/null --max-time 2 "$JAEGER_URL/api/services" \
        && port_open 14317
}

# ------------------------------------------------------------- prometheus

prometheus_install() {
    [[ -x $PROMETHEUS_BIN ]] && return 0
    say "prometheus: installing Debian's prometheus package"
    # The package's postinst would start its own service on :9090: keep it
    # from doing so (policy-rc.d exit 101 = "not allowed"), unless the
    # machine already has a policy.
    local policy=/usr/sbin/policy-rc.d ours=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
    fi
    local rc=0
    if ! apt-cache show prometheus >/dev/null 2>&1; then
        apt-get update -qq || rc=$?
    fi
    if ((rc == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
            >"$LOG_DIR/prometheus-install.log" 2>&1 || rc=$?
    fi
    ((ours)) && rm -f "$policy"
    if ((rc != 0)); then
        tail -n 20 "$LOG_DIR/prometheus-install.log" >&2 || true
        die "apt-get install prometheus failed"
    fi
    # Belt and braces: if the package's service did start, stop and disable it.
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/prometheus ]]; then
        /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
}

prometheus_start() {
    prometheus_install
    pid_alive prometheus && return 0
    _otel_port_free prometheus 9090 || return 1
    mkdir -p "$STACK_DIR/prometheus"
    start_bg prometheus "$PROMETHEUS_BIN" \
        --config.file="$OTEL_CONF_DIR/prometheus.yml" \
        --storage.tsdb.path="$STACK_DIR/prometheus" \
        --storage.tsdb.retention.time=2d \
        --web.listen-address=127.0.0.1:9090 \
        --web.enable-lifecycle
    _otel_wait_started prometheus 60 prometheus_status
}

prometheus_stop() { stop_bg prometheus; }

prometheus_where() {
    echo "prometheus $PROMETHEUS_URL (scrapes the collector every 2s; /api/v1/query?query=...)"
}

prometheus_status() {
    pid_alive prometheus \
        && curl -fsS -o /dev/null --max-time 2 "$PROMETHEUS_URL/-/ready"
}
