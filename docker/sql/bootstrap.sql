-- Roles and databases of the CDC stack.  Run as a superuser, connected to
-- the `postgres` database, by psql (it uses \gexec).  Idempotent.
-- Used by the native stack (docker/lib/pg.sh) and by Compose
-- (docker/sql/init-db.sh in the postgres container's docker-entrypoint-initdb.d).

-- Debezium's login: REPLICATION for the logical slot; it owns public.customer
-- (source-schema.sql) and may CREATE in database app, which is what
-- publication.autocreate.mode=filtered needs to run
-- CREATE PUBLICATION ... FOR TABLE public.customer.
SELECT 'CREATE ROLE cdc'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdc') \gexec
ALTER ROLE cdc WITH LOGIN REPLICATION PASSWORD 'cdc';

-- cdcrouter's login: owns the sink database and everything in it.
SELECT 'CREATE ROLE cdcrouter'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdcrouter') \gexec
ALTER ROLE cdcrouter WITH LOGIN PASSWORD 'cdcrouter';

-- Source database (captured by Debezium).
SELECT 'CREATE DATABASE app'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'app') \gexec
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE app TO cdc;

-- Sink database (written by cdcrouter).
SELECT 'CREATE DATABASE sink OWNER cdcrouter'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'sink') \gexec
ALTER DATABASE sink OWNER TO cdcrouter;
