#!/bin/sh
# Runs a program under valgrind memcheck: any memory error or leak makes it
# exit 99 instead of its own status, so every test that checks a status
# fails on it. DRONE_DEPS_BIN=tests/valgrind.sh runs the e2e suite so.
# VALGRIND_TARGET names the program (default: the dev build).
exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	"${VALGRIND_TARGET:-$(dirname "$0")/../build/drone-deps}" "$@"
