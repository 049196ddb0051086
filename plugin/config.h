/* config.h - settings from PLUGIN_* variables and --flags, validated once.
 *
 * One table (config_settings) names every setting, its type, default,
 * whether it is required or secret, and its help text; --help and the
 * plugin documentation are printed from it, so they cannot disagree.
 * config_load() fills one struct config, which main passes by pointer to
 * every module. On a bad setting it returns -1 with a one-line message
 * that starts with the setting's name. */
#ifndef DRONE_DEPS_CONFIG_H
#define DRONE_DEPS_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "binding.h"
#include "naming.h"
#include "sha256.h"

enum setting_id {
	SET_DEPS,
	SET_ACTION,
	SET_PARENT,
	SET_DOMAIN,
	SET_PARENT_DOMAIN,
	SET_RUN_ID,
	SET_MODE,
	SET_HOOK,
	SET_HOOK_USER,
	SET_ENV_FILE,
	SET_TTL,
	SET_TIMEOUT,
	SET_KEYCLOAK_URL,
	SET_KEYCLOAK_ADMIN_USER,
	SET_KEYCLOAK_ADMIN_PASSWORD,
	SET_KEYCLOAK_ADMIN_PASSWORD_FILE,
	SET_KEYCLOAK_IMAGE,
	SET_KEYCLOAK_REALM_JSON,
	SET_COLD_URL,
	SET_COLD_PUBLISH,
	SET_CERT_RESOLVER,
	SET_KEYCLOAK_SERVICE,
	SET_NETWORK,
	SET_DOCKER_HOST,
	SET_CA_CERT,
	SET_INSECURE,
	SET_DEBUG,
	SET_JSON,
	/* action warm */
	SET_KEYCLOAK_CLIENT_ID,
	SET_WARM_PUBLISH,
	SET_WARM_CI_CLIENT,
	SET_WARM_CI_SECRET_FILE,
	SET_KEYCLOAK_CLIENT_SECRET,
	SET_KEYCLOAK_CLIENT_SECRET_FILE,
	SET_POOL_SIZE,
	SET_WARM_DB,
	SET_WARM_DB_IMAGE,
	SET_WARM_REPLICAS,
	SET_POOL_SCOPE,
	SETTING_COUNT
};

/* What a value must be beyond its type. */
enum setting_check {
	CHECK_NONE,
	CHECK_READABLE,	    /* path: a file drone-deps can read */
	CHECK_WRITABLE_DIR, /* path: its folder exists and is writable */
	CHECK_DOMAIN,	    /* a DNS name: no scheme, port, path or user */
	CHECK_USER,	    /* uid[:gid], or a user name of /etc/passwd; not root */
};

/* One row per setting: parsing, validation, --help and docs/plugin.md all
 * read it, so they cannot disagree. The type decides the parse: integer
 * (min to max, into config.num), boolean (into config.num), string or
 * list with choices (the index, or for a list a bit per choice, into
 * config.num), url (http or https, no user info), path (check). A choice
 * spelled ".watch" is accepted as "watch" and listed nowhere (internal).
 * Rules that tie settings together are in config_validate. */
struct setting_info {
	const char *name; /* "keycloak_admin_password": PLUGIN_<UPPER>, --<dashes> */
	const char *type; /* string, list, integer, boolean, path, url */
	const char *def;  /* default as documented (parsed when it is a value), NULL: none */
	bool required;
	bool secret; /* never logged, removed from the hook's environment */
	const char *help;
	long min, max;	  /* integer: the range */
	const char *what; /* integer: "a port", ...; NULL: "a whole number"; list: the item */
	const char *const *choices; /* string, list: allowed values, NULL-terminated */
	enum setting_check check;
	const char *file_of; /* path: the secret setting read from this file instead */
};

extern const struct setting_info config_settings[SETTING_COUNT];

enum action {
	ACTION_RUN,
	ACTION_UP,
	ACTION_DOWN,
	ACTION_REAP,
	ACTION_WATCH,
	ACTION_STATUS,
	ACTION_WARM
};
enum mode { MODE_AUTO, MODE_WARM, MODE_COLD };

#define KEYCLOAK_IMAGE_DEFAULT "quay.io/keycloak/keycloak:26.4.7"
/* action warm with warm_db postgres: Keycloak built for PostgreSQL
 * (tools/keycloak-image.sh with KEYCLOAK_DB=postgres) and the database's
 * image (tools/postgres-image.sh), both made on the node */
#define KEYCLOAK_IMAGE_POSTGRES_DEFAULT KEYCLOAK_IMAGE_DEFAULT "-postgres"
#define WARM_DB_IMAGE_DEFAULT "drone-deps/postgresql:15"
#define KEYCLOAK_CLIENT_ID_DEFAULT "drone-deps-ci"
/* Spares kept by a run that uses the CI client; 0 with the admin password
 * (its runs keep their two requests before the hook unless asked). */
#define POOL_SIZE_CLIENT_DEFAULT 2
#define POOL_SIZE_MAX 32
#define WARM_REPLICAS_MAX 9

/* Whose spares: each parent's own, or the warm instance's, shared by
 * every parent (pool.h). */
enum pool_scope { POOL_SCOPE_PARENT, POOL_SCOPE_INSTANCE };

struct config {
	char *value[SETTING_COUNT]; /* owned copies; NULL: unset */
	long num[SETTING_COUNT];    /* integer, boolean, choice: the parsed value or default */
	enum action action;
	enum mode mode;
	bool want_keycloak;
	char parent[PARENT_MAX + 1];
	char run_id[RUN_ID_LEN + 1];
	char realm[PARENT_MAX + RUN_ID_LEN + 2];
	char job[256];		/* "<repo>#<build>.<stage>.<step>" */
	char keycloak_url[512]; /* warm URL, no trailing '/' */
	char cold_service[64];	/* "keyc-<runid>" */
	char cold_domain[256];	/* "keyc-<runid>.<domain>", "" without domain */
	char cold_url[512];
	char keycloak_service[256]; /* the warm instance's swarm service */
	char docker_socket[256];    /* path of the Docker API socket */
	long ttl;
	long timeout;
	int cold_publish; /* 0: none */
	int pool_size;	  /* spare realms kept per parent (or instance); 0: no pool */
	enum pool_scope pool_scope;
	bool insecure;
	bool debug;
	bool json;	  /* action status: one JSON document */
	char *realm_json; /* keycloak_realm_json's content, or NULL */
	char **hook_argv; /* NULL-terminated; NULL: no hook */
	long hook_uid;	  /* hook_user: the hook's uid and gid; -1: drone-deps' own */
	long hook_gid;
	int warm_publish;    /* action warm: host port, 0: Traefik on network */
	bool warm_ci_client; /* action warm: create the CI client */
	bool warm_postgres;  /* action warm: warm_db postgres, else dev-file */
	int warm_replicas;   /* action warm: Keycloak tasks, 1 to WARM_REPLICAS_MAX */
	bool show_help, show_version, show_plugin_docs;
	/* action run and up: the run key (secret; see lease.h), made before
	 * the bind, and its hash, which the lease holds */
	char run_key[RUN_KEY_LEN + 1];
	char run_key_hash[SHA256_HEX_LEN + 1];
};

/* Reads settings from envp, then argv (flags win). Returns 0, or -1 with
 * a message in err. Owns copies of every value: config_free() releases and
 * wipes them. argv values of secret flags are overwritten in place, so
 * they do not linger in /proc/<pid>/cmdline. */
int config_load(struct config *cfg, int argc, char **argv, char **envp, char *err, size_t errsz);
void config_free(struct config *cfg);

/* Lookup in an environment array, NULL when unset or empty (Drone passes
 * an empty setting as unset). */
const char *config_env(char **envp, const char *name);

/* Whether the variable (a "NAME=value" entry) carries a secret setting,
 * under any spelling of its name (case, '-', '_' or '.' between words):
 * config_load refuses the other spellings, but they are wiped and kept
 * from the hook all the same. */
bool config_env_is_secret(const char *entry);
/* Zeroes the values of secret settings in envp in place, once config_load
 * has copied them: the environment block the process was started with is
 * what /proc/<pid>/environ shows to a hook. (Secret flags are overwritten
 * in argv by config_load itself.) envp must be writable. */
void config_wipe_secrets(char **envp);

void config_print_help(FILE *out);
/* Markdown properties table for the plugin index. */
void config_print_plugin_docs(FILE *out);

const char *config_action_name(enum action a);

#endif
