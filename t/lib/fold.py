#!/usr/bin/env python3
"""Final customer state implied by "key<TAB>value" event lines on stdin
(the same form as gen.py --expect): id|email|status|updated_at, sorted."""
import json
import sys

state = {}
for line in sys.stdin:
    k, _, v = line.rstrip("\n").partition("\t")
    if not v:
        continue                      # tombstone
    try:
        d = json.loads(v)
    except ValueError:
        continue                      # poison: never applied
    if not isinstance(d, dict) or "id" not in d:
        continue
    if d.get("__deleted") == "true":
        state.pop(d["id"], None)
    else:
        state[d["id"]] = d
for i in sorted(state):
    r = state[i]
    print("%s|%s|%s|%s" % (r["id"], r["email"], r["status"], r["updated_at"]))
