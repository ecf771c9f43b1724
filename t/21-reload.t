#!/usr/bin/env bash
# SIGHUP: a new table by a new route file, no restart; an invalid route is
# refused while traffic continues on the running configuration.
source "$CDCR_SRCDIR/t/lib/setup.sh"
TOPIC=cdc.public.customer ORDERS=cdc.public.orders

customer_setup --topic "$ORDERS:1" --sql "CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id uuid, total numeric)"
python3 "$GEN" --n 500 --keys 50 --seed 1 --expect "$T_TMP/e1" >"$T_TMP/ev1"
produce "$TOPIC" <"$T_TMP/ev1"
cdcr_start "$c"
n=$(wc -l <"$T_TMP/ev1")
wait_offset 60 t "$TOPIC" 0 "$n"; ok $? "customer events applied"

# orders arrive before their route exists: not subscribed yet, nothing applied
printf '{"id":1}\t{"id":1,"customer_id":"00000000-0000-4000-8000-000000000001","total":"9.50","__deleted":"false"}\n{"id":2}\t{"id":2,"customer_id":null,"total":"1","__deleted":"false"}\n{"id":1}\t{"id":1,"customer_id":"00000000-0000-4000-8000-000000000001","total":"10.00","__deleted":"false"}\n{"id":2}\t{"id":2,"__deleted":"true"}\n' | produce "$ORDERS"
cat >"$c/routes/orders.route" <<'ROUTE'
topic = "cdc.public.orders";
table = "public.orders";
params = { id = ".id"; customer_id = ".customer_id"; total = ".total"; };
required = [ "id" ];
key = [ "id" ];
upsert = "INSERT INTO public.orders (id, customer_id, total) VALUES (:id::bigint, :customer_id::uuid, :total::numeric)
          ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, total = EXCLUDED.total";
delete = "DELETE FROM public.orders WHERE id = :id::bigint";
ROUTE
kill -HUP "$CDCR_PID"
wait_until 30 "reload logged" log_has '"msg":"configuration reloaded","generation":2'; ok $? "reload to generation 2 logged"
wait_offset 60 t "$ORDERS" 0 4; ok $? "the new topic is consumed after SIGHUP"
is "$(sql -c 'SELECT id, customer_id, total FROM public.orders ORDER BY id')" "1|00000000-0000-4000-8000-000000000001|10.00" "the new table holds the final state"
ok "$(cdcr_alive; echo $?)" "same process (no restart)"

# an invalid route on SIGHUP: refused, every error logged, old configuration keeps running
printf 'topic = "x";\nparams = { id = ".id |"; };\nupsert = "SELECT :nope";\n' >"$c/routes/zz-broken.route"
kill -HUP "$CDCR_PID"
wait_until 30 "reload refused" log_has '"msg":"reload failed, the running configuration stays"'; ok $? "broken reload refused"
like "$(grep 'reload: configuration error' "$T_TMP/cdcr.log")" "zz-broken.route:2: param 'id': invalid jq" "the jq error is logged with file:line"
like "$(grep 'reload: configuration error' "$T_TMP/cdcr.log")" "zz-broken.route:3: upsert: placeholder ':nope'" "the template error too"
python3 "$GEN" --n 300 --keys 50 --seed 2 --prefix b >"$T_TMP/ev2"
cat "$T_TMP/ev1" "$T_TMP/ev2" | python3 "$CDCR_SRCDIR/t/lib/fold.py" >"$T_TMP/e12"
produce "$TOPIC" <"$T_TMP/ev2"
n2=$((n + $(wc -l <"$T_TMP/ev2")))
wait_offset 60 t "$TOPIC" 0 "$n2"; ok $? "traffic continues on the old configuration"
is "$(sink_customers)" "$(cat "$T_TMP/e12")" "customer state exact after the refused reload"

# a route whose SQL parses but does not prepare (unknown table) is refused too
rm "$c/routes/zz-broken.route"
sed 's/public.orders/public.no_such_table/g; s/cdc.public.orders/cdc.public.orders2/' "$c/routes/orders.route" >"$c/routes/orders2.route"
sed -i 's/^topic = .*/topic = "cdc.public.orders2";/' "$c/routes/orders2.route"
kill -HUP "$CDCR_PID"
wait_until 30 "prepare refused" log_has 'a statement does not prepare'; ok $? "a statement that does not prepare refuses the reload"
like "$(grep 'does not prepare' "$T_TMP/cdcr.log")" "no_such_table" "naming the culprit"
rm "$c/routes/orders2.route"
kill -HUP "$CDCR_PID"
wait_until 30 "generation 3" log_has '"msg":"configuration reloaded","generation":3'; ok $? "a fixed configuration reloads (generation 3)"
cdcr_stop; is "$CDCR_RC" 0 "clean exit"
done_testing
