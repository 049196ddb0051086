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

#include "deps.h"

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
/* action watch: wait for the target container to stop, then tear down.
 * Returns an exit code. */
int watchdog_run(struct deps *d);

/* Appends one file or folder entry (ustar) to a tar stream; folders have
 * data NULL. Finish the stream with tar_finish. For the archive upload. */
int tar_add(struct buf *tar, const char *name, unsigned mode, const char *data, size_t len);
int tar_finish(struct buf *tar);

#endif
