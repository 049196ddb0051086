/* lease.h - ownership and expiry marks on the resources drone-deps makes.
 *
 * Realms carry them as Keycloak realm attributes, swarm services as labels,
 * under the same keys: drone-deps.owner, .run, .job, .expires (unix
 * seconds). Only a resource whose owner mark is "drone-deps" is ever
 * deleted by drone-deps. */
#ifndef DRONE_DEPS_LEASE_H
#define DRONE_DEPS_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

#define LEASE_OWNER "drone-deps"
#define LEASE_KEY_OWNER "drone-deps.owner"
#define LEASE_KEY_RUN "drone-deps.run"
#define LEASE_KEY_JOB "drone-deps.job"
#define LEASE_KEY_EXPIRES "drone-deps.expires"
/* On a spare of the pool only: the parent whose spare it is. A spare is
 * claimed, and a spare-shaped name reaped, only when this names the
 * parent of the name (a shared pool would list more parents here). */
#define LEASE_KEY_SPARE "drone-deps.spare"

struct lease {
	bool owned; /* owner mark is LEASE_OWNER */
	char run[16];
	char job[256];
	long long expires; /* unix seconds; 0 when absent or unreadable */
	char spare[64];	   /* LEASE_KEY_SPARE: the parent of a spare, or "" */
};

/* Appends the four marks as JSON members ("k":"v",...) without braces. */
int lease_json_members(struct buf *out, const char *run_id, const char *job, long long expires);
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

#endif
