#!/usr/bin/env bash
# Errors that are not about one message are a stall, not data errors: a
# revoked privilege (42501), a dropped table (42P01) or column (42703), a
# read-only sink (25006), a full disk (53100), and a batch whose messages
# all fail the same way (here a NOT NULL column the route does not fill,
# 23502). Each time: nothing applied and nothing dead-lettered, the stored
# offset stays, the error line says what to fix, the batch is retried; once
# the sink is fixed cdcrouter goes on by itself and the rows are exact, also
# when the fix lands while the batch is replayed message by message.
# The sink role is an ordinary role, not a superuser. Private PostgreSQL
# (a tmpfs tablespace for the full disk: needs root) + mock broker.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer DLQ=cdcrouter.dlq
[[ $(id -u) == 0 ]] || bail "t/30-stall.t fills a tmpfs tablespace: it needs root (mount)"

pg_start
kmock_start "$TOPIC:1" "$DLQ:1"
sql -c "$SINK_CUSTOMER_SQL" -c "CREATE ROLE writer LOGIN" -c "GRANT CREATE ON DATABASE sink TO writer" \
    -c "GRANT USAGE ON SCHEMA public TO writer" \
    -c "GRANT SELECT, INSERT, UPDATE, DELETE ON public.customer TO writer"
SINK_CONNINFO="host=127.0.0.1 port=$PGPORT_T dbname=sink user=writer"
c=$T_TMP/conf; write_conf "$c" "apply = { dead_letter_topic = \"$DLQ\"; };"
cp "$CDCR_SRCDIR/routes/customer.route" "$c/routes/"
cdcr_start "$c"
produced=0

# case <n> <events> <keys>: a stream of upserts on its own keys (seed n); $ev, $expect
case_events() {
    ev=$T_TMP/ev.$1 expect=$T_TMP/expect.$1
    python3 "$GEN" --seed "$1" --n "$2" --keys "$3" --deletes 0 --expect "$expect" >"$ev"
}
# rows_of <expect file>: the sink's rows of that stream's keys, in the --expect form
rows_of() { sink_customers | grep -F -f <(cut -d'|' -f1 "$1") || true; }
stall_lines() { grep -c "\"msg\":\"the sink refuses the batch for a reason that is not one message's.*\"sqlstate\":\"$1\"" "$T_TMP/cdcr.log" || true; }
retried() { (( $(stall_lines "$1") >= 3 )); }
dlq_count() { consume_all "$DLQ" -f '%o\n' 2>/dev/null | grep -c . || true; }

# stall <sqlstate> <what>: the events of $ev are produced into a broken sink
stall() {
    local state=$1 what=$2 before
    before=$(stored_offset t "$TOPIC" 0)
    produce "$TOPIC" <"$ev"
    produced=$((produced + $(wc -l <"$ev")))
    # several back-offs (50 to 500 ms here) must pass: wait for the third attempt
    wait_until 60 "three stalled attempts ($state)" retried "$state"; ok $? "$what: a stall, retried ($state)"
    like "$(grep "\"sqlstate\":\"$state\"" "$T_TMP/cdcr.log" | grep '"msg":"the sink refuses' | tail -1)" '"fix":"[^"]+' "  with what to fix"
    is "$(stored_offset t "$TOPIC" 0)" "$before" "  the stored offset stays"
    is "$(dlq_count)" 0 "  nothing dead-lettered"
    ok "$(cdcr_alive; echo $?)" "  still running"
}
resumed() {   # resumed <what>: after the fix, everything applied, exact
    wait_offset 60 t "$TOPIC" 0 "$produced"; ok $? "$1: fixed, it goes on by itself"
    is "$(rows_of "$expect")" "$(cat "$expect")" "  the rows are exact"
}

case_events 1 300 100
produce "$TOPIC" <"$ev"; produced=$(wc -l <"$ev")
wait_offset 60 t "$TOPIC" 0 "$produced"; ok $? "applied as an ordinary role"

# 1. privilege revoked
case_events 2 200 80
sql -c "REVOKE INSERT, UPDATE ON public.customer FROM writer"
stall 42501 "privilege revoked"
sql -c "GRANT INSERT, UPDATE ON public.customer TO writer"
resumed "privilege granted again"

# 2. table dropped
case_events 3 200 80
sql -c "DROP TABLE public.customer"
stall 42P01 "table dropped"
sql -c "$SINK_CUSTOMER_SQL" -c "GRANT SELECT, INSERT, UPDATE, DELETE ON public.customer TO writer"
resumed "table created again"

# 3. column dropped
case_events 4 200 80
sql -c "ALTER TABLE public.customer DROP COLUMN status"
stall 42703 "column dropped"
sql -c "ALTER TABLE public.customer ADD COLUMN status text"
resumed "column added again"

# 4. read-only sink
case_events 5 200 80
sql -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
stall 25006 "read-only sink"
PGOPTIONS='-c default_transaction_read_only=off' sql -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" >/dev/null
resumed "writable again"

# 5. full disk: the table in a 1 MB tablespace that a file fills up
mnt=$T_TMP/tiny
mkdir -p "$mnt" && mount -t tmpfs -o size=1m tmpfs "$mnt" || bail "cannot mount a tmpfs"
trap 'rc=$?; umount -l "$mnt" 2>/dev/null; (exit $rc); cleanup' EXIT
chown postgres "$mnt" 2>/dev/null || true
sql -c "TRUNCATE public.customer" -c "CREATE TABLESPACE tiny LOCATION '$mnt'" -c "ALTER TABLE public.customer SET TABLESPACE tiny"
dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true   # fails once the disk is full
case_events 6 200 80
stall 53100 "full disk"
rm -f "$mnt/filler"
resumed "room again"
sql -c "ALTER TABLE public.customer SET TABLESPACE pg_default" -c "DROP TABLESPACE tiny"

# 6. every message of a batch failing the same way: a NOT NULL column the route does not fill
case_events 7 200 80
sql -c "ALTER TABLE public.customer ADD COLUMN note text NOT NULL DEFAULT ''" -c "ALTER TABLE public.customer ALTER COLUMN note DROP DEFAULT"
stall uniform "all messages failing alike (23502)"
like "$(grep '"sqlstate":"uniform"' "$T_TMP/cdcr.log" | tail -1)" 'SQLSTATE 23502' "  the error names the SQLSTATE they share"
sql -c "ALTER TABLE public.customer ALTER COLUMN note DROP NOT NULL"
resumed "the column made nullable"

# 7. the fix lands while the batch is replayed message by message, as the
# ALTER above could: a failed row's lock ends with its savepoint, so DDL
# slips between two messages. A trigger makes each row take 20 ms, so a
# replay of the batch lasts seconds; the column is made nullable during one.
# Messages that failed before the fix are no message's fault: nothing
# dead-lettered, every row exact.
case_events 8 200 200
sql -c "UPDATE public.customer SET note = ''" -c "ALTER TABLE public.customer ALTER COLUMN note SET NOT NULL" \
    -c "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END\$\$" \
    -c "CREATE TRIGGER slow_row BEFORE INSERT OR UPDATE ON public.customer FOR EACH ROW EXECUTE FUNCTION slow_row()"
isolations() { grep -c '"msg":"batch failed with a data error, isolating' "$T_TMP/cdcr.log" || true; }
stalls0=$(stall_lines uniform)
produce "$TOPIC" <"$ev"; produced=$((produced + $(wc -l <"$ev")))
more_stalls() { (( $(stall_lines uniform) > stalls0 )); }
wait_until 60 "the batch stalls (uniform)" more_stalls; ok $? "fixed during a replay: the batch stalls first"
iso0=$(isolations)
more_isolations() { (( $(isolations) > iso0 )); }
wait_until 30 "the next replay begins" more_isolations
sql -c "ALTER TABLE public.customer ALTER COLUMN note DROP NOT NULL"
resumed "  the column made nullable mid-replay"
is "$(dlq_count)" 0 "  nothing dead-lettered"
like "$(grep '"msg":"the sink changed while' "$T_TMP/cdcr.log" | tail -1)" '"msg":"the sink changed while the batch was replayed' "  the change is seen and said"
sql -c "DROP TRIGGER slow_row ON public.customer"

# a single poison message next to good ones is still a data error for the policy
printf '{"id":"00000000-0000-4000-8000-0000000000ee"}\t{"id":"00000000-0000-4000-8000-0000000000ee","email":"no-at-sign","status":"s","updated_at":"2026-03-01T00:00:00Z"}\n' | produce "$TOPIC"
produced=$((produced + 1))
wait_offset 60 t "$TOPIC" 0 "$produced"; ok $? "a lone CHECK violation"
in_dlq() { [[ $(dlq_count) == 1 ]]; }
wait_until 30 "dead-lettered" in_dlq; ok $? "  is dead-lettered (one message's fault)"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
