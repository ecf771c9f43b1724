INSERT INTO public.customer (id, email, status, updated_at)
                SELECT * FROM unnest(:id::uuid[], :email::text[], :status::text[], :updated_at::timestamptz[])
                ON CONFLICT (id) DO UPDATE
                   SET email = EXCLUDED.email, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at