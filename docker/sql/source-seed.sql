-- Seed rows in app.public.customer: present before the connector is
-- registered, so they arrive through Debezium's initial snapshot.
-- Fixed ids so tests can name them.  Idempotent (ON CONFLICT DO NOTHING), but
-- the stacks apply it only once, on a fresh database, so rows deleted by a
-- test do not come back.
INSERT INTO public.customer (id, email, status, updated_at)
SELECT format('00000000-0000-4000-8000-%s', lpad(n::text, 12, '0'))::uuid,
       format('customer%s@example.com', n),
       CASE WHEN n % 3 = 0 THEN 'inactive' ELSE 'active' END,
       timestamptz '2024-01-01 00:00:00+00' + n * interval '1 hour 1.123456 second'
  FROM generate_series(1, 10) AS n
ON CONFLICT (id) DO NOTHING;
