#!/usr/bin/env bash
# e2e 9. Crash: kill -9 of both cdcrouter processes, repeatedly, during a
# sustained write load on the source, each kill aimed at a moment when the
# process's sink transaction is open and has written (pg_stat_activity).
# At the end the sink equals the source exactly and the audit shows every
# event of the topic applied exactly once: a batch is applied together with
# its offsets or not at all, and a restarted process resumes from the
# offsets stored in the sink.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
tag=t9-$E2E_RUN
ROUNDS=${CDCR_E2E_CRASH_ROUNDS:-5}

e2e_pipeline
e2e_drain; ok $? "drained before the load"
start=$(topic_hwm "$E2E_TOPIC")

e2e_writer_start "$tag" 500 0.005
e2e_writer_wait 100; ok $? "writer running"
declare -A kills=() hits=() progressed=() from=()
group_of() { if [[ $1 == main ]]; then echo "$E2E_GROUP"; else echo "$E2E_GROUP-audit"; fi; }
for inst in main audit; do from[$inst]=$(stored_offset "$(group_of "$inst")" "$E2E_TOPIC" 0); done
for round in $(seq 1 "$ROUNDS"); do
    for inst in main audit; do
        g=$(group_of "$inst")
        # first let this run commit at least one batch, then kill it while a
        # later batch is being written (or after 20 s, whatever it is doing)
        if wait_until 60 "$inst to commit a batch" e2e_past "$g" "${from[$inst]}"; then
            progressed[$inst]=$((${progressed[$inst]:-0} + 1))
        fi
        if wait_until 20 "$inst in a written sink transaction" e2e_wait_in_tx "$inst" 5; then
            hits[$inst]=$((${hits[$inst]:-0} + 1))
        fi
        e2e_alive "$inst" || { diag "$inst died by itself; log tail:"; tail -5 "$T_TMP/$inst.log" | sed 's/^/#   /'; break 2; }
        e2e_kill "$inst"; kills[$inst]=$((${kills[$inst]:-0} + 1))
        from[$inst]=$(stored_offset "$g" "$E2E_TOPIC" 0)
    done
    diag "round $round: killed at offsets main ${from[main]}, audit ${from[audit]}; topic at $(topic_hwm "$E2E_TOPIC"), writer at $(e2e_writer_ticks) transactions"
    e2e_start main; e2e_start audit
done
e2e_writer_wait 100; ok $? "the writer kept writing throughout"
e2e_writer_stop; is "$E2E_WRITER_RC" 0 "writer: $E2E_WRITER_N transactions, no error"
for inst in main audit; do
    is "${kills[$inst]:-0}" "$ROUNDS" "$inst: killed $ROUNDS times with SIGKILL"
    is "${progressed[$inst]:-0}" "$ROUNDS" "$inst: committed batches before each kill"
    diag "$inst: ${hits[$inst]:-0} of the kills hit an open sink transaction that had written"
done
ok "$( ((${hits[main]:-0} + ${hits[audit]:-0} >= ROUNDS)); echo $?)" "at least half of the kills hit an open sink transaction that had written"

e2e_drain 180; ok $? "drained after the crashes"
e2e_compare "exact after $ROUNDS crashes"
e2e_audit_check
is "$(sink_sql -c "SELECT count(*) FROM public.audit WHERE off >= $start AND op <> 'r'")" \
   "$(topic_events "$E2E_TOPIC" "$start" | wc -l)" "audit: every event since the load began, once"
dups=$(e2e_log main '.msg == "progress"' | jq -s 'map(.duplicates) | max // 0')
diag "main: redelivered messages skipped as already applied (max progress 'duplicates'): $dups"
for inst in main audit; do e2e_stop "$inst"; is "$E2E_RC" 0 "$inst: SIGTERM exits 0"; done
done_testing
