INSERT INTO bench.customer_lat (id, email, status, updated_at, src_ts_ms, kafka_ts_ms, applied_at)
          VALUES (:id::uuid, :email, :status, :updated_at::timestamptz, :src_ts_ms::bigint, :kafka_ts_ms::bigint, clock_timestamp())
          ON CONFLICT (id) DO UPDATE
             SET email = EXCLUDED.email, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at,
                 src_ts_ms = EXCLUDED.src_ts_ms, kafka_ts_ms = EXCLUDED.kafka_ts_ms, applied_at = clock_timestamp()