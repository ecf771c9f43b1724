-- Sink table written by cdcrouter (database `sink`, owned by role
-- cdcrouter).  Run as a superuser after bootstrap.sql.  Idempotent.
SET ROLE cdcrouter;

-- Same columns as app.public.customer.  The CHECK constraint exists so a
-- poison message can be forced in tests: an update of the source row to an
-- email without '@' is accepted by the source and rejected by the sink.
CREATE TABLE IF NOT EXISTS public.customer (
    id          uuid        PRIMARY KEY,
    email       text        NOT NULL CONSTRAINT customer_email_check CHECK (email LIKE '%@%'),
    status      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

RESET ROLE;
