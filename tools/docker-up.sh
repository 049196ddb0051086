#!/bin/sh
# Make sure a Docker engine and a swarm are available, starting only what is
# missing, and remember what was started so tools/docker-down.sh stops
# exactly that and nothing else.
#
# Usage: tools/docker-up.sh [STATE_DIR]     (default build/docker; as root)
#
# - docker.io is installed when `docker` or `dockerd` is missing.
# - A daemon that already answers (on /var/run/docker.sock, or DOCKER_HOST)
#   is reused as is.  Otherwise dockerd is started in the background, in its
#   own session, and its pid written to STATE_DIR/dockerd.pid.
# - The swarm is initialised (advertised on 127.0.0.1) only when this node
#   is not in one; STATE_DIR/swarm-init then records that we did it.
set -eu

STATE=${1:-build/docker}
WAIT=${DOCKER_UP_WAIT:-60}
mkdir -p "$STATE"

log() { printf 'docker-up: %s\n' "$*" >&2; }

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# ours PIDFILE: true when PIDFILE names a live dockerd.
ours() {
	[ -f "$1" ] || return 1
	pid=$(cat "$1")
	[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]
}

if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
	log "installing docker.io"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		docker.io >/dev/null
fi

if answers; then
	if ours "$STATE/dockerd.pid"; then
		log "daemon started earlier by docker-up (pid $(cat "$STATE/dockerd.pid")) answers"
	else
		rm -f "$STATE/dockerd.pid"
		log "reusing the running daemon ($(docker version --format '{{.Server.Version}}'))"
	fi
else
	if ours "$STATE/dockerd.pid"; then
		log "dockerd $(cat "$STATE/dockerd.pid") (ours) does not answer yet"
	else
		log "starting dockerd (log: $STATE/dockerd.log)"
		# setsid: the daemon outlives the make or CI step that started it;
		# in a non-interactive shell setsid execs in place, so $! is dockerd.
		setsid dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
		echo $! >"$STATE/dockerd.pid"
	fi
	i=0
	until answers; do
		i=$((i + 1))
		# kill -0, not ours: just after the start the pid may still be
		# setsid's, before it execs dockerd
		if [ "$i" -gt "$WAIT" ] || ! kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then
			log "dockerd did not answer within ${WAIT}s; last log lines:"
			tail -n 20 "$STATE/dockerd.log" >&2 || true
			exit 1
		fi
		sleep 1
	done
	log "dockerd $(cat "$STATE/dockerd.pid") answers"
fi

swarm=$(docker info --format '{{.Swarm.LocalNodeState}}')
case $swarm in
active)
	if [ -f "$STATE/swarm-init" ]; then
		log "swarm initialised earlier by docker-up is active"
	else
		log "reusing the active swarm"
	fi
	;;
inactive)
	log "initialising a single-node swarm on 127.0.0.1"
	docker swarm init --advertise-addr 127.0.0.1 >/dev/null
	: >"$STATE/swarm-init"
	;;
*)
	log "swarm is '$swarm'; cannot use it"
	exit 1
	;;
esac
