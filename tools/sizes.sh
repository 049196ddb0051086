#!/bin/sh
# Print the stripped static binary's size and the plugin image's size, and
# whether they keep the budget (binary <= 1.5 MiB, image <= 4 MiB).
#
# Usage: tools/sizes.sh [BINARY [IMAGE]]
#        (defaults build/static/drone-deps and drone-deps:test)
# Output, one line each (bytes, then MiB):
#   binary build/static/drone-deps 638424 B 0.61 MiB (budget 1.50 MiB) ok
#   image drone-deps:test 2841234 B 2.71 MiB (budget 4.00 MiB) ok
# A missing binary or image prints "absent".  Exit 1 when one is over budget.
set -eu

BIN=${1:-build/static/drone-deps}
IMAGE=${2:-drone-deps:test}
BIN_BUDGET=1572864   # 1.5 MiB
IMAGE_BUDGET=4194304 # 4 MiB
over=0

report() { # what name bytes budget
	awk -v what="$1" -v name="$2" -v b="$3" -v max="$4" 'BEGIN {
		printf "%s %s %d B %.2f MiB (budget %.2f MiB) %s\n", what, name, b,
			b / 1048576, max / 1048576, (b <= max ? "ok" : "OVER")
	}'
	[ "$3" -le "$4" ] || over=1
}

if [ -f "$BIN" ]; then
	if file "$BIN" | grep -q 'not stripped'; then
		# Report what ships: the stripped size.
		tmp=$(mktemp)
		strip -o "$tmp" "$BIN"
		bytes=$(wc -c <"$tmp")
		rm -f "$tmp"
	else
		bytes=$(wc -c <"$BIN")
	fi
	report binary "$BIN" "$bytes" "$BIN_BUDGET"
else
	echo "binary $BIN absent"
fi

if command -v docker >/dev/null 2>&1 &&
	bytes=$(docker image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null); then
	report image "$IMAGE" "$bytes" "$IMAGE_BUDGET"
else
	echo "image $IMAGE absent"
fi

exit "$over"
