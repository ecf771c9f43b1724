#!/usr/bin/env bash
# A sink outage longer than max.poll.interval.ms: cdcrouter keeps its group
# membership (its partitions paused, the consumer still polled), keeps
# reporting lag and progress, and applies everything exactly once when the
# sink is back. Also: SIGUSR1 logs a progress line, SIGUSR2 is ignored
# (both killed the process before), and apply.batch_bytes bounds a batch.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer AUDIT=audit.customer

BATCH_SIZE=200 LOG_LEVEL=debug customer_setup --audit "$AUDIT" \
  'kafka = { properties = [ "topic.metadata.refresh.interval.ms=1000", "session.timeout.ms=6000",
                            "heartbeat.interval.ms=500", "max.poll.interval.ms=8000" ]; };
   log = { stats_interval_ms = 1000; };
   apply = { batch_bytes = 4096; };'
python3 "$GEN" --n 3000 --keys 200 --tombstones --expect "$T_TMP/expect" >"$T_TMP/ev"
n=$(wc -l <"$T_TMP/ev"); events=$(grep -vc $'\t$' "$T_TMP/ev")
head -n 1000 "$T_TMP/ev" | tee >(produce "$AUDIT") | produce "$TOPIC"
cdcr_start "$c"
wait_offset 60 t "$AUDIT" 0 1000; ok $? "first part applied"

# signals that used to kill
kill -USR1 "$CDCR_PID"
usr1() { [[ $(grep -c '"msg":"progress"' "$T_TMP/cdcr.log") -gt $1 ]]; }
before=$(grep -c '"msg":"progress"' "$T_TMP/cdcr.log")
wait_until 10 "a progress line after SIGUSR1" usr1 "$before"; ok $? "SIGUSR1 logs a progress line"
kill -USR2 "$CDCR_PID"
kill -USR1 "$CDCR_PID"
wait_until 10 "a progress line after SIGUSR2 + SIGUSR1" usr1 "$((before + 1))"
ok "$(cdcr_alive; echo $?)" "still running after SIGUSR1 and SIGUSR2"

# batches are bounded by bytes (keys + values of ~260-byte messages)
maxb=$(grep '"msg":"batch committed"' "$T_TMP/cdcr.log" | sed 's/.*"bytes":\([0-9]*\).*/\1/' | sort -n | tail -1)
maxn=$(grep '"msg":"batch committed"' "$T_TMP/cdcr.log" | sed 's/.*"messages":\([0-9]*\).*/\1/' | sort -n | tail -1)
ok "$( ((maxb > 3000 && maxb <= 4096 && maxn > 1)); echo $?)" "apply.batch_bytes = 4096 bounds a batch: at most $maxb bytes ($maxn messages)"

# the outage: 3 x max.poll.interval.ms
pg_down
t0=$SECONDS
diag "sink stopped"
tail -n +1001 "$T_TMP/ev" | tee >(produce "$AUDIT") | produce "$TOPIC"
wait_until 30 "retry logged" log_has '"msg":"sink unavailable, retrying the batch"'; ok $? "the outage is logged as a retry"
lagging() { grep '"msg":"progress"' "$T_TMP/cdcr.log" | tail -1 | grep -q '"lag":[1-9]'; }
wait_until 30 "a progress line with lag" lagging; ok $? "progress lines go on during the outage, with the lag"
outage_lines() { grep -c '"msg":"progress"' "$T_TMP/cdcr.log"; }
p0=$(outage_lines)
# the observation window must outlast max.poll.interval.ms (8 s) several times
long_enough() { ((SECONDS - t0 >= 24)); }
wait_until 40 "24 s of outage" long_enough
ok "$(( $(outage_lines) - p0 >= 15 ? 0 : 1 ))" "progress every second while waiting ($(( $(outage_lines) - p0 )) lines in the window)"
ok "$( ! grep -q 'maximum poll interval' "$T_TMP/cdcr.log"; echo $?)" "no max.poll.interval.ms expiry: the member stayed in the group"
ok "$( ! grep -q '"msg":"partition revoked"' "$T_TMP/cdcr.log"; echo $?)" "no rebalance during the outage"
ok "$(cdcr_alive; echo $?)" "still running"
pg_up
diag "sink back after $((SECONDS - t0)) s"
wait_offset 90 t "$AUDIT" 0 "$n"; ok $? "audit stream drained after the outage"
wait_offset 90 t "$TOPIC" 0 "$n"; ok $? "customer stream drained after the outage"
is "$(sink_customers)" "$(cat "$T_TMP/expect")" "sink equals the expected final state"
audit_check "$AUDIT" "$events"
is "$(grep -c '"msg":"partition assigned"' "$T_TMP/cdcr.log")" 2 "each partition was assigned once, at the start"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
