#!/usr/bin/env bash
# e2e 7. Forced processing errors, handled per policy (the shipped config:
# dead-letter topic cdcrouter.dlq, so policy dlq) while the rest continues:
#  - a real Debezium event the sink rejects: the source accepts an email
#    without '@', the sink's CHECK constraint does not (SQLSTATE 23514);
#  - a malformed record produced straight to the topic with kcat.
# Each is in the dead-letter topic with its cdcrouter.error.* and
# cdcrouter.source.* headers and its original bytes, is logged (topic,
# partition, offset, outcome, sqlstate) and counted (the "failed" count of the
# progress line); later events are applied; once the source row is fixed the
# sink equals the source.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t7-$E2E_RUN nonce=$RANDOM$RANDOM
p=$(src_sql -c "SELECT md5('$tag-p')::uuid")
q=$(src_sql -c "SELECT md5('$tag-q')::uuid")
r=$(src_sql -c "SELECT md5('$tag-r')::uuid")

dlq_start=$(topic_hwm "$E2E_DLQ" 2>/dev/null || echo 0)   # before this test's processes exist
e2e_pipeline
src_sql -c "INSERT INTO public.customer (id, email, status) VALUES ('$p', 'p@e2e.test', 'ok')"
e2e_drain; ok $? "drained"
start=$(topic_hwm "$E2E_TOPIC")

# 1. the CHECK violation
src_sql -c "UPDATE public.customer SET email = 'no-at-sign-$nonce', updated_at = clock_timestamp() WHERE id = '$p'"
poison=$(topic_wait_record "$E2E_TOPIC" "$start" "(.payload // \"\") | contains(\"no-at-sign-$nonce\")")
e2e_wait_past "$E2E_GROUP" "$poison"; ok $? "cdcrouter went past the rejected update (offset $poison)"
# 2. a malformed record, not from Debezium
bad="{\"id\":\"$q\",\"email\": oops $nonce"
printf '{"id":"%s"}\t%s\n' "$q" "$bad" | kcat -P -b "$E2E_BROKERS" -t "$E2E_TOPIC" -K $'\t'
malformed=$(topic_wait_record "$E2E_TOPIC" "$start" "(.payload // \"\") | contains(\"oops $nonce\")")
# 3. the rest continues: a later insert is applied
src_sql -c "INSERT INTO public.customer (id, email, status) VALUES ('$r', 'r@e2e.test', 'after')"
e2e_drain; ok $? "drained: the stream goes on after both"
is "$(sink_sql -c "SELECT status FROM public.customer WHERE id = '$r'")" "after" "the event after them was applied"
is "$(sink_sql -c "SELECT email FROM public.customer WHERE id = '$p'")" "p@e2e.test" "the sink kept the last good version of the rejected row"
ok "$(e2e_alive main; echo $?)" "cdcrouter still running"

# The dead-letter topic: this test's records, headers as an object
topic_json "$E2E_DLQ" "$dlq_start" | jq -c '.h = ((.headers // []) as $a | [range(0; $a | length; 2) as $i | {($a[$i]): $a[$i + 1]}] | add // {})' >"$T_TMP/dlq"
dlq() { jq -r --arg o "$1" --arg r "$2" "select(.h[\"cdcrouter.source.offset\"] == \$o and .h[\"cdcrouter.error.route\"] == \$r) | $3" "$T_TMP/dlq"; }
is "$(dlq "$poison" customer '.h["cdcrouter.error.sqlstate"]')" 23514 "rejected update: in the dead-letter topic with cdcrouter.error.sqlstate=23514"
is "$(dlq "$poison" customer '[.h["cdcrouter.source.topic"], .h["cdcrouter.source.partition"]] | join(" ")')" "$E2E_TOPIC 0" "  and its source topic and partition"
like "$(dlq "$poison" customer '.h["cdcrouter.error.reason"]')" "customer_email_check" "  and the reason names the constraint"
is "$(dlq "$poison" customer '.h["__debezium.context.connectorName"]')" postgresql "  and Debezium's own headers kept"
is "$(dlq "$poison" customer '.payload' | jq -r .email)" "no-at-sign-$nonce" "  and the original value"
is "$(dlq "$malformed" customer '.h["cdcrouter.error.kind"]')" invalid_json "malformed record: in the dead-letter topic, kind invalid_json"
is "$(dlq "$malformed" customer '.payload')" "$bad" "  with its bytes unchanged"
is "$(dlq "$malformed" customer '.key')" "{\"id\":\"$q\"}" "  and its key"

# The log: one warning per failed message, with its position, outcome and SQLSTATE
line=$(e2e_log main ".msg == \"message failed, sent to the dead-letter topic\" and .offset == $poison")
is "$(jq -r '[.level, .topic, .partition, .offset, .outcome, .sqlstate, .route] | join(" ")' <<<"$line")" \
   "warn $E2E_TOPIC 0 $poison dlq 23514 customer" "log line for the rejected update: topic, partition, offset, outcome, sqlstate"
like "$(jq -r .key <<<"$line")" "$p" "  and the message key"
line=$(e2e_log main ".msg == \"message failed, sent to the dead-letter topic\" and .offset == $malformed")
is "$(jq -r '[.level, .topic, .partition, .offset, .outcome, .error_kind] | join(" ")' <<<"$line")" \
   "warn $E2E_TOPIC 0 $malformed dlq invalid_json" "log line for the malformed record"
# Counted: the progress line's "failed" equals this process's failures (the
# replayed history of earlier runs may hold more poison: count them all)
nfail=$(e2e_log main '.msg == "message failed, sent to the dead-letter topic"' | wc -l)
is "$(jq -r 'select(.h["cdcrouter.error.route"] == "customer") | .offset' "$T_TMP/dlq" | wc -l)" "$nfail" "one dead-letter record per failure logged ($nfail)"
failed_is() { [[ $(e2e_last_progress main failed) == "$1" ]]; }
wait_until 10 "progress line with failed=$nfail" failed_is "$nfail"; ok $? "the progress line counts them: failed=$nfail"
# TELEMETRY HOOK (telemetry issue): assert here that the cdcrouter.errors
# metric grew by $nfail (kinds sql and invalid_json) and that the spans of
# offsets $poison and $malformed carry the error status and outcome dlq.

# Fix the row in the source: the sink follows, and then equals the source.
src_sql -c "UPDATE public.customer SET email = 'fixed@e2e.test', updated_at = clock_timestamp() WHERE id = '$p'"
e2e_drain; ok $? "drained after the fix"
e2e_compare "exact after the fix"
# The malformed record is not a Debezium event: the audit expects only those
# (the audit process dead-letters it too, under route "audit").
e2e_audit_check
is "$(dlq "$malformed" audit '.h["cdcrouter.error.kind"]')" invalid_json "the audit process dead-lettered the malformed record too"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
