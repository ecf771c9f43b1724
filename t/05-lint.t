#!/usr/bin/env bash
# Static checks: cppcheck finds nothing in src/ (the build itself is -Werror),
# and the modules' includes form no cycle (t/tools/include-graph prints the
# tower of modules, bottom first).
source "$CDCR_SRCDIR/t/lib/setup.sh"
out=$(cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
      --suppress=missingIncludeSystem -I"$CDCR_SRCDIR/src" -I"$CDCR_BUILDDIR/src" \
      $(ls "$CDCR_SRCDIR"/src/*.c | grep -v '\.pb-c\.c$') 2>&1)
is "$out" "" "cppcheck: no findings in src/"
rc=0; graph=$(python3 "$CDCR_SRCDIR/t/tools/include-graph" "$CDCR_SRCDIR/src" 2>&1) || rc=$?
ok $rc "the includes of src/ form no cycle"
[[ $rc == 0 ]] || diag "$graph"
done_testing
