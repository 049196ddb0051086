/* pool.h - spare realms made ahead of need, claimed by a bind.
 *
 * A spare is an empty realm "<parent>-spare-<k>" (k < pool_size) with a
 * lease, the owner mark and the spare mark naming its parent, made while
 * some run's hook runs (or by action reap), off every bind's path. Slots
 * bound the pool: a create of an occupied slot is a 409, so concurrent
 * refills never grow it past pool_size. A bind claims a spare in three
 * requests: a read of its marks (a name proves nothing: a realm anyone
 * made under a spare's name is never claimed, renamed or deleted); a
 * partial import of the run's client and test user with ifResourceExists
 * FAIL, whose uniqueness (one client id per realm) lets exactly one run
 * win the spare; then a rename to "<parent>-<run id>" carrying the run's
 * lease. A claim that fails leaves the caller to create the realm as
 * without a pool.
 *
 * With pool_scope instance the spares are the warm instance's, not a
 * parent's: "drone-deps-pool-spare-<k>", k < pool_size for the whole
 * instance, their spare mark POOL_INSTANCE_MARK (never a parent's name).
 * Any parent claims one. The run's client id differs between parents, so
 * it cannot be the lock there: the import carries also the fixed client
 * POOL_CLAIM_CLIENT, which one realm holds once. */
#ifndef DRONE_DEPS_POOL_H
#define DRONE_DEPS_POOL_H

#include <stdbool.h>

#include "binding.h"
#include "config.h"
#include "keycloak.h"
#include "lease.h"
#include "naming.h"

/* The spare mark of an instance spare: '@' is in no parent's name. */
#define POOL_INSTANCE_MARK "@instance"
/* The lock of a shared spare's claim (see realm_import_body). */
#define POOL_CLAIM_CLIENT "drone-deps-claim"

/* What a claim leaves for teardown. */
struct pool_claim {
	/* The spare this run imported its client into (or may have: a stop
	 * cut the import) and did not rename: no other run can claim it now.
	 * Teardown deletes it once it has read it is still a spare of this
	 * parent. "" when none. */
	char spare[SPARE_NAME_MAX + 1];
	/* A stop cut the rename: the run's realm may exist (see
	 * realm_delete_if_ours). */
	bool unsure;
};

/* Claims a spare and makes it the run's realm, with the binding's client
 * and user. Returns true when the run's realm now exists because of it;
 * else *pc says what teardown must look at. Failures are logged, never
 * fatal. */
bool pool_claim(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		struct pool_claim *pc);
/* Teardown of a claim that did not end in the run's realm: deletes
 * pc->spare if it still carries the marks of a spare of the run's pool. */
int pool_release(struct keycloak *kc, const struct config *cfg, struct pool_claim *pc);
/* Whether marks l are those of a spare named `name`: the owner mark, the
 * spare's run and job marks, and a spare mark `owner` (a parent, or
 * POOL_INSTANCE_MARK) that the name's pool matches; with owner NULL, any
 * such mark, or none at all from a drone-deps that did not write one. */
bool pool_is_spare(const struct lease *l, const char *name, const char *owner);
/* Makes spares in the free slots of the run's pool, until
 * kc->deadline_ms. Sets *made. Returns KC_OK, or an error (kc->error). */
int pool_refill(struct keycloak *kc, const struct config *cfg, int *made);

#endif
