/* watchdog.h - cleanup that survives a SIGKILL of drone-deps.
 *
 * Drone stops a cancelled step with SIGKILL: no trap runs. When drone-deps
 * runs in a container with the Docker socket mounted, it starts a second
 * container from its own image (as Testcontainers' Ryuk does) running
 * "--action watch": it waits for drone-deps' container to stop, then tears
 * down what of the run is left (action down), and removes itself. A normal
 * teardown removes the watchdog at once.
 *
 * The watchdog's settings come through its environment, except secrets:
 * the admin password (and the CA file) are copied into the created,
 * not yet started container as files, so `docker inspect` shows none. */
#ifndef DRONE_DEPS_WATCHDOG_H
#define DRONE_DEPS_WATCHDOG_H

#include <stdbool.h>

#include "buf.h"
#include "deps.h"
#include "lease.h"

/* The variable that tells the watchdog which container to wait for. */
#define WATCHDOG_ENV_TARGET "DRONE_DEPS_WATCH_CONTAINER"
#define WATCHDOG_SECRET_DIR "/run/drone-deps"

struct watchdog {
	char id[80]; /* the watchdog container, "" when none runs */
};

/* Starts the watchdog if drone-deps runs in a container and can reach
 * the Docker socket; otherwise does nothing (leases remain). Failures
 * are logged, never fatal. */
void watchdog_start(struct watchdog *w, struct deps *d);
/* Removes the watchdog after a successful teardown. */
void watchdog_stop(struct watchdog *w, struct deps *d);

/* Watchdog containers carry the role label and a lease (owner, run, job,
 * expiry: the run's ttl from their creation). */
#define WATCHDOG_ROLE_LABEL "drone-deps.role"
/* A watchdog is started within a second of its create: one still not
 * started after this long never will be (a stop or a kill came between;
 * it holds the secret files copied into it). */
#define WATCHDOG_START_GRACE_S 60
/* Whether a watchdog container of ours is left over: not running, and
 * its lease has ended or it was created over WATCHDOG_START_GRACE_S ago
 * (never started). A running one is never: it waits for its run. */
bool watchdog_leftover(const char *state, long long created, const struct lease *l, long long now);
/* The query (after "/containers/json?") that lists every watchdog
 * container of ours, started or not. 0 or -1. */
int watchdog_list_query(struct buf *path);
/* Removes leftover watchdog containers (see watchdog_leftover), at most
 * max, by dk->deadline_ms; adds them to *deleted. */
void watchdog_reap(struct docker *dk, int max, int *deleted);
/* action watch: wait for the target container to stop, then tear down.
 * Returns an exit code. */
int watchdog_run(struct deps *d);

/* Appends one file or folder entry (ustar) to a tar stream; folders have
 * data NULL. Finish the stream with tar_finish. For the archive upload. */
int tar_add(struct buf *tar, const char *name, unsigned mode, const char *data, size_t len);
int tar_finish(struct buf *tar);

#endif
