# shellcheck shell=bash
# Shared helpers for docker/stack and its components (docker/lib/<component>.sh).
# Each component file defines <name>_install (idempotent, cached), <name>_start,
# <name>_stop and <name>_status (exit 0 when healthy). Sourced, never executed.

REPO_DIR=${REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# Runtime state (data dirs, pid files, logs): one directory, removed by `stack clean`.
STACK_DIR=${CDCR_STACK_DIR:-$REPO_DIR/.stack}
# Downloads and builds (jars, Go binaries): shared by every clone on the machine.
CACHE_DIR=${CDCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcrouter}
LOG_DIR=$STACK_DIR/log
RUN_DIR=$STACK_DIR/run
mkdir -p "$STACK_DIR" "$CACHE_DIR" "$LOG_DIR" "$RUN_DIR"

say()  { printf '[stack] %s\n' "$*" >&2; }
die()  { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# wait_for <timeout-seconds> <description> <command...>: poll the command
# every 0.2 s until it succeeds; fail with the description on timeout.
wait_for() {
    local timeout=$1 what=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            say "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# pid_alive <name>: the process recorded in $RUN_DIR/<name>.pid is running.
pid_alive() {
    local f=$RUN_DIR/$1.pid
    [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg <name> <command...>: start a daemon in its own session, stdout and
# stderr to $LOG_DIR/<name>.log, pid in $RUN_DIR/<name>.pid. No-op if running.
start_bg() {
    local name=$1; shift
    if pid_alive "$name"; then return 0; fi
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/$name.pid"
}

# stop_bg <name> [timeout]: SIGTERM the process group, wait, then SIGKILL.
stop_bg() {
    local name=$1 timeout=${2:-30} f=$RUN_DIR/$1.pid pid
    [[ -s $f ]] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        local deadline=$((SECONDS + timeout))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# port_open <port>: something listens on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
