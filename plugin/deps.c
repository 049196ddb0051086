/* deps.c - the dependency layer; see deps.h. */
#include "deps.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "http.h"
#include "lease.h"
#include "log.h"
#include "pool.h"
#include "realm.h"
#include "signals.h"
#include "watchdog.h"

#define REAP_SOME_MS 2000
#define REAP_SOME_MAX 5 /* deletions, not realms looked at */
/* Making spares while a hook runs: a realm create takes 0.5-3 s on a real
 * server, more with many realms; this bounds the pause in the hook loop. */
#define REFILL_SOME_MS 15000
#define TEARDOWN_MAX_MS 60000
#define LOGOUT_MS 2000

void deps_init(struct deps *d, const struct config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
}

/* A secret slot of deps (the admin password, the CI client's secret):
 * wiped before it is freed, a copy taken with its value masked in logs. */
static void secret_forget(char **slot)
{
	if (*slot) {
		explicit_bzero(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = NULL;
}

static int secret_keep(char **slot, const char *value)
{
	secret_forget(slot);
	*slot = strdup(value);
	if (!*slot)
		return -1;
	log_secret_add(*slot);
	return 0;
}

static int deps_set_password(struct deps *d, const char *password)
{
	return secret_keep(&d->admin_password, password);
}

int deps_use_client_secret(struct deps *d, const char *secret)
{
	return secret_keep(&d->client_secret, secret);
}

/* Whether admin tokens come from the CI client (warm instance only). */
static bool deps_uses_client(const struct deps *d)
{
	return d->client_secret != NULL;
}

bool deps_docker_available(const struct deps *d)
{
	return access(d->cfg->docker_socket, R_OK | W_OK) == 0;
}

int deps_use_admin_password(struct deps *d, const char *password)
{
	return deps_set_password(d, password);
}

int deps_docker_ready(struct deps *d, long long deadline_ms)
{
	if (!d->docker_ready) {
		if (docker_init(&d->docker, d->cfg->docker_socket) < 0) {
			log_error("docker_host: cannot use socket %s", d->cfg->docker_socket);
			return EX_USAGE;
		}
		d->docker.deadline_ms = deadline_ms;
		if (docker_negotiate(&d->docker) < 0) {
			log_error("%s", d->docker.error);
			docker_cleanup(&d->docker);
			return EX_UNAVAILABLE;
		}
		d->docker_ready = true;
	}
	d->docker.deadline_ms = deadline_ms;
	return 0;
}

/* Reads the warm admin password from the warm instance's container, as
 * Co-op Cloud stores it: /run/secrets/admin_password. Returns 0, 1 when
 * no container of the warm service runs (no warm instance), or an exit
 * code. */
static int deps_read_warm_password(struct deps *d)
{
	static const char *const cat[] = { "cat", "/run/secrets/admin_password", NULL };
	const struct config *cfg = d->cfg;
	struct buf out = BUF_INIT;
	char id[128];
	int rc, code;

	rc = deps_docker_ready(d, http_now_ms() + cfg->timeout * 1000);
	if (rc)
		return rc;
	rc = EX_UNAVAILABLE;
	if (docker_service_container(&d->docker, cfg->keycloak_service, id, sizeof(id)) < 0) {
		log_info("keycloak_admin_password is not set, and %s (keycloak_service)",
			 d->docker.error);
		rc = 1;
		goto out_free;
	}
	code = docker_exec(&d->docker, id, cat, &out);
	while (out.len > 0 && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
		out.data[--out.len] = '\0';
	if (code != 0 || out.len == 0) {
		log_error(
			"keycloak_admin_password: not set, and reading /run/secrets/admin_password in service %s failed (%s)",
			cfg->keycloak_service,
			code < 0 ? d->docker.error
			: code	 ? "the command failed"
				 : "it is empty");
		goto out_free;
	}
	if (deps_set_password(d, out.data) < 0) {
		rc = EX_SOFTWARE;
		goto out_free;
	}
	log_info("read the warm admin password from service %s", cfg->keycloak_service);
	rc = 0;
out_free:
	buf_free_secret(&out);
	return rc;
}

/* A Keycloak client for url with the admin credentials; on the warm
 * instance the CI client's when there is one (a cold instance has only its
 * own generated admin). */
static int deps_keycloak_client(struct deps *d, const char *url, const char *user, bool warm)
{
	const struct config *cfg = d->cfg;

	if (d->kc_ready)
		keycloak_cleanup(&d->kc);
	d->kc_ready = false;
	if (keycloak_init(&d->kc, url, user, d->admin_password, cfg->value[SET_CA_CERT],
			  cfg->insecure) < 0) {
		log_error("cannot set up an HTTP client");
		return EX_SOFTWARE;
	}
	if (warm && deps_uses_client(d))
		keycloak_use_client(&d->kc, cfg->value[SET_KEYCLOAK_CLIENT_ID], d->client_secret);
	d->kc_ready = true;
	return 0;
}

int deps_warm_client(struct deps *d)
{
	const struct config *cfg = d->cfg;
	int rc;

	if (cfg->value[SET_KEYCLOAK_CLIENT_SECRET])
		rc = deps_use_client_secret(d, cfg->value[SET_KEYCLOAK_CLIENT_SECRET]) < 0
			     ? EX_SOFTWARE
			     : 0;
	else if (d->client_secret ||
		 (d->admin_password && !cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD]))
		rc = 0; /* handed over (the watchdog) */
	else if (cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD])
		rc = deps_set_password(d, cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD]) < 0 ? EX_SOFTWARE
										       : 0;
	else
		rc = deps_read_warm_password(d);
	if (rc)
		return rc;
	return deps_keycloak_client(d, cfg->keycloak_url, cfg->value[SET_KEYCLOAK_ADMIN_USER],
				    true);
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
	if (rc == KC_AUTH && deps_uses_client(d)) {
		/* Never a reason to deploy cold (see below), nor to try the
		 * admin password: the client was asked for. */
		log_error(
			"warm Keycloak at %s refused the CI client: check keycloak_client_id ('%s') and keycloak_client_secret (%s)",
			cfg->keycloak_url, cfg->value[SET_KEYCLOAK_CLIENT_ID], d->kc.error);
		return EX_UNAVAILABLE;
	}
	if (rc == KC_AUTH) {
		/* Never a reason to deploy cold: the instance is there, the
		 * credentials are wrong, and a cold run would hide that. */
		log_error(
			"warm Keycloak at %s refused the admin credentials of user '%s' (%s): check keycloak_admin_user and keycloak_admin_password",
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

/* What to check when the warm probe failed: a failed TLS check is the
 * probe's "no instance" too (a proxy with no route for the name serves its
 * default certificate), but a wrong or missing ca_cert fails the same way,
 * so the message names it. */
static const char *deps_tls_hint(const struct deps *d)
{
	return d->kc.tls_failed
		       ? " (its certificate failed the TLS check: set ca_cert to the PEM of the CA that signed it, or check that Traefik serves a certificate for the name)"
		       : "";
}

/* Deploys a cold instance and logs in to it. */
static int deps_bind_cold(struct deps *d)
{
	const struct config *cfg = d->cfg;
	long long deadline = http_now_ms() + cfg->timeout * 1000;
	int rc;

	if (!deps_docker_available(d) && cfg->mode == MODE_COLD) {
		log_error(
			"mode cold: no Docker socket at %s to deploy a Keycloak on the swarm: mount /var/run/docker.sock into the step (a volume, in a trusted repository), or set docker_host",
			cfg->docker_socket);
		return EX_UNAVAILABLE;
	}
	if (!deps_docker_available(d)) {
		/* mode auto: the warm probe failed first, and that is what a
		 * maintainer usually has to fix (a wrong domain) */
		log_error(
			"no warm Keycloak answers at %s%s and no Docker socket at %s for a cold deploy: check domain (the warm instance is warm-keycloak.<domain>) or keycloak_url; or mount /var/run/docker.sock for a cold fallback",
			cfg->keycloak_url, deps_tls_hint(d), cfg->docker_socket);
		return EX_UNAVAILABLE;
	}
	rc = deps_docker_ready(d, deadline);
	if (rc)
		return rc;
	rc = cold_create(&d->cold, &d->docker, cfg, deadline);
	if (rc || signals_poll_stop())
		return rc;
	/* A real Keycloak takes minutes to start: what guards against a
	 * SIGKILL (the watchdog) must not wait for it. */
	if (d->on_cold_created)
		d->on_cold_created(d, d->on_cold_created_ctx);
	rc = cold_wait_ready(&d->docker, cfg, deadline);
	if (rc || signals_poll_stop())
		return rc;
	rc = deps_set_password(d, d->cold.password) < 0
		     ? EX_SOFTWARE
		     : deps_keycloak_client(d, cfg->cold_url, "admin", false);
	if (rc)
		return rc;
	d->kc.deadline_ms = deadline;
	rc = keycloak_login(&d->kc, false);
	if (rc != KC_OK) {
		log_error("cold Keycloak at %s: %s", cfg->cold_url, d->kc.error);
		return EX_UNAVAILABLE;
	}
	binding_set_instance(&d->binding, "cold", cfg->cold_url);
	return 0;
}

int deps_bind(struct deps *d)
{
	const struct config *cfg = d->cfg;
	int rc;

	if (binding_init(&d->binding, cfg->run_id, cfg->realm, cfg->parent) < 0) {
		log_error("no randomness available for the client secret");
		return EX_SOFTWARE;
	}
	memcpy(d->binding.run_key, cfg->run_key, sizeof(d->binding.run_key));
	rc = cfg->mode == MODE_COLD ? 1 : deps_probe_warm(d);
	if (rc == 1 && cfg->mode == MODE_WARM) {
		log_error(
			"mode is warm and no warm Keycloak answers at %s%s: check domain (the warm instance is warm-keycloak.<domain>) or keycloak_url, or set mode auto to fall back to a cold deploy",
			cfg->keycloak_url, deps_tls_hint(d));
		return EX_UNAVAILABLE;
	}
	if (rc == 1)
		rc = deps_bind_cold(d);
	else if (rc == 0)
		binding_set_instance(&d->binding, "warm", cfg->keycloak_url);
	if (rc || signals_poll_stop())
		return rc;

	d->kc.deadline_ms = http_now_ms() + cfg->timeout * 1000;
	/* A spare of the pool first (warm only: a cold instance is new);
	 * without one, the realm is created as ever, in this same run. */
	if (!strcmp(d->binding.mode, "warm") && pool_claim(&d->kc, cfg, &d->binding, &d->claim)) {
		d->realm_created = true;
		rc = cfg->realm_json ? realm_apply_partial(&d->kc, cfg) : KC_OK;
	} else if (signals_stop_signal()) {
		d->realm_unsure = d->claim.unsure;
		log_info("stopped while claiming a spare for realm %s", cfg->realm);
		return 0;
	} else {
		rc = realm_create(&d->kc, cfg, &d->binding, &d->realm_created);
	}
	if (rc != KC_OK) {
		if (signals_stop_signal()) {
			d->realm_unsure = !d->realm_created;
			log_info("stopped while creating realm %s", cfg->realm);
			return 0;
		}
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

	if (d->realm_created) {
		d->kc.deadline_ms = http_now_ms() + 10000;
		if (realm_renew(&d->kc, d->cfg) != KC_OK)
			log_warn("could not renew the lease of realm %s: %s", d->cfg->realm,
				 d->kc.error);
		else
			log_debug("renewed the lease of realm %s", d->cfg->realm);
	}
	if (d->cold.service_created || d->cold.secret_created) {
		d->docker.deadline_ms = http_now_ms() + 10000;
		if (cold_renew(&d->cold, &d->docker, d->cfg) < 0)
			log_warn("could not renew the lease of service %s: %s",
				 d->cfg->cold_service, d->docker.error);
	}
}

int deps_teardown(struct deps *d)
{
	long long budget = d->cfg->timeout * 1000, deadline;
	bool cold = d->cold.service_created || d->cold.secret_created;
	int rc = 0;

	deps_housekeeping_end(d);
	if (budget > TEARDOWN_MAX_MS)
		budget = TEARDOWN_MAX_MS;
	/* After a stop, SIGNALS_STOPPED_BUDGET_MS in all; a stop that comes
	 * during teardown cuts what is left of it to that too (every request
	 * clamps its deadline: see signals_clamp_deadline). */
	deadline = signals_clamp_deadline(http_now_ms() + budget);
	/* A cold instance goes whole, its realm with it: no DELETE first. */
	if (d->realm_created && !cold) {
		d->kc.deadline_ms = deadline;
		if (realm_delete(&d->kc, d->cfg) != KC_OK) {
			log_error("could not delete realm %s: %s (its lease ends it)",
				  d->cfg->realm, d->kc.error);
			rc = -1;
		} else {
			d->realm_created = false;
			log_info("deleted realm %s", d->cfg->realm);
		}
	}
	if (d->realm_unsure && !cold) {
		d->kc.deadline_ms = deadline;
		if (realm_delete_if_ours(&d->kc, d->cfg) != KC_OK) {
			log_error("could not check realm %s: %s (its lease ends it)", d->cfg->realm,
				  d->kc.error);
			rc = -1;
		} else {
			d->realm_unsure = false;
		}
	}
	if (d->claim.spare[0] && !cold) {
		d->kc.deadline_ms = deadline;
		if (pool_release(&d->kc, d->cfg, &d->claim) != KC_OK) {
			log_error("could not check spare %s: %s (its lease ends it)",
				  d->claim.spare, d->kc.error);
			rc = -1;
		}
	}
	if (cold) {
		d->docker.deadline_ms = deadline;
		if (cold_remove(&d->cold, &d->docker, d->cfg) < 0) {
			log_error("could not remove cold service %s: %s (its lease ends it)",
				  d->cfg->cold_service, d->docker.error);
			rc = -1;
		} else {
			d->realm_created = false;
		}
	}
	return rc;
}

/* Fills the pool of the run's parent (warm only), within budget_ms. */
static void deps_refill(struct deps *d, long budget_ms)
{
	int made = 0;

	if (!d->kc_ready || d->cfg->pool_size <= 0 || !d->cfg->parent[0])
		return;
	d->kc.deadline_ms = http_now_ms() + budget_ms;
	if (pool_refill(&d->kc, d->cfg, &made) != KC_OK)
		log_debug("refilling the pool: %s", d->kc.error);
}

/* The housekeeper's body, in the forked child: its own connections, its
 * own deadlines; it ends with _exit and leaves the parent's state alone. */
static void deps_housekeep(struct deps *d, pid_t parent)
{
	int deleted = 0;

	/* dies with drone-deps, even by SIGKILL: no orphan keeps working
	 * (drone-deps is often PID 1 itself: compare with its pid, not 1) */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0); /* the parent is already gone */
	if ((d->kc_ready && http_client_fresh(&d->kc.http) < 0) ||
	    (d->docker_ready && http_client_fresh(&d->docker.http) < 0))
		_exit(EX_SOFTWARE);
	if (d->kc_ready && !strcmp(d->binding.mode, "warm")) {
		deps_refill(d, REFILL_SOME_MS);
		d->kc.deadline_ms = http_now_ms() + REAP_SOME_MS;
		if (realm_reap(&d->kc, REAP_SOME_MAX, &deleted) != KC_OK)
			log_debug("reaping expired realms: %s", d->kc.error);
	}
	if (d->docker_ready) {
		d->docker.deadline_ms = http_now_ms() + REAP_SOME_MS;
		cold_reap(&d->docker, REAP_SOME_MAX, &deleted);
		deleted = 0;
		watchdog_reap(&d->docker, REAP_SOME_MAX, &deleted);
	}
	_exit(0);
}

/* Housekeeping never delays the run's own duties: the refill (a realm
 * create takes seconds) and the reap run in a child process, so the hook
 * loop keeps renewing the lease on time and takes a stop at once. The
 * child shares nothing on the wire with the parent (fresh connections);
 * it reuses the admin token in memory, so it costs no login and no
 * admin session. The parent never waits for it but to reap it, and kills
 * it when teardown begins (deps_housekeeping_end). */
void deps_reap_some(void *arg)
{
	struct deps *d = arg;
	pid_t pid, parent;

	if (d->housekeeper > 0)
		return;
	if (!(d->kc_ready && !strcmp(d->binding.mode, "warm")) && !d->docker_ready)
		return;
	fflush(stdout);
	fflush(stderr);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		log_debug("no housekeeping this run: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		deps_housekeep(d, parent);
	d->housekeeper = pid;
	log_debug("housekeeping (refill and reap) in process %d", (int)pid);
}

void deps_housekeeping_end(struct deps *d)
{
	pid_t pid = d->housekeeper;

	if (pid <= 0)
		return;
	d->housekeeper = 0;
	/* Only while it is our unreaped child (0: running; its pid cannot
	 * have been reused). The hook loop's waitpid(-1) may have reaped it
	 * already (-1, ECHILD): then there is nothing to end. */
	if (waitpid(pid, NULL, WNOHANG) != 0)
		return;
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	log_debug("housekeeping ended with the run");
}

int deps_reap_all(struct deps *d)
{
	const struct config *cfg = d->cfg;
	long long deadline = http_now_ms() + cfg->timeout * 1000;
	int rc, deleted = 0;
	bool did = false;

	if (cfg->keycloak_url[0] && cfg->mode != MODE_COLD) {
		rc = deps_warm_client(d);
		if (rc)
			return rc == 1 ? EX_UNAVAILABLE : rc;
		d->kc.deadline_ms = deadline;
		if (realm_reap(&d->kc, 1 << 30, &deleted) != KC_OK) {
			log_error("reap at %s: %s", cfg->keycloak_url, d->kc.error);
			return EX_UNAVAILABLE;
		}
		log_info("reaped %d expired realm%s at %s", deleted, deleted == 1 ? "" : "s",
			 cfg->keycloak_url);
		/* with a parent, a scheduled reap also readies its pool */
		deps_refill(d, cfg->timeout * 1000);
		did = true;
	}
	if (deps_docker_available(d)) {
		rc = deps_docker_ready(d, deadline);
		if (rc)
			return rc;
		cold_reap(&d->docker, 1 << 30, &deleted);
		log_info("reaped %d expired cold service%s and secrets", deleted,
			 deleted == 1 ? "" : "s");
		deleted = 0;
		watchdog_reap(&d->docker, 1 << 30, &deleted);
		log_info("reaped %d left-over watchdog container%s", deleted,
			 deleted == 1 ? "" : "s");
		did = true;
	}
	if (!did) {
		log_error("reap: nothing to reap from: no keycloak_url and no Docker socket");
		return EX_USAGE;
	}
	return 0;
}

int deps_use_run_key(struct deps *d, const char *key)
{
	return secret_keep(&d->run_key, key);
}

/* The hash of the run key down presents: the watchdog's (handed over),
 * else the DEPS_RUN_KEY the up step wrote to env_file. 0, or EX_USAGE
 * with the error logged. */
static int deps_down_key_hash(struct deps *d, char hash[SHA256_HEX_LEN + 1])
{
	const char *env_file = d->cfg->value[SET_ENV_FILE];
	char key[RUN_KEY_LEN + 1];

	if (d->run_key) {
		sha256_hex(d->run_key, strlen(d->run_key), hash);
		return 0;
	}
	if (!env_file) {
		log_error(
			"env_file: required with action down: the run key (DEPS_RUN_KEY) that the up step wrote there is what proves the run is this pipeline's; nothing deleted");
		return EX_USAGE;
	}
	if (binding_read_run_key(env_file, key) < 0) {
		log_error(
			"env_file: no run key (DEPS_RUN_KEY) in '%s': down deletes only what the up step that wrote it made; nothing deleted",
			env_file);
		return EX_USAGE;
	}
	sha256_hex(key, strlen(key), hash);
	explicit_bzero(key, sizeof(key));
	return 0;
}

int deps_down(struct deps *d)
{
	const struct config *cfg = d->cfg;
	long long deadline = http_now_ms() + cfg->timeout * 1000;
	char hash[SHA256_HEX_LEN + 1];
	int rc;

	/* No key, no request: before any connection is made. */
	rc = deps_down_key_hash(d, hash);
	if (rc)
		return rc;
	if (cfg->mode != MODE_COLD && cfg->keycloak_url[0]) {
		rc = deps_warm_client(d);
		if (rc)
			return rc == 1 ? EX_UNAVAILABLE : rc;
		d->kc.deadline_ms = deadline;
		rc = realm_down(&d->kc, cfg, hash);
		if (rc != KC_OK) {
			log_error("%s", d->kc.error);
			return rc == KC_CONFLICT ? EX_NOPERM : EX_UNAVAILABLE;
		}
	}
	if (cfg->mode != MODE_WARM && deps_docker_available(d)) {
		rc = deps_docker_ready(d, deadline);
		if (rc)
			return rc;
		rc = cold_down(&d->docker, cfg, hash);
		if (rc < 0 || rc == COLD_REFUSED) {
			log_error("%s", d->docker.error);
			return rc == COLD_REFUSED ? EX_NOPERM : EX_UNAVAILABLE;
		}
		if (rc == 0)
			log_info("removed cold service %s", cfg->cold_service);
	}
	log_info("tore down run %s", cfg->run_id);
	return 0;
}

void deps_logout(struct deps *d)
{
	/* A cold instance is gone with its sessions. */
	if (!d->kc_ready || !d->kc.refresh || d->cold.service_created ||
	    !strcmp(d->binding.mode, "cold"))
		return;
	signals_begin_teardown();
	d->kc.deadline_ms = http_now_ms() + LOGOUT_MS;
	if (keycloak_logout(&d->kc) != KC_OK)
		log_debug("could not end the admin session: %s (it idles out)", d->kc.error);
}

void deps_free(struct deps *d)
{
	deps_housekeeping_end(d);
	if (d->kc_ready)
		keycloak_cleanup(&d->kc);
	if (d->docker_ready)
		docker_cleanup(&d->docker);
	secret_forget(&d->admin_password);
	secret_forget(&d->client_secret);
	secret_forget(&d->run_key);
	binding_clear(&d->binding);
	cold_clear(&d->cold);
	d->kc_ready = false;
	d->docker_ready = false;
}
