#!/bin/sh
# Runs test suites and counts their results. Each suite is a command that
# prints one line per test, "ok ..." or "not ok ..." (TAP style; cmocka's
# TAP output and the project's own scripts both do), and exits non-zero on
# failure. A suite that fails without a "not ok" line (it crashed, or could
# not start) counts as one failed test, so nothing fails silently.
#
# A skipped test ("ok - name # SKIP why") is counted as skipped, not passed.
#
# Usage: tests/run-suites.sh NAME COMMAND [NAME COMMAND ...]
# Prints every suite's output, then the plain line "N passed, N failed"
# (with ", N skipped" when any was).
set -u
passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM
while [ $# -ge 2 ]; do
	name=$1
	cmd=$2
	shift 2
	echo "== $name"
	start=$(date +%s)
	sh -c "$cmd" >"$log" 2>&1
	rc=$?
	cat "$log"
	k=$(grep -c '^ok .*# SKIP' "$log")
	p=$(($(grep -c '^ok ' "$log") - k))
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - suite $name exited $rc without reporting a failed test"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$k" -eq 0 ]; then
		echo "not ok - suite $name ran no test"
		f=1
	fi
	echo "== $name: $p passed, $f failed, $k skipped in $(( $(date +%s) - start )) s"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + k))
done
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
