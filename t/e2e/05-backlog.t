#!/usr/bin/env bash
# e2e 5. Consumer restart with a backlog: cdcrouter (both processes) stopped,
# thousands of changes written to the source and published by Debezium, then
# cdcrouter started again with the same groups: it resumes from the offsets
# stored in the sink, catches up, and the sink equals the source exactly;
# the audit shows no event applied twice (nothing replayed) and none lost.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t5-$E2E_RUN

e2e_pipeline
e2e_drain; ok $? "drained before the stop"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
stored=$(stored_offset "$E2E_GROUP" "$E2E_TOPIC" 0)
before=$(topic_hwm "$E2E_TOPIC")
is "$stored" "$before" "stopped with everything applied (offset $stored)"

# The backlog: 3000 inserts (one transaction), 2000 updates of 500 keys (one
# transaction each), 300 deletes (one transaction), 200 more updates in one
# transaction: 3000 + 2000 + 300 + 300 tombstones + 200 = 5800 records.
src_sql <<SQL
INSERT INTO public.customer (id, email, status, updated_at)
  SELECT md5('$tag-' || g)::uuid, 'b' || g || '@e2e.test', 'new', clock_timestamp() FROM generate_series(1, 3000) g;
DO \$\$ BEGIN
  FOR i IN 1..2000 LOOP
    UPDATE public.customer SET status = 'u' || i, updated_at = clock_timestamp() WHERE id = md5('$tag-' || (1 + i % 500))::uuid;
    COMMIT;
  END LOOP;
END \$\$;
DELETE FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(2701, 3000) g);
UPDATE public.customer SET email = 'x' || email, updated_at = clock_timestamp()
  WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1001, 1200) g);
SQL
want=$((before + 5800))
hwm_is() { [[ $(topic_hwm "$E2E_TOPIC") == "$1" ]]; }
wait_until 120 "Debezium to publish the 5800 records" hwm_is "$want"; ok $? "the backlog is on the topic: $((want - stored)) records behind"

t0=$SECONDS
e2e_start main; e2e_start audit
e2e_drain 180; ok $? "caught up after the restart"
diag "caught up with a backlog of $((want - stored)) records in $((SECONDS - t0))s"
e2e_compare "exact after catching up"
is "$(sink_sql -c "SELECT count(*) FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 3000) g)")" 2700 "3000 inserted - 300 deleted"
like "$(e2e_log main '.msg == "partition assigned"' | tail -1)" '"start_offset":'"$stored"'[,}]' "main resumed at the stored offset $stored"
e2e_audit_check
is "$(sink_sql -c "SELECT count(*) FROM public.audit WHERE off >= $stored")" $((5800 - 300 + 1)) "audit: the backlog's 5500 events (and the marker) applied once"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
