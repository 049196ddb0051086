/* binding.h - what a run is bound to, as the hook sees it.
 *
 * The DEPS_* variables of README.md ("What the hook gets"), built from one struct
 * binding: into the hook's environment, into an env_file, or printed with
 * the secrets masked. */
#ifndef DRONE_DEPS_BINDING_H
#define DRONE_DEPS_BINDING_H

#include <stdbool.h>
#include <stdio.h>

#define SECRET_LEN 40
#define PASSWORD_LEN 24
/* The run key (DEPS_RUN_KEY): what `down` presents to prove it tears down
 * the run that `up` made. 40 of [A-Za-z0-9], about 238 bits. */
#define RUN_KEY_LEN 40

struct binding {
	char run_id[8];
	char mode[8]; /* "warm" or "cold" */
	char url[512];
	char realm[72];
	char issuer[600];
	char client_id[64];
	char client_secret[SECRET_LEN + 1];
	char username[32];
	char password[PASSWORD_LEN + 1];
	char email[128];
	char run_key[RUN_KEY_LEN + 1]; /* env_file only, never the hook's */
};

/* Generates the client secret and the test user's password and names.
 * Returns 0 or -1 (no entropy). The secrets are registered with the log
 * filter. */
int binding_init(struct binding *b, const char *run_id, const char *realm, const char *client_id);
/* Sets mode and url, and the issuer derived from them. */
void binding_set_instance(struct binding *b, const char *mode, const char *url);
/* Wipes the secrets. */
void binding_clear(struct binding *b);

/* A new environment for the hook: envp without the secret settings (and
 * without stale DEPS_* entries), plus the binding. Strings of the result
 * that come from the binding are owned by it: free with binding_env_free.
 * Returns NULL when out of memory. */
char **binding_env(const struct binding *b, char **envp);
void binding_env_free(char **env);

/* Reads DEPS_RUN_KEY from the dotenv file at path into key (up to
 * RUN_KEY_LEN characters; a longer value is refused). 0, or -1 when the
 * file cannot be read or has no such line. */
int binding_read_run_key(const char *path, char key[RUN_KEY_LEN + 1]);
/* Writes the binding as a dotenv file, created with mode 0600 (an existing
 * file is replaced), owned by uid:gid unless uid is -1. Returns 0, or -1
 * with errno set. */
int binding_write_env_file(const struct binding *b, const char *path, long uid, long gid);
/* Prints the binding, one VAR=value a line, secrets as "***". */
void binding_print_masked(const struct binding *b, FILE *out);

#endif
