#!/usr/bin/env bash
# e2e 3. Deletes: Debezium's rewritten delete ("__deleted":"true", the old row)
# removes the row from the sink; the tombstone that follows it is tolerated
# (ignored, not dead-lettered); deleting a row the sink never had succeeds
# (its insert was rejected by the sink), and so does deleting a row that
# vanished from the sink behind cdcrouter's back.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t3-$E2E_RUN
id() { src_sql -c "SELECT md5('$tag-$1')::uuid"; }
a=$(id a) never=$(id never) gone=$(id gone)
dlq_start=$(topic_hwm "$E2E_DLQ" 2>/dev/null || echo 0)

e2e_pipeline
src_sql -c "INSERT INTO public.customer (id, email, status) VALUES ('$a', 'a@e2e.test', 'x'), ('$gone', 'gone@e2e.test', 'x')" \
        -c "INSERT INTO public.customer (id, email, status)
              SELECT md5('$tag-' || g)::uuid, 'm' || g || '@e2e.test', 'many' FROM generate_series(1, 100) g"
e2e_drain; ok $? "drained"
is "$(sink_sql -c "SELECT count(*) FROM public.customer WHERE id IN ('$a', '$gone')")" 2 "rows a and gone are in the sink"
start=$(topic_hwm "$E2E_TOPIC")

# 1. a plain delete
src_sql -c "DELETE FROM public.customer WHERE id = '$a'"
# 2. the sink never had it: the sink's CHECK (email LIKE '%@%') rejects its
#    insert, which goes to the dead-letter topic; then the source deletes it
src_sql -c "INSERT INTO public.customer (id, email, status) VALUES ('$never', 'no-at-sign', 'x')"
# (wait until cdcrouter is past it: in one batch with its delete, only the delete would be applied)
never_off=$(topic_wait_record "$E2E_TOPIC" "$start" "(.key | fromjson? | .id) == \"$never\"")
e2e_wait_past "$E2E_GROUP" "$never_off"; ok $? "cdcrouter went past the rejected insert (offset $never_off)"
src_sql -c "DELETE FROM public.customer WHERE id = '$never'"
# 3. the sink had it, but it was removed there by hand before the delete came
sink_sql -c "DELETE FROM public.customer WHERE id = '$gone'"
src_sql -c "DELETE FROM public.customer WHERE id = '$gone'"
# 4. a set-based delete of 100 rows in one transaction
src_sql -c "DELETE FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 100) g)"
e2e_drain; ok $? "drained after the deletes"

# What Debezium wrote: each delete is the old row with __deleted "true", then a tombstone
topic_json "$E2E_TOPIC" "$start" >"$T_TMP/after"
shape() {   # shape <id>: "op/deleted" per record of that key, "tombstone" for a null value
    jq -r --arg k "{\"id\":\"$1\"}" 'select(.key == $k) | if .payload == null then "tombstone"
        else (.payload | fromjson | "\(.__op)/\(.__deleted)/\(.email)") end' "$T_TMP/after" | tr '\n' ' '
}
is "$(shape "$a")" "d/true/a@e2e.test tombstone " "row a: a rewritten delete carrying the old row, then a tombstone"
is "$(shape "$never")" "c/false/no-at-sign d/true/no-at-sign tombstone " "row never: the rejected insert, its delete, a tombstone"
is "$(jq -r 'select(.payload == null) | .offset' "$T_TMP/after" | wc -l)" 103 "103 tombstones on the topic"

is "$(sink_sql -c "SELECT count(*) FROM public.customer WHERE id IN ('$a', '$never', '$gone')")" 0 "a, never and gone are not in the sink"
is "$(sink_sql -c "SELECT count(*) FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 100) g)")" 0 "the 100 rows deleted in one transaction are gone"
e2e_compare "source and sink after the deletes"

# The dead-letter topic got the rejected insert of 'never' (from this group)
# and nothing from the deletes or tombstones.
topic_json "$E2E_DLQ" "$dlq_start" |
    jq -r 'select((.headers | index("cdcrouter.error.route")) as $i | $i != null and .headers[$i + 1] == "customer")
           | [(.headers | . as $h | index("cdcrouter.source.offset") as $i | $h[$i + 1]), .payload] | @tsv' >"$T_TMP/dlq"
is "$(grep -c "\"id\":\"$never\"" "$T_TMP/dlq")" 1 "the rejected insert of 'never' is in the dead-letter topic once"
like "$(grep "\"id\":\"$never\"" "$T_TMP/dlq")" "^$never_off	.*\"__op\":\"c\"" "as its insert (offset $never_off)"
tomb_offs=$(jq -r 'select(.payload == null) | .offset' "$T_TMP/after" | tr '\n' ' ')
hits=0; for o in $tomb_offs; do awk -F'\t' -v o="$o" '$1 == o' "$T_TMP/dlq" | grep -q . && hits=$((hits + 1)); done
is "$hits" 0 "no tombstone was dead-lettered"
is "$(grep -c '"__op":"d"' "$T_TMP/dlq")" 0 "no delete was dead-lettered"
e2e_log_has main '.msg == "kafka fatal error" or .level == "error"' && bad=1 || bad=0
is "$bad" 0 "no error-level line in the main log"

e2e_audit_check
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
