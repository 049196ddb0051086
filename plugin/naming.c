/* naming.c - run ids and names; see naming.h. */
#include "naming.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool naming_run_id_valid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != RUN_ID_LEN)
		return false;
	for (i = 0; i < RUN_ID_LEN; i++)
		if (!is_hex(s[i]))
			return false;
	return true;
}

int naming_run_id_from_domain(const char *domain, char out[RUN_ID_LEN + 1])
{
	const char *dot = strchr(domain, '.');
	size_t label = dot ? (size_t)(dot - domain) : strlen(domain);
	const char *id;

	/* at least one character, a dash, then the id */
	if (label < RUN_ID_LEN + 2 || domain[label - RUN_ID_LEN - 1] != '-')
		return -1;
	id = domain + label - RUN_ID_LEN;
	memcpy(out, id, RUN_ID_LEN);
	out[RUN_ID_LEN] = '\0';
	if (!naming_run_id_valid(out)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

void naming_run_id_hash(const char *const parts[], size_t n, char out[RUN_ID_LEN + 1])
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)(parts[i] ? parts[i] : "");

		for (; *p; p++) {
			h ^= *p;
			h *= 1099511628211ULL;
		}
		h ^= '\n';
		h *= 1099511628211ULL;
	}
	snprintf(out, RUN_ID_LEN + 1, "%06x", (unsigned)(h >> 40) & 0xffffffu);
}

bool naming_parent_valid(const char *s)
{
	size_t n, i;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n > PARENT_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return s[0] != '-' && s[n - 1] != '-';
}

int naming_parent_from_repo(const char *repo, char *out, size_t outsz)
{
	size_t i, n = strlen(repo);

	if (n + 1 > outsz)
		return -1;
	for (i = 0; i < n; i++) {
		char c = repo[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (c == '_' || c == '.')
			c = '-';
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

int naming_realm(const char *parent, const char *run_id, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s-%s", parent, run_id);

	if (n < 0 || (size_t)n >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int naming_cold_service(const char *dep, const char *run_id, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%.4s-%s", dep, run_id);

	if (n < 0 || (size_t)n >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int naming_stack_service(const char *domain, char *out, size_t outsz)
{
	size_t n = strlen(domain), i;

	if (n == 0 || n + sizeof("_app") > outsz)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)(domain[i] == '.' ? '_' : domain[i]);
	memcpy(out + n, "_app", sizeof("_app"));
	return 0;
}

int naming_url_host(const char *url, char *out, size_t outsz)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	if (!p)
		return -1;
	p += 3;
	if (*p == '[') { /* IPv6 literal */
		end = strchr(p, ']');
		if (!end)
			return -1;
		p++;
	} else {
		end = p + strcspn(p, ":/?#");
	}
	n = (size_t)(end - p);
	if (n == 0 || n + 1 > outsz)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

bool naming_realm_shape(const char *realm)
{
	size_t n = strlen(realm), i;

	if (n < RUN_ID_LEN + 2 || realm[n - RUN_ID_LEN - 1] != '-')
		return false;
	for (i = n - RUN_ID_LEN; i < n; i++)
		if (!is_hex(realm[i]))
			return false;
	for (i = 0; i < n - RUN_ID_LEN - 1; i++)
		if (!is_lower_alnum(realm[i]) && realm[i] != '-')
			return false;
	return true;
}

int naming_spare(const char *parent, int k, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s-spare-%d", parent, k);

	if (n < 0 || (size_t)n >= outsz || k < 0) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

bool naming_spare_shape(const char *realm)
{
	static const char tag[] = "-spare-";
	const char *end = realm + strlen(realm), *p = end;
	size_t i;

	while (p > realm && p[-1] >= '0' && p[-1] <= '9')
		p--;
	/* one to three digits: k < POOL_SIZE_MAX */
	if (p == end || end - p > 3 || (size_t)(p - realm) < sizeof(tag))
		return false;
	p -= sizeof(tag) - 1;
	if (strncmp(p, tag, sizeof(tag) - 1) != 0)
		return false;
	for (i = 0; realm + i < p; i++)
		if (!is_lower_alnum(realm[i]) && realm[i] != '-')
			return false;
	return true;
}
