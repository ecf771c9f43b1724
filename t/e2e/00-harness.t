#!/usr/bin/env bash
# e2e 0. The harness's own checks can fail: e2e_compare notices a one-
# microsecond difference, a changed text and a missing row; e2e_audit_check
# notices an event applied twice, one lost, and one that is not on the topic.
source "$CDCR_SRCDIR/t/lib/e2e.sh"
e2e_pipeline
e2e_drain; ok $? "drained"
e2e_compare "source = sink"
e2e_audit_check
for inst in main audit; do e2e_stop "$inst"; done

fails() {   # fails <name> <command...>: the command prints "not ok" (in a subshell: no effect on our counts)
    local name=$1 out; shift
    out=$("$@" 2>&1 || true)
    like "$out" "not ok" "$name"
}
m=$E2E_MARKER_ID
sink_sql -c "UPDATE public.customer SET updated_at = updated_at + interval '1 microsecond' WHERE id = '$m'"
fails "compare: one microsecond off" e2e_compare x
sink_sql -c "UPDATE public.customer SET updated_at = updated_at - interval '1 microsecond', status = status || ' ' WHERE id = '$m'"
fails "compare: a trailing space" e2e_compare x
sink_sql -c "UPDATE public.customer SET status = rtrim(status) WHERE id = '$m'"
e2e_compare "compare: restored"
sink_sql -c "DELETE FROM public.customer WHERE id = '$m'"
fails "compare: a row missing" e2e_compare x

sink_sql -c "INSERT INTO public.audit (part, off, id, op) SELECT part, off, id, op FROM public.audit ORDER BY off DESC LIMIT 1"
fails "audit: an event applied twice" e2e_audit_check
sink_sql -c "DELETE FROM public.audit WHERE ctid IN (SELECT ctid FROM public.audit ORDER BY off DESC LIMIT 2)"
fails "audit: an event lost" e2e_audit_check
sink_sql -c "INSERT INTO public.audit (part, off, id, op) VALUES (0, 999999999, '$m', 'u')"
fails "audit: an event that is not on the topic" e2e_audit_check
done_testing
