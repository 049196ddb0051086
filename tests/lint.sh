#!/bin/sh
# Static analysis of plugin/ as a test suite: one line per tool, "ok - ..."
# or "not ok - ..." with the findings as # lines; exit 1 if any failed.
set -u
cd "$(dirname "$0")/.."
failed=0
report() { # name, then the command's output in $out and status in $rc
	if [ "$rc" -eq 0 ]; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		printf '%s\n' "$out" | head -40 | sed 's/^/# /'
		failed=1
	fi
}
out=$(cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability,style \
	--inline-suppr --std=c11 -D_GNU_SOURCE -Iplugin plugin/ 2>&1); rc=$?
report "cppcheck is clean on plugin/"
out=$(clang-tidy --quiet plugin/*.c -- -D_GNU_SOURCE -Iplugin 2>&1); rc=$?
out=$(printf '%s\n' "$out" | grep -v 'warnings generated')
report "clang-tidy is clean on plugin/ (.clang-tidy)"
out=$(clang-format --dry-run --Werror plugin/*.c plugin/*.h 2>&1); rc=$?
report "clang-format leaves plugin/ as it is (.clang-format)"
exit $failed
