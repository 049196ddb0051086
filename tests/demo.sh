#!/bin/sh
# make demo: one full warm cycle, shown step by step.
#
# By default it binds to a real Keycloak: tools/keycloak.sh fetches it once
# from Maven Central (cached), starts it on a free loopback port, and it is
# stopped at the end. KEYCLOAK=stub binds to the bundled stand-in instead
# (a quick look, no Java). KEYCLOAK_URL and KEYCLOAK_ADMIN_PASSWORD (and
# KEYCLOAK_ADMIN_USER, CA_CERT if needed) bind to that Keycloak. The hook
# prints the binding it received (secrets masked) and logs in with it;
# drone-deps then deletes the realm, and the demo shows that it is gone.
set -eu
bin=${1:-build/drone-deps}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d)
stub_pid=
kc_dir=
cleanup() {
	if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; wait "$stub_pid" 2>/dev/null || true; fi
	if [ -n "$kc_dir" ]; then
		sh "$root/tools/keycloak.sh" stop "$kc_dir" || true
		echo "demo: the Keycloak it started is stopped"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${KEYCLOAK_URL:-}" ]; then
	: "${KEYCLOAK_ADMIN_PASSWORD:?set KEYCLOAK_ADMIN_PASSWORD for KEYCLOAK_URL}"
	server="the Keycloak at $KEYCLOAK_URL"
elif [ "${KEYCLOAK:-real}" = stub ]; then
	KEYCLOAK_ADMIN_PASSWORD=demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	python3 "$here/kcstub/kcstub.py" --port 0 --port-file "$work/port" \
		--admin-password "$KEYCLOAK_ADMIN_PASSWORD" --quiet &
	stub_pid=$!
	i=0
	while [ ! -s "$work/port" ]; do
		i=$((i + 1)); [ $i -lt 250 ] || { echo "demo: the stand-in did not start" >&2; exit 1; }
		sleep 0.02
	done
	KEYCLOAK_URL=http://localhost:$(cat "$work/port")
	server="the Keycloak stand-in (tests/kcstub, Keycloak 26's admin API in Python) at $KEYCLOAK_URL"
elif [ "${KEYCLOAK:-real}" = real ]; then
	echo "demo: starting a real Keycloak (tools/keycloak.sh; the first run fetches it from Maven Central)"
	port=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import realkc; print(realkc.free_port_pair())" "$here/e2e")
	kc_dir=$work/keycloak
	KEYCLOAK_ADMIN_PASSWORD=demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	export KEYCLOAK_ADMIN_PASSWORD
	KEYCLOAK_URL=$(sh "$root/tools/keycloak.sh" start "$kc_dir" "$port")
	version=$(basename "$(sh "$root/tools/keycloak.sh" fetch)")
	server="a real Keycloak (${version#keycloak-}, started by this demo in $(cat "$kc_dir/start_ms") ms) at $KEYCLOAK_URL"
else
	echo "demo: KEYCLOAK must be real or stub, not '$KEYCLOAK'" >&2
	exit 64
fi
echo "demo: using $server"

cat >"$work/hook.sh" <<'HOOK'
#!/bin/sh
echo "---- the hook runs with this binding (secrets masked) ----"
env | grep '^DEPS_' | sort | sed -e 's/^\(DEPS_KEYCLOAK_CLIENT_SECRET\)=.*/\1=***/' \
	-e 's/^\(DEPS_KEYCLOAK_PASSWORD\)=.*/\1=***/'
python3 "$DEMO_LOGIN" "$DEMO_WORK/login.out" && cat "$DEMO_WORK/login.out"
echo "---- the hook ends; drone-deps tears down ----"
HOOK
chmod +x "$work/hook.sh"

export PLUGIN_DEPS=keycloak PLUGIN_PARENT=demo-recipe PLUGIN_MODE=warm
export PLUGIN_KEYCLOAK_URL="$KEYCLOAK_URL" PLUGIN_KEYCLOAK_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD"
export PLUGIN_KEYCLOAK_ADMIN_USER="${KEYCLOAK_ADMIN_USER:-admin}"
export PLUGIN_PARENT_DOMAIN="demo-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n').example.org"
[ -z "${CA_CERT:-}" ] || export PLUGIN_CA_CERT="$CA_CERT"
export DEMO_LOGIN="$here/e2e/login.py" DEMO_WORK="$work"
echo "demo: $bin --debug -- $work/hook.sh"
status=0
"$bin" --debug -- "$work/hook.sh" || status=$?
echo "demo: drone-deps exited $status"

if [ -n "$stub_pid" ] || [ -n "$kc_dir" ]; then
	# The server this demo started holds nothing else: only master may be left.
	left=$(python3 -c "
import sys; sys.path.insert(0, sys.argv[1]); import realkc
admin = realkc.Admin(sys.argv[2], sys.argv[3])
print(' '.join(r['realm'] for r in admin.call('GET', '/admin/realms?briefRepresentation=true')))
" "$here/e2e" "$KEYCLOAK_URL" "$KEYCLOAK_ADMIN_PASSWORD")
	echo "demo: realms left on the server: $left"
	[ "$left" = master ] || { echo "demo: a realm was left behind" >&2; exit 1; }
fi
echo "demo: done with $server"
exit $status
