# tests/lib/tap.sh - sourced by the shell suites: one "ok - NAME" or
# "not ok - NAME" line per test (the project's runner counts them), with
# diagnostics on "# " lines. A failure sets failed=1 for the suite's exit.

pass() { echo "ok - $1"; }
fail() {
	echo "not ok - $1"
	failed=1
}
diag() { sed 's/^/# /'; }
# check NAME COMMAND...: one test line from a command's status.
check() {
	_test=$1
	shift
	if "$@"; then pass "$_test"; else fail "$_test"; fi
}
