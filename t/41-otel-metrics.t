#!/usr/bin/env bash
# Metrics in the real collector -> Prometheus, with exact or plausible values:
# messages processed by outcome (= events produced), rows written and events
# reduced by operation,
# batch size, processing latency, freshness, consumer lag (rises under a slow
# sink, back to 0 after the drain), reload generation and failed reloads
# (SIGHUP), telemetry dropped, the semantic-convention metrics; and the PromQL
# queries given in the README.
source "$CDCR_SRCDIR/t/lib/setup.sh"
source "$CDCR_SRCDIR/t/lib/telemetry.sh"
TOPIC=cdc.public.customer SLOW=cdc.public.slow

otel_up shared
# public.slow: 2 ms per row, so that a backlog takes seconds to drain
BATCH_SIZE=100 customer_setup --topic "$SLOW:1" --sql "CREATE TABLE public.slow (id int)" \
    --sql 'CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$' \
    --sql "CREATE TRIGGER slow BEFORE INSERT ON public.slow FOR EACH ROW EXECUTE FUNCTION slow_down()" \
    "$(otel_conf)"
cat >"$c/routes/slow.route" <<ROUTE
name = "slow";
topic = "$SLOW";
table = "public.slow";
params = { id = ".id"; };
op = "\"upsert\"";
upsert = "INSERT INTO public.slow (id) VALUES (:id::int)";
ROUTE

python3 "$GEN" --n 1000 --keys 200 --deletes 0.1 --tombstones --seed 41 >"$T_TMP/ev1"
N=$(wc -l <"$T_TMP/ev1")
D=$(grep -c '"__deleted":"true"' "$T_TMP/ev1")
T=$(awk -F'\t' '$2 == ""' "$T_TMP/ev1" | grep -c .)
U=$((N - D - T))
S=$(grep -c '"__source_ts_ms"' "$T_TMP/ev1")
diag "$N events: $U upserts, $D deletes, $T tombstones"
produce "$TOPIC" <"$T_TMP/ev1"
cdcr_start "$c"
check "all $N events applied" wait_offset 60 t "$TOPIC" 0 "$N"

# ---- counts
prom_wait_is 20 "sum(cdcrouter_messages_processed_total{$SEL})" "$N" "cdcrouter_messages_processed_total: sum = $N events produced"
is "$(prom "cdcrouter_messages_processed_total{$SEL}" | jq -c 'map({(.metric.outcome): .value[1]}) | add')" \
   "{\"applied\":\"$((U + D))\",\"ignored\":\"$T\"}" "by outcome: applied $((U + D)), ignored $T (the tombstones)"
is "$(prom "cdcrouter_messages_processed_total{$SEL}" | jq -r '[.[].metric | .topic + "/" + .route] | unique | join(" ")')" \
   "$TOPIC/customer" "labelled with topic and route"
# rows written, and events that took effect through a later event of their
# key in the same batch (reduced, not written): together every event
wr() { local v; v=$(prom_val "sum(cdcrouter_db_writes_total{$SEL,operation=\"$1\"}) or vector(0)"); echo "${v:-0}"; }
rd() { local v; v=$(prom_val "sum(cdcrouter_events_reduced_total{$SEL,operation=\"$1\"}) or vector(0)"); echo "${v:-0}"; }
prom_wait_is 20 "(sum(cdcrouter_db_writes_total{$SEL}) or vector(0)) + (sum(cdcrouter_events_reduced_total{$SEL}) or vector(0))" "$((U + D))" \
   "cdcrouter_db_writes_total + cdcrouter_events_reduced_total = $((U + D)) events"
is "$(( $(wr upsert) + $(rd upsert) ))|$(( $(wr delete) + $(rd delete) ))" "$U|$D" "by operation: upsert $U, delete $D"
ok "$(( $(rd upsert) + $(rd delete) > 0 && $(wr upsert) + $(wr delete) < U + D ? 0 : 1 ))" \
   "rows written ($(( $(wr upsert) + $(wr delete) ))) are fewer than events: $(( $(rd upsert) + $(rd delete) )) reduced in batches of 100 over 200 keys"
is "$(prom_val "sum(messaging_client_consumed_messages_total{$SEL,messaging_system=\"kafka\",messaging_operation_name=\"process\",messaging_destination_name=\"$TOPIC\",messaging_consumer_group_name=\"t\"})")" \
   "$N" "semconv messaging_client_consumed_messages_total: $N, with its semconv labels"
is "$(prom_val "sum(messaging_process_duration_seconds_count{$SEL})")" "$N" "semconv messaging_process_duration_seconds: $N observations"
p99=$(prom_val "histogram_quantile(0.99, sum by (le) (messaging_process_duration_seconds_bucket{$SEL}))")
ok "$(awk -v v="$p99" 'BEGIN { exit !(v > 0 && v <= 10) }'; echo $?)" "semconv duration p99 plausible: ${p99}s"

is "$(prom_val "sum(cdcrouter_process_duration_seconds_count{$SEL})")" "$N" "cdcrouter_process_duration_seconds: $N observations"
p95=$(prom_val "histogram_quantile(0.95, sum by (le) (cdcrouter_process_duration_seconds_bucket{$SEL}))")
avg=$(prom_val "sum(cdcrouter_process_duration_seconds_sum{$SEL}) / sum(cdcrouter_process_duration_seconds_count{$SEL})")
ok "$(awk -v p="$p95" -v a="$avg" 'BEGIN { exit !(p > 0 && p <= 10 && a > 0 && a <= p * 2) }'; echo $?)" \
   "latency plausible: p95 ${p95}s, mean ${avg}s"

bcount=$(prom_val "cdcrouter_batch_size_count{$SEL}")
is "$(prom_val "cdcrouter_batch_size_sum{$SEL}")" "$N" "cdcrouter_batch_size: the batches hold $N messages in all"
ok "$([[ $bcount -ge $(( (N + 99) / 100 )) && $bcount -le $N ]]; echo $?)" "$bcount batches, at least $(( (N + 99) / 100 )) (batch_size = 100)"
is "$(prom_val "cdcrouter_batch_size_bucket{$SEL,le=\"100\"}")" "$bcount" "no batch over batch_size"

# ---- freshness: F events whose source commit was 2 s before they were produced
F=20 src=$(( $(now_ms) - 2000 ))
for i in $(seq 1 $F); do
    id=$(printf '00000000-0000-4000-8000-%012d' $((900 + i)))
    printf '{"id":"%s"}\t{"id":"%s","email":"f%d@x","status":"a","updated_at":"2026-06-01T00:00:00Z","__deleted":"false","__source_ts_ms":%d}\n' \
        "$id" "$id" "$i" "$src"
done | produce "$TOPIC"
check "$F fresh events applied" wait_offset 30 t "$TOPIC" 0 $((N + F))
prom_wait_is 20 "cdcrouter_freshness_seconds_count{$SEL,topic=\"$TOPIC\"}" $((S + F)) \
    "cdcrouter_freshness_seconds: an observation per event with __source_ts_ms ($((S + F)))"
is "$(prom_val "cdcrouter_freshness_seconds_bucket{$SEL,topic=\"$TOPIC\",le=\"1\"}") $(prom_val "cdcrouter_freshness_seconds_bucket{$SEL,topic=\"$TOPIC\",le=\"30\"}")" \
   "0 $F" "the fresh ones are between 1 s and 30 s old at commit (2 s + delivery), the generated ones (2026-01-01) older"

# ---- lag: a backlog on the slow table, then the drain
M=2500
seq 1 $M | awk '{ printf "%d\t{\"id\":%d}\n", $1, $1 }' | produce "$SLOW"
lag_q="cdcrouter_consumer_lag{$SEL,topic=\"$SLOW\",partition=\"0\"}"
check "cdcrouter_consumer_lag rises while the backlog drains" wait_until 30 "lag > 0" prom_true "$lag_q > 0"
max=$(prom_val "max_over_time(${lag_q}[2m])")
ok "$([[ -n $max && $max -gt 0 && $max -le $M ]]; echo $?)" "peak lag $max, between 1 and the backlog ($M)"
check "backlog of $M applied" wait_offset 60 t "$SLOW" 0 "$M"
prom_wait_is 20 "$lag_q" 0 "lag returns to 0 after the drain"
is "$(prom_val "cdcrouter_consumer_lag{$SEL,topic=\"$TOPIC\",partition=\"0\"}")" 0 "and is 0 on the other topic"
prom_wait_is 20 "sum(cdcrouter_messages_processed_total{$SEL,topic=\"$SLOW\",route=\"slow\",outcome=\"applied\"})" "$M" \
    "the slow topic's messages are counted under their route"
rate=$(prom_val "sum(rate(messaging_client_consumed_messages_total{$SEL}[1m]))")
ok "$(awk -v r="$rate" 'BEGIN { exit !(r > 0) }'; echo $?)" "throughput as rate() of the counter: $rate msg/s"

# ---- reloads
prom_wait_is 20 "cdcrouter_reload_generation{$SEL}" 1 "cdcrouter_reload_generation: 1 at start"
is "$(prom_val "cdcrouter_reload_failures_total{$SEL}")" 0 "cdcrouter_reload_failures_total: 0"
kill -HUP "$CDCR_PID"
wait_until 30 "reload" log_has '"msg":"configuration reloaded","generation":2' || true
prom_wait_is 20 "cdcrouter_reload_generation{$SEL}" 2 "SIGHUP: generation 2"
printf 'topic = "x";\nparams = { id = ".id |"; };\nupsert = "SELECT 1";\n' >"$c/routes/zz-broken.route"
kill -HUP "$CDCR_PID"
wait_until 30 "refused" log_has '"msg":"reload failed, the running configuration stays"' || true
prom_wait_is 20 "cdcrouter_reload_failures_total{$SEL}" 1 "a refused reload: cdcrouter_reload_failures_total 1"
is "$(prom_val "cdcrouter_reload_generation{$SEL}")" 2 "... generation stays 2"
rm "$c/routes/zz-broken.route"
kill -HUP "$CDCR_PID"
prom_wait_is 20 "cdcrouter_reload_generation{$SEL}" 3 "fixed: generation 3"
is "$(prom_val "cdcrouter_reload_failures_total{$SEL}")" 1 "failures stay 1"

# ---- telemetry about telemetry, resource
is "$(prom "cdcrouter_telemetry_dropped_total{$SEL}" | jq -c '[.[] | .metric.signal + "/" + .metric.reason + "=" + .value[1]] | sort')" \
   '["logs/export_failed=0","logs/queue_full=0","metrics/export_failed=0","metrics/queue_full=0","traces/export_failed=0","traces/queue_full=0"]' \
   "cdcrouter_telemetry_dropped_total: 0 for every signal and reason"
is "$(prom "target_info{$SEL}" | jq -r '.[0].metric | .service_version + " " + .host_name')" "$PKG_VERSION $(hostname)" \
   "target_info carries service.version and host.name"

# ---- the README's example queries answer (with this run's instance)
readme_q=(
  "sum(rate(messaging_client_consumed_messages_total{job=\"cdcrouter\"}[1m]))"
  "sum by (topic, outcome) (rate(cdcrouter_messages_processed_total{job=\"cdcrouter\"}[5m]))"
  "histogram_quantile(0.95, sum by (le) (rate(cdcrouter_process_duration_seconds_bucket{job=\"cdcrouter\"}[5m])))"
  "histogram_quantile(0.99, sum by (le) (rate(messaging_process_duration_seconds_bucket{job=\"cdcrouter\"}[5m])))"
  "max by (topic, partition) (cdcrouter_consumer_lag{job=\"cdcrouter\"})"
  "histogram_quantile(0.5, sum by (le) (rate(cdcrouter_freshness_seconds_bucket{job=\"cdcrouter\"}[5m])))"
)
for q in "${readme_q[@]}"; do
    qi=${q//job=\"cdcrouter\"/$SEL}
    r=$(prom "$qi")
    ok "$(jq -e 'length > 0 and all(.[]; .value[1] | test("^[0-9.e+-]+$"))' <<<"$r" >/dev/null; echo $?)" "README query answers: $q"
    diag "  -> $(jq -c 'map(.value[1])' <<<"$r")"
done
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
