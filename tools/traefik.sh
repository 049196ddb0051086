#!/bin/sh
# Traefik v3 for the host suite (tests/host), built from the Go module proxy,
# pinned, and put in a local image: no image registry.
#
# Usage:
#   tools/traefik.sh build [TAG]  build the binary once (cached) and the image
#                                 TAG (default drone-deps-traefik:<version>-<pin>)
#                                 on the local BusyBox base; prints
#                                 "traefik IMAGE" or "traefik refused: WHY"
#   tools/traefik.sh image        the tag `build` makes (nothing is built)
#
# The version is pinned in the wrapper module tools/traefik (go.mod, hashes
# in go.sum, Traefik's own replace and exclude directives repeated). It is
# the 3.6 line: every 3.7 release on the proxy imports lego v5's DNS
# providers, some of whose SDKs the module proxy answers 403 for, and
# replaces a module of its own repository by a local directory that no
# proxy can serve, so 3.7 does not build from a module proxy alone.
#
# The go command's module and build caches and the binary live under
# $DRONE_DEPS_CACHE/traefik (default /var/cache/drone-deps), outside the
# clone: the first build downloads and compiles (many minutes on 2 cores,
# run niced), later ones only make the image (seconds) or nothing.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOD=$ROOT/tools/traefik
CACHE=${DRONE_DEPS_CACHE:-/var/cache/drone-deps}/traefik
BIN=$CACHE/bin
BASE=${BUSYBOX_BASE:-drone-deps-base/busybox:bookworm}
VERSION=$(sed -n 's/^require github.com\/traefik\/traefik\/v3 \(v[^ ]*\)$/\1/p' "$MOD/go.mod")

export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache"
# go.sum is the pin: never resolve anything it does not already name.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf 'traefik: %s\n' "$*" >&2; }

need_go() {
	command -v go >/dev/null 2>&1 && return
	log "installing golang-go"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
}

# A binary and an image per pin: a changed go.mod or go.sum names new ones.
pin() { cat "$MOD/go.mod" "$MOD/go.sum" | sha256sum | cut -c1-12; }
traefik_bin() { echo "$BIN/traefik-$VERSION-$(pin)"; }
traefik_image() { echo "drone-deps-traefik:${VERSION#v}-$(pin)"; }

build_bin() {
	out=$(traefik_bin)
	[ -x "$out" ] && return
	need_go
	mkdir -p "$BIN"
	start=$(date +%s)
	# The version Traefik reports (its /api/version and log) is the pin's.
	if ! msg=$(cd "$MOD" && nice -n 10 go build -o "$out.tmp" \
		-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$VERSION" \
		github.com/traefik/traefik/v3/cmd/traefik 2>&1); then
		rm -f "$out.tmp"
		echo "traefik refused: $(printf '%s\n' "$msg" | tail -n 1)"
		exit 1
	fi
	mv "$out.tmp" "$out"
	log "traefik $VERSION built in $(($(date +%s) - start)) s"
}

build_image() {
	tag=$1
	bin=$(traefik_bin)
	[ "$(docker image inspect --format '{{index .Config.Labels "drone-deps.traefik"}}' \
		"$tag" 2>/dev/null)" = "$(basename "$bin")" ] && return
	ctx=$(mktemp -d)
	trap 'rm -rf "$ctx"' EXIT
	cp "$bin" "$ctx/traefik"
	# Traefik is static (no cgo): the BusyBox base is only its shell.
	cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY traefik /usr/local/bin/traefik
LABEL drone-deps.traefik="$(basename "$bin")"
EXPOSE 80 443
ENTRYPOINT ["/usr/local/bin/traefik"]
DOCKERFILE
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		exit 1
	fi
	rm -rf "$ctx"
	trap - EXIT
	log "image $tag"
}

case ${1:-} in
build)
	tag=${2:-$(traefik_image)}
	build_bin
	build_image "$tag"
	echo "traefik $tag"
	;;
image)
	traefik_image
	;;
*)
	sed -n '2,10p' "$0" >&2
	exit 64
	;;
esac
