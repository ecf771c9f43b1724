#!/usr/bin/env bash
# The unit tests and the mock-broker tests again, on a build with
# AddressSanitizer and UndefinedBehaviorSanitizer (./configure --enable-asan):
# a copy of the tree's tracked files is built under $CDCR_BUILDDIR/.asan
# (rebuilt only when a source changed), and each test file runs against it.
# One line per test file; a failure shows the tail of its output. Set
# CDCR_ASAN_TESTS to choose the files (default: t/unit/*.t t/1*.t t/2*.t t/3*.t).
source "$CDCR_SRCDIR/t/lib/setup.sh"
A=$CDCR_BUILDDIR/.asan

# the tracked files (the working tree's versions), copied where they changed
mkdir -p "$A"
(cd "$CDCR_SRCDIR" && git ls-files -z 2>/dev/null) | (cd "$CDCR_SRCDIR" && xargs -0 cp --parents -u -t "$A") ||
    bail "cannot copy the tree (not a git checkout?)"
{
    cd "$A"
    [[ -x configure ]] || autoreconf -fi
    [[ -f Makefile ]] || ./configure --enable-asan CFLAGS='-g -O1' CXXFLAGS='-g -O1'
    make -j"$(nproc)"
    make -j"$(nproc)" tests-build
} >"$T_TMP/build.log" 2>&1 || { tail -30 "$T_TMP/build.log" | sed 's/^/# /'; bail "the --enable-asan build failed"; }
ok 0 "the --enable-asan build"

# Leaks are reported for cdcrouter's own code; the libraries' process-wide
# caches (libjq's, librdkafka's and libcurl's globals) are suppressed.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:halt_on_error=1:symbolize=1"
export LSAN_OPTIONS="suppressions=$CDCR_SRCDIR/t/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
tests=${CDCR_ASAN_TESTS:-$(cd "$CDCR_SRCDIR" && ls t/unit/*.t t/1*.t t/2*.t t/3*.t)}
for f in $tests; do
    [[ $f == t/70-asan.t ]] && continue
    log=$T_TMP/$(tr / _ <<<"$f").out
    if (cd "$CDCR_SRCDIR" && CDCR_SRCDIR=$CDCR_SRCDIR CDCR_BUILDDIR=$A prove "$f") >"$log" 2>&1; then
        ok 0 "$f under ASan+UBSan"
    else
        ok 1 "$f under ASan+UBSan"
        grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error|SUMMARY|not ok' "$log" | head -20 | sed 's/^/#   /'
        tail -15 "$log" | sed 's/^/#   /'
        # keep the output for a closer look
        cp "$log" "$CDCR_BUILDDIR/.asan/$(basename "$log")" 2>/dev/null || true
    fi
done
done_testing
