#!/usr/bin/env bash
# The dead-letter path never loses a message: an offset moves past a
# dead-lettered message only once the broker acknowledged its copy.
#   1. the dead-letter topic refuses produces for a while
#      (TOPIC_AUTHORIZATION_FAILED, a permanent error): the batch waits,
#      the failure is said once, nothing is committed past the message,
#      and the copy is delivered once the produces go through;
#   2. a message of 1.5 MB, above the producer's default message.max.bytes
#      (1,000,000), is dead-lettered byte for byte, without a crash loop;
#   3. the broker does not take the copy within message.timeout.ms: it
#      times out, is produced again, and the batch waits until it is in.
# Private PostgreSQL + mock broker (faults pushed through kmock's stdin).
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer DLQ=cdcrouter.dlq

customer_setup --topic "$DLQ:1" "apply = { dead_letter_topic = \"$DLQ\"; };"

dlq_count() { consume_all "$DLQ" -f '%o\n' 2>/dev/null | grep -c . || true; }
dlq_has() { [[ $(dlq_count) == "$1" ]]; }
said() { grep -c "\"msg\":\"$1" "$T_TMP/cdcr.log" || true; }
rows_of_3() { sink_customers | grep -F -f <(cut -d'|' -f1 "$T_TMP/expect.3") || true; }
poison() {   # poison <n>: a message the sink's CHECK refuses (the email has no @)
    printf '{"id":"00000000-0000-4000-8000-%012d"}\t{"id":"00000000-0000-4000-8000-%012d","email":"no-at-sign","status":"s","updated_at":"2026-03-01T00:00:00Z","__op":"c","__deleted":"false"}\n' "$1" "$1"
}

# 1. produces refused for a while; the stream is in Kafka before cdcrouter starts
python3 "$GEN" --seed 1 --n 100 --keys 40 --deletes 0 --expect "$T_TMP/expect.1" >"$T_TMP/ev.1"
{ head -n 50 "$T_TMP/ev.1"; poison 1; tail -n 50 "$T_TMP/ev.1"; } | produce "$TOPIC"
produced=101
kmock_cmd bperr 1 0 8 29        # the next 8 Produce requests: TOPIC_AUTHORIZATION_FAILED
cdcr_start "$c"
left() { kmock_cmd bcnt 1 0; (( KMOCK_REPLY <= $1 )); }
r=0; wait_until 60 "three refused dead-letter produces" left 5 || r=1; ok $r "1. the dead-letter topic refuses produces, and is asked again"
is "$(stored_offset t "$TOPIC" 0)" -1 "  nothing committed past the message (its batch waits)"
is "$(dlq_count)" 0 "  nothing in the dead-letter topic yet"
ok "$(cdcr_alive; echo $?)" "  still running"
like "$(grep '"msg":"dead-letter delivery failed' "$T_TMP/cdcr.log" | head -1)" '"offset":50,.*[Aa]uthori[sz]ation' \
    "  the error names the message and the broker's reason"
wait_offset 60 t "$TOPIC" 0 "$produced"; ok $? "  once produces go through, the batch commits"
is "$(dlq_count)" 1 "  the message is in the dead-letter topic once"
is "$(consume_all "$DLQ" -f '%s')" "$(poison 1 | cut -f2)" "  the copy is the message"
is "$(said 'dead-letter delivery failed')" 1 "  the failure was said once, not at every retry"
is "$(sink_customers)" "$(cat "$T_TMP/expect.1")" "  the other messages are applied"

# 2. a message larger than the producer's default message.max.bytes: a
# broken JSON value (an extract-time error) of 1.5 MB
python3 -c '
import sys
sys.stdout.write("{\"id\":\"00000000-0000-4000-8000-000000000002\"}\t{\"id\":\"00000000-0000-4000-8000-000000000002\",\"email\":\"" + "x" * 1500000 + "\n")' >"$T_TMP/big"
cut -f2- "$T_TMP/big" | head -c -1 >"$T_TMP/big.value"
produce "$TOPIC" -X message.max.bytes=4000000 <"$T_TMP/big"
produced=$((produced + 1))
wait_offset 60 t "$TOPIC" 0 "$produced"; ok $? "2. a 1.5 MB poison message is dealt with"
wait_until 30 "the big copy in the dead-letter topic" dlq_has 2; ok $? "  it is dead-lettered"
consume_all "$DLQ" -o 1 -c 1 -f '%s' -X fetch.message.max.bytes=4000000 >"$T_TMP/big.dlq"
cmp -s "$T_TMP/big.value" "$T_TMP/big.dlq"; ok $? "  byte for byte ($(wc -c <"$T_TMP/big.dlq") of $(wc -c <"$T_TMP/big.value") bytes)"
ok "$(cdcr_alive; echo $?)" "  still running, no crash loop"
cdcr_stop; is "$CDCR_RC" 0 "  clean exit"

# 3. the broker does not take the copy for longer than message.timeout.ms
# (1.5 s here): every Produce request gets NOT_ENOUGH_REPLICAS, a retriable
# error librdkafka retries until the copy times out; then cdcrouter produces
# it again, and again, until one goes through.
python3 "$GEN" --seed 3 --n 40 --keys 20 --deletes 0 --expect "$T_TMP/expect.3" >"$T_TMP/ev.3"
{ head -n 20 "$T_TMP/ev.3"; poison 3; tail -n 20 "$T_TMP/ev.3"; } | produce "$TOPIC"
produced=$((produced + 41)) poison_off=$((produced - 21))
write_conf "$c" "apply = { dead_letter_topic = \"$DLQ\"; };" \
    'kafka = { properties = [ "topic.metadata.refresh.interval.ms=1000", "session.timeout.ms=6000", "heartbeat.interval.ms=500", "message.timeout.ms=1500" ]; };'
kmock_cmd bperr 1 0 80 19       # the next 80 Produce requests: NOT_ENOUGH_REPLICAS (retriable)
cdcr_start "$c"
timed_out() { grep '"msg":"dead-letter delivery failed' "$T_TMP/cdcr.log" | grep -q "\"offset\":$poison_off,.*timed out"; }
wait_until 60 "the copy timed out" timed_out; ok $? "3. a copy the broker does not take in message.timeout.ms times out"
left() { kmock_cmd bcnt 1 0; (( KMOCK_REPLY <= $1 )); }
wait_until 60 "produced again past one time-out" left 50; ok $? "  and is produced again"
stored=$(stored_offset t "$TOPIC" 0)
ok $((stored <= poison_off ? 0 : 1)) "  nothing committed past the message meanwhile (stored $stored, message at $poison_off)"
is "$(dlq_count)" 2 "  not in the dead-letter topic yet"
wait_offset 90 t "$TOPIC" 0 "$produced"; ok $? "  once the broker takes it, the batch commits"
is "$(dlq_count)" 3 "  the message is in the dead-letter topic once"
is "$(consume_all "$DLQ" -o 2 -c 1 -f '%s')" "$(poison 3 | cut -f2)" "  the copy is the message"
is "$(rows_of_3)" "$(cat "$T_TMP/expect.3")" "  the other messages are applied"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
