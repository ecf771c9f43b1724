#!/usr/bin/env bash
# e2e 8. Schema evolution: `ALTER TABLE customer ADD COLUMN nickname text` on
# the source while a writer streams changes.  Debezium goes on (the new field
# appears in the events), cdcrouter with the shipped route ignores the extra
# field (nothing fails, the sink equals the source on the sink's columns).
# Then the sink gets the column, the test's copy of the route is updated to
# carry it and cdcrouter gets SIGHUP: "configuration reloaded" generation 2,
# no restart (same pid), and later events carry nickname into the sink.
# Rows whose nickname was set before the reload are touched again (a route
# change applies to the events that follow it, not to the past); after that
# source and sink are equal on every column.
# The test drops the column from the source at the end (and on any exit), so
# the next tests see the original table.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t8-$E2E_RUN

src_sql -c "ALTER TABLE public.customer DROP COLUMN IF EXISTS nickname"   # a leftover of an aborted run
e2e_pipeline
e2e_drain; ok $? "drained"
start=$(topic_hwm "$E2E_TOPIC")
pid=${E2E_PID[main]}

e2e_writer_start "$tag" 200 0.01
e2e_writer_wait 50; ok $? "writer running"
e2e_on_exit "src_sql -c 'ALTER TABLE public.customer DROP COLUMN IF EXISTS nickname'"
src_sql -c "ALTER TABLE public.customer ADD COLUMN nickname text"; ok $? "source: ADD COLUMN nickname during streaming"
src_sql -c "UPDATE public.customer SET nickname = 'nick-' || left(id::text, 8), updated_at = clock_timestamp()
              WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 50) g)
                 OR id IN (SELECT id FROM public.customer ORDER BY id LIMIT 20)"
e2e_writer_wait 50; ok $? "writer still running after the ALTER"
e2e_writer_stop; is "$E2E_WRITER_RC" 0 "writer: $E2E_WRITER_N transactions, no error"
e2e_drain; ok $? "drained with the new column in the events"
has_nick=$(topic_json "$E2E_TOPIC" "$start" | jq -r 'select(.payload != null) | .payload | fromjson | select(.nickname != null) | .id' | wc -l)
ok "$( ((has_nick >= 20)); echo $?)" "Debezium carries the new field: $has_nick events with a nickname"
is "$(connector_state)" "RUNNING RUNNING" "the connector kept running"
is "$(e2e_failures_since main "$start")" 0 "cdcrouter (shipped route) tolerates the extra field: nothing failed"
is "$(e2e_columns sink)" "id:uuid,email:text,status:text,updated_at:timestamp with time zone" "the sink has not got the column yet"
e2e_compare "exact on the sink's columns" sink-columns

# The sink gets the column, the route carries it, SIGHUP.
sink_sql -c "ALTER TABLE public.customer ADD COLUMN nickname text"
r=${E2E_CONFDIR[main]}/routes/customer.route
sed -i -e 's/^  updated_at = ".updated_at";/&\n  nickname   = ".nickname";/' \
       -e 's/(id, email, status, updated_at)/(id, email, status, updated_at, nickname)/g' \
       -e 's/:updated_at::timestamptz)/:updated_at::timestamptz, :nickname)/' \
       -e 's/:updated_at::timestamptz\[\])/:updated_at::timestamptz[], :nickname::text[])/' \
       -e 's/updated_at = EXCLUDED.updated_at/&, nickname = EXCLUDED.nickname/g' "$r"
is "$(grep -c nickname "$r")" 7 "route updated (param, both upserts)"
CDCR=$CDCR_BUILDDIR/cdcrouter; "$CDCR" --check -c "${E2E_CONFDIR[main]}/cdcrouter.conf" >"$T_TMP/check.out" 2>&1; ok $? "the new route passes cdcrouter --check"
kill -HUP "$pid"
reloaded() { e2e_log_has main '.msg == "configuration reloaded" and .generation == 2'; }
wait_until 30 "configuration reloaded, generation 2" reloaded; ok $? 'log: "configuration reloaded", generation 2'
is "${E2E_PID[main]}" "$pid" "same process (no restart)"
ok "$(e2e_alive main; echo $?)" "still running"

src_sql -c "UPDATE public.customer SET nickname = 'again-' || left(id::text, 8), updated_at = clock_timestamp()
              WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 30) g)" \
        -c "INSERT INTO public.customer (id, email, status, nickname) VALUES (md5('$tag-new')::uuid, 'new@e2e.test', 'new', 'newbie')" \
        -c "UPDATE public.customer SET updated_at = clock_timestamp() WHERE nickname LIKE 'nick-%'"
e2e_drain; ok $? "drained after the reload"
is "$(sink_sql -c "SELECT nickname FROM public.customer WHERE id = md5('$tag-new')::uuid")" newbie "a row inserted after the reload has its nickname in the sink"
e2e_compare "exact on every column, nickname included"
is "$(e2e_failures_since main "$start")" 0 "nothing failed"

# Restore the source's schema; the connector goes on.
src_sql -c "ALTER TABLE public.customer DROP COLUMN nickname"; ok $? "source: DROP COLUMN nickname"
e2e_drain; ok $? "drained after the column was dropped again"
is "$(connector_state)" "RUNNING RUNNING" "the connector is still running"
e2e_audit_check
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
