#!/usr/bin/env bash
# Creates the CDC stack's roles, databases, tables and seed rows from the SQL
# files beside this script.  Used by both stacks:
#   - native: docker/lib/pg.sh runs it once (marker .stack/pg/initialized)
#     with PGHOST/PGPORT pointing at the stack's server;
#   - Compose: mounted as /docker-entrypoint-initdb.d/10-cdc.sh in the postgres
#     image, which runs it once, on an empty data directory, with
#     CDC_SQL_DIR=/cdc-sql (where docker/sql is mounted).
# Every file is idempotent; the seed is meant to be applied once.
# The body runs in a subshell so that it behaves the same when the image's
# entrypoint sources it instead of executing it.
(
    set -euo pipefail
    sql_dir=${CDC_SQL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
    su_user=${POSTGRES_USER:-postgres}
    run() { # run <database> <file>
        echo "init-db: $2 -> $1"
        psql -v ON_ERROR_STOP=1 -X -q --no-password -U "$su_user" -d "$1" -f "$sql_dir/$2"
    }
    run postgres bootstrap.sql
    run app      source-schema.sql
    run app      source-seed.sql
    run sink     sink-schema.sql
)
