#!/bin/sh
# test_image.sh: builds the kcstub image with build.sh and checks it behaves
# like the Keycloak image where tests rely on it. One line per test,
# "ok - NAME" or "not ok - NAME" with "#" diagnostics, or
# "ok - NAME # SKIP REASON" for a test that did not run (counted apart, never
# as passed); exit 1 on any failure.
# Every container, service and image it makes is removed on exit, pass or fail.
#
# Environment: DOCKER (default /usr/bin/docker), KCSTUB_SKIP_SWARM=1 to skip
# the swarm service test.
set -u

here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-/usr/bin/docker}
tag="kcstub-image-test:$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/kcstub-image-test.XXXXXX")
containers=""
service=""
passed=0
failed=0
skipped=0

cleanup() {
	for c in $containers; do "$docker" rm -f "$c" >/dev/null 2>&1; done
	if [ -n "$service" ]; then
		"$docker" service rm "$service" >/dev/null 2>&1
		# Task containers go away asynchronously; wait so the image can go too.
		i=0
		while [ $i -lt 50 ] && [ -n "$("$docker" ps -aq --filter "label=com.docker.swarm.service.name=$service")" ]; do
			sleep 0.2
			i=$((i + 1))
		done
	fi
	"$docker" image rm -f "$tag" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ok() { passed=$((passed + 1)); echo "ok - $1"; }
skip() {
	skipped=$((skipped + 1))
	echo "ok - $1 # SKIP $2"
}
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	shift
	for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}

# http METHOD URL [FORM]: prints "STATUS BODY" (Python, so no curl needed).
http() {
	python3 - "$@" <<'EOF'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, method=method)
if data is not None:
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode("utf-8", "replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode("utf-8", "replace"))
except Exception as e:
    print(0, repr(e))
EOF
}

# wait_ready PORT: until GET /realms/master answers 200 (30 s).
wait_ready() {
	i=0
	while [ $i -lt 150 ]; do
		case $(http GET "http://127.0.0.1:$1/realms/master") in 200\ *) return 0 ;; esac
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# run_stub NAME [docker run options...]: starts a container; sets cid and
# port. Not to be called in a subshell: the cleanup list must see the id.
run_stub() {
	name=$1
	shift
	port=""
	cid=$("$docker" run -d --name "kcstub-test-$$-$name" -p 127.0.0.1::8080 "$@" "$tag") || {
		cid=""
		return 1
	}
	containers="$containers $cid"
	port=$("$docker" port "$cid" 8080/tcp | sed -n '1s/.*://p')
}

token_status() { # PORT USER PASSWORD
	http POST "http://127.0.0.1:$1/realms/master/protocol/openid-connect/token" \
		"client_id=admin-cli&grant_type=password&username=$2&password=$3" | cut -d' ' -f1
}

# 1. build
if out=$(sh "$here/build.sh" "$tag" 2>&1); then
	ok "build.sh builds the image from local parts"
else
	not_ok "build.sh builds the image from local parts" "$out"
	echo "# image tests: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi

# 2. layout of the Keycloak image
conf=$("$docker" image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}' "$tag")
if [ "$conf" = '["/opt/keycloak/bin/kc.sh"] ["start-dev"] {"8080/tcp":{}}' ]; then
	ok "entrypoint kc.sh, command start-dev, port 8080, like the Keycloak image"
else
	not_ok "entrypoint kc.sh, command start-dev, port 8080, like the Keycloak image" "$conf"
fi

size=$("$docker" image inspect -f '{{.Size}}' "$tag")
layout=$("$docker" run --rm --entrypoint /bin/sh "$tag" -c \
	'ls /usr/lib/python3.11/test /usr/lib/python3.11/idlelib /usr/lib/python3.11/tkinter /usr/lib/python3.11/ensurepip 2>&1; find / -xdev -name __pycache__ 2>/dev/null; ls -l /bin/sh /bin/busybox /opt/kcstub/kcstub.py' 2>&1)
if [ "$size" -lt 80000000 ] && echo "$layout" | grep -q 'sh -> busybox' &&
	echo "$layout" | grep -q '/opt/kcstub/kcstub.py' && ! echo "$layout" | grep -q '__pycache__' &&
	[ "$(echo "$layout" | grep -c 'No such file')" -eq 4 ]; then
	ok "the tree is small: no test suites, caches or GUI modules (${size} bytes)"
else
	not_ok "the tree is small: no test suites, caches or GUI modules (${size} bytes)" "$layout"
fi

# 3. a container with KC_BOOTSTRAP_* answers like Keycloak
run_stub boot -e KC_BOOTSTRAP_ADMIN_USERNAME=boss -e KC_BOOTSTRAP_ADMIN_PASSWORD=from-env-26
if [ -n "$port" ] && wait_ready "$port"; then
	ok "docker run -p 127.0.0.1::8080: /realms/master answers 200"
else
	not_ok "docker run -p 127.0.0.1::8080: /realms/master answers 200" "port=$port" \
		"$("$docker" logs "$cid" 2>&1 | tail -20)"
fi

good=$(token_status "$port" boss from-env-26)
bad=$(token_status "$port" admin admin)
if [ "$good" = 200 ] && [ "$bad" = 401 ]; then
	ok "admin token with KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD (admin/admin refused)"
else
	not_ok "admin token with KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD (admin/admin refused)" \
		"env credentials: $good, admin/admin: $bad"
fi

host=$("$docker" exec "$cid" cat /etc/hostname 2>&1)
short=$(echo "$cid" | cut -c1-12)
if [ "$host" = "$short" ]; then
	ok "docker exec cat /etc/hostname works (busybox)"
else
	not_ok "docker exec cat /etc/hostname works (busybox)" "got: $host" "want: $short"
fi

shell=$("$docker" exec "$cid" sh -c 'ls /opt/keycloak/bin && sleep 0.1 && id -u && echo $((6*7))' 2>&1)
if [ "$(echo "$shell" | tr '\n' ' ')" = "kc.sh 1000 42 " ]; then
	ok "busybox sh, ls, sleep, id; runs as uid 1000 like Keycloak"
else
	not_ok "busybox sh, ls, sleep, id; runs as uid 1000 like Keycloak" "$shell"
fi

ver=$("$docker" run --rm "$tag" --version 2>&1)
case $ver in
"Keycloak 26."*) ok "kc.sh --version says Keycloak 26" ;;
*) not_ok "kc.sh --version says Keycloak 26" "$ver" ;;
esac

# 4. SIGTERM (docker stop) ends it cleanly
start=$(date +%s)
"$docker" stop -t 10 "$cid" >/dev/null 2>&1
took=$(($(date +%s) - start))
code=$("$docker" inspect -f '{{.State.ExitCode}}' "$cid" 2>&1)
if [ "$code" = 0 ] && [ "$took" -lt 5 ]; then
	ok "docker stop: exit status 0 within seconds"
else
	not_ok "docker stop: exit status 0 within seconds" "exit $code after ${took}s"
fi

# 5. pre-26 variable names, environment only, read-only root file system
run_stub legacy --read-only -e KEYCLOAK_ADMIN=old -e KEYCLOAK_ADMIN_PASSWORD=from-env-25
if [ -n "$port" ] && wait_ready "$port" && [ "$(token_status "$port" old from-env-25)" = 200 ]; then
	ok "KEYCLOAK_ADMIN/KEYCLOAK_ADMIN_PASSWORD, read-only root, environment only"
else
	not_ok "KEYCLOAK_ADMIN/KEYCLOAK_ADMIN_PASSWORD, read-only root, environment only" \
		"port=$port" "$("$docker" logs "$cid" 2>&1 | tail -20)"
fi

rand=$("$docker" run --rm --entrypoint /usr/bin/python3.11 "$tag" -c \
	'import os, secrets, ssl; print(len(os.urandom(32)), len(secrets.token_hex(8)), ssl.OPENSSL_VERSION.split()[0])' 2>&1)
if [ "$rand" = "32 16 OpenSSL" ]; then
	ok "python's randomness and ssl work in the container"
else
	not_ok "python's randomness and ssl work in the container" "$rand"
fi

# 6. the admin password from a secret file, and --http-port
echo from-secret >"$work/admin_password"
chmod 644 "$work/admin_password"
cid=$("$docker" run -d --name "kcstub-test-$$-secret" -p 127.0.0.1::9090 \
	-v "$work/admin_password:/run/secrets/admin_password:ro" "$tag" start-dev --http-port=9090 --http-enabled=true) ||
	cid=""
containers="$containers $cid"
port=$("$docker" port "$cid" 9090/tcp 2>/dev/null | sed -n '1s/.*://p')
if [ -n "$port" ] && wait_ready "$port" && [ "$(token_status "$port" admin from-secret)" = 200 ]; then
	ok "/run/secrets/admin_password and --http-port are honoured"
else
	not_ok "/run/secrets/admin_password and --http-port are honoured" "port=$port" \
		"$("$docker" logs "$cid" 2>&1 | tail -20)"
fi

# 7. as a swarm service with a host-mode published port (how cold deploys run)
if [ "${KCSTUB_SKIP_SWARM:-}" = 1 ]; then
	skip "swarm service with a host-mode port answers" "KCSTUB_SKIP_SWARM=1"
elif [ "$("$docker" info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != active ]; then
	skip "swarm service with a host-mode port answers" "no active swarm"
else
	sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	service="kcstub-test-$$"
	out=$("$docker" service create -d --name "$service" \
		--publish "published=$sport,target=8080,mode=host" \
		-e KC_BOOTSTRAP_ADMIN_PASSWORD=from-service "$tag" start-dev 2>&1)
	if wait_ready "$sport" && [ "$(token_status "$sport" admin from-service)" = 200 ]; then
		ok "swarm service with a host-mode port answers"
	else
		not_ok "swarm service with a host-mode port answers" "$out" \
			"$("$docker" service ps --no-trunc "$service" 2>&1 | tail -5)"
	fi
fi

echo "# image tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
