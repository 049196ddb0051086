#!/bin/sh
# Undo what tools/docker-up.sh started, and only that: leave the swarm if
# docker-up initialised it, stop dockerd if docker-up started it (by the
# recorded pid).  A daemon or swarm that was already there is left alone.
#
# Usage: tools/docker-down.sh [STATE_DIR]   (default build/docker)
set -eu

STATE=${1:-build/docker}

log() { printf 'docker-down: %s\n' "$*" >&2; }

if [ -f "$STATE/swarm-init" ]; then
	log "leaving the swarm docker-up initialised"
	docker swarm leave --force >/dev/null || log "could not leave the swarm"
	rm -f "$STATE/swarm-init"
fi

if [ -f "$STATE/dockerd.pid" ]; then
	pid=$(cat "$STATE/dockerd.pid")
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
		log "stopping dockerd $pid"
		kill -TERM "$pid"
		i=0
		while [ -d "/proc/$pid" ] && [ "$i" -lt 30 ]; do
			i=$((i + 1))
			sleep 1
		done
		if [ -d "/proc/$pid" ]; then
			log "dockerd $pid still running after 30 s"
			exit 1
		fi
	fi
	rm -f "$STATE/dockerd.pid"
fi
