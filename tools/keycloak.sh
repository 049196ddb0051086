#!/bin/sh
# A real Keycloak for tests, demos and benchmarks, from Maven Central's
# keycloak-quarkus-dist, on loopback only.
#
# Usage:
#   tools/keycloak.sh fetch            download (once), verify, unpack, build;
#                                      prints the distribution's home folder
#   tools/keycloak.sh start DIR PORT   start one instance: HTTP on 127.0.0.1:PORT,
#                                      health on 127.0.0.1:PORT+1; waits until
#                                      ready; its state lives in DIR (pid, log,
#                                      url, admin password); prints its URL
#   tools/keycloak.sh stop DIR         stop the instance of DIR, by its pid
#
# Environment: KEYCLOAK_VERSION (pinned below), DRONE_DEPS_CACHE (where the
# distribution is kept between runs, default /var/cache/drone-deps),
# KEYCLOAK_ADMIN_PASSWORD (the bootstrap admin's, default a fixed test one),
# KEYCLOAK_START_WAIT (seconds, default 240), JAVA_HOME.
#
# Each instance runs from its own copy of the distribution (about 170 MB),
# so instances never share the transaction log or the build; the copy is
# made from a distribution already built with the fixed options below, so
# start-dev skips Quarkus' re-augmentation (about 20 s saved per start).
set -eu

VERSION=${KEYCLOAK_VERSION:-26.4.7}
# sha256 of keycloak-quarkus-dist-26.4.7.tar.gz as Maven Central served it;
# another version must be verified by its own sum (KEYCLOAK_SHA256).
SHA256_26_4_7=aca60ab72ae4d67adc6b8fe7fca5e08d16a6bb5e4a4f2ebb54050e3f5503fd2b
CACHE=${DRONE_DEPS_CACHE:-/var/cache/drone-deps}/keycloak
# Build options are fixed: changing any of them makes every start re-augment.
BUILD_OPTS="--db=dev-mem --health-enabled=true"

log() { printf 'keycloak: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need_java() {
	if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
		return
	fi
	if ! command -v java >/dev/null 2>&1; then
		log "installing openjdk-17-jre-headless"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
	fi
}

need_maven() {
	if ! command -v mvn >/dev/null 2>&1; then
		log "installing maven"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
	fi
}

fetch() {
	home=$CACHE/keycloak-$VERSION
	tarball=$CACHE/keycloak-quarkus-dist-$VERSION.tar.gz
	if [ -f "$home/.built" ]; then
		echo "$home"
		return
	fi
	need_java
	mkdir -p "$CACHE"
	if [ ! -f "$tarball" ]; then
		need_maven
		log "downloading keycloak-quarkus-dist $VERSION from Maven Central"
		# -C: a checksum mismatch against the repository's own sums fails
		mvn -B -q -C dependency:copy \
			-Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:tar.gz" \
			-DoutputDirectory="$CACHE" >&2 || die "maven could not fetch keycloak-quarkus-dist $VERSION"
	fi
	want=${KEYCLOAK_SHA256:-}
	[ -n "$want" ] || [ "$VERSION" != 26.4.7 ] || want=$SHA256_26_4_7
	[ -n "$want" ] || die "no sha256 known for $VERSION: set KEYCLOAK_SHA256"
	got=$(sha256sum "$tarball" | cut -d' ' -f1)
	if [ "$got" != "$want" ]; then
		rm -f "$tarball"
		die "$tarball: sha256 $got, want $want (removed)"
	fi
	rm -rf "$home" "$home.tmp"
	mkdir -p "$home.tmp"
	tar -xzf "$tarball" -C "$home.tmp" --strip-components=1
	log "building the distribution once ($BUILD_OPTS)"
	# shellcheck disable=SC2086 # BUILD_OPTS is a list of options
	"$home.tmp/bin/kc.sh" build $BUILD_OPTS >"$home.tmp/build.log" 2>&1 ||
		die "kc.sh build failed: $(tail -n 5 "$home.tmp/build.log")"
	: >"$home.tmp/.built"
	mv "$home.tmp" "$home"
	echo "$home"
}

start() {
	dir=$1
	port=$2
	case $port in '' | *[!0-9]*) die "start: PORT must be a number" ;; esac
	home=$(fetch)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
		die "an instance already runs from $dir (pid $(cat "$dir/pid"))"
	fi
	for p in "$port" "$((port + 1))"; do
		if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/"; then
			die "port $p on 127.0.0.1 already answers: choose another PORT"
		fi
	done
	rm -rf "$dir/kc"
	cp -a "$home" "$dir/kc"
	password=${KEYCLOAK_ADMIN_PASSWORD:-Adm1n-Pa55word-e2e}
	mgmt=$((port + 1))
	t0=$(date +%s%N)
	# setsid: its own session and process group, so a test's process-group
	# kill does not reach it, and stop can end kc.sh and its java together.
	# start --optimized, not start-dev: start-dev re-augments the build on
	# every start (its dev profile never matches the stored build), which
	# costs 20-60 s; the optimized start of the build above (in-memory
	# database, health) on plain HTTP on loopback is the same test server.
	KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$password \
		setsid "$dir/kc/bin/kc.sh" start --optimized --http-enabled=true \
		--http-host=127.0.0.1 --http-port="$port" \
		--http-management-port="$mgmt" --hostname-strict=false \
		--log-level=warn >"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	printf 'http://127.0.0.1:%s\n' "$port" >"$dir/url"
	printf '%s\n' "$password" >"$dir/admin_password"
	chmod 600 "$dir/admin_password"
	wait_s=${KEYCLOAK_START_WAIT:-240}
	deadline=$(($(date +%s) + wait_s))
	until curl -sf -o /dev/null "http://127.0.0.1:$mgmt/health/ready"; do
		if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
			die "Keycloak exited before it was ready: $(tail -n 20 "$dir/log")"
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			stop "$dir"
			die "Keycloak was not ready within ${wait_s}s"
		fi
		sleep 0.2
	done
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$ms" >"$dir/start_ms"
	log "Keycloak $VERSION ready at http://127.0.0.1:$port in $ms ms (pid $(cat "$dir/pid"))"
	cat "$dir/url"
}

stop() {
	dir=$1
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	# Only the process we started: its command line must name our copy.
	# It leads its own process group (setsid above): kc.sh and the java it
	# runs as a child are stopped together, so no server outlives kc.sh.
	if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$dir/kc"; then
		kill -CONT "-$pid" 2>/dev/null || true # a paused server cannot stop
		kill -TERM "-$pid" 2>/dev/null || true
		i=0
		while kill -0 "-$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
			i=$((i + 1))
			sleep 0.1
		done
		kill -KILL "-$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid"
	rm -rf "$dir/kc"
}

case ${1:-} in
fetch) fetch ;;
start) [ $# -eq 3 ] || die "usage: $0 start DIR PORT"; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 fetch | start DIR PORT | stop DIR" ;;
esac
