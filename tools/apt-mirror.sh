#!/bin/sh
# Prints the Debian archive URI this machine's apt already uses, so that
# debootstrap'ed roots come from the same mirror and the tree names none.
#
# Usage: tools/apt-mirror.sh archive    the main archive (Suites: SUITE)
#        tools/apt-mirror.sh security   the security archive (SUITE-security)
# Environment: SUITE (default bookworm). Reads the deb822 files
# (/etc/apt/sources.list.d/*.sources) and the one-line format
# (/etc/apt/sources.list, *.list); binary entries only. Exits 1, saying so,
# when none matches: set DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR then.
set -eu

kind=${1:?usage: apt-mirror.sh archive|security}
suite=${SUITE:-bookworm}
case $kind in
archive) want=$suite ;;
security) want=$suite-security ;;
*)
	echo "apt-mirror: unknown kind '$kind' (archive or security)" >&2
	exit 2
	;;
esac

# deb822: a stanza is a run of lines up to a blank one; print the first
# URI of a stanza whose Types has deb and whose Suites has the suite.
deb822() {
	awk -v want="$want" '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uri != "") {
				print uri
				found = 1
				exit
			}
			types = ""; suites = ""; uri = ""
		}
		/^[[:space:]]*$/ { flush(); next }
		/^[[:space:]]*#/ { next }
		/^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0; next }
		/^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0; next }
		/^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, u, /[[:space:]]+/); uri = u[1]; next }
		END { if (!found) flush() }
	' "$@" 2>/dev/null
}

# One-line format: "deb [options] URI SUITE COMPONENTS...".
one_line() {
	awk -v want="$want" '
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == want) { print $i; exit }
		}
	' "$@" 2>/dev/null
}

uri=
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	uri=$(deb822 "$f")
	[ -z "$uri" ] || break
done
if [ -z "$uri" ]; then
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(one_line "$f")
		[ -z "$uri" ] || break
	done
fi
if [ -z "$uri" ]; then
	echo "apt-mirror: no apt source for suite $want: set DEBIAN_MIRROR or DEBIAN_SECURITY_MIRROR" >&2
	exit 1
fi
echo "${uri%/}"
