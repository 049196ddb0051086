/* pool.c - the realm pool; see pool.h.
 *
 * Measured on Keycloak 26.4.7: a rename (PUT /admin/realms/{spare} with a
 * new "realm") takes about 0.1 s, keeps the default role's old name
 * ("default-roles-<spare>", a name only), renames the realm's client in
 * master to "<new>-realm", and the realm's logins work after it; a
 * partial import into a missing realm is a 404, into a realm that has the
 * client already a 409 ("Client id ... already exists"). */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "lease.h"
#include "log.h"
#include "random.h"
#include "realm.h"
#include "signals.h"

/* The marks of a spare: owned (so the reap covers it), of no run; with
 * LEASE_KEY_SPARE naming its parent. */
#define POOL_RUN "spare"
#define POOL_JOB "pool"
/* A spare outlives many runs' ttl, and is reaped once it has waited this
 * many of them unclaimed (an hour by default). */
#define POOL_LEASE_TTLS 4

/* The first slot a run tries: random, so concurrent claims spread over
 * the spares instead of all meeting at slot 0. */
static int pool_first_slot(int size)
{
	char hex[3];
	unsigned long v;

	if (random_hex(hex, 2) < 0)
		return 0;
	v = strtoul(hex, NULL, 16);
	return (int)(v % (unsigned long)size);
}

/* The spare mark of the run's pool, and the first label(s) of its names. */
static const char *pool_owner(const struct config *cfg)
{
	return cfg->pool_scope == POOL_SCOPE_INSTANCE ? POOL_INSTANCE_MARK : cfg->parent;
}

static const char *pool_prefix(const struct config *cfg)
{
	return cfg->pool_scope == POOL_SCOPE_INSTANCE ? POOL_INSTANCE : cfg->parent;
}

bool pool_is_spare(const struct lease *l, const char *name, const char *owner)
{
	const char *prefix;
	size_t n, digits;

	if (!l->owned || strcmp(l->run, POOL_RUN) != 0 || strcmp(l->job, POOL_JOB) != 0)
		return false;
	if (!owner && !l->spare[0])
		return true; /* made before the spare mark: reaped, never claimed */
	if (owner && strcmp(l->spare, owner) != 0)
		return false;
	/* no parent is named so (config.c): the mark of no drone-deps */
	if (!strcmp(l->spare, POOL_INSTANCE))
		return false;
	prefix = strcmp(l->spare, POOL_INSTANCE_MARK) == 0 ? POOL_INSTANCE : l->spare;
	n = strlen(prefix);
	if (!n || strncmp(name, prefix, n) != 0 || strncmp(name + n, "-spare-", 7) != 0)
		return false;
	name += n + 7;
	digits = strspn(name, "0123456789");
	return digits >= 1 && digits <= 3 && name[digits] == '\0';
}

/* Reads the marks of the slot's realm: KC_OK only for a live spare of
 * the run's pool. A realm of the name that is not one (unmarked, another
 * parent's, a run's, or one these credentials may only name) is
 * KC_CONFLICT and is never touched. */
static int pool_verify(struct keycloak *kc, const struct config *cfg, const char *spare)
{
	struct lease l;
	int rc = realm_lease(kc, spare, &l);

	if (rc != KC_OK)
		return rc;
	if (!pool_is_spare(&l, spare, pool_owner(cfg)) ||
	    lease_expired(&l, (long long)time(NULL))) {
		snprintf(kc->error, sizeof(kc->error),
			 "%s is not a live spare of %s made by drone-deps: leaving it alone", spare,
			 pool_owner(cfg));
		return KC_CONFLICT;
	}
	return KC_OK;
}

/* Renames the locked spare to the run's realm with the run's lease: one
 * PUT (a realm PUT replaces the attributes map, so all marks go). */
static int pool_rename(struct keycloak *kc, const struct config *cfg, const char *spare,
		       long long expires)
{
	struct buf body = BUF_INIT;
	int rc = KC_ERROR;

	if (buf_puts(&body, "{\"realm\":") == 0 && buf_json_string(&body, cfg->realm) == 0 &&
	    buf_puts(&body, ",\"attributes\":{") == 0 &&
	    lease_json_members(&body, cfg->run_id, cfg->job, expires) == 0 &&
	    lease_json_guard(&body, cfg->parent, cfg->run_key_hash) == 0 &&
	    buf_puts(&body, "}}") == 0)
		rc = keycloak_realm_update(kc, spare, body.data, body.len);
	else
		snprintf(kc->error, sizeof(kc->error), "rename spare: out of memory");
	buf_free(&body);
	return rc;
}

/* The rename failed without a stop. The server may have done it all the
 * same (its answer lost): then the run's realm carries exactly the marks
 * just sent, which no other realm can, and it is the run's. */
static bool pool_renamed_anyway(struct keycloak *kc, const struct config *cfg, long long expires)
{
	struct lease l;

	/* the CI client's token from before the rename may only name it */
	keycloak_token_predates(kc);
	return realm_lease(kc, cfg->realm, &l) == KC_OK && l.owned &&
	       strcmp(l.run, cfg->run_id) == 0 && strcmp(l.job, cfg->job) == 0 &&
	       l.expires == expires;
}

int pool_release(struct keycloak *kc, const struct config *cfg, struct pool_claim *pc)
{
	struct lease l;
	int rc;

	if (!pc->spare[0])
		return KC_OK;
	/* Read again: the spare is deleted only as what it was when claimed. */
	rc = realm_lease(kc, pc->spare, &l);
	if (rc == KC_OK && !pool_is_spare(&l, pc->spare, pool_owner(cfg))) {
		log_info("pool: %s is not a spare of %s now: leaving it alone", pc->spare,
			 pool_owner(cfg));
	} else if (rc == KC_OK) {
		rc = keycloak_realm_delete(kc, pc->spare);
		if (rc == KC_OK)
			log_info("pool: deleted spare %s, which holds this run's client",
				 pc->spare);
	}
	if (rc == KC_NOT_FOUND)
		rc = KC_OK;
	if (rc == KC_OK)
		pc->spare[0] = '\0';
	return rc;
}

bool pool_claim(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		struct pool_claim *pc)
{
	struct buf import = BUF_INIT;
	char spare[SPARE_NAME_MAX + 1];
	bool claimed = false;
	long long expires;
	int i, k0, rc;

	memset(pc, 0, sizeof(*pc));
	if (cfg->pool_size <= 0 || !cfg->parent[0])
		return false;
	if (realm_import_body(&import, cfg, b) < 0)
		goto out_free;
	k0 = pool_first_slot(cfg->pool_size);
	for (i = 0; i < cfg->pool_size && !signals_interrupted(); i++) {
		if (naming_spare(pool_prefix(cfg), (k0 + i) % cfg->pool_size, spare,
				 sizeof(spare)) < 0)
			break;
		/* 404: an empty slot; 409: not a spare of ours (see
		 * pool_verify); 403: not made by these credentials. */
		rc = pool_verify(kc, cfg, spare);
		if (rc != KC_OK) {
			log_debug("pool: %s not claimed: %s", spare, kc->error);
			continue;
		}
		/* The lock: of all runs importing the same client id into
		 * this spare (the run's, or for an instance spare the fixed
		 * POOL_CLAIM_CLIENT), the database lets one succeed (409 for
		 * the others). From here on the spare may hold this run's client:
		 * teardown looks at it unless the rename takes it. */
		snprintf(pc->spare, sizeof(pc->spare), "%s", spare);
		rc = keycloak_partial_import(kc, spare, import.data, import.len);
		if (rc != KC_OK) {
			if (signals_stop_signal())
				break;
			pc->spare[0] = '\0';
			log_debug("pool: %s not claimed: %s", spare, kc->error);
			continue;
		}
		if (signals_interrupted())
			break;
		expires = (long long)time(NULL) + cfg->ttl;
		rc = pool_rename(kc, cfg, spare, expires);
		if (rc != KC_OK && signals_stop_signal()) {
			/* the rename may have happened: teardown looks at both */
			keycloak_token_predates(kc);
			pc->unsure = true;
			break;
		}
		if (rc == KC_OK || pool_renamed_anyway(kc, cfg, expires)) {
			keycloak_token_predates(kc);
			pc->spare[0] = '\0';
			claimed = true;
			break;
		}
		/* The run's name is taken (a leftover, or a realm that is not
		 * ours; the fresh create resolves that by its lease) or the
		 * server failed: the spare holds this run's client now, no use
		 * to another. */
		log_info("pool: claimed %s but could not rename it (%s): deleting it", spare,
			 kc->error);
		if (pool_release(kc, cfg, pc) != KC_OK)
			log_debug("pool: %s stays until its lease ends: %s", spare, kc->error);
		break;
	}
	if (claimed)
		log_info("claimed spare %s as realm %s", spare, cfg->realm);
	else if (!signals_stop_signal())
		log_debug("pool: no spare of %s claimed; creating the realm", pool_owner(cfg));

out_free:
	buf_free_secret(&import);
	return claimed;
}

int pool_refill(struct keycloak *kc, const struct config *cfg, int *made)
{
	char spare[SPARE_NAME_MAX + 1];
	int k, rc = KC_OK;

	*made = 0;
	for (k = 0; k < cfg->pool_size; k++) {
		struct buf body = BUF_INIT;

		if (http_now_ms() >= kc->deadline_ms || signals_interrupted())
			break;
		/* Only the realm and its lease: the client and the user are
		 * the claiming run's, with fresh secrets. */
		if (naming_spare(pool_prefix(cfg), k, spare, sizeof(spare)) < 0 ||
		    buf_puts(&body, "{\"realm\":") < 0 || buf_json_string(&body, spare) < 0 ||
		    buf_puts(&body, ",\"enabled\":true,\"passwordPolicy\":\"" REALM_PASSWORD_POLICY
				    "\",\"attributes\":{") < 0 ||
		    lease_json_members(&body, POOL_RUN, POOL_JOB,
				       (long long)time(NULL) + POOL_LEASE_TTLS * cfg->ttl) < 0 ||
		    buf_puts(&body, ",\"" LEASE_KEY_SPARE "\":") < 0 ||
		    buf_json_string(&body, pool_owner(cfg)) < 0 || buf_puts(&body, "}}") < 0) {
			buf_free(&body);
			snprintf(kc->error, sizeof(kc->error), "refill pool: out of memory");
			return KC_ERROR;
		}
		rc = keycloak_realm_create(kc, body.data, body.len);
		buf_free(&body);
		if (rc == KC_OK) {
			log_info("pool: made spare %s", spare);
			(*made)++;
		} else if (rc != KC_CONFLICT) {
			return rc; /* the slot being taken is the bound working */
		}
		rc = KC_OK;
	}
	return rc;
}
