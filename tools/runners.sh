#!/bin/sh
# Real CI runners for tests/runners, built from the Go module proxy, pinned.
#
# Usage:
#   tools/runners.sh build    build every runner that can be had; prints one
#                             line per runner: NAME PATH, or NAME refused: WHY
#   tools/runners.sh path NAME  the built binary of NAME (drone, woodpecker);
#                             exit 1 and say why when it is not there
#
# drone       `drone exec` of github.com/drone/drone-cli, from the wrapper
#             module tools/runners/drone (pinned in its go.mod, hashes in
#             its go.sum; it repeats drone-cli's replace of the Docker client)
# woodpecker  `woodpecker-cli exec` of go.woodpecker-ci.org/woodpecker/v3;
#             when the proxy refuses the module, the refusal is kept in the
#             cache for a day and shown (the runners suite then skips it)
#
# Everything the go command keeps (modules, build cache) and the binaries
# live under $DRONE_DEPS_CACHE/runners (default /var/cache/drone-deps), outside
# the clone, so a second build from a fresh clone only links.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DRONE_DEPS_CACHE:-/var/cache/drone-deps}/runners
BIN=$CACHE/bin
DRONE_CLI_VERSION=v1.8.0
WOODPECKER_VERSION=v3.17.0

export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache"
# go.sum is the pin: never resolve anything it does not already name. The
# checksum database is not reachable here, and go.sum needs it only for
# modules it lacks.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0

log() { printf 'runners: %s\n' "$*" >&2; }

need_go() {
	command -v go >/dev/null 2>&1 && return
	log "installing golang-go"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
}

# A binary per pin: a changed go.mod or go.sum names a new one.
drone_bin() {
	sum=$(cat "$ROOT/tools/runners/drone/go.mod" "$ROOT/tools/runners/drone/go.sum" \
		"$ROOT/tools/runners/drone/main.go" | sha256sum | cut -c1-12)
	echo "$BIN/drone-$DRONE_CLI_VERSION-$sum"
}

build_drone() {
	out=$(drone_bin)
	if [ ! -x "$out" ]; then
		need_go
		mkdir -p "$BIN"
		start=$(date +%s)
		(cd "$ROOT/tools/runners/drone" && go build -o "$out.tmp" .)
		mv "$out.tmp" "$out"
		log "drone exec (drone-cli $DRONE_CLI_VERSION) built in $(($(date +%s) - start)) s"
	fi
	echo "drone $out"
}

woodpecker_bin() { echo "$BIN/woodpecker-cli-$WOODPECKER_VERSION"; }

build_woodpecker() {
	out=$(woodpecker_bin)
	refused=$out.refused
	if [ -x "$out" ]; then
		echo "woodpecker $out"
		return
	fi
	# A refusal is asked again a day later.
	find "$refused" -mmin +1440 -delete 2>/dev/null || true
	if [ ! -f "$refused" ]; then
		need_go
		mkdir -p "$BIN"
		start=$(date +%s)
		# No go.sum of ours pins it yet, so the checksum database would be
		# asked, and it is not reachable: the build is off unless the
		# proxy serves the module at all.
		if ! msg=$(GOFLAGS=-mod=mod GOSUMDB=off GOBIN="$BIN/woodpecker.tmp" \
			go install "go.woodpecker-ci.org/woodpecker/v3/cmd/cli@$WOODPECKER_VERSION" 2>&1); then
			# e.g. "403 Forbidden": the proxy's own word, kept short
			why=$(printf '%s\n' "$msg" | grep -m1 -o -E '[0-9]{3} [A-Za-z ]+$' ||
				printf '%s\n' "$msg" | tail -n1)
			echo "the Go module proxy answered go.woodpecker-ci.org/woodpecker/v3@$WOODPECKER_VERSION with: $why" >"$refused"
		else
			mv "$BIN/woodpecker.tmp/cli" "$out"
			log "woodpecker-cli $WOODPECKER_VERSION built in $(($(date +%s) - start)) s"
		fi
		rm -rf "$BIN/woodpecker.tmp"
	fi
	if [ -x "$out" ]; then
		echo "woodpecker $out"
	else
		echo "woodpecker refused: $(cat "$refused")"
	fi
}

case ${1:-} in
build)
	build_drone
	build_woodpecker
	;;
path)
	case ${2:-} in
	drone) out=$(drone_bin) ;;
	woodpecker) out=$(woodpecker_bin) ;;
	*) log "path: drone or woodpecker"; exit 64 ;;
	esac
	if [ -x "$out" ]; then
		echo "$out"
	elif [ -f "$out.refused" ]; then
		log "${2}: $(cat "$out.refused")"
		exit 1
	else
		log "${2}: not built (tools/runners.sh build)"
		exit 1
	fi
	;;
*)
	sed -n '2,9p' "$0" >&2
	exit 64
	;;
esac
