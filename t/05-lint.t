#!/usr/bin/env bash
# Static checks: cppcheck finds nothing in src/ (the build itself is -Werror),
# the modules' includes form no cycle (t/tools/include-graph prints the
# tower of modules, bottom first), and shellcheck finds no warning in the
# shell scripts of t/, bench/, docker/ and .ci/.
source "$CDCR_SRCDIR/t/lib/setup.sh"
srcs=()
for f in "$CDCR_SRCDIR"/src/*.c; do [[ $f == *.pb-c.c ]] || srcs+=("$f"); done
out=$(cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
      --suppress=missingIncludeSystem -I"$CDCR_SRCDIR/src" -I"$CDCR_BUILDDIR/src" "${srcs[@]}" 2>&1)
is "$out" "" "cppcheck: no findings in src/"
rc=0; graph=$(python3 "$CDCR_SRCDIR/t/tools/include-graph" "$CDCR_SRCDIR/src" 2>&1) || rc=$?
ok $rc "the includes of src/ form no cycle"
[[ $rc == 0 ]] || diag "$graph"
scripts=()
while IFS= read -r f; do
    IFS= read -r first <"$CDCR_SRCDIR/$f" || true
    if [[ $first =~ ^\#!.*[/\ ](ba)?sh$ || $first == "# shellcheck shell="* ]]; then scripts+=("$f"); fi
done < <(cd "$CDCR_SRCDIR" && git ls-files t bench docker .ci)
((${#scripts[@]} > 20)) || bail "found only ${#scripts[@]} shell scripts (not a git checkout?)"
out=$(cd "$CDCR_SRCDIR" && shellcheck -x -S warning "${scripts[@]}" 2>&1) || true
is "$out" "" "shellcheck: no warnings in the ${#scripts[@]} shell scripts"
done_testing
