/* deps.c - the dependency layer; see deps.h. */
#include "deps.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "http.h"
#include "log.h"
#include "realm.h"
#include "signals.h"

#define REAP_SOME_MS 2000
#define REAP_SOME_MAX 5
#define TEARDOWN_MAX_MS 60000

void deps_init(struct deps *d, const struct config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
}

static int deps_set_password(struct deps *d, const char *password)
{
	d->admin_password = strdup(password);
	if (!d->admin_password)
		return -1;
	log_secret_add(d->admin_password);
	return 0;
}

/* Connects to the warm instance at cfg->keycloak_url. */
static int deps_warm_client(struct deps *d)
{
	const struct config *cfg = d->cfg;

	if (!cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD]) {
		log_error("keycloak_admin_password: not set (reading it from the warm container is not available in this build)");
		return EX_USAGE;
	}
	if (deps_set_password(d, cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD]) < 0 ||
	    keycloak_init(&d->kc, cfg->keycloak_url, cfg->value[SET_KEYCLOAK_ADMIN_USER],
			  d->admin_password, cfg->value[SET_CA_CERT], cfg->insecure) < 0) {
		log_error("cannot set up an HTTP client");
		return EX_SOFTWARE;
	}
	d->kc_ready = true;
	return 0;
}

/* Probes the warm instance: its admin token request is the liveness
 * check. Returns 0 when warm is usable, 1 when no warm instance answers,
 * or an exit code. */
static int deps_probe_warm(struct deps *d)
{
	const struct config *cfg = d->cfg;
	int rc = deps_warm_client(d);

	if (rc)
		return rc;
	d->kc.deadline_ms = http_now_ms() + cfg->timeout * 1000;
	rc = keycloak_login(&d->kc, true);
	if (rc == KC_OK)
		return 0;
	if (rc == KC_AUTH) {
		/* Never a reason to deploy cold: the instance is there, the
		 * credentials are wrong, and a cold run would hide that. */
		log_error("warm Keycloak at %s refused the admin credentials of user '%s' (%s)",
			  cfg->keycloak_url, cfg->value[SET_KEYCLOAK_ADMIN_USER], d->kc.error);
		return EX_UNAVAILABLE;
	}
	if (rc == KC_UNREACHABLE) {
		log_info("no warm Keycloak at %s (%s)", cfg->keycloak_url, d->kc.error);
		return 1;
	}
	log_error("warm Keycloak at %s: %s", cfg->keycloak_url, d->kc.error);
	return EX_UNAVAILABLE;
}

int deps_bind(struct deps *d)
{
	const struct config *cfg = d->cfg;
	int rc;

	if (cfg->mode == MODE_COLD) {
		log_error("mode: cold deploys are not available in this build");
		return EX_UNAVAILABLE;
	}
	rc = deps_probe_warm(d);
	if (rc == 1) {
		if (cfg->mode == MODE_WARM)
			log_error("mode is warm and no warm Keycloak answers at %s",
				  cfg->keycloak_url);
		else
			log_error("no warm Keycloak answers at %s, and cold deploys are not available in this build",
				  cfg->keycloak_url);
		return EX_UNAVAILABLE;
	}
	if (rc)
		return rc;
	if (signals_poll_stop())
		return 0; /* main sees the signal and tears down */

	if (binding_init(&d->binding, cfg->run_id, cfg->realm, cfg->parent) < 0) {
		log_error("no randomness available for the client secret");
		return EX_SOFTWARE;
	}
	binding_set_instance(&d->binding, "warm", cfg->keycloak_url);
	rc = realm_create(&d->kc, cfg, &d->binding, &d->realm_created);
	if (rc != KC_OK) {
		log_error("%s", d->kc.error);
		return EX_UNAVAILABLE;
	}
	log_info("bound keycloak (%s): realm %s at %s", d->binding.mode, cfg->realm,
		 d->binding.url);
	return 0;
}

void deps_renew(void *arg)
{
	struct deps *d = arg;

	if (!d->realm_created)
		return;
	d->kc.deadline_ms = http_now_ms() + 10000;
	if (realm_renew(&d->kc, d->cfg) != KC_OK)
		log_warn("could not renew the lease of realm %s: %s", d->cfg->realm,
			 d->kc.error);
	else
		log_debug("renewed the lease of realm %s", d->cfg->realm);
}

int deps_teardown(struct deps *d)
{
	long long budget = d->cfg->timeout * 1000;

	if (!d->realm_created)
		return 0;
	if (budget > TEARDOWN_MAX_MS)
		budget = TEARDOWN_MAX_MS;
	d->kc.deadline_ms = http_now_ms() + budget;
	if (realm_delete(&d->kc, d->cfg) != KC_OK) {
		log_error("could not delete realm %s: %s (its lease ends it)",
			  d->cfg->realm, d->kc.error);
		return -1;
	}
	d->realm_created = false;
	log_info("deleted realm %s", d->cfg->realm);
	return 0;
}

void deps_reap_some(struct deps *d)
{
	int deleted = 0;

	if (!d->kc_ready || !d->kc.token)
		return;
	d->kc.deadline_ms = http_now_ms() + REAP_SOME_MS;
	if (realm_reap(&d->kc, REAP_SOME_MAX, &deleted) != KC_OK)
		log_debug("reaping expired realms: %s", d->kc.error);
}

int deps_reap_all(struct deps *d)
{
	int rc, deleted = 0;

	rc = deps_warm_client(d);
	if (rc)
		return rc;
	d->kc.deadline_ms = http_now_ms() + d->cfg->timeout * 1000;
	rc = realm_reap(&d->kc, 1 << 30, &deleted);
	if (rc != KC_OK) {
		log_error("reap at %s: %s", d->cfg->keycloak_url, d->kc.error);
		return EX_UNAVAILABLE;
	}
	log_info("reaped %d expired realm%s at %s", deleted, deleted == 1 ? "" : "s",
		 d->cfg->keycloak_url);
	return 0;
}

int deps_down(struct deps *d)
{
	int rc = deps_warm_client(d);

	if (rc)
		return rc;
	d->kc.deadline_ms = http_now_ms() + d->cfg->timeout * 1000;
	rc = realm_down(&d->kc, d->cfg);
	if (rc != KC_OK) {
		log_error("%s", d->kc.error);
		return EX_UNAVAILABLE;
	}
	log_info("tore down realm %s", d->cfg->realm);
	return 0;
}

void deps_free(struct deps *d)
{
	if (d->kc_ready)
		keycloak_cleanup(&d->kc);
	if (d->admin_password) {
		memset(d->admin_password, 0, strlen(d->admin_password));
		free(d->admin_password);
	}
	binding_clear(&d->binding);
	d->admin_password = NULL;
	d->kc_ready = false;
}
