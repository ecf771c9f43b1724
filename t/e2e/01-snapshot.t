#!/usr/bin/env bash
# e2e 1. Snapshot, then streaming.  The stack's connector (cdc-customer) took
# its snapshot long ago, so this test registers a second Debezium connector
# of its own from the repo's docker/connect/customer-connector.json, with
# overrides only for what must be unique: name e2e-snap-<run>, topic.prefix
# e2esnap<run> (topic e2esnap<run>.public.customer), slot and publication
# e2e_snap_<run>; slot.drop.on.stop=true and no heartbeats.  Every row of
# public.customer exists before it is registered, so each must arrive
# exactly once as a snapshot record (op r); changes made afterwards must
# arrive as streaming records (c/u/d) after the snapshot.  cdcrouter runs
# from before the topic exists.  The exit trap deletes the connector (and
# its Connect offsets), the slot, the publication and the topic.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t1-$E2E_RUN
run=${E2E_RUN//-/_}
name=e2e-snap-$E2E_RUN prefix=e2esnap$run slot=e2e_snap_$run
topic=$prefix.public.customer

connector_stopped() { [[ $(connector_state "$1") == STOPPED* ]]; }
slot_idle() { [[ $(admin_sql app -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1' AND active") == 0 ]]; }
connector_gone() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$E2E_CONNECT_URL/connectors/$1") == 404 ]]; }
remove_connector() {   # remove_connector <name> <slot>: connector, its offsets, its slot and publication
    curl -sf -X PUT "$E2E_CONNECT_URL/connectors/$1/stop" >/dev/null || true
    wait_until 30 "$1 stopped" connector_stopped "$1" || true
    curl -sf -X DELETE "$E2E_CONNECT_URL/connectors/$1/offsets" >/dev/null || true
    curl -sf -X DELETE "$E2E_CONNECT_URL/connectors/$1" >/dev/null || true
    wait_until 30 "$1 deleted" connector_gone "$1" || true
    wait_until 30 "slot $2 released" slot_idle "$2" || true
    admin_sql app -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$2'" \
                  -c "DROP PUBLICATION IF EXISTS $2" >/dev/null
}
delete_topic() {
    java -Xmx256m -Dlog4j2.configurationFile="$E2E_KAFKA_TOOLS_LOG4J" -cp "$E2E_KAFKA_LIB/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$E2E_BROKERS" --delete --if-exists --topic "$1"
}

# Leftovers of an aborted earlier run
for c in $(curl -sf "$E2E_CONNECT_URL/connectors" | jq -r '.[] | select(startswith("e2e-snap-"))'); do
    diag "removing leftover connector $c"; remove_connector "$c" "$(echo "e2e_snap_${c#e2e-snap-}" | tr - _)"
done
for s in $(admin_sql app -c "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'e2e\_snap\_%' AND NOT active"); do
    diag "dropping leftover slot $s"; admin_sql app -c "SELECT pg_drop_replication_slot('$s')" -c "DROP PUBLICATION IF EXISTS $s" >/dev/null
done

# Rows that exist before the connector: 200 new ones on top of what the table holds
src_sql -c "INSERT INTO public.customer (id, email, status, updated_at)
              SELECT md5('$tag-' || g)::uuid, 'pre' || g || '@e2e.test', 'pre', clock_timestamp() FROM generate_series(1, 200) g"
e2e_marker   # the marker row exists too
e2e_pipeline "$topic"
e2e_on_exit "delete_topic $topic"
e2e_on_exit "remove_connector $name $slot"

src_sql -c "SELECT id FROM public.customer ORDER BY id" >"$T_TMP/ids.before"
nrows=$(wc -l <"$T_TMP/ids.before")
jq --arg p "$prefix" --arg s "$slot" '. + {"topic.prefix": $p, "slot.name": $s, "publication.name": $s,
        "slot.drop.on.stop": "true", "heartbeat.interval.ms": "0"}' "$E2E_CONNECTOR_JSON" >"$T_TMP/connector.json"
code=$(curl -s -o "$T_TMP/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary "@$T_TMP/connector.json" "$E2E_CONNECT_URL/connectors/$name/config")
like "$code" '^20[01]$' "connector $name registered (HTTP $code)" || cat "$T_TMP/put.out"
wait_until 120 "connector $name RUNNING" connector_running "$name"; ok $? "connector RUNNING"
hwm_is() { [[ $(topic_hwm "$topic" 2>/dev/null) == "$1" ]]; }
wait_until 120 "the snapshot of $nrows rows on $topic" hwm_is "$nrows"; ok $? "snapshot published: $nrows records on $topic"
snap_end=$nrows

# Streaming: 20 inserts, 30 updates and 10 deletes of rows from before, 5 updates of new ones
src_sql -c "INSERT INTO public.customer (id, email, status, updated_at)
              SELECT md5('$tag-new-' || g)::uuid, 'new' || g || '@e2e.test', 'new', clock_timestamp() FROM generate_series(1, 20) g" \
        -c "UPDATE public.customer SET status = 'upd', updated_at = clock_timestamp()
              WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 30) g)" \
        -c "DELETE FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(191, 200) g)" \
        -c "UPDATE public.customer SET status = 'upd-new', updated_at = clock_timestamp()
              WHERE id IN (SELECT md5('$tag-new-' || g)::uuid FROM generate_series(1, 5) g)"
e2e_drain; ok $? "drained: cdcrouter followed the new topic from its creation"

topic_events "$topic" >"$T_TMP/ev"
is "$(head -n "$snap_end" "$T_TMP/ev" | cut -f4 | sort -u | tr '\n' ' ')" "r " "the first $snap_end records are snapshot records (op r)"
is "$(head -n "$snap_end" "$T_TMP/ev" | cut -f3 | sort)" "$(cat "$T_TMP/ids.before")" "they are exactly the rows that existed at registration, once each"
is "$(awk -F'\t' '$2 >= '"$snap_end"' { print $4 }' "$T_TMP/ev" | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')" \
   "c=20 d=10 u=36 " "then streaming: 20 creates, 10 deletes, 35 updates + the marker; no more r"
e2e_compare "exact after snapshot + streaming"
e2e_audit_check "$topic"
is "$(sink_sql -c "SELECT count(*), count(DISTINCT id) FROM public.audit WHERE op = 'r'" -F ' ')" "$nrows $nrows" \
   "audit: each snapshot row applied once"
is "$(e2e_failures_since main 0)" 0 "no message failed"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
