#!/usr/bin/env python3
"""bench/report.py OUT: turns bench/run's CSV files into the printed table,
results.md (with the targets of issue 5 checked) and plot.gp (gnuplot
script for bench.png).  Reads its context from the environment bench/run
exports (MODE, N, MACHINE, PG_SETTINGS, ...)."""
import csv
import os
import sys

out = sys.argv[1]
env = os.environ.get


def rows(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


res = rows("results.csv")
lat = rows("latency.csv")
bat = rows("batch.csv")
fil = rows("fill.csv")
rss = rows("rss.csv")

by = {r["row"]: r for r in res}
cd = by.get("cdcrouter (shipped route + config)")
cd_eps = num(cd["events_per_s"]) if cd else None


def fmt(x, nd=0):
    v = num(x)
    if v is None:
        return "–"
    return f"{v:,.{nd}f}"


# ---- the main table ---------------------------------------------------------
head = ["row", "events", "seconds", "events/s", "client CPU s / 1M ev", "PostgreSQL CPU s / 1M ev",
        "Kafka broker CPU s / 1M ev", "peak RSS MB", "× cdcrouter", "first commit s", "verified"]
table = []
for r in res:
    eps = num(r["events_per_s"])
    ratio = f"{eps / cd_eps:.3g}×" if cd_eps and eps else "–"
    table.append([r["row"], fmt(r["events"]), fmt(r["seconds"], 2), fmt(r["events_per_s"]),
                  fmt(r["client_cpu_s_per_M"], 1), fmt(r["pg_cpu_s_per_M"], 1), fmt(r["kafka_cpu_s_per_M"], 1),
                  fmt(r["peak_rss_mb"], 1),
                  ratio, r["startup_s"] if r["startup_s"] != "-" else "–", r["verified"]])


def text_table(head, body):
    w = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(head))
    s = [line, "  ".join("-" * x for x in w)]
    for b in body:
        s.append("  ".join((str(c).rjust(w[i]) if i else str(c).ljust(w[i])) for i, c in enumerate(b)))
    return "\n".join(s)


def md_table(head, body):
    s = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    for b in body:
        s.append("| " + " | ".join(str(c) for c in b) + " |")
    return "\n".join(s)


# ---- targets -------------------------------------------------------------------
def find(prefix):
    for r in res:
        if r["row"].startswith(prefix):
            return r
    return None


targets = []


def target(name, ok, detail):
    targets.append([name, "met" if ok else ("MISSED" if ok is not None else "not measured"), detail])


lim, jd, jdd = find("PostgreSQL limit"), by.get("Debezium JDBC sink 3.6.0"), find("Debezium JDBC sink 3.6.0, default")
nsync, nasync = find("naive consumer (sync"), find("naive consumer (async")
if cd and lim:
    s = cd_eps / num(lim["events_per_s"])
    target("≥ 70% of PostgreSQL's limit", s >= 0.70, f"{s:.0%} ({fmt(cd['events_per_s'])} vs {fmt(lim['events_per_s'])} events/s)")
if cd and nsync:
    s = cd_eps / num(nsync["events_per_s"])
    extra = ""
    if nasync:
        extra = f"; {cd_eps / num(nasync['events_per_s']):.0f}× the async-commit variant"
    target("≥ 10× the naive consumer", s >= 10, f"{s:.0f}× (sync offset commit){extra}")
if cd and jd:
    s = cd_eps / num(jd["events_per_s"])
    m = num(jd["peak_rss_mb"]) / num(cd["peak_rss_mb"])
    extra = f"; {cd_eps / num(jdd['events_per_s']):.0f}× its default batching" if jdd else ""
    target("≥ 20× the JDBC sink's events/s", s >= 20, f"{s:.1f}× the tuned JDBC sink{extra}")
    target("≤ 1/10 of the JDBC sink's RSS", m >= 10, f"1/{m:.1f} ({fmt(cd['peak_rss_mb'], 1)} MB vs {fmt(jd['peak_rss_mb'], 1)} MB, whole Connect JVM)")
if cd:
    fast = by.get("cdcrouter (fastest config)")
    extra = f"; fastest config {fmt(fast['peak_rss_mb'], 1)} MB" if fast else ""
    target("peak RSS < 50 MB", num(cd["peak_rss_mb"]) < 50, f"{fmt(cd['peak_rss_mb'], 1)} MB shipped config{extra}")
base = find("cdcrouter " + env("BASELINE", "-") + " (baseline")
if cd and base and num(cd["client_cpu_s_per_M"]) and num(base["client_cpu_s_per_M"]):
    a, b = num(cd["client_cpu_s_per_M"]), num(base["client_cpu_s_per_M"])
    target("CPU per 1M events ≤ half the baseline's (issue 9)", a <= b / 2,
           f"{a:.2f} s against {b:.2f} s for {env('BASELINE')} ({a / b:.0%}), shipped route and config")
l2k = [r for r in lat if r["rate_target"] == "2000" and r["config"] == "shipped"]
if l2k:
    p99 = num(l2k[0]["own_p99_ms"])
    target("own latency p99 ≤ 50 ms at 2,000 ev/s", p99 is not None and p99 <= 50,
           f"p99 {fmt(l2k[0]['own_p99_ms'], 1)} ms (Kafka append → sink row written)")
if len(rss) > 10:
    pts = [(num(r["events_applied"]), num(r["rss_mb"])) for r in rss]
    n = pts[-1][0] or 1
    early = max(v for e, v in pts if e <= 0.5 * n) if any(e <= 0.5 * n for e, v in pts) else None
    late = max(v for e, v in pts if e > 0.5 * n) if any(e > 0.5 * n for e, v in pts) else None
    if early and late:
        target("RSS flat in N", late <= early * 1.10,
               f"max {early:.1f} MB over the first half of the events, {late:.1f} MB over the second half")

# ---- write ------------------------------------------------------------------------
mode = env("MODE", "full")
md = []
md.append(f"# cdcrouter benchmark ({mode} run, {env('STAMP', '')})\n")
md.append(f"Machine: {env('MACHINE', '?')}. The machine is shared: other engineers' tests may have used "
          "CPU during the run; all ratios compare rows of this same run.\n")
md.append(f"cdcrouter under test: {env('CDCR_VERSION', '?')}.\n")
md.append("Command: `bench/run" + (" --smoke" if mode == "smoke" else "") + "` (see bench/README.md for the method).\n")
md.append("## Apply throughput\n")
md.append(f"Debezium-shaped customer change events (inserts, updates of existing keys, deletes each followed by "
          f"its tombstone; ~210-byte values; keys = events / 5), preloaded into a one-partition topic, applied into an "
          f"empty sink table. Clock: from process start (connector registration for the JDBC sink) until every "
          f"offset is committed (the sink's cdcrouter.offsets for cdcrouter, the consumer group's Kafka offset for "
          f"the others); then the sink is compared with the expected final state, column by column.\n")
md.append(md_table(head, table) + "\n")
md.append("Notes per row:\n")
for r in res:
    md.append(f"- **{r['row']}**: {r['note']}")
md.append("")
md.append("\"× cdcrouter\" is the row's events/s divided by the shipped cdcrouter's. Client CPU is the process's "
          "user+system time (/proc; `time` for the naive consumer); PostgreSQL CPU is that of the whole "
          "cluster (backends, WAL writer, checkpointer) over the row, and Kafka broker CPU that of the broker's JVM "
          "(all three share the machine's cores). Peak RSS is VmHWM. \"first commit\" is when the first batch's "
          "offset was in the sink, counted from process start.\n")
md.append("PostgreSQL settings (identical for every row): " +
          ", ".join(l.strip() for l in env("PG_SETTINGS", "").splitlines() if l.strip()) + ".\n")
if targets:
    md.append("## Targets (issues 5 and 9)\n")
    if mode == "smoke":
        md.append("A smoke run's N is far too small for these to mean anything; they are checked to exercise the code.\n")
    md.append(md_table(["target", "result", "measured"], targets) + "\n")
if lat:
    md.append("## End-to-end latency (Debezium PostgreSQL source → Kafka → cdcrouter → sink)\n")
    md.append(f"pgbench commits one INSERT per transaction into the source table at a fixed rate for "
              f"{env('LAT_SECS')} s per rate; cdcrouter runs the shipped configuration (and, at the highest rate, once more with "
              f"apply.batch_wait_ms=5) with bench/latency.route "
              f"(the customer route plus timing columns). total = sink row written (clock_timestamp()) − source "
              f"commit (__source_ts_ms); own = sink row written − Kafka append time (LogAppendTime topic); "
              f"Debezium = Kafka append − source commit. The first seconds of each rate are left out as warm-up.\n")
    lh = ["target rate /s", "cdcrouter config", "achieved /s", "events", "total p50", "p95", "p99", "max", "own p50", "p95", "p99", "max",
          "Debezium p50", "p99"]
    lb = [[r["rate_target"], r["config"], r["rate_achieved"], r["events"], r["total_p50_ms"], r["total_p95_ms"], r["total_p99_ms"],
           r["total_max_ms"], r["own_p50_ms"], r["own_p95_ms"], r["own_p99_ms"], r["own_max_ms"],
           r["debezium_p50_ms"], r["debezium_p99_ms"]] for r in lat]
    md.append("All in ms.\n\n" + md_table(lh, lb) + "\n")
if bat or fil or rss:
    md.append("## Scaling\n")
if bat:
    md.append("Events/s by batch size (cdcrouter: apply.batch_size, the rest of the shipped configuration; "
              "PostgreSQL limit: the same batches):\n")
    md.append(md_table(["batch size", "cdcrouter events/s", "cdcrouter peak RSS MB", "PostgreSQL limit events/s",
                        "cdcrouter / limit", "verified"],
                       [[r["batch_size"], fmt(r["cdcrouter_events_per_s"]), r["cdcrouter_peak_rss_mb"],
                         fmt(r["pglimit_events_per_s"]), r["cdcrouter_share_of_limit"], r["verified"]] for r in bat]) + "\n")
if fil:
    md.append("Sink size: the same events applied while the sink table already holds other rows "
              "(shipped configuration):\n")
    md.append(md_table(["rows present", "cdcrouter events/s", "peak RSS MB", "verified"],
                       [[fmt(r["sink_rows_before"]), fmt(r["cdcrouter_events_per_s"]), r["peak_rss_mb"], r["verified"]]
                        for r in fil]) + "\n")
if len(rss) > 10:
    pts = [(num(r["events_applied"]), num(r["rss_mb"])) for r in rss]
    n = pts[-1][0]
    samples = []
    for frac in (0.01, 0.1, 0.25, 0.5, 0.75, 1.0):
        e, v = min(pts, key=lambda p: abs(p[0] - frac * n))
        samples.append([fmt(e), f"{v:.1f}"])
    md.append("RSS against events applied (shipped configuration, main run; sampled every 50 ms):\n")
    md.append(md_table(["events applied (offset)", "RSS MB"], samples) + "\n")
md.append("![throughput, scaling, memory and latency](bench.png)\n")
with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(md))

print(text_table(head, table))
if targets:
    print()
    print(text_table(["target", "result", "measured"], targets))
if lat:
    print()
    print(text_table(["rate", "config", "achieved", "total p50", "p99", "max", "own p50", "p99", "max"],
                     [[r["rate_target"], r["config"], r["rate_achieved"], r["total_p50_ms"], r["total_p99_ms"], r["total_max_ms"],
                       r["own_p50_ms"], r["own_p99_ms"], r["own_max_ms"]] for r in lat]))

# ---- chart data + gnuplot script ------------------------------------------------------
pd = os.path.join(out, "plot")
os.makedirs(pd, exist_ok=True)
with open(os.path.join(pd, "throughput.dat"), "w") as f:
    for r in res:
        f.write('"%s"\t%s\n' % (r["row"].replace("PostgreSQL limit (set-based, no Kafka/JSON)", "PostgreSQL limit"),
                                r["events_per_s"]))
with open(os.path.join(pd, "batch.dat"), "w") as f:
    for r in bat:
        f.write("%s\t%s\t%s\n" % (r["batch_size"], r["cdcrouter_events_per_s"], r["pglimit_events_per_s"]))
with open(os.path.join(pd, "rss.dat"), "w") as f:
    for r in rss:
        f.write("%s\t%s\n" % (r["events_applied"], r["rss_mb"]))
with open(os.path.join(pd, "latency.dat"), "w") as f:
    for r in lat:
        f.write("%s\t%s\t%s\t%s\t%s\n" % (r["rate_target"] + ("" if r["config"] == "shipped" else " (" + r["config"] + ")"),
                                          r["total_p50_ms"], r["total_p99_ms"], r["own_p50_ms"],
                                          r["own_p99_ms"]))
def panel(title, have, body):
    if have:
        return f'set title "{title}"\n' + body
    return (f'set title "{title}"\nunset xtics\nunset ytics\nset xrange [0:1]\nset yrange [0:1]\n'
            'set label 1 "not measured in this run" at 0.5,0.5 center\nplot NaN notitle\nunset label 1\n'
            'set xtics\nset ytics\nset xrange [*:*]\nset yrange [*:*]\n')


gp = f"""set terminal pngcairo size 1500,1050 font "DejaVu Sans,10"
set output "bench.png"
set multiplot layout 2,2 title "cdcrouter benchmark ({mode}, {env('STAMP', '')}; {env('MACHINE', '').split(',')[0]})"
set datafile separator "\\t"
set termoption noenhanced
set grid ytics
set style fill solid 0.8
"""
gp += panel("Apply throughput (events/s, log scale)", res, """set logscale y
set boxwidth 0.6
set xtics rotate by -25 font ",8" nomirror
set yrange [10:*]
plot "plot/throughput.dat" using 0:2:xtic(1) with boxes lc rgb "#3b7dd8" notitle, \\
     "" using 0:($2*1.25):(sprintf("%.0f", $2)) with labels font ",8" notitle
unset logscale y
set yrange [*:*]
set xtics norotate font ",10"
""")
gp += panel("Events/s by batch size", bat, """set logscale x
set xlabel "batch size (messages)"
set yrange [0:*]
set key bottom right
plot "plot/batch.dat" using 1:2 with linespoints lw 2 title "cdcrouter", \\
     "" using 1:3 with linespoints lw 2 title "PostgreSQL limit"
unset logscale x
set yrange [*:*]
""")
gp += panel("cdcrouter RSS while applying N events (shipped config)", len(rss) > 1, """set xlabel "events applied (offset)"
set ylabel "RSS (MB)"
set yrange [0:*]
plot "plot/rss.dat" using 1:2 with lines lw 2 notitle
set yrange [*:*]
""")
gp += panel("End-to-end latency (ms, log scale)", lat, """set xlabel "source write rate (changes/s), cdcrouter config"
set ylabel "ms"
set logscale y
set yrange [1:20000]
set style data histograms
set style histogram clustered gap 1
set key top left horizontal font ",9"
plot "plot/latency.dat" using 2:xtic(1) title "total p50", "" using 3 title "total p99", \\
     "" using 4 title "cdcrouter own p50", "" using 5 title "cdcrouter own p99"
""")
gp += "unset multiplot\n"
with open(os.path.join(out, "plot.gp"), "w") as f:
    f.write(gp)
