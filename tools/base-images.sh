#!/bin/sh
# Make the two base images the Dockerfile needs, locally, from Debian
# packages: nothing is pulled from an image registry.
#
# Usage: tools/base-images.sh BUSYBOX_TAG BUILD_TAG [CACHE_DIR]
#   BUSYBOX_TAG  final stage: a BusyBox root from Debian's busybox-static
#   BUILD_TAG    build stage: a minimal Debian bookworm (debootstrap) with
#                what `make static` needs
#   CACHE_DIR    default build/base-images; keeps the .deb and the bookworm
#                root tarball, so a pruned image is re-imported in seconds
#
# An image that already exists under its tag, made from the same recipe
# (its drone-deps.base label), is left as it is.  Pass the tags
# to docker build as --build-arg BASE_IMAGE=... --build-arg BUILD_IMAGE=...
set -eu

BUSYBOX_TAG=${1:?usage: base-images.sh BUSYBOX_TAG BUILD_TAG [CACHE_DIR]}
BUILD_TAG=${2:?usage: base-images.sh BUSYBOX_TAG BUILD_TAG [CACHE_DIR]}
CACHE=${3:-build/base-images}
SUITE=bookworm
# The mirrors this machine's apt already uses, unless overridden.
MIRROR=${DEBIAN_MIRROR:-$(SUITE=$SUITE "$(dirname "$0")"/apt-mirror.sh archive)}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(SUITE=$SUITE "$(dirname "$0")"/apt-mirror.sh security)}
# make static in the build stage: compiler, musl, jsmn, CA bundle; dpkg-dev
# so the stage can also build the static prefix itself (apt-get source)
# when the build context does not bring it.
BUILD_PACKAGES=ca-certificates,gcc,make,musl-tools,libjsmn-dev,dpkg-dev,xz-utils

log() { printf 'base-images: %s\n' "$*" >&2; }
# shellcheck source=tools/debootstrap-root.sh
. "$(dirname "$0")/debootstrap-root.sh"

# have_image TAG RECIPE: TAG exists and was made from RECIPE (its label),
# so a changed package list makes a new image instead of reusing the old.
have_image() {
	[ "$(docker image inspect --format '{{index .Config.Labels "drone-deps.base"}}' "$1" 2>/dev/null)" = "$2" ]
}
BUSYBOX_RECIPE="busybox-static"
BUILD_RECIPE="debootstrap $SUITE minbase $BUILD_PACKAGES"

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
work=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_busybox() {
	deb=$(ls "$CACHE"/busybox-static_*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		log "apt-get download busybox-static"
		(cd "$CACHE" && apt-get download -qq busybox-static 2>&1 |
			grep -v 'unsandboxed as root' >&2 || true)
		deb=$(ls "$CACHE"/busybox-static_*.deb 2>/dev/null | head -n 1 || true)
		[ -n "$deb" ] || {
			log "could not download busybox-static"
			exit 1
		}
	fi
	root=$work/busybox
	mkdir -p "$root"
	dpkg-deb -x "$deb" "$work/pkg"
	install -D -m 0755 "$work/pkg/bin/busybox" "$root/bin/busybox"
	# One symlink per applet, where BusyBox itself says it lives.
	"$root/bin/busybox" --list-full | while read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		mkdir -p "$root/$(dirname "$applet")"
		ln -sf /bin/busybox "$root/$applet"
	done
	mkdir -p "$root/etc/ssl/certs" "$root/root" "$root/tmp" "$root/var/tmp"
	chmod 1777 "$root/tmp" "$root/var/tmp"
	chmod 0700 "$root/root"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
		>"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	cp "$work/pkg/usr/share/doc/busybox-static/copyright" "$root/bin/busybox.copyright" 2>/dev/null || true
	version=$(dpkg-deb -f "$deb" Version)
	log "importing $BUSYBOX_TAG (busybox-static $version)"
	tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
		docker import --change 'CMD ["sh"]' \
			--change "LABEL drone-deps.base=\"$BUSYBOX_RECIPE\"" \
			--message "BusyBox root from Debian busybox-static $version" - "$BUSYBOX_TAG" >/dev/null
}

make_build_root() {
	tarball=$CACHE/$SUITE-build-$(echo "$BUILD_RECIPE" | cksum | cut -d' ' -f1).tar
	if [ ! -f "$tarball" ]; then
		root=$work/$SUITE
		debootstrap_root "$root" "$BUILD_PACKAGES" "$CACHE/debootstrap.log"
		(cd "$root" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* \
			var/log/* tmp/* proc/* sys/* dev/*)
		tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
	fi
	log "importing $BUILD_TAG from $tarball"
	docker import --change "LABEL drone-deps.base=\"$BUILD_RECIPE\"" \
		--message "Debian $SUITE minbase + $BUILD_PACKAGES (debootstrap)" \
		"$tarball" "$BUILD_TAG" >/dev/null
}

if have_image "$BUSYBOX_TAG" "$BUSYBOX_RECIPE"; then
	log "$BUSYBOX_TAG exists"
else
	make_busybox
fi
if have_image "$BUILD_TAG" "$BUILD_RECIPE"; then
	log "$BUILD_TAG exists"
else
	make_build_root
fi
