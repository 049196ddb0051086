#!/bin/sh
# Tests of the plugin image, run the way Drone runs a plugin step:
# `docker run --rm` with the step's settings as PLUGIN_* variables, Drone's
# DRONE_* variables, the workspace mounted at /drone/src and set as working
# directory, and the hook a BusyBox sh script from the workspace; then once
# more with Woodpecker's CI_* variables only.  The Keycloak stand-in runs on
# the host over HTTPS with a test CA that the step trusts via PLUGIN_CA_CERT.
#
# Usage: tests/image/run.sh [IMAGE [BINARY]]   (default drone-deps:test;
#        needs a Docker engine: make docker-up).  With BINARY (e.g.
#        build/static/drone-deps), also check that the image carries exactly
#        that tested binary.  IMAGE_BUDGET: bytes, default 4 MiB.
# Output: one "ok - name" or "not ok - name" line per test, diagnostics on
# lines starting with "#"; exit 1 when any test failed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
IMAGE=${1:-drone-deps:test}
EXPECT_BIN=${2:-}
IMAGE_BUDGET=${IMAGE_BUDGET:-4194304}
DOCKER=${DOCKER:-docker}
STUB=$TOP/tests/kcstub/kcstub.py
MAKE_CERTS=${MAKE_CERTS:-$TOP/tests/kcstub/make-certs.sh}
# shellcheck source=../lib/tap.sh
. "$TOP/tests/lib/tap.sh"
# shellcheck source=../lib/stub.sh
. "$TOP/tests/lib/stub.sh"
# A Drone secret in real life; it must never reach the hook or the log.
ADMIN_PASSWORD=image-test-admin-$$

failed=0
stub_pid=
work=$(mktemp -d "${TMPDIR:-/tmp}/drone-deps-image.XXXXXX")
# Containers carry this label so cleanup finds exactly ours.
RUN_LABEL=drone-deps-image-test=$$

cleanup() {
	ids=$($DOCKER ps -aq --filter "label=$RUN_LABEL" 2>/dev/null)
	[ -z "$ids" ] || $DOCKER rm -f $ids >/dev/null 2>&1
	if [ -n "$stub_pid" ]; then
		kill "$stub_pid" 2>/dev/null
		wait "$stub_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# has FILE LINE_REGEX: a whole line of FILE matches.
has() { grep -Eqx "$2" "$1" 2>/dev/null; }

# --- the image as built ------------------------------------------------

if ! $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
	fail "image $IMAGE exists"
	exit 1
fi
$DOCKER image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Labels}}' "$IMAGE" |
	diag
check "entrypoint is /bin/drone-deps" \
	sh -c '[ "$($1 image inspect --format "{{json .Config.Entrypoint}}" "$2")" = "[\"/bin/drone-deps\"]" ]' \
	- "$DOCKER" "$IMAGE"
for l in source version licenses; do
	check "OCI label org.opencontainers.image.$l is set" \
		sh -c '[ -n "$($1 image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$3\"}}" "$2")" ]' \
		- "$DOCKER" "$IMAGE" "$l"
done
size=$($DOCKER image inspect --format '{{.Size}}' "$IMAGE")
awk -v s="$size" -v b="$IMAGE_BUDGET" 'BEGIN {
	printf "image size %d bytes = %.2f MiB (budget %.2f MiB)\n", s, s / 1048576, b / 1048576 }' | diag
check "image size within budget" test "$size" -le "$IMAGE_BUDGET"

out=$($DOCKER run --rm --label "$RUN_LABEL" --entrypoint /bin/sh "$IMAGE" -c \
	'test -s /etc/ssl/certs/ca-certificates.crt && /bin/drone-deps --version && echo sh works' 2>&1)
echo "$out" | diag
check "CA bundle, binary and BusyBox sh are in the image" \
	sh -c 'echo "$1" | grep -q "^drone-deps " && echo "$1" | grep -qx "sh works"' - "$out"

if [ -n "$EXPECT_BIN" ]; then
	id=$($DOCKER create --label "$RUN_LABEL" "$IMAGE")
	$DOCKER cp "$id:/bin/drone-deps" "$work/image-drone-deps" >/dev/null 2>&1
	$DOCKER rm "$id" >/dev/null 2>&1
	sha256sum "$EXPECT_BIN" "$work/image-drone-deps" 2>&1 | diag
	check "the image carries the tested binary $EXPECT_BIN, byte for byte" \
		cmp -s "$EXPECT_BIN" "$work/image-drone-deps"
fi

# --- the stand-in ------------------------------------------------------

if [ ! -f "$STUB" ] || [ ! -x "$MAKE_CERTS" ]; then
	fail "Keycloak stand-in present (tests/kcstub)"
	exit 1
fi
"$MAKE_CERTS" "$work/certs" >/dev/null 2>&1 || fail "make-certs.sh makes the test certificates"
stub_start || exit 1


# --- a workspace like Drone's -------------------------------------------

# workspace DIR STATUS: a checkout with the test CA and a BusyBox sh hook
# that records its binding and working directory, then exits with STATUS.
workspace() {
	mkdir -p "$1/tests" "$1/certs"
	cp "$work/certs/ca.pem" "$1/certs/ca.pem"
	cat >"$1/tests/hook.sh" <<-EOF
		#!/bin/sh
		# What a recipe's test script would do first: look at its binding.
		pwd >hook.pwd
		env | grep '^DEPS_' | sort >hook.env
		env | grep -c 'PLUGIN_KEYCLOAK_ADMIN_PASSWORD\|$ADMIN_PASSWORD' >hook.leak
		exit $2
	EOF
	chmod +x "$1/tests/hook.sh"
}

# plugin NAME WORKSPACE MOUNT ENV...: docker run the image as a CI runner
# runs a plugin step; output in $work/NAME.log, status in $rc.
plugin() {
	name=$1 ws=$2 mnt=$3
	shift 3
	envs=
	for e in "$@"; do envs="$envs -e $e"; done
	# Word splitting of $envs is wanted: no value holds a space.
	$DOCKER run --rm --label "$RUN_LABEL" --network host \
		--add-host kc.test:127.0.0.1 \
		-v "$ws:$mnt" -w "$mnt" $envs "$IMAGE" >"$work/$name.log" 2>&1
	rc=$?
	echo "exit $rc" >>"$work/$name.log"
	diag <"$work/$name.log"
}

# binding_ok NAME WS PARENT: the binding a hook saw is complete and coherent.
binding_ok() {
	f=$2/hook.env
	realm=$(sed -n 's/^DEPS_KEYCLOAK_REALM=//p' "$f" 2>/dev/null)
	run=$(sed -n 's/^DEPS_RUN_ID=//p' "$f" 2>/dev/null)
	has "$f" "DEPS_RUN_ID=[0-9a-f]{6}" &&
		has "$f" "DEPS_KEYCLOAK_MODE=warm" &&
		has "$f" "DEPS_KEYCLOAK_URL=$URL" &&
		[ "$realm" = "$3-$run" ] &&
		has "$f" "DEPS_KEYCLOAK_ISSUER=$URL/realms/$realm" &&
		has "$f" "DEPS_KEYCLOAK_CLIENT_ID=$3" &&
		has "$f" "DEPS_KEYCLOAK_CLIENT_SECRET=.{32,}" &&
		has "$f" "DEPS_KEYCLOAK_USERNAME=.+" &&
		has "$f" "DEPS_KEYCLOAK_PASSWORD=.+"
}

# after_run NAME WS STATUS PARENT: the checks both runners share.
after_run() {
	name=$1 ws=$2 want=$3 parent=$4
	sed 's/\(SECRET\|PASSWORD\)=.*/\1=(hidden)/' "$ws/hook.env" 2>/dev/null | diag
	check "$name: the hook's exit status ($want) is the step's" test "$rc" -eq "$want"
	check "$name: the hook ran in the mounted workspace" \
		has "$ws/hook.pwd" "$(cat "$work/$name.mnt")"
	check "$name: the hook saw the whole binding" binding_ok "$name" "$ws" "$parent"
	check "$name: the hook never saw the admin password" has "$ws/hook.leak" 0
	secret=$(sed -n 's/^DEPS_KEYCLOAK_CLIENT_SECRET=//p' "$ws/hook.env" 2>/dev/null)
	check "$name: no secret in the step's log" \
		sh -c '! grep -qF -e "$1" "$3" && { [ -z "$2" ] || ! grep -qF -e "$2" "$3"; }' \
		- "$ADMIN_PASSWORD" "$secret" "$work/$name.log"
	realm=$(sed -n 's/^DEPS_KEYCLOAK_REALM=//p' "$ws/hook.env" 2>/dev/null)
	realms=$(stub_realms 2>&1)
	echo "realms after the run: $(echo "$realms" | tr '\n' ' ')" | diag
	check "$name: the realm is gone after the step" \
		sh -c '[ -n "$2" ] && echo "$1" | grep -qx master && ! echo "$1" | grep -qx "$2"' \
		- "$realms" "$realm"
}

# Drone: settings as PLUGIN_*, the runner's DRONE_* and CI_* variables,
# workspace /drone/src.
ws=$work/drone
workspace "$ws" 3
echo /drone/src >"$work/drone.mnt"
plugin drone "$ws" /drone/src \
	PLUGIN_DEPS=keycloak PLUGIN_MODE=warm PLUGIN_KEYCLOAK_URL="$URL" \
	PLUGIN_KEYCLOAK_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
	PLUGIN_CA_CERT=/drone/src/certs/ca.pem PLUGIN_HOOK=./tests/hook.sh \
	CI=true DRONE=true DRONE_WORKSPACE=/drone/src \
	DRONE_REPO=coop-cloud/imagetest DRONE_REPO_NAME=imagetest \
	DRONE_REPO_OWNER=coop-cloud DRONE_BUILD_NUMBER=42 DRONE_STAGE_NUMBER=1 \
	DRONE_STEP_NAME=deps DRONE_STEP_NUMBER=2 DRONE_COMMIT_SHA=0123456789abcdef \
	DRONE_BRANCH=main DRONE_BUILD_EVENT=push
after_run drone "$ws" 3 imagetest

# Woodpecker: the same settings, CI_* variables only, its workspace path.
ws=$work/woodpecker
workspace "$ws" 0
echo /woodpecker/src/imagetest-wp >"$work/woodpecker.mnt"
plugin woodpecker "$ws" /woodpecker/src/imagetest-wp \
	PLUGIN_DEPS=keycloak PLUGIN_MODE=warm PLUGIN_KEYCLOAK_URL="$URL" \
	PLUGIN_KEYCLOAK_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
	PLUGIN_CA_CERT=/woodpecker/src/imagetest-wp/certs/ca.pem \
	PLUGIN_HOOK=./tests/hook.sh \
	CI=woodpecker CI_WORKSPACE=/woodpecker/src/imagetest-wp \
	CI_REPO=coop-cloud/imagetest-wp CI_REPO_NAME=imagetest-wp \
	CI_REPO_OWNER=coop-cloud CI_PIPELINE_NUMBER=7 CI_WORKFLOW_NUMBER=1 \
	CI_STEP_NAME=deps CI_COMMIT_SHA=0123456789abcdef CI_COMMIT_BRANCH=main \
	CI_PIPELINE_EVENT=push
after_run woodpecker "$ws" 0 imagetest-wp

exit "$failed"
