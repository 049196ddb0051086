#!/bin/sh
# make demo: one full warm cycle, shown step by step.
#
# Without KEYCLOAK_URL it starts the bundled Keycloak stand-in on loopback;
# with KEYCLOAK_URL and KEYCLOAK_ADMIN_PASSWORD (and KEYCLOAK_ADMIN_USER,
# CA_CERT if needed) it binds to that Keycloak instead. The hook prints the
# binding it received (secrets masked) and logs in with it; drone-deps then
# deletes the realm, and the demo shows that it is gone.
set -eu
bin=${1:-build/drone-deps}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
stub_pid=
cleanup() {
	if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; wait "$stub_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "${KEYCLOAK_URL:-}" ]; then
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
	echo "demo: Keycloak stand-in (Keycloak 26 admin API) at $KEYCLOAK_URL"
else
	: "${KEYCLOAK_ADMIN_PASSWORD:?set KEYCLOAK_ADMIN_PASSWORD for KEYCLOAK_URL}"
	echo "demo: using the Keycloak at $KEYCLOAK_URL"
fi

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

if [ -n "$stub_pid" ]; then
	left=$(python3 -c "import json,urllib.request;print(' '.join(r['realm'] for r in json.load(urllib.request.urlopen('$KEYCLOAK_URL/_stub/realms'))))")
	echo "demo: realms left on the stand-in: $left"
	[ "$left" = master ] || { echo "demo: a realm was left behind" >&2; exit 1; }
fi
exit $status
