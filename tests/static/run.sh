#!/bin/sh
# Tests of the static binary itself: that it is static, small, and talks
# HTTPS from a root that has nothing else (no libc, no /dev, no CA store but
# the one given), against the Keycloak stand-in served with a test
# certificate for kc.test.
#
# Usage: tests/static/run.sh [BINARY]     (default build/static/drone-deps;
#        as root: chroot).  SIZE_BUDGET (bytes) is the size limit: by
#        default 1.5 MiB, or 4 MiB when the binary carries OpenSSL.
# Output: one "ok - name" or "not ok - name" line per test, diagnostics on
# lines starting with "#"; exit 1 when any test failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BIN=${1:-$TOP/build/static/drone-deps}
STUB=$TOP/tests/kcstub/kcstub.py
MAKE_CERTS=${MAKE_CERTS:-$TOP/tests/kcstub/make-certs.sh}
# shellcheck source=../lib/tap.sh
. "$TOP/tests/lib/tap.sh"
# shellcheck source=../lib/stub.sh
. "$TOP/tests/lib/stub.sh"
ADMIN_PASSWORD=static-test-admin

failed=0
stub_pid=
work=$(mktemp -d "${TMPDIR:-/tmp}/drone-deps-static.XXXXXX")

cleanup() {
	if [ -n "$stub_pid" ]; then
		kill "$stub_pid" 2>/dev/null
		wait "$stub_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
CHROOT=$(command -v chroot)
if [ -z "${SIZE_BUDGET:-}" ]; then
	# The budget is the release (mbedTLS) binary's; OpenSSL 3 alone is ~2 MiB.
	if grep -aq 'OpenSSL 3\.' "$BIN" 2>/dev/null; then SIZE_BUDGET=4194304; else SIZE_BUDGET=1572864; fi
fi
if [ ! -x "$BIN" ]; then
	fail "binary $BIN exists"
	exit 1
fi

# --- the file itself ---------------------------------------------------

file -L "$BIN" | diag
check "file says statically linked" \
	sh -c 'file -L "$1" | grep -Eq "statically linked|static-pie linked"' - "$BIN"
check "file says stripped" \
	sh -c 'file -L "$1" | grep -v "not stripped" | grep -q stripped' - "$BIN"

ldd_out=$(ldd "$BIN" 2>&1)
echo "ldd: $ldd_out" | diag
check "ldd finds no shared library" \
	sh -c 'echo "$1" | grep -Eq "not a dynamic executable|statically linked" &&
		! echo "$1" | grep -q "=>"' - "$ldd_out"

size=$(wc -c <"$BIN")
awk -v s="$size" -v b="$SIZE_BUDGET" 'BEGIN {
	printf "size %d bytes = %.2f MiB (budget %.2f MiB)\n", s, s / 1048576, b / 1048576 }' | diag
check "size within budget" test "$size" -le "$SIZE_BUDGET"

# --- an empty root: the binary and nothing else ------------------------

empty=$work/empty
mkdir -p "$empty"
cp "$BIN" "$empty/drone-deps"
version=$(chroot "$empty" /drone-deps --version 2>&1)
echo "$version" | diag
check "--version runs in an empty chroot" \
	sh -c 'echo "$1" | grep -Eq "^drone-deps [0-9A-Za-z.+~-]+$"' - "$version"

# --- HTTPS against the stand-in, from a root without /dev --------------

if [ ! -f "$STUB" ] || [ ! -x "$MAKE_CERTS" ]; then
	fail "Keycloak stand-in present (tests/kcstub)"
	exit 1
fi
"$MAKE_CERTS" "$work/certs" >/dev/null 2>&1 &&
	"$MAKE_CERTS" "$work/other" >/dev/null 2>&1 ||
	fail "make-certs.sh makes the test certificates"

stub_start || exit 1


# jail DIR CA_SOURCE CA_PATH: a root with the binary, one CA file at CA_PATH
# and /etc/hosts sending kc.test to the loopback, and no /dev at all.
jail() {
	mkdir -p "$1/etc" "$1$(dirname "$3")"
	cp "$BIN" "$1/drone-deps"
	cp "$2" "$1$3"
	echo "127.0.0.1 kc.test" >"$1/etc/hosts"
}

# in_jail DIR ARGS...: drone-deps in DIR with a clean environment; output
# in $work/out, status in $rc.
in_jail() {
	dir=$1
	shift
	env -i PATH=/ "$CHROOT" "$dir" /drone-deps "$@" >"$work/out" 2>&1
	rc=$?
	echo "exit $rc" >>"$work/out"
}

common="--deps keycloak --mode warm --keycloak-url $URL --keycloak-admin-password $ADMIN_PASSWORD"

jail "$work/j1" "$work/certs/ca.pem" /ca.pem
in_jail "$work/j1" $common --ca-cert /ca.pem --action reap
diag <"$work/out"
check "HTTPS reap works in a chroot with only the binary, the CA and /etc/hosts" \
	sh -c '[ "$1" -eq 0 ] && [ ! -e "$2/dev" ]' - "$rc" "$work/j1"

jail "$work/j2" "$work/certs/ca.pem" /etc/ssl/certs/ca-certificates.crt
in_jail "$work/j2" $common --action reap
diag <"$work/out"
check "the default CA bundle is /etc/ssl/certs/ca-certificates.crt" test "$rc" -eq 0

# A verification failure is not a connection error: no retrying it for the
# whole timeout (README.md, "Guarantees": retries).
jail "$work/j3" "$work/other/ca.pem" /ca.pem
t0=$(date +%s)
in_jail "$work/j3" $common --ca-cert /ca.pem --action reap --timeout 30
t1=$(date +%s)
tail -n 3 "$work/out" | diag
echo "refused after $((t1 - t0)) s, $(grep -c retrying "$work/out") retries" | diag
check "a certificate from an untrusted CA is refused" \
	sh -c '[ "$1" -ne 0 ] && grep -iq "cert" "$2"' - "$rc" "$work/out"
check "an untrusted certificate is refused at once, not retried" \
	test $((t1 - t0)) -le 10

# A whole run: bind, hook, teardown.  The hook is a static BusyBox sh,
# when the host has one (Debian's busybox-static).
bb=$(command -v busybox || true)
if [ -n "$bb" ] && file -L "$bb" | grep -q 'statically linked'; then
	jail "$work/j4" "$work/certs/ca.pem" /ca.pem
	cp "$bb" "$work/j4/busybox"
	in_jail "$work/j4" $common --ca-cert /ca.pem --parent statictest --run-id 5a71c0 \
		-- /busybox sh -c '/busybox env | /busybox grep "^DEPS_" >/hook.env; exit 7'
	diag <"$work/out"
	sed 's/\(SECRET\|PASSWORD\)=.*/\1=(hidden)/' "$work/j4/hook.env" 2>/dev/null | diag
	check "run in a chroot: the hook's exit status passes through" test "$rc" -eq 7
	check "run in a chroot: the hook sees its realm" \
		grep -qsx 'DEPS_KEYCLOAK_REALM=statictest-5a71c0' "$work/j4/hook.env"
	check "run in a chroot: the hook sees the client secret" \
		grep -Eqs '^DEPS_KEYCLOAK_CLIENT_SECRET=.{32,}' "$work/j4/hook.env"
	realms=$(stub_realms 2>&1)
	echo "realms after the run: $(echo "$realms" | tr '\n' ' ')" | diag
	# Only meaningful once the realm was seen to exist during the hook.
	check "run in a chroot: the realm is deleted afterwards" \
		sh -c 'grep -qsx DEPS_KEYCLOAK_REALM=statictest-5a71c0 "$2" &&
			echo "$1" | grep -qx master && ! echo "$1" | grep -qx statictest-5a71c0' \
		- "$realms" "$work/j4/hook.env"
else
	fail "a static busybox for the hook (apt-get install busybox-static)"
fi

exit "$failed"
