#!/bin/sh
# What the tests can reach, for tests/runners/run.sh's threat-model checks:
# run as (or before) the recipe's tests, it copies every ancestor's
# /proc/<pid>/environ and cmdline into DIR (the runner test, which knows the
# secret, looks for it there), copies SECRET_FILE if it can read it, and
# says whether the Docker socket answers (drone-deps' own status, which
# lists services through it). Nothing is printed of any value.
#
# Usage: tests/probe.sh DIR [SECRET_FILE]
set -u
out=$1
mkdir -p "$out"
echo "probe: uid $(id -u), gid $(id -g), groups $(id -G)"
pid=$$
while [ "$pid" -gt 0 ]; do
	comm=$(cat "/proc/$pid/comm" 2>/dev/null)
	for what in environ cmdline; do
		if cat "/proc/$pid/$what" >"$out/$pid.$comm.$what" 2>/dev/null; then
			echo "probe: $pid $comm $what read"
		else
			rm -f "$out/$pid.$comm.$what"
			echo "probe: $pid $comm $what refused"
		fi
	done
	# after "(comm) ": state, then the parent's pid
	pid=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f2)
done
if [ -n "${2:-}" ]; then
	if cat "$2" >"$out/secret-file" 2>/dev/null; then
		echo "probe: secret file read"
	else
		rm -f "$out/secret-file"
		echo "probe: secret file refused"
	fi
fi
if [ -S /var/run/docker.sock ]; then
	# status exits 0 (all live) or 1 (something expired) once it has
	# listed the services; 64 when it may not use the socket
	env -i "$(command -v drone-deps)" --action status --deps keycloak --mode cold \
		>/dev/null 2>&1
	rc=$?
	case $rc in
	0 | 1) echo "probe: docker socket answered" ;;
	*) echo "probe: docker socket refused (status exit $rc)" ;;
	esac
fi
