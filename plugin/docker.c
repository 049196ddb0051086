/* docker.c - Docker Engine API client; see docker.h. */
#include "docker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

int docker_init(struct docker *d, const char *socket_path)
{
	memset(d, 0, sizeof(*d));
	/* The host part is not used over a unix socket, but HTTP/1.1 needs
	 * one in the Host header. */
	if (http_client_init(&d->http, "http://docker") < 0)
		return -1;
	if (strlen(socket_path) >= sizeof(d->http.unix_socket))
		return -1;
	snprintf(d->http.unix_socket, sizeof(d->http.unix_socket), "%s", socket_path);
	d->deadline_ms = http_now_ms() + 30000;
	return 0;
}

void docker_cleanup(struct docker *d)
{
	http_client_cleanup(&d->http);
}

/* Compares "1.41" and "1.47" as versions. */
static int version_cmp(const char *a, const char *b)
{
	long amaj = strtol(a, NULL, 10), bmaj = strtol(b, NULL, 10);
	const char *ad = strchr(a, '.'), *bd = strchr(b, '.');
	long amin = ad ? strtol(ad + 1, NULL, 10) : 0;
	long bmin = bd ? strtol(bd + 1, NULL, 10) : 0;

	if (amaj != bmaj)
		return amaj < bmaj ? -1 : 1;
	return amin < bmin ? -1 : amin > bmin;
}

/* The engine's own message: {"message": "..."}. */
static void docker_describe(struct docker *d, const char *what, const struct http_response *resp)
{
	static const char *const keys[] = { "message", NULL };
	char msg[400];

	if (resp->status == 0)
		snprintf(d->error, sizeof(d->error), "%s: %s", what, resp->error);
	else if (json_error_message(buf_str(&resp->body), resp->body.len, keys, msg, sizeof(msg)) ==
		 0)
		snprintf(d->error, sizeof(d->error), "%s: %s", what, msg);
	else
		snprintf(d->error, sizeof(d->error), "%s: HTTP %ld", what, resp->status);
}

int docker_negotiate(struct docker *d)
{
	struct http_request req = { .method = "GET", .path = "/_ping", .retry = true };
	struct http_response resp;
	int rc = -1;

	if (http_send_retry(&d->http, &req, d->deadline_ms, &resp) < 0 || resp.status != 200) {
		docker_describe(d, "Docker engine at unix://", &resp);
		snprintf(d->error + strlen(d->error), sizeof(d->error) - strlen(d->error),
			 " (socket %s)", d->http.unix_socket);
		goto out_free;
	}
	if (!resp.api_version[0]) {
		/* engines before API 1.25 send no Api-Version: too old anyway */
		snprintf(d->error, sizeof(d->error),
			 "the Docker engine did not say its API version (needs %s or newer)",
			 DOCKER_API_MIN);
		goto out_free;
	}
	if (version_cmp(resp.api_version, DOCKER_API_MIN) < 0) {
		snprintf(d->error, sizeof(d->error),
			 "the Docker engine speaks API %s; drone-deps needs %s or newer",
			 resp.api_version, DOCKER_API_MIN);
		goto out_free;
	}
	snprintf(d->version, sizeof(d->version), "%s",
		 version_cmp(resp.api_version, DOCKER_API_MAX) < 0 ? resp.api_version
								   : DOCKER_API_MAX);
	log_debug("docker: engine API %s, using %s", resp.api_version, d->version);
	rc = 0;
out_free:
	http_response_free(&resp);
	return rc;
}

long docker_call(struct docker *d, const char *method, const char *path, const char *body,
		 size_t len, struct buf *out)
{
	return docker_call_typed(d, method, path, body ? "application/json" : NULL, body, len, out);
}

long docker_call_typed(struct docker *d, const char *method, const char *path,
		       const char *content_type, const char *body, size_t len, struct buf *out)
{
	char full[1536];
	struct http_request req = {
		.method = method,
		.path = full,
		.content_type = content_type,
		.body = body,
		.body_len = len,
		/* Reads and deletes repeat safely; creates are not retried
		 * (a retry could make a second service). */
		.retry = strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0,
	};
	struct http_response resp;
	long status = -1;

	snprintf(full, sizeof(full), "/v%s%s", d->version, path);
	if (http_send_retry(&d->http, &req, d->deadline_ms, &resp) < 0) {
		docker_describe(d, path, &resp);
		goto out_free;
	}
	status = resp.status;
	if (status >= 400)
		docker_describe(d, path, &resp);
	if (out) {
		buf_free_secret(out); /* it may have held an exec's output */
		*out = resp.body;
		resp.body = (struct buf)BUF_INIT;
	}
out_free:
	http_response_free(&resp);
	return status;
}

int docker_demux(const char *in, size_t len, struct buf *out, struct buf *err)
{
	size_t pos = 0;

	while (pos < len) {
		const unsigned char *h = (const unsigned char *)in + pos;
		size_t n;

		if (len - pos < 8 || h[1] || h[2] || h[3] || h[0] > 2)
			return -1;
		n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
		pos += 8;
		if (n > len - pos)
			return -1;
		/* stream 0 is stdin (never sent back), 1 stdout, 2 stderr */
		if (h[0] == 1 && buf_append(out, in + pos, n) < 0)
			return -1;
		if (h[0] == 2 && err && buf_append(err, in + pos, n) < 0)
			return -1;
		pos += n;
	}
	return 0;
}

int docker_query_escape(struct buf *out, const char *s)
{
	return buf_form_value(out, s);
}

int docker_exec(struct docker *d, const char *container, const char *const argv[], struct buf *out)
{
	struct buf body = BUF_INIT, resp = BUF_INIT, stream = BUF_INIT, err = BUF_INIT;
	char path[256], id[128];
	struct json j = { 0 };
	int i, code = -1, tries;

	buf_puts(&body, "{\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":false,\"Cmd\":[");
	for (i = 0; argv[i]; i++) {
		if (i)
			buf_puts(&body, ",");
		buf_json_string(&body, argv[i]);
	}
	if (buf_puts(&body, "]}") < 0)
		goto out_free;
	snprintf(path, sizeof(path), "/containers/%s/exec", container);
	if (docker_call(d, "POST", path, body.data, body.len, &resp) != 201)
		goto out_free;
	if (json_parse(&j, buf_str(&resp), resp.len) < 0 ||
	    json_get_string(&j, 0, "Id", id, sizeof(id)) <= 0) {
		snprintf(d->error, sizeof(d->error), "exec create: no Id in the answer");
		goto out_free;
	}
	json_free(&j);

	/* Without a TTY the output comes multiplexed (stdout and stderr
	 * frames), and the call returns when the command's streams close. */
	snprintf(path, sizeof(path), "/exec/%s/start", id);
	/* The command's output (a password, when reading a secret) has a
	 * buffer of its own, wiped before it is freed. */
	if (docker_call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}", 29, &stream) != 200)
		goto out_free;
	if (docker_demux(buf_str(&stream), stream.len, out, &err) < 0) {
		snprintf(d->error, sizeof(d->error), "exec: malformed output stream");
		goto out_free;
	}

	/* The exit code can still be null for a moment after the streams
	 * end: poll the exec until it reports one. */
	snprintf(path, sizeof(path), "/exec/%s/json", id);
	for (tries = 0; tries < 50; tries++) {
		long long ec;

		if (docker_call(d, "GET", path, NULL, 0, &resp) != 200)
			goto out_free;
		json_free(&j);
		if (json_parse(&j, buf_str(&resp), resp.len) < 0)
			break;
		if (json_get_long(&j, 0, "ExitCode", &ec) == 0) {
			code = (int)ec;
			goto out_free;
		}
		http_sleep_ms(100);
	}
	snprintf(d->error, sizeof(d->error), "exec: no exit code reported");

out_free:
	json_free(&j);
	buf_free(&body);
	buf_free(&resp);
	buf_free_secret(&stream);
	buf_free_secret(&err);
	return code;
}

int docker_service_container(struct docker *d, const char *service, char *id, size_t idsz)
{
	struct buf filter = BUF_INIT, path = BUF_INIT, resp = BUF_INIT;
	struct json j = { 0 };
	char label[320];
	int rc = -1;

	snprintf(label, sizeof(label), "com.docker.swarm.service.name=%s", service);
	buf_puts(&filter, "{\"status\":[\"running\"],\"label\":[");
	buf_json_string(&filter, label);
	buf_puts(&filter, "]}");
	buf_puts(&path, "/containers/json?filters=");
	if (docker_query_escape(&path, buf_str(&filter)) < 0)
		goto out_free;
	if (docker_call(d, "GET", path.data, NULL, 0, &resp) != 200)
		goto out_free;
	if (json_parse(&j, buf_str(&resp), resp.len) < 0 ||
	    json_get_string(&j, json_array_get(&j, 0, 0), "Id", id, idsz) <= 0) {
		snprintf(d->error, sizeof(d->error), "no running container of service %s", service);
		goto out_free;
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&filter);
	buf_free(&path);
	buf_free(&resp);
	return rc;
}

int docker_task_newest(struct docker *d, const char *service, bool live_first,
		       struct docker_task *t)
{
	struct buf path = BUF_INIT, resp = BUF_INIT, filter = BUF_INIT;
	struct json j = { 0 };
	long long newest = -1;
	bool newest_live = false;
	struct json_iter it;
	int task, rc = -1;

	buf_puts(&filter, "{\"service\":[");
	buf_json_string(&filter, service);
	buf_puts(&filter, "]}");
	buf_puts(&path, "/tasks?filters=");
	if (docker_query_escape(&path, buf_str(&filter)) < 0 ||
	    docker_call(d, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	memset(t, 0, sizeof(*t));
	snprintf(t->state, sizeof(t->state), "no task yet");
	json_iter_init(&it, &j, 0);
	for (task = json_iter_next(&it); task >= 0; task = json_iter_next(&it)) {
		int st = json_object_get(&j, task, "Status");
		char desired[32] = "";
		long long index = 0;
		bool live;

		(void)json_get_long(&j, json_object_get(&j, task, "Version"), "Index", &index);
		(void)json_get_string(&j, task, "DesiredState", desired, sizeof(desired));
		live = live_first && !strcmp(desired, "running");
		/* a live task beats any other; among equals, the newest */
		if ((newest_live && !live) || (live == newest_live && index < newest))
			continue;
		newest = index;
		newest_live = live;
		snprintf(t->desired, sizeof(t->desired), "%s", desired);
		if (json_get_string(&j, st, "State", t->state, sizeof(t->state)) < 0)
			snprintf(t->state, sizeof(t->state), "unknown");
		if (json_get_string(&j, st, "Err", t->err, sizeof(t->err)) < 0)
			t->err[0] = '\0';
		if (json_get_string(&j, json_object_get(&j, st, "ContainerStatus"), "ContainerID",
				    t->container, sizeof(t->container)) < 0)
			t->container[0] = '\0';
		if (json_get_long(&j, json_object_get(&j, task, "Spec"), "ForceUpdate", &t->force) <
		    0)
			t->force = 0;
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
	buf_free(&filter);
	return rc;
}

int docker_secret_create(struct docker *d, const char *name, const char *labels, const char *data,
			 size_t len, char *id, size_t idsz)
{
	struct buf body = BUF_INIT, resp = BUF_INIT;
	struct json j = { 0 };
	int rc = -1;

	buf_puts(&body, "{\"Name\":");
	buf_json_string(&body, name);
	buf_puts(&body, ",\"Labels\":{");
	buf_puts(&body, labels);
	buf_puts(&body, "},\"Data\":\"");
	buf_base64(&body, (const unsigned char *)data, len);
	if (buf_puts(&body, "\"}") < 0) {
		snprintf(d->error, sizeof(d->error), "secret %s: out of memory", name);
		goto out_free;
	}
	id[0] = '\0';
	if (docker_call(d, "POST", "/secrets/create", body.data, body.len, &resp) != 201)
		goto out_free;
	/* created: whatever the answer holds, the caller must know it */
	rc = 0;
	if (json_parse(&j, buf_str(&resp), resp.len) < 0 ||
	    json_get_string(&j, 0, "ID", id, idsz) <= 0) {
		snprintf(d->error, sizeof(d->error), "secret create: no ID in the answer");
		id[0] = '\0';
	}
out_free:
	json_free(&j);
	buf_free_secret(&body);
	buf_free(&resp);
	return rc;
}

int docker_spec_host_port(struct buf *spec, int port)
{
	return buf_printf(spec,
			  ",\"EndpointSpec\":{\"Ports\":[{\"Protocol\":\"tcp\","
			  "\"TargetPort\":8080,\"PublishedPort\":%d,\"PublishMode\":\"host\"}]}",
			  port) < 0
		       ? -1
		       : 0;
}

int docker_spec_traefik_labels(struct buf *labels, const char *router, const char *host,
			       const char *network, const char *resolver)
{
	char rule[300];
	int rc = 0;

	snprintf(rule, sizeof(rule), "Host(`%s`)", host);
	rc |= buf_printf(labels,
			 ",\"traefik.enable\":\"true\",\"traefik.http.routers.%s.rule\":", router);
	rc |= buf_json_string(labels, rule);
	rc |= buf_printf(labels, ",\"traefik.http.routers.%s.entrypoints\":\"web-secure\"", router);
	rc |= buf_printf(labels, ",\"traefik.http.routers.%s.tls.certresolver\":", router);
	rc |= buf_json_string(labels, resolver);
	rc |= buf_printf(labels, ",\"traefik.http.services.%s.loadbalancer.server.port\":\"8080\"",
			 router);
	rc |= buf_puts(labels, ",\"traefik.docker.network\":");
	rc |= buf_json_string(labels, network);
	return rc ? -1 : 0;
}
