INSERT INTO public.audit (topic, part, off, id, op, email)
          VALUES (:topic, :part::int, :off::bigint, :id::uuid, :op, :email)