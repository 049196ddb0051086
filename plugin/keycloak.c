/* keycloak.c - Keycloak admin REST calls; see keycloak.h.
 *
 * Status codes follow Keycloak 26: RealmsAdminResource.importRealm answers
 * 201 with a Location, 409 when the realm exists (ModelDuplicateException);
 * RealmAdminResource.deleteRealm answers 204, or 404 "Realm not found." from
 * the realm lookup. */
#include "keycloak.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "sat.h"

#define PROBE_CONNECT_MS 3000
/* How long the probe retries transient answers: briefly, so a run does
 * not wait on an instance that is not there... */
#define PROBE_MS 8000
/* ...but a Keycloak that took the request and is slow to answer it (a
 * first password login after a start: 7-15 s seen on a loaded 2-core
 * machine; 16 concurrent logins queue behind each other's hashing) is
 * there, and gets this long before mode auto gives up on it. */
#define PROBE_SLOW_MS 60000
/* While it waits that long, a line this often says so. */
#define PROBE_NOTE_MS 5000
/* Renew this long before the token's own expiry, for clock skew and the
 * time a request spends in flight. */
#define TOKEN_MARGIN_MS 5000

int keycloak_init(struct keycloak *kc, const char *url, const char *user, const char *password,
		  const char *ca_cert, bool insecure)
{
	memset(kc, 0, sizeof(*kc));
	if (http_client_init(&kc->http, url) < 0)
		return -1;
	kc->http.ca_cert = ca_cert;
	kc->http.insecure = insecure;
	kc->user = user;
	kc->password = password;
	kc->deadline_ms = http_now_ms() + 30000;
	return 0;
}

void keycloak_use_client(struct keycloak *kc, const char *id, const char *secret)
{
	kc->client_id = id;
	kc->client_secret = secret;
}

long long keycloak_token_expiry(long long now_ms, long long expires_in)
{
	long long life = sat_mul(expires_in, 1000);

	if (life > 2LL * TOKEN_MARGIN_MS)
		life -= TOKEN_MARGIN_MS;
	return sat_add(now_ms, life);
}

static void keycloak_forget_token(struct keycloak *kc)
{
	if (kc->token) {
		explicit_bzero(kc->token, strlen(kc->token));
		free(kc->token);
	}
	kc->token = NULL;
	kc->token_expires_ms = 0;
}

static void keycloak_forget_refresh(struct keycloak *kc);

void keycloak_token_predates(struct keycloak *kc)
{
	/* Measured on 26.4.7: the client's token from before a create is
	 * refused (403) on the new realm; the next call gets a new one (no
	 * hashing: one cheap request) instead of meeting that 403. An admin
	 * password token keeps working: its user holds the admin role. */
	if (kc->client_secret)
		keycloak_forget_token(kc);
}

void keycloak_cleanup(struct keycloak *kc)
{
	keycloak_forget_token(kc);
	keycloak_forget_refresh(kc);
	http_client_cleanup(&kc->http);
}

/* A short description of an error answer: Keycloak's "error",
 * "errorMessage" or "error_description" when the body is JSON. */
static void describe(struct keycloak *kc, const char *what, const struct http_response *resp)
{
	static const char *const keys[] = { "error_description", "errorMessage", "error", NULL };
	char msg[160];

	if (resp->status == 0) {
		snprintf(kc->error, sizeof(kc->error), "%s: %s", what, resp->error);
		return;
	}
	json_error_message(buf_str(&resp->body), resp->body.len, keys, msg, sizeof(msg));
	snprintf(kc->error, sizeof(kc->error), "%s: HTTP %ld%s%s", what, resp->status,
		 msg[0] ? ": " : "", msg);
}

/* Copies the string member key of the token answer into a new buffer
 * sized to the answer (the caller wipes and frees it); NULL when absent.
 * *n is its length. */
static char *token_string(const struct json *j, size_t answer_len, const char *key, int *n)
{
	char *s = malloc(answer_len + 1);

	*n = s ? json_get_string(j, 0, key, s, answer_len + 1) : -1;
	if (s && *n <= 0) {
		explicit_bzero(s, answer_len + 1);
		free(s);
		s = NULL;
	}
	return s;
}

static void keycloak_forget_refresh(struct keycloak *kc)
{
	if (kc->refresh) {
		explicit_bzero(kc->refresh, strlen(kc->refresh));
		free(kc->refresh);
	}
	kc->refresh = NULL;
}

/* now + ms, but never past the bind's deadline. */
static long long keycloak_deadline_within(const struct keycloak *kc, long ms)
{
	long long at = http_now_ms() + ms;

	return at < kc->deadline_ms ? at : kc->deadline_ms;
}

/* Sends a token request (http_send_retry's contract). A probe must not hold
 * a run for long when nothing is there: a short connect timeout, no retry
 * of a refused connection, transient answers retried for PROBE_MS at most.
 * But a request the server took may take its time (PROBE_SLOW_MS, within
 * the bind's timeout): a busy Keycloak is not an absent one, and sending
 * the login again would only queue one more Argon2 hash behind it. That
 * wait prints a line every PROBE_NOTE_MS. */
static int keycloak_send_grant(struct keycloak *kc, struct http_request *req, bool probe,
			       struct http_response *resp)
{
	long long slow;
	int rc;

	if (!probe)
		return http_send_retry(&kc->http, req, kc->deadline_ms, resp);
	kc->http.connect_timeout_ms = PROBE_CONNECT_MS;
	req->probe = true;
	slow = keycloak_deadline_within(kc, PROBE_SLOW_MS);
	kc->http.wait_note_ms = PROBE_NOTE_MS;
	rc = http_send(&kc->http, req, (long)(slow - http_now_ms()), resp);
	kc->http.wait_note_ms = 0;
	if (rc == 0) {
		if (!http_status_is_transient(resp->status))
			return 0;
	} else if (http_error_is_stopped(resp->transport_error) ||
		   http_error_is_timeout(resp->transport_error) ||
		   (http_error_is_unreachable(resp->transport_error) && !resp->sent) ||
		   http_error_is_tls(resp->transport_error)) {
		return -1;
	}
	/* a transient answer, or a connection lost mid-answer: a few retries */
	http_response_free(resp);
	return http_send_retry(&kc->http, req, keycloak_deadline_within(kc, PROBE_MS), resp);
}

/* The form of one token request: the CI client's client_credentials (no
 * password hashing, no session: Keycloak gives no refresh token for it by
 * default, so each renewal is another client_credentials request), or
 * with refresh the admin session's refresh token, or the password grant. */
static int keycloak_grant_form(const struct keycloak *kc, bool refresh, struct buf *form)
{
	if (kc->client_secret)
		return buf_puts(form, "grant_type=client_credentials&client_id=") < 0 ||
				       buf_form_value(form, kc->client_id) < 0 ||
				       buf_puts(form, "&client_secret=") < 0 ||
				       buf_form_value(form, kc->client_secret) < 0
			       ? -1
			       : 0;
	if (refresh)
		return buf_puts(form,
				"grant_type=refresh_token&client_id=admin-cli&refresh_token=") <
					       0 ||
				       buf_form_value(form, kc->refresh) < 0
			       ? -1
			       : 0;
	return buf_puts(form, "grant_type=password&client_id=admin-cli&username=") < 0 ||
			       buf_form_value(form, kc->user) < 0 ||
			       buf_puts(form, "&password=") < 0 ||
			       buf_form_value(form, kc->password) < 0
		       ? -1
		       : 0;
}

int keycloak_take_token(struct keycloak *kc, const char *body, size_t len, bool probe)
{
	struct json j = { 0 };
	long long expires_in = 60;
	char *token = NULL, *refresh_token;
	int rc = KC_ERROR, token_len, refresh_len;

	keycloak_forget_token(kc);
	/* The token cannot be longer than the answer that carries it. */
	token = json_parse(&j, body, len) < 0 ? NULL
					      : token_string(&j, len, "access_token", &token_len);
	if (!token) {
		snprintf(kc->error, sizeof(kc->error),
			 "admin token: HTTP 200 without an access_token (is %s a Keycloak?)",
			 kc->http.base_url);
		rc = probe ? KC_UNREACHABLE : KC_ERROR;
		goto out_free_json;
	}
	if ((size_t)token_len > KC_TOKEN_MAX) {
		/* A Keycloak that answers, with a token too big to use: an
		 * error of its own, never "no warm instance". */
		snprintf(
			kc->error, sizeof(kc->error),
			"admin token: the access token is %d bytes, over the %u MiB cap drone-deps accepts",
			token_len, KC_TOKEN_MAX >> 20);
		rc = KC_ERROR;
		goto out_free_json;
	}
	if (json_get_long(&j, 0, "expires_in", &expires_in) < 0 || expires_in <= 0)
		expires_in = 60;
	kc->token = token;
	token = NULL;
	kc->token_expires_ms = keycloak_token_expiry(http_now_ms(), expires_in);
	/* The session's refresh token: renewals use it, and teardown ends
	 * the session with it (each password login leaves one otherwise). */
	refresh_token = token_string(&j, len, "refresh_token", &refresh_len);
	if (refresh_token) {
		keycloak_forget_refresh(kc);
		kc->refresh = refresh_token;
	}
	rc = KC_OK;

out_free_json:
	json_free(&j);
	if (token) {
		explicit_bzero(token, len + 1);
		free(token);
	}
	return rc;
}

void keycloak_describe(struct keycloak *kc, const char *what, const struct http_response *resp)
{
	describe(kc, what, resp);
}

/* One token request: see keycloak_grant_form. */
static int keycloak_grant(struct keycloak *kc, bool probe, bool refresh)
{
	struct buf form = BUF_INIT;
	struct http_response resp;
	struct http_request req = {
		.method = "POST",
		.path = "/realms/master/protocol/openid-connect/token",
		.content_type = "application/x-www-form-urlencoded",
		/* A token grant has no side effect worth guarding: repeating it
		 * after a dropped connection is safe. */
		.retry = true,
	};
	int rc = KC_ERROR;

	keycloak_forget_token(kc);
	if (keycloak_grant_form(kc, refresh, &form) < 0) {
		snprintf(kc->error, sizeof(kc->error), "admin token: out of memory");
		goto out_free_form;
	}
	req.body = form.data;
	req.body_len = form.len;

	kc->tls_failed = false;
	if (keycloak_send_grant(kc, &req, probe, &resp) < 0) {
		describe(kc, "admin token", &resp);
		kc->tls_failed = http_error_is_tls(resp.transport_error);
		rc = (probe && (http_error_is_unreachable(resp.transport_error) ||
				http_error_is_tls(resp.transport_error)))
			     ? KC_UNREACHABLE
			     : KC_ERROR;
		goto out_free_resp;
	}
	if (resp.status == 401 || resp.status == 400) {
		describe(kc, "admin token", &resp);
		rc = KC_AUTH;
		goto out_free_resp;
	}
	if (resp.status != 200) {
		describe(kc, "admin token", &resp);
		rc = (probe && (resp.status == 404 || resp.status >= 500)) ? KC_UNREACHABLE
									   : KC_ERROR;
		goto out_free_resp;
	}
	rc = keycloak_take_token(kc, buf_str(&resp.body), resp.body.len, probe);

out_free_resp:
	buf_free_secret(&resp.body);
	kc->http.connect_timeout_ms = 5000;
out_free_form:
	buf_free_secret(&form);
	return rc;
}

int keycloak_login(struct keycloak *kc, bool probe)
{
	if (kc->refresh && !probe) {
		if (keycloak_grant(kc, false, true) == KC_OK)
			return KC_OK;
		log_debug("admin token: the session's refresh was refused; logging in again");
		keycloak_forget_refresh(kc);
	}
	return keycloak_grant(kc, probe, false);
}

int keycloak_logout(struct keycloak *kc)
{
	struct buf form = BUF_INIT;
	struct http_response resp;
	struct http_request req = {
		.method = "POST",
		.path = "/realms/master/protocol/openid-connect/logout",
		.content_type = "application/x-www-form-urlencoded",
		.retry = true, /* ending a session twice is harmless */
	};
	int rc = KC_ERROR;

	if (!kc->refresh)
		return KC_OK;
	if (buf_puts(&form, "client_id=admin-cli&refresh_token=") < 0 ||
	    buf_form_value(&form, kc->refresh) < 0) {
		snprintf(kc->error, sizeof(kc->error), "logout: out of memory");
		goto out_free;
	}
	req.body = form.data;
	req.body_len = form.len;
	if (http_send_retry(&kc->http, &req, kc->deadline_ms, &resp) < 0 ||
	    (resp.status != 204 && resp.status != 200))
		describe(kc, "logout", &resp);
	else
		rc = KC_OK;
	http_response_free(&resp);
	keycloak_forget_refresh(kc);
out_free:
	buf_free_secret(&form);
	return rc;
}

/* One admin call: a fresh token when the current one is about to expire,
 * and one renewal plus repeat on 401. Returns 0 with resp filled (any
 * status) or -1 (kc->error set; resp freed). */
static int keycloak_admin(struct keycloak *kc, const char *what, struct http_request *req,
			  struct http_response *resp)
{
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (!kc->token || http_now_ms() >= kc->token_expires_ms) {
			int rc = keycloak_login(kc, false);

			if (rc != KC_OK) {
				memset(resp, 0, sizeof(*resp));
				return -1;
			}
		}
		req->bearer = kc->token;
		if (http_send_retry(&kc->http, req, kc->deadline_ms, resp) < 0) {
			describe(kc, what, resp);
			http_response_free(resp);
			return -1;
		}
		/* The CI client's rights on a realm are roles its token
		 * carries, issued before a realm it made since: a 403 may be
		 * that, and is worth one renewal too. */
		if (!(resp->status == 401 || (resp->status == 403 && kc->client_secret)) ||
		    attempt == 1)
			return 0;
		log_debug("%s: token refused (%ld), renewing it once", what, resp->status);
		http_response_free(resp);
		keycloak_forget_token(kc);
	}
	return 0;
}

int keycloak_call(struct keycloak *kc, const char *what, const char *method, const char *path,
		  const char *body, size_t len, bool retry, long ok_status, struct buf *out)
{
	struct http_request req = {
		.method = method,
		.path = path,
		.content_type = body ? "application/json" : NULL,
		.body = body,
		.body_len = len,
		.retry = retry,
	};
	struct http_response resp;
	int rc;

	if (keycloak_admin(kc, what, &req, &resp) < 0)
		return KC_ERROR;
	if (resp.status == ok_status) {
		rc = KC_OK;
		if (out) {
			buf_free_secret(out);
			*out = resp.body; /* hand the body over */
			resp.body = (struct buf)BUF_INIT;
		}
	} else {
		describe(kc, what, &resp);
		rc = resp.status == 409				? KC_CONFLICT
		     : resp.status == 404			? KC_NOT_FOUND
		     : resp.status == 401 || resp.status == 403 ? KC_AUTH
								: KC_ERROR;
	}
	http_response_free(&resp);
	return rc;
}

int keycloak_ready(struct keycloak *kc, long timeout_ms)
{
	struct http_request req = { .method = "GET", .path = "/realms/master" };
	struct http_response resp;
	int rc = KC_UNREACHABLE;

	if (http_send(&kc->http, &req, timeout_ms, &resp) == 0 && resp.status == 200)
		rc = KC_OK;
	else
		describe(kc, "readiness", &resp);
	http_response_free(&resp);
	return rc;
}

int keycloak_realm_create(struct keycloak *kc, const char *body, size_t len)
{
	/* Not idempotent in itself, but safe to retry: a retry after a lost
	 * answer meets 409 on our own realm, which the caller recognises by
	 * its lease marks. */
	int rc = keycloak_call(kc, "create realm", "POST", "/admin/realms", body, len, true, 201,
			       NULL);

	/* Keycloak 26.2.4 answered a duplicate realm with 400 "Realm ...
	 * already exists" instead of 409 (keycloak issue 39753). */
	if (rc == KC_ERROR && strstr(kc->error, "HTTP 400") && strstr(kc->error, "already exists"))
		rc = KC_CONFLICT;
	if (rc == KC_OK)
		keycloak_token_predates(kc);
	return rc;
}

int keycloak_realm_get(struct keycloak *kc, const char *realm, struct buf *out)
{
	char path[256];

	snprintf(path, sizeof(path), "/admin/realms/%s", realm);
	return keycloak_call(kc, "read realm", "GET", path, NULL, 0, true, 200, out);
}

int keycloak_realm_update(struct keycloak *kc, const char *realm, const char *body, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "/admin/realms/%s", realm);
	return keycloak_call(kc, "update realm", "PUT", path, body, len, true, 204, NULL);
}

int keycloak_realm_delete(struct keycloak *kc, const char *realm)
{
	char path[256];

	snprintf(path, sizeof(path), "/admin/realms/%s", realm);
	return keycloak_call(kc, "delete realm", "DELETE", path, NULL, 0, true, 204, NULL);
}

int keycloak_realm_list(struct keycloak *kc, struct buf *out)
{
	return keycloak_call(kc, "list realms", "GET", "/admin/realms?briefRepresentation=true",
			     NULL, 0, true, 200, out);
}

int keycloak_partial_import(struct keycloak *kc, const char *realm, const char *body, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "/admin/realms/%s/partialImport", realm);
	return keycloak_call(kc, "partial import", "POST", path, body, len, false, 200, NULL);
}
