/* config.c - settings table, parsing and validation; see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "random.h"

#define REALM_JSON_MAX (1u << 20)

/* The table is laid out by hand: clang-format reflows all of it when one
 * help text grows, which buries each change in a diff of every row. */
/* clang-format off */
const struct setting_info config_settings[SETTING_COUNT] = {
	[SET_DEPS] = { "deps", "list", NULL, true, false,
		       "Comma list of dependencies to bind. Known: keycloak.",
		       .choices = (const char *const[]){ "keycloak", NULL },
		       .what = "dependency kind" },
	[SET_ACTION] = { "action", "string", "run", false, false,
			 "run: bind, run the hook, tear down. up: bind and leave it. down: tear down this run's resources. reap: delete every expired resource drone-deps owns. status: list what drone-deps holds (exit 1 when something expired). warm: deploy or repair the warm Keycloak of domain.",
			 .choices = (const char *const[]){ "run", "up", "down", "reap", ".watch",
							   "status", "warm", NULL } },
	[SET_PARENT] = { "parent", "string", "DRONE_REPO_NAME / CI_REPO_NAME", false, false,
			 "Recipe under test; names the realm (<parent>-<run id>) and the client. [a-z0-9-], at most 56 characters." },
	[SET_DOMAIN] = { "domain", "string", NULL, false, false,
			 "Base domain: warm instance at warm-<dep>.<domain>, cold at <dep[:4]>-<run id>.<domain>.",
			 .check = CHECK_DOMAIN },
	[SET_PARENT_DOMAIN] = { "parent_domain", "string", NULL, false, false,
				"Per-run domain of the app under test, e.g. lasu-0a6fb2.<domain>; gives the run id and the client's redirect URIs.",
				.check = CHECK_DOMAIN },
	[SET_RUN_ID] = { "run_id", "string", "derived", false, false,
			 "Six lowercase hex digits; else from parent_domain; else a hash of repo, build, stage and step." },
	[SET_MODE] = { "mode", "string", "auto", false, false,
		       "auto: warm if it answers, else cold. warm: fail without a warm instance. cold: always deploy.",
		       .choices = (const char *const[]){ "auto", "warm", "cold", NULL } },
	[SET_HOOK] = { "hook", "string", NULL, false, false,
		       "Command run with /bin/sh -c once bound (or the arguments after --)." },
	[SET_HOOK_USER] = { "hook_user", "string", NULL, false, false,
			    "Run the hook as this uid[:gid] (numbers, or a user of /etc/passwd), with no other group: it cannot open a mounted Docker socket or read drone-deps' /proc; env_file is then its own. Not 0, nor one that may open the socket.",
			    .check = CHECK_USER },
	[SET_ENV_FILE] = { "env_file", "path", NULL, false, false,
			   "Also write the binding to this dotenv file, mode 0600, with the run key DEPS_RUN_KEY (only this file holds it). action down reads the run id and the run key back from it, and needs it.",
			   .check = CHECK_WRITABLE_DIR },
	[SET_TTL] = { "ttl", "integer", "900", false, false,
		      "Lease in seconds, 10 to 86400, renewed every ttl/3 while the hook runs.",
		      .min = 10, .max = 86400, .what = "a whole number of seconds" },
	[SET_TIMEOUT] = { "timeout", "integer", "300", false, false,
			  "Seconds allowed to bind (cold deploys included) and to tear down.",
			  .min = 1, .max = 86400, .what = "a whole number of seconds" },
	[SET_KEYCLOAK_URL] = { "keycloak_url", "url", "https://warm-keycloak.<domain>", false,
			       false, "Warm Keycloak URL." },
	[SET_KEYCLOAK_ADMIN_USER] = { "keycloak_admin_user", "string", "admin", false, false,
				      "Master-realm admin user." },
	[SET_KEYCLOAK_ADMIN_PASSWORD] = { "keycloak_admin_password", "string", NULL, false, true,
					  "Master-realm admin password (use from_secret). Unset: read /run/secrets/admin_password from the warm container through the Docker socket." },
	[SET_KEYCLOAK_ADMIN_PASSWORD_FILE] = { "keycloak_admin_password_file", "path", NULL, false,
					       false,
					       "File holding keycloak_admin_password (a swarm secret, a mounted file), read once: no environment holds a copy, as one would where drone-deps wraps the tests (pattern 3). Tests of the same user can still read the file: add hook_user. Not with keycloak_admin_password.",
					       .check = CHECK_READABLE,
					       .file_of = "keycloak_admin_password" },
	[SET_KEYCLOAK_IMAGE] = { "keycloak_image", "string", KEYCLOAK_IMAGE_DEFAULT, false, false,
				 "Image for a cold deploy." },
	[SET_KEYCLOAK_REALM_JSON] = { "keycloak_realm_json", "path", NULL, false, false,
				      "Partial realm (clients, roles, groups, users) applied with partial import after the realm is created.",
				      .check = CHECK_READABLE },
	[SET_COLD_URL] = { "cold_url", "url", "https://<cold domain>", false, false,
			   "Where a cold instance is reached." },
	[SET_COLD_PUBLISH] = { "cold_publish", "integer", NULL, false, false,
			       "Host port on which to publish a cold instance's 8080 (swarm host mode), for sites without a proxy.",
			       .min = 1, .max = 65535, .what = "a port" },
	[SET_CERT_RESOLVER] = { "cert_resolver", "string", "production", false, false,
				"Traefik cert resolver named on the cold instance's router." },
	[SET_KEYCLOAK_SERVICE] = { "keycloak_service", "string", "<warm domain, dots as _>_app",
				   false, false,
				   "Swarm service of the warm instance, whose container holds /run/secrets/admin_password." },
	[SET_NETWORK] = { "network", "string", "proxy", false, false,
			  "Swarm overlay network a cold service joins." },
	[SET_DOCKER_HOST] = { "docker_host", "string", "DOCKER_HOST or unix:///var/run/docker.sock",
			      false, false, "Docker Engine API endpoint (unix:// only)." },
	[SET_CA_CERT] = { "ca_cert", "path", "system bundle", false, false,
			  "PEM file of certificate authorities to trust for HTTPS.",
			  .check = CHECK_READABLE },
	[SET_INSECURE] = { "insecure", "boolean", "false", false, false,
			   "Skip TLS certificate checks. For local tests only." },
	[SET_DEBUG] = { "debug", "boolean", "false", false, false,
			"Log each HTTP call: method, path, status, milliseconds. Never a body or a secret." },
	[SET_JSON] = { "json", "boolean", "false", false, false,
		       "action status: print one JSON document instead of the table." },
	[SET_WARM_PUBLISH] = { "warm_publish", "integer", NULL, false, false,
			       "action warm: host port on which to publish the warm instance's 8080 (swarm host mode) instead of Traefik labels on network.",
			       .min = 1, .max = 65535, .what = "a port" },
	[SET_WARM_CI_CLIENT] = { "warm_ci_client", "boolean", "false", false, false,
				 "action warm: also create the CI client keycloak_client_id once the instance is ready." },
	[SET_WARM_CI_SECRET_FILE] = { "warm_ci_secret_file", "path",
				      "swarm secret <stack>_ci_client_secret", false, false,
				      "action warm: write the CI client's secret to this file instead of a swarm secret (mode 0600, written whole: its last line is the secret); a client made again (its instance's data lost) takes the secret only from a file drone-deps wrote for it." },
	[SET_KEYCLOAK_CLIENT_ID] = { "keycloak_client_id", "string", KEYCLOAK_CLIENT_ID_DEFAULT,
				     false, false,
				     "Confidential client of the master realm whose service account holds only create-realm; used instead of the admin password when keycloak_client_secret is set; action warm creates it with warm_ci_client." },
	[SET_KEYCLOAK_CLIENT_SECRET] = { "keycloak_client_secret", "string", NULL, false, true,
					 "Secret of keycloak_client_id (use from_secret): admin tokens by client_credentials, no admin password needed." },
	[SET_KEYCLOAK_CLIENT_SECRET_FILE] = { "keycloak_client_secret_file", "path", NULL, false,
					      false,
					      "File holding keycloak_client_secret, read once, as keycloak_admin_password_file. Not with keycloak_client_secret.",
					      .check = CHECK_READABLE,
					      .file_of = "keycloak_client_secret" },
	[SET_POOL_SIZE] = { "pool_size", "integer", "2 with keycloak_client_secret, else 0", false,
			    false,
			    "Spare realms kept ready per parent (<parent>-spare-<k>, 0 to 32): a bind claims one instead of creating a realm; the hook's run makes new ones.",
			    .min = 0, .max = POOL_SIZE_MAX },
	[SET_WARM_DB] = { "warm_db", "string", "dev-file", false, false, "action warm: Keycloak's database: dev-file (H2 on a volume, start-dev: a small site) or postgres (a PostgreSQL service <stack>_db next to it, Keycloak in production mode, start --optimized; keycloak_image then defaults to the default image's -postgres tag).",
			  .choices = (const char *const[]){ "dev-file", "postgres", NULL } },
	[SET_WARM_DB_IMAGE] = { "warm_db_image", "string", WARM_DB_IMAGE_DEFAULT, false, false,
				"action warm, warm_db postgres: the PostgreSQL image (built on the node by tools/postgres-image.sh; never pulled)." },
	[SET_WARM_REPLICAS] = { "warm_replicas", "integer", "1", false, false,
				"action warm: Keycloak tasks (1 to 9); more than 1 needs warm_db postgres and Traefik (not warm_publish): they cluster over the database.",
				.min = 1, .max = WARM_REPLICAS_MAX },
	[SET_POOL_SCOPE] = { "pool_scope", "string", "parent", false, false,
			     "parent: pool_size spares per parent. instance: pool_size spares for the whole warm instance (drone-deps-pool-spare-<k>), claimed by any parent.",
			     .choices = (const char *const[]){ "parent", "instance", NULL } },
};
/* clang-format on */

static int fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	/* Values are quoted into the message: a newline in one must not
	 * start a second, forged log line. */
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

const char *config_env(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return (*envp)[n + 1] ? *envp + n + 1 : NULL;
	return NULL;
}

static void env_name(const char *setting, char *out, size_t outsz)
{
	size_t i, n = strlen(setting);

	snprintf(out, outsz, "PLUGIN_");
	for (i = 0; i < n && 7 + i + 1 < outsz; i++)
		out[7 + i] = (char)toupper((unsigned char)setting[i]);
	out[7 + (i < n ? i : n)] = '\0';
}

/* Whether c separates words in a setting's name: Drone upper-cases a
 * setting's key and passes it as it is, so `keycloak-client-secret`
 * arrives as PLUGIN_KEYCLOAK-CLIENT-SECRET; Woodpecker turns '-' and '.'
 * into '_'. */
static bool is_name_separator(char c)
{
	return c == '_' || c == '-' || c == '.';
}

/* The setting a variable name spells, ignoring case and separators, or
 * -1. *exact: the name is PLUGIN_<NAME> as drone-deps reads it. name need
 * not be terminated: n is its length. */
static int setting_by_env_name(const char *name, size_t n, bool *exact)
{
	int i;

	*exact = false;
	if (n < 7 || strncasecmp(name, "PLUGIN_", 7) != 0)
		return -1;
	for (i = 0; i < SETTING_COUNT; i++) {
		const char *s = config_settings[i].name;
		size_t a = 7;
		bool same = strncmp(name, "PLUGIN_", 7) == 0;

		for (;;) {
			while (a < n && is_name_separator(name[a]))
				a++;
			while (*s && is_name_separator(*s))
				s++;
			if (a == n || !*s)
				break;
			if (toupper((unsigned char)name[a]) != toupper((unsigned char)*s))
				break;
			a++;
			s++;
		}
		if (a != n || *s)
			continue;
		/* the same letters: now whether it is spelled as we read it */
		{
			char want[64];

			env_name(config_settings[i].name, want, sizeof(want));
			*exact = same && strlen(want) == n && strncmp(name, want, n) == 0;
		}
		return i;
	}
	return -1;
}

bool config_env_is_secret(const char *entry)
{
	const char *eq = strchr(entry, '=');
	bool exact;
	int id;

	if (!eq)
		return false;
	id = setting_by_env_name(entry, (size_t)(eq - entry), &exact);
	return id >= 0 && config_settings[id].secret;
}

/* A variable that spells a setting otherwise than PLUGIN_<NAME> would be
 * ignored, and, for a secret, handed to the hook: refused instead. The
 * message names the variable, never its value. */
static int config_check_spellings(char **envp, char *err, size_t errsz)
{
	for (; envp && *envp; envp++) {
		const char *eq = strchr(*envp, '=');
		char want[64];
		bool exact;
		int id;

		if (!eq || !eq[1])
			continue; /* empty counts as unset, as for any setting */
		id = setting_by_env_name(*envp, (size_t)(eq - *envp), &exact);
		if (id < 0 || exact)
			continue;
		env_name(config_settings[id].name, want, sizeof(want));
		return fail(
			err, errsz,
			"%s: given as %.*s, which drone-deps does not read: write the setting as %s (the variable %s)",
			config_settings[id].name, (int)(eq - *envp), *envp,
			config_settings[id].name, want);
	}
	return 0;
}

void config_wipe_secrets(char **envp)
{
	for (; envp && *envp; envp++) {
		char *eq = strchr(*envp, '=');

		/* The bytes the process was given, which /proc/<pid>/environ
		 * shows: zeroed where they lie, the name left. */
		if (eq && config_env_is_secret(*envp))
			explicit_bzero(eq + 1, strlen(eq + 1));
	}
}

const char *config_action_name(enum action a)
{
	const char *name = config_settings[SET_ACTION].choices[a];

	return name[0] == '.' ? name + 1 : name;
}

/* Matches "--flag-name" against a setting name with '_' spelled '-'. */
static int setting_by_flag(const char *flag, size_t n)
{
	int i;

	for (i = 0; i < SETTING_COUNT; i++) {
		const char *s = config_settings[i].name;
		size_t k;

		if (strlen(s) != n)
			continue;
		for (k = 0; k < n; k++)
			if (!(flag[k] == s[k] || (flag[k] == '-' && s[k] == '_')))
				break;
		if (k == n)
			return i;
	}
	return -1;
}

static int set_value(struct config *cfg, int id, const char *v)
{
	char *copy = NULL;

	if (v && *v) {
		copy = strdup(v);
		if (!copy)
			return -1;
	}
	if (cfg->value[id]) {
		explicit_bzero(cfg->value[id], strlen(cfg->value[id]));
		free(cfg->value[id]);
	}
	cfg->value[id] = copy;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!v) {
		*out = false;
		return 0;
	}
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	return -1;
}

static int parse_long(const char *v, long lo, long hi, long *out);

/* action warm's database and Keycloak tasks. 0, or -1 with err set. */
static int parse_warm_db(struct config *cfg, char *err, size_t errsz)
{
	char *const *v = cfg->value;
	long n = 1;

	if (!v[SET_WARM_DB] || !strcmp(v[SET_WARM_DB], "dev-file"))
		cfg->warm_postgres = false;
	else if (!strcmp(v[SET_WARM_DB], "postgres"))
		cfg->warm_postgres = true;
	else
		return fail(err, errsz, "warm_db: must be dev-file or postgres (got '%s')",
			    v[SET_WARM_DB]);
	if (v[SET_WARM_REPLICAS] && parse_long(v[SET_WARM_REPLICAS], 1, WARM_REPLICAS_MAX, &n) < 0)
		return fail(err, errsz,
			    "warm_replicas: must be a whole number from 1 to %d (got '%s')",
			    WARM_REPLICAS_MAX, v[SET_WARM_REPLICAS]);
	cfg->warm_replicas = (int)n;
	/* H2 is a file one Keycloak holds; a host-mode port, one task per
	 * node, and the tasks are pinned to this node */
	if (n > 1 && !cfg->warm_postgres)
		return fail(
			err, errsz,
			"warm_replicas: %ld Keycloak tasks need a database outside Keycloak: set warm_db: postgres",
			n);
	if (n > 1 && v[SET_WARM_PUBLISH])
		return fail(
			err, errsz,
			"warm_replicas: %ld Keycloak tasks cannot share warm_publish's host-mode port (one task per node): route them through Traefik on network instead",
			n);
	return 0;
}

static int parse_long(const char *v, long lo, long hi, long *out)
{
	char *end;
	long n;

	if (!v || !isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static bool is_http_url(const char *v)
{
	char host[256];

	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
		return false;
	if (naming_url_host(v, host, sizeof(host)) < 0)
		return false;
	return strpbrk(v, " \t\r\n\"'\\") == NULL;
}

/* hook_user: "uid", "uid:gid" or a user name of /etc/passwd. A uid alone
 * takes its passwd entry's group, else the group of the same number:
 * never 0, whose files (a root:root socket, mode 0660) the hook must not
 * reach. Returns 0, or -1 when v is none of these or names root. */
static int parse_user(const char *v, long *uid, long *gid)
{
	const struct passwd *pw = NULL;
	const char *colon = strchr(v, ':');

	*gid = -1;
	if (isdigit((unsigned char)v[0])) {
		char num[32];

		snprintf(num, sizeof(num), "%.*s", colon ? (int)(colon - v) : (int)strlen(v), v);
		if (parse_long(num, 0, 0x7fffffffL, uid) < 0)
			return -1;
		if (colon && parse_long(colon + 1, 0, 0x7fffffffL, gid) < 0)
			return -1;
		if (!colon)
			pw = getpwuid((uid_t)*uid);
	} else {
		if (colon)
			return -1;
		pw = getpwnam(v);
		if (!pw)
			return -1;
		*uid = (long)pw->pw_uid;
	}
	if (*gid < 0)
		*gid = pw ? (long)pw->pw_gid : *uid;
	return *uid == 0 || *gid == 0 ? -1 : 0;
}

/* Whether uid:gid, with no other group, may connect to the socket at
 * path (connect needs write permission on it): then hook_user would keep
 * nothing from the hook. A path that is not there is not reachable. */
static bool user_may_connect(const char *path, long uid, long gid)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	if ((long)st.st_uid == uid)
		return (st.st_mode & S_IWUSR) != 0;
	if ((long)st.st_gid == gid)
		return (st.st_mode & S_IWGRP) != 0;
	return (st.st_mode & S_IWOTH) != 0;
}

/* user:password@ before the host: the URL is printed and passed to the
 * hook, so it must carry no credentials. */
static bool url_has_userinfo(const char *v)
{
	const char *p = strstr(v, "://");

	p = p ? p + 3 : v;
	return memchr(p, '@', strcspn(p, "/?#")) != NULL;
}

static int copy_url(const char *v, char *out, size_t outsz)
{
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == '/')
		n--;
	if (n + 1 > outsz)
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* Reads the argv flags into cfg->value; collects the hook's argv after
 * "--". */
static int config_parse_flags(struct config *cfg, int argc, char **argv, char *err, size_t errsz)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v;
		size_t n;
		int id;

		if (!strcmp(a, "--")) {
			int k, count = argc - i - 1;

			if (count == 0)
				return fail(err, errsz, "hook: nothing after --");
			cfg->hook_argv = calloc((size_t)count + 1, sizeof(char *));
			if (!cfg->hook_argv)
				return fail(err, errsz, "out of memory");
			for (k = 0; k < count; k++)
				cfg->hook_argv[k] = argv[i + 1 + k];
			return 0;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cfg->show_help = true;
			continue;
		}
		if (!strcmp(a, "--version")) {
			cfg->show_version = true;
			continue;
		}
		if (!strcmp(a, "--plugin-docs")) {
			cfg->show_plugin_docs = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0)
			return fail(err, errsz,
				    "unexpected argument '%s' (a command to run goes after --)", a);
		eq = strchr(a + 2, '=');
		n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		id = setting_by_flag(a + 2, n);
		if (id < 0)
			return fail(err, errsz, "unknown option '%.*s' (see --help)", (int)n + 2,
				    a);
		if (eq) {
			v = eq + 1;
		} else if (!strcmp(config_settings[id].type, "boolean")) {
			v = "true";
		} else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
			/* Never take the next flag as this one's value: it could
			 * be a secret, and would end up quoted in an error. */
			v = argv[++i];
		} else {
			return fail(err, errsz, "%s: --%.*s needs a value",
				    config_settings[id].name, (int)n, a + 2);
		}
		if (set_value(cfg, id, v) < 0)
			return fail(err, errsz, "out of memory");
		if (config_settings[id].secret) {
			/* Overwrite the flag's value in place: /proc/<pid>/cmdline
			 * is readable by others on the host, and by the hook. */
			memset((char *)v, 'x', strlen(v));
		}
	}
	return 0;
}

static int config_read_realm_json(struct config *cfg, char *err, size_t errsz)
{
	const char *path = cfg->value[SET_KEYCLOAK_REALM_JSON];
	struct json j;
	FILE *f;
	size_t n;
	int rc = -1;

	f = fopen(path, "r");
	if (!f)
		return fail(err, errsz, "keycloak_realm_json: cannot read '%s': %s", path,
			    strerror(errno));
	cfg->realm_json = malloc(REALM_JSON_MAX + 1);
	if (!cfg->realm_json) {
		fail(err, errsz, "out of memory");
		goto out_close;
	}
	n = fread(cfg->realm_json, 1, REALM_JSON_MAX + 1, f);
	if (ferror(f)) {
		fail(err, errsz, "keycloak_realm_json: cannot read '%s': %s", path,
		     strerror(errno));
		goto out_close;
	}
	if (n > REALM_JSON_MAX) {
		fail(err, errsz, "keycloak_realm_json: '%s' is larger than %u bytes", path,
		     REALM_JSON_MAX);
		goto out_close;
	}
	cfg->realm_json[n] = '\0';
	if (json_parse(&j, cfg->realm_json, n) < 0 || !json_is_object(&j, 0)) {
		fail(err, errsz, "keycloak_realm_json: '%s' is not a JSON object", path);
		json_free(&j);
		goto out_close;
	}
	json_free(&j);
	rc = 0;

out_close:
	fclose(f);
	return rc;
}

/* action down with env_file and no run_id: the run id the up step wrote
 * there (DEPS_RUN_ID). The up and down steps of one pipeline derive
 * different ids (the step is part of the hash), so the file the up step
 * left in the workspace is what ties them. 0, or -1 when the file has
 * none (then the id is derived as for any step). */
static int config_run_id_from_env_file(const char *path, char out[RUN_ID_LEN + 1])
{
	char line[256];
	FILE *f = fopen(path, "r");
	int rc = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEPS_RUN_ID=", 12) != 0)
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		if (naming_run_id_valid(line + 12)) {
			snprintf(out, RUN_ID_LEN + 1, "%s", line + 12);
			rc = 0;
		}
		break;
	}
	/* the file holds the binding's secrets: none stays in our buffer */
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return rc;
}

/* The run id and the job mark, from settings or the CI's variables. */
static int config_derive_run(struct config *cfg, char **envp, char *err, size_t errsz)
{
	const char *repo, *build, *stage, *step, *step_number;

#define CI_VAR(drone, woodpecker) \
	(config_env(envp, drone) ? config_env(envp, drone) : config_env(envp, woodpecker))
	repo = CI_VAR("DRONE_REPO", "CI_REPO");
	build = CI_VAR("DRONE_BUILD_NUMBER", "CI_PIPELINE_NUMBER");
	stage = CI_VAR("DRONE_STAGE_NUMBER", "CI_WORKFLOW_NUMBER");
	step = CI_VAR("DRONE_STEP_NAME", "CI_STEP_NAME");
	step_number = CI_VAR("DRONE_STEP_NUMBER", "CI_STEP_NUMBER");
#undef CI_VAR

	/* The step is part of the job: two steps of one stage may share a
	 * run id, and must not take each other's live realm for their own. */
	snprintf(cfg->job, sizeof(cfg->job), "%s#%s.%s.%s", repo ? repo : "local",
		 build ? build : "0", stage ? stage : "0",
		 step_number ? step_number
		 : step	     ? step
			     : "0");

	if (cfg->value[SET_RUN_ID]) {
		if (!naming_run_id_valid(cfg->value[SET_RUN_ID]))
			return fail(err, errsz,
				    "run_id: must be six lowercase hex digits (got '%s')",
				    cfg->value[SET_RUN_ID]);
		snprintf(cfg->run_id, sizeof(cfg->run_id), "%s", cfg->value[SET_RUN_ID]);
		return 0;
	}
	if (cfg->action == ACTION_DOWN && cfg->value[SET_ENV_FILE] &&
	    config_run_id_from_env_file(cfg->value[SET_ENV_FILE], cfg->run_id) == 0)
		return 0;
	if (cfg->value[SET_PARENT_DOMAIN] &&
	    naming_run_id_from_domain(cfg->value[SET_PARENT_DOMAIN], cfg->run_id) == 0)
		return 0;
	if (build) {
		const char *parts[] = { repo, build, stage, step };

		naming_run_id_hash(parts, 4, cfg->run_id);
		return 0;
	}
	/* No CI around (a local run): a random id keeps runs apart. */
	if (random_hex(cfg->run_id, RUN_ID_LEN) < 0)
		return fail(err, errsz, "run_id: no randomness available to derive one");
	return 0;
}

/* Index of v among choices (a leading '.' marks an internal choice: it
 * matches without the dot), or -1. n: v's length. */
static int choice_index(const char *const *choices, const char *v, size_t n)
{
	int k;

	for (k = 0; choices[k]; k++) {
		const char *c = choices[k][0] == '.' ? choices[k] + 1 : choices[k];

		if (strlen(c) == n && strncmp(c, v, n) == 0)
			return k;
	}
	return -1;
}

/* "run, up, down or warm": the listed choices, for a message. */
static void choices_text(const char *const *choices, char *out, size_t outsz)
{
	size_t len = 0;
	int k, listed = 0, total = 0;

	for (k = 0; choices[k]; k++)
		total += choices[k][0] != '.';
	out[0] = '\0';
	for (k = 0; choices[k] && len < outsz; k++) {
		if (choices[k][0] == '.')
			continue;
		listed++;
		len += (size_t)snprintf(out + len, outsz - len, "%s%s",
					listed == 1	  ? ""
					: listed == total ? " or "
							  : ", ",
					choices[k]);
	}
}

/* A comma list of choices, each at most once: a bit per choice in *bits. */
static int check_list(const struct setting_info *s, const char *v, long *bits, char *err,
		      size_t errsz)
{
	const char *p = v;
	char known[256];

	*bits = 0;
	for (;;) {
		size_t n = strcspn(p, ",");
		const char *b = p, *e = p + n;
		int k;

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (e == b)
			return fail(err, errsz, "%s: empty item in '%s'", s->name, v);
		k = choice_index(s->choices, b, (size_t)(e - b));
		if (k < 0) {
			choices_text(s->choices, known, sizeof(known));
			return fail(err, errsz, "%s: unknown %s '%.*s' (known: %s)", s->name,
				    s->what ? s->what : "item", (int)(e - b), b, known);
		}
		if (*bits & (1L << k))
			return fail(err, errsz, "%s: %s is listed twice", s->name, s->choices[k]);
		*bits |= 1L << k;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* The folder of a path ("." for a bare name, "/" for a file in /). */
static void dir_of(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, outsz, ".");
	else if (slash == path)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}

/* Checks one setting against its row and parses it into cfg->num[id]. An
 * unset value takes the row's default where that is a value ("900",
 * "false", "run"); other defaults are computed by config_validate. */
static int check_setting(struct config *cfg, int id, char *err, size_t errsz)
{
	const struct setting_info *s = &config_settings[id];
	const char *v = cfg->value[id];
	bool b;

	cfg->num[id] = 0;
	if (!strcmp(s->type, "integer")) {
		if (!v && s->def && parse_long(s->def, s->min, s->max, &cfg->num[id]) == 0)
			return 0;
		if (v && parse_long(v, s->min, s->max, &cfg->num[id]) < 0)
			return fail(err, errsz, "%s: must be %s from %ld to %ld (got '%s')",
				    s->name, s->what ? s->what : "a whole number", s->min, s->max,
				    v);
		return 0;
	}
	if (!strcmp(s->type, "boolean")) {
		if (parse_bool(v, &b) < 0)
			return fail(err, errsz, "%s: must be true or false (got '%s')", s->name, v);
		cfg->num[id] = b;
		return 0;
	}
	if (s->choices && !strcmp(s->type, "list"))
		return v ? check_list(s, v, &cfg->num[id], err, errsz) : 0;
	if (s->choices) {
		if (!v)
			v = s->def;
		cfg->num[id] = v ? choice_index(s->choices, v, strlen(v)) : 0;
		if (cfg->num[id] < 0) {
			char known[256];

			choices_text(s->choices, known, sizeof(known));
			return fail(err, errsz, "%s: must be %s (got '%s')", s->name, known, v);
		}
		return 0;
	}
	if (!v)
		return 0;
	if (!strcmp(s->type, "url")) {
		if (url_has_userinfo(v))
			return fail(
				err, errsz,
				"%s: must not carry a user or password (user:password@host): it is printed and passed to the hook; give credentials as settings",
				s->name);
		if (!is_http_url(v))
			return fail(err, errsz, "%s: must be an http:// or https:// URL (got '%s')",
				    s->name, v);
	}
	if (s->check == CHECK_USER) {
		long uid, gid;

		if (parse_user(v, &uid, &gid) < 0)
			return fail(
				err, errsz,
				"%s: must be uid[:gid] (numbers) or a user of /etc/passwd, and neither 0 (root) (got '%s')",
				s->name, v);
	}
	if (s->check == CHECK_DOMAIN && (strpbrk(v, "/:@ \t\"\\") || v[0] == '.'))
		return fail(err, errsz, "%s: '%s' is not a domain name", s->name, v);
	if (s->check == CHECK_READABLE && access(v, R_OK) != 0)
		return fail(err, errsz, "%s: cannot read '%s': %s", s->name, v, strerror(errno));
	if (s->check == CHECK_WRITABLE_DIR) {
		char dir[512];
		struct stat st;

		dir_of(v, dir, sizeof(dir));
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK) != 0)
			return fail(err, errsz,
				    "%s: cannot write into '%s' (no such writable folder)", s->name,
				    dir);
	}
	return 0;
}

#define SECRET_FILE_MAX 4096

/* A *_file setting: the secret setting it names takes the file's content
 * (one trailing newline or CR LF dropped, as `echo` and editors leave
 * one). Giving both is refused: which one wins would be a guess. */
static int config_read_secret_file(struct config *cfg, int id, char *err, size_t errsz)
{
	const struct setting_info *s = &config_settings[id];
	const char *path = cfg->value[id];
	char buf[SECRET_FILE_MAX + 1];
	int target, rc = -1;
	size_t n;
	FILE *f;

	for (target = 0; target < SETTING_COUNT; target++)
		if (!strcmp(config_settings[target].name, s->file_of))
			break;
	if (target == SETTING_COUNT)
		return fail(err, errsz, "%s: names no setting (internal error)", s->name);
	if (cfg->value[target])
		return fail(err, errsz, "%s: both %s and %s are given; use one", s->name, s->name,
			    s->file_of);
	f = fopen(path, "r");
	if (!f)
		return fail(err, errsz, "%s: cannot read '%s': %s", s->name, path, strerror(errno));
	/* no stdio buffer of its own: the secret is only in buf, wiped below */
	setvbuf(f, NULL, _IONBF, 0);
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		fail(err, errsz, "%s: cannot read '%s': %s", s->name, path, strerror(errno));
		goto out_wipe;
	}
	if (n > SECRET_FILE_MAX) {
		fail(err, errsz, "%s: '%s' is larger than %d bytes", s->name, path,
		     SECRET_FILE_MAX);
		goto out_wipe;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n) {
		fail(err, errsz, "%s: '%s' is empty or holds a NUL byte", s->name, path);
		goto out_wipe;
	}
	if (set_value(cfg, target, buf) < 0) {
		fail(err, errsz, "out of memory");
		goto out_wipe;
	}
	rc = 0;

out_wipe:
	explicit_bzero(buf, sizeof(buf));
	fclose(f);
	return rc;
}

/* Checks each setting and fills the typed fields. Nothing is created
 * before this has passed. First every value against its row of the table,
 * then the rules that tie settings together. */
static int config_validate(struct config *cfg, char **envp, char *err, size_t errsz)
{
	char **v = cfg->value;
	const char *p;
	char host[256];
	int i;

	for (i = 0; i < SETTING_COUNT; i++)
		if (check_setting(cfg, i, err, errsz) < 0)
			return -1;
	for (i = 0; i < SETTING_COUNT; i++)
		if (config_settings[i].file_of && v[i] &&
		    config_read_secret_file(cfg, i, err, errsz) < 0)
			return -1;
	cfg->action = (enum action)cfg->num[SET_ACTION];
	cfg->mode = (enum mode)cfg->num[SET_MODE];
	cfg->ttl = cfg->num[SET_TTL];
	cfg->timeout = cfg->num[SET_TIMEOUT];
	cfg->cold_publish = (int)cfg->num[SET_COLD_PUBLISH];
	cfg->warm_publish = (int)cfg->num[SET_WARM_PUBLISH];
	cfg->insecure = cfg->num[SET_INSECURE];
	cfg->debug = cfg->num[SET_DEBUG];
	cfg->json = cfg->num[SET_JSON];
	cfg->warm_ci_client = cfg->num[SET_WARM_CI_CLIENT];
	cfg->pool_size = v[SET_POOL_SIZE]		 ? (int)cfg->num[SET_POOL_SIZE]
			 : v[SET_KEYCLOAK_CLIENT_SECRET] ? POOL_SIZE_CLIENT_DEFAULT
							 : 0;
	cfg->pool_scope = (enum pool_scope)cfg->num[SET_POOL_SCOPE];

	/* action warm deploys the warm Keycloak itself: it needs the domain
	 * that names it, and nothing of a run */
	if (cfg->action == ACTION_WARM) {
		if (!v[SET_DOMAIN])
			return fail(
				err, errsz,
				"domain: required for action warm (the instance is warm-keycloak.<domain>)");
		if (!v[SET_DEPS] && (set_value(cfg, SET_DEPS, "keycloak") < 0 ||
				     check_setting(cfg, SET_DEPS, err, errsz) < 0))
			return fail(err, errsz, "out of memory");
		if (parse_warm_db(cfg, err, errsz) < 0)
			return -1;
	}
	for (i = 0; i < SETTING_COUNT; i++)
		if (config_settings[i].required && !v[i])
			return fail(err, errsz, "%s: required (e.g. %s: %s)",
				    config_settings[i].name, config_settings[i].name,
				    config_settings[i].choices ? config_settings[i].choices[0]
							       : "...");
	cfg->want_keycloak = cfg->num[SET_DEPS] & 1;

	/* parent: explicit settings must already be a valid name; a repo
	 * name from the CI is normalised first */
	if (v[SET_PARENT]) {
		if (strlen(v[SET_PARENT]) > PARENT_MAX)
			return fail(
				err, errsz,
				"parent: '%s' is %zu characters, at most %d: the realm <parent>-<run_id> must fit the 63 characters of a DNS label and of swarm names; shorten parent",
				v[SET_PARENT], strlen(v[SET_PARENT]), PARENT_MAX);
		if (!naming_parent_valid(v[SET_PARENT]))
			return fail(
				err, errsz,
				"parent: '%s' cannot name a realm: use 1 to %d of [a-z0-9-], not starting or ending with '-'",
				v[SET_PARENT], PARENT_MAX);
		snprintf(cfg->parent, sizeof(cfg->parent), "%s", v[SET_PARENT]);
	} else {
		const char *repo = config_env(envp, "DRONE_REPO_NAME");

		if (!repo)
			repo = config_env(envp, "CI_REPO_NAME");
		if (repo && strlen(repo) > PARENT_MAX) {
			return fail(
				err, errsz,
				"parent: the repository name '%s' is %zu characters, at most %d make a realm <parent>-<run_id> within the 63 characters of a DNS label and of swarm names; set parent to a shorter name",
				repo, strlen(repo), PARENT_MAX);
		} else if (repo) {
			if (naming_parent_from_repo(repo, cfg->parent, sizeof(cfg->parent)) < 0 ||
			    !naming_parent_valid(cfg->parent))
				return fail(
					err, errsz,
					"parent: the repository name '%s' cannot name a realm; set parent to 1 to %d of [a-z0-9-]",
					repo, PARENT_MAX);
		} else if (cfg->action != ACTION_REAP && cfg->action != ACTION_STATUS &&
			   cfg->action != ACTION_WARM) {
			return fail(
				err, errsz,
				"parent: not set, and neither DRONE_REPO_NAME nor CI_REPO_NAME is");
		}
	}
	/* a parent of that name would own the instance pool's spare names */
	if (!strcmp(cfg->parent, POOL_INSTANCE))
		return fail(err, errsz,
			    "parent: '%s' names the warm instance's shared pool (" POOL_INSTANCE
			    "-spare-<k>); choose another parent",
			    cfg->parent);

	if (config_derive_run(cfg, envp, err, errsz) < 0)
		return -1;
	if (cfg->parent[0])
		naming_realm(cfg->parent, cfg->run_id, cfg->realm, sizeof(cfg->realm));
	naming_cold_service("keycloak", cfg->run_id, cfg->cold_service, sizeof(cfg->cold_service));

	/* where the warm instance is */
	if (v[SET_KEYCLOAK_URL]) {
		if (copy_url(v[SET_KEYCLOAK_URL], cfg->keycloak_url, sizeof(cfg->keycloak_url)) < 0)
			return fail(err, errsz, "keycloak_url: longer than %zu characters",
				    sizeof(cfg->keycloak_url) - 1);
	} else if (v[SET_DOMAIN]) {
		snprintf(cfg->keycloak_url, sizeof(cfg->keycloak_url), "https://warm-keycloak.%s",
			 v[SET_DOMAIN]);
	} else if (cfg->mode != MODE_COLD && cfg->action != ACTION_WATCH &&
		   cfg->action != ACTION_STATUS) {
		/* status lists services alone without a warm instance */
		return fail(err, errsz, "keycloak_url: not set, and no domain to derive it from");
	}

	/* where a cold instance would be */
	if (v[SET_DOMAIN])
		snprintf(cfg->cold_domain, sizeof(cfg->cold_domain), "%s.%s", cfg->cold_service,
			 v[SET_DOMAIN]);
	if (v[SET_COLD_URL]) {
		if (copy_url(v[SET_COLD_URL], cfg->cold_url, sizeof(cfg->cold_url)) < 0)
			return fail(err, errsz, "cold_url: longer than %zu characters",
				    sizeof(cfg->cold_url) - 1);
	} else if (cfg->cold_domain[0]) {
		snprintf(cfg->cold_url, sizeof(cfg->cold_url), "https://%s", cfg->cold_domain);
	} else if (cfg->mode == MODE_COLD && cfg->action != ACTION_REAP &&
		   cfg->action != ACTION_STATUS) {
		return fail(err, errsz, "cold_url: not set, and no domain to derive it from");
	}

	if (v[SET_KEYCLOAK_SERVICE]) {
		snprintf(cfg->keycloak_service, sizeof(cfg->keycloak_service), "%s",
			 v[SET_KEYCLOAK_SERVICE]);
	} else if (cfg->keycloak_url[0] &&
		   naming_url_host(cfg->keycloak_url, host, sizeof(host)) == 0) {
		naming_stack_service(host, cfg->keycloak_service, sizeof(cfg->keycloak_service));
	}

	/* the Docker API endpoint */
	p = v[SET_DOCKER_HOST] ? v[SET_DOCKER_HOST] : config_env(envp, "DOCKER_HOST");
	if (!p)
		p = "unix:///var/run/docker.sock";
	if (strncmp(p, "unix://", 7) != 0 || !p[7] || strlen(p + 7) >= sizeof(cfg->docker_socket))
		return fail(err, errsz,
			    "docker_host: only unix:// socket paths are supported (got '%s')", p);
	snprintf(cfg->docker_socket, sizeof(cfg->docker_socket), "%s", p + 7);

	if (v[SET_HOOK] && cfg->hook_argv)
		return fail(
			err, errsz,
			"hook: both the hook setting and a command after -- are given; use one");
	if (cfg->action == ACTION_RUN && !v[SET_HOOK] && !cfg->hook_argv)
		return fail(err, errsz,
			    "hook: required for action run (or give a command after --)");
	if (cfg->action != ACTION_RUN && (v[SET_HOOK] || cfg->hook_argv))
		return fail(err, errsz, "hook: only action run runs a hook (action is %s)",
			    config_action_name(cfg->action));
	if (cfg->action == ACTION_UP && !v[SET_ENV_FILE])
		return fail(
			err, errsz,
			"env_file: required with action up: the binding's secrets are never printed");
	cfg->hook_uid = cfg->hook_gid = -1;
	if (v[SET_HOOK_USER]) {
		if (cfg->action != ACTION_RUN)
			return fail(err, errsz,
				    "hook_user: only action run runs a hook (action is %s)",
				    config_action_name(cfg->action));
		(void)parse_user(v[SET_HOOK_USER], &cfg->hook_uid, &cfg->hook_gid); /* checked */
		/* the socket drone-deps uses, and the usual mount point */
		p = user_may_connect(cfg->docker_socket, cfg->hook_uid, cfg->hook_gid)
			    ? cfg->docker_socket
		    : user_may_connect("/var/run/docker.sock", cfg->hook_uid, cfg->hook_gid)
			    ? "/var/run/docker.sock"
			    : NULL;
		if (p)
			return fail(
				err, errsz,
				"hook_user: %ld:%ld may still open the Docker socket %s (its owner, its group, or a socket writable by all): choose a uid and gid that cannot",
				cfg->hook_uid, cfg->hook_gid, p);
	}
	if (v[SET_HOOK]) {
		cfg->hook_argv = calloc(4, sizeof(char *));
		if (!cfg->hook_argv)
			return fail(err, errsz, "out of memory");
		cfg->hook_argv[0] = "/bin/sh";
		cfg->hook_argv[1] = "-c";
		cfg->hook_argv[2] = v[SET_HOOK];
	}

	if (v[SET_KEYCLOAK_REALM_JSON] && config_read_realm_json(cfg, err, errsz) < 0)
		return -1;

	if (!v[SET_KEYCLOAK_ADMIN_USER] && set_value(cfg, SET_KEYCLOAK_ADMIN_USER, "admin") < 0)
		return fail(err, errsz, "out of memory");
	/* The CI client: a secret alone names the default client; an id
	 * alone is a mistake that would silently fall back to the admin
	 * password. The watchdog gets its secret as a file, not a setting. */
	if (v[SET_KEYCLOAK_CLIENT_ID] && !v[SET_KEYCLOAK_CLIENT_SECRET] &&
	    cfg->action != ACTION_WATCH && cfg->action != ACTION_WARM)
		return fail(err, errsz,
			    "keycloak_client_secret: required with keycloak_client_id ('%s')",
			    v[SET_KEYCLOAK_CLIENT_ID]);
	if (!v[SET_KEYCLOAK_CLIENT_ID] &&
	    set_value(cfg, SET_KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_ID_DEFAULT) < 0)
		return fail(err, errsz, "out of memory");
	/* Without a password or a client, the warm password is read from the
	 * warm container: that needs the Docker socket. Cold deploys make
	 * their own. */
	if (!v[SET_KEYCLOAK_ADMIN_PASSWORD] && !v[SET_KEYCLOAK_CLIENT_SECRET] &&
	    cfg->mode != MODE_COLD && cfg->action != ACTION_WATCH && cfg->action != ACTION_WARM &&
	    cfg->keycloak_url[0] && access(cfg->docker_socket, R_OK | W_OK) != 0)
		return fail(
			err, errsz,
			"keycloak_admin_password: not set, and no Docker socket at %s to read it from the warm container",
			cfg->docker_socket);
	return 0;
}

int config_load(struct config *cfg, int argc, char **argv, char **envp, char *err, size_t errsz)
{
	int i;

	memset(cfg, 0, sizeof(*cfg));
	err[0] = '\0';
	for (i = 0; i < SETTING_COUNT; i++) {
		char name[64];

		env_name(config_settings[i].name, name, sizeof(name));
		if (set_value(cfg, i, config_env(envp, name)) < 0)
			return fail(err, errsz, "out of memory");
	}
	if (config_parse_flags(cfg, argc, argv, err, errsz) < 0)
		return -1;
	if (cfg->show_help || cfg->show_version || cfg->show_plugin_docs)
		return 0;
	if (config_check_spellings(envp, err, errsz) < 0)
		return -1;
	return config_validate(cfg, envp, err, errsz);
}

void config_free(struct config *cfg)
{
	int i;

	for (i = 0; i < SETTING_COUNT; i++)
		set_value(cfg, i, NULL);
	free(cfg->realm_json);
	free(cfg->hook_argv);
	cfg->realm_json = NULL;
	cfg->hook_argv = NULL;
}

void config_print_help(FILE *out)
{
	int i;

	fprintf(out,
		"Usage: drone-deps [--setting value ...] [-- command [args ...]]\n"
		"\n"
		"Binds a CI run to the services it depends on (a Keycloak realm per run,\n"
		"on a warm shared instance or a cold one deployed on the swarm), runs the\n"
		"hook with the binding in its environment, and always tears down.\n"
		"\n"
		"Every setting is an environment variable PLUGIN_<NAME> and a flag\n"
		"--<name-with-dashes>; a flag wins. A variable that spells a setting\n"
		"otherwise (PLUGIN_KEYCLOAK-CLIENT-SECRET, other case) is refused. Settings:\n\n");
	for (i = 0; i < SETTING_COUNT; i++) {
		const struct setting_info *s = &config_settings[i];
		char env[64];

		env_name(s->name, env, sizeof(env));
		fprintf(out, "  %-26s %s (%s%s%s)\n      %s\n", s->name, env, s->type,
			s->required ? ", required"
			: s->def    ? ", default: "
				    : "",
			s->required ? ""
			: s->def    ? s->def
				    : "",
			s->help);
		if (s->secret)
			fprintf(out, "      Secret: never logged, never passed to the hook.\n");
	}
	fprintf(out,
		"\nOther flags: --help, --version, --plugin-docs (the settings as a markdown table).\n"
		"Exit codes: the hook's own (128+N if it died of signal N); 64 bad setting;\n"
		"69 a dependency could not be bound; 70 internal error; 73 env_file could\n"
		"not be written; 75 hook succeeded but teardown failed; 128+N drone-deps\n"
		"stopped by signal N. action status: 0 all live, 1 something expired.\n");
}

/* A YAML double-quoted scalar. */
static void yaml_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

void config_print_plugin_docs(FILE *out)
{
	int i;

	/* The front matter is the plugin index's properties list; the table
	 * below it says the same for people reading the file. */
	fprintf(out, "---\n"
		     "title: drone-deps\n"
		     "image: drone-deps\n"
		     "tags: [keycloak, testing, swarm, co-op cloud]\n"
		     "properties:\n");
	for (i = 0; i < SETTING_COUNT; i++) {
		const struct setting_info *st = &config_settings[i];

		fprintf(out, "- name: %s\n  type: %s\n  defaultValue: ", st->name, st->type);
		yaml_string(out, st->def ? st->def : "");
		fprintf(out, "\n  required: %s\n  secret: %s\n  description: ",
			st->required ? "true" : "false", st->secret ? "true" : "false");
		yaml_string(out, st->help);
		fputc('\n', out);
	}
	fprintf(out, "---\n\n"
		     "Gives a CI run the services it depends on (a Keycloak realm per run),\n"
		     "runs the hook with the binding, and always cleans up.\n\n"
		     "| name | type | default | required | secret | description |\n"
		     "|---|---|---|---|---|---|\n");
	for (i = 0; i < SETTING_COUNT; i++) {
		const struct setting_info *st = &config_settings[i];

		fprintf(out, "| `%s` | %s | %s | %s | %s | %s |\n", st->name, st->type,
			st->def ? st->def : "", st->required ? "yes" : "no",
			st->secret ? "yes" : "no", st->help);
	}
}
