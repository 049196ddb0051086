/* pool.h - spare realms made ahead of need, claimed by a bind.
 *
 * A spare is an empty realm "<parent>-spare-<k>" (k < pool_size) with a
 * lease and the owner mark, made while some run's hook runs (or by action
 * reap), off every bind's path. Slots bound the pool: a create of an
 * occupied slot is a 409, so concurrent refills never grow it past
 * pool_size. A bind claims a spare in two requests: a partial import of
 * the run's client and test user with ifResourceExists FAIL, whose
 * uniqueness (one client id per realm, a database constraint) lets
 * exactly one run win the spare; then a rename to "<parent>-<run id>"
 * carrying the run's lease. A claim that fails for any reason leaves the
 * caller to create the realm as without a pool. */
#ifndef DRONE_DEPS_POOL_H
#define DRONE_DEPS_POOL_H

#include <stdbool.h>

#include "binding.h"
#include "config.h"
#include "keycloak.h"

/* Claims a spare and makes it the run's realm, with the binding's client
 * and user. Returns true when the run's realm now exists because of it.
 * *unsure is set when a stop cut the rename (the realm may exist: see
 * realm_delete_if_ours). Failures are logged at debug, never fatal. */
bool pool_claim(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		bool *unsure);
/* Makes spares in the free slots of cfg->parent's pool, until
 * kc->deadline_ms. Sets *made. Returns KC_OK, or an error (kc->error). */
int pool_refill(struct keycloak *kc, const struct config *cfg, int *made);

#endif
