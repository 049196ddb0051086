#!/bin/sh
# Sourced by tools/base-images.sh and tools/keycloak-image.sh: the one way
# both make a minimal Debian root from the archive (no image registry).
#
# debootstrap_root ROOT PACKAGES LOG
#   installs debootstrap when missing, debootstraps $SUITE (minbase plus the
#   comma-separated PACKAGES) from $MIRROR into ROOT, logging to LOG (kept
#   there on failure, its tail shown), and points the root's apt at the
#   archive, its updates and $SECURITY_MIRROR. Uses the caller's log().

debootstrap_root() {
	command -v debootstrap >/dev/null 2>&1 || {
		log "installing debootstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	}
	log "debootstrap $SUITE (minbase + $2) from $MIRROR"
	debootstrap --variant=minbase --include="$2" "$SUITE" "$1" "$MIRROR" >"$3" 2>&1 || {
		log "debootstrap failed; last lines of $3:"
		tail -n 20 "$3" >&2
		exit 1
	}
	cat >"$1/etc/apt/sources.list" <<-SOURCES
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb $SECURITY_MIRROR $SUITE-security main
	SOURCES
}
