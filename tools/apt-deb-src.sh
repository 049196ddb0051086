#!/bin/sh
# Make `apt-get source` work: add deb-src entries mirroring the binary
# archives already configured, once.  Idempotent: does nothing when any
# deb-src entry exists.  Handles both the deb822 format
# (/etc/apt/sources.list.d/*.sources, Debian 12 containers) and the one-line
# format (/etc/apt/sources.list, debootstrap roots).
#
# Usage: tools/apt-deb-src.sh        (as root)
set -eu

has_deb_src() {
	grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources
}

if has_deb_src; then
	exit 0
fi

added=
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# Only Debian's own archive; third-party repositories stay binary-only.
	grep -qs 'debian' "$f" || continue
	out=/etc/apt/sources.list.d/$(basename "$f" .sources)-src.sources
	# Each stanza keeps URIs/Suites/Components/Signed-By; only Types changes.
	sed -e 's/^Types:.*$/Types: deb-src/' "$f" >"$out"
	added="$added $out"
done
if [ -f /etc/apt/sources.list ] && grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
	out=/etc/apt/sources.list.d/deb-src.list
	sed -n -e 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$out"
	added="$added $out"
fi

if [ -z "$added" ]; then
	echo "apt-deb-src: no Debian archive configured to mirror as deb-src" >&2
	exit 1
fi
echo "apt-deb-src: added$added" >&2
apt-get update -qq
