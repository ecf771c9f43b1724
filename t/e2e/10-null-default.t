#!/usr/bin/env bash
# e2e 10. NULL stays NULL. A nullable source column with a DEFAULT: a row
# inserted with NULL there, a value updated to NULL and back to a value
# reach Kafka as null (not as the default: Kafka's JsonConverter and
# ExtractNewRecordState substitute the default unless
# replace.null.with.default=false, which the shipped connector sets) and the
# sink as NULL. The sink's column has a different default, so a NULL turned
# into "missing" would show too.
# The column is dropped from the source at the end (and on any exit).
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t10-$E2E_RUN
id1=$(src_sql -c "SELECT md5('$tag-1')::uuid") id2=$(src_sql -c "SELECT md5('$tag-2')::uuid")

# leftovers of an earlier run: the column, and its rows (their old events,
# replayed into this run's fresh sink, would carry nick values the re-added
# column does not have; deleted, their replay ends in a delete)
src_sql -c "ALTER TABLE public.customer DROP COLUMN IF EXISTS nick" \
        -c "DELETE FROM public.customer WHERE email IN ('n1@e2e.test', 'n2@e2e.test')"
e2e_on_exit "src_sql -c \"DELETE FROM public.customer WHERE email IN ('n1@e2e.test', 'n2@e2e.test')\" -c 'ALTER TABLE public.customer DROP COLUMN IF EXISTS nick'"
# (the default set after the column exists: the rows already there stay NULL, as they are in the sink)
src_sql -c "ALTER TABLE public.customer ADD COLUMN nick text" -c "ALTER TABLE public.customer ALTER COLUMN nick SET DEFAULT 'dflt'"
ok $? "source: nick text DEFAULT 'dflt' (nullable)"
sink_sql -c "ALTER TABLE public.customer ADD COLUMN nick text DEFAULT 'sink-dflt'"

# the shipped route, carrying nick (as test 08 does)
mkdir -p "$T_TMP/routes"
sed -e 's/^  updated_at = ".updated_at";/&\n  nick       = ".nick";/' \
    -e 's/(id, email, status, updated_at)/(id, email, status, updated_at, nick)/g' \
    -e 's/:updated_at::timestamptz)/:updated_at::timestamptz, :nick)/' \
    -e 's/:updated_at::timestamptz\[\])/:updated_at::timestamptz[], :nick::text[])/' \
    -e 's/updated_at = EXCLUDED.updated_at/&, nick = EXCLUDED.nick/g' \
    "$CDCR_SRCDIR/routes/customer.route" >"$T_TMP/routes/customer.route"
is "$(grep -c nick "$T_TMP/routes/customer.route")" 7 "route carries nick (param, both upserts)"
e2e_conf main "$E2E_GROUP" "$T_TMP/routes/customer.route"
e2e_audit_route "$E2E_TOPIC" >"$T_TMP/routes/audit.route"
e2e_conf audit "$E2E_GROUP-audit" "$T_TMP/routes/audit.route"
E2E_PIPE_TOPIC=$E2E_TOPIC
e2e_start main
e2e_start audit
start=$(topic_hwm "$E2E_TOPIC")

# nick: NULL by insert; a value then NULL by update; a value again
src_sql -c "INSERT INTO public.customer (id, email, status, nick) VALUES ('$id1', 'n1@e2e.test', 'new', NULL)" \
        -c "INSERT INTO public.customer (id, email, status, nick) VALUES ('$id2', 'n2@e2e.test', 'new', 'given')"
e2e_drain; ok $? "drained after the inserts"
nick_in_kafka() {   # the nick of the last record of an id since $start, as raw JSON
    topic_json "$E2E_TOPIC" "$start" | jq -r --arg id "$1" 'select(.payload != null) | .payload | fromjson
        | select(.id == $id) | if has("nick") then (.nick | tojson) else "absent" end' | tail -1
}
is "$(nick_in_kafka "$id1")" null "Kafka: a NULL inserted is null (not the default \"dflt\")"
is "$(sink_sql -c "SELECT coalesce(nick, '<NULL>') FROM public.customer WHERE id = '$id1'")" "<NULL>" "sink: NULL"
is "$(sink_sql -c "SELECT nick FROM public.customer WHERE id = '$id2'")" given "sink: the value"

src_sql -c "UPDATE public.customer SET nick = NULL, updated_at = clock_timestamp() WHERE id = '$id2'"
e2e_drain; ok $? "drained after the update to NULL"
is "$(nick_in_kafka "$id2")" null "Kafka: a value updated to NULL is null"
is "$(sink_sql -c "SELECT coalesce(nick, '<NULL>') FROM public.customer WHERE id = '$id2'")" "<NULL>" "sink: NULL again"

src_sql -c "UPDATE public.customer SET nick = 'back', updated_at = clock_timestamp() WHERE id IN ('$id1', '$id2')"
e2e_drain; ok $? "drained after the update back to a value"
is "$(nick_in_kafka "$id1")" '"back"' "Kafka: back to a value"
is "$(sink_sql -c "SELECT string_agg(nick, ',' ORDER BY email) FROM public.customer WHERE id IN ('$id1', '$id2')")" \
   back,back "sink: the values"
src_sql -c "UPDATE public.customer SET nick = NULL, updated_at = clock_timestamp() WHERE id = '$id1'"
e2e_drain; ok $? "drained"
e2e_compare "exact on every column, NULLs included"

# Restore the source's schema.
src_sql -c "ALTER TABLE public.customer DROP COLUMN nick"; ok $? "source: DROP COLUMN nick"
e2e_drain; ok $? "drained after the column was dropped again"
is "$(connector_state)" "RUNNING RUNNING" "the connector is still running"
e2e_audit_check
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
