#!/bin/sh
# Runs test suites and counts their results. Each suite is a command that
# prints one line per test, "ok ..." or "not ok ..." (TAP style; cmocka's
# TAP output and the project's own scripts both do), and exits non-zero on
# failure. A test that did not run says so with TAP's SKIP directive,
# "ok ... # SKIP reason", and is counted as skipped, never as passed. A
# suite that fails without a "not ok" line (it crashed, or could not start)
# counts as one failed test, so nothing fails silently.
#
# Usage: tests/run-suites.sh NAME COMMAND [NAME COMMAND ...]
# Prints every suite's output, then the plain line
# "N passed, N failed, N skipped".
set -u
passed=0
failed=0
skipped=0
log=$(mktemp)
# A stop ends the whole run (the suite in flight got the signal too, as
# its process group's member), not just the suite in flight.
trap 'rm -f "$log"' EXIT
trap 'rm -f "$log"; exit 130' INT
trap 'rm -f "$log"; exit 143' TERM
while [ $# -ge 2 ]; do
	name=$1
	cmd=$2
	shift 2
	echo "== $name"
	start=$(date +%s)
	sh -c "$cmd" >"$log" 2>&1
	rc=$?
	cat "$log"
	# TAP: the directive is "# SKIP" in any case, after the description.
	s=$(grep -Eci '^ok .*#[[:space:]]*skip' "$log")
	p=$(($(grep -c '^ok ' "$log") - s))
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - suite $name exited $rc without reporting a failed test"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
		echo "not ok - suite $name ran no test"
		f=1
	fi
	echo "== $name: $p passed, $f failed, $s skipped in $(( $(date +%s) - start )) s"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
