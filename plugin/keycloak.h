/* keycloak.h - the calls drone-deps makes to Keycloak's admin REST API.
 *
 * One struct keycloak per instance: one reused connection, the master
 * admin's credentials (borrowed) and the current access token (owned).
 * Admin calls renew the token before it expires and, on a 401, renew it
 * once and repeat the call (Keycloak 26 answers an expired or missing
 * bearer with 401 {"error":"HTTP 401 Unauthorized"}). Every call is bounded
 * by kc->deadline_ms; kc->error describes the last failure, never with a
 * secret in it. */
#ifndef DRONE_DEPS_KEYCLOAK_H
#define DRONE_DEPS_KEYCLOAK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"

/* Admin tokens grow with the realms on a server (a master token without
 * lightweight access tokens carries every realm's management roles):
 * any size up to this cap is used. */
#define KC_TOKEN_MAX (1u << 20)

enum kc_result {
	KC_OK = 0,
	KC_UNREACHABLE = -1, /* nothing Keycloak-like answers: no instance */
	KC_AUTH = -2,	     /* the admin credentials were refused */
	KC_CONFLICT = -3,    /* the realm exists already */
	KC_NOT_FOUND = -4,
	KC_ERROR = -5, /* anything else; see kc->error */
};

struct keycloak {
	struct http_client http;
	const char *user;     /* borrowed */
	const char *password; /* borrowed; secret */
	/* With client_secret, tokens come from client_credentials of this
	 * confidential client instead (no refresh token, no session). */
	const char *client_id;	   /* borrowed */
	const char *client_secret; /* borrowed; secret */
	char *token;		   /* owned; secret */
	char *refresh;		   /* owned; secret: the admin session's refresh token */
	long long token_expires_ms;
	long long deadline_ms; /* http_now_ms() clock; bounds every call */
	bool tls_failed;       /* the last login failed the TLS check */
	char error[320];
};

/* Prepares a client for url (no request yet). Returns 0 or -1. */
int keycloak_init(struct keycloak *kc, const char *url, const char *user, const char *password,
		  const char *ca_cert, bool insecure);
void keycloak_cleanup(struct keycloak *kc);
/* Logs in as the confidential client id with secret (both borrowed) from
 * now on, by client_credentials, instead of the admin password. */
void keycloak_use_client(struct keycloak *kc, const char *id, const char *secret);

/* A realm was made or renamed: with the CI client, the current token
 * carries no rights on it yet (they are roles in the token), so the next
 * call gets a new one. */
void keycloak_token_predates(struct keycloak *kc);

/* When a token that lives expires_in seconds (as the server says, any
 * value) should be renewed: a margin before its end, saturated. */
long long keycloak_token_expiry(long long now_ms, long long expires_in);

/* Gets an admin token (password grant, client admin-cli, master realm;
 * or client_credentials of the CI client, see keycloak_use_client).
 * With probe, it is also the liveness check: a short connect timeout, and
 * unreachable, DNS failure, TLS failure, 404 or 5xx return KC_UNREACHABLE.
 * Bad credentials return KC_AUTH. */
int keycloak_login(struct keycloak *kc, bool probe);
/* Reads a 200 token answer (body, len bytes) into kc: access token, its
 * expiry, refresh token. KC_OK; KC_ERROR (KC_UNREACHABLE with probe)
 * without an access_token, KC_ERROR for one over KC_TOKEN_MAX. */
int keycloak_take_token(struct keycloak *kc, const char *body, size_t len, bool probe);
/* Sets kc->error to "what: HTTP status: Keycloak's message" for an error
 * answer (or the transport error), control characters blanked. */
void keycloak_describe(struct keycloak *kc, const char *what, const struct http_response *resp);
/* Ends the admin session the logins made (Keycloak keeps one per password
 * login until it idles out). KC_OK when there is none. */
int keycloak_logout(struct keycloak *kc);

/* GET /realms/master, no credentials: KC_OK when it answers 200 (how a
 * fresh instance says it is ready). */
int keycloak_ready(struct keycloak *kc, long timeout_ms);
/* POST /admin/realms: KC_OK on 201, KC_CONFLICT on 409. */
/* One admin REST call with a valid token (renewed as needed); body is
 * JSON or NULL; retry only what may be sent twice. KC_OK when the answer
 * is ok_status (its body then handed to out, which may be NULL), else a
 * KC_ code with kc->error naming what. */
int keycloak_call(struct keycloak *kc, const char *what, const char *method, const char *path,
		  const char *body, size_t len, bool retry, long ok_status, struct buf *out);

int keycloak_realm_create(struct keycloak *kc, const char *body, size_t len);
/* GET /admin/realms/{realm} into out: KC_OK or KC_NOT_FOUND. */
int keycloak_realm_get(struct keycloak *kc, const char *realm, struct buf *out);
/* PUT /admin/realms/{realm} with a partial representation. */
int keycloak_realm_update(struct keycloak *kc, const char *realm, const char *body, size_t len);
/* DELETE /admin/realms/{realm}: KC_OK on 204, KC_NOT_FOUND on 404. */
int keycloak_realm_delete(struct keycloak *kc, const char *realm);
/* GET /admin/realms?briefRepresentation=true into out. */
int keycloak_realm_list(struct keycloak *kc, struct buf *out);
/* POST /admin/realms/{realm}/partialImport. */
int keycloak_partial_import(struct keycloak *kc, const char *realm, const char *body, size_t len);

#endif
