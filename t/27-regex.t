#!/usr/bin/env bash
# Regex routes: the topic is part of a key's identity (the same id in two
# topics of one route is two rows, also in one batch and in the set-based
# statements), and topic_regex matches the whole topic name, for the
# subscription and the routing alike. Private PostgreSQL + mock broker.
source "$CDCR_SRCDIR/t/lib/setup.sh"
A=cdc.public.a B=cdc.public.b ABC=cdc.public.abc

pg_start
kmock_start "$A:1" "$B:1" "$ABC:1"
sql -c "CREATE TABLE public.ab (src text, id int, v text, PRIMARY KEY (src, id))"
c=$T_TMP/conf; write_conf "$c"
cat >"$c/routes/ab.route" <<'ROUTE'
topic_regex = "cdc\\.public\\.(a|b)";
params = { src = "$meta.topic"; id = ".id"; v = ".v"; };
key = [ "id" ];
upsert = "INSERT INTO public.ab VALUES (:src, :id::int, :v) ON CONFLICT (src, id) DO UPDATE SET v = EXCLUDED.v";
delete = "DELETE FROM public.ab WHERE src = :src AND id = :id::int";
upsert_batch = "INSERT INTO public.ab SELECT * FROM unnest(:src::text[], :id::int[], :v::text[])
                ON CONFLICT (src, id) DO UPDATE SET v = EXCLUDED.v";
delete_batch = "DELETE FROM public.ab t USING unnest(:src::text[], :id::int[]) AS d(src, id)
                WHERE t.src = d.src AND t.id = d.id";
ROUTE

# all of it before cdcrouter starts: one batch holds both topics' id 1
printf '{"id":1}\t{"id":1,"v":"a1"}\n{"id":2}\t{"id":2,"v":"a2"}\n' | produce "$A"
printf '{"id":1}\t{"id":1,"v":"b1"}\n' | produce "$B"
printf '{"id":1}\t{"id":1,"v":"abc1"}\n' | produce "$ABC"
cdcr_start "$c"
wait_offset 60 t "$A" 0 2; ok $? "cdc.public.a consumed"
wait_offset 60 t "$B" 0 1; ok $? "cdc.public.b consumed"
is "$(sql -c "SELECT src, id, v FROM public.ab ORDER BY src, id" | tr '\n' ' ')" \
   "cdc.public.a|1|a1 cdc.public.a|2|a2 cdc.public.b|1|b1 " "id 1 of a and id 1 of b are two rows, both written"
# a later batch with a delete in one topic only
printf '{"id":1}\t{"id":1,"__deleted":"true"}\n' | produce "$A"
printf '{"id":1}\t{"id":1,"v":"b1bis"}\n' | produce "$B"
wait_offset 60 t "$A" 0 3; ok $? "the delete in a applied"
wait_offset 60 t "$B" 0 2; ok $? "the update in b applied"
is "$(sql -c "SELECT src, id, v FROM public.ab ORDER BY src, id" | tr '\n' ' ')" \
   "cdc.public.a|2|a2 cdc.public.b|1|b1bis " "a delete in one topic leaves the other topic's key alone"

# the whole name: cdc.public.abc starts like the pattern but is not routed, nor read
is "$(stored_offset t "$ABC" 0)" -1 "cdc.public.abc has no stored offset (never applied)"
is "$(sql -c "SELECT count(*) FROM public.ab WHERE src = '$ABC'")" 0 "and nothing of it in the table"
ok "$( ! grep -q "\"topic\":\"$ABC\"" "$T_TMP/cdcr.log"; echo $?)" "cdcrouter never saw a message of it (not subscribed)"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
