#!/usr/bin/env bash
# bench/run --smoke: the benchmark's every part on small N (its own private
# stack on ports 25433/29092/29093/28083, removed afterwards), so the
# benchmark code cannot rot. Checks the result files and that every row
# verified the sink's final state. Skipped when the native stack's pieces
# (Java, the Kafka jars and Connect plugins cached by `docker/stack install`)
# are not there: installing them does not fit in a test's time.
source "$CDCR_SRCDIR/t/lib/setup.sh"

cache=${CDCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdcrouter}
missing=
command -v java >/dev/null || missing+=" java"
compgen -G "$cache/kafka-*/lib/kafka_2.13-*.jar" >/dev/null || missing+=" kafka-jars"
compgen -G "$cache/connect-plugins-*/.complete" >/dev/null || missing+=" connect-plugins"
for c in kcat jq curl pgbench cc pkg-config; do command -v "$c" >/dev/null || missing+=" $c"; done
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=" postgresql-15"
if [[ -n $missing ]]; then
    echo "1..0 # SKIP native stack not installed (missing:$missing; run docker/stack install)"
    exit 0
fi

out=$T_TMP/results
has() { if [[ -s $1 ]]; then echo 0; else echo 1; fi; }
start=$SECONDS
CDCR_BIN=$CDCR "$CDCR_SRCDIR/bench/run" --smoke --out "$out" >"$T_TMP/bench.out" 2>&1 && rc=0 || rc=$?
took=$((SECONDS - start))
is "$rc" 0 "bench/run --smoke exits 0"
((rc == 0)) || sed 's/^/# /' "$T_TMP/bench.out" | tail -n 40
ok $((took < 120 ? 0 : 1)) "it took ${took}s (< 120s)"

for f in results.md results.csv latency.csv batch.csv fill.csv rss.csv table.txt; do
    ok "$(has "$out/$f")" "$f written"
done
if command -v gnuplot >/dev/null; then ok "$(has "$out/bench.png")" "bench.png written"; fi

rows=$(tail -n +2 "$out/results.csv" 2>/dev/null | wc -l)
is "$rows" 8 "eight throughput rows"
for who in "cdcrouter (shipped route + config)" "cdcrouter (fastest config)" "cdcrouter (shipped) at the JDBC row's N" \
           "Debezium JDBC sink 3.6.0" "Debezium JDBC sink 3.6.0, default batching" \
           "naive consumer (sync offset commit)" "naive consumer (async offset commit)" \
           "PostgreSQL limit (set-based, no Kafka/JSON)"; do
    line=$(grep -F "\"$who\"," "$out/results.csv" || true)
    like "$line" ',yes,' "$who: sink verified against the expected final state"
    eps=$(python3 -c 'import csv,sys; r=[x for x in csv.reader(open(sys.argv[1])) if x[0] == sys.argv[2]]; print(r[0][4] if r else 0)' "$out/results.csv" "$who")
    ok $((${eps%.*} > 0 ? 0 : 1)) "$who: events/s measured ($eps)"
done
is "$(tail -n +2 "$out/batch.csv" | grep -vc ',yes$')" 0 "every batch-size run verified"
is "$(tail -n +2 "$out/fill.csv" | grep -vc ',yes$')" 0 "every sink-size run verified"
is "$(tail -n +2 "$out/latency.csv" | wc -l)" 3 "latency measured at two source rates (and the higher once more with a short batch wait)"
like "$(tail -n +2 "$out/latency.csv" | cut -d, -f4 | sort -n | head -n 1)" '^[1-9][0-9]*$' "every latency run has events"
like "$(cat "$out/results.md")" "## Targets" "results.md checks the targets"
done_testing
