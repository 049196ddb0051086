/* binding.c - the DEPS_* binding; see binding.h. */
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "random.h"

/* The hook gets the first BINDING_HOOK_VARS; the run key, last, goes to
 * env_file only: a hook of action run has no `down` to prove itself to,
 * and teardown is the process's own. */
#define BINDING_VARS 11
#define BINDING_HOOK_VARS 10

int binding_init(struct binding *b, const char *run_id, const char *realm, const char *client_id)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->run_id, sizeof(b->run_id), "%s", run_id);
	snprintf(b->realm, sizeof(b->realm), "%s", realm);
	snprintf(b->client_id, sizeof(b->client_id), "%s", client_id);
	snprintf(b->username, sizeof(b->username), "test");
	snprintf(b->email, sizeof(b->email), "test@%s.example.org", realm);
	if (random_alnum(b->client_secret, SECRET_LEN) < 0 ||
	    random_alnum(b->password, PASSWORD_LEN) < 0)
		return -1;
	log_secret_add(b->client_secret);
	log_secret_add(b->password);
	return 0;
}

void binding_set_instance(struct binding *b, const char *mode, const char *url)
{
	snprintf(b->mode, sizeof(b->mode), "%s", mode);
	snprintf(b->url, sizeof(b->url), "%s", url);
	snprintf(b->issuer, sizeof(b->issuer), "%s/realms/%s", url, b->realm);
}

void binding_clear(struct binding *b)
{
	volatile char *p = (volatile char *)b;
	size_t i;

	for (i = 0; i < sizeof(*b); i++)
		p[i] = 0;
}

/* name=value pairs of the binding, in a fixed order. */
static void binding_pairs(const struct binding *b, const char *names[BINDING_VARS],
			  const char *values[BINDING_VARS], bool secret[BINDING_VARS])
{
	static const char *const n[BINDING_VARS] = {
		"DEPS_RUN_ID",
		"DEPS_KEYCLOAK_MODE",
		"DEPS_KEYCLOAK_URL",
		"DEPS_KEYCLOAK_REALM",
		"DEPS_KEYCLOAK_ISSUER",
		"DEPS_KEYCLOAK_CLIENT_ID",
		"DEPS_KEYCLOAK_CLIENT_SECRET",
		"DEPS_KEYCLOAK_USERNAME",
		"DEPS_KEYCLOAK_PASSWORD",
		"DEPS_KEYCLOAK_EMAIL",
		"DEPS_RUN_KEY",
	};
	const char *v[BINDING_VARS] = {
		b->run_id,	  b->mode,     b->url,	    b->realm, b->issuer,  b->client_id,
		b->client_secret, b->username, b->password, b->email, b->run_key,
	};
	int i;

	for (i = 0; i < BINDING_VARS; i++) {
		names[i] = n[i];
		values[i] = v[i];
		secret[i] = (i == 6 || i == 8 || i == 10);
	}
}

char **binding_env(const struct binding *b, char **envp)
{
	const char *names[BINDING_VARS], *values[BINDING_VARS];
	bool secret[BINDING_VARS];
	size_t n = 0, k = 0;
	char **env, **e;
	int i;

	for (e = envp; e && *e; e++)
		n++;
	env = calloc(n + BINDING_HOOK_VARS + 2, sizeof(char *));
	if (!env)
		return NULL;
	binding_pairs(b, names, values, secret);
	/* the binding's own strings first: binding_env_free frees those */
	for (i = 0; i < BINDING_HOOK_VARS; i++) {
		size_t len = strlen(names[i]) + strlen(values[i]) + 2;

		env[k] = malloc(len);
		if (!env[k])
			goto out_fail;
		snprintf(env[k], len, "%s=%s", names[i], values[i]);
		k++;
	}
	for (e = envp; e && *e; e++) {
		if (config_env_is_secret(*e) || strncmp(*e, "DEPS_", 5) == 0)
			continue;
		env[k++] = *e;
	}
	env[k] = NULL;
	return env;

out_fail:
	while (k > 0)
		free(env[--k]);
	free(env);
	return NULL;
}

void binding_env_free(char **env)
{
	int i;

	if (!env)
		return;
	for (i = 0; i < BINDING_HOOK_VARS; i++) {
		volatile char *p = env[i];

		while (p && *p)
			*p++ = 0;
		free(env[i]);
	}
	free(env);
}

int binding_write_env_file(const struct binding *b, const char *path, long uid, long gid)
{
	const char *names[BINDING_VARS], *values[BINDING_VARS];
	bool secret[BINDING_VARS];
	char tmp[1024], iobuf[4096];
	FILE *f;
	int fd, i, saved;

	/* Write a fresh file beside the target and rename it over, so the
	 * mode is 0600 from the first byte whatever was there before. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* The owner through the descriptor, before the file has its name: a
	 * chown by name after the rename follows whatever a step sharing the
	 * workspace has put there meanwhile (a symlink to the Docker socket). */
	if (uid >= 0 && fchown(fd, (uid_t)uid, (gid_t)gid) != 0) {
		saved = errno;
		close(fd);
		goto out_unlink;
	}
	f = fdopen(fd, "w");
	if (!f) {
		saved = errno;
		close(fd);
		goto out_unlink;
	}
	/* stdio's buffer is ours, so the secrets written through it are
	 * wiped once the file is closed */
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	binding_pairs(b, names, values, secret);
	for (i = 0; i < BINDING_VARS; i++)
		if (i < BINDING_HOOK_VARS || values[i][0])
			fprintf(f, "%s=%s\n", names[i], values[i]);
	if (fflush(f) != 0 || fsync(fd) != 0) {
		saved = errno;
		fclose(f);
		goto out_unlink;
	}
	if (fclose(f) != 0) {
		saved = errno;
		goto out_unlink;
	}
	if (rename(tmp, path) != 0) {
		saved = errno;
		goto out_unlink;
	}
	explicit_bzero(iobuf, sizeof(iobuf));
	return 0;

out_unlink:
	explicit_bzero(iobuf, sizeof(iobuf));
	unlink(tmp);
	errno = saved;
	return -1;
}

int binding_read_run_key(const char *path, char key[RUN_KEY_LEN + 1])
{
	char line[256];
	FILE *f = fopen(path, "r");
	int rc = -1;
	size_t n;

	if (!f)
		return -1;
	/* unbuffered: the file holds the binding's secrets, and no stdio
	 * buffer of ours keeps a copy */
	setvbuf(f, NULL, _IONBF, 0);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEPS_RUN_KEY=", 13) != 0)
			continue;
		n = strcspn(line + 13, "\r\n");
		if (n > 0 && n <= RUN_KEY_LEN) {
			memcpy(key, line + 13, n);
			key[n] = '\0';
			log_secret_add(key);
			rc = 0;
		}
		break;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return rc;
}

void binding_print_masked(const struct binding *b, FILE *out)
{
	const char *names[BINDING_VARS], *values[BINDING_VARS];
	bool secret[BINDING_VARS];
	int i;

	binding_pairs(b, names, values, secret);
	for (i = 0; i < BINDING_VARS; i++)
		if (i < BINDING_HOOK_VARS || values[i][0])
			fprintf(out, "%s=%s\n", names[i], secret[i] ? "***" : values[i]);
}
