#!/usr/bin/env bash
# Docker Compose without an engine: the file parses, every image is pinned,
# every mounted file exists, versions match the native stack; and the check
# does catch a broken file.
source "$CDCR_SRCDIR/t/lib/setup.sh"
out=$(bash "$CDCR_SRCDIR/docker/check-compose" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "docker/docker-compose.yml passes docker/check-compose"; diag "$out"
# a broken copy in a mirror of the tree (the source tree may be read-only)
mkdir -p "$T_TMP/tree/docker"
for f in "$CDCR_SRCDIR"/*; do [[ $(basename "$f") == docker ]] || ln -s "$f" "$T_TMP/tree/"; done
for f in "$CDCR_SRCDIR"/docker/*; do ln -s "$f" "$T_TMP/tree/docker/"; done
sed -e 's|\.\./routes:/etc/cdcrouter/routes|../no-such-dir:/etc/cdcrouter/routes|' \
    -e 's|image: postgres:[0-9.]*|image: postgres:latest|' \
    "$CDCR_SRCDIR/docker/docker-compose.yml" >"$T_TMP/tree/docker/broken.yml"
out=$(bash "$CDCR_SRCDIR/docker/check-compose" "$T_TMP/tree/docker/broken.yml" 2>&1) && rc=0 || rc=$?
is "$rc" 1 "a compose file with a missing mount and an unpinned image fails"
like "$out" "no-such-dir" "naming the missing mount"
like "$out" "postgres:latest|latest" "and the unpinned image"
done_testing
