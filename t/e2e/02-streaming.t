#!/usr/bin/env bash
# e2e 2. Streaming: inserts, updates and deletes made in the source while
# cdcrouter runs arrive in the sink; many updates of the same key in quick
# succession (one transaction each) end in the right final state, in
# per-key order; insert/delete/re-insert of one key ends present.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t2-$E2E_RUN
hot1=$(src_sql -c "SELECT md5('$tag-hot1')::uuid")
hot2=$(src_sql -c "SELECT md5('$tag-hot2')::uuid")
flip=$(src_sql -c "SELECT md5('$tag-flip')::uuid")

e2e_pipeline
e2e_drain; ok $? "the topic's history replayed into the empty sink"
e2e_compare "after the replay"
start=$(topic_hwm "$E2E_TOPIC")

# 200 inserts (one transaction), 100 updates (one transaction), 40 deletes (one each)
src_sql <<SQL
INSERT INTO public.customer (id, email, status, updated_at)
  SELECT md5('$tag-' || g)::uuid, 'c' || g || '@e2e.test', 'new', clock_timestamp() FROM generate_series(1, 200) g;
UPDATE public.customer SET status = 'upd', email = 'u' || email, updated_at = clock_timestamp()
  WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 200, 2) g);
DO \$\$ BEGIN
  FOR g IN 1..200 BY 5 LOOP DELETE FROM public.customer WHERE id = md5('$tag-' || g)::uuid; COMMIT; END LOOP;
END \$\$;
SQL
# two hot keys updated 300 times each, interleaved, one commit per update;
# a third key inserted, deleted and re-inserted 50 times, ending present
src_sql <<SQL
INSERT INTO public.customer (id, email, status) VALUES ('$hot1', 'hot1@e2e.test', 's0'), ('$hot2', 'hot2@e2e.test', 's0');
DO \$\$ BEGIN
  FOR i IN 1..300 LOOP
    UPDATE public.customer SET status = 's' || i, email = 'hot1.' || i || '@e2e.test', updated_at = clock_timestamp() WHERE id = '$hot1';
    COMMIT;
    UPDATE public.customer SET status = 's' || i, email = 'hot2.' || i || '@e2e.test', updated_at = clock_timestamp() WHERE id = '$hot2';
    COMMIT;
  END LOOP;
  FOR i IN 1..50 LOOP
    INSERT INTO public.customer (id, email, status, updated_at) VALUES ('$flip', 'flip' || i || '@e2e.test', 'f' || i, clock_timestamp());
    COMMIT;
    IF i < 50 THEN DELETE FROM public.customer WHERE id = '$flip'; COMMIT; END IF;
  END LOOP;
END \$\$;
SQL
e2e_drain; ok $? "drained after the changes"
e2e_compare "after inserts, updates, deletes and hot keys"
is "$(sink_sql -c "SELECT status, email FROM public.customer WHERE id = '$hot1'")" "s300|hot1.300@e2e.test" "hot key 1: the last of 300 updates won"
is "$(sink_sql -c "SELECT status, email FROM public.customer WHERE id = '$hot2'")" "s300|hot2.300@e2e.test" "hot key 2: the last of 300 updates won"
is "$(sink_sql -c "SELECT status FROM public.customer WHERE id = '$flip'")" "f50" "insert/delete x49 then insert: the row is there, last version"
is "$(sink_sql -c "SELECT count(*) FROM public.customer WHERE id IN (SELECT md5('$tag-' || g)::uuid FROM generate_series(1, 200) g)")" 160 "200 inserted - 40 deleted"

# Debezium side: the events are on the topic once each, in commit order per key
topic_events "$E2E_TOPIC" "$start" >"$T_TMP/ev"
is "$(awk -F'\t' -v k="$hot1" '$3 == k' "$T_TMP/ev" | cut -f7 | tr '\n' ' ')" "$(printf 's%d ' $(seq 0 300))" "hot key 1: 301 events on the topic, in commit order"
is "$(awk -F'\t' -v k="$flip" '$3 == k {print $4}' "$T_TMP/ev" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" "c=50 d=49 " "flip key: 50 creates, 49 deletes"
is "$(grep -c . "$T_TMP/ev")" $((200 + 100 + 40 + 2 + 600 + 99 + 1)) "every change is on the topic once (+ the marker)"

e2e_audit_check
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
is "$(e2e_failures_since main "$start")" 0 "no failed message in the main process"
done_testing
