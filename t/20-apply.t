#!/usr/bin/env bash
# Apply against a real PostgreSQL and librdkafka's mock broker: snapshot-like
# inserts, updates, deletes of present and missing rows, tombstones, per-key
# order, poison messages to the dead-letter topic with their headers.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer

customer_setup --topic cdcrouter.dlq:1 'apply = { dead_letter_topic = "cdcrouter.dlq"; };'

# 1. 3000 events over 150 keys: snapshot rows, updates, deletes + tombstones
python3 "$GEN" --n 3000 --keys 150 --snapshot 150 --deletes 0.1 --tombstones --expect "$T_TMP/expect1" >"$T_TMP/ev1"
n1=$(wc -l <"$T_TMP/ev1")
produce "$TOPIC" <"$T_TMP/ev1"
cdcr_start "$c"
wait_offset 60 t "$TOPIC" 0 "$n1" || true
is "$(stored_offset t $TOPIC 0)" "$n1" "all $n1 messages accounted for in the sink's offsets"
is "$(sink_customers)" "$(cat "$T_TMP/expect1")" "sink equals the expected final state (every column)"
is "$(sql -c 'SELECT count(*) FROM public.customer')" "$(wc -l <"$T_TMP/expect1")" "row count"

# 2. a delete of a row the sink never had, and a lone tombstone
printf '{"id":"00000000-0000-4000-8000-000000000001"}\t{"id":"00000000-0000-4000-8000-000000000001","email":"g@x","status":"s","updated_at":"2026-01-01T00:00:00.000000Z","__deleted":"true","__op":"d"}\n{"id":"00000000-0000-4000-8000-000000000001"}\t\n' | produce "$TOPIC"
n2=$((n1 + 2))
wait_offset 30 t "$TOPIC" 0 "$n2"; ok $? "deleting a missing row and a tombstone go through"
is "$(sink_customers)" "$(cat "$T_TMP/expect1")" "state unchanged by them"

# 3. poison: a CHECK violation, malformed JSON, a non-object, a missing id; good rows around them
good_id=00000000-0000-4000-8000-0000000000aa
{
  printf '{"id":"%s"}\t{"id":"%s","email":"before@x","status":"a","updated_at":"2026-02-01T00:00:00.000000Z","__deleted":"false"}\n' $good_id $good_id
  printf '{"id":"%s"}\t{"id":"%s","email":"no-at-sign","status":"a","updated_at":"2026-02-01T00:00:01.000000Z","__deleted":"false"}\n' $good_id $good_id
  printf 'k-bad-json\t{"id": "x", oops}\n'
  printf 'k-array\t[1,2,3]\n'
  printf 'k-no-id\t{"email":"n@x","status":"a","updated_at":"2026-02-01T00:00:00Z"}\n'
  printf '{"id":"not-a-uuid"}\t{"id":"not-a-uuid","email":"t@x","status":"a","updated_at":"2026-02-01T00:00:00Z"}\n'
  printf '{"id":"%s"}\t{"id":"%s","email":"after@x","status":"b","updated_at":"2026-02-01T00:00:02.000000Z","__deleted":"false"}\n' $good_id $good_id
} | produce "$TOPIC"
n3=$((n2 + 7))
wait_offset 30 t "$TOPIC" 0 "$n3"; ok $? "poison messages do not stop the stream"
is "$(sql -c "SELECT email FROM public.customer WHERE id = '$good_id'")" "after@x" "the good events around them applied in order"
dlq=$(consume_all cdcrouter.dlq -f '%k|%h|%s\n' 2>/dev/null)
is "$(grep -c . <<<"$dlq")" 5 "five messages in the dead-letter topic"; sed "s/^/#DLQ /" <<<"$dlq"
like "$dlq" "no-at-sign.*" "the CHECK violation is there"
like "$(grep no-at-sign <<<"$dlq")" "cdcrouter.error.sqlstate=23514" "with its SQLSTATE header"
like "$(grep no-at-sign <<<"$dlq")" "cdcrouter.source.topic=$TOPIC,cdcrouter.source.partition=0,cdcrouter.source.offset=$((n2 + 1))" "with its source position"
like "$(grep k-bad-json <<<"$dlq")" "cdcrouter.error.kind=invalid_json" "malformed JSON: kind invalid_json"
like "$(grep k-array <<<"$dlq")" "cdcrouter.error.kind=extract" "non-object value: kind extract"
like "$(grep k-no-id <<<"$dlq")" "cdcrouter.error.kind=required" "missing id: kind required"
like "$(grep not-a-uuid <<<"$dlq")" "cdcrouter.error.sqlstate=22P02" "type mismatch: SQLSTATE 22P02"
like "$(grep k-bad-json <<<"$dlq")" '\{"id": "x", oops\}$' "the original value is kept byte for byte"
log_has '"msg":"message failed, sent to the dead-letter topic"'; ok $? "a warning log line per failed message"
like "$(grep 'no-at-sign\|23514' "$T_TMP/cdcr.log" | head -1)" '"offset":'"$((n2 + 1))"'.*"outcome":"dlq".*"sqlstate":"23514"' "it names offset, outcome and SQLSTATE"
ok "$(cdcr_alive; echo $?)" "still running"

# 4. clean shutdown: SIGTERM exits 0 quickly, offsets committed to Kafka too
cdcr_stop
is "$CDCR_RC" 0 "SIGTERM exits 0"
log_has '"msg":"stopping"'; ok $? "logs its stop"
bad=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: assert isinstance(json.loads(l), dict)
    except Exception: print(l.rstrip()[:200])' "$T_TMP/cdcr.log")
is "$bad" "" "every line on stderr is a JSON object (librdkafka and PostgreSQL notices included)"
done_testing
