#!/usr/bin/env bash
# Numbers reach PostgreSQL exactly as the message wrote them: int64 min/max,
# ids above 2^53 (which one double would merge), 30-digit numerics, 1e-7,
# -0.0, and numbers inside JSON objects and arrays; a jq program whose
# result depends on a number libjq holds only as a double is a data error
# (dead-lettered with a reason naming route, param and value), never a
# different value. Private PostgreSQL + librdkafka's mock broker.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.nums JQTOPIC=cdc.public.jqnums DLQ=cdcrouter.dlq

pg_start
kmock_start "$TOPIC:1" "$JQTOPIC:1" "$DLQ:1"
sql -c "CREATE TABLE public.nums (id bigint PRIMARY KEY, i8 bigint, n numeric, f float8, j jsonb, js json,
                                  a bigint[], s text)" \
    -c "CREATE TABLE public.jqnums (id bigint PRIMARY KEY, v numeric)"
c=$T_TMP/conf; write_conf "$c" "apply = { dead_letter_topic = \"$DLQ\"; };"
cat >"$c/routes/nums.route" <<'ROUTE'
topic = "cdc.public.nums";
params = { id = ".id"; i8 = ".i8"; n = ".n"; f = ".f"; j = ".j"; js = ".j"; a = ".a"; s = ".s"; };
required = [ "id" ];
key = [ "id" ];
upsert = "INSERT INTO public.nums VALUES (:id::bigint, :i8::bigint, :n::numeric, :f::float8, :j::jsonb, :js::json,
            CASE WHEN :a::jsonb IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(:a::jsonb)::bigint) END, :s)
          ON CONFLICT (id) DO UPDATE SET i8 = EXCLUDED.i8, n = EXCLUDED.n, f = EXCLUDED.f, j = EXCLUDED.j,
            js = EXCLUDED.js, a = EXCLUDED.a, s = EXCLUDED.s";
delete = "DELETE FROM public.nums WHERE id = :id::bigint";
upsert_batch = "INSERT INTO public.nums
                SELECT u.id, u.i8, u.n, u.f, u.j, u.js,
                       CASE WHEN u.a IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.a)::bigint) END, u.s
                FROM unnest(:id::bigint[], :i8::bigint[], :n::numeric[], :f::float8[], :j::jsonb[], :js::json[],
                            :a::jsonb[], :s::text[]) AS u(id, i8, n, f, j, js, a, s)
                ON CONFLICT (id) DO UPDATE SET i8 = EXCLUDED.i8, n = EXCLUDED.n, f = EXCLUDED.f, j = EXCLUDED.j,
                  js = EXCLUDED.js, a = EXCLUDED.a, s = EXCLUDED.s";
delete_batch = "DELETE FROM public.nums WHERE id = ANY(:id::bigint[])";
ROUTE
cat >"$c/routes/jqnums.route" <<'ROUTE'
name = "jqnums";
topic = "cdc.public.jqnums";
params = { id = ".id"; v = ".v | . + 0"; };
key = [ "id" ];
upsert = "INSERT INTO public.jqnums VALUES (:id::bigint, :v::numeric) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v";
delete = "DELETE FROM public.jqnums WHERE id = :id::bigint";
ROUTE

# The messages: each id's values as literal JSON text. Two ids above 2^53 that
# a double cannot tell apart go in the same batch.
J='{"x":9007199254740993,"y":[1.10,-0.0,1e-7],"z":123456789012345678901234567890}'
{
  printf '{"id":9223372036854775807}\t{"id":9223372036854775807,"i8":-9223372036854775808,"n":123456789012345678901234567890.123456789,"f":1e-7,"j":%s,"a":[9007199254740993,9223372036854775807],"s":"max"}\n' "$J"
  printf '{"id":9007199254740993}\t{"id":9007199254740993,"i8":9007199254740993,"n":-0.0,"f":-0.0,"j":{"n":1.5E+300},"a":[],"s":"2^53+1"}\n'
  printf '{"id":9007199254740992}\t{"id":9007199254740992,"i8":9007199254740992,"n":1e-7,"f":0.1,"j":[],"a":[-9223372036854775808],"s":"2^53"}\n'
  printf '{"id":1152921504606846977}\t{"id":1152921504606846977,"i8":1152921504606846977,"n":0.000000000000000000000000000001,"f":2.2250738585072014e-308,"j":null,"a":null,"s":"2^60+1"}\n'
  printf '{"id":-9223372036854775808}\t{"id":-9223372036854775808,"i8":0,"n":1E+25,"f":1.7976931348623157e308,"j":{},"a":[0],"s":"min"}\n'
} | produce "$TOPIC"
cdcr_start "$c"
wait_offset 60 t "$TOPIC" 0 5; ok $? "five messages applied"
is "$(sql -c 'SELECT count(*) FROM public.nums')" 5 "five rows: ids 2^53 and 2^53+1 are two rows"

# Expected: what PostgreSQL makes of the very same literal texts.
row() { sql -c "SELECT i8::text, n::text, f::text, j::text, js::text, a::text, s FROM public.nums WHERE id = $1"; }
want() { sql -c "SELECT '$1'::bigint::text, '$2'::numeric::text, '$3'::float8::text, $4, $5, $6, '$7'"; }
is "$(row 9223372036854775807)" "$(want -9223372036854775808 123456789012345678901234567890.123456789 1e-7 "'$J'::jsonb::text" "'$J'::json::text" "'{9007199254740993,9223372036854775807}'::bigint[]::text" max)" "int64 max id: every value exact"
is "$(row 9007199254740993)" "$(want 9007199254740993 -0.0 -0.0 "'{\"n\":1.5E+300}'::jsonb::text" "'{\"n\":1.5E+300}'::json::text" "'{}'::bigint[]::text" '2^53+1')" "id 2^53+1: exact (a double gives 2^53)"
is "$(row 9007199254740992)" "$(want 9007199254740992 1e-7 0.1 "'[]'::jsonb::text" "'[]'::json::text" "'{-9223372036854775808}'::bigint[]::text" '2^53')" "id 2^53: exact"
is "$(row 1152921504606846977)" "$(want 1152921504606846977 0.000000000000000000000000000001 2.2250738585072014e-308 "NULL" "NULL" "NULL" '2^60+1')" "id 2^60+1 (snowflake-sized): exact"
is "$(row -9223372036854775808)" "$(want 0 1E+25 1.7976931348623157e308 "'{}'::jsonb::text" "'{}'::json::text" "'{0}'::bigint[]::text" min)" "int64 min id: exact"
is "$(sql -c "SELECT f::text FROM public.nums WHERE id = 9007199254740993")" "-0" "-0.0 stays negative zero in float8"
is "$(sql -c "SELECT js::text FROM public.nums WHERE id = 9223372036854775807")" "$J" "a json column gets the object's literal text"

# a jq program's result that depends on a number libjq holds as a double: refused, dead-lettered
printf '{"id":1}\t{"id":1,"v":9007199254740993}\n{"id":2}\t{"id":2,"v":5}\n' | produce "$JQTOPIC"
wait_offset 60 t "$JQTOPIC" 0 2; ok $? "jq route: both messages accounted for"
is "$(sql -c 'SELECT id, v FROM public.jqnums ORDER BY id')" "2|5" "the exact one applied, the other not stored altered"
dlq=$(consume_all "$DLQ" -f '%k|%h\n' 2>/dev/null)
like "$dlq" "cdcrouter.error.kind=extract" "the refused one is in the dead-letter topic as an extract error"
like "$dlq" "route 'jqnums' param 'v'.*9007199254740993" "its reason names the route, the param and the value"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
