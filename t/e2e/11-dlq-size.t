#!/usr/bin/env bash
# e2e 11. A dead-letter topic that refuses a message for its size, on the
# real Kafka broker: a 300 kB poison message (invalid JSON) whose
# dead-letter topic has max.message.bytes = 100000. cdcrouter says so once,
# naming the topic and the setting, keeps the partition where it is (the
# good message after the poison is not applied, the stored offset stays at
# the poison), does not exit, and once the topic's limit is raised the copy
# is delivered, byte for byte, and the stream goes on.
# Own topics (the stack's broker), own route and table; no Debezium.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
SRC=e2e11.src.$E2E_RUN DLQ=e2e11.dlq.$E2E_RUN
kafka_tool() { java -Xmx256m -Dlog4j2.configurationFile="$E2E_KAFKA_TOOLS_LOG4J" -cp "$E2E_KAFKA_LIB/*" "$@"; }
kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$E2E_BROKERS" --create --topic "$SRC" \
    --partitions 1 --replication-factor 1 >>"$T_TMP/stack.log" 2>&1; ok $? "source topic $SRC"
kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$E2E_BROKERS" --create --topic "$DLQ" \
    --partitions 1 --replication-factor 1 --config max.message.bytes=100000 >>"$T_TMP/stack.log" 2>&1
ok $? "dead-letter topic $DLQ with max.message.bytes = 100000"
e2e_on_exit "kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server $E2E_BROKERS --delete --topic $SRC"
e2e_on_exit "kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server $E2E_BROKERS --delete --topic $DLQ"

sink_sql -c "CREATE TABLE public.kv (k int PRIMARY KEY, v text)"
cat >"$T_TMP/kv.route" <<ROUTE
topic = "$SRC";
params = { k = ".k"; v = ".v"; };
required = [ "k" ];
key = [ "k" ];
upsert = "INSERT INTO public.kv VALUES (:k::int, :v) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v";
delete = "DELETE FROM public.kv WHERE k = :k::int";
ROUTE
e2e_conf main "$E2E_GROUP" "$T_TMP/kv.route"
printf 'apply = { dead_letter_topic = "%s"; retry_backoff_ms = 100; retry_backoff_max_ms = 1000; };\n' "$DLQ" \
    >"${E2E_CONFDIR[main]}/conf.d/91-dlq.conf"

printf '{"k":1}\t{"k":1,"v":"before"}\n' | kcat -P -b "$E2E_BROKERS" -t "$SRC" -K $'\t'
e2e_start main
first() { [[ $(stored_offset "$E2E_GROUP" "$SRC" 0) == 1 ]]; }
wait_until 60 "the first message applied" first; ok $? "a good message applied"
python3 -c 'import sys; sys.stdout.write("{\"k\":2}\t{\"k\":2,\"v\":\"" + "x" * 300000 + "\" oops\n{\"k\":3}\t{\"k\":3,\"v\":\"after\"}\n")' \
    >"$T_TMP/msgs"
kcat -P -b "$E2E_BROKERS" -t "$SRC" -K $'\t' -X message.max.bytes=1000000 <"$T_TMP/msgs"; ok $? "produced: a 300 kB poison, a good message"
refused() { e2e_log_has main '.msg | startswith("the dead-letter topic refuses this message for its size")'; }
wait_until 60 "the size refusal logged" refused; ok $? "the refusal is logged"
like "$(e2e_log main '.msg | startswith("the dead-letter topic refuses")' | head -1)" \
     "max.message.bytes.*\"dead_letter_topic\":\"$DLQ\".*\"offset\":1" "naming the setting, the dead-letter topic and the message"
# retries with back-off of 0.1 to 1 s: 5 s are several attempts
kept() { [[ $(stored_offset "$E2E_GROUP" "$SRC" 0) == 1 ]]; }
wait_until 10 "stored offset at the poison" kept; ok $? "the stored offset stays at the poison (1)"
e2e_stack status >/dev/null 2>&1 || true
deadline=$((SECONDS + 5)); while ((SECONDS < deadline)); do kept || break; sleep 0.5; done
ok "$(kept; echo $?)" "after 5 s of retries it is still there: nothing committed past it"
is "$(sink_sql -c 'SELECT count(*) FROM public.kv WHERE k = 3')" 0 "the message after it is not applied"
is "$(e2e_log main '.msg | startswith("the dead-letter topic refuses")' | wc -l)" 1 "said once for the message, not at every retry"
ok "$(e2e_alive main; echo $?)" "cdcrouter still running (no crash loop)"

kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$E2E_BROKERS" --alter --entity-type topics \
    --entity-name "$DLQ" --add-config max.message.bytes=1000000 >>"$T_TMP/stack.log" 2>&1; ok $? "the topic's limit raised to 1 MB"
past() { [[ $(stored_offset "$E2E_GROUP" "$SRC" 0) == 3 ]]; }
wait_until 60 "the stream goes on" past; ok $? "the stream goes on: stored offset 3"
is "$(sink_sql -c 'SELECT k, v FROM public.kv ORDER BY k' | tr '\n' ' ')" "1|before 3|after " "the message after it applied"
got=$(kcat -C -b "$E2E_BROKERS" -t "$DLQ" -e -q -f '%S %h\n' -X fetch.message.max.bytes=2000000 2>/dev/null)
size=$(head -n 1 "$T_TMP/msgs" | cut -f2 | tr -d '\n' | wc -c)
like "$got" "^$size .*cdcrouter.error.kind=invalid_json" "the poison is in the dead-letter topic, its $size bytes, kind invalid_json"
is "$(kcat -C -b "$E2E_BROKERS" -t "$DLQ" -e -q -f '%s' -X fetch.message.max.bytes=2000000 2>/dev/null | md5sum)" \
   "$(head -n 1 "$T_TMP/msgs" | cut -f2 | tr -d '\n' | md5sum)" "byte for byte"
e2e_stop main; is "$E2E_RC" 0 "SIGTERM exits 0"
done_testing
