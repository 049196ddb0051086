/* status.c - action status; see status.h. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "json.h"
#include "lease.h"
#include "log.h"
#include "sat.h"
#include "signals.h"
#include "watchdog.h"

struct status_item {
	const char *kind; /* "realm", "service", "secret", "watchdog" */
	char name[256];
	struct lease lease;
	long long created; /* unix seconds; 0: unknown */
	bool leftover;	   /* a watchdog: see watchdog_leftover */
};

/* Whether an item is left over for reap to remove: its lease ended; for
 * a watchdog container, watchdog_leftover (a running one waits for its
 * run whatever its lease says; a never-started one is dead weight). */
static bool status_ended(const struct status_item *it, long long now)
{
	return !strcmp(it->kind, "watchdog") ? it->leftover : lease_expired(&it->lease, now);
}

/* One source (the warm Keycloak, the Docker engine): listed, or why not. */
struct status_source {
	bool listed;
	bool failed;  /* it was to be read and could not be */
	bool partial; /* read, but the credential sees only part of it */
	char note[400];
};

struct status_report {
	struct status_item *items;
	size_t n, cap;
	long long now;
	struct status_source warm, docker;
};

static const char *const realm_attributes_path[] = { "attributes", NULL };

static struct status_item *status_add(struct status_report *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct status_item *p = realloc(r->items, cap * sizeof(*p));

		if (!p)
			return NULL;
		r->items = p;
		r->cap = cap;
	}
	memset(&r->items[r->n], 0, sizeof(r->items[0]));
	return &r->items[r->n++];
}

/* Whether a realm name can be put in a URL path as it is. drone-deps only
 * makes [a-z0-9-] names; any other realm cannot be ours and is not read. */
static bool status_name_plain(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* The first user's createdTimestamp (ms) of a user list, in unix
 * seconds; 0 (printed "-") when there is none or it cannot be read. */
static long long status_created_from_users(const char *body, size_t len)
{
	struct json j = { 0 };
	long long ms = 0;

	if (json_parse(&j, body, len) < 0 ||
	    json_get_long(&j, json_array_get(&j, 0, 0), "createdTimestamp", &ms) < 0)
		ms = 0;
	json_free(&j);
	return ms > 0 ? ms / 1000 : 0;
}

/* When the realm was made: Keycloak keeps no creation time for a realm,
 * but its test user comes in the same POST, and users carry one. 0 when
 * there is no user or it cannot be read. The token is fresh: the realm's
 * own GET, just before, renewed it if it had to. */
static long long status_realm_created(struct keycloak *kc, const char *realm)
{
	char path[400];
	struct http_request req = { .method = "GET", .path = path, .retry = true };
	struct http_response resp;
	long long t = 0;

	snprintf(path, sizeof(path),
		 "/admin/realms/%s/users?briefRepresentation=true&first=0&max=1", realm);
	req.bearer = kc->token;
	if (http_send_retry(&kc->http, &req, kc->deadline_ms, &resp) == 0 && resp.status == 200)
		t = status_created_from_users(buf_str(&resp.body), resp.body.len);
	http_response_free(&resp);
	return t;
}

/* Adds realm name when its answer (GET /admin/realms/{name}, body) carries
 * drone-deps' owner mark; NULL when it does not, or with *oom set when
 * memory ran out. */
static struct status_item *status_add_realm(struct status_report *r, const char *name,
					    const char *body, size_t len, bool *oom)
{
	struct status_item *it;
	struct lease l;

	if (lease_from_json(body, len, realm_attributes_path, &l) < 0 || !l.owned)
		return NULL;
	it = status_add(r);
	if (!it) {
		*oom = true;
		return NULL;
	}
	it->kind = "realm";
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->lease = l;
	return it;
}

/* Logs in to the warm instance and lists its marked realms. Returns 0, or
 * -1 with r->warm.note saying what to change. */
static int status_read_realms(struct deps *d, struct status_report *r)
{
	const struct config *cfg = d->cfg;
	struct buf list = BUF_INIT;
	struct json j = { 0 };
	struct json_iter it;
	int rc = -1, n, item, kc, unread = 0;

	if (!cfg->value[SET_KEYCLOAK_ADMIN_PASSWORD] && !cfg->value[SET_KEYCLOAK_CLIENT_SECRET] &&
	    !deps_docker_available(d)) {
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms at %s not listed: neither keycloak_client_secret nor keycloak_admin_password is set, and there is no Docker socket at %s to read the password from the warm container",
			cfg->keycloak_url, cfg->docker_socket);
		return -1;
	}
	kc = deps_warm_client(d);
	if (kc) {
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms at %s not listed: the admin password could not be read from service %s (keycloak_service): set keycloak_admin_password",
			cfg->keycloak_url, cfg->keycloak_service);
		return -1;
	}
	d->kc.deadline_ms = http_now_ms() + cfg->timeout * 1000;
	kc = keycloak_login(&d->kc, true);
	if (kc == KC_UNREACHABLE) {
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms not listed: no Keycloak answers at %s (%s): check domain (the warm instance is warm-keycloak.<domain>) or keycloak_url",
			cfg->keycloak_url, d->kc.error);
		return -1;
	}
	if (kc == KC_AUTH && d->client_secret) {
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms not listed: %s refused the CI client: check keycloak_client_id ('%s') and keycloak_client_secret",
			cfg->keycloak_url, cfg->value[SET_KEYCLOAK_CLIENT_ID]);
		return -1;
	}
	if (kc == KC_AUTH) {
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms not listed: %s refused the admin credentials of user '%s': check keycloak_admin_user and keycloak_admin_password",
			cfg->keycloak_url, cfg->value[SET_KEYCLOAK_ADMIN_USER]);
		return -1;
	}
	if (kc == KC_OK)
		kc = keycloak_realm_list(&d->kc, &list);
	if (kc == KC_AUTH && d->client_secret) {
		/* 26.4.7 answers the list with 403 to a holder of
		 * create-realm who can see no realm: an empty view */
		buf_reset(&list);
		buf_puts(&list, "[]");
		kc = KC_OK;
	}
	if (kc != KC_OK) {
		snprintf(r->warm.note, sizeof(r->warm.note), "realms at %s not listed: %s",
			 cfg->keycloak_url, d->kc.error);
		goto out_free;
	}
	n = json_parse(&j, buf_str(&list), list.len) < 0 ? -1 : json_iter_init(&it, &j, 0);
	if (n < 0) {
		snprintf(r->warm.note, sizeof(r->warm.note),
			 "realms at %s not listed: the realm list is not a JSON array",
			 cfg->keycloak_url);
		goto out_free;
	}
	for (item = json_iter_next(&it); item >= 0; item = json_iter_next(&it)) {
		struct buf body = BUF_INIT;
		struct status_item *si;
		char name[256];
		bool oom = false;
		int got;

		/* a stop ends the listing; status_run exits 128+N */
		if (signals_interrupted()) {
			snprintf(r->warm.note, sizeof(r->warm.note),
				 "realms at %s not listed: stopped by a signal", cfg->keycloak_url);
			goto out_free;
		}
		if (json_get_string(&j, item, "realm", name, sizeof(name)) < 0 ||
		    !strcmp(name, "master") || !status_name_plain(name))
			continue;
		/* The brief list has no attributes: each realm is read. One
		 * deleted meanwhile (404) is simply no longer there. */
		got = keycloak_realm_get(&d->kc, name, &body);
		si = got == KC_OK ? status_add_realm(r, name, buf_str(&body), body.len, &oom)
				  : NULL;
		if (oom) {
			buf_free(&body);
			snprintf(r->warm.note, sizeof(r->warm.note), "out of memory");
			goto out_free;
		}
		if (si) {
			si->created = status_realm_created(&d->kc, name);
		} else if (got != KC_OK && got != KC_NOT_FOUND) {
			log_warn("status: realm %s could not be read: %s", name, d->kc.error);
			unread++;
		}
		buf_free(&body);
	}
	/* The CI client sees the realms it made, no other: what it could
	 * not see is said, and the exit is never 0 for it. */
	if (d->client_secret) {
		r->warm.partial = true;
		snprintf(
			r->warm.note, sizeof(r->warm.note),
			"realms at %s listed as CI client '%s': Keycloak shows it only the realms it made; realms made with the admin password or another client are not visible to it and not listed (set keycloak_admin_password instead of keycloak_client_secret to see all)",
			cfg->keycloak_url, cfg->value[SET_KEYCLOAK_CLIENT_ID]);
	}
	/* a list with holes is not a clean bill: say so, and fail */
	if (unread) {
		snprintf(r->warm.note, sizeof(r->warm.note),
			 "%d realm%s at %s could not be read (see above): the list is incomplete",
			 unread, unread == 1 ? "" : "s", cfg->keycloak_url);
		goto out_free;
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&list);
	return rc;
}

/* "2026-12-02T00:58:01.123456789Z" (the engine's CreatedAt) as unix
 * seconds; 0 when it is not in that shape. */
static long long status_parse_time(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	return (long long)timegm(&tm);
}

/* Adds the owned items of a Docker list answer (services or secrets) as
 * noun. 0, or -1 when it is not a JSON array or memory ran out. */
static int status_add_listed(struct status_report *r, const char *noun, const char *body,
			     size_t len)
{
	struct json j = { 0 };
	struct json_iter iter;
	int rc = -1, item;

	if (json_parse(&j, body, len) < 0 || json_iter_init(&iter, &j, 0) < 0)
		goto out_free;
	for (item = json_iter_next(&iter); item >= 0; item = json_iter_next(&iter)) {
		int spec = json_object_get(&j, item, "Spec");
		char created[64];
		struct status_item *it;
		struct lease l;

		/* the filter asked for the label; check its value anyway */
		lease_from_object(&j, json_object_get(&j, spec, "Labels"), &l);
		if (!l.owned)
			continue;
		it = status_add(r);
		if (!it)
			goto out_free;
		it->kind = noun;
		if (json_get_string(&j, spec, "Name", it->name, sizeof(it->name)) < 0)
			snprintf(it->name, sizeof(it->name), "?");
		it->lease = l;
		if (json_get_string(&j, item, "CreatedAt", created, sizeof(created)) >= 0)
			it->created = status_parse_time(created);
	}
	rc = 0;
out_free:
	json_free(&j);
	return rc;
}

/* Lists the "services" or "secrets" with the owner label. 0 or -1. */
static int status_read_kind(struct docker *dk, const char *kind, const char *noun,
			    struct status_report *r)
{
	struct buf path = BUF_INIT, resp = BUF_INIT;
	int rc = -1;

	buf_printf(&path, "/%s?filters=", kind);
	if (docker_query_escape(&path, "{\"label\":[\"" LEASE_KEY_OWNER "=" LEASE_OWNER "\"]}") <
		    0 ||
	    docker_call(dk, "GET", path.data, NULL, 0, &resp) != 200)
		goto out_free;
	rc = status_add_listed(r, noun, buf_str(&resp), resp.len);
out_free:
	buf_free(&path);
	buf_free(&resp);
	return rc;
}

/* Lists the watchdog containers of ours, started or not. 0 or -1. */
static int status_read_watchdogs(struct docker *dk, struct status_report *r)
{
	struct buf path = BUF_INIT, resp = BUF_INIT;
	long long now = (long long)time(NULL);
	struct json j = { 0 };
	struct json_iter iter;
	int rc = -1, item;

	if (buf_puts(&path, "/containers/json?") < 0 || watchdog_list_query(&path) < 0 ||
	    docker_call(dk, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0 || json_iter_init(&iter, &j, 0) < 0)
		goto out_free;
	for (item = json_iter_next(&iter); item >= 0; item = json_iter_next(&iter)) {
		char state[32] = "";
		struct json_iter names;
		struct status_item *it;
		struct lease l;
		long long created = 0;

		lease_from_object(&j, json_object_get(&j, item, "Labels"), &l);
		if (!l.owned)
			continue;
		it = status_add(r);
		if (!it)
			goto out_free;
		it->kind = "watchdog";
		/* "/drone-deps-watch-<run>-<suffix>": the name without its slash */
		json_iter_init(&names, &j, json_object_get(&j, item, "Names"));
		if (json_string_copy(&j, json_iter_next(&names), it->name, sizeof(it->name)) < 0)
			snprintf(it->name, sizeof(it->name), "?");
		if (it->name[0] == '/')
			memmove(it->name, it->name + 1, strlen(it->name));
		(void)json_get_string(&j, item, "State", state, sizeof(state));
		(void)json_get_long(&j, item, "Created", &created);
		it->lease = l;
		it->created = created;
		it->leftover = watchdog_leftover(state, created, &l, now);
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
	return rc;
}

static int status_read_docker(struct deps *d, struct status_report *r)
{
	const struct config *cfg = d->cfg;

	if (deps_docker_ready(d, http_now_ms() + cfg->timeout * 1000) != 0) {
		snprintf(r->docker.note, sizeof(r->docker.note),
			 "services and secrets not listed: the Docker engine at %s did not answer",
			 cfg->docker_socket);
		return -1;
	}
	if (status_read_kind(&d->docker, "services", "service", r) < 0 ||
	    status_read_kind(&d->docker, "secrets", "secret", r) < 0 ||
	    status_read_watchdogs(&d->docker, r) < 0) {
		snprintf(r->docker.note, sizeof(r->docker.note),
			 "services and secrets not listed: %s", d->docker.error);
		return -1;
	}
	return 0;
}

static void status_format_time(long long t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outsz, "-");
}

/* The counts both outputs end with. */
struct status_counts {
	size_t live, expired, realms, services, secrets, watchdogs;
};

static void status_count(const struct status_report *r, struct status_counts *c)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < r->n; i++) {
		const struct status_item *it = &r->items[i];

		if (status_ended(it, r->now))
			c->expired++;
		else
			c->live++;
		c->realms += !strcmp(it->kind, "realm");
		c->services += !strcmp(it->kind, "service");
		c->secrets += !strcmp(it->kind, "secret");
		c->watchdogs += !strcmp(it->kind, "watchdog");
	}
}

/* A copy of s fit for a terminal: control characters (C0, DEL, and C1
 * as UTF-8) become '?'. Names and marks come from the servers: a job mark
 * with an escape sequence must not reach the screen as one. */
static void status_printable(const char *s, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (; *p && n + 1 < outsz; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			out[n++] = '?';
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			out[n++] = '?';
		} else {
			out[n++] = (char)*p;
		}
	}
	out[n] = '\0';
}

static void status_print_text(const struct status_report *r, FILE *out)
{
	struct status_counts c;
	size_t i;

	fprintf(out, "%-8s %-40s %-6s %-32s %-20s %-24s %s\n", "KIND", "NAME", "RUN", "JOB",
		"CREATED", "LEASE", "STATE");
	for (i = 0; i < r->n; i++) {
		const struct status_item *it = &r->items[i];
		bool ended = status_ended(it, r->now);
		long long left = sat_sub(it->lease.expires, r->now);
		char created[32], lease[48], name[sizeof(it->name)], run[sizeof(it->lease.run)],
			job[sizeof(it->lease.job)];

		status_printable(it->name, name, sizeof(name));
		status_printable(it->lease.run, run, sizeof(run));
		status_printable(it->lease.job, job, sizeof(job));
		status_format_time(it->created, created, sizeof(created));
		if (ended)
			snprintf(lease, sizeof(lease), "expired %lld s ago", sat_sub(0, left));
		else
			snprintf(lease, sizeof(lease), "expires in %lld s", left);
		fprintf(out, "%-8s %-40s %-6s %-32s %-20s %-24s %s\n", it->kind, name,
			run[0] ? run : "-", job[0] ? job : "-", created, lease,
			ended ? "expired" : "live");
	}
	status_count(r, &c);
	fprintf(out,
		"%zu live, %zu expired: %zu realm%s, %zu service%s, %zu secret%s, %zu watchdog%s\n",
		c.live, c.expired, c.realms, c.realms == 1 ? "" : "s", c.services,
		c.services == 1 ? "" : "s", c.secrets, c.secrets == 1 ? "" : "s", c.watchdogs,
		c.watchdogs == 1 ? "" : "s");
}

static void status_json_source(struct buf *b, const char *key, const struct status_source *s)
{
	buf_printf(b, ",\"%s\":{\"listed\":%s,\"failed\":%s,\"complete\":%s,\"note\":", key,
		   s->listed ? "true" : "false", s->failed ? "true" : "false",
		   s->listed && !s->partial ? "true" : "false");
	if (s->note[0])
		buf_json_string(b, s->note);
	else
		buf_puts(b, "null");
	buf_puts(b, "}");
}

/* One JSON document; built in memory so a failure prints nothing half. */
static int status_print_json(const struct status_report *r, const struct config *cfg, FILE *out)
{
	struct buf b = BUF_INIT;
	struct status_counts c;
	size_t i;
	int rc = -1;

	buf_printf(&b, "{\"now\":%lld,\"keycloak_url\":", r->now);
	if (cfg->keycloak_url[0])
		buf_json_string(&b, cfg->keycloak_url);
	else
		buf_puts(&b, "null");
	status_json_source(&b, "warm", &r->warm);
	status_json_source(&b, "docker", &r->docker);
	buf_puts(&b, ",\"resources\":[");
	for (i = 0; i < r->n; i++) {
		const struct status_item *it = &r->items[i];
		bool ended = status_ended(it, r->now);

		buf_printf(&b, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", it->kind);
		buf_json_string(&b, it->name);
		buf_puts(&b, ",\"run\":");
		buf_json_string(&b, it->lease.run);
		buf_puts(&b, ",\"job\":");
		buf_json_string(&b, it->lease.job);
		if (it->created > 0)
			buf_printf(&b, ",\"created\":%lld", it->created);
		else
			buf_puts(&b, ",\"created\":null");
		buf_printf(&b, ",\"expires\":%lld,\"expires_in\":%lld,\"state\":\"%s\"}",
			   it->lease.expires, sat_sub(it->lease.expires, r->now),
			   ended ? "expired" : "live");
	}
	status_count(r, &c);
	if (buf_printf(&b,
		       "],\"counts\":{\"live\":%zu,\"expired\":%zu,\"realms\":%zu,"
		       "\"services\":%zu,\"secrets\":%zu,\"watchdogs\":%zu}}\n",
		       c.live, c.expired, c.realms, c.services, c.secrets, c.watchdogs) < 0)
		goto out_free;
	fputs(b.data, out);
	rc = 0;
out_free:
	buf_free(&b);
	return rc;
}

static void status_note(const struct status_source *s)
{
	if (s->note[0] && s->failed)
		log_error("%s", s->note);
	else if (s->note[0] && s->partial)
		log_warn("%s", s->note);
	else if (s->note[0])
		log_info("%s", s->note);
}

int status_run(struct deps *d)
{
	const struct config *cfg = d->cfg;
	struct status_report r;
	bool any_expired = false, want_warm, want_docker;
	int code = EX_USAGE;
	size_t i;

	memset(&r, 0, sizeof(r));
	want_warm = cfg->keycloak_url[0] && cfg->mode != MODE_COLD;
	want_docker = cfg->mode != MODE_WARM && deps_docker_available(d);
	if (!want_warm)
		snprintf(r.warm.note, sizeof(r.warm.note),
			 "realms not listed: no warm Keycloak (set domain or keycloak_url)");
	if (!want_docker)
		snprintf(
			r.docker.note, sizeof(r.docker.note),
			"services and secrets not listed: no Docker socket at %s (mount /var/run/docker.sock, or set docker_host)",
			cfg->docker_socket);
	if (!want_warm && !want_docker) {
		log_error(
			"status: nothing to look at: set domain or keycloak_url for realms, or mount the Docker socket for services");
		return EX_USAGE;
	}
	if (want_warm) {
		r.warm.failed = status_read_realms(d, &r) < 0;
		r.warm.listed = !r.warm.failed;
	}
	if (want_docker) {
		r.docker.failed = status_read_docker(d, &r) < 0;
		r.docker.listed = !r.docker.failed;
	}
	/* one clock for every line, read after the reads: nothing listed
	 * as live has ended before it was printed */
	r.now = (long long)time(NULL);
	for (i = 0; i < r.n; i++)
		any_expired |= status_ended(&r.items[i], r.now);
	if (cfg->json) {
		if (status_print_json(&r, cfg, stdout) < 0) {
			log_error("status: out of memory");
			code = EX_SOFTWARE;
			goto out_free;
		}
	} else {
		status_print_text(&r, stdout);
	}
	fflush(stdout);
	/* Notes go to stderr: stdout stays the list (or the JSON) alone. */
	status_note(&r.warm);
	status_note(&r.docker);
	code = r.warm.failed || r.docker.failed ? EX_UNAVAILABLE
	       : any_expired			? STATUS_EXIT_EXPIRED
	       : r.warm.partial			? STATUS_EXIT_PARTIAL
						: 0;
out_free:
	free(r.items);
	return code;
}

int status_render(const char *name, const char *realm, size_t realm_len, const char *users,
		  size_t users_len, const char *list, size_t list_len, long long now, bool json,
		  FILE *out)
{
	struct status_report r;
	struct status_item *it;
	struct config *cfg = calloc(1, sizeof(*cfg));
	bool oom = false;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	r.now = now;
	if (!cfg)
		return -1;
	it = realm && status_name_plain(name) ? status_add_realm(&r, name, realm, realm_len, &oom)
					      : NULL;
	if (oom)
		goto out_free;
	if (it && users)
		it->created = status_created_from_users(users, users_len);
	/* a list that is not one adds nothing, as in status_read_kind */
	if (list)
		(void)status_add_listed(&r, "service", list, list_len);
	rc = 0;
	if (json)
		rc = status_print_json(&r, cfg, out);
	else
		status_print_text(&r, out);
out_free:
	free(r.items);
	free(cfg);
	return rc;
}
