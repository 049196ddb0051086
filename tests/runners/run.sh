#!/bin/sh
# The plugin image under real CI runners, against a real Keycloak: Drone's
# own `drone exec` (and woodpecker-cli exec, when it could be built) runs the
# recipe-like pipelines of testdata/pipelines. Nothing here sets a PLUGIN_*
# variable: every setting reaches the plugin the way the runner encodes it.
#
#   - a pipeline passes: the deps step binds a realm, the hook logs in with
#     the binding (BusyBox wget), the realm is gone afterwards
#   - what the runner passed (docker inspect of the running step): lists,
#     maps, from_secret, empty and null values, dashed names
#   - a run cancelled mid-hook the way Drone cancels (its step container
#     killed with SIGKILL; and drone exec's own cancel on SIGTERM, which
#     kills the step the same way): the watchdog deletes the realm
#   - a recipe's three patterns (testdata/pipelines/recipe/.drone.yml): the
#     hook in the plugin step; up, the tests in the recipe's own image,
#     down (on success and on failure); the static binary in the test image
#     wrapping the test command. Each passes and leaves no realm. An up/down
#     run cancelled mid-test leaves its realm until the lease ends and a
#     later reap (the housekeeping pipeline) deletes it: the time it
#     outlived the cancel is measured and printed
#
# Usage: tests/runners/run.sh [IMAGE]   (default drone-deps:test; needs the
#        runners, `make runners`, and a Docker engine, `make docker-up`)
# Environment: RUNNERS_ONLY (the sections to run: drone, patterns, secrets,
# woodpecker; default all), RUNNERS_KEYCLOAK_PORT (the test Keycloak's HTTP port, default
# 18500; the next port is its health port), RUNNERS_WAIT (seconds a
# watchdog may take to delete the realm, default 60: on a loaded 2-core
# machine a real Keycloak takes seconds for the admin login and the delete;
# the time taken is printed).
# Output: one "ok - name" or "not ok - name" line per test (a runner that
# could not be built is "ok - ... # SKIP why"); exit 1 when any test failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
IMAGE=${1:-drone-deps:test}
PORT=${RUNNERS_KEYCLOAK_PORT:-18500}
WAIT=${RUNNERS_WAIT:-60}
DOCKER=${DOCKER:-docker}
PIPELINES=$TOP/testdata/pipelines
# shellcheck source=../lib/tap.sh
. "$TOP/tests/lib/tap.sh"

failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/drone-deps-runners.XXXXXX")
kc=$work/keycloak
runner_pid=

cleanup() {
	[ -z "${events_pid:-}" ] || kill "$events_pid" 2>/dev/null
	if [ -n "$runner_pid" ]; then
		kill -TERM "$runner_pid" 2>/dev/null
		wait "$runner_pid" 2>/dev/null
	fi
	# What the runners leave when a run is cut short: containers and
	# networks labelled with this suite's workspaces, and the watchdogs
	# of this suite's run ids.
	for ws in "$work"/ws-*; do
		[ -d "$ws" ] || continue
		label=io.drone.desktop.pipeline.dir=$ws
		ids=$($DOCKER ps -aq --filter "label=$label" 2>/dev/null)
		[ -z "$ids" ] || $DOCKER rm -f $ids >/dev/null 2>&1
		ids=$($DOCKER network ls -q --filter "label=$label" 2>/dev/null)
		[ -z "$ids" ] || $DOCKER network rm $ids >/dev/null 2>&1
		ids=$($DOCKER volume ls -q --filter "label=$label" 2>/dev/null)
		[ -z "$ids" ] || $DOCKER volume rm $ids >/dev/null 2>&1
	done
	for run in $(cat "$work/run-ids" 2>/dev/null); do
		ids=$($DOCKER ps -aq --filter label=drone-deps.role=watchdog \
			--filter "label=drone-deps.run=$run" 2>/dev/null)
		[ -z "$ids" ] || $DOCKER rm -f $ids >/dev/null 2>&1
		[ ! -f "$kc/pid" ] || realm_delete "recipe-ci-$run"
	done
	[ -z "${TEST_IMAGE:-}" ] || $DOCKER image rm -f "$TEST_IMAGE" "$TEST_DEPS_IMAGE" >/dev/null 2>&1
	"$TOP/tools/keycloak.sh" stop "$kc"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the real Keycloak, through its admin API ------------------------------

# admin CALL ARGS: python3 (stdlib) talks to the admin API of the test
# Keycloak; `status REALM` prints the HTTP status of GET on the realm,
# `expires REALM` its lease's end (unix seconds), `key REALM` the hash of
# its run key, `delete REALM` deletes it (cleanup only).
admin() {
	python3 - "$(cat "$kc/url")" "$(cat "$kc/admin_password")" "$@" <<'EOF'
import json, sys, urllib.error, urllib.parse, urllib.request
url, password, call, realm = sys.argv[1:5]
form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                               "username": "admin", "password": password}).encode()
with urllib.request.urlopen(url + "/realms/master/protocol/openid-connect/token", form, 30) as r:
    token = json.load(r)["access_token"]
req = urllib.request.Request(url + "/admin/realms/" + urllib.parse.quote(realm),
                             method="DELETE" if call == "delete" else "GET",
                             headers={"Authorization": "Bearer " + token,
                                      "Accept": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.load(r)["attributes"]["drone-deps." + call] if call in ("expires", "key") else r.status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}
realm_status() { admin status "$1" 2>/dev/null || echo error; }
realm_delete() { admin delete "$1" >/dev/null 2>&1; }

# ci_client ID SECRET: makes the CI client of README.md's "Recommended" on
# the test Keycloak (a confidential master client whose service account
# holds create-realm alone); gone with the test Keycloak.
ci_client() {
	python3 - "$(cat "$kc/url")" "$(cat "$kc/admin_password")" "$@" <<'EOF'
import json, sys, urllib.parse, urllib.request
url, password, client_id, secret = sys.argv[1:5]
form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                               "username": "admin", "password": password}).encode()
with urllib.request.urlopen(url + "/realms/master/protocol/openid-connect/token", form, 30) as r:
    token = json.load(r)["access_token"]
def call(method, path, body=None):
    req = urllib.request.Request(url + "/admin/realms/master" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
        return json.loads(data) if data else None
call("POST", "/clients", {"clientId": client_id, "enabled": True, "publicClient": False,
                          "serviceAccountsEnabled": True, "standardFlowEnabled": False,
                          "directAccessGrantsEnabled": False, "secret": secret})
cid = call("GET", "/clients?clientId=" + client_id)[0]["id"]
user = call("GET", "/clients/%s/service-account-user" % cid)
role = call("GET", "/roles/create-realm")
call("POST", "/users/%s/role-mappings/realm" % user["id"], [role])
EOF
}

# realm_gone_within REALM SECONDS: polls until the realm answers 404; sets
# gone_ms to the time it took.
realm_gone_within() {
	t0=$(date +%s%N)
	deadline=$(($(date +%s) + $2))
	while [ "$(realm_status "$1")" != 404 ]; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			gone_ms=
			return 1
		fi
		sleep 0.2
	done
	gone_ms=$((($(date +%s%N) - t0) / 1000000))
}

# --- a recipe's workspace ------------------------------------------------

# workspace NAME TEMPLATE RUN_ID HOOK_ARGS: a folder with the recipe's files
# and its pipeline filled in; prints its path.
workspace() {
	ws=$work/ws-$1
	mkdir -p "$ws"
	cp -a "$PIPELINES/recipe/." "$ws/"
	sed -e "s|@IMAGE@|$IMAGE|" -e "s|@KEYCLOAK_URL@|$(cat "$kc/url")|" \
		-e "s|@RUN_ID@|$3|" -e "s|@HOOK_ARGS@|$4|" \
		-e "s|@TEST_IMAGE@|${TEST_IMAGE:-}|" -e "s|@TEST_DEPS_IMAGE@|${TEST_DEPS_IMAGE:-}|" \
		-e "s|@HOOK_USER@|${HOOK_USER:-}|" -e "s|@SECRET_FILE@|${SECRET_FILE:-}|" \
		-e "s|@HOOK_USER_FLAG@|${HOOK_USER:+--hook-user $HOOK_USER}|" \
		-e "s|@OTHER_RUN_ID@|${OTHER_RUN_ID:-}|" -e "s|@CI_CLIENT_ID@|${CI_CLIENT_ID:-}|" \
		"$PIPELINES/$2" >"$ws/pipeline.yml"
	echo "$3" >>"$work/run-ids"
	echo "$ws"
}

# selected SECTION: whether RUNNERS_ONLY (words: drone, patterns, secrets,
# woodpecker) is unset or names it.
selected() {
	case " ${RUNNERS_ONLY:-$1} " in *" $1 "*) return 0 ;; esac
	echo "# not run: $1 (RUNNERS_ONLY=$RUNNERS_ONLY)"
	return 1
}

new_run_id() { od -An -N3 -tx1 /dev/urandom | tr -d ' \n'; }
# Six decimal digits after a 0 ("001234"): YAML reads that unquoted as a
# number (an octal one, to Drone's YAML 1.1), so a pipeline that forgets to
# quote run_id hands drone-deps another value. The first pipeline and the
# recipe's patterns use one; a random hex id did so only now and then.
new_numeric_run_id() { printf '0%05d' $(($(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 100000)); }

# wait_for FILE PATTERN SECONDS: until a line of FILE matches, while the
# runner still runs.
wait_for() {
	deadline=$(($(date +%s) + $3))
	until grep -q "$2" "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$runner_pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
}

# step_container WORKSPACE: the running deps step of a drone exec run.
step_container() {
	$DOCKER ps -q --filter "label=io.drone.desktop.pipeline.dir=$1" \
		--filter label=io.drone.step.name=deps
}

# leftovers WORKSPACE RUN_ID: what the run left behind, if anything.
leftovers() {
	label=io.drone.desktop.pipeline.dir=$1
	{
		$DOCKER ps -aq --filter "label=$label"
		$DOCKER network ls -q --filter "label=$label"
		$DOCKER volume ls -q --filter "label=$label"
		$DOCKER ps -aq --filter "label=drone-deps.run=$2"
	} 2>/dev/null
}

# no_leftovers WORKSPACE RUN_ID: none within a few seconds (a runner may
# still be removing its containers as it exits).
no_leftovers() {
	i=0
	while [ -n "$(leftovers "$1" "$2")" ]; do
		i=$((i + 1))
		[ "$i" -lt 50 ] || return 1
		sleep 0.2
	done
}

# env_of CONTAINER NAME: the value the runner gave the step for NAME; exit
# 1 when it gave none (not even an empty one).
env_of() {
	$DOCKER inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1" |
		awk -v n="$2" 'index($0, n "=") == 1 { print substr($0, length(n) + 2); found = 1 }
			END { exit !found }'
}

# --- set-up ----------------------------------------------------------------

if ! $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
	fail "the plugin image $IMAGE exists (make image)"
	exit 1
fi
if ! KEYCLOAK_START_WAIT=${KEYCLOAK_START_WAIT:-600} \
	"$TOP/tools/keycloak.sh" start "$kc" "$PORT" >"$work/keycloak.out" 2>&1; then
	diag <"$work/keycloak.out"
	fail "a real Keycloak starts on 127.0.0.1:$PORT"
	exit 1
fi
sed -n 's/^keycloak: //p' "$work/keycloak.out" | diag
ADMIN_PASSWORD=$(cat "$kc/admin_password")
# A warm Keycloak has served logins before: its first one after a start
# (class loading, the first password hash) can outlast drone-deps' 8 s
# liveness probe on a loaded machine, which would send the run to "no warm
# Keycloak answers". One admin login warms it, as production use does.
t0=$(date +%s%N)
realm_status master >/dev/null
echo "first admin login after the start: $((($(date +%s%N) - t0) / 1000000)) ms" | diag
secrets=$work/secrets.env
CI_CLIENT_ID=drone-deps-ci-runners
CI_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf 'keycloak_admin_password=%s\nkeycloak_ci_secret=%s\n' \
	"$ADMIN_PASSWORD" "$CI_SECRET" >"$secrets")

# --- Drone ---------------------------------------------------------------

DRONE=$("$TOP/tools/runners.sh" path drone 2>"$work/path.err")
if [ -z "$DRONE" ]; then
	diag <"$work/path.err"
	fail "drone exec is built (make runners)"
	exit 1
fi

# drone_exec WORKSPACE PIPELINE LOG [EVENT]: drone exec in the workspace
# (as a recipe's clone), in the background; sets runner_pid.
drone_exec() {
	(cd "$1" && exec "$DRONE" exec --trusted --pretty=false --secret-file "$secrets" \
		--event "${4:-push}" --pipeline "$2" pipeline.yml) >"$3" 2>&1 &
	runner_pid=$!
}

# runner_wait SECONDS: waits for the runner, at most SECONDS, then stops
# it; sets runner_rc.
runner_wait() {
	deadline=$(($(date +%s) + $1))
	while kill -0 "$runner_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
		sleep 0.2
	done
	kill -KILL "$runner_pid" 2>/dev/null
	wait "$runner_pid"
	runner_rc=$?
	runner_pid=
}

if selected drone; then
	# 1. A pipeline that passes.
	run=$(new_numeric_run_id)
	realm=recipe-ci-$run
	ws=$(workspace pass drone.yml "$run" "")
	log=$work/drone-pass.log
	t0=$(date +%s)
	drone_exec "$ws" recipe "$log"
	runner_wait 300
	diag <"$log"
	echo "drone exec: the passing pipeline took $(($(date +%s) - t0)) s" | diag
	check "drone: the recipe pipeline passes (drone exec exits 0)" [ "$runner_rc" -eq 0 ]
	check "drone: the deps step binds a warm realm on the real Keycloak" \
		grep -q "bound keycloak (warm): realm $realm at $(cat "$kc/url")" "$log"
	check "drone: the hook logs in with the binding (password grant, id_token)" \
		grep -q "hook: logged in as test, id_token received" "$log"
	check "drone: the step reports the hook's success" grep -q "the hook exited with status 0" "$log"
	check "drone: the realm is gone afterwards (admin API: 404)" [ "$(realm_status "$realm")" = 404 ]
	if grep -q "hook: setting PLUGIN_KEYCLOAK_ADMIN_PASSWORD" "$log" || grep -qF "$ADMIN_PASSWORD" "$log"; then
		fail "drone: the admin password reaches neither the hook nor the log"
	else
		pass "drone: the admin password reaches neither the hook nor the log"
	fi
	check "drone: nothing of the run is left (containers, networks, volumes, watchdog)" \
		no_leftovers "$ws" "$run"

	# 2. What Drone passes, read from the running step; then Drone's cancel:
	# the step container killed with SIGKILL while the hook runs.
	run=$(new_run_id)
	realm=recipe-ci-$run
	ws=$(workspace kill drone.yml "$run" "")
	log=$work/drone-kill.log
	drone_exec "$ws" recipe-hold "$log"
	if wait_for "$log" "hook: holding" 300 && step=$(step_container "$ws") && [ -n "$step" ]; then
		pass "drone: a held run reaches its hook"
		# One line per setting, as the runner encoded it.
		v=$(env_of "$step" PLUGIN_DEPS)
		check "drone: a one-item list arrives as its item (deps: [keycloak] -> keycloak)" [ "$v" = keycloak ]
		v=$(env_of "$step" PLUGIN_PROBE_LIST)
		check "drone: a list arrives comma-joined ([a, b c] -> 'a,b c')" [ "$v" = "a,b c" ]
		v=$(env_of "$step" PLUGIN_PROBE_MAP)
		check "drone: a map arrives as JSON ({k: v} -> {\"k\":\"v\"})" [ "$v" = '{"k":"v"}' ]
		v=$(env_of "$step" PLUGIN_TTL)
		w=$(env_of "$step" PLUGIN_DEBUG)
		check "drone: numbers and booleans arrive as text (120, true)" [ "$v.$w" = "120.true" ]
		v=$(env_of "$step" PLUGIN_KEYCLOAK_ADMIN_PASSWORD)
		check "drone: from_secret arrives as the secret's value" [ "$v" = "$ADMIN_PASSWORD" ]
		if env_of "$step" PLUGIN_ENV_FILE >/dev/null || env_of "$step" PLUGIN_CA_CERT >/dev/null; then
			fail "drone: an empty (\"\") or null setting is not passed at all"
		else
			pass "drone: an empty (\"\") or null setting is not passed at all"
		fi
		v=$(env_of "$step" PLUGIN_PROBE-DASH)
		check "drone: a dashed name is only upper-cased (PLUGIN_PROBE-DASH), not renamed" [ "$v" = x ]
		if grep -q "hook: setting PLUGIN_PROBE" "$log" && ! grep -q "hook: setting PLUGIN_PROBE-DASH" "$log"; then
			pass "drone: BusyBox sh drops the dashed name from the hook's environment"
		else
			fail "drone: BusyBox sh drops the dashed name from the hook's environment"
		fi
		check "drone: the realm exists while the hook runs" [ "$(realm_status "$realm")" = 200 ]
		$DOCKER kill -s KILL "$step" >/dev/null
		if realm_gone_within "$realm" "$WAIT"; then
			pass "drone: step killed with SIGKILL mid-hook: the watchdog deletes the realm ($gone_ms ms)"
		else
			fail "drone: step killed with SIGKILL mid-hook: the watchdog deletes the realm within $WAIT s"
		fi
		runner_wait 60
		check "drone: drone exec reports the killed step as a failure (exit 1)" [ "$runner_rc" -eq 1 ]
		check "drone: nothing of the killed run is left" no_leftovers "$ws" "$run"
	else
		fail "drone: a held run reaches its hook"
		runner_wait 1
	fi
	diag <"$log"

	# 3. drone exec's own cancel: SIGTERM to the runner, which then kills the
	# step container with SIGKILL (Drone's Destroy), as a cancelled build does.
	run=$(new_run_id)
	realm=recipe-ci-$run
	ws=$(workspace cancel drone.yml "$run" "")
	log=$work/drone-cancel.log
	drone_exec "$ws" recipe-hold "$log"
	if wait_for "$log" "hook: holding" 300; then
		kill -TERM "$runner_pid"
		if realm_gone_within "$realm" "$WAIT"; then
			pass "drone: run cancelled mid-hook (SIGTERM to drone exec): the realm is deleted ($gone_ms ms)"
		else
			fail "drone: run cancelled mid-hook (SIGTERM to drone exec): the realm is deleted within $WAIT s"
		fi
		runner_wait 60
		check "drone: the cancelled run exits non-zero" [ "$runner_rc" -ne 0 ]
		check "drone: nothing of the cancelled run is left" no_leftovers "$ws" "$run"
	else
		fail "drone: run cancelled mid-hook (SIGTERM to drone exec): the realm is deleted"
		runner_wait 1
	fi
	diag <"$log"
fi

# --- a recipe's three patterns (testdata/pipelines/recipe/.drone.yml) -----

# The recipe's test image, without and with drone-deps in it, from a local
# base (there is no registry): tests/Dockerfile's two targets.
BUSYBOX_BASE=${BUSYBOX_BASE:-drone-deps-base/busybox:bookworm}
TEST_IMAGE=drone-deps-recipe-test:runners-$$
TEST_DEPS_IMAGE=drone-deps-recipe-test-deps:runners-$$
build_test_image() {
	DOCKER_BUILDKIT=0 $DOCKER build --target "$1" --build-arg BASE_IMAGE="$BUSYBOX_BASE" \
		--build-arg DRONE_DEPS_IMAGE="$IMAGE" -t "$2" "$PIPELINES/recipe/tests" \
		>"$work/build-$1.log" 2>&1 || {
		diag <"$work/build-$1.log"
		return 1
	}
}
check "drone patterns: the recipe's test images build from a local base (tests/Dockerfile)" \
	eval 'build_test_image test "$TEST_IMAGE" && build_test_image test-with-deps "$TEST_DEPS_IMAGE"'

is_number() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

# no_secret_in LOG WORKSPACE: neither the admin password nor, when the run
# wrote one, the binding's client secret or user password is in the log.
no_secret_in() {
	! grep -qF "$ADMIN_PASSWORD" "$1" || return 1
	[ -f "$2/deps.env" ] || return 0
	for v in $(sed -n 's/^DEPS_KEYCLOAK_\(CLIENT_SECRET\|PASSWORD\)=//p' "$2/deps.env"); do
		! grep -qF "$v" "$1" || return 1
	done
}

if selected patterns; then
	for pattern in hook up-down wrap; do
		run=$(new_numeric_run_id)
		realm=recipe-ci-$run
		ws=$(workspace "$pattern" recipe/.drone.yml "$run" "")
		log=$work/drone-$pattern.log
		t0=$(date +%s)
		drone_exec "$ws" "$pattern" "$log"
		runner_wait 300
		diag <"$log"
		echo "drone exec: pattern $pattern took $(($(date +%s) - t0)) s" | diag
		check "drone, pattern $pattern: the pipeline passes (drone exec exits 0)" [ "$runner_rc" -eq 0 ]
		check "drone, pattern $pattern: realm $realm bound on the real Keycloak" \
			grep -q "bound keycloak (warm): realm $realm at $(cat "$kc/url")" "$log"
		check "drone, pattern $pattern: the tests log in with the binding" \
			grep -q "hook: logged in as test, id_token received" "$log"
		check "drone, pattern $pattern: the realm is gone afterwards (admin API: 404)" \
			[ "$(realm_status "$realm")" = 404 ]
		check "drone, pattern $pattern: no secret in the build log" no_secret_in "$log" "$ws"
		check "drone, pattern $pattern: nothing of the run is left" no_leftovers "$ws" "$run"
		if [ "$pattern" = up-down ]; then
			check "drone, pattern up-down: env_file is written into the workspace, mode 0600" \
				[ "$(stat -c %a "$ws/deps.env" 2>/dev/null)" = 600 ]
			check "drone, pattern up-down: the down step finds the run through env_file and tears it down" \
				grep -q "tore down run $run" "$log"
		fi
	done

	# A failing test: down still runs (when: status: [success, failure]).
	run=$(new_run_id)
	realm=recipe-ci-$run
	ws=$(workspace up-down-fail recipe/.drone.yml "$run" " fail")
	log=$work/drone-up-down-fail.log
	drone_exec "$ws" up-down "$log"
	runner_wait 300
	diag <"$log"
	check "drone, pattern up-down, failing test: the pipeline fails (drone exec exits 1)" [ "$runner_rc" -eq 1 ]
	check "drone, pattern up-down, failing test: down runs on failure and deletes the realm" \
		eval 'grep -q "tore down run $run" "$log" && [ "$(realm_status "$realm")" = 404 ]'

	# A cancelled up/down build: SIGTERM to drone exec mid-test, which kills
	# the test step and runs no further step, down included (a Drone server's
	# cancel does the same). No watchdog guards an up (it is meant to outlive
	# its step), so the realm stays until its lease ends (ttl after up: an up
	# does not renew) and a reap runs: here the housekeeping pipeline, started
	# as soon as the lease has ended, as a cron job would some time later.
	run=$(new_run_id)
	realm=recipe-ci-$run
	ws=$(workspace up-down-cancel recipe/.drone.yml "$run" " hold")
	log=$work/drone-up-down-cancel.log
	t_start=$(date +%s)
	drone_exec "$ws" up-down "$log"
	if wait_for "$log" "hook: holding" 300; then
		t_cancel=$(date +%s)
		kill -TERM "$runner_pid"
		runner_wait 60
		diag <"$log"
		check "drone, cancelled up/down: drone exec exits non-zero" [ "$runner_rc" -ne 0 ]
		check "drone, cancelled up/down: the down step did not run" eval '! grep -q "tore down run" "$log"'
		check "drone, cancelled up/down: the realm is left after the cancel (admin API: 200)" \
			[ "$(realm_status "$realm")" = 200 ]
		expires=$(admin expires "$realm" 2>/dev/null)
		check "drone, cancelled up/down: the realm carries its lease's end ($expires)" is_number "$expires"
		is_number "$expires" || expires=$(($(date +%s) + 60))
		while [ "$(date +%s)" -le "$expires" ]; do sleep 1; done
		hk=$work/drone-housekeeping.log
		ws_hk=$(workspace housekeeping recipe/.drone.yml "$run" "")
		drone_exec "$ws_hk" housekeeping "$hk" cron
		runner_wait 300
		t_gone=$(date +%s)
		diag <"$hk"
		check "drone, housekeeping: status lists the cancelled run's realm as expired" \
			grep -Eq "realm +$realm +$run .*expired [0-9]+ s ago +expired" "$hk"
		check "drone, housekeeping: reap deletes it (admin API: 404)" \
			eval 'grep -q "reaped realm $realm" "$hk" && [ "$(realm_status "$realm")" = 404 ]'
		check "drone, housekeeping: the pipeline passes (status's exit 1 is ignored)" [ "$runner_rc" -eq 0 ]
		{
			echo "cancelled up/down: up at +0 s (ttl 60 s), cancelled at +$((t_cancel - t_start)) s,"
			echo "  lease ended at +$((expires - t_start)) s, reaped by +$((t_gone - t_start)) s:"
			echo "  the realm outlived the cancel by $((t_gone - t_cancel)) s = the rest of its lease"
			echo "  ($((expires - t_cancel)) s) + the wait for a reap ($((t_gone - expires)) s, housekeeping run at once);"
			echo "  at most ttl + the time to the next reap (the cron interval, or a later run's own reap)"
		} | diag
	else
		fail "drone, cancelled up/down: the test step holds"
		runner_wait 1
		diag <"$log"
	fi
fi

# --- threat model: what the hook and the tests can reach -------------------
#
# tests/probe.sh runs as (or before) the tests and copies every ancestor's
# /proc environ and cmdline into the workspace's probe/; here, knowing the
# admin password, we look for it there. Each case is one pipeline of
# recipe/.drone.yml, with and without hook_user (a uid of no account).

if selected secrets; then
	t_secrets=$(date +%s)
	HOOK_UID=64123
	SECRET_FILE=$work/secret/keycloak_admin_password
	mkdir -p "$work/secret"
	(umask 077 && printf '%s' "$ADMIN_PASSWORD" >"$SECRET_FILE")

	# probe_case NAME PIPELINE HOOK_USER: runs the pipeline; sets ws, log,
	# found (the probe's copies that hold the password, by name) and
	# checks the run passed and left nothing.
	probe_case() {
		run=$(new_numeric_run_id)
		realm=recipe-ci-$run
		ws=$(HOOK_USER=$3 SECRET_FILE=$SECRET_FILE workspace "$1" recipe/.drone.yml "$run" "")
		mkdir -p "$ws/probe" && chmod 0777 "$ws/probe" # the hook may not be root
		log=$work/drone-$1.log
		drone_exec "$ws" "$2" "$log"
		runner_wait 300
		diag <"$log"
		found=$(cd "$ws/probe" && grep -lF "$ADMIN_PASSWORD" -- * 2>/dev/null | tr '\n' ' ')
		echo "$1: the password is in: ${found:-nothing the tests could read}" | diag
		check "threat model, $1: the pipeline passes and the tests log in" \
			eval '[ "$runner_rc" -eq 0 ] && grep -q "hook: logged in as test" "$log"'
		check "threat model, $1: the realm is gone, nothing is left" \
			eval '[ "$(realm_status "$realm")" = 404 ] && no_leftovers "$ws" "$run"'
		check "threat model, $1: no secret in the build log" no_secret_in "$log" "$ws"
	}

	# ancestors_refused LOG: from drone-deps up (the probe walks from itself
	# to PID 1), the probe could read no environ.
	ancestors_refused() {
		awk '/probe: [0-9]+ drone-deps environ/ { up = 1 }
			up && /probe: [0-9]+ [^ ]+ environ read/ { bad = 1 }
			END { exit bad || !up }' "$1"
	}

	# Pattern 1, the Docker socket mounted into the plugin step.
	probe_case hook-socket-root hook-socket ""
	check "threat model, pattern 1 with the socket: a hook as root talks to the Docker socket (it is root on the host)" \
		grep -q "probe: docker socket answered" "$log"
	probe_case hook-socket-user hook-socket "$HOOK_UID"
	check "threat model, pattern 1 with the socket and hook_user: the hook runs as $HOOK_UID:$HOOK_UID, no other group" \
		grep -q "probe: uid $HOOK_UID, gid $HOOK_UID, groups $HOOK_UID\$" "$log"
	check "threat model, pattern 1 with the socket and hook_user: the hook cannot talk to the Docker socket" \
		grep -q "probe: docker socket refused" "$log"
	check "threat model, pattern 1 with hook_user: drone-deps' environ, and every one above it, is refused to the hook" \
		ancestors_refused "$log"
	check "threat model, pattern 1 with hook_user: the password is in nothing the hook can read" \
		[ -z "$found" ]

	# Pattern 3, the binary in the test image: from_secret (environment).
	probe_case wrap-env-root wrap-probe ""
	check "threat model, pattern 3, from_secret: the tests read the password from the step's shell or PID 1 (Drone keeps it there)" \
		[ -n "$found" ]
	if grep -qF "$ADMIN_PASSWORD" "$ws"/probe/*drone-deps* 2>/dev/null; then
		fail "threat model, pattern 3, from_secret: never in drone-deps' own environ or cmdline"
	else
		pass "threat model, pattern 3, from_secret: never in drone-deps' own environ or cmdline"
	fi
	probe_case wrap-env-user wrap-probe "$HOOK_UID"
	check "threat model, pattern 3, from_secret and hook_user: every ancestor's environ is refused to the tests" \
		ancestors_refused "$log"
	check "threat model, pattern 3, from_secret and hook_user: the password is in nothing the tests can read" \
		[ -z "$found" ]

	# Pattern 3 with keycloak_admin_password_file.
	probe_case wrap-file-root wrap-probe-file ""
	check "threat model, pattern 3, _file: no ancestor's environ or cmdline holds the password" \
		eval '! (cd "$ws/probe" && grep -qlF "$ADMIN_PASSWORD" -- *.environ *.cmdline 2>/dev/null)'
	check "threat model, pattern 3, _file without hook_user: the tests can read the file itself" \
		grep -q "probe: secret file read" "$log"
	probe_case wrap-file-user wrap-probe-file "$HOOK_UID"
	check "threat model, pattern 3, _file and hook_user: the tests cannot read the file" \
		grep -q "probe: secret file refused" "$log"
	check "threat model, pattern 3, _file and hook_user: the password is in nothing the tests can read" \
		[ -z "$found" ]

	# Pattern 2: up (one with the admin password for another build, one
	# with the CI client for this one), the tests in the recipe's own image
	# after the probe, then the test step rewrites deps.env's DEPS_RUN_ID to
	# the other build's run, and down (admin password) is run with it. The
	# exit codes of the steps are read from the engine's events.
	t_p2=$(date +%s)
	check "threat model, pattern 2: the CI client is made on the test Keycloak" \
		ci_client "$CI_CLIENT_ID" "$CI_SECRET"
	OTHER_RUN_ID=$(new_numeric_run_id)
	other=recipe-ci-$OTHER_RUN_ID
	run=$(new_numeric_run_id)
	realm=recipe-ci-$run
	ws=$(OTHER_RUN_ID=$OTHER_RUN_ID workspace up-down-probe recipe/.drone.yml "$run" "")
	echo "$OTHER_RUN_ID" >>"$work/run-ids"
	mkdir -p "$ws/probe"
	log=$work/drone-up-down-probe.log
	events=$work/events-up-down-probe
	$DOCKER events --filter "label=io.drone.desktop.pipeline.dir=$ws" --filter event=die \
		--format '{{index .Actor.Attributes "io.drone.step.name"}} {{.Actor.Attributes.exitCode}}' \
		>"$events" 2>&1 &
	events_pid=$!
	drone_exec "$ws" up-down-probe "$log"
	runner_wait 300
	sleep 1 # the last die event
	kill "$events_pid" 2>/dev/null
	wait "$events_pid" 2>/dev/null
	events_pid=
	diag <"$log"
	sed 's/^/step exit: /' "$events" | diag
	found=$(cd "$ws/probe" && { grep -lF "$ADMIN_PASSWORD" -- *; grep -lF "$CI_SECRET" -- *; } 2>/dev/null | tr '\n' ' ')
	echo "up-down-probe: the admin password or the CI client's secret is in: ${found:-nothing the tests could read}" | diag
	check "threat model, pattern 2: the test step passes with its own binding (deps.env)" \
		eval 'grep -q "hook: logged in as test" "$log" && grep -qx "test 0" "$events"'
	check "threat model, pattern 2: no ancestor's environ or cmdline in the test step holds the admin password or the CI client's secret" \
		eval '[ -z "$found" ] && ls "$ws"/probe/*.environ >/dev/null 2>&1 && grep -q "probe: 1 [^ ]* environ read" "$log"'
	# The probe's own environ holds what the step sourced from deps.env.
	key=$(sed -n 's/^DEPS_RUN_KEY=//p' "$ws/deps.env" 2>/dev/null)
	secret=$(sed -n 's/^DEPS_KEYCLOAK_CLIENT_SECRET=//p' "$ws/deps.env" 2>/dev/null)
	own_key_read() {
		[ -n "$key" ] && [ -n "$secret" ] || return 1
		tr '\0' '\n' <"$(ls "$ws"/probe/*.probe.sh.environ | head -n 1)" >"$work/probe-environ" || return 1
		grep -qxF "DEPS_RUN_KEY=$key" "$work/probe-environ" &&
			grep -qxF "DEPS_KEYCLOAK_CLIENT_SECRET=$secret" "$work/probe-environ" &&
			[ "$(admin key "$realm" 2>/dev/null)" = "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" ]
	}
	check "threat model, pattern 2: the test step reads its own run's DEPS_RUN_KEY and client secret from deps.env (its own: the realm's key mark is that key's hash)" \
		own_key_read
	check "threat model, pattern 2: down with deps.env's DEPS_RUN_ID rewritten to another build's run deletes nothing and exits 77" \
		eval 'grep -qx "deps-down 77" "$events" && grep -q "realm $other is not this run.s to tear down" "$log" &&
			[ "$(realm_status "$other")" = 200 ] && [ "$(realm_status "$realm")" = 200 ]'
	check "threat model, pattern 2: no secret in the build log" \
		eval 'no_secret_in "$log" "$ws" && ! grep -qF "$CI_SECRET" "$log"'
	realm_delete "$realm"
	realm_delete "$other"
	check "threat model, pattern 2: both realms deleted afterwards, nothing of the run is left" \
		eval '[ "$(realm_status "$realm")" = 404 ] && [ "$(realm_status "$other")" = 404 ] && no_leftovers "$ws" "$run"'

	# Pattern 2 with the socket mounted into the test step: no up needed.
	ws=$(workspace up-down-socket recipe/.drone.yml "$(new_numeric_run_id)" "")
	mkdir -p "$ws/probe"
	log=$work/drone-up-down-socket.log
	drone_exec "$ws" up-down-socket "$log"
	runner_wait 120
	diag <"$log"
	check "threat model, pattern 2 with the socket in the test step: the tests talk to the Docker socket (they are root on the host)" \
		grep -q "probe: docker socket answered" "$log"
	echo "threat model, pattern 2: 2 pipelines in $(($(date +%s) - t_p2)) s" | diag
	echo "threat model: 8 pipelines in $(($(date +%s) - t_secrets)) s" | diag
fi

# --- Woodpecker ----------------------------------------------------------

if selected woodpecker; then
	WOODPECKER=$("$TOP/tools/runners.sh" path woodpecker 2>"$work/path.err")
	if [ -z "$WOODPECKER" ]; then
		why=$(sed 's/^runners: //' "$work/path.err" | tr '\n' ' ')
		for t in "the recipe pipeline passes, the realm is gone" \
			"settings arrive renamed (- and . become _), empty values as empty" \
			"run cancelled mid-hook (SIGTERM, then SIGKILL after 20 s): the realm is deleted"; do
			echo "ok - woodpecker: $t # SKIP woodpecker-cli could not be built: $why"
		done
	else
		# woodpecker_exec WORKSPACE LOG: in the background; sets runner_pid.
		woodpecker_exec() {
			(umask 077 && printf 'keycloak_admin_password: "%s"\n' "$ADMIN_PASSWORD" >"$work/secrets.yml")
			(cd "$1" && WOODPECKER_DISABLE_UPDATE_CHECK=true exec "$WOODPECKER" exec \
				--backend-engine docker --repo-trusted-network --repo-trusted-volumes \
				--secrets-file "$work/secrets.yml" pipeline.yml) >"$2" 2>&1 &
			runner_pid=$!
		}
		run=$(new_run_id)
		realm=recipe-ci-$run
		ws=$(workspace wp-pass woodpecker.yml "$run" "")
		log=$work/woodpecker-pass.log
		woodpecker_exec "$ws" "$log"
		runner_wait 300
		diag <"$log"
		if [ "$runner_rc" -eq 0 ] && grep -q "hook: logged in as test" "$log" &&
			[ "$(realm_status "$realm")" = 404 ]; then
			pass "woodpecker: the recipe pipeline passes, the realm is gone"
		else
			fail "woodpecker: the recipe pipeline passes, the realm is gone"
		fi
		if grep -q "hook: setting PLUGIN_PROBE_DASH" "$log" && grep -q "hook: setting PLUGIN_ENV_FILE" "$log"; then
			pass "woodpecker: settings arrive renamed (- and . become _), empty values as empty"
		else
			fail "woodpecker: settings arrive renamed (- and . become _), empty values as empty"
		fi
		run=$(new_run_id)
		realm=recipe-ci-$run
		ws=$(workspace wp-cancel woodpecker.yml "$run" " hold")
		log=$work/woodpecker-cancel.log
		woodpecker_exec "$ws" "$log"
		if wait_for "$log" "hook: holding" 300; then
			kill -TERM "$runner_pid"
			# Woodpecker stops the step (SIGTERM) and kills it after 20 s.
			if realm_gone_within "$realm" $((WAIT + 20)); then
				pass "woodpecker: run cancelled mid-hook (SIGTERM, then SIGKILL after 20 s): the realm is deleted ($gone_ms ms)"
			else
				fail "woodpecker: run cancelled mid-hook (SIGTERM, then SIGKILL after 20 s): the realm is deleted"
			fi
			runner_wait 60
		else
			fail "woodpecker: run cancelled mid-hook (SIGTERM, then SIGKILL after 20 s): the realm is deleted"
			runner_wait 1
		fi
		diag <"$log"
	fi

fi

exit "$failed"
