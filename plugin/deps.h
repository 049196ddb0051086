/* deps.h - bind, renew, tear down and reap the run's dependencies.
 *
 * One struct deps holds what the run has made, so teardown knows exactly
 * what to undo. deps_bind() decides warm or cold (see README.md, setting mode),
 * creates the realm and fills the binding; deps_teardown() undoes whatever
 * was created, even when the bind failed half-way. Functions that end the
 * run return an exit code (0, or 64/69/70 of README.md, "Exit codes"). */
#ifndef DRONE_DEPS_DEPS_H
#define DRONE_DEPS_DEPS_H

#include <stdbool.h>

#include "binding.h"
#include "cold.h"
#include "config.h"
#include "docker.h"
#include "keycloak.h"
#include "pool.h"

struct deps {
	const struct config *cfg; /* borrowed */
	struct keycloak kc;
	bool kc_ready;	    /* kc initialised */
	bool realm_created; /* the run's realm exists because of us */
	bool realm_unsure;  /* a stop cut the create: it may exist */
	struct docker docker;
	bool docker_ready; /* docker initialised and version agreed */
	struct cold cold;  /* what a cold deploy created */
	struct binding binding;
	char *admin_password; /* owned copy; secret */
	char *client_secret;  /* owned copy; secret: the CI client's (warm only) */
	char *run_key;	      /* owned copy; secret: down's key, handed to the watchdog */
	/* Called once a cold service exists, before its readiness wait. */
	void (*on_cold_created)(struct deps *d, void *ctx);
	void *on_cold_created_ctx;
	/* What a claim of a spare left for teardown to settle. */
	struct pool_claim claim;
	int housekeeper; /* pid of the refill-and-reap child, or 0 */
};

void deps_init(struct deps *d, const struct config *cfg);
/* Returns 0 when bound, else an exit code. */
int deps_bind(struct deps *d);
/* Renews the leases (a hook tick). */
void deps_renew(void *d);
/* Deletes what the run created. Returns 0, or -1 after the retries. */
int deps_teardown(struct deps *d);
/* While the hook runs: starts a child process that makes the spares the
 * parent's pool lacks (warm, pool_size > 0), then deletes a few expired
 * resources of other runs; returns at once. Failures are only logged.
 * (void *: a hook timer.) */
void deps_reap_some(void *d);
/* Kills and reaps that child if it still runs (teardown calls it). */
void deps_housekeeping_end(struct deps *d);
/* Uses password as the admin password (a copy is kept). 0 or -1. */
int deps_use_admin_password(struct deps *d, const char *password);
/* Uses secret as the CI client's secret on the warm instance (a copy is
 * kept): tokens by client_credentials of keycloak_client_id. 0 or -1. */
int deps_use_client_secret(struct deps *d, const char *secret);
/* Whether the Docker socket can be used. */
bool deps_docker_available(const struct deps *d);
/* Makes d->docker usable (API version agreed) by deadline_ms. Returns 0
 * or an exit code. */
int deps_docker_ready(struct deps *d, long long deadline_ms);
/* A client for the warm instance at cfg->keycloak_url with the admin
 * password (the setting, or read from the warm container); no request to
 * Keycloak yet. Returns 0, 1 when there is no warm container to read the
 * password from, or an exit code. */
int deps_warm_client(struct deps *d);
/* Uses key as the run key that down presents (the watchdog's, handed
 * over; a copy is kept). 0 or -1. */
int deps_use_run_key(struct deps *d, const char *key);
/* action reap and action down: exit codes. down deletes only resources
 * whose lease is this run's, of this parent, and holds the hash of the
 * run key (deps_use_run_key, else DEPS_RUN_KEY in env_file): without a
 * key 64 before any request, on a lease that does not match 77
 * (EX_NOPERM), nothing deleted either way. */
int deps_reap_all(struct deps *d);
int deps_down(struct deps *d);
/* Ends the admin session on the warm instance, after teardown (one
 * request, off the hook's path; a failure is only logged). */
void deps_logout(struct deps *d);
void deps_free(struct deps *d);

#endif
