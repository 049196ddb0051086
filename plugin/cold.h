/* cold.h - a throwaway Keycloak as a Docker Swarm service.
 *
 * cold_create() makes a swarm secret with a generated admin password, a
 * service "<dep[:4]>-<runid>" that reads it (the Co-op Cloud way: the
 * password never appears in the service's spec), with Traefik labels for
 * the cold domain and the lease labels; cold_wait_ready() then waits,
 * bounded by the bind deadline, until a task runs and
 * <cold_url>/realms/master answers 200.
 * cold_remove() removes both. Every call goes through a struct docker the
 * caller owns. */
#ifndef DRONE_DEPS_COLD_H
#define DRONE_DEPS_COLD_H

#include <stdbool.h>

#include "binding.h"
#include "config.h"
#include "docker.h"

#define COLD_SECRET_FILE "admin_password"

struct cold {
	bool secret_created;
	bool service_created;
	char secret_id[96];
	char secret_name[96];
	char password[PASSWORD_LEN + 1]; /* the cold instance's admin password */
};

/* Creates the secret and the service. Returns 0, or an exit code (69);
 * c says what exists, for cold_remove, whatever the outcome. */
int cold_create(struct cold *c, struct docker *d, const struct config *cfg, long long deadline_ms);
/* Returns 0 when the instance is ready, or an exit code (69, 70). A stop
 * signal ends the wait early (returns 0 with nothing ready: the caller
 * checks). */
int cold_wait_ready(struct docker *d, const struct config *cfg, long long deadline_ms);
/* Removes the service and its secret; what is already gone counts as
 * removed. Returns 0 or -1 (d->error). */
int cold_remove(struct cold *c, struct docker *d, const struct config *cfg);
/* Pushes the expiry label of the service and of its secret to now + ttl
 * (at creation both get now + timeout + ttl: no renewal runs before the
 * hook). 0 or -1. */
int cold_renew(struct cold *c, struct docker *d, const struct config *cfg);
/* Removes the run's service (and its secret) only if its labels are this
 * run's, of this parent, and hold key_hash, the hash of the run key
 * presented (action down, the watchdog). 0, 1 when there was none,
 * COLD_REFUSED (d->error says why; nothing removed), or -1. */
#define COLD_REFUSED 2
int cold_down(struct docker *d, const struct config *cfg, const char *key_hash);
/* Removes expired services and secrets with our owner label: at most max
 * deletions in all, until d->deadline_ms. */
int cold_reap(struct docker *d, int max, int *deleted);
void cold_clear(struct cold *c);
/* Appends the "Command" member of a Keycloak service that takes its admin
 * password from the secret file COLD_SECRET_FILE: Keycloak reads it only
 * from the environment, so a shell puts it there at start, and the
 * service's spec never holds it. Shared by the warm deploy. 0 or -1. */
int cold_keycloak_command(struct buf *b);

#endif
