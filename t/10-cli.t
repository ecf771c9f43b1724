#!/usr/bin/env bash
# The command line: --help, --version, --check with file:line errors.
source "$CDCR_SRCDIR/t/lib/setup.sh"

out=$("$CDCR" --help); like "$out" "--check" "--help documents --check"
like "$out" "SIGHUP" "--help documents reload"
out=$("$CDCR" --version); like "$out" "^cdcrouter [0-9]" "--version"
out=$("$CDCR" --help-config); like "$out" "apply.batch_size" "--help-config lists settings"
"$CDCR" --bogus >/dev/null 2>&1 && rc=0 || rc=$?; is "$rc" 1 "unknown option exits 1"

# the shipped configuration checks clean
out=$("$CDCR" --check -c "$CDCR_SRCDIR/cdcrouter.conf" 2>&1) && rc=0 || rc=$?
is "$rc" 0 "shipped cdcrouter.conf + conf.d + routes pass --check"; diag "$out"

# a broken configuration: every error, with file:line
d=$T_TMP/bad; mkdir -p "$d/conf.d" "$d/routes"
printf 'kafka = { brokers = "x:1"; };\napply = {\n  batch_size = "many";\n  colour = 3;\n};\n' >"$d/cdcrouter.conf"
printf 'topic = "t";\nparams = { id = ".id"; };\nupsert = "INSERT INTO x VALUES (:id, :missing)";\n' >"$d/routes/a.route"
printf 'topic = "u";\nparams = {\n  id = ".id |";\n};\nupsert = "SELECT :id";\n' >"$d/routes/b.route"
out=$("$CDCR" --check -c "$d/cdcrouter.conf" 2>&1) && rc=0 || rc=$?
is "$rc" 1 "--check fails on a bad configuration"
like "$out" "cdcrouter.conf:3: apply.batch_size must be an integer" "wrong type at file:line"
like "$out" "cdcrouter.conf:4: unknown setting 'apply.colour'" "unknown key at file:line"
# route errors are reported once the main configuration is valid
printf 'kafka = { brokers = "x:1"; };\n' >"$d/cdcrouter.conf"
out=$("$CDCR" --check -c "$d/cdcrouter.conf" 2>&1) && rc=0 || rc=$?
like "$out" "a.route:3: upsert: placeholder ':missing' is not a param" "undefined placeholder at file:line"
like "$out" "b.route:3: param 'id': invalid jq expression" "invalid jq at file:line"
like "$out" "2 errors" "error count"

# the daemon refuses to start with a bad configuration
"$CDCR" -c "$d/cdcrouter.conf" >"$T_TMP/start.log" 2>&1 && rc=0 || rc=$?
is "$rc" 1 "daemon refuses to start"
like "$(cat "$T_TMP/start.log")" '"level":"error","msg":"refusing to start"' "with a JSON error line"

# every setting is documented in the sample configuration and the man page
# (pgbouncer's optscan idea): the settings table is the one source
missing=""
while read -r key _; do
    [[ $key == setting ]] && continue
    leaf=${key##*.}
    grep -q "^ *$leaf *=" "$CDCR_SRCDIR/cdcrouter.conf" || missing+=" $key(cdcrouter.conf)"
    grep -q "$key" "$CDCR_SRCDIR/man/cdcrouter.conf.5" || missing+=" $key(cdcrouter.conf.5)"
done < <("$CDCR" --help-config | sed '/^$/,$d')
is "$missing" "" "every setting appears in cdcrouter.conf and cdcrouter.conf(5)"

# what a change needs on reload: the man page says what the settings table says
wrong=""
while read -r key _ reload _; do
    [[ $key == setting ]] && continue
    said=$(awk -v k="$key" '/^\.TP/ { inkey = 0 } /^\.B / && index($0, k) { inkey = 1 } inkey && /^On reload: / { print $3; exit }' \
           "$CDCR_SRCDIR/man/cdcrouter.conf.5")
    [[ $said == "$reload." ]] || wrong+=" $key(table: $reload, man: ${said:-none})"
done < <("$CDCR" --help-config | sed '/^$/,$d')
is "$wrong" "" "cdcrouter.conf(5) gives each setting's reload class as the settings table does"
done_testing
