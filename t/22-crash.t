#!/usr/bin/env bash
# kill -9 during a stream, repeatedly: afterwards the sink equals the
# expected state and a non-idempotent audit route shows every event once.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer AUDIT=audit.customer

pg_start
kmock_start "$TOPIC:1" "$AUDIT:1"
sql -c "$SINK_CUSTOMER_SQL" -c "$AUDIT_SQL"
c=$T_TMP/conf; BATCH_SIZE=300 write_conf "$c"
cp "$CDCR_SRCDIR/routes/customer.route" "$c/routes/"
audit_route "$AUDIT" >"$c/routes/audit.route"

# (the mock broker keeps ~5 MB per partition: stay below it)
python3 "$GEN" --n 12000 --keys 500 --deletes 0.1 --tombstones --expect "$T_TMP/expect" >"$T_TMP/ev"
n=$(wc -l <"$T_TMP/ev"); events=$(grep -vc $'\t$' "$T_TMP/ev")
produce "$TOPIC" <"$T_TMP/ev"
produce "$AUDIT" <"$T_TMP/ev"

kills=0
for round in 1 2 3 4 5 6; do
    cdcr_start "$c"
    before=$(stored_offset t "$AUDIT" 0)
    # kill once this run has applied something (mid-stream, at an arbitrary batch)
    progressed() { (( $(stored_offset t "$AUDIT" 0) > before + 1500 )); }
    wait_until 60 "progress in round $round" progressed || break
    kill -KILL "$CDCR_PID"; cdcr_wait; kills=$((kills + 1))
    [[ $(stored_offset t "$AUDIT" 0) -ge $n ]] && break
done
diag "killed $kills times"
ok $((kills < 3)) "killed at least 3 times mid-stream"
cdcr_start "$c"
wait_offset 120 t "$TOPIC" 0 "$n"; ok $? "customer stream drained after the crashes"
wait_offset 120 t "$AUDIT" 0 "$n"; ok $? "audit stream drained after the crashes"
is "$(sink_customers)" "$(cat "$T_TMP/expect")" "sink equals the expected final state"
audit_check "$AUDIT" "$events"
cdcr_stop; is "$CDCR_RC" 0 "clean exit at the end"
done_testing
