#!/usr/bin/env bash
# Traces and logs in the real collector -> Jaeger, and the collector's logs
# file: one CONSUMER span per message with every attribute of issue 4 and the
# right values for known messages (upsert, delete, tombstone, long key);
# W3C traceparent continued (sampled), honoured when not sampled, ignored
# when invalid; the stderr JSON line's trace_id/span_id = the span in Jaeger
# = the OTLP log record's traceId/spanId.
source "$CDCR_SRCDIR/t/lib/setup.sh"
source "$CDCR_SRCDIR/t/lib/telemetry.sh"
TOPIC=cdc.public.customer

otel_up shared
LOG_LEVEL=debug customer_setup "$(otel_conf)"

# generated traffic with upserts, deletes and tombstones
python3 "$GEN" --n 200 --keys 40 --deletes 0.15 --tombstones --seed 40 >"$T_TMP/ev1"
n1=$(wc -l <"$T_TMP/ev1")
produce "$TOPIC" <"$T_TMP/ev1"
# known messages: the first upsert, delete and tombstone of the generated file
off_upsert=$(awk -F'\t' '$2 != "" && $2 !~ /"__deleted":"true"/ {print NR - 1; exit}' "$T_TMP/ev1")
off_delete=$(awk -F'\t' '$2 ~ /"__deleted":"true"/ {print NR - 1; exit}' "$T_TMP/ev1")
off_tomb=$(awk -F'\t' '$2 == "" {print NR - 1; exit}' "$T_TMP/ev1")
key_upsert=$(sed -n "$((off_upsert + 1))p" "$T_TMP/ev1" | cut -f1)
key_delete=$(sed -n "$((off_delete + 1))p" "$T_TMP/ev1" | cut -f1)

# then four messages of our own, each with its own headers
row() { printf '{"id":"%s"}\t{"id":"%s","email":"%s","status":"a","updated_at":"2026-05-01T00:00:00Z","__deleted":"false"}\n' "$1" "$1" "$2"; }
TP1_TRACE=$(hex_id 16) TP1_SPAN=$(hex_id 8)          # sampled parent
TP2_TRACE=$(hex_id 16) TP2_SPAN=$(hex_id 8)          # parent not sampled
TP3_TRACE=$(hex_id 16 | tr a-f A-F)                    # invalid: uppercase hex
off_tp1=$n1 off_tp2=$((n1 + 1)) off_tp3=$((n1 + 2)) off_long=$((n1 + 3))
row 00000000-0000-4000-8000-000000000401 tp1@x | produce "$TOPIC" -H "traceparent=00-$TP1_TRACE-$TP1_SPAN-01"
row 00000000-0000-4000-8000-000000000402 tp2@x | produce "$TOPIC" -H "traceparent=00-$TP2_TRACE-$TP2_SPAN-00"
row 00000000-0000-4000-8000-000000000403 tp3@x | produce "$TOPIC" -H "traceparent=00-$TP3_TRACE-$(hex_id 8)-01"
long_key="{\"id\":\"00000000-0000-4000-8000-000000000404\",\"pad\":\"$(printf 'k%.0s' {1..80})\"}"
printf '%s\t{"id":"00000000-0000-4000-8000-000000000404","email":"long@x","status":"a","updated_at":"2026-05-01T00:00:00Z","__deleted":"false"}\n' "$long_key" |
    produce "$TOPIC"
N=$((n1 + 4))

cdcr_start "$c"
check "all $N messages applied" wait_offset 60 t "$TOPIC" 0 "$N"

# ---- spans in Jaeger
check "spans reach Jaeger" wait_until 30 "span of the last message in Jaeger" has_span_at "$TOPIC" "$off_long"
count_is() { [[ $(run_span_count) == "$1" ]]; }
wait_until 20 "$((N - 1)) spans" count_is $((N - 1)) || true
is "$(run_span_count)" $((N - 1)) "one span per message in Jaeger, except the one whose parent is not sampled"

# span_check <offset> <expected tags as a jq object> <name>: the span has
# these tags with these JSON values (types included: ints are int64 tags).
span_check() {
    local off=$1 exp=$2 name=$3 span
    span=$(span_at "$TOPIC" "$off")
    if [[ $(grep -c . <<<"$span") != 1 ]]; then
        ok 1 "$name"; diag "  $(grep -c . <<<"$span") spans for offset $off"; return
    fi
    local bad
    bad=$(jq -nr --argjson o "$off" --argjson span "$span" "($exp) | to_entries[] | . as \$x
            | select(\$x.value != \$span.tags[\$x.key])
            | \"\(\$x.key): got \(\$span.tags[\$x.key] | tojson), want \(\$x.value | tojson)\"")
    if [[ -z $bad ]]; then ok 0 "$name"; else ok 1 "$name"; sed 's/^/#   /' <<<"$bad"; fi
}
COMMON='{ "messaging.system": "kafka", "messaging.destination.name": "cdc.public.customer",
  "messaging.kafka.consumer.group": "t", "messaging.consumer.group.name": "t",
  "messaging.kafka.partition": 0, "messaging.destination.partition.id": "0",
  "messaging.kafka.message.offset": $o, "messaging.kafka.offset": $o,
  "messaging.operation": "process", "messaging.operation.type": "process", "messaging.operation.name": "process",
  "db.system.name": "postgresql", "db.collection.name": "public.customer", "cdcrouter.route": "customer",
  "span.kind": "consumer" }'
span_check "$off_upsert" "$COMMON + {\"db.operation\": \"upsert\", \"db.operation.name\": \"upsert\",
    \"messaging.kafka.message.key\": $(jq -Rn --arg k "$key_upsert" '$k'), \"cdcrouter.outcome\": \"applied\"}" \
    "upsert at offset $off_upsert: every required attribute, right values and types"
span_check "$off_delete" "$COMMON + {\"db.operation\": \"delete\", \"db.operation.name\": \"delete\",
    \"messaging.kafka.message.key\": $(jq -Rn --arg k "$key_delete" '$k'), \"cdcrouter.outcome\": \"applied\"}" \
    "delete at offset $off_delete: db.operation=delete"
span_check "$off_tomb" "$COMMON + {\"db.operation\": \"ignore\", \"db.operation.name\": \"ignore\",
    \"messaging.kafka.message.tombstone\": true, \"cdcrouter.outcome\": \"ignored\"}" \
    "tombstone at offset $off_tomb: db.operation=ignore, tombstone=true"
span_check "$off_long" "$COMMON + {\"db.operation\": \"upsert\", \"messaging.kafka.message.key\": $(jq -Rn --arg k "${long_key:0:64}" '$k')}" \
    "a ${#long_key}-byte key is truncated to its first 64 bytes"

s=$(span_at "$TOPIC" "$off_upsert")
is "$(jq -r .name <<<"$s")" "process cdc.public.customer" "span name 'process <topic>'"
is "$(jq -c '[.service, .process["service.version"], .process["service.instance.id"], .process["host.name"]]' <<<"$s")" \
   "[\"cdcrouter\",\"$PKG_VERSION\",\"$RUN_ID\",\"$(hostname)\"]" "resource: service.name, service.version, service.instance.id, host.name"
is "$(jq -c '[(.refs | length), (.tags | has("otel.status_code")), (.events | length)]' <<<"$s")" "[0,false,0]" \
   "a message without traceparent is a root span, status unset, no events"
now_us=$(( ${EPOCHREALTIME/./} ))
ok "$(jq -e --argjson now "$now_us" '.duration > 0 and .duration < 30000000 and .start > $now - 600000000 and .start <= $now' <<<"$s" >/dev/null; echo $?)" \
   "start time is recent and the duration plausible ($(jq .duration <<<"$s") us)"

# ---- traceparent
s=$(span_at "$TOPIC" "$off_tp1")
is "$(jq -r .trace <<<"$s")" "$TP1_TRACE" "traceparent (sampled): the span is in the header's trace"
is "$(jq -c '[.refs[] | [.refType, .traceID, .spanID]]' <<<"$s")" "[[\"CHILD_OF\",\"$TP1_TRACE\",\"$TP1_SPAN\"]]" \
   "its parent span id is the header's"
is "$(jaeger_trace "$TP1_TRACE" | jq -c '[.data[0].spans[] | .spanID]')" "[\"$(jq -r .id <<<"$s")\"]" \
   "GET /api/traces/<header trace id> returns it"
tp1_log=$(log_at "message processed" "$off_tp1")
is "$(jq -r '.trace_id + " " + .span_id' <<<"$tp1_log")" "$TP1_TRACE $(jq -r .id <<<"$s")" \
   "its log line carries the header's trace id and the span's id"

is "$(span_at "$TOPIC" "$off_tp2")" "" "traceparent with flags 00: parent-based sampling, no span"
is "$(log_at "message processed" "$off_tp2" | jq -r .trace_id)" "$TP2_TRACE" "... yet its log line continues the header's trace id"

s=$(span_at "$TOPIC" "$off_tp3")
tp3_lc=$(tr A-F a-f <<<"$TP3_TRACE")
ok "$([[ -n $s && $(jq -r .trace <<<"$s") != "$tp3_lc" && $(jq '.refs | length' <<<"$s") == 0 ]]; echo $?)" \
   "an invalid traceparent (uppercase hex) starts a new trace"

# ---- log line -> Jaeger -> OTLP log record
lines=$(jq -cR 'fromjson? | select(.msg == "message processed")' "$T_TMP/cdcr.log")
is "$(grep -c . <<<"$lines")" "$N" "one debug line per message"
is "$(jq -r 'select((.trace_id | test("^[0-9a-f]{32}$") | not) or (.span_id | test("^[0-9a-f]{16}$") | not))' <<<"$lines")" "" \
   "every one carries a trace_id and a span_id"
is "$(jq -r .trace_id <<<"$lines" | sort | uniq -d)" "" "trace ids are distinct (a trace per message)"

pick=$((off_upsert + 17))
line=$(log_at "message processed" "$pick")
tid=$(jq -r .trace_id <<<"$line") sid=$(jq -r .span_id <<<"$line")
diag "offset $pick: trace_id $tid span_id $sid"
tr_json=$(jaeger_trace "$tid")
is "$(jq -c "[$JQ_SPANS | [.id, .tags[\"messaging.kafka.offset\"], .process[\"service.instance.id\"]]]" <<<"$tr_json")" \
   "[[\"$sid\",$pick,\"$RUN_ID\"]]" "the trace_id of a log line is a trace in Jaeger: that message's span"
wait_until 20 "OTLP log record with trace $tid" has_otlp_log "$tid" || true
rec=$(otlp_logs_of "$tid")
is "$(jq -c '[.traceId, .spanId, .severityText, .severityNumber, .body.stringValue,
              (.attributes | map({(.key): .value.stringValue}) | add | .offset, .topic, .route, .op, .outcome)]' <<<"$rec")" \
   "[\"$tid\",\"$sid\",\"DEBUG\",5,\"message processed\",\"$pick\",\"$TOPIC\",\"customer\",\"upsert\",\"applied\"]" \
   "the collector's logs file has the same record with the same trace id and span id"
is "$(jq -r '.attributes[] | select(.key == "key") | .value.stringValue' <<<"$rec")" \
   "$(jq -r .key <<<"$line")" "the OTLP record's key attribute is the message key, as on stderr"
wait_until 20 "OTLP log of the traceparent message" has_otlp_log "$TP1_TRACE" || true
is "$(otlp_logs_of "$TP1_TRACE" | jq -r '.spanId + " " + (.flags|tostring)')" "$(jq -r .span_id <<<"$tp1_log") 1" \
   "the traceparent message's OTLP log record too (flags: sampled)"

# ---- shutdown: the final flush delivers the last records
cdcr_stop
is "$CDCR_RC" 0 "SIGTERM exits 0"
stopped_rec() {
    jq -ce --arg run "$RUN_ID" '.resourceLogs[] | select(any(.resource.attributes[]; .value.stringValue == $run))
        | .scopeLogs[].logRecords[] | select(.body.stringValue == "stopped")' "$OTELCOL_LOGS_FILE" >/dev/null
}
check "the last log record ('stopped') was flushed at exit" wait_until 10 "the 'stopped' record" stopped_rec
ok "$(grep -q '"otlp export failed"' "$T_TMP/cdcr.log"; echo $((!$?)))" "no export failure logged"
done_testing
