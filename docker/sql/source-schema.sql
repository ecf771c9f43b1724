-- Source table captured by Debezium (database `app`).  Run as a superuser
-- after bootstrap.sql.  Idempotent.
CREATE TABLE IF NOT EXISTS public.customer (
    id          uuid        PRIMARY KEY,
    email       text        NOT NULL,
    status      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- UPDATE and DELETE events carry every column (old values too), so a
-- rewritten delete still has email/status/updated_at.
ALTER TABLE public.customer REPLICA IDENTITY FULL;

-- publication.autocreate.mode=filtered makes Debezium run
-- CREATE PUBLICATION ... FOR TABLE public.customer as `cdc`: it must own the table.
ALTER TABLE public.customer OWNER TO cdc;
