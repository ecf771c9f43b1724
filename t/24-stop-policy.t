#!/usr/bin/env bash
# on_error = stop: the process exits 2 with the reason, offsets untouched;
# a restart stops at the same message again; skip counts and goes on.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer

customer_setup 'apply = { on_error = "stop"; };'
python3 "$GEN" --n 100 --keys 20 --expect "$T_TMP/expect" >"$T_TMP/ev"
produce "$TOPIC" <"$T_TMP/ev"
cdcr_start "$c"
wait_offset 30 t "$TOPIC" 0 100; ok $? "good events applied"
printf '{"id":"00000000-0000-4000-8000-0000000000cc"}\t{"id":"00000000-0000-4000-8000-0000000000cc","email":"nope","status":"s","updated_at":"2026-03-01T00:00:00Z","__deleted":"false"}\n' | produce "$TOPIC"
printf '{"id":"00000000-0000-4000-8000-0000000000dd"}\t{"id":"00000000-0000-4000-8000-0000000000dd","email":"after@x","status":"s","updated_at":"2026-03-01T00:00:00Z","__deleted":"false"}\n' | produce "$TOPIC"
wait_until 30 "exit" bash -c "! kill -0 $CDCR_PID"; cdcr_wait
is "$CDCR_RC" 2 "exit status 2 under policy stop"
like "$(grep 'policy stop' "$T_TMP/cdcr.log")" '"offset":100,.*"sqlstate":"23514"' "the reason is logged with offset and SQLSTATE"
is "$(stored_offset t $TOPIC 0)" 100 "offsets untouched: the failing message is not skipped"
is "$(sql -c "SELECT count(*) FROM public.customer WHERE email = 'after@x'")" 0 "nothing after it applied"
cdcr_start "$c"
wait_until 30 "exit again" bash -c "! kill -0 $CDCR_PID"; cdcr_wait
is "$CDCR_RC" 2 "a restart stops at the same message"
is "$(stored_offset t $TOPIC 0)" 100 "still untouched"

# switch the policy to skip and reload-free restart: it passes, counted in the log
write_conf "$c" 'apply = { on_error = "skip"; };'
cdcr_start "$c"
wait_offset 30 t "$TOPIC" 0 102; ok $? "policy skip moves past it"
like "$(grep 'message failed, skipped' "$T_TMP/cdcr.log")" '"offset":100,.*"outcome":"skipped"' "logged as skipped"
is "$(sql -c "SELECT count(*) FROM public.customer WHERE email = 'after@x'")" 1 "the next event applied"
is "$(sink_customers | grep -v 00000000-0000-4000-8000-0000000000dd)" "$(cat "$T_TMP/expect")" "state otherwise exact"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
