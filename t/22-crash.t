#!/usr/bin/env bash
# kill -9 during a stream, repeatedly: afterwards the sink equals the
# expected state and a non-idempotent audit route shows every event once.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer AUDIT=audit.customer

BATCH_SIZE=100 customer_setup --audit "$AUDIT"

# (the mock broker keeps ~5 MB per partition: stay below it)
python3 "$GEN" --n 12000 --keys 500 --deletes 0.1 --tombstones --expect "$T_TMP/expect" >"$T_TMP/ev"
n=$(wc -l <"$T_TMP/ev"); events=$(grep -vc $'\t$' "$T_TMP/ev")
split -n l/6 -d "$T_TMP/ev" "$T_TMP/chunk."

# Each round adds a chunk of changes (the load goes on while cdcrouter
# restarts), starts cdcrouter and kills it once it has applied part of
# that chunk: at an arbitrary point of a batch, between batches, or while
# a batch is in flight in the sink.
kills=0 produced=0
for chunk in "$T_TMP"/chunk.*; do
    produce "$TOPIC" <"$chunk"; produce "$AUDIT" <"$chunk"
    produced=$((produced + $(wc -l <"$chunk")))
    before=$(stored_offset t "$AUDIT" 0)
    cdcr_start "$c"
    progressed() { (( $(stored_offset t "$AUDIT" 0) > before + 200 )); }
    wait_until 60 "progress after $chunk" progressed || break
    kill -KILL "$CDCR_PID"; cdcr_wait; kills=$((kills + 1))
done
diag "killed $kills times; $(stored_offset t "$AUDIT" 0) of $n audit messages were stored before the last start"
ok $((kills < 6)) "killed in every round, mid-stream"
cdcr_start "$c"
wait_offset 120 t "$TOPIC" 0 "$n"; ok $? "customer stream drained after the crashes"
wait_offset 120 t "$AUDIT" 0 "$n"; ok $? "audit stream drained after the crashes"
is "$(sink_customers)" "$(cat "$T_TMP/expect")" "sink equals the expected final state"
audit_check "$AUDIT" "$events"
cdcr_stop; is "$CDCR_RC" 0 "clean exit at the end"
done_testing
