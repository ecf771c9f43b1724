#!/usr/bin/env bash
# Static checks: cppcheck finds nothing in src/ (the build itself is -Werror).
source "$CDCR_SRCDIR/t/lib/setup.sh"
out=$(cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
      --suppress=missingIncludeSystem -I"$CDCR_SRCDIR/src" -I"$CDCR_BUILDDIR/src" \
      $(ls "$CDCR_SRCDIR"/src/*.c | grep -v '\.pb-c\.c$') 2>&1)
is "$out" "" "cppcheck: no findings in src/"
done_testing
