#!/usr/bin/env bash
# e2e 6. Kafka restart mid-stream: while a writer keeps changing the source,
# the broker is stopped (`docker/stack stop kafka`), writes go on, it is
# started again.  Connect and the main cdcrouter recover by themselves (it
# never exits; the audit instance gets a SIGTERM while the broker is down
# and is started again after), everything arrives, the sink equals
# the source exactly and the audit shows every event applied once.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t6-$E2E_RUN

e2e_pipeline
e2e_drain; ok $? "drained before the outage"
before=$(topic_hwm "$E2E_TOPIC")

e2e_writer_start "$tag" 300 0.01
e2e_writer_wait 100; ok $? "writer running (100 transactions)"
hwm_above() { (($(topic_hwm "$E2E_TOPIC") > $1)); }
wait_until 60 "the writer's changes on the topic" hwm_above "$before"; ok $? "changes are flowing through Kafka"

t0=$SECONDS
e2e_stack stop kafka; ok $? "docker/stack stop kafka"
diag "kafka stopped in $((SECONDS - t0))s"
ok "$(kafka_answers && echo 1 || echo 0)" "the broker is down"

# SIGTERM right after the broker went away, while the audit instance's
# group membership is still current: it cannot leave the group, yet exits 0
# within about session.timeout.ms (10 s; it used to wait for the coordinator
# for as long as it was away). It is started again once the broker is back
# and resumes from its sink offsets.
t0=$SECONDS
kill -TERM "${E2E_PID[audit]}"
audit_gone() { ! e2e_alive audit; }
wait_until 30 "audit exits after SIGTERM" audit_gone; ok $? "SIGTERM with the broker down: exits within 30 s (took $((SECONDS - t0)) s)"
E2E_RC=0; wait "${E2E_PID[audit]}" 2>/dev/null || E2E_RC=$?
is "$E2E_RC" 0 "... with status 0"
diag "audit: $(grep -c '"msg":"left the consumer group without saying so' "$T_TMP/audit.log") unclean group leave(s) logged"
e2e_writer_wait 300 120; ok $? "300 more source transactions while the broker is down"
ok "$(e2e_alive main; echo $?)" "cdcrouter (main) still running while the broker is down"

t0=$SECONDS
e2e_stack start kafka; ok $? "docker/stack start kafka"
diag "kafka started in $((SECONDS - t0))s"
e2e_start audit
e2e_writer_wait 200 120; ok $? "200 more transactions after the restart"
e2e_writer_stop
is "$E2E_WRITER_RC" 0 "writer: $E2E_WRITER_N transactions, no error"

e2e_drain 180; ok $? "drained after the outage: Connect and cdcrouter recovered by themselves"
is "$(connector_state)" "RUNNING RUNNING" "connector and task RUNNING (never restarted by the test)"
ok "$(e2e_alive main && e2e_alive audit; echo $?)" "cdcrouter never exited (main; audit since its restart)"
e2e_compare "exact after the Kafka restart"
e2e_audit_check
# Debezium delivers at least once: after a broker outage it could resend
# records (same id, op and LSN).  Shown, not asserted: the audit above
# already proves that cdcrouter applied every record of the topic once.
diag "Debezium records sent twice across the outage: $(topic_events "$E2E_TOPIC" "$before" | cut -f3,4,5 | sort | uniq -d | wc -l)"
n=$(jq -R 'fromjson? | select(.msg == "kafka consumer error" or .msg == "librdkafka")' "$T_TMP/main.log" | wc -l)
diag "main: $n Kafka error/warning lines during the outage"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
