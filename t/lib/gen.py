#!/usr/bin/env python3
"""Debezium-shaped customer change events for tests and benchmarks.

Writes "key<TAB>value" lines (an empty value is a tombstone) exactly as
Debezium's ExtractNewRecordState writes them with
delete.tombstone.handling.mode=rewrite-with-tombstone, and the final table
state they imply (id|email|status|updated_at, sorted) to --expect.

For benchmarks, the same messages can also be written
  --schemas FILE  as the JSON converter writes them with schemas.enable=true
                  ({"schema":...,"payload":...} key and value; what the
                  Debezium JDBC sink needs), same "key<TAB>value" lines;
  --tsv FILE      as plain columns, one line per message, for tools that
                  skip JSON: "c|u|d<TAB>id<TAB>email<TAB>status<TAB>updated_at"
                  (an upsert is c or u), or "t<TAB>id" for a tombstone.
"""
import argparse
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone


def _schema(name, fields):
    return {"type": "struct", "optional": False, "name": name, "fields": [
        dict({"field": f, "type": t, "optional": opt}, **({"name": n, "version": 1} if n else {}))
        for f, t, opt, n in fields]}


# What Debezium's PostgreSQL connector + ExtractNewRecordState (add.fields=
# op,source.ts_ms,lsn) declare for public.customer; written as the prefix of
# every {"schema":...,"payload":...} document.
KEY_SCHEMA = '{"schema":%s,"payload":' % json.dumps(_schema("cdc.public.customer.Key", [
    ("id", "string", False, "io.debezium.data.Uuid")]), separators=(",", ":"))
VALUE_SCHEMA = '{"schema":%s,"payload":' % json.dumps(_schema("cdc.public.customer.Value", [
    ("id", "string", False, "io.debezium.data.Uuid"),
    ("email", "string", False, None),
    ("status", "string", False, None),
    ("updated_at", "string", False, "io.debezium.time.ZonedTimestamp"),
    ("__deleted", "string", True, None),
    ("__op", "string", True, None),
    ("__source_ts_ms", "int64", True, None),
    ("__lsn", "int64", True, None)]), separators=(",", ":"))


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
    ap.add_argument("--schemas", help="also write the messages with JSON schemas here")
    ap.add_argument("--tsv", help="also write the messages as plain columns here")
    a = ap.parse_args()
    sch = open(a.schemas, "w") if a.schemas else None
    tsv = open(a.tsv, "w") if a.tsv else None

    def emit(k, key, v):
        """One message: key JSON, value dict (None: tombstone)."""
        out.write(key + "\t" + ("" if v is None else json.dumps(v, separators=(",", ":"))) + "\n")
        if sch:
            sch.write(KEY_SCHEMA + json.dumps({"id": k}, separators=(",", ":")) + "}\t")
            if v is not None:
                sch.write(VALUE_SCHEMA + json.dumps(v, separators=(",", ":")) + "}")
            sch.write("\n")
        if tsv:
            if v is None:
                tsv.write("t\t%s\n" % k)
            else:
                tsv.write("%s\t%s\t%s\t%s\t%s\n" % ("d" if v["__deleted"] == "true" else v["__op"] == "r" and "c" or v["__op"],
                                                  k, v["email"], v["status"], v["updated_at"]))

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
            emit(k, key, v)
            if a.tombstones:
                emit(k, key, None)
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
        emit(k, key, v)
    for f in (sch, tsv):
        if f:
            f.close()
    if a.expect:
        with open(a.expect, "w") as f:
            for k in sorted(state):
                r = state[k]
                f.write("%s|%s|%s|%s\n" % (r["id"], r["email"], r["status"], r["updated_at"]))


if __name__ == "__main__":
    main()
