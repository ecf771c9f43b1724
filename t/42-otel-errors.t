#!/usr/bin/env bash
# Forced errors in the real collector, Jaeger and Prometheus: a sink CHECK
# violation (email without '@') and malformed JSON give ERROR spans with an
# exception event, increments of the error counters, and failure log lines
# (stderr and OTLP) carrying the span's trace id. Then the same failure under
# on_error = stop.
source "$CDCR_SRCDIR/t/lib/setup.sh"
source "$CDCR_SRCDIR/t/lib/telemetry.sh"
TOPIC=cdc.public.customer

otel_up shared
customer_setup "$(otel_conf)"      # on_error: skip (no dead-letter topic)

python3 "$GEN" --n 50 --keys 20 --seed 42 >"$T_TMP/ev1"
produce "$TOPIC" <"$T_TMP/ev1"
cdcr_start "$c"
check "50 good events applied" wait_offset 60 t "$TOPIC" 0 50
prom_wait_is 20 "sum(cdcrouter_messages_processed_total{$SEL})" 50 "Prometheus counts them"
is "$(prom_val "sum(cdcrouter_errors_total{$SEL})")" 0 "the error series exist at 0 before any error"
is "$(prom_val "count(cdcrouter_errors_total{$SEL})")" 6 "one per error kind (so rate() and increase() see a first error)"

# offset 50: CHECK violation; 51: malformed JSON; 52: a good one (another id:
# a later event of the same id would supersede the bad one in the batch)
bad_id=00000000-0000-4000-8000-0000000000ee good_id=00000000-0000-4000-8000-0000000000ed
{
  printf '{"id":"%s"}\t{"id":"%s","email":"no-at-sign","status":"a","updated_at":"2026-02-01T00:00:01Z","__deleted":"false"}\n' $bad_id $bad_id
  printf 'k-bad-json\t{"id": "x", oops}\n'
  printf '{"id":"%s"}\t{"id":"%s","email":"ok@x","status":"b","updated_at":"2026-02-01T00:00:02Z","__deleted":"false"}\n' $good_id $good_id
} | produce "$TOPIC"
check "the stream goes on past both" wait_offset 30 t "$TOPIC" 0 53
is "$(sql -c "SELECT string_agg(email, ',') FROM public.customer WHERE id IN ('$bad_id', '$good_id')")" "ok@x" "the good event after them applied, the bad one not"

# ---- ERROR spans
check "spans in Jaeger" wait_until 30 "span of offset 52" has_span_at "$TOPIC" 52
s_sql=$(span_at "$TOPIC" 50) s_json=$(span_at "$TOPIC" 51) s_ok=$(span_at "$TOPIC" 52)
is "$(jq -c '.tags | [.error, .["otel.status_code"], .["error.type"], .["db.response.status_code"], .["cdcrouter.outcome"], .["cdcrouter.route"]]' <<<"$s_sql")" \
   '[true,"ERROR","sql","23514","skipped","customer"]' "CHECK violation: status ERROR, error.type sql, SQLSTATE 23514, outcome skipped"
like "$(jq -r '.tags["otel.status_description"]' <<<"$s_sql")" 'violates check constraint "customer_email_check"' "the status message is PostgreSQL's reason"
is "$(jq -c '[.events[] | [.event, .["exception.type"], .["db.response.status_code"], (.["exception.message"] | test("check constraint"))]]' <<<"$s_sql")" \
   '[["exception","sql","23514",true]]' "one exception event with the SQLSTATE and the reason"
is "$(jq -c '.tags | [.error, .["otel.status_code"], .["error.type"], .["cdcrouter.outcome"], .["db.operation"]]' <<<"$s_json")" \
   '[true,"ERROR","invalid_json","skipped",null]' "malformed JSON: status ERROR, error.type invalid_json, no db.operation"
is "$(jq -c '[.events[] | [.event, .["exception.type"]]]' <<<"$s_json")" '[["exception","invalid_json"]]' "... with its exception event"
is "$(jq -c '.tags | [.error, .["otel.status_code"], .["error.type"], .["db.operation"]]' <<<"$s_ok")" '[null,null,null,"upsert"]' \
   "the next message's span is not an error"

# ---- error counters
prom_wait_is 20 "sum(cdcrouter_messages_processed_total{$SEL})" 53 "processed counter: 53"
is "$(prom_val "cdcrouter_errors_total{$SEL,kind=\"sql\"}")" 1 "cdcrouter_errors_total{kind=\"sql\"} went from 0 to 1"
is "$(prom_val "cdcrouter_errors_total{$SEL,kind=\"invalid_json\"}")" 1 "cdcrouter_errors_total{kind=\"invalid_json\"}: 1"
is "$(prom_val "sum(cdcrouter_messages_processed_total{$SEL,outcome=\"skipped\"})")" 2 "processed{outcome=\"skipped\"}: 2"
is "$(prom_val "sum by (error_type) (messaging_client_consumed_messages_total{$SEL,error_type=\"sql\"})")" 1 \
   "semconv: messaging_client_consumed_messages_total{error_type=\"sql\"}: 1"
is "$(prom_val "sum(messaging_process_duration_seconds_count{$SEL,error_type=\"invalid_json\"})")" 1 \
   "semconv: messaging_process_duration_seconds{error_type=\"invalid_json\"}: 1 observation"

# a second CHECK violation once the first is in Prometheus: rate()/increase()
# see it (the README's error query; a series' first sample is its start, so
# the increment that creates it is not an increase)
bad3=00000000-0000-4000-8000-0000000000f3
printf '{"id":"%s"}\t{"id":"%s","email":"again-no-at","status":"a","updated_at":"2026-02-01T00:00:04Z","__deleted":"false"}\n' $bad3 $bad3 |
    produce "$TOPIC"
check "a second CHECK violation skipped" wait_offset 30 t "$TOPIC" 0 54
prom_wait_is 20 "cdcrouter_errors_total{$SEL,kind=\"sql\"}" 2 "cdcrouter_errors_total{kind=\"sql\"}: 2"
inc=$(prom_val "sum by (kind) (increase(cdcrouter_errors_total{$SEL,kind=\"sql\"}[10m]))")
ok "$(awk -v v="$inc" 'BEGIN { exit !(v >= 1) }'; echo $?)" "README query sum by (kind) (increase(cdcrouter_errors_total[10m])) sees it: $inc"
err_offsets() { jaeger_search "{\"service.instance.id\":\"$RUN_ID\",\"error.type\":\"sql\"}" | jq -c "[$JQ_SPANS | .tags[\"messaging.kafka.offset\"]] | sort"; }
wait_until 20 "second error span" has_span_at "$TOPIC" 53 || true
is "$(err_offsets)" "[50,53]" "Jaeger finds the error spans by tag: tags={\"error.type\":\"sql\"} (the README's search)"

# ---- failure log lines, stderr and OTLP, with the span's trace id
for pair in "50 sql" "51 invalid_json"; do
    set -- $pair
    span=$(span_at "$TOPIC" "$1")
    l=$(log_at "message failed, skipped" "$1")
    is "$(jq -c '[.level, .error_kind, .outcome, .trace_id, .span_id]' <<<"$l")" \
       "[\"warn\",\"$2\",\"skipped\",$(jq -c '.trace, .id' <<<"$span" | paste -sd,)]" \
       "offset $1: failure log line ($2) with the ERROR span's trace_id and span_id"
    tid=$(jq -r .trace <<<"$span")
    wait_until 20 "OTLP record of $tid" has_otlp_log "$tid" || true
    is "$(otlp_logs_of "$tid" | jq -c '[.severityText, .body.stringValue, .spanId,
         (.attributes | map({(.key): .value.stringValue}) | add | .error_kind)]')" \
       "[\"WARN\",\"message failed, skipped\",$(jq -c .id <<<"$span"),\"$2\"]" "... and as an OTLP log record with that trace id"
done
like "$(log_at "message failed, skipped" 50)" '"sqlstate":"23514"' "the log line names the SQLSTATE"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"

# ---- the same failure under on_error = stop: the process exits 2, and the
# failing message's telemetry should still say why (new instance id: its
# counters start at zero).
RUN_ID=$RUN_ID-stop
SEL="job=\"cdcrouter\",instance=\"$RUN_ID\""
write_conf "$c" "$(otel_conf)" 'apply = { on_error = "stop"; };'
bad2=00000000-0000-4000-8000-0000000000ef
printf '{"id":"%s"}\t{"id":"%s","email":"still-no-at","status":"a","updated_at":"2026-02-01T00:00:03Z","__deleted":"false"}\n' $bad2 $bad2 |
    produce "$TOPIC"
cdcr_start "$c"
wait_until 60 "exit" bash -c "! kill -0 $CDCR_PID" || true; cdcr_wait
is "$CDCR_RC" 2 "on_error = stop: exit status 2"
l=$(jq -cR 'fromjson? | select(.level == "error" and .offset == 54)' "$T_TMP/cdcr.log" | tail -n 1)
tid=$(jq -r .trace_id <<<"$l")
like "$l" '"msg":"message failed, policy stop[^"]*".*"sqlstate":"23514".*"trace_id":"[0-9a-f]{32}","span_id":"[0-9a-f]{16}"' \
     "an error-level log line with SQLSTATE, trace_id and span_id"
wait_until 20 "OTLP record of $tid" has_otlp_log "$tid" || true
is "$(otlp_logs_of "$tid" | jq -r '.severityText + " " + .spanId')" "ERROR $(jq -r .span_id <<<"$l")" \
   "the collector got it as an ERROR record with that trace id (flushed at exit)"
prom_wait_is 20 "cdcrouter_reload_generation{$SEL}" 1 "its metrics reached Prometheus (final export at exit)"
# The final flush sends spans before logs and metrics: both arrived, so a
# span would have too.
has_trace() { [[ $(jaeger_trace "$1" | jq '[.data[]?.spans[]?] | length') -gt 0 ]]; }
wait_until 3 "trace $tid in Jaeger" has_trace "$tid" || true
# The message that stops the process is reported before it exits.
is "$(jaeger_trace "$tid" | jq -c "[$JQ_SPANS | .tags[\"otel.status_code\"], .tags[\"messaging.kafka.offset\"]]")" \
   '["ERROR",54]' "the error log line's trace_id is an ERROR span in Jaeger"
prom_wait_is 20 "cdcrouter_errors_total{$SEL,kind=\"sql\"}" 1 "the error counter counts it"
done_testing
