/* watchdog.c - a watchdog container for SIGKILL; see watchdog.h. */
#include "watchdog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "lease.h"
#include "log.h"
#include "random.h"
#include "signals.h"

#define WATCH_TEARDOWN_TRIES 10
#define WATCH_RETRY_MAX_MS 30000

int tar_add(struct buf *tar, const char *name, unsigned mode, const char *data, size_t len)
{
	unsigned char h[512];
	unsigned sum = 0;
	size_t i, pad;

	if (strlen(name) >= 100)
		return -1;
	memset(h, 0, sizeof(h));
	memcpy(h, name, strlen(name));
	snprintf((char *)h + 100, 8, "%07o", mode);
	snprintf((char *)h + 108, 8, "%07o", 0u);
	snprintf((char *)h + 116, 8, "%07o", 0u);
	snprintf((char *)h + 124, 12, "%011lo", (unsigned long)(data ? len : 0));
	snprintf((char *)h + 136, 12, "%011lo", (unsigned long)time(NULL));
	h[156] = data ? '0' : '5';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	/* the checksum is computed with its own field as spaces */
	memset(h + 148, ' ', 8);
	for (i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	if (buf_append(tar, (const char *)h, sizeof(h)) < 0)
		return -1;
	if (!data)
		return 0;
	pad = (512 - len % 512) % 512;
	memset(h, 0, sizeof(h));
	if (buf_append(tar, data, len) < 0 || buf_append(tar, (const char *)h, pad) < 0)
		return -1;
	return 0;
}

int tar_finish(struct buf *tar)
{
	char zero[1024];

	memset(zero, 0, sizeof(zero));
	return buf_append(tar, zero, sizeof(zero));
}

/* The id of the container drone-deps runs in, from the bind mount of
 * /etc/hostname (".../containers/<64 hex>/hostname"), or "". */
static void self_container_id(char *id, size_t idsz)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	id[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "/containers/");
		size_t n;

		if (!p || !strstr(line, " /etc/hostname "))
			continue;
		p += strlen("/containers/");
		n = strspn(p, "0123456789abcdef");
		if (n == 64 && n < idsz) {
			memcpy(id, p, n);
			id[n] = '\0';
			break;
		}
	}
	fclose(f);
}

/* What the watchdog copies from drone-deps' own container. */
struct self_info {
	char image[128];
	char network[128];
	char socket_source[256];
};

static int self_inspect(struct docker *dk, const char *id, const char *socket_path,
			struct self_info *si)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	struct json_iter it;
	char path[128];
	int mounts, m, rc = -1;

	memset(si, 0, sizeof(*si));
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	if (docker_call(dk, "GET", path, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	if (json_get_string(&j, 0, "Image", si->image, sizeof(si->image)) <= 0)
		goto out_free;
	if (json_get_string(&j, json_object_get(&j, 0, "HostConfig"), "NetworkMode", si->network,
			    sizeof(si->network)) <= 0 ||
	    !strncmp(si->network, "container:", 10))
		/* another container's namespace dies with its owner: the
		 * watchdog must outlive drone-deps */
		snprintf(si->network, sizeof(si->network), "bridge");
	mounts = json_object_get(&j, 0, "Mounts");
	json_iter_init(&it, &j, mounts);
	for (m = json_iter_next(&it); m >= 0; m = json_iter_next(&it)) {
		char dest[256];

		if (json_get_string(&j, m, "Destination", dest, sizeof(dest)) > 0 &&
		    !strcmp(dest, socket_path) &&
		    json_get_string(&j, m, "Source", si->socket_source, sizeof(si->socket_source)) >
			    0)
			break;
	}
	if (!si->socket_source[0]) {
		snprintf(dk->error, sizeof(dk->error),
			 "the Docker socket %s is not a mount of this container", socket_path);
		goto out_free;
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&resp);
	return rc;
}

/* Adds "NAME=value" to the JSON array being built, when value is set. */
static void env_entry(struct buf *b, const char *name, const char *value)
{
	char entry[1200];

	if (!value || !*value)
		return;
	snprintf(entry, sizeof(entry), "%s=%s", name, value);
	if (b->data[b->len - 1] != '[')
		buf_puts(b, ",");
	buf_json_string(b, entry);
}

static int watchdog_create(struct watchdog *w, struct deps *d, const char *self,
			   const struct self_info *si)
{
	const struct config *cfg = d->cfg;
	bool cold = d->cold.service_created;
	struct buf body = BUF_INIT, resp = BUF_INIT;
	char exe[256], path[160], bind[400], suffix[7];
	struct json j = { 0 };
	ssize_t n;
	int rc = -1;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || random_hex(suffix, 6) < 0) {
		snprintf(d->docker.error, sizeof(d->docker.error), "cannot find my own executable");
		return -1;
	}
	exe[n] = '\0';
	buf_puts(&body, "{\"Image\":");
	buf_json_string(&body, si->image);
	buf_puts(&body, ",\"Entrypoint\":[");
	buf_json_string(&body, exe);
	buf_puts(&body, "],\"Cmd\":[\"--action\",\"watch\"],\"Env\":[");
	env_entry(&body, WATCHDOG_ENV_TARGET, self);
	env_entry(&body, "PLUGIN_DEPS", "keycloak");
	env_entry(&body, "PLUGIN_PARENT", cfg->parent);
	env_entry(&body, "PLUGIN_RUN_ID", cfg->run_id);
	env_entry(&body, "PLUGIN_MODE", cold ? "cold" : "warm");
	env_entry(&body, "PLUGIN_KEYCLOAK_URL", cold ? NULL : cfg->keycloak_url);
	env_entry(&body, "PLUGIN_COLD_URL", cfg->cold_url);
	env_entry(&body, "PLUGIN_KEYCLOAK_ADMIN_USER", cfg->value[SET_KEYCLOAK_ADMIN_USER]);
	env_entry(&body, "PLUGIN_KEYCLOAK_CLIENT_ID",
		  d->client_secret && !cold ? cfg->value[SET_KEYCLOAK_CLIENT_ID] : NULL);
	env_entry(&body, "PLUGIN_CA_CERT",
		  cfg->value[SET_CA_CERT] ? WATCHDOG_SECRET_DIR "/ca.pem" : NULL);
	env_entry(&body, "PLUGIN_INSECURE", cfg->insecure ? "true" : NULL);
	env_entry(&body, "PLUGIN_DEBUG", cfg->debug ? "true" : NULL);
	env_entry(&body, "PLUGIN_DOCKER_HOST", "unix:///var/run/docker.sock");
	buf_puts(&body, "],\"Labels\":{\"" WATCHDOG_ROLE_LABEL "\":\"watchdog\",");
	lease_json_members(&body, cfg->run_id, cfg->job, (long long)time(NULL) + cfg->ttl);
	snprintf(bind, sizeof(bind), "%s:/var/run/docker.sock", si->socket_source);
	buf_puts(&body, "},\"HostConfig\":{\"AutoRemove\":true,\"Binds\":[");
	buf_json_string(&body, bind);
	buf_puts(&body, "],\"NetworkMode\":");
	buf_json_string(&body, si->network);
	if (buf_puts(&body, "}}") < 0)
		goto out_free;
	snprintf(path, sizeof(path), "/containers/create?name=drone-deps-watch-%s-%s", cfg->run_id,
		 suffix);
	if (docker_call(&d->docker, "POST", path, body.data, body.len, &resp) != 201 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0 ||
	    json_get_string(&j, 0, "Id", w->id, sizeof(w->id)) <= 0)
		goto out_free;
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&body);
	buf_free(&resp);
	return rc;
}

/* Copies the secrets into the created container as files. */
static int watchdog_upload(struct watchdog *w, struct deps *d)
{
	const char *ca = d->cfg->value[SET_CA_CERT];
	struct buf tar = BUF_INIT, ca_text = BUF_INIT;
	char path[160];
	int rc = -1;

	if (ca) {
		char chunk[4096];
		size_t n;
		FILE *f = fopen(ca, "r");

		if (!f)
			goto out_free;
		for (n = fread(chunk, 1, sizeof(chunk), f); n > 0;
		     n = fread(chunk, 1, sizeof(chunk), f))
			buf_append(&ca_text, chunk, n);
		fclose(f);
	}
	if (tar_add(&tar, "run/", 0755, NULL, 0) < 0 ||
	    tar_add(&tar, "run/drone-deps/", 0700, NULL, 0) < 0 ||
	    (d->admin_password && tar_add(&tar, "run/drone-deps/admin_password", 0400,
					  d->admin_password, strlen(d->admin_password)) < 0) ||
	    (d->client_secret && tar_add(&tar, "run/drone-deps/client_secret", 0400,
					 d->client_secret, strlen(d->client_secret)) < 0) ||
	    /* what its down presents: the lease holds only the hash */
	    tar_add(&tar, "run/drone-deps/run_key", 0400, d->cfg->run_key,
		    strlen(d->cfg->run_key)) < 0 ||
	    (ca &&
	     tar_add(&tar, "run/drone-deps/ca.pem", 0444, buf_str(&ca_text), ca_text.len) < 0) ||
	    tar_finish(&tar) < 0)
		goto out_free;
	snprintf(path, sizeof(path), "/containers/%s/archive?path=/", w->id);
	if (docker_call_typed(&d->docker, "PUT", path, "application/x-tar", tar.data, tar.len,
			      NULL) == 200)
		rc = 0;
out_free:
	buf_free_secret(&tar);
	buf_free(&ca_text);
	return rc;
}

static void watchdog_remove(struct watchdog *w, struct deps *d)
{
	char path[160];

	snprintf(path, sizeof(path), "/containers/%s?force=true", w->id);
	(void)docker_call(&d->docker, "DELETE", path, NULL, 0, NULL);
	w->id[0] = '\0';
}

void watchdog_start(struct watchdog *w, struct deps *d)
{
	char self[80], path[160];
	struct self_info si;

	w->id[0] = '\0';
	self_container_id(self, sizeof(self));
	if (!self[0] || !deps_docker_available(d))
		return; /* not in a container, or no Docker: leases only */
	if (deps_docker_ready(d, http_now_ms() + 10000) != 0) {
		log_warn("no watchdog: the Docker engine does not answer");
		return;
	}
	if (self_inspect(&d->docker, self, d->cfg->docker_socket, &si) < 0 ||
	    watchdog_create(w, d, self, &si) < 0) {
		log_warn("no watchdog: %s (leases still end what a kill leaves)", d->docker.error);
		return;
	}
	snprintf(path, sizeof(path), "/containers/%s/start", w->id);
	if (watchdog_upload(w, d) < 0 ||
	    docker_call(&d->docker, "POST", path, NULL, 0, NULL) >= 300) {
		log_warn("no watchdog: %s (leases still end what a kill leaves)", d->docker.error);
		/* A stop that cut the start must not cut the removal too: the
		 * created container holds the secret files. A stop always ends
		 * in teardown, so teardown's rules (the stopped budget) apply
		 * from here. A kill here leaves it to reap (never started). */
		if (signals_poll_stop())
			signals_begin_teardown();
		d->docker.deadline_ms = http_now_ms() + 10000;
		watchdog_remove(w, d);
		return;
	}
	log_info("watchdog %.12s started", w->id);
}

bool watchdog_leftover(const char *state, long long created, const struct lease *l, long long now)
{
	if (!l->owned || !strcmp(state, "running") || !strcmp(state, "restarting") ||
	    !strcmp(state, "removing"))
		return false;
	return lease_expired(l, now) ||
	       (!strcmp(state, "created") && created > 0 && now - created > WATCHDOG_START_GRACE_S);
}

int watchdog_list_query(struct buf *path)
{
	return buf_puts(path, "all=true&filters=") < 0 ||
			       docker_query_escape(path,
						   "{\"label\":[\"" LEASE_KEY_OWNER "=" LEASE_OWNER
						   "\",\"" WATCHDOG_ROLE_LABEL "=watchdog\"]}") < 0
		       ? -1
		       : 0;
}

void watchdog_reap(struct docker *dk, int max, int *deleted)
{
	struct buf path = BUF_INIT, resp = BUF_INIT;
	long long now = (long long)time(NULL);
	struct json j = { 0 };
	struct json_iter it;
	int item;

	if (buf_puts(&path, "/containers/json?") < 0 || watchdog_list_query(&path) < 0 ||
	    docker_call(dk, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	json_iter_init(&it, &j, 0);
	for (item = json_iter_next(&it); item >= 0 && *deleted < max &&
					 http_now_ms() < dk->deadline_ms && !signals_interrupted();
	     item = json_iter_next(&it)) {
		char id[96], state[32], del[160];
		long long created = 0;
		struct lease l;

		if (json_get_string(&j, item, "Id", id, sizeof(id)) <= 0 ||
		    json_get_string(&j, item, "State", state, sizeof(state)) <= 0)
			continue;
		(void)json_get_long(&j, item, "Created", &created);
		/* the filter asked for our labels; the lease decides */
		lease_from_object(&j, json_object_get(&j, item, "Labels"), &l);
		if (!watchdog_leftover(state, created, &l, now))
			continue;
		snprintf(del, sizeof(del), "/containers/%s?force=true", id);
		if (docker_call(dk, "DELETE", del, NULL, 0, NULL) < 300) {
			log_info("reaped watchdog container %.12s (%s, run %s)", id,
				 !strcmp(state, "created") ? "never started" : state,
				 l.run[0] ? l.run : "unknown");
			(*deleted)++;
		}
	}
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
}

void watchdog_stop(struct watchdog *w, struct deps *d)
{
	if (!w->id[0])
		return;
	d->docker.deadline_ms = http_now_ms() + 10000;
	watchdog_remove(w, d);
	log_debug("watchdog stopped");
}

/* Reads a file the creator copied in, then deletes it. */
static char *take_secret_file(const char *path)
{
	char buf[1024], *copy;
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	/* unbuffered: no stdio buffer keeps a copy of the secret */
	setvbuf(f, NULL, _IONBF, 0);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
	copy = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return copy;
}

/* Whether the watched container has stopped for certain: inspect says it
 * is not running, or it is gone (404). 1 stopped, 0 running, -1 unknown
 * (the engine did not answer). */
static int watched_stopped(struct docker *dk, const char *target)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	char path[128];
	long status;
	int state, rc = -1;

	snprintf(path, sizeof(path), "/containers/%s/json", target);
	dk->deadline_ms = http_now_ms() + 10000;
	status = docker_call(dk, "GET", path, NULL, 0, &resp);
	if (status == 404) {
		rc = 1;
	} else if (status == 200 && json_parse(&j, buf_str(&resp), resp.len) == 0) {
		state = json_object_get(&j, 0, "State");
		if (json_is_object(&j, state)) {
			int running = json_object_get(&j, state, "Running");

			if (running >= 0 && json_is_true(&j, running))
				rc = 0;
			else if (running >= 0)
				rc = 1;
		}
	}
	json_free(&j);
	buf_free(&resp);
	return rc;
}

/* Blocks until the target container has stopped for certain. A wait that
 * ends for another reason (dockerd restarting, a socket proxy's idle
 * timeout, an error answer) is checked with an inspect and retried with
 * backoff: tearing down a live run would be worse than waiting. Returns 0,
 * or a stop signal number when the watchdog itself is stopped. */
static int watch_until_stopped(struct deps *d, const char *target)
{
	struct http_request req = { .method = "POST" };
	long backoff = 500;
	char path[200];

	for (;;) {
		struct http_response resp;
		int stopped;

		snprintf(path, sizeof(path), "/v%s/containers/%s/wait", d->docker.version, target);
		req.path = path;
		if (http_send(&d->docker.http, &req, 86400L * 1000, &resp) < 0)
			log_warn("watch: waiting failed (%s)", resp.error);
		else if (resp.status != 200)
			log_warn("watch: waiting answered HTTP %ld", resp.status);
		else
			backoff = 500; /* a real answer: the container stopped */
		http_response_free(&resp);
		if (signals_interrupted())
			return signals_stop_signal();
		stopped = watched_stopped(&d->docker, target);
		if (stopped == 1)
			return 0;
		log_warn("watch: container %.12s %s; waiting again in %ld ms", target,
			 stopped == 0 ? "still runs" : "cannot be inspected", backoff);
		http_sleep_ms(backoff);
		if (signals_interrupted())
			return signals_stop_signal();
		if (backoff < WATCH_RETRY_MAX_MS)
			backoff *= 2;
	}
}

int watchdog_run(struct deps *d)
{
	const char *target = getenv(WATCHDOG_ENV_TARGET);
	char *password = take_secret_file(WATCHDOG_SECRET_DIR "/admin_password");
	char *client_secret = take_secret_file(WATCHDOG_SECRET_DIR "/client_secret");
	char *run_key = take_secret_file(WATCHDOG_SECRET_DIR "/run_key");
	int rc, tries, stop;

	/* All files go at once: none must linger in the container. */
	if (run_key) {
		rc = deps_use_run_key(d, run_key);
		explicit_bzero(run_key, strlen(run_key));
		free(run_key);
		if (rc < 0) {
			if (client_secret)
				explicit_bzero(client_secret, strlen(client_secret));
			free(client_secret);
			if (password)
				explicit_bzero(password, strlen(password));
			free(password);
			return EX_SOFTWARE;
		}
	}

	/* Both files go at once: neither must linger in the container. */
	if (client_secret) {
		rc = deps_use_client_secret(d, client_secret);
		explicit_bzero(client_secret, strlen(client_secret));
		free(client_secret);
		if (rc < 0) {
			if (password)
				explicit_bzero(password, strlen(password));
			free(password);
			return EX_SOFTWARE;
		}
	}

	if (!target || strspn(target, "0123456789abcdef") != strlen(target)) {
		log_error("watch: %s is not set to a container id", WATCHDOG_ENV_TARGET);
		if (password)
			explicit_bzero(password, strlen(password));
		free(password);
		return EX_USAGE;
	}
	if (password) {
		rc = deps_use_admin_password(d, password);
		explicit_bzero(password, strlen(password));
		free(password);
		if (rc < 0)
			return EX_SOFTWARE;
	}
	rc = deps_docker_ready(d, http_now_ms() + 30000);
	if (rc)
		return rc;
	log_info("watch: waiting for container %.12s to stop", target);
	stop = watch_until_stopped(d, target);
	if (stop) {
		/* stopped itself (docker stop of the watchdog): the run may go
		 * on, so nothing is torn down; leases remain */
		log_info("watch: stopped by signal %d before the container stopped", stop);
		return 128 + stop;
	}
	log_info("watch: container %.12s stopped; tearing down", target);
	signals_begin_teardown();

	for (tries = 0; tries < WATCH_TEARDOWN_TRIES; tries++) {
		rc = deps_down(d);
		/* a lease that is not this run's stays so: no use asking again */
		if (rc == 0 || rc == EX_NOPERM || rc == EX_USAGE)
			break;
		http_sleep_ms(1000);
	}
	return rc;
}
