#!/bin/sh
# Runs test suites and counts their results. Each suite is a command that
# prints one line per test, "ok ..." or "not ok ..." (TAP style; cmocka's
# TAP output and the project's own scripts both do), and exits non-zero on
# failure. A test that did not run says so with TAP's SKIP directive,
# "ok ... # SKIP reason", and is counted as skipped, never as passed. A
# suite that fails without a "not ok" line (it crashed, or could not start)
# counts as one failed test, so nothing fails silently.
#
# A suite that hangs is stopped at its timeout (SUITE_TIMEOUT seconds, 3600
# by default; SUITE_TIMEOUT_<name> for one suite, its name's characters
# other than letters and digits spelled "_"): its whole process group gets
# TERM, then KILL 10 s later, and the suite counts as failed.
#
# Usage: tests/run-suites.sh NAME COMMAND [NAME COMMAND ...]
# Prints every suite's output, then the plain line
# "N passed, N failed, N skipped".
set -u
passed=0
failed=0
skipped=0
log=$(mktemp)
pid=
# A stop ends the whole run, not just the suite in flight. The suite runs
# in a process group of its own (timeout's), which a terminal's Ctrl-C does
# not reach: the stop is passed on to it (timeout hands it to the group).
stop() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
	rm -f "$log"
	exit "$1"
}
trap 'rm -f "$log"' EXIT
trap 'stop 130' INT
trap 'stop 143' TERM
while [ $# -ge 2 ]; do
	name=$1
	cmd=$2
	shift 2
	echo "== $name"
	start=$(date +%s)
	var=SUITE_TIMEOUT_$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_')
	limit=$(eval "echo \${$var:-\${SUITE_TIMEOUT:-3600}}")
	timeout -k 10 "$limit" sh -c "$cmd" >"$log" 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	pid=
	cat "$log"
	# timeout exits 124 when TERM ended the suite, 137 when KILL had to
	timed_out=0
	if { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && [ $(($(date +%s) - start)) -ge "$limit" ]; then
		timed_out=1
		echo "not ok - suite $name timed out after $limit s: its process group was killed"
	fi
	# TAP: the directive is "# SKIP" in any case, after the description.
	s=$(grep -Eci '^ok .*#[[:space:]]*skip' "$log")
	p=$(($(grep -c '^ok ' "$log") - s))
	f=$(grep -c '^not ok ' "$log")
	if [ "$timed_out" -eq 1 ]; then
		f=$((f + 1))
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
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
