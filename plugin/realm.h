/* realm.h - the per-run realm: its isolation unit on a Keycloak.
 *
 * realm_create() makes the realm with its confidential client, its test
 * user and its lease in ONE request (Keycloak imports inline clients,
 * users and attributes on POST /admin/realms). Collisions are resolved by
 * the lease: a realm of this same job or an expired one of ours is
 * replaced; anything else is left alone and reported. */
#ifndef DRONE_DEPS_REALM_H
#define DRONE_DEPS_REALM_H

#include "binding.h"
#include "buf.h"
#include "config.h"
#include "keycloak.h"
#include "lease.h"

/* Every realm drone-deps makes, fresh or spare, hashes passwords once.
 * Its only password is the test user's, 24 random characters in a realm
 * that lives for one run: its strength is its entropy, not the hash's
 * cost. Keycloak's default (Argon2) cost about 50-120 ms of server CPU on
 * each import of the user and on each login of the hook (measured on
 * 26.4.7), on the bind's critical path. */
#define REALM_PASSWORD_POLICY "hashAlgorithm(pbkdf2-sha256) and hashIterations(1)"

/* Reads the marks of the realm `realm` (one GET). A realm the
 * credentials may only name (26.4.7 answers the CI client so on a realm it
 * did not make) reads as unowned. */
int realm_lease(struct keycloak *kc, const char *realm, struct lease *l);
/* The realm representation POSTed to /admin/realms. */
int realm_body(struct buf *out, const struct config *cfg, const struct binding *b,
	       long long expires);
/* The partial import that puts the run's client and test user into an
 * existing realm (a claimed spare), failing if either is there. */
int realm_import_body(struct buf *out, const struct config *cfg, const struct binding *b);
/* Applies keycloak_realm_json to the run's realm (cfg->realm_json set). */
int realm_apply_partial(struct keycloak *kc, const struct config *cfg);
/* Creates the run's realm (and applies keycloak_realm_json). Returns
 * KC_OK, or a kc_result with kc->error set. *created tells whether the
 * realm exists now because of this call, even when a later step failed. */
int realm_create(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		 bool *created);
/* Pushes the lease expiry to now + ttl. */
int realm_renew(struct keycloak *kc, const struct config *cfg);
/* Deletes the run's realm; a realm already gone counts as deleted. */
int realm_delete(struct keycloak *kc, const struct config *cfg);
/* Teardown after a create whose answer never came (a stop cut it): the
 * realm may exist. Deletes it only if its marks say it is this run's and
 * this job's; KC_OK when there is none. */
int realm_delete_if_ours(struct keycloak *kc, const struct config *cfg);
/* action down and the watchdog: deletes the run's realm only if its
 * lease is this run's, of this parent, and holds key_hash (the hash of
 * the run key presented); KC_CONFLICT, nothing deleted, otherwise. */
int realm_down(struct keycloak *kc, const struct config *cfg, const char *key_hash);
/* Deletes expired realms with our owner mark: at most max_deleted of
 * them, and only until kc->deadline_ms (however many live ones are read
 * on the way). Sets *deleted. Returns KC_OK or an error. */
int realm_reap(struct keycloak *kc, int max_deleted, int *deleted);

#endif
