#!/usr/bin/env python3
"""Debezium-shaped customer change events for tests and benchmarks.

Writes "key<TAB>value" lines (an empty value is a tombstone) exactly as
Debezium's ExtractNewRecordState writes them with
delete.tombstone.handling.mode=rewrite-with-tombstone, and the final table
state they imply (id|email|status|updated_at, sorted) to --expect.
"""
import argparse
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="events")
    ap.add_argument("--keys", type=int, default=100, help="distinct ids")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deletes", type=float, default=0.1, help="share of deletes")
    ap.add_argument("--tombstones", action="store_true", help="a tombstone after each delete")
    ap.add_argument("--snapshot", type=int, default=0, help="first N events are snapshot reads (__op r)")
    ap.add_argument("--expect", help="write the final state here")
    ap.add_argument("--prefix", default="", help="email prefix, to tell runs apart")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    ids = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(a.keys)]
    state = {}
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    lsn = 24000000
    out = sys.stdout
    for i in range(a.n):
        k = ids[rnd.randrange(a.keys)]
        ts = t0 + timedelta(microseconds=i * 1000 + rnd.randrange(1000))
        lsn += 100 + rnd.randrange(50)
        src = int(ts.timestamp() * 1000)
        key = json.dumps({"id": k}, separators=(",", ":"))
        if k in state and i >= a.snapshot and rnd.random() < a.deletes:
            row = state.pop(k)
            v = dict(row, __deleted="true", __op="d", __source_ts_ms=src, __lsn=lsn)
            out.write(key + "\t" + json.dumps(v, separators=(",", ":")) + "\n")
            if a.tombstones:
                out.write(key + "\t\n")
            continue
        row = {
            "id": k,
            "email": "%suser%d.%d@example.com" % (a.prefix, rnd.randrange(10**6), i),
            "status": rnd.choice(["active", "inactive", "pending", "blocked"]),
            "updated_at": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        op = "r" if i < a.snapshot else ("u" if k in state else "c")
        state[k] = row
        v = dict(row, __deleted="false", __op=op, __source_ts_ms=src, __lsn=lsn)
        out.write(key + "\t" + json.dumps(v, separators=(",", ":")) + "\n")
    if a.expect:
        with open(a.expect, "w") as f:
            for k in sorted(state):
                r = state[k]
                f.write("%s|%s|%s|%s\n" % (r["id"], r["email"], r["status"], r["updated_at"]))


if __name__ == "__main__":
    main()
