/* config.c - settings table, parsing and validation; see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "random.h"

#define REALM_JSON_MAX (1u << 20)

const struct setting_info config_settings[SETTING_COUNT] = {
	[SET_DEPS] = { "deps", "list", NULL, true, false,
		       "Comma list of dependencies to bind. Known: keycloak." },
	[SET_ACTION] = { "action", "string", "run", false, false,
			 "run: bind, run the hook, tear down. up: bind and leave it. down: tear down this run's resources. reap: delete every expired resource drone-deps owns. status: list what drone-deps holds (exit 1 when something expired). warm: deploy or repair the warm Keycloak of domain." },
	[SET_PARENT] = { "parent", "string", "DRONE_REPO_NAME / CI_REPO_NAME", false, false,
			 "Recipe under test; names the realm (<parent>-<run id>) and the client. [a-z0-9-], at most 56 characters." },
	[SET_DOMAIN] = { "domain", "string", NULL, false, false,
			 "Base domain: warm instance at warm-<dep>.<domain>, cold at <dep[:4]>-<run id>.<domain>." },
	[SET_PARENT_DOMAIN] = { "parent_domain", "string", NULL, false, false,
				"Per-run domain of the app under test, e.g. lasu-0a6fb2.<domain>; gives the run id and the client's redirect URIs." },
	[SET_RUN_ID] = { "run_id", "string", "derived", false, false,
			 "Six lowercase hex digits; else from parent_domain; else a hash of repo, build, stage and step." },
	[SET_MODE] = { "mode", "string", "auto", false, false,
		       "auto: warm if it answers, else cold. warm: fail without a warm instance. cold: always deploy." },
	[SET_HOOK] = { "hook", "string", NULL, false, false,
		       "Command run with /bin/sh -c once bound (or the arguments after --)." },
	[SET_ENV_FILE] = { "env_file", "path", NULL, false, false,
			   "Also write the binding to this dotenv file, mode 0600. action down reads the run id back from it (the up step's)." },
	[SET_TTL] = { "ttl", "integer", "900", false, false,
		      "Lease in seconds, 10 to 86400, renewed every ttl/3 while the hook runs." },
	[SET_TIMEOUT] = { "timeout", "integer", "300", false, false,
			  "Seconds allowed to bind (cold deploys included) and to tear down." },
	[SET_KEYCLOAK_URL] = { "keycloak_url", "url", "https://warm-keycloak.<domain>", false,
			       false, "Warm Keycloak URL." },
	[SET_KEYCLOAK_ADMIN_USER] = { "keycloak_admin_user", "string", "admin", false, false,
				      "Master-realm admin user." },
	[SET_KEYCLOAK_ADMIN_PASSWORD] = { "keycloak_admin_password", "string", NULL, false, true,
					  "Master-realm admin password (use from_secret). Unset: read /run/secrets/admin_password from the warm container through the Docker socket." },
	[SET_KEYCLOAK_IMAGE] = { "keycloak_image", "string", KEYCLOAK_IMAGE_DEFAULT, false, false,
				 "Image for a cold deploy." },
	[SET_KEYCLOAK_REALM_JSON] = { "keycloak_realm_json", "path", NULL, false, false,
				      "Partial realm (clients, roles, groups, users) applied with partial import after the realm is created." },
	[SET_COLD_URL] = { "cold_url", "url", "https://<cold domain>", false, false,
			   "Where a cold instance is reached." },
	[SET_COLD_PUBLISH] = { "cold_publish", "integer", NULL, false, false,
			       "Host port on which to publish a cold instance's 8080 (swarm host mode), for sites without a proxy." },
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
			  "PEM file of certificate authorities to trust for HTTPS." },
	[SET_INSECURE] = { "insecure", "boolean", "false", false, false,
			   "Skip TLS certificate checks. For local tests only." },
	[SET_DEBUG] = { "debug", "boolean", "false", false, false,
			"Log each HTTP call: method, path, status, milliseconds. Never a body or a secret." },
	[SET_JSON] = { "json", "boolean", "false", false, false,
		       "action status: print one JSON document instead of the table." },
	[SET_WARM_PUBLISH] = { "warm_publish", "integer", NULL, false, false,
			       "action warm: host port on which to publish the warm instance's 8080 (swarm host mode) instead of Traefik labels on network." },
	[SET_WARM_CI_CLIENT] = { "warm_ci_client", "boolean", "false", false, false,
				 "action warm: also create the CI client keycloak_client_id once the instance is ready." },
	[SET_WARM_CI_SECRET_FILE] = { "warm_ci_secret_file", "path",
				      "swarm secret <stack>_ci_client_secret", false, false,
				      "action warm: write the CI client's secret to this file (mode 0600) instead of a swarm secret; a client made again (its instance's data lost) takes the secret already in the file." },
	[SET_KEYCLOAK_CLIENT_ID] = { "keycloak_client_id", "string", KEYCLOAK_CLIENT_ID_DEFAULT,
				     false, false,
				     "Confidential client of the master realm whose service account holds only create-realm; used instead of the admin password when keycloak_client_secret is set; action warm creates it with warm_ci_client." },
	[SET_KEYCLOAK_CLIENT_SECRET] = { "keycloak_client_secret", "string", NULL, false, true,
					 "Secret of keycloak_client_id (use from_secret): admin tokens by client_credentials, no admin password needed." },
	[SET_POOL_SIZE] = { "pool_size", "integer", "2 with keycloak_client_secret, else 0", false,
			    false,
			    "Spare realms kept ready per parent (<parent>-spare-<k>, 0 to 32): a bind claims one instead of creating a realm; the hook's run makes new ones." },
	[SET_WARM_DB] = { "warm_db", "string", "dev-file", false, false,
			  "action warm: Keycloak's database: dev-file (H2 on a volume, start-dev: a small site) or postgres (a PostgreSQL service <stack>_db next to it, Keycloak in production mode, start --optimized; keycloak_image then defaults to " KEYCLOAK_IMAGE_POSTGRES_DEFAULT
			  ")." },
	[SET_WARM_DB_IMAGE] = { "warm_db_image", "string", WARM_DB_IMAGE_DEFAULT, false, false,
				"action warm, warm_db postgres: the PostgreSQL image (built on the node by tools/postgres-image.sh; never pulled)." },
	[SET_WARM_REPLICAS] = { "warm_replicas", "integer", "1", false, false,
				"action warm: Keycloak tasks (1 to 9); more than 1 needs warm_db postgres and Traefik (not warm_publish): they cluster over the database." },
};

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

bool config_env_is_secret(const char *entry)
{
	int i;

	for (i = 0; i < SETTING_COUNT; i++) {
		char name[64];
		size_t n;

		if (!config_settings[i].secret)
			continue;
		env_name(config_settings[i].name, name, sizeof(name));
		n = strlen(name);
		if (strncmp(entry, name, n) == 0 && entry[n] == '=')
			return true;
	}
	return false;
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
	static const char *const names[] = {
		"run", "up", "down", "reap", "watch", "status", "warm"
	};

	return names[a];
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

/* Checks each setting and fills the typed fields. Nothing is created
 * before this has passed. */
static int config_validate(struct config *cfg, char **envp, char *err, size_t errsz)
{
	char **v = cfg->value;
	const char *p;
	char host[256];

	/* action and mode first: they decide what else is needed */
	if (!v[SET_ACTION] || !strcmp(v[SET_ACTION], "run"))
		cfg->action = ACTION_RUN;
	else if (!strcmp(v[SET_ACTION], "up"))
		cfg->action = ACTION_UP;
	else if (!strcmp(v[SET_ACTION], "down"))
		cfg->action = ACTION_DOWN;
	else if (!strcmp(v[SET_ACTION], "reap"))
		cfg->action = ACTION_REAP;
	else if (!strcmp(v[SET_ACTION], "watch"))
		cfg->action = ACTION_WATCH;
	else if (!strcmp(v[SET_ACTION], "status"))
		cfg->action = ACTION_STATUS;
	else if (!strcmp(v[SET_ACTION], "warm"))
		cfg->action = ACTION_WARM;
	else
		return fail(err, errsz,
			    "action: must be run, up, down, reap, status or warm (got '%s')",
			    v[SET_ACTION]);
	/* action warm deploys the warm Keycloak itself: it needs the domain
	 * that names it, and nothing of a run */
	if (cfg->action == ACTION_WARM) {
		long port = 0;

		if (!v[SET_DOMAIN])
			return fail(
				err, errsz,
				"domain: required for action warm (the instance is warm-keycloak.<domain>)");
		if (!v[SET_DEPS] && set_value(cfg, SET_DEPS, "keycloak") < 0)
			return fail(err, errsz, "out of memory");
		if (v[SET_WARM_PUBLISH] && parse_long(v[SET_WARM_PUBLISH], 1, 65535, &port) < 0)
			return fail(err, errsz,
				    "warm_publish: must be a port from 1 to 65535 (got '%s')",
				    v[SET_WARM_PUBLISH]);
		cfg->warm_publish = (int)port;
		if (parse_bool(v[SET_WARM_CI_CLIENT], &cfg->warm_ci_client) < 0)
			return fail(err, errsz, "warm_ci_client: must be true or false (got '%s')",
				    v[SET_WARM_CI_CLIENT]);
		if (parse_warm_db(cfg, err, errsz) < 0)
			return -1;
	}

	if (!v[SET_MODE] || !strcmp(v[SET_MODE], "auto"))
		cfg->mode = MODE_AUTO;
	else if (!strcmp(v[SET_MODE], "warm"))
		cfg->mode = MODE_WARM;
	else if (!strcmp(v[SET_MODE], "cold"))
		cfg->mode = MODE_COLD;
	else
		return fail(err, errsz, "mode: must be auto, warm or cold (got '%s')", v[SET_MODE]);

	/* deps: a comma list; each kind known, none twice */
	if (!v[SET_DEPS])
		return fail(err, errsz, "deps: required (e.g. deps: keycloak)");
	for (p = v[SET_DEPS];;) {
		size_t n = strcspn(p, ",");
		const char *s = p, *e = p + n;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (e - s == 8 && !strncmp(s, "keycloak", 8)) {
			if (cfg->want_keycloak)
				return fail(err, errsz, "deps: keycloak is listed twice");
			cfg->want_keycloak = true;
		} else if (e == s) {
			return fail(err, errsz, "deps: empty item in '%s'", v[SET_DEPS]);
		} else {
			return fail(err, errsz,
				    "deps: unknown dependency kind '%.*s' (known: keycloak)",
				    (int)(e - s), s);
		}
		if (!p[n])
			break;
		p += n + 1;
	}

	if (parse_long(v[SET_TTL] ? v[SET_TTL] : "900", 10, 86400, &cfg->ttl) < 0)
		return fail(err, errsz,
			    "ttl: must be a whole number of seconds from 10 to 86400 (got '%s')",
			    v[SET_TTL]);
	if (parse_long(v[SET_TIMEOUT] ? v[SET_TIMEOUT] : "300", 1, 86400, &cfg->timeout) < 0)
		return fail(err, errsz,
			    "timeout: must be a whole number of seconds from 1 to 86400 (got '%s')",
			    v[SET_TIMEOUT]);
	if (v[SET_COLD_PUBLISH]) {
		long port;

		if (parse_long(v[SET_COLD_PUBLISH], 1, 65535, &port) < 0)
			return fail(err, errsz,
				    "cold_publish: must be a port from 1 to 65535 (got '%s')",
				    v[SET_COLD_PUBLISH]);
		cfg->cold_publish = (int)port;
	}
	if (parse_bool(v[SET_INSECURE], &cfg->insecure) < 0)
		return fail(err, errsz, "insecure: must be true or false (got '%s')",
			    v[SET_INSECURE]);
	if (parse_bool(v[SET_DEBUG], &cfg->debug) < 0)
		return fail(err, errsz, "debug: must be true or false (got '%s')", v[SET_DEBUG]);
	if (parse_bool(v[SET_JSON], &cfg->json) < 0)
		return fail(err, errsz, "json: must be true or false (got '%s')", v[SET_JSON]);

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

	if (config_derive_run(cfg, envp, err, errsz) < 0)
		return -1;
	if (cfg->parent[0])
		naming_realm(cfg->parent, cfg->run_id, cfg->realm, sizeof(cfg->realm));
	naming_cold_service("keycloak", cfg->run_id, cfg->cold_service, sizeof(cfg->cold_service));

	if (v[SET_DOMAIN] && (strpbrk(v[SET_DOMAIN], "/:@ \t") || v[SET_DOMAIN][0] == '.'))
		return fail(err, errsz, "domain: '%s' is not a domain name", v[SET_DOMAIN]);
	if (v[SET_PARENT_DOMAIN] && strpbrk(v[SET_PARENT_DOMAIN], "/:@ \t\"\\"))
		return fail(err, errsz, "parent_domain: '%s' is not a domain name",
			    v[SET_PARENT_DOMAIN]);

	/* where the warm instance is */
	if (v[SET_KEYCLOAK_URL]) {
		if (!is_http_url(v[SET_KEYCLOAK_URL]) ||
		    copy_url(v[SET_KEYCLOAK_URL], cfg->keycloak_url, sizeof(cfg->keycloak_url)) < 0)
			return fail(err, errsz,
				    "keycloak_url: must be an http:// or https:// URL (got '%s')",
				    v[SET_KEYCLOAK_URL]);
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
		if (!is_http_url(v[SET_COLD_URL]) ||
		    copy_url(v[SET_COLD_URL], cfg->cold_url, sizeof(cfg->cold_url)) < 0)
			return fail(err, errsz,
				    "cold_url: must be an http:// or https:// URL (got '%s')",
				    v[SET_COLD_URL]);
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

	if (v[SET_CA_CERT] && access(v[SET_CA_CERT], R_OK) != 0)
		return fail(err, errsz, "ca_cert: cannot read '%s': %s", v[SET_CA_CERT],
			    strerror(errno));

	if (v[SET_ENV_FILE]) {
		char dir[512];
		const char *slash = strrchr(v[SET_ENV_FILE], '/');
		struct stat st;

		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - v[SET_ENV_FILE]) : 1,
			 slash ? v[SET_ENV_FILE] : ".");
		if (slash == v[SET_ENV_FILE])
			snprintf(dir, sizeof(dir), "/");
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK) != 0)
			return fail(err, errsz,
				    "env_file: cannot write into '%s' (no such writable folder)",
				    dir);
	}

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
	if (v[SET_POOL_SIZE]) {
		long n;

		if (parse_long(v[SET_POOL_SIZE], 0, POOL_SIZE_MAX, &n) < 0)
			return fail(err, errsz,
				    "pool_size: must be a whole number from 0 to %d (got '%s')",
				    POOL_SIZE_MAX, v[SET_POOL_SIZE]);
		cfg->pool_size = (int)n;
	} else {
		cfg->pool_size = v[SET_KEYCLOAK_CLIENT_SECRET] ? POOL_SIZE_CLIENT_DEFAULT : 0;
	}
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

	fprintf(out, "Usage: drone-deps [--setting value ...] [-- command [args ...]]\n"
		     "\n"
		     "Binds a CI run to the services it depends on (a Keycloak realm per run,\n"
		     "on a warm shared instance or a cold one deployed on the swarm), runs the\n"
		     "hook with the binding in its environment, and always tears down.\n"
		     "\n"
		     "Every setting is an environment variable PLUGIN_<NAME> and a flag\n"
		     "--<name-with-dashes>; a flag wins. Settings:\n\n");
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
