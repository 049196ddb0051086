/* Settings: PLUGIN_* variables, flags, Drone's encoding, defaults and
 * every bad input of README.md ("Settings") (plugin/config.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "../../plugin/config.h"

#define NO_SOCKET "PLUGIN_DOCKER_HOST=unix:///nonexistent/docker.sock"

/* A minimal valid environment. Tests add entries, and override one by
 * putting theirs first: the first of two same-named entries wins. */
#define BASE_ENV                                                                               \
	"PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=lasuite-drive", "PLUGIN_DOMAIN=ci.example.org", \
		"PLUGIN_KEYCLOAK_ADMIN_PASSWORD=s3cret-pw", "PLUGIN_HOOK=true", NO_SOCKET

static int load(struct config *cfg, char **envp, int argc, char **argv, char *err)
{
	char *noargv[] = { "drone-deps", NULL };

	if (!argv) {
		argv = noargv;
		argc = 1;
	}
	return config_load(cfg, argc, argv, envp, err, 512);
}

/* Loads and expects failure whose message starts with the setting. */
static void expect_error(char **envp, int argc, char **argv, const char *setting)
{
	struct config cfg;
	char err[512];
	int rc = load(&cfg, envp, argc, argv, err);

	config_free(&cfg);
	if (rc != -1 || strncmp(err, setting, strlen(setting)) != 0) {
		/* cmocka's TAP output drops fail_msg text: say it on stdout */
		printf("# expected an error starting '%s', got rc %d: '%s'\n", setting, rc,
		       rc ? err : "");
		fail();
	}
}

static void defaults_follow_the_design(void **state)
{
	char *env[] = { BASE_ENV, NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 0, NULL, err), 0);
	assert_int_equal(cfg.action, ACTION_RUN);
	assert_int_equal(cfg.mode, MODE_AUTO);
	assert_int_equal(cfg.ttl, 900);
	assert_int_equal(cfg.timeout, 300);
	assert_string_equal(cfg.keycloak_url, "https://warm-keycloak.ci.example.org");
	assert_string_equal(cfg.value[SET_KEYCLOAK_ADMIN_USER], "admin");
	assert_string_equal(cfg.keycloak_service, "warm-keycloak_ci_example_org_app");
	assert_true(naming_run_id_valid(cfg.run_id));
	assert_memory_equal(cfg.cold_service, "keyc-", 5);
	assert_string_equal(cfg.cold_service + 5, cfg.run_id);
	assert_string_equal(cfg.hook_argv[0], "/bin/sh");
	assert_string_equal(cfg.hook_argv[1], "-c");
	assert_string_equal(cfg.hook_argv[2], "true");
	assert_null(cfg.hook_argv[3]);
	assert_false(cfg.insecure);
	assert_false(cfg.debug);
	config_free(&cfg);
}

static void flags_win_over_the_environment(void **state)
{
	char *env[] = { BASE_ENV, "PLUGIN_TTL=100", "PLUGIN_MODE=cold", NULL };
	char *argv[] = { "drone-deps",
			 "--ttl",
			 "200",
			 "--mode=warm",
			 "--debug",
			 "--keycloak-url",
			 "http://127.0.0.1:8080/",
			 NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 7, argv, err), 0);
	assert_int_equal(cfg.ttl, 200);
	assert_int_equal(cfg.mode, MODE_WARM);
	assert_true(cfg.debug);
	assert_string_equal(cfg.keycloak_url, "http://127.0.0.1:8080");
	config_free(&cfg);
}

static void empty_setting_counts_as_unset(void **state)
{
	char *env[] = { BASE_ENV, "PLUGIN_TTL=", "PLUGIN_MODE=", "PLUGIN_RUN_ID=", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 0, NULL, err), 0);
	assert_int_equal(cfg.ttl, 900);
	assert_int_equal(cfg.mode, MODE_AUTO);
	config_free(&cfg);
}

static void deps_list_arrives_comma_joined(void **state)
{
	char *ok[] = { "PLUGIN_DEPS= keycloak ",
		       "PLUGIN_PARENT=p",
		       "PLUGIN_DOMAIN=d.org",
		       "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
		       "PLUGIN_HOOK=true",
		       NO_SOCKET,
		       NULL };
	char *twice[] = { "PLUGIN_DEPS=keycloak,keycloak", BASE_ENV, NULL };
	char *unknown[] = { "PLUGIN_DEPS=keycloak,postgres", BASE_ENV, NULL };
	char *empty_item[] = { "PLUGIN_DEPS=keycloak,", BASE_ENV, NULL };
	char *missing[] = { "PLUGIN_PARENT=p", "PLUGIN_DOMAIN=d.org", "PLUGIN_HOOK=true",
			    "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, ok, 0, NULL, err), 0);
	assert_true(cfg.want_keycloak);
	config_free(&cfg);
	expect_error(twice, 0, NULL, "deps:");
	expect_error(unknown, 0, NULL, "deps: unknown dependency kind 'postgres'");
	expect_error(empty_item, 0, NULL, "deps:");
	expect_error(missing, 0, NULL, "deps: required");
}

static void run_id_setting_is_validated(void **state)
{
	char *upper[] = { BASE_ENV, "PLUGIN_RUN_ID=0A6FB2", NULL };
	char *shortid[] = { BASE_ENV, "PLUGIN_RUN_ID=0a6fb", NULL };
	char *ok[] = { BASE_ENV, "PLUGIN_RUN_ID=0a6fb2", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(upper, 0, NULL, "run_id:");
	expect_error(shortid, 0, NULL, "run_id:");
	assert_int_equal(load(&cfg, ok, 0, NULL, err), 0);
	assert_string_equal(cfg.run_id, "0a6fb2");
	assert_string_equal(cfg.realm, "lasuite-drive-0a6fb2");
	assert_string_equal(cfg.cold_service, "keyc-0a6fb2");
	assert_string_equal(cfg.cold_url, "https://keyc-0a6fb2.ci.example.org");
	config_free(&cfg);
}

static void run_id_derivation_order(void **state)
{
	char *from_domain[] = { BASE_ENV, "PLUGIN_PARENT_DOMAIN=lasu-0a6fb2.ci.example.org",
				"DRONE_BUILD_NUMBER=7", NULL };
	char *from_ci_a[] = { BASE_ENV,
			      "DRONE_REPO=coop/lasuite",
			      "DRONE_BUILD_NUMBER=7",
			      "DRONE_STAGE_NUMBER=1",
			      "DRONE_STEP_NAME=deps",
			      NULL };
	char *from_ci_b[] = { BASE_ENV,
			      "DRONE_REPO=coop/lasuite",
			      "DRONE_BUILD_NUMBER=7",
			      "DRONE_STAGE_NUMBER=2",
			      "DRONE_STEP_NAME=deps",
			      NULL };
	char *woodpecker[] = { BASE_ENV,
			       "CI_REPO=coop/lasuite",
			       "CI_PIPELINE_NUMBER=7",
			       "CI_WORKFLOW_NUMBER=1",
			       "CI_STEP_NAME=deps",
			       NULL };
	struct config a, b, c;
	char err[512];

	(void)state;
	assert_int_equal(load(&a, from_domain, 0, NULL, err), 0);
	assert_string_equal(a.run_id, "0a6fb2");
	config_free(&a);

	assert_int_equal(load(&a, from_ci_a, 0, NULL, err), 0);
	assert_int_equal(load(&b, from_ci_b, 0, NULL, err), 0);
	assert_int_equal(load(&c, woodpecker, 0, NULL, err), 0);
	assert_string_not_equal(a.run_id, b.run_id);
	/* Woodpecker's variables name the same run: the same id */
	assert_string_equal(a.run_id, c.run_id);
	assert_string_equal(a.job, "coop/lasuite#7.1.deps");
	assert_string_equal(c.job, "coop/lasuite#7.1.deps");
	config_free(&a);
	config_free(&b);
	config_free(&c);
}

static void local_runs_without_ci_get_random_ids(void **state)
{
	char *env[] = { BASE_ENV, NULL };
	struct config a, b;
	char err[512];

	(void)state;
	assert_int_equal(load(&a, env, 0, NULL, err), 0);
	assert_int_equal(load(&b, env, 0, NULL, err), 0);
	assert_string_not_equal(a.run_id, b.run_id);
	assert_string_equal(a.job, "local#0.0.0");
	config_free(&a);
	config_free(&b);
}

static void parent_defaults_to_the_repo_name(void **state)
{
	char *drone[] = { "PLUGIN_DEPS=keycloak",
			  "PLUGIN_DOMAIN=d.org",
			  "PLUGIN_HOOK=true",
			  "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			  NO_SOCKET,
			  "DRONE_REPO_NAME=LaSuite_Drive",
			  "CI_REPO_NAME=other",
			  NULL };
	char *wood[] = { "PLUGIN_DEPS=keycloak",
			 "PLUGIN_DOMAIN=d.org",
			 "PLUGIN_HOOK=true",
			 "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			 NO_SOCKET,
			 "CI_REPO_NAME=nextcloud",
			 NULL };
	char *none[] = { "PLUGIN_DEPS=keycloak",
			 "PLUGIN_DOMAIN=d.org",
			 "PLUGIN_HOOK=true",
			 "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			 NO_SOCKET,
			 NULL };
	char *bad_repo[] = { "PLUGIN_DEPS=keycloak",
			     "PLUGIN_DOMAIN=d.org",
			     "PLUGIN_HOOK=true",
			     "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			     NO_SOCKET,
			     "DRONE_REPO_NAME=caf\xc3\xa9",
			     NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, drone, 0, NULL, err), 0);
	assert_string_equal(cfg.parent, "lasuite-drive");
	config_free(&cfg);
	assert_int_equal(load(&cfg, wood, 0, NULL, err), 0);
	assert_string_equal(cfg.parent, "nextcloud");
	config_free(&cfg);
	expect_error(none, 0, NULL, "parent:");
	expect_error(bad_repo, 0, NULL, "parent:");
}

static void parent_that_cannot_form_a_realm_is_refused(void **state)
{
	char *upper[] = { "PLUGIN_PARENT=LaSuite", BASE_ENV, NULL };
	char *reserved[] = { "PLUGIN_PARENT=la/suite", BASE_ENV, NULL };
	char *dash[] = { "PLUGIN_PARENT=-x", BASE_ENV, NULL };
	char *longp[] = { "PLUGIN_PARENT=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			  BASE_ENV, NULL };

	(void)state;
	expect_error(upper, 0, NULL, "parent:");
	expect_error(reserved, 0, NULL, "parent:");
	expect_error(dash, 0, NULL, "parent:");
	expect_error(longp, 0, NULL, "parent:");
}

static void numbers_and_booleans_are_checked(void **state)
{
	char *ttl_low[] = { BASE_ENV, "PLUGIN_TTL=9", NULL };
	char *ttl_high[] = { BASE_ENV, "PLUGIN_TTL=86401", NULL };
	char *ttl_word[] = { BASE_ENV, "PLUGIN_TTL=15m", NULL };
	char *ttl_neg[] = { BASE_ENV, "PLUGIN_TTL=-20", NULL };
	char *timeout0[] = { BASE_ENV, "PLUGIN_TIMEOUT=0", NULL };
	char *port[] = { BASE_ENV, "PLUGIN_COLD_PUBLISH=70000", NULL };
	char *insecure[] = { BASE_ENV, "PLUGIN_INSECURE=maybe", NULL };
	char *debug[] = { BASE_ENV, "PLUGIN_DEBUG=2", NULL };
	char *edges[] = { BASE_ENV, "PLUGIN_TTL=10", "PLUGIN_INSECURE=true", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(ttl_low, 0, NULL, "ttl:");
	expect_error(ttl_high, 0, NULL, "ttl:");
	expect_error(ttl_word, 0, NULL, "ttl:");
	expect_error(ttl_neg, 0, NULL, "ttl:");
	expect_error(timeout0, 0, NULL, "timeout:");
	expect_error(port, 0, NULL, "cold_publish:");
	expect_error(insecure, 0, NULL, "insecure:");
	expect_error(debug, 0, NULL, "debug:");
	assert_int_equal(load(&cfg, edges, 0, NULL, err), 0);
	assert_int_equal(cfg.ttl, 10);
	assert_true(cfg.insecure);
	config_free(&cfg);
}

static void urls_must_be_http_or_https(void **state)
{
	char *ftp[] = { BASE_ENV, "PLUGIN_KEYCLOAK_URL=ftp://kc.example.org", NULL };
	char *bare[] = { BASE_ENV, "PLUGIN_KEYCLOAK_URL=kc.example.org", NULL };
	char *nohost[] = { BASE_ENV, "PLUGIN_KEYCLOAK_URL=https://", NULL };
	char *cold[] = { BASE_ENV, "PLUGIN_COLD_URL=file:///etc/passwd", NULL };
	char *nodomain[] = { "PLUGIN_DEPS=keycloak",
			     "PLUGIN_PARENT=p",
			     "PLUGIN_HOOK=true",
			     "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			     NO_SOCKET,
			     NULL };

	(void)state;
	expect_error(ftp, 0, NULL, "keycloak_url:");
	expect_error(bare, 0, NULL, "keycloak_url:");
	expect_error(nohost, 0, NULL, "keycloak_url:");
	expect_error(cold, 0, NULL, "cold_url:");
	expect_error(nodomain, 0, NULL, "keycloak_url:");
}

/* The URLs are printed and passed to the hook: credentials in them are
 * refused, and the message does not repeat them. */
static void urls_with_user_info_are_refused_unechoed(void **state)
{
	static const char *const bad[] = {
		"PLUGIN_KEYCLOAK_URL=https://admin:Url-P4ss@kc.example.org",
		"PLUGIN_KEYCLOAK_URL=http://admin@127.0.0.1:8080/",
		"PLUGIN_COLD_URL=https://u:Url-P4ss@keyc.example.org/x",
	};
	char *ok[] = { "PLUGIN_KEYCLOAK_URL=https://kc.example.org/auth?x=a@b", BASE_ENV, NULL };
	struct config cfg;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *env[] = { (char *)bad[i], BASE_ENV, NULL };
		const char *setting = strstr(bad[i], "COLD") ? "cold_url:" : "keycloak_url:";

		expect_error(env, 0, NULL, setting);
		assert_int_equal(load(&cfg, env, 0, NULL, err), -1);
		assert_null(strstr(err, "P4ss"));
		assert_null(strstr(err, "admin@"));
		config_free(&cfg);
	}
	/* an '@' after the host is not user info */
	assert_int_equal(load(&cfg, ok, 0, NULL, err), 0);
	config_free(&cfg);
}

static void hook_comes_from_one_place(void **state)
{
	char *env[] = { BASE_ENV, NULL };
	char *nohook[] = { "PLUGIN_DEPS=keycloak",
			   "PLUGIN_PARENT=p",
			   "PLUGIN_DOMAIN=d.org",
			   "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			   NO_SOCKET,
			   NULL };
	char *both[] = { "drone-deps", "--", "./tests/run.sh", "-v", NULL };
	char *dashdash[] = { "drone-deps", "--", "./tests/run.sh", "-v", NULL };
	char *up_hook[] = { BASE_ENV, "PLUGIN_ACTION=up", "PLUGIN_ENV_FILE=/tmp/x.env", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(env, 4, both, "hook: both");
	expect_error(nohook, 0, NULL, "hook: required");
	expect_error(up_hook, 0, NULL, "hook:");
	assert_int_equal(load(&cfg, nohook, 4, dashdash, err), 0);
	assert_string_equal(cfg.hook_argv[0], "./tests/run.sh");
	assert_string_equal(cfg.hook_argv[1], "-v");
	assert_null(cfg.hook_argv[2]);
	config_free(&cfg);
}

static void files_and_folders_are_checked_before_anything(void **state)
{
	char *realm_missing[] = { BASE_ENV, "PLUGIN_KEYCLOAK_REALM_JSON=/nonexistent/realm.json",
				  NULL };
	char *realm_bad[] = { BASE_ENV, "PLUGIN_KEYCLOAK_REALM_JSON=/tmp/drone-deps-unit-bad.json",
			      NULL };
	char *realm_array[] = { BASE_ENV,
				"PLUGIN_KEYCLOAK_REALM_JSON=/tmp/drone-deps-unit-array.json",
				NULL };
	char *realm_ok[] = { BASE_ENV, "PLUGIN_KEYCLOAK_REALM_JSON=/tmp/drone-deps-unit-ok.json",
			     NULL };
	char *ca[] = { BASE_ENV, "PLUGIN_CA_CERT=/nonexistent/ca.pem", NULL };
	char *envfile[] = { BASE_ENV, "PLUGIN_ENV_FILE=/nonexistent/dir/deps.env", NULL };
	struct config cfg;
	char err[512];
	FILE *f;

	(void)state;
	f = fopen("/tmp/drone-deps-unit-bad.json", "w");
	fputs("{\"users\": [", f);
	fclose(f);
	f = fopen("/tmp/drone-deps-unit-array.json", "w");
	fputs("[]", f);
	fclose(f);
	f = fopen("/tmp/drone-deps-unit-ok.json", "w");
	fputs("{\"roles\": {\"realm\": [{\"name\": \"editor\"}]}}\n", f);
	fclose(f);
	expect_error(realm_missing, 0, NULL, "keycloak_realm_json: cannot read");
	expect_error(realm_bad, 0, NULL, "keycloak_realm_json:");
	expect_error(realm_array, 0, NULL, "keycloak_realm_json:");
	assert_int_equal(load(&cfg, realm_ok, 0, NULL, err), 0);
	assert_non_null(strstr(cfg.realm_json, "editor"));
	config_free(&cfg);
	expect_error(ca, 0, NULL, "ca_cert:");
	expect_error(envfile, 0, NULL, "env_file:");
	unlink("/tmp/drone-deps-unit-bad.json");
	unlink("/tmp/drone-deps-unit-array.json");
	unlink("/tmp/drone-deps-unit-ok.json");
}

static void missing_password_without_docker_socket_is_refused(void **state)
{
	char *env[] = { "PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=p", "PLUGIN_DOMAIN=d.org",
			"PLUGIN_HOOK=true",	NO_SOCKET,	   NULL };
	char *cold[] = { "PLUGIN_DEPS=keycloak",
			 "PLUGIN_PARENT=p",
			 "PLUGIN_DOMAIN=d.org",
			 "PLUGIN_HOOK=true",
			 "PLUGIN_MODE=cold",
			 NO_SOCKET,
			 NULL };
	char *tcp[] = { "PLUGIN_DOCKER_HOST=tcp://1.2.3.4:2375", BASE_ENV, NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(env, 0, NULL, "keycloak_admin_password:");
	expect_error(tcp, 0, NULL, "docker_host:");
	/* a cold deploy makes its own password */
	assert_int_equal(load(&cfg, cold, 0, NULL, err), 0);
	config_free(&cfg);
}

static void actions_and_modes_are_checked(void **state)
{
	char *action[] = { BASE_ENV, "PLUGIN_ACTION=destroy", NULL };
	char *mode[] = { BASE_ENV, "PLUGIN_MODE=lukewarm", NULL };
	char *up_without_file[] = { "PLUGIN_DEPS=keycloak",
				    "PLUGIN_PARENT=p",
				    "PLUGIN_DOMAIN=d.org",
				    "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
				    NO_SOCKET,
				    "PLUGIN_ACTION=up",
				    NULL };
	char *reap[] = { "PLUGIN_DEPS=keycloak",
			 "PLUGIN_DOMAIN=d.org",
			 "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			 NO_SOCKET,
			 "PLUGIN_ACTION=reap",
			 NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(action, 0, NULL, "action:");
	expect_error(mode, 0, NULL, "mode:");
	expect_error(up_without_file, 0, NULL, "env_file:");
	/* reap needs no parent and no hook */
	assert_int_equal(load(&cfg, reap, 0, NULL, err), 0);
	assert_int_equal(cfg.action, ACTION_REAP);
	config_free(&cfg);
}

static void unknown_flags_and_stray_arguments_are_refused(void **state)
{
	char *env[] = { BASE_ENV, NULL };
	char *unknown[] = { "drone-deps", "--colour", "red", NULL };
	char *stray[] = { "drone-deps", "keycloak", NULL };
	char *novalue[] = { "drone-deps", "--ttl", NULL };

	(void)state;
	expect_error(env, 3, unknown, "unknown option '--colour'");
	expect_error(env, 2, stray, "unexpected argument");
	expect_error(env, 2, novalue, "ttl:");
}

static void a_flag_never_takes_the_next_flag_as_its_value(void **state)
{
	char *env[] = { BASE_ENV, NULL };
	char *argv[] = { "drone-deps", "--parent", "--keycloak-admin-password=hunter2-Secret",
			 NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 3, argv, err), -1);
	assert_string_equal(err, "parent: --parent needs a value");
	assert_null(strstr(err, "hunter2"));
	config_free(&cfg);
}

static void quoted_values_cannot_forge_log_lines(void **state)
{
	char *env[] = { BASE_ENV, "PLUGIN_TTL=5\ndrone-deps: deleted realm x", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 0, NULL, err), -1);
	assert_non_null(strstr(err, "ttl:"));
	assert_null(strchr(err, '\n'));
	config_free(&cfg);
}

static void secret_flag_is_wiped_from_argv(void **state)
{
	char *env[] = { "PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=p", "PLUGIN_DOMAIN=d.org",
			"PLUGIN_HOOK=true",	NO_SOCKET,	   NULL };
	char pw[] = "hunter2-secret";
	char *argv[] = { "drone-deps", "--keycloak-admin-password", pw, NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_int_equal(load(&cfg, env, 3, argv, err), 0);
	assert_string_equal(cfg.value[SET_KEYCLOAK_ADMIN_PASSWORD], "hunter2-secret");
	assert_null(strstr(pw, "hunter2"));
	config_free(&cfg);
}

static void only_secret_settings_are_secret(void **state)
{
	(void)state;
	assert_true(config_env_is_secret("PLUGIN_KEYCLOAK_ADMIN_PASSWORD=x"));
	assert_false(config_env_is_secret("PLUGIN_KEYCLOAK_ADMIN_PASSWORDX=x"));
	assert_false(config_env_is_secret("PLUGIN_KEYCLOAK_ADMIN_USER=admin"));
	assert_false(config_env_is_secret("HOME=/root"));
	assert_true(config_env_is_secret("PLUGIN_KEYCLOAK_CLIENT_SECRET=x"));
	assert_false(config_env_is_secret("PLUGIN_KEYCLOAK_CLIENT_ID=drone-deps-ci"));
}

/* Drone upper-cases a setting's key and passes it as it is: a secret
 * written `keycloak-client-secret` arrives as PLUGIN_KEYCLOAK-CLIENT-SECRET,
 * which drone-deps would ignore and hand to the hook. */
static void a_setting_spelled_otherwise_is_refused_and_wiped(void **state)
{
	static const char *const spellings[] = {
		"PLUGIN_KEYCLOAK-CLIENT-SECRET", "PLUGIN_keycloak_client_secret",
		"PLUGIN_Keycloak-Client-Secret", "PLUGIN_KEYCLOAK.CLIENT.SECRET",
		"plugin_keycloak-client-secret", "PLUGIN_KEYCLOAK__CLIENT_SECRET",
	};
	char *plain[] = { "PLUGIN_KEYCLOAK-URL=http://127.0.0.1:1", BASE_ENV, NULL };
	char *empty[] = { "PLUGIN_KEYCLOAK-CLIENT-SECRET=", BASE_ENV, NULL };
	char *other[] = { "PLUGIN_PROBE-DASH=x", BASE_ENV, NULL };
	struct config cfg;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		char entry[128];
		char *env[] = { entry, BASE_ENV, NULL };

		snprintf(entry, sizeof(entry), "%s=c-s3cret-dashed", spellings[i]);
		assert_true(config_env_is_secret(entry));
		assert_int_equal(load(&cfg, env, 0, NULL, err), -1);
		if (strncmp(err, "keycloak_client_secret: given as ", 33) != 0 ||
		    !strstr(err, "PLUGIN_KEYCLOAK_CLIENT_SECRET") || strstr(err, "s3cret")) {
			printf("# %s: '%s'\n", spellings[i], err);
			fail();
		}
		config_free(&cfg);
		/* wiped where it lies, as /proc/<pid>/environ shows it (the
		 * other entries are literals: not passed) */
		env[1] = NULL;
		config_wipe_secrets(env);
		assert_null(strstr(entry, "s3cret"));
		assert_memory_equal(entry, spellings[i], strlen(spellings[i]));
	}
	expect_error(plain, 0, NULL, "keycloak_url: given as PLUGIN_KEYCLOAK-URL");
	/* empty counts as unset; a name that spells no setting is not ours */
	assert_int_equal(load(&cfg, empty, 0, NULL, err), 0);
	config_free(&cfg);
	assert_int_equal(load(&cfg, other, 0, NULL, err), 0);
	config_free(&cfg);
	assert_false(config_env_is_secret("PLUGIN_PROBE-DASH=x"));
	assert_false(config_env_is_secret("PLUGIN_KEYCLOAK-CLIENT-SECRETS=x"));
	assert_false(config_env_is_secret("XPLUGIN_KEYCLOAK_CLIENT_SECRET=x"));
}

static void ci_client_and_pool_settings(void **state)
{
	char *id_alone[] = { "PLUGIN_KEYCLOAK_CLIENT_ID=ci", BASE_ENV, NULL };
	char *bad_pool[] = { "PLUGIN_POOL_SIZE=33", BASE_ENV, NULL };
	char *client[] = { "PLUGIN_KEYCLOAK_CLIENT_SECRET=c-s3cret",
			   "PLUGIN_DEPS=keycloak",
			   "PLUGIN_PARENT=p",
			   "PLUGIN_DOMAIN=ci.example.org",
			   "PLUGIN_HOOK=true",
			   NO_SOCKET,
			   NULL };
	char *password[] = { BASE_ENV, NULL };
	struct config cfg;
	char err[512];

	(void)state;
	expect_error(id_alone, 0, NULL, "keycloak_client_secret");
	expect_error(bad_pool, 0, NULL, "pool_size");
	/* a secret alone: the default client, no password or socket needed,
	 * and the pool on */
	assert_int_equal(load(&cfg, client, 0, NULL, err), 0);
	assert_string_equal(cfg.value[SET_KEYCLOAK_CLIENT_ID], KEYCLOAK_CLIENT_ID_DEFAULT);
	assert_int_equal(cfg.pool_size, POOL_SIZE_CLIENT_DEFAULT);
	config_free(&cfg);
	/* the admin password keeps its two requests: no pool unless asked */
	assert_int_equal(load(&cfg, password, 0, NULL, err), 0);
	assert_int_equal(cfg.pool_size, 0);
	config_free(&cfg);
}

/* Parsing follows the table: a value outside a row's type, range, choices
 * or check is refused naming that setting, whatever the action; and each
 * setting spelled with dashes is refused naming itself (no two names meet
 * once case and separators are ignored). */
static void hook_user_is_a_uid_gid_or_a_user_never_root(void **state)
{
	static const char *const bad[] = { "0", "0:0", "1000:0", "-1", "1000:", "1000:x",
					   "x:1",	"no-such-user-here", "root" };
	char *pair[] = { "PLUGIN_HOOK_USER=1000:1001", BASE_ENV, NULL };
	char *alone[] = { "PLUGIN_HOOK_USER=64123", BASE_ENV, NULL };
	char *name[] = { "PLUGIN_HOOK_USER=nobody", BASE_ENV, NULL };
	char *none[] = { BASE_ENV, NULL };
	char *up[] = { "PLUGIN_HOOK_USER=1000", "PLUGIN_ACTION=up", "PLUGIN_ENV_FILE=/tmp/x.env",
		       "PLUGIN_HOOK=",		BASE_ENV,	    NULL };
	struct config cfg;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char entry[64];
		char *env[] = { entry, BASE_ENV, NULL };

		snprintf(entry, sizeof(entry), "PLUGIN_HOOK_USER=%s", bad[i]);
		expect_error(env, 0, NULL, "hook_user:");
	}
	expect_error(up, 0, NULL, "hook_user: only action run");
	assert_int_equal(load(&cfg, pair, 0, NULL, err), 0);
	assert_int_equal(cfg.hook_uid, 1000);
	assert_int_equal(cfg.hook_gid, 1001);
	config_free(&cfg);
	/* a uid of no account: the group of the same number, never 0 */
	assert_int_equal(load(&cfg, alone, 0, NULL, err), 0);
	assert_int_equal(cfg.hook_uid, 64123);
	assert_int_equal(cfg.hook_gid, 64123);
	config_free(&cfg);
	assert_int_equal(load(&cfg, none, 0, NULL, err), 0);
	assert_int_equal(cfg.hook_uid, -1);
	config_free(&cfg);
	if (load(&cfg, name, 0, NULL, err) == 0) {
		assert_true(cfg.hook_uid > 0);
		assert_true(cfg.hook_gid > 0);
	} else {
		printf("# no user nobody here: %s\n", err);
	}
	config_free(&cfg);
}

/* The *_file convention: the secret read from a file, so no environment
 * holds a copy (pattern 3, where the step's shell keeps its own). */
static void secret_file_settings_read_the_secret_once(void **state)
{
	char path[] = "/tmp/drone-deps-unit-secret-XXXXXX";
	char empty[] = "/tmp/drone-deps-unit-empty-XXXXXX";
	char pw_entry[96], cs_entry[96], empty_entry[96];
	char *pw[] = { pw_entry,		"PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=p",
		       "PLUGIN_DOMAIN=d.org", "PLUGIN_HOOK=true",	NO_SOCKET,
		       NULL };
	char *cs[] = { cs_entry,		"PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=p",
		       "PLUGIN_DOMAIN=d.org", "PLUGIN_HOOK=true",	NO_SOCKET,
		       NULL };
	char *both[] = { pw_entry, BASE_ENV, NULL };
	char *cs_both[] = { cs_entry, "PLUGIN_KEYCLOAK_CLIENT_SECRET=x", BASE_ENV, NULL };
	char *none[] = { "PLUGIN_KEYCLOAK_ADMIN_PASSWORD_FILE=/nonexistent/pw", BASE_ENV, NULL };
	char *blank[] = { empty_entry, "PLUGIN_DEPS=keycloak", "PLUGIN_PARENT=p",
			  "PLUGIN_DOMAIN=d.org", "PLUGIN_HOOK=true", NO_SOCKET, NULL };
	struct config cfg;
	char err[512];
	int fd = mkstemp(path), efd = mkstemp(empty);

	(void)state;
	assert_true(fd >= 0 && efd >= 0);
	assert_int_equal(write(fd, "F1le-S3cret\n", 12), 12);
	close(fd);
	assert_int_equal(write(efd, "\n", 1), 1);
	close(efd);
	snprintf(pw_entry, sizeof(pw_entry), "PLUGIN_KEYCLOAK_ADMIN_PASSWORD_FILE=%s", path);
	snprintf(cs_entry, sizeof(cs_entry), "PLUGIN_KEYCLOAK_CLIENT_SECRET_FILE=%s", path);
	snprintf(empty_entry, sizeof(empty_entry), "PLUGIN_KEYCLOAK_ADMIN_PASSWORD_FILE=%s", empty);

	assert_int_equal(load(&cfg, pw, 0, NULL, err), 0);
	assert_string_equal(cfg.value[SET_KEYCLOAK_ADMIN_PASSWORD], "F1le-S3cret");
	config_free(&cfg);
	/* the client's secret: as if given, the pool on by default */
	assert_int_equal(load(&cfg, cs, 0, NULL, err), 0);
	assert_string_equal(cfg.value[SET_KEYCLOAK_CLIENT_SECRET], "F1le-S3cret");
	assert_int_equal(cfg.pool_size, POOL_SIZE_CLIENT_DEFAULT);
	config_free(&cfg);
	expect_error(both, 0, NULL, "keycloak_admin_password_file: both");
	expect_error(cs_both, 0, NULL, "keycloak_client_secret_file: both");
	expect_error(none, 0, NULL, "keycloak_admin_password_file: cannot read");
	expect_error(blank, 0, NULL, "keycloak_admin_password_file:");
	assert_int_equal(load(&cfg, both, 0, NULL, err), -1);
	assert_null(strstr(err, "F1le"));
	config_free(&cfg);
	assert_false(config_env_is_secret(pw_entry));
	unlink(path);
	unlink(empty);
}

static void every_row_of_the_table_is_enforced(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < SETTING_COUNT; i++) {
		const struct setting_info *s = &config_settings[i];
		char bad[3][128], prefix[80], dashed[128];
		int k, n = 0;

		if (!strcmp(s->type, "integer")) {
			snprintf(bad[n++], sizeof(bad[0]), "%ld", s->min - 1);
			snprintf(bad[n++], sizeof(bad[0]), "%ld", s->max + 1);
			snprintf(bad[n++], sizeof(bad[0]), "1x");
		} else if (!strcmp(s->type, "boolean")) {
			snprintf(bad[n++], sizeof(bad[0]), "maybe");
		} else if (s->choices) {
			snprintf(bad[n++], sizeof(bad[0]), "nonsense");
		} else if (!strcmp(s->type, "url")) {
			snprintf(bad[n++], sizeof(bad[0]), "ftp://kc.example.org");
		} else if (s->check == CHECK_READABLE) {
			snprintf(bad[n++], sizeof(bad[0]), "/nonexistent/file");
		} else if (s->check == CHECK_WRITABLE_DIR) {
			snprintf(bad[n++], sizeof(bad[0]), "/nonexistent/dir/file");
		} else if (s->check == CHECK_DOMAIN) {
			snprintf(bad[n++], sizeof(bad[0]), "a/b.org");
		}
		snprintf(prefix, sizeof(prefix), "%s:", s->name);
		for (k = 0; k < n; k++) {
			char entry[192], *up;
			char *env[] = { entry, BASE_ENV, NULL };

			snprintf(entry, sizeof(entry), "PLUGIN_%s=%s", s->name, bad[k]);
			for (up = entry + 7; *up != '='; up++)
				*up = (char)toupper((unsigned char)*up);
			expect_error(env, 0, NULL, prefix);
		}
		{
			char *up, *env[] = { dashed, BASE_ENV, NULL };

			snprintf(dashed, sizeof(dashed), "PLUGIN_%s=x", s->name);
			for (up = dashed + 7; *up != '='; up++)
				*up = *up == '_' ? '-' : (char)toupper((unsigned char)*up);
			snprintf(prefix, sizeof(prefix), "%s: given as", s->name);
			if (strchr(s->name, '_'))
				expect_error(env, 0, NULL, prefix);
		}
	}
}

static void warm_db_and_replicas_settings(void **state)
{
#define WARM_ENV "PLUGIN_ACTION=warm", "PLUGIN_DOMAIN=ci.example.org", NO_SOCKET
	char *plain[] = { WARM_ENV, NULL };
	char *pg2[] = { "PLUGIN_WARM_DB=postgres", "PLUGIN_WARM_REPLICAS=2", WARM_ENV, NULL };
	char *bad_db[] = { "PLUGIN_WARM_DB=mysql", WARM_ENV, NULL };
	char *h2_two[] = { "PLUGIN_WARM_REPLICAS=2", WARM_ENV, NULL };
	char *published_two[] = { "PLUGIN_WARM_DB=postgres", "PLUGIN_WARM_REPLICAS=2",
				  "PLUGIN_WARM_PUBLISH=8080", WARM_ENV, NULL };
	char *ten[] = { "PLUGIN_WARM_DB=postgres", "PLUGIN_WARM_REPLICAS=10", WARM_ENV, NULL };
	struct config cfg;
	char err[512];

	(void)state;
	/* H2 and one task unless asked: an instance deployed before keeps
	 * its database */
	assert_int_equal(load(&cfg, plain, 0, NULL, err), 0);
	assert_false(cfg.warm_postgres);
	assert_int_equal(cfg.warm_replicas, 1);
	config_free(&cfg);
	assert_int_equal(load(&cfg, pg2, 0, NULL, err), 0);
	assert_true(cfg.warm_postgres);
	assert_int_equal(cfg.warm_replicas, 2);
	config_free(&cfg);
	expect_error(bad_db, 0, NULL, "warm_db: must be dev-file or postgres");
	expect_error(h2_two, 0, NULL, "warm_replicas: 2 Keycloak tasks need a database outside");
	expect_error(published_two, 0, NULL, "warm_replicas: 2 Keycloak tasks cannot share");
	expect_error(ten, 0, NULL, "warm_replicas: must be a whole number from 1 to 9");
#undef WARM_ENV
}

static void help_and_plugin_docs_list_every_setting(void **state)
{
	char *help = NULL, *docs = NULL;
	size_t hn = 0, dn = 0;
	FILE *h = open_memstream(&help, &hn), *d = open_memstream(&docs, &dn);
	int i;

	(void)state;
	config_print_help(h);
	config_print_plugin_docs(d);
	fclose(h);
	fclose(d);
	for (i = 0; i < SETTING_COUNT; i++) {
		char row[80];

		if (!strstr(help, config_settings[i].name))
			fail_msg("--help misses %s", config_settings[i].name);
		snprintf(row, sizeof(row), "| `%s` |", config_settings[i].name);
		if (!strstr(docs, row))
			fail_msg("plugin docs miss %s", config_settings[i].name);
	}
	free(help);
	free(docs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_follow_the_design),
		cmocka_unit_test(flags_win_over_the_environment),
		cmocka_unit_test(empty_setting_counts_as_unset),
		cmocka_unit_test(deps_list_arrives_comma_joined),
		cmocka_unit_test(run_id_setting_is_validated),
		cmocka_unit_test(run_id_derivation_order),
		cmocka_unit_test(local_runs_without_ci_get_random_ids),
		cmocka_unit_test(parent_defaults_to_the_repo_name),
		cmocka_unit_test(parent_that_cannot_form_a_realm_is_refused),
		cmocka_unit_test(numbers_and_booleans_are_checked),
		cmocka_unit_test(urls_must_be_http_or_https),
		cmocka_unit_test(urls_with_user_info_are_refused_unechoed),
		cmocka_unit_test(hook_comes_from_one_place),
		cmocka_unit_test(files_and_folders_are_checked_before_anything),
		cmocka_unit_test(missing_password_without_docker_socket_is_refused),
		cmocka_unit_test(actions_and_modes_are_checked),
		cmocka_unit_test(unknown_flags_and_stray_arguments_are_refused),
		cmocka_unit_test(a_flag_never_takes_the_next_flag_as_its_value),
		cmocka_unit_test(quoted_values_cannot_forge_log_lines),
		cmocka_unit_test(secret_flag_is_wiped_from_argv),
		cmocka_unit_test(only_secret_settings_are_secret),
		cmocka_unit_test(a_setting_spelled_otherwise_is_refused_and_wiped),
		cmocka_unit_test(ci_client_and_pool_settings),
		cmocka_unit_test(hook_user_is_a_uid_gid_or_a_user_never_root),
		cmocka_unit_test(secret_file_settings_read_the_secret_once),
		cmocka_unit_test(every_row_of_the_table_is_enforced),
		cmocka_unit_test(warm_db_and_replicas_settings),
		cmocka_unit_test(help_and_plugin_docs_list_every_setting),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
