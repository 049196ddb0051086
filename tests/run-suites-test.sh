#!/bin/sh
# Tests tests/run-suites.sh itself with fake suites: a hanging suite is
# stopped at its timeout, its whole process group with it, and fails; a
# skip counts as a skip; a suite with no test, or one that exits non-zero
# without a "not ok", fails. And the e2e harness's selection: a word that
# picks no test fails, even beside words that do. Prints one TAP line per
# check.
set -u
here=$(dirname "$0")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=0
bad=0
check() { # description, then a command that must succeed
	n=$((n + 1))
	d=$1
	shift
	if "$@"; then
		echo "ok $n - $d"
	else
		echo "not ok $n - $d"
		sed 's/^/#   /' "$dir/out"
		bad=1
	fi
}
has() { grep -q -- "$1" "$dir/out"; }

# A hanging suite whose process group holds a second process: both end at
# the timeout (the survivor would write its file 3 s later).
SUITE_TIMEOUT_hang_1=1 sh "$here/run-suites.sh" \
	hang-1 "(sleep 3; touch $dir/survived) & sleep 30" \
	fine "echo 'ok 1 - fine'" >"$dir/out" 2>&1
rc=$?
check "a hanging suite fails with a clear line at its own timeout" has "not ok - suite hang-1 timed out after 1 s"
check "the run after it goes on and counts it failed" has "^1 passed, 1 failed, 0 skipped$"
check "the run exits non-zero" [ "$rc" -ne 0 ]
sleep 4
check "the hanging suite's whole process group was killed" [ ! -e "$dir/survived" ]

sh "$here/run-suites.sh" skips "echo 'ok 1 - a # SKIP not here'; echo 'ok 2 - b # skip neither'; echo 'ok 3 - c'" \
	>"$dir/out" 2>&1
rc=$?
check "a skip counts as a skip, never as a pass" has "^1 passed, 0 failed, 2 skipped$"
check "skips alone do not fail the run" [ "$rc" -eq 0 ]

sh "$here/run-suites.sh" empty "echo '# nothing here'" >"$dir/out" 2>&1
rc=$?
check "a suite that ran no test fails" has "not ok - suite empty ran no test"
check "and the run fails" [ "$rc" -ne 0 ]

sh "$here/run-suites.sh" crash "echo 'ok 1 - a'; exit 3" >"$dir/out" 2>&1
check "a suite that exits non-zero without a 'not ok' fails" has "not ok - suite crash exited 3 without reporting a failed test"

sh "$here/run-suites.sh" failing "echo 'ok 1 - a'; echo 'not ok 2 - b'; exit 1" >"$dir/out" 2>&1
check "a failed test is counted once" has "^1 passed, 1 failed, 0 skipped$"
# The e2e harness: a selection word that matches no test is a failed test.
DRONE_DEPS_BIN=${DRONE_DEPS_BIN:-build/drone-deps} python3 "$here/e2e/test_warm.py" \
	"--help lists every setting" "no-such-test-name" >"$dir/out" 2>&1
rc=$?
check "e2e: a word that matches no test fails beside one that matches" has "^not ok - selection word 'no-such-test-name'"
check "e2e: the word that matches still runs its test" has "^ok - --help lists every setting"
check "e2e: and the suite exits non-zero" [ "$rc" -ne 0 ]

# A stop of the run ends the suite in flight too, though it runs in a
# process group of its own.
sh "$here/run-suites.sh" long "echo started > $dir/started; (sleep 3; touch $dir/survived2) & sleep 30" \
	>"$dir/out" 2>&1 &
run=$!
i=0
while [ ! -e "$dir/started" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM "$run"
wait "$run"
rc=$?
check "TERM to the run exits 143" [ "$rc" -eq 143 ]
sleep 4
check "and ends the suite in flight, its whole process group" [ ! -e "$dir/survived2" ]
exit $bad
