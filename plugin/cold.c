/* cold.c - cold Keycloak deploys on the swarm; see cold.h. */
#include "cold.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "json.h"
#include "keycloak.h"
#include "lease.h"
#include "log.h"
#include "random.h"
#include "sat.h"
#include "signals.h"

#define POLL_MS 500
/* A line per state change; while a state lasts, one more this often, so
 * a long wait (a real Keycloak starting) still shows it is alive. */
#define PROGRESS_MS 30000

static const char *const service_labels_path[] = { "Spec", "Labels", NULL };

/* "drone-deps.owner=drone-deps" as a filters= query value. */
static int owner_filter(struct buf *path, const char *prefix)
{
	return buf_puts(path, prefix) < 0 ||
			       docker_query_escape(path, "{\"label\":[\"" LEASE_KEY_OWNER
							 "=" LEASE_OWNER "\"]}") < 0
		       ? -1
		       : 0;
}

static int cold_secret_create(struct cold *c, struct docker *d, const struct config *cfg,
			      long long expires)
{
	struct buf labels = BUF_INIT;
	char suffix[7];
	int rc = -1;

	if (random_alnum(c->password, PASSWORD_LEN) < 0 || random_hex(suffix, 6) < 0) {
		snprintf(d->error, sizeof(d->error), "no randomness for the cold password");
		return -1;
	}
	log_secret_add(c->password);
	/* A suffix of our own: a secret left by a crashed run of the same id
	 * must not block this one (secrets cannot be replaced in place). */
	snprintf(c->secret_name, sizeof(c->secret_name), "%s_admin_password_%s", cfg->cold_service,
		 suffix);
	if (lease_json_members(&labels, cfg->run_id, cfg->job, expires) < 0 ||
	    lease_json_guard(&labels, cfg->parent, cfg->run_key_hash) < 0)
		goto out_free;
	if (docker_secret_create(d, c->secret_name, buf_str(&labels), c->password,
				 strlen(c->password), c->secret_id, sizeof(c->secret_id)) < 0)
		goto out_free;
	c->secret_created = true;
	if (c->secret_id[0])
		rc = 0;
out_free:
	buf_free(&labels);
	return rc;
}

int cold_keycloak_command(struct buf *b)
{
	int rc = 0;

	rc |= buf_puts(b, "\"Command\":[\"/bin/sh\",\"-c\",");
	rc |= buf_json_string(b, "p=$(cat /run/secrets/" COLD_SECRET_FILE ") && "
				 "export KC_BOOTSTRAP_ADMIN_PASSWORD=\"$p\" "
				 "KEYCLOAK_ADMIN_PASSWORD=\"$p\" && "
				 "exec /opt/keycloak/bin/kc.sh start-dev");
	rc |= buf_puts(b, "]");
	return rc ? -1 : 0;
}

/* The service spec. The command reads the password from the swarm secret
 * into the variables Keycloak reads (26: KC_BOOTSTRAP_ADMIN_*, older:
 * KEYCLOAK_ADMIN*), so no secret sits in the spec. */
static int cold_service_spec(struct buf *b, const struct cold *c, const struct config *cfg,
			     long long expires)
{
	const char *name = cfg->cold_service;
	char label[256];
	int rc = 0;

	rc |= buf_puts(b, "{\"Name\":");
	rc |= buf_json_string(b, name);
	rc |= buf_puts(b, ",\"Labels\":{");
	rc |= lease_json_members(b, cfg->run_id, cfg->job, expires);
	rc |= lease_json_guard(b, cfg->parent, cfg->run_key_hash);
	if (cfg->cold_domain[0]) {
		rc |= docker_spec_traefik_labels(
			b, name, cfg->cold_domain,
			cfg->value[SET_NETWORK] ? cfg->value[SET_NETWORK] : "proxy",
			cfg->value[SET_CERT_RESOLVER] ? cfg->value[SET_CERT_RESOLVER]
						      : "production");
	}
	rc |= buf_puts(b, "},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":");
	rc |= buf_json_string(b, cfg->value[SET_KEYCLOAK_IMAGE] ? cfg->value[SET_KEYCLOAK_IMAGE]
								: KEYCLOAK_IMAGE_DEFAULT);
	rc |= buf_puts(b, ",");
	rc |= cold_keycloak_command(b);
	rc |= buf_puts(b,
		       ",\"Env\":[\"KC_BOOTSTRAP_ADMIN_USERNAME=admin\",\"KEYCLOAK_ADMIN=admin\","
		       "\"KC_PROXY_HEADERS=xforwarded\",\"KC_HTTP_ENABLED=true\",");
	snprintf(label, sizeof(label), "KC_HOSTNAME=%s", cfg->cold_url);
	rc |= buf_json_string(b, label);
	rc |= buf_puts(b, "],\"Labels\":{");
	rc |= lease_json_members(b, cfg->run_id, cfg->job, expires);
	rc |= lease_json_guard(b, cfg->parent, cfg->run_key_hash);
	rc |= buf_puts(b, "},\"Secrets\":[{\"File\":{\"Name\":\"" COLD_SECRET_FILE "\","
			  "\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},\"SecretID\":");
	rc |= buf_json_string(b, c->secret_id);
	rc |= buf_puts(b, ",\"SecretName\":");
	rc |= buf_json_string(b, c->secret_name);
	/* A broken image or start must not loop forever: a few attempts,
	 * then the task stays failed and the wait reports it. */
	rc |= buf_puts(b, "}]},\"RestartPolicy\":{\"Condition\":\"on-failure\","
			  "\"MaxAttempts\":2,\"Delay\":2000000000},\"Networks\":[{\"Target\":");
	rc |= buf_json_string(b, cfg->value[SET_NETWORK] ? cfg->value[SET_NETWORK] : "proxy");
	rc |= buf_puts(b, "}]},\"Mode\":{\"Replicated\":{\"Replicas\":1}}");
	if (cfg->cold_publish)
		rc |= docker_spec_host_port(b, cfg->cold_publish);
	rc |= buf_puts(b, "}");
	return rc ? -1 : 0;
}

/* The service's lease from GET /services/{name}: 0, 1 when it does not
 * exist, -1 on error. */
static int cold_service_lease(struct docker *d, const char *name, struct lease *l)
{
	struct buf resp = BUF_INIT;
	char path[160];
	long status;
	int rc = -1;

	snprintf(path, sizeof(path), "/services/%s", name);
	status = docker_call(d, "GET", path, NULL, 0, &resp);
	if (status == 404)
		rc = 1;
	else if (status == 200 &&
		 lease_from_json(buf_str(&resp), resp.len, service_labels_path, l) == 0)
		rc = 0;
	buf_free(&resp);
	return rc;
}

static int cold_service_delete(struct docker *d, const char *name)
{
	char path[160];
	long status;

	snprintf(path, sizeof(path), "/services/%s", name);
	status = docker_call(d, "DELETE", path, NULL, 0, NULL);
	return status == 200 || status == 404 ? 0 : -1;
}

static int cold_service_create(struct cold *c, struct docker *d, const struct config *cfg,
			       long long expires)
{
	struct buf spec = BUF_INIT;
	long long now = (long long)time(NULL);
	struct lease l;
	long status;
	int rc = -1, attempt;

	if (cold_service_spec(&spec, c, cfg, expires) < 0) {
		snprintf(d->error, sizeof(d->error), "service spec: out of memory");
		goto out_free;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		status = docker_call(d, "POST", "/services/create", spec.data, spec.len, NULL);
		if (status == 201) {
			c->service_created = true;
			rc = 0;
			break;
		}
		if (status != 409 || attempt == 1)
			break;
		/* The name is taken: replace it only if it is this job's or
		 * its lease ended, as with realms. */
		if (cold_service_lease(d, cfg->cold_service, &l) != 0)
			continue;
		if (!lease_may_replace(&l, cfg->job, now)) {
			snprintf(d->error, sizeof(d->error),
				 "service %s exists and is %s: leaving it alone", cfg->cold_service,
				 l.owned ? "another live run's"
					 : "not marked as made by drone-deps");
			break;
		}
		log_info("service %s is left over from %s: replacing it", cfg->cold_service,
			 l.job[0] ? l.job : "an unknown job");
		if (cold_service_delete(d, cfg->cold_service) < 0)
			break;
		http_sleep_ms(1000); /* let the swarm forget the name */
	}
out_free:
	buf_free(&spec);
	return rc;
}

/* What the wait is for while the task is in state, for a person reading
 * the log (swarm task states: new, pending, assigned, accepted, preparing,
 * starting, running). */
static const char *cold_awaited(const char *state)
{
	if (!strcmp(state, "no task yet"))
		return "the swarm to create a task";
	if (!strcmp(state, "new") || !strcmp(state, "pending") || !strcmp(state, "assigned") ||
	    !strcmp(state, "accepted"))
		return "a node to take the task";
	if (!strcmp(state, "preparing"))
		return "the node to get the image and prepare the container";
	if (!strcmp(state, "starting"))
		return "the container to start";
	if (!strcmp(state, "running"))
		return "Keycloak to answer";
	return "the task";
}

/* The engine's task error, with what to change when it is a missing image
 * (there may be no registry to pull from, as on a closed CI network). */
static void cold_log_task_failure(const struct config *cfg, const char *state, const char *err)
{
	const char *image = cfg->value[SET_KEYCLOAK_IMAGE] ? cfg->value[SET_KEYCLOAK_IMAGE]
							   : KEYCLOAK_IMAGE_DEFAULT;

	if (strstr(err, "No such image") || strstr(err, "pull access denied") ||
	    strstr(err, "manifest unknown") || strstr(err, "not found: manifest"))
		log_error(
			"cold: the task of service %s %s: %s: the image %s is not on the node and could not be pulled: pull or build it there (docker pull %s), or set keycloak_image",
			cfg->cold_service, state, err, image, image);
	else
		log_error("cold: the task of service %s %s: %s", cfg->cold_service, state,
			  err[0] ? err : "no reason given");
}

/* Polls the tasks, then the readiness URL, until ready or the deadline. */
int cold_wait_ready(struct docker *d, const struct config *cfg, long long deadline_ms)
{
	struct keycloak probe;
	long long start = http_now_ms(), next_progress = start + PROGRESS_MS;
	struct docker_task t = { "", "", "", "", 0 };
	char shown[32] = "";
	int rc = EX_UNAVAILABLE;

	if (keycloak_init(&probe, cfg->cold_url, "", "", cfg->value[SET_CA_CERT], cfg->insecure) <
	    0)
		return EX_SOFTWARE;
	probe.http.connect_timeout_ms = 1000;
	/* The engine calls of this wait share the bind's deadline, whatever
	 * the calls since cold_create (the watchdog's) set. */
	d->deadline_ms = deadline_ms;
	for (;;) {
		long long now = http_now_ms();

		if (signals_poll_stop()) {
			rc = 0;
			break;
		}
		if (now >= deadline_ms) {
			log_error("cold: %s was not ready within the timeout (%ld s); task %s%s%s",
				  cfg->cold_service, cfg->timeout, t.state[0] ? t.state : "unknown",
				  t.err[0] ? ": " : "", t.err);
			break;
		}
		if (docker_task_newest(d, cfg->cold_service, false, &t) < 0) {
			log_error("cold: %s", d->error);
			break;
		}
		if (!strcmp(t.state, "failed") || !strcmp(t.state, "rejected")) {
			cold_log_task_failure(cfg, t.state, t.err);
			break;
		}
		if (!strcmp(t.state, "running") && keycloak_ready(&probe, 2000) == KC_OK) {
			log_info("cold: %s is ready at %s after %lld s", cfg->cold_service,
				 cfg->cold_url, (now - start) / 1000);
			rc = 0;
			break;
		}
		if (strcmp(t.state, shown) != 0) {
			if (!strcmp(t.state, "running"))
				log_info(
					"cold: %s: task running (%lld s); waiting for %s/realms/master to answer 200",
					cfg->cold_service, (now - start) / 1000, cfg->cold_url);
			else
				log_info("cold: %s: task %s (%lld s); waiting for %s",
					 cfg->cold_service, t.state, (now - start) / 1000,
					 cold_awaited(t.state));
			snprintf(shown, sizeof(shown), "%s", t.state);
			next_progress = now + PROGRESS_MS;
		} else if (now >= next_progress) {
			log_info("cold: %s: still %s after %lld s (timeout %ld s); waiting for %s",
				 cfg->cold_service, t.state, (now - start) / 1000, cfg->timeout,
				 cold_awaited(t.state));
			next_progress = now + PROGRESS_MS;
		}
		http_sleep_ms(POLL_MS);
	}
	keycloak_cleanup(&probe);
	return rc;
}

int cold_create(struct cold *c, struct docker *d, const struct config *cfg, long long deadline_ms)
{
	/* Renewal starts with the hook: until then, the lease must cover the
	 * whole deploy (up to timeout), then a full ttl. */
	long long expires = (long long)time(NULL) + cfg->timeout + cfg->ttl;

	d->deadline_ms = deadline_ms;
	log_info("cold: deploying %s (%s)", cfg->cold_service,
		 cfg->value[SET_KEYCLOAK_IMAGE] ? cfg->value[SET_KEYCLOAK_IMAGE]
						: KEYCLOAK_IMAGE_DEFAULT);
	if (cold_secret_create(c, d, cfg, expires) < 0 ||
	    cold_service_create(c, d, cfg, expires) < 0) {
		const char *net = cfg->value[SET_NETWORK] ? cfg->value[SET_NETWORK] : "proxy";

		/* the engine says "network <name> not found" */
		if (strstr(d->error, "network") && strstr(d->error, "not found"))
			log_error(
				"cold: %s: the swarm has no network '%s' (network): create it (docker network create --driver overlay --attachable %s), or set network to the overlay network Traefik watches",
				d->error, net, net);
		else
			log_error("cold: %s", d->error);
		return EX_UNAVAILABLE;
	}
	return 0;
}

int cold_remove(struct cold *c, struct docker *d, const struct config *cfg)
{
	char path[160];
	int tries;

	if (c->service_created) {
		if (cold_service_delete(d, cfg->cold_service) < 0)
			return -1;
		c->service_created = false;
		log_info("cold: removed service %s", cfg->cold_service);
	}
	if (!c->secret_created)
		return 0;
	/* The engine refuses to remove a secret while a service still
	 * names it; that clears as the removal goes through. */
	snprintf(path, sizeof(path), "/secrets/%s",
		 c->secret_id[0] ? c->secret_id : c->secret_name);
	for (tries = 0; tries < 20; tries++) {
		long status = docker_call(d, "DELETE", path, NULL, 0, NULL);

		if (status == 204 || status == 200 || status == 404) {
			c->secret_created = false;
			return 0;
		}
		if (http_now_ms() >= d->deadline_ms)
			break;
		http_sleep_ms(250);
	}
	return -1;
}

/* Pushes the expiry label of /services/{id} or /secrets/{id} (kind) to
 * expires. Both keep their labels in Spec.Labels, and both take an update
 * of the whole spec as inspect gave it (a secret's labels are the one
 * field of its spec the engine lets change). 0 or -1. */
static int cold_renew_object(struct docker *d, const char *kind, const char *id,
			     long long expires_at)
{
	struct buf resp = BUF_INIT, spec = BUF_INIT, path = BUF_INIT;
	struct json j = { 0 };
	long long version;
	char expires[24];
	int sp, exp, rc = -1;

	buf_printf(&path, "/%s/%s", kind, id);
	if (docker_call(d, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	sp = json_object_get(&j, 0, "Spec");
	exp = json_object_get(&j, json_object_get(&j, sp, "Labels"), LEASE_KEY_EXPIRES);
	if (!json_is_object(&j, sp) || !json_is_string(&j, exp) ||
	    json_get_long(&j, json_object_get(&j, 0, "Version"), "Index", &version) < 0) {
		snprintf(d->error, sizeof(d->error), "%s %s has no lease label", kind, id);
		goto out_free;
	}
	/* Send the spec back as the engine gave it, with only the expiry
	 * label's value replaced: an update must carry the whole spec. */
	snprintf(expires, sizeof(expires), "%lld", expires_at);
	buf_append(&spec, resp.data + j.tok[sp].start,
		   (size_t)(j.tok[exp].start - j.tok[sp].start));
	buf_puts(&spec, expires);
	if (buf_append(&spec, resp.data + j.tok[exp].end,
		       (size_t)(j.tok[sp].end - j.tok[exp].end)) < 0)
		goto out_free;
	buf_reset(&path);
	buf_printf(&path, "/%s/%s/update?version=%lld", kind, id, version);
	if (docker_call(d, "POST", path.data, spec.data, spec.len, NULL) == 200)
		rc = 0;
out_free:
	json_free(&j);
	buf_free(&resp);
	buf_free(&spec);
	buf_free(&path);
	return rc;
}

int cold_renew(struct cold *c, struct docker *d, const struct config *cfg)
{
	long long expires = (long long)time(NULL) + cfg->ttl;
	int rc = 0;

	if (c->service_created && cold_renew_object(d, "services", cfg->cold_service, expires) < 0)
		rc = -1;
	/* The secret carries the same lease: a reap must never take it
	 * from under a live service. */
	if (c->secret_created && c->secret_id[0] &&
	    cold_renew_object(d, "secrets", c->secret_id, expires) < 0)
		rc = -1;
	return rc;
}

/* Removes the secrets labelled with this run's id whose lease is this
 * run's to tear down (action down). */
static void cold_remove_run_secrets(struct docker *d, const struct config *cfg,
				    const char *key_hash)
{
	struct buf path = BUF_INIT, resp = BUF_INIT, filter = BUF_INIT;
	struct json j = { 0 };
	struct json_iter it;
	char label[64];
	int item, tries;

	snprintf(label, sizeof(label), LEASE_KEY_RUN "=%s", cfg->run_id);
	buf_puts(&filter, "{\"label\":[");
	buf_json_string(&filter, label);
	buf_puts(&filter, "]}");
	buf_puts(&path, "/secrets?filters=");
	if (docker_query_escape(&path, buf_str(&filter)) < 0 ||
	    docker_call(d, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	json_iter_init(&it, &j, 0);
	for (item = json_iter_next(&it); item >= 0; item = json_iter_next(&it)) {
		char id[96], del[128];
		const char *why;
		struct lease l;

		lease_from_object(
			&j, json_object_get(&j, json_object_get(&j, item, "Spec"), "Labels"), &l);
		if (json_get_string(&j, item, "ID", id, sizeof(id)) <= 0 ||
		    !lease_may_down(&l, cfg->run_id, cfg->parent, key_hash, &why))
			continue;
		snprintf(del, sizeof(del), "/secrets/%s", id);
		/* in use until the service's removal has gone through */
		for (tries = 0; tries < 20 && docker_call(d, "DELETE", del, NULL, 0, NULL) >= 300;
		     tries++)
			http_sleep_ms(250);
	}
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
	buf_free(&filter);
}

int cold_down(struct docker *d, const struct config *cfg, const char *key_hash)
{
	const char *why;
	struct lease l;
	int rc = cold_service_lease(d, cfg->cold_service, &l);

	if (rc == 1)
		cold_remove_run_secrets(d, cfg, key_hash);
	if (rc != 0)
		return rc;
	/* Own before you touch: keyc-<run id> crosses parents, and run ids
	 * are public; the key is the up step's alone. */
	if (!lease_may_down(&l, cfg->run_id, cfg->parent, key_hash, &why)) {
		snprintf(
			d->error, sizeof(d->error),
			"service %s is not this run's to tear down (%s): leaving it alone; down deletes only what the up step that wrote env_file made",
			cfg->cold_service, why);
		return COLD_REFUSED;
	}
	rc = cold_service_delete(d, cfg->cold_service);
	if (rc == 0)
		cold_remove_run_secrets(d, cfg, key_hash);
	return rc;
}

/* Removes the expired objects of one kind ("services" or "secrets"). */
static void cold_reap_kind(struct docker *d, const char *kind, const char *noun, int max,
			   int *deleted)
{
	struct buf path = BUF_INIT, resp = BUF_INIT;
	long long now = (long long)time(NULL);
	struct json j = { 0 };
	struct json_iter it;
	int item;

	buf_printf(&path, "/%s?filters=", kind);
	if (owner_filter(&path, "") < 0 ||
	    docker_call(d, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	json_iter_init(&it, &j, 0);
	/* Bounded by deletions and the deadline, not by objects looked at;
	 * a stop ends it too (the caller exits 128+N). */
	for (item = json_iter_next(&it); item >= 0 && *deleted < max &&
					 http_now_ms() < d->deadline_ms && !signals_interrupted();
	     item = json_iter_next(&it)) {
		int spec = json_object_get(&j, item, "Spec");
		char id[96], name[160], del[200];
		struct lease l;

		if (json_get_string(&j, item, "ID", id, sizeof(id)) <= 0 ||
		    json_get_string(&j, spec, "Name", name, sizeof(name)) <= 0)
			continue;
		/* the filter asked for our owner label; the lease decides */
		lease_from_object(&j, json_object_get(&j, spec, "Labels"), &l);
		if (!lease_expired(&l, now))
			continue;
		snprintf(del, sizeof(del), "/%s/%s", kind, id);
		if (docker_call(d, "DELETE", del, NULL, 0, NULL) < 300) {
			log_info("reaped %s %s (lease ended %lld s ago)", noun, name,
				 sat_sub(now, l.expires));
			(*deleted)++;
		}
	}
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
}

int cold_reap(struct docker *d, int max, int *deleted)
{
	*deleted = 0;
	cold_reap_kind(d, "services", "service", max, deleted);
	cold_reap_kind(d, "secrets", "secret", max, deleted);
	return 0;
}

void cold_clear(struct cold *c)
{
	volatile char *p = c->password;
	size_t i;

	for (i = 0; i < sizeof(c->password); i++)
		p[i] = 0;
}
