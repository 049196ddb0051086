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

/* The marks of a spare: owned (so the reap covers it), of no run. */
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

/* Renames the locked spare to the run's realm with the run's lease: one
 * PUT (a realm PUT replaces the attributes map, so all marks go). */
static int pool_rename(struct keycloak *kc, const struct config *cfg, const char *spare)
{
	struct buf body = BUF_INIT;
	int rc = KC_ERROR;

	if (buf_puts(&body, "{\"realm\":") == 0 && buf_json_string(&body, cfg->realm) == 0 &&
	    buf_puts(&body, ",\"attributes\":{") == 0 &&
	    lease_json_members(&body, cfg->run_id, cfg->job, (long long)time(NULL) + cfg->ttl) ==
		    0 &&
	    lease_json_guard(&body, cfg->parent, cfg->run_key_hash) == 0 &&
	    buf_puts(&body, "}}") == 0)
		rc = keycloak_realm_update(kc, spare, body.data, body.len);
	else
		snprintf(kc->error, sizeof(kc->error), "rename spare: out of memory");
	buf_free(&body);
	return rc;
}

bool pool_claim(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		bool *unsure)
{
	struct buf import = BUF_INIT;
	char spare[SPARE_NAME_MAX + 1];
	bool claimed = false;
	int i, k0, rc;

	*unsure = false;
	if (cfg->pool_size <= 0 || !cfg->parent[0])
		return false;
	if (realm_import_body(&import, cfg, b) < 0)
		goto out_free;
	k0 = pool_first_slot(cfg->pool_size);
	for (i = 0; i < cfg->pool_size && !signals_interrupted(); i++) {
		if (naming_spare(cfg->parent, (k0 + i) % cfg->pool_size, spare, sizeof(spare)) < 0)
			break;
		/* The lock: of all runs importing the same client id into
		 * this spare, the database lets one succeed. 404: an empty
		 * slot; 409: another run's; 403: not made by these
		 * credentials. */
		rc = keycloak_partial_import(kc, spare, import.data, import.len);
		if (rc != KC_OK) {
			log_debug("pool: %s not claimed: %s", spare, kc->error);
			continue;
		}
		rc = pool_rename(kc, cfg, spare);
		if (rc == KC_OK) {
			keycloak_token_predates(kc);
			claimed = true;
			break;
		}
		if (signals_stop_signal()) {
			/* the rename may have happened: teardown looks */
			*unsure = true;
			break;
		}
		/* The run's name is taken (a leftover; the fresh create
		 * resolves that by its lease) or the server failed: the
		 * spare holds this run's client now, no use to another. */
		log_info("pool: claimed %s but could not rename it (%s): deleting it", spare,
			 kc->error);
		if (keycloak_realm_delete(kc, spare) != KC_OK)
			log_debug("pool: %s stays until its lease ends: %s", spare, kc->error);
		break;
	}
	if (claimed)
		log_info("claimed spare %s as realm %s", spare, cfg->realm);
	else
		log_debug("pool: no spare of %s claimed; creating the realm", cfg->parent);

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
		if (naming_spare(cfg->parent, k, spare, sizeof(spare)) < 0 ||
		    buf_puts(&body, "{\"realm\":") < 0 || buf_json_string(&body, spare) < 0 ||
		    buf_puts(&body, ",\"enabled\":true,\"passwordPolicy\":\"" REALM_PASSWORD_POLICY
				    "\",\"attributes\":{") < 0 ||
		    lease_json_members(&body, POOL_RUN, POOL_JOB,
				       (long long)time(NULL) + POOL_LEASE_TTLS * cfg->ttl) < 0 ||
		    buf_puts(&body, "}}") < 0) {
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
