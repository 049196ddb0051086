/* lease.h - ownership and expiry marks on the resources drone-deps makes.
 *
 * Realms carry them as Keycloak realm attributes, swarm services as labels,
 * under the same keys: drone-deps.owner, .run, .job, .expires (unix
 * seconds), and on a run's own resources .parent and .key (the SHA-256 of
 * the run key that `up` writes to env_file; the key itself is never
 * stored). Only a resource whose owner mark is "drone-deps" is ever
 * deleted by drone-deps; `down` and the watchdog also need the run, the
 * parent and the key to match (lease_may_down). */
#ifndef DRONE_DEPS_LEASE_H
#define DRONE_DEPS_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "binding.h"
#include "buf.h"
#include "json.h"
#include "naming.h"
#include "sha256.h"

#define LEASE_OWNER "drone-deps"
#define LEASE_KEY_OWNER "drone-deps.owner"
#define LEASE_KEY_RUN "drone-deps.run"
#define LEASE_KEY_JOB "drone-deps.job"
#define LEASE_KEY_EXPIRES "drone-deps.expires"
/* On a spare of the pool only: the parent whose spare it is. A spare is
 * claimed, and a spare-shaped name reaped, only when this names the
 * parent of the name, or POOL_INSTANCE_MARK for the instance's pool. */
#define LEASE_KEY_SPARE "drone-deps.spare"
#define LEASE_KEY_PARENT "drone-deps.parent"
#define LEASE_KEY_KEY "drone-deps.key"

struct lease {
	bool owned; /* owner mark is LEASE_OWNER */
	char run[16];
	char job[256];
	long long expires; /* unix seconds; 0 when absent or unreadable */
	char spare[64];	   /* LEASE_KEY_SPARE: the parent of a spare, or "" */
	char parent[PARENT_MAX + 1];
	char key_hash[SHA256_HEX_LEN + 1]; /* "" when absent */
};

/* Appends the four marks as JSON members ("k":"v",...) without braces. */
int lease_json_members(struct buf *out, const char *run_id, const char *job, long long expires);
/* Appends the parent mark and, when key_hash is set, the key mark, each
 * as ,"k":"v" (after lease_json_members). */
int lease_json_guard(struct buf *out, const char *parent, const char *key_hash);
/* Makes a run key and its hash (hex). The key is registered with the log
 * filter. 0, or -1 when the kernel gives no entropy. */
int lease_key_new(char key[RUN_KEY_LEN + 1], char hash[SHA256_HEX_LEN + 1]);
/* Reads the marks from the object `map` (a realm's "attributes" or a
 * service's "Labels") of a JSON document. A missing map gives an unowned
 * lease. Returns 0, or -1 when text is not JSON. */
int lease_from_json(const char *text, size_t len, const char *const path[], struct lease *out);
/* The same from the object obj of a parsed document (a list's item): an
 * unowned lease when obj is not an object. */
void lease_from_object(const struct json *j, int obj, struct lease *out);
bool lease_expired(const struct lease *l, long long now);
/* Whether drone-deps may delete the resource now on behalf of the run
 * (run_id, job): it is ours and either this same job's or expired. */
bool lease_may_replace(const struct lease *l, const char *job, long long now);
/* Whether `down` (or the watchdog) holding key_hash, the hash of the key
 * it was given, may delete the resource of the run (run_id, parent): the
 * owner, run and parent marks match and the lease holds that same key
 * hash. A lease without a key mark is never this. When false, *why says
 * which mark differs. */
bool lease_may_down(const struct lease *l, const char *run_id, const char *parent,
		    const char *key_hash, const char **why);

#endif
