INSERT INTO public.customer (id, email, status, updated_at)
          VALUES (:id::uuid, :email, :status, :updated_at::timestamptz)
          ON CONFLICT (id) DO UPDATE
             SET email = EXCLUDED.email, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at