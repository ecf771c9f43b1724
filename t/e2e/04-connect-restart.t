#!/usr/bin/env bash
# e2e 4. Kafka Connect restart with changes made while it is down: after
# `docker/stack start connect` the connector resumes by itself from its
# stored position: every change made during the outage is on the topic
# exactly once, in commit order, with no new snapshot (no "r" record); the
# sink equals the source and the audit shows each event applied once.
# cdcrouter keeps running throughout.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t4-$E2E_RUN

e2e_pipeline
e2e_drain; ok $? "drained before the restart"
before=$(topic_hwm "$E2E_TOPIC")

e2e_stack stop connect; ok $? "docker/stack stop connect"
is "$(connector_state)" "" "Connect is down (no answer from its REST API)"
# Changes while it is down, one transaction each, in a known order:
# 50 inserts, 2 updates of each of the first 20, 10 deletes.
src_sql <<SQL
DO \$\$ BEGIN
  FOR g IN 1..50 LOOP
    INSERT INTO public.customer (id, email, status, updated_at)
      VALUES (md5('$tag-' || g)::uuid, 'd' || g || '@e2e.test', 'down', clock_timestamp()); COMMIT;
  END LOOP;
  FOR r IN 1..2 LOOP FOR g IN 1..20 LOOP
    UPDATE public.customer SET status = 'down-u' || r, updated_at = clock_timestamp() WHERE id = md5('$tag-' || g)::uuid; COMMIT;
  END LOOP; END LOOP;
  FOR g IN 41..50 LOOP DELETE FROM public.customer WHERE id = md5('$tag-' || g)::uuid; COMMIT; END LOOP;
END \$\$;
SQL
is "$(topic_hwm "$E2E_TOPIC")" "$before" "nothing reaches the topic while Connect is down"
ok "$(e2e_alive main && e2e_alive audit; echo $?)" "cdcrouter keeps running"

e2e_stack start connect; ok $? "docker/stack start connect"
wait_until 120 "connector RUNNING after the restart" connector_running; ok $? "connector and task RUNNING again (not re-registered)"
e2e_drain 120; ok $? "drained after the restart"

# The topic after the outage: exactly the changes, in order, once each.
expect() {
    for g in $(seq 1 50); do echo "$g c down"; done
    for r in 1 2; do for g in $(seq 1 20); do echo "$g u down-u$r"; done; done
    for g in $(seq 41 50); do echo "$g d down"; done
}
src_sql -c "SELECT g, md5('$tag-' || g)::uuid FROM generate_series(1, 50) g" -F ' ' >"$T_TMP/ids"
topic_events "$E2E_TOPIC" "$before" >"$T_TMP/ev"
awk -F'\t' 'NR == FNR { id[$2] = $1; next } ($3 in id) { print id[$3], $4, $7 }' FS=' ' "$T_TMP/ids" FS='\t' "$T_TMP/ev" >"$T_TMP/got"
if [[ $(cat "$T_TMP/got") == "$(expect)" ]]; then ok 0 "the 100 changes made during the outage arrived once each, in commit order"
else ok 1 "the 100 changes made during the outage arrived once each, in commit order"; diff <(expect) "$T_TMP/got" | head | sed 's/^/#   /'; fi
is "$(cut -f4 "$T_TMP/ev" | grep -c '^r$')" 0 "no snapshot record (op r) after the restart"
is "$(cut -f3,4,5 "$T_TMP/ev" | sort | uniq -d | wc -l)" 0 "no record twice (same id, op, LSN) after the restart"
is "$(jq -r 'select(.payload == null) | .offset' <(topic_json "$E2E_TOPIC" "$before") | wc -l)" 10 "10 tombstones"
e2e_compare "exact after the Connect restart"
e2e_audit_check
ok "$(e2e_alive main && e2e_alive audit; echo $?)" "cdcrouter never stopped"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
