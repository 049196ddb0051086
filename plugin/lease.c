/* lease.c - lease marks; see lease.h. */
#include "lease.h"

#include <string.h>

#include "json.h"
#include "log.h"
#include "random.h"

int lease_json_members(struct buf *out, const char *run_id, const char *job, long long expires)
{
	if (buf_puts(out, "\"" LEASE_KEY_OWNER "\":\"" LEASE_OWNER "\",\"" LEASE_KEY_RUN "\":") <
		    0 ||
	    buf_json_string(out, run_id) < 0 || buf_puts(out, ",\"" LEASE_KEY_JOB "\":") < 0 ||
	    buf_json_string(out, job) < 0 ||
	    buf_printf(out, ",\"" LEASE_KEY_EXPIRES "\":\"%lld\"", expires) < 0)
		return -1;
	return 0;
}

int lease_json_guard(struct buf *out, const char *parent, const char *key_hash)
{
	if (buf_puts(out, ",\"" LEASE_KEY_PARENT "\":") < 0 || buf_json_string(out, parent) < 0)
		return -1;
	if (key_hash && key_hash[0] &&
	    (buf_puts(out, ",\"" LEASE_KEY_KEY "\":") < 0 || buf_json_string(out, key_hash) < 0))
		return -1;
	return 0;
}

int lease_key_new(char key[RUN_KEY_LEN + 1], char hash[SHA256_HEX_LEN + 1])
{
	if (random_alnum(key, RUN_KEY_LEN) < 0)
		return -1;
	log_secret_add(key);
	sha256_hex(key, strlen(key), hash);
	return 0;
}

void lease_from_object(const struct json *j, int obj, struct lease *out)
{
	char owner[32];

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j, obj))
		return;
	out->owned = json_get_string(j, obj, LEASE_KEY_OWNER, owner, sizeof(owner)) >= 0 &&
		     strcmp(owner, LEASE_OWNER) == 0;
	if (json_get_string(j, obj, LEASE_KEY_RUN, out->run, sizeof(out->run)) < 0)
		out->run[0] = '\0';
	if (json_get_string(j, obj, LEASE_KEY_JOB, out->job, sizeof(out->job)) < 0)
		out->job[0] = '\0';
	if (json_get_long(j, obj, LEASE_KEY_EXPIRES, &out->expires) < 0)
		out->expires = 0;
	if (json_get_string(j, obj, LEASE_KEY_SPARE, out->spare, sizeof(out->spare)) < 0)
		out->spare[0] = '\0';
	if (json_get_string(j, obj, LEASE_KEY_PARENT, out->parent, sizeof(out->parent)) < 0)
		out->parent[0] = '\0';
	if (json_get_string(j, obj, LEASE_KEY_KEY, out->key_hash, sizeof(out->key_hash)) < 0)
		out->key_hash[0] = '\0';
}

int lease_from_json(const char *text, size_t len, const char *const path[], struct lease *out)
{
	struct json j;
	int idx = 0, i;

	memset(out, 0, sizeof(*out));
	if (json_parse(&j, text, len) < 0) {
		json_free(&j);
		return -1;
	}
	for (i = 0; path[i] && idx >= 0; i++)
		idx = json_object_get(&j, idx, path[i]);
	lease_from_object(&j, idx, out);
	json_free(&j);
	return 0;
}

bool lease_expired(const struct lease *l, long long now)
{
	/* An owned resource with an unreadable expiry counts as expired: it
	 * can only come from a run that broke while writing it. */
	return l->owned && l->expires < now;
}

bool lease_may_replace(const struct lease *l, const char *job, long long now)
{
	return l->owned && (strcmp(l->job, job) == 0 || lease_expired(l, now));
}

/* Compares two hex hashes in time independent of where they differ. */
static bool hash_equal(const char *a, const char *b)
{
	unsigned char diff = 0;
	size_t i;

	if (strlen(a) != SHA256_HEX_LEN || strlen(b) != SHA256_HEX_LEN)
		return false;
	for (i = 0; i < SHA256_HEX_LEN; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

bool lease_may_down(const struct lease *l, const char *run_id, const char *parent,
		    const char *key_hash, const char **why)
{
	*why = !l->owned			    ? "it has no drone-deps owner mark"
	       : strcmp(l->run, run_id) != 0	    ? "its run mark is another run's"
	       : strcmp(l->parent, parent) != 0	    ? "its parent mark is another parent's"
	       : !l->key_hash[0]		    ? "its lease holds no run key"
	       : !hash_equal(l->key_hash, key_hash) ? "the run key does not match its lease"
						    : NULL;
	return *why == NULL;
}
