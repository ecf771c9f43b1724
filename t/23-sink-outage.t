#!/usr/bin/env bash
# The database goes away mid-stream and comes back: cdcrouter keeps
# running, retries, and in the end every event took effect exactly once.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer AUDIT=audit.customer

BATCH_SIZE=200 customer_setup --audit "$AUDIT"
python3 "$GEN" --n 8000 --keys 300 --tombstones --expect "$T_TMP/expect" >"$T_TMP/ev"
n=$(wc -l <"$T_TMP/ev"); events=$(grep -vc $'\t$' "$T_TMP/ev")
head -n 2000 "$T_TMP/ev" | tee >(produce "$AUDIT") | produce "$TOPIC"
cdcr_start "$c"
wait_offset 60 t "$AUDIT" 0 2000; ok $? "first part applied"

pg_down
diag "sink stopped"
tail -n +2001 "$T_TMP/ev" | tee >(produce "$AUDIT") | produce "$TOPIC"
wait_until 30 "retry logged" log_has '"msg":"sink unavailable, retrying the batch"'; ok $? "the outage is logged as a retry"
retries() { (( $(grep -c 'sink unavailable, retrying\|cannot read stored offsets, retrying' "$T_TMP/cdcr.log") >= 3 )); }
wait_until 30 "several attempts" retries; ok $? "it keeps retrying with back-off"
ok "$(cdcr_alive; echo $?)" "still running while the sink is down"
pg_up
diag "sink back"
wait_offset 90 t "$AUDIT" 0 "$n"; ok $? "audit stream drained after the outage"
wait_offset 90 t "$TOPIC" 0 "$n"; ok $? "customer stream drained after the outage"
is "$(sink_customers)" "$(cat "$T_TMP/expect")" "sink equals the expected final state"
audit_check "$AUDIT" "$events"

# a sink that is down at start-up: cdcrouter starts anyway and waits
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
pg_down
printf '{"id":"00000000-0000-4000-8000-0000000000bb"}\t{"id":"00000000-0000-4000-8000-0000000000bb","email":"late@x","status":"s","updated_at":"2026-03-01T00:00:00.000000Z","__deleted":"false"}\n' | produce "$TOPIC"
cdcr_start "$c"
wait_until 30 "waiting logged" log_has 'cannot read stored offsets, retrying\|sink not available yet'; ok $? "starts with the sink down and says so"
pg_up
wait_offset 60 t "$TOPIC" 0 "$((n + 1))"; ok $? "applies once the sink is up"
is "$(sql -c "SELECT email FROM public.customer WHERE id = '00000000-0000-4000-8000-0000000000bb'")" "late@x" "the late event is there"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
