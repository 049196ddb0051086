/* lease.c - lease marks; see lease.h. */
#include "lease.h"

#include <string.h>

#include "json.h"

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
