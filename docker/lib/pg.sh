# shellcheck shell=bash
# Component `pg`: PostgreSQL 15 (Debian's packages) on 127.0.0.1:5433
# (CDCR_PG_PORT overrides it) holding both the source database `app`
# (captured by Debezium) and the sink database `sink` (written by cdcrouter).  Sourced by docker/stack after common.sh.
#
# Layout: $STACK_DIR/pg/data (PGDATA, owned by the server's OS user),
# $STACK_DIR/pg/initialized (marker: docker/sql applied once), log in
# $LOG_DIR/pg.log, socket in $RUN_DIR/pg (or /tmp when that path is too long).
# As root the server runs as the `postgres` OS user (runuser); otherwise as
# the calling user.  Superuser `postgres` (password `postgres` for TCP).

PG_PORT=${CDCR_PG_PORT:-5433}
PG_VERSION=15
PG_BIN=${CDCR_PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}
PG_HOME=$STACK_DIR/pg
PG_DATA=$PG_HOME/data
PG_LOG=$LOG_DIR/pg.log
PG_SUPERPASS=postgres
PG_SQL_DIR=$REPO_DIR/docker/sql

# The unix socket path (dir + /.s.PGSQL.5433) must fit in 107 bytes.
PG_SOCKET_DIR=$RUN_DIR/pg
if ((${#PG_SOCKET_DIR} > 80)); then PG_SOCKET_DIR=/tmp/cdcrouter-pg-$(id -u); fi

if ((EUID == 0)); then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi

# pg_as <command...>: run as the server's OS user.
pg_as() {
    if ((EUID == 0)); then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

pg_install() {
    if [[ ! -x $PG_BIN/postgres ]]; then
        stack_apt_install "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION"
    fi
    [[ -x $PG_BIN/postgres ]] || die "PostgreSQL $PG_VERSION not found in $PG_BIN"
    if ((EUID == 0)) && ! id -u postgres >/dev/null 2>&1; then
        die "OS user postgres missing (install postgresql-$PG_VERSION)"
    fi
}

# The server's OS user must reach $PG_HOME: give o+x to every parent that
# lacks it (e.g. a clone under a 0700 home directory).
pg_fix_parents() {
    ((EUID == 0)) || return 0
    local d=$PG_HOME
    while [[ $d != / && -n $d ]]; do
        d=$(dirname "$d")
        if ! runuser -u "$PG_OS_USER" -- test -x "$d"; then
            say "pg: chmod o+x $d (so $PG_OS_USER can reach $PG_HOME)"
            chmod o+x "$d"
        fi
    done
}

pg_write_config() {
    # Rewritten on every start, so edits here apply on the next `up`.
    pg_as tee "$PG_DATA/cdcrouter.conf" >/dev/null <<EOF
# Written by docker/lib/pg.sh on every start; edit that file, not this one.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
# Logical decoding for Debezium (pgoutput).  PG15 defaults already give
# max_wal_senders = 10 and max_replication_slots = 10.
wal_level = logical
# Benchmarks write a lot: fewer forced checkpoints.
max_wal_size = 8GB
# 1GB of 24GB RAM: plenty for the test tables, leaves room for Kafka/Connect.
shared_buffers = 1GB
max_connections = 200
password_encryption = scram-sha-256
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
EOF
    pg_as tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by docker/lib/pg.sh on every start.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
EOF
}

pg_init_cluster() {
    [[ -s $PG_DATA/PG_VERSION ]] && return 0
    say "pg: initdb $PG_DATA"
    mkdir -p "$PG_HOME"
    rm -rf "$PG_DATA"
    install -d -m 0700 -o "$PG_OS_USER" "$PG_DATA"
    pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 || die "pg: initdb failed (see $PG_LOG)"
    echo "include 'cdcrouter.conf'" | pg_as tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres; }

# pg_local_psql <db> [args]: superuser psql over the unix socket (trust, so
# any OS user may connect as postgres).
pg_local_psql() {
    local db=$1; shift
    PGHOST=$PG_SOCKET_DIR PGPORT=$PG_PORT "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d "$db" "$@"
}

pg_start() {
    pg_install
    mkdir -p "$PG_HOME"
    pg_fix_parents
    pg_init_cluster
    install -d -o "$PG_OS_USER" "$PG_SOCKET_DIR"
    touch "$PG_LOG"
    ((EUID == 0)) && chown "$PG_OS_USER" "$PG_LOG"
    pg_write_config
    if ! pg_ready; then
        # A stale postmaster.pid (crash, kill -9, reboot) is handled by postgres
        # itself: it checks whether the recorded pid is still a postmaster.
        say "pg: starting on 127.0.0.1:$PG_PORT"
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null ||
            die "pg: start failed (see $PG_LOG)"
    fi
    wait_for 60 "PostgreSQL on 127.0.0.1:$PG_PORT" pg_ready || die "pg: not ready (see $PG_LOG)"
    if [[ ! -e $PG_HOME/initialized ]]; then
        say "pg: creating roles, databases app/sink, tables and seed rows"
        pg_local_psql postgres -c "ALTER ROLE postgres PASSWORD '$PG_SUPERPASS'"
        PGHOST=$PG_SOCKET_DIR PGPORT=$PG_PORT CDC_SQL_DIR=$PG_SQL_DIR POSTGRES_USER=postgres \
            PATH="$PG_BIN:$PATH" bash "$PG_SQL_DIR/init-db.sh" >>"$PG_LOG" 2>&1 ||
            die "pg: docker/sql/init-db.sh failed (see $PG_LOG)"
        touch "$PG_HOME/initialized"
    fi
}

pg_stop() {
    [[ -s $PG_DATA/PG_VERSION ]] || return 0
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        say "pg: stopping"
        # fast: disconnects clients (Debezium's walsender) instead of waiting.
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
            pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null || true
    fi
}

pg_status() { pg_ready; }

pg_where() {
    echo "pg         postgresql://127.0.0.1:$PG_PORT  (source db app: cdc/cdc; sink db sink: cdcrouter/cdcrouter; superuser postgres/$PG_SUPERPASS)"
}
