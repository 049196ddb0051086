/* realm.c - per-run realm lifecycle; see realm.h. */
#include "realm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "lease.h"
#include "log.h"
#include "pool.h"
#include "sat.h"
#include "signals.h"

/* Keycloak 26 shows an imported realm only once the import's transaction
 * commits, but refuses a second import of the name at once: a 409 with no
 * realm to see is another run's import in flight. Look this often, this
 * far apart, for it to appear. */
#define CONFLICT_LOOKS 20
#define CONFLICT_LOOK_MS 250

static const char *const realm_attributes_path[] = { "attributes", NULL };

/* The run's confidential client (standard flow and direct grants), as a
 * JSON object. */
static int realm_client_json(struct buf *out, const struct config *cfg, const struct binding *b)
{
	const char *pd = cfg->value[SET_PARENT_DOMAIN];
	int rc = 0;

	rc |= buf_puts(out, "{\"clientId\":");
	rc |= buf_json_string(out, b->client_id);
	rc |= buf_puts(out, ",\"enabled\":true,\"protocol\":\"openid-connect\","
			    "\"publicClient\":false,"
			    "\"clientAuthenticatorType\":\"client-secret\",\"secret\":");
	rc |= buf_json_string(out, b->client_secret);
	rc |= buf_puts(out, ",\"standardFlowEnabled\":true,"
			    "\"directAccessGrantsEnabled\":true,\"redirectUris\":[");
	if (pd) {
		char uri[300];

		snprintf(uri, sizeof(uri), "https://%s/*", pd);
		rc |= buf_json_string(out, uri);
		rc |= buf_puts(out, "],\"webOrigins\":[");
		snprintf(uri, sizeof(uri), "https://%s", pd);
		rc |= buf_json_string(out, uri);
		rc |= buf_puts(out, "]");
	} else {
		rc |= buf_puts(out, "\"*\"],\"webOrigins\":[\"*\"]");
	}
	rc |= buf_puts(out, "}");
	return rc ? -1 : 0;
}

/* The test user, complete enough to log in: Keycloak 24+ refuses users
 * without email, first and last name ("Account is not fully set up"). */
static int realm_user_json(struct buf *out, const struct binding *b)
{
	int rc = 0;

	rc |= buf_puts(out, "{\"username\":");
	rc |= buf_json_string(out, b->username);
	/* A realm import leaves a user without a creation time unless it is
	 * given: this one stands for the realm's, or the claim's for a spare
	 * (action status shows it). */
	rc |= buf_printf(out, ",\"createdTimestamp\":%lld000", (long long)time(NULL));
	rc |= buf_puts(out, ",\"enabled\":true,\"email\":");
	rc |= buf_json_string(out, b->email);
	rc |= buf_puts(out, ",\"emailVerified\":true,\"firstName\":\"Test\","
			    "\"lastName\":\"User\",\"credentials\":[{\"type\":\"password\","
			    "\"temporary\":false,\"value\":");
	rc |= buf_json_string(out, b->password);
	rc |= buf_puts(out, "}]}");
	return rc ? -1 : 0;
}

/* The run's client and test user as the members "clients" and "users",
 * without braces: a fresh realm's and a claimed spare's are the same. */
static int realm_run_members(struct buf *out, const struct config *cfg, const struct binding *b,
			     bool claim_marker)
{
	int rc = 0;

	rc |= buf_puts(out, "\"clients\":[");
	rc |= realm_client_json(out, cfg, b);
	/* The lock of a shared spare: the run's client id differs between
	 * parents, this one does not, so of all runs importing into one
	 * spare exactly one succeeds (FAIL rolls the whole import back). It
	 * is disabled and has no secret: nothing logs in with it. */
	if (claim_marker)
		rc |= buf_puts(
			out, ",{\"clientId\":\"" POOL_CLAIM_CLIENT "\",\"enabled\":false,"
			     "\"bearerOnly\":true,\"publicClient\":false,"
			     "\"standardFlowEnabled\":false,\"directAccessGrantsEnabled\":false}");
	rc |= buf_puts(out, "],\"users\":[");
	rc |= realm_user_json(out, b);
	rc |= buf_puts(out, "]");
	return rc ? -1 : 0;
}

int realm_body(struct buf *out, const struct config *cfg, const struct binding *b,
	       long long expires)
{
	int rc = 0;

	/* One representation: realm, lease marks, client and test user. */
	rc |= buf_puts(out, "{\"realm\":");
	rc |= buf_json_string(out, b->realm);
	rc |= buf_puts(out, ",\"enabled\":true,\"passwordPolicy\":\"" REALM_PASSWORD_POLICY
			    "\",\"attributes\":{");
	rc |= lease_json_members(out, cfg->run_id, cfg->job, expires);
	rc |= lease_json_guard(out, cfg->parent, cfg->run_key_hash);
	rc |= buf_puts(out, "},");
	rc |= realm_run_members(out, cfg, b, false);
	rc |= buf_puts(out, "}");
	return rc ? -1 : 0;
}

int realm_import_body(struct buf *out, const struct config *cfg, const struct binding *b)
{
	int rc = 0;

	/* FAIL: a realm that has them already is another run's. */
	rc |= buf_puts(out, "{\"ifResourceExists\":\"FAIL\",");
	rc |= realm_run_members(out, cfg, b, cfg->pool_scope == POOL_SCOPE_INSTANCE);
	rc |= buf_puts(out, "}");
	return rc ? -1 : 0;
}

int realm_lease(struct keycloak *kc, const char *realm, struct lease *l)
{
	struct buf body = BUF_INIT;
	int rc = keycloak_realm_get(kc, realm, &body);

	if (rc == KC_OK &&
	    lease_from_json(buf_str(&body), body.len, realm_attributes_path, l) < 0) {
		snprintf(kc->error, sizeof(kc->error), "read realm %s: the answer is not JSON",
			 realm);
		rc = KC_ERROR;
	}
	buf_free(&body);
	return rc;
}

/* Whether a realm's marks are exactly the ones this create attempt sent:
 * run, job and the attempt's own expiry, which a leftover of the same job
 * cannot carry. */
static bool realm_is_this_attempt(const struct lease *l, const struct config *cfg,
				  long long sent_expires)
{
	return l->owned && strcmp(l->run, cfg->run_id) == 0 && strcmp(l->job, cfg->job) == 0 &&
	       l->expires == sent_expires;
}

/* The realm exists. When its marks are exactly the ones just sent (run,
 * job and this attempt's expiry, which a leftover of the same job cannot
 * carry), our own POST made it and its answer was lost: the retry met our
 * own realm, so *ours is set and it is used as is. Else replace it if it
 * is this job's or expired, else report whose it is and touch nothing. */
static int realm_resolve_conflict(struct keycloak *kc, const struct config *cfg,
				  long long sent_expires, bool *ours)
{
	long long now;
	struct lease l;
	int rc, looks;

	*ours = false;
	for (looks = 1;; looks++) {
		/* Each look with a token from after the 409. The CI client's
		 * rights on a realm are roles in its token, granted with the
		 * create: Keycloak answers a token from before it with the
		 * realm's name alone, which reads as unmarked. A create whose
		 * answer was lost (a proxy giving up on a Keycloak stalled by a
		 * killed cluster member) would meet its own realm so, and refuse
		 * it as foreign. A foreign realm stays foreign with any token. */
		keycloak_token_predates(kc); /* the create's grant, if ours */
		rc = realm_lease(kc, cfg->realm, &l);
		if (rc != KC_NOT_FOUND || looks == CONFLICT_LOOKS || signals_interrupted())
			break;
		signals_sleep_ms(CONFLICT_LOOK_MS);
	}
	now = (long long)time(NULL);
	if (rc == KC_NOT_FOUND)
		return KC_OK; /* gone meanwhile: create again */
	if (rc != KC_OK)
		return rc;
	if (realm_is_this_attempt(&l, cfg, sent_expires)) {
		log_info("realm %s was made by this run (its answer was lost): using it",
			 cfg->realm);
		*ours = true;
		return KC_OK;
	}
	if (!l.owned) {
		snprintf(
			kc->error, sizeof(kc->error),
			"realm %s exists and is not marked as made by drone-deps: leaving it alone",
			cfg->realm);
		return KC_CONFLICT;
	}
	if (!lease_may_replace(&l, cfg->job, now)) {
		snprintf(
			kc->error, sizeof(kc->error),
			"realm %s belongs to a live run (job %s, lease ends in %lld s): leaving it alone; set another run_id",
			cfg->realm, l.job, sat_sub(l.expires, now));
		return KC_CONFLICT;
	}
	log_info("realm %s is left over from %s (%s): replacing it", cfg->realm,
		 l.job[0] ? l.job : "an unknown job",
		 lease_expired(&l, now) ? "lease expired" : "same job");
	rc = keycloak_realm_delete(kc, cfg->realm);
	return rc == KC_NOT_FOUND ? KC_OK : rc;
}

int realm_apply_partial(struct keycloak *kc, const struct config *cfg)
{
	struct buf body = BUF_INIT;
	struct json j;
	int rc = KC_ERROR;
	const char *text = cfg->realm_json;

	/* config_load checked it is an object; add a policy unless the file
	 * chose one: FAIL, so a clash with the generated client is loud. */
	if (json_parse(&j, text, strlen(text)) < 0)
		goto out_free;
	if (json_object_get(&j, 0, "ifResourceExists") >= 0) {
		if (buf_puts(&body, text) < 0)
			goto out_free;
	} else {
		const char *brace = strchr(text, '{');
		const char *rest = brace + 1;

		while (*rest == ' ' || *rest == '\n' || *rest == '\r' || *rest == '\t')
			rest++;
		if (buf_puts(&body, "{\"ifResourceExists\":\"FAIL\"") < 0 ||
		    (*rest != '}' && buf_puts(&body, ",") < 0) || buf_puts(&body, rest) < 0)
			goto out_free;
	}
	rc = keycloak_partial_import(kc, cfg->realm, body.data, body.len);
out_free:
	json_free(&j);
	buf_free(&body);
	return rc;
}

/* A create that failed may have committed all the same (a 5xx, or an
 * answer lost, after the server's work): the realm is this attempt's only
 * if it carries exactly the marks just sent (run, job and this attempt's
 * expiry). That one is deleted; anything else is left alone. kc->error
 * keeps the failure's reason. */
static void realm_drop_failed_create(struct keycloak *kc, const struct config *cfg,
				     long long sent_expires)
{
	char error[sizeof(kc->error)];
	struct lease l;

	memcpy(error, kc->error, sizeof(error));
	/* the CI client's token from before the create may only name it */
	keycloak_token_predates(kc);
	if (realm_lease(kc, cfg->realm, &l) == KC_OK &&
	    realm_is_this_attempt(&l, cfg, sent_expires)) {
		if (keycloak_realm_delete(kc, cfg->realm) == KC_OK)
			log_info("realm %s was made although its create failed: deleted it",
				 cfg->realm);
		else
			log_warn(
				"realm %s was made although its create failed, and stays until its lease ends: %s",
				cfg->realm, kc->error);
	}
	memcpy(kc->error, error, sizeof(error));
}

int realm_create(struct keycloak *kc, const struct config *cfg, const struct binding *b,
		 bool *created)
{
	struct buf body = BUF_INIT;
	long long expires = (long long)time(NULL) + cfg->ttl;
	bool ours = false;
	int rc, attempt;

	*created = false;
	if (realm_body(&body, cfg, b, expires) < 0) {
		snprintf(kc->error, sizeof(kc->error), "create realm: out of memory");
		rc = KC_ERROR;
		goto out_free;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		rc = keycloak_realm_create(kc, body.data, body.len);
		if (rc != KC_CONFLICT || attempt == 1)
			break;
		rc = realm_resolve_conflict(kc, cfg, expires, &ours);
		if (rc != KC_OK || ours)
			break;
	}
	if (rc == KC_CONFLICT && attempt == 1)
		snprintf(
			kc->error, sizeof(kc->error),
			"realm %s: another run is creating a realm of that name right now (does it share run_id %s?): leaving it alone",
			cfg->realm, cfg->run_id);
	/* A 409 is the server's refusal, and a stop leaves the look to
	 * teardown (realm_delete_if_ours). */
	if (rc != KC_OK && rc != KC_CONFLICT && !signals_stop_signal())
		realm_drop_failed_create(kc, cfg, expires);
	if (rc != KC_OK)
		goto out_free;
	*created = true;
	if (cfg->realm_json)
		rc = realm_apply_partial(kc, cfg);

out_free:
	buf_free_secret(&body);
	return rc;
}

int realm_renew(struct keycloak *kc, const struct config *cfg)
{
	struct buf body = BUF_INIT;
	int rc = KC_ERROR;

	/* a realm PUT replaces the attributes map: every mark goes again */
	if (buf_puts(&body, "{\"attributes\":{") == 0 &&
	    lease_json_members(&body, cfg->run_id, cfg->job, (long long)time(NULL) + cfg->ttl) ==
		    0 &&
	    lease_json_guard(&body, cfg->parent, cfg->run_key_hash) == 0 &&
	    buf_puts(&body, "}}") == 0)
		rc = keycloak_realm_update(kc, cfg->realm, body.data, body.len);
	buf_free(&body);
	return rc;
}

int realm_delete(struct keycloak *kc, const struct config *cfg)
{
	int rc = keycloak_realm_delete(kc, cfg->realm);

	return rc == KC_NOT_FOUND ? KC_OK : rc;
}

int realm_delete_if_ours(struct keycloak *kc, const struct config *cfg)
{
	struct lease l;
	int rc;

	/* The CI client's token from before the create (or the rename) may
	 * only name the realm: its marks would read as not ours. */
	keycloak_token_predates(kc);
	rc = realm_lease(kc, cfg->realm, &l);

	if (rc == KC_NOT_FOUND)
		return KC_OK;
	if (rc != KC_OK)
		return rc;
	if (!l.owned || strcmp(l.run, cfg->run_id) != 0 || strcmp(l.job, cfg->job) != 0) {
		log_info("realm %s is not this job's: leaving it alone", cfg->realm);
		return KC_OK;
	}
	return realm_delete(kc, cfg);
}

int realm_down(struct keycloak *kc, const struct config *cfg, const char *key_hash)
{
	const char *why;
	struct lease l;
	int rc = realm_lease(kc, cfg->realm, &l);

	if (rc == KC_NOT_FOUND) {
		log_info("realm %s does not exist: nothing to tear down", cfg->realm);
		return KC_OK;
	}
	if (rc != KC_OK)
		return rc;
	/* Own before you touch: the name and the run id are public; the
	 * key only the up step that made the realm wrote to env_file. */
	if (!lease_may_down(&l, cfg->run_id, cfg->parent, key_hash, &why)) {
		snprintf(
			kc->error, sizeof(kc->error),
			"realm %s is not this run's to tear down (%s): leaving it alone; down deletes only what the up step that wrote env_file made",
			cfg->realm, why);
		return KC_CONFLICT;
	}
	return realm_delete(kc, cfg);
}

int realm_reap(struct keycloak *kc, int max_deleted, int *deleted)
{
	struct buf list = BUF_INIT;
	long long now = (long long)time(NULL);
	struct json j = { 0 };
	struct json_iter it;
	int rc, item, n;

	*deleted = 0;
	rc = keycloak_realm_list(kc, &list);
	if (rc == KC_AUTH && kc->client_secret) {
		/* 26.4.7 answers the list with 403 to a holder of create-realm
		 * who can see no realm: the CI client has none to reap. */
		rc = KC_OK;
		goto out_free;
	}
	if (rc != KC_OK)
		goto out_free;
	n = json_parse(&j, buf_str(&list), list.len) < 0 ? -1 : json_iter_init(&it, &j, 0);
	if (n < 0) {
		snprintf(kc->error, sizeof(kc->error),
			 "list realms: the answer is not a JSON array");
		rc = KC_ERROR;
		goto out_free;
	}
	/* Bounded by deletions and by the deadline, never by realms looked
	 * at: live leases listed first must not hide the expired ones. A
	 * stop ends it too: the caller exits 128+N. */
	for (item = json_iter_next(&it); item >= 0 && *deleted < max_deleted;
	     item = json_iter_next(&it)) {
		char name[256];
		struct lease l;

		if (http_now_ms() >= kc->deadline_ms)
			break;
		if (signals_interrupted()) {
			snprintf(kc->error, sizeof(kc->error), "stopped by a signal");
			rc = KC_ERROR;
			goto out_free;
		}
		if (json_get_string(&j, item, "realm", name, sizeof(name)) < 0)
			continue;
		/* master and names we never give (a run's realm, a spare)
		 * are not even read */
		if (!strcmp(name, "master") ||
		    !(naming_realm_shape(name) || naming_spare_shape(name)))
			continue;
		if (realm_lease(kc, name, &l) != KC_OK || !l.owned || !lease_expired(&l, now))
			continue;
		/* a spare's name must carry a spare's marks (pool.h) */
		if (naming_spare_shape(name) && !pool_is_spare(&l, name, NULL))
			continue;
		if (keycloak_realm_delete(kc, name) == KC_OK) {
			log_info("reaped realm %s (job %s, lease ended %lld s ago)", name,
				 l.job[0] ? l.job : "unknown", sat_sub(now, l.expires));
			(*deleted)++;
		}
	}
	rc = KC_OK;

out_free:
	json_free(&j);
	buf_free(&list);
	return rc;
}
