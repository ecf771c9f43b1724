#!/usr/bin/env bash
# A prefetch queue far smaller than the traffic: librdkafka holds back
# fetching while its queue is over queued.min.messages until the broker
# thread wakes (up to 1 s later); cdcrouter nudges the fetcher when the
# queue runs dry while a partition may be held back, and never while it is
# caught up. (How much faster that is, is measured by bench/run, not here:
# 3000 messages took 4 s with nudges, 19 s without, by hand.)
# message.max.bytes above cdcrouter's 4 MB fetch cap: the cap follows it
# (librdkafka refuses fetch.max.bytes < message.max.bytes).
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer

pg_start
kmock_start "$TOPIC:2"
sql -c "$SINK_CUSTOMER_SQL"
c=$T_TMP/conf
write_conf "$c" 'kafka = { properties = [ "topic.metadata.refresh.interval.ms=1000", "session.timeout.ms=6000",
  "heartbeat.interval.ms=500", "queued.min.messages=100", "message.max.bytes=8000000" ]; };
log = { level = "debug"; stats_interval_ms = 100; };'
cp "$CDCR_SRCDIR/routes/customer.route" "$c/routes/"

python3 "$GEN" --n 3000 --keys 300 --deletes 0.1 --tombstones --seed 3 --expect "$T_TMP/expect" >"$T_TMP/ev"
n=$(wc -l <"$T_TMP/ev")
produce "$TOPIC" -X batch.num.messages=20 <"$T_TMP/ev"   # small batches: the mock serves one per fetch
applied() { [[ $(sql -c "SELECT coalesce(sum(next_offset), 0) FROM cdcrouter.offsets WHERE group_id = 't'" 2>/dev/null) == "$n" ]]; }
nudges() { grep -c '"msg":"fetch nudge"' "$T_TMP/cdcr.log" || true; }
progress_lines() { grep -c '"msg":"progress"' "$T_TMP/cdcr.log" || true; }

cdcr_start "$c"
wait_until 120 "all $n messages applied" applied; ok $? "all $n messages applied through a 100-message prefetch queue"
is "$(sink_customers)" "$(cat "$T_TMP/expect")" "sink equals the expected final state"
got=$(nudges)
ok "$((got > 0 ? 0 : 1))" "the fetcher was nudged while behind ($got nudges)"
like "$(grep -m1 '"msg":"fetch nudge"' "$T_TMP/cdcr.log")" '"topic":"cdc.public.customer","partition":[01],"offset":[0-9]+,"high_watermark":-?[0-9]+,"reason":"(behind|queue drained)"' \
    "a nudge names the partition, its position and high watermark"

# caught up: ten idle progress reports (~2 s: the idle poll waits 200 ms)
# without a single nudge. The first poll that finds the queue dry after the
# last message may still nudge once (a queue-full was handed out), so count
# from the second progress report that shows every message done.
done_reports() { jq -R --argjson n "$n" 'fromjson? | select(.msg == "progress" and .applied + .ignored + .failed == $n)' \
    "$T_TMP/cdcr.log" | grep -c '"msg"' || true; }
settled() { (($(done_reports) >= 2)); }
wait_until 30 "two progress reports with every message done" settled; ok $? "progress reports show every message done"
p0=$(progress_lines) k0=$(nudges)
progressed() { (($(progress_lines) >= p0 + 10)); }
wait_until 30 "ten idle progress reports" progressed; ok $? "ten idle progress reports"
is "$(nudges)" "$k0" "no nudges while caught up"

cdcr_stop; is "$CDCR_RC" 0 "clean exit"
like "$(grep '"msg":"kafka consumer closing"' "$T_TMP/cdcr.log")" "\"fetch_nudges\":${k0}[,}]" "the count of nudges is logged at close"
done_testing
