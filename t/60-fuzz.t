#!/usr/bin/env bash
# The libFuzzer targets of t/fuzz (route loader, SQL templates, extraction,
# traceparent), built with clang-14, ASan and UBSan (./configure
# --enable-fuzz) in a copy of the tree's tracked files under
# $CDCR_BUILDDIR/.fuzz (rebuilt only when a source changed). Each target
# first replays its seed corpus t/fuzz/corpus/<target> (every input that
# once found a bug stays there as regress.*), then fuzzes from a copy of it
# for FUZZ_SECONDS (default 20) from the random seed FUZZ_SEED (default 1:
# each run walks the same inputs, as far as the time allows; FUZZ_RUNS caps
# their number). A crash, a leak, undefined behaviour or a timeout fails the
# test; the input that caused it is kept in $CDCR_BUILDDIR/.fuzz/artifacts:
# fix the bug and add the input to the corpus as regress.<what>.
source "$CDCR_SRCDIR/t/lib/setup.sh"
F=$CDCR_BUILDDIR/.fuzz
command -v clang-14 >/dev/null || bail "clang-14 is missing (t/deps installs it)"

mkdir -p "$F"
(cd "$CDCR_SRCDIR" && git ls-files -z 2>/dev/null) | (cd "$CDCR_SRCDIR" && xargs -0 cp --parents -u -t "$F") ||
    bail "cannot copy the tree (not a git checkout?)"
{
    cd "$F"
    [[ -x configure ]] || autoreconf -fi
    [[ -f Makefile ]] || ./configure CC=clang-14 CXX=clang++-14 --enable-fuzz CFLAGS='-g -O1' CXXFLAGS='-g -O1'
    make -j"$(nproc)" fuzz
} >"$T_TMP/build.log" 2>&1 || { tail -30 "$T_TMP/build.log" | sed 's/^/# /'; bail "the --enable-fuzz build failed"; }
ok 0 "the --enable-fuzz build"

# full stacks at malloc (Debian's libjq has no frame pointers), so that
# t/lsan.supp can name the library function that leaked
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:halt_on_error=1:symbolize=1:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$CDCR_SRCDIR/t/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$F/artifacts"
runs=${FUZZ_RUNS:--1} seed=${FUZZ_SEED:-1} secs=${FUZZ_SECONDS:-20}

# report <what> <log>: ok, or not ok with the sanitizer's report
report() {
    if [[ $1 == 0 ]]; then ok 0 "$2"; return; fi
    ok 1 "$2"
    grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error|SUMMARY|Test unit written|ALARM|out-of-memory' "$3" |
        head -20 | sed 's/^/#   /'
    tail -25 "$3" | sed 's/^/#   /'
}

for t in route sqltpl extract traceparent; do
    bin=$F/t/fuzz/fuzz_$t seeds=$CDCR_SRCDIR/t/fuzz/corpus/$t
    [[ -x $bin ]] || bail "$bin was not built"
    n=$(find "$seeds" -type f | wc -l)
    ((n > 0)) || bail "no seed corpus in $seeds"

    # every seed and regression input, once
    log=$T_TMP/$t.replay.log
    rc=0; "$bin" -runs=0 -timeout=10 -artifact_prefix="$F/artifacts/$t-" "$seeds" >"$log" 2>&1 || rc=$?
    report "$rc" "fuzz_$t: the $n inputs of t/fuzz/corpus/$t" "$log"

    # new inputs from a copy of the corpus (the tree's corpus stays as it is)
    work=$T_TMP/corpus.$t; mkdir -p "$work"; cp "$seeds"/* "$work/"
    log=$T_TMP/$t.fuzz.log
    rc=0; "$bin" -runs="$runs" -seed="$seed" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -artifact_prefix="$F/artifacts/$t-" "$work" >"$log" 2>&1 || rc=$?
    report "$rc" "fuzz_$t: $secs s of new inputs (seed $seed): no crash, leak or undefined behaviour" "$log"
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "$log" | tail -1 | sed 's/^/#   /' || true
done
done_testing
