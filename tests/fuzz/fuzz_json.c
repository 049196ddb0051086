/* fuzz_json.c - libFuzzer target: JSON extraction from server responses.
 *
 * The input is one HTTP response body as Keycloak (or anything answering
 * in its place) might send it. It goes through the functions drone-deps
 * reads such a body with, not copies of them: the token answer of
 * keycloak_login (keycloak_take_token), the error description of every
 * failed call (keycloak_describe), the lease marks of a realm or a swarm
 * service (lease_from_json), and the JSON walk of the realm list
 * (realm_reap) and of Docker's answers.
 *
 * Output buffers are heap blocks of exactly the size passed, so a write
 * one byte past the end is an AddressSanitizer report, not a silent
 * overwrite of a neighbouring stack slot. The input itself is copied into
 * a block of exactly its length, without a NUL: the parser must honour
 * the length it is given.
 *
 * Besides memory safety, the target checks what callers rely on:
 * - a copied string is NUL-terminated, has the returned length, and holds
 *   no NUL inside (json_string_copy promises to refuse \u0000);
 * - json_skip of the root covers every token, and lookups only return
 *   indexes of existing tokens;
 * - a lease is owned only when the owner mark really is "drone-deps";
 * - a token taken is a non-empty string no longer than the answer, and an
 *   answer without one leaves no token; an error description is one line
 *   that fits kc->error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "keycloak.h"
#include "lease.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_json: check failed: %s (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Copies a string member into a block of exactly outsz bytes and checks
 * the result. */
static void get_string(const struct json *j, int obj, const char *key, size_t outsz)
{
	char *out = malloc(outsz);
	int n;

	CHECK(out != NULL);
	n = json_get_string(j, obj, key, out, outsz);
	if (n >= 0) {
		CHECK((size_t)n < outsz);
		CHECK(strlen(out) == (size_t)n);
	}
	free(out);
}

static void check_index(const struct json *j, int idx)
{
	CHECK(idx >= -1 && idx < j->ntok);
}

/* What keycloak_login, describe and docker_describe read from an object. */
static void read_object(const struct json *j, int obj)
{
	static const char *const keys[] = {
		"access_token", "error_description", "errorMessage", "error",
		"message", "realm", "id", "value", "ExitCode", "Running",
	};
	static const size_t sizes[] = { 1, 2, 8, 16, 160, 256, 16384 };
	long long v;
	size_t k, s;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		check_index(j, json_object_get(j, obj, keys[k]));
		for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			get_string(j, obj, keys[k], sizes[s]);
	}
	(void)json_get_long(j, obj, "expires_in", &v);
	(void)json_get_long(j, obj, "ExitCode", &v);
	(void)json_get_long(j, obj, LEASE_KEY_EXPIRES, &v);
}

/* What realm_reap does with the realm list: each element's "realm". */
static void read_array(const struct json *j, int arr)
{
	int n = json_array_len(j, arr), i;

	CHECK(n >= 0);
	CHECK(json_array_get(j, arr, -1) == -1);
	CHECK(json_array_get(j, arr, n) == -1);
	for (i = 0; i < n && i < 4096; i++) {
		int el = json_array_get(j, arr, i);

		CHECK(el > arr && el < j->ntok);
		get_string(j, el, "realm", 256);
		if (json_is_object(j, el))
			read_object(j, el);
	}
}

static void read_lease(const char *text, size_t len, const char *const path[])
{
	struct lease l;
	char owner[64];
	struct json j;
	int root = 0, i;

	if (lease_from_json(text, len, path, &l) < 0)
		return;
	CHECK(strlen(l.run) < sizeof(l.run));
	CHECK(strlen(l.job) < sizeof(l.job));
	if (!l.owned)
		return;
	/* Owned must mean the owner mark decodes to exactly "drone-deps". */
	CHECK(json_parse(&j, text, len) == 0);
	for (i = 0; path[i] && root >= 0; i++)
		root = json_object_get(&j, root, path[i]);
	CHECK(json_get_string(&j, root, LEASE_KEY_OWNER, owner, sizeof(owner)) ==
	      (int)strlen(LEASE_OWNER));
	CHECK(strcmp(owner, LEASE_OWNER) == 0);
	json_free(&j);
}

static struct keycloak kc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* no request is ever sent: only the parse functions are called */
	CHECK(keycloak_init(&kc, "http://127.0.0.1:9", "admin", "pw", NULL, false) == 0);
	return 0;
}

/* keycloak_login's reading of a 200 token answer. */
static void read_token(const char *text, size_t len)
{
	const char *old_refresh = kc.refresh;
	int rc = keycloak_take_token(&kc, text, len, false);

	if (rc == KC_OK) {
		CHECK(kc.token != NULL);
		CHECK(strlen(kc.token) > 0 && strlen(kc.token) <= len);
		CHECK(kc.token_expires_ms > 0);
		/* an answer without a refresh token keeps the session's one */
		if (kc.refresh != old_refresh)
			CHECK(strlen(kc.refresh) <= len);
	} else {
		CHECK(rc == KC_ERROR);
		CHECK(kc.token == NULL);
		CHECK(memchr(kc.error, '\0', sizeof(kc.error)) != NULL);
	}
	CHECK(keycloak_take_token(&kc, text, len, true) == (rc == KC_OK ? KC_OK : KC_UNREACHABLE));
}

/* What every failed call logs: one line, inside kc->error. */
static void read_error(const char *text, size_t len)
{
	struct http_response resp = { .status = 400 };
	const char *p;

	resp.body.data = (char *)text;
	resp.body.len = len;
	keycloak_describe(&kc, "create realm", &resp);
	CHECK(memchr(kc.error, '\0', sizeof(kc.error)) != NULL);
	CHECK(strncmp(kc.error, "create realm: HTTP 400", 22) == 0);
	for (p = kc.error; *p; p++)
		CHECK((unsigned char)*p >= 0x20);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const realm_attributes[] = { "attributes", NULL };
	static const char *const service_labels[] = { "Spec", "Labels", NULL };
	static const char *const none[] = { NULL };
	char *text = malloc(size ? size : 1);
	struct json j;

	CHECK(text != NULL);
	if (size)
		memcpy(text, data, size);
	read_token(text, size);
	read_error(text, size);

	if (json_parse(&j, text, size) == 0) {
		CHECK(j.ntok >= 1);
		CHECK(json_skip(&j, 0) == j.ntok);
		if (json_is_object(&j, 0))
			read_object(&j, 0);
		else if (json_array_len(&j, 0) >= 0)
			read_array(&j, 0);
		else
			get_string(&j, 0, "access_token", 64);
		if (json_is_string(&j, 0)) {
			char out[64];
			int n = json_string_copy(&j, 0, out, sizeof(out));

			if (n >= 0)
				CHECK(strlen(out) == (size_t)n);
		}
		/* lease_from_json parses again: only along the paths this
		 * document has, to keep the target fast. */
		if (json_object_get(&j, 0, "attributes") >= 0)
			read_lease(text, size, realm_attributes);
		if (json_object_get(&j, 0, "Spec") >= 0)
			read_lease(text, size, service_labels);
		if (json_object_get(&j, 0, LEASE_KEY_OWNER) >= 0)
			read_lease(text, size, none);
		json_free(&j);
	} else {
		/* A refused document must answer "absent" to every lookup. */
		CHECK(j.ntok == 0);
		CHECK(json_object_get(&j, 0, "access_token") == -1);
		CHECK(json_array_len(&j, 0) == -1);
		json_free(&j);
		CHECK(lease_from_json(text, size, realm_attributes, &(struct lease){ 0 }) == -1);
	}

	free(text);
	return 0;
}
