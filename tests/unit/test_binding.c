/* The binding, the lease marks and the realm representation
 * (plugin/binding.c, plugin/lease.c, plugin/realm.c, plugin/buf.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "../../plugin/binding.h"
#include "../../plugin/buf.h"
#include "../../plugin/config.h"
#include "../../plugin/json.h"
#include "../../plugin/lease.h"
#include "../../plugin/realm.h"

static void make_binding(struct binding *b)
{
	assert_int_equal(binding_init(b, "0a6fb2", "lasuite-drive-0a6fb2", "lasuite-drive"), 0);
	binding_set_instance(b, "warm", "https://warm-keycloak.ci.example.org");
}

static void secrets_are_long_random_and_distinct(void **state)
{
	struct binding a, b;

	(void)state;
	make_binding(&a);
	make_binding(&b);
	assert_true(strlen(a.client_secret) >= 32);
	assert_true(strlen(a.password) >= 16);
	assert_string_not_equal(a.client_secret, b.client_secret);
	assert_string_not_equal(a.password, b.password);
	assert_string_equal(a.issuer,
			    "https://warm-keycloak.ci.example.org/realms/lasuite-drive-0a6fb2");
}

static void hook_env_has_the_binding_and_no_admin_password(void **state)
{
	char *envp[] = { "PATH=/bin", "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=admin-pw",
			 "DEPS_KEYCLOAK_REALM=stale", "PLUGIN_DEPS=keycloak", NULL };
	struct binding b;
	char **env, **e;
	int found = 0;

	(void)state;
	make_binding(&b);
	env = binding_env(&b, envp);
	assert_non_null(env);
	for (e = env; *e; e++) {
		assert_null(strstr(*e, "admin-pw"));
		assert_null(strstr(*e, "stale"));
		if (!strcmp(*e, "DEPS_KEYCLOAK_REALM=lasuite-drive-0a6fb2") ||
		    !strcmp(*e, "PATH=/bin") || !strcmp(*e, "PLUGIN_DEPS=keycloak") ||
		    !strcmp(*e, "DEPS_KEYCLOAK_MODE=warm") ||
		    !strcmp(*e, "DEPS_KEYCLOAK_CLIENT_ID=lasuite-drive") ||
		    !strncmp(*e, "DEPS_KEYCLOAK_CLIENT_SECRET=", 28) ||
		    !strcmp(*e, "DEPS_KEYCLOAK_USERNAME=test") ||
		    !strncmp(*e, "DEPS_KEYCLOAK_PASSWORD=", 23) ||
		    !strcmp(*e, "DEPS_RUN_ID=0a6fb2") ||
		    !strncmp(*e, "DEPS_KEYCLOAK_ISSUER=https://", 29) ||
		    !strncmp(*e, "DEPS_KEYCLOAK_URL=https://", 26))
			found++;
	}
	assert_int_equal(found, 11);
	binding_env_free(env);
}

static void env_file_is_0600_and_complete(void **state)
{
	char path[] = "/tmp/drone-deps-unit-XXXXXX";
	struct binding b;
	struct stat st;
	char text[4096];
	size_t n;
	FILE *f;
	int fd;

	(void)state;
	make_binding(&b);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	chmod(path, 0644); /* an existing, wider file is replaced */
	assert_int_equal(binding_write_env_file(&b, path, -1, -1), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(strstr(text, "DEPS_KEYCLOAK_CLIENT_SECRET="));
	assert_non_null(strstr(text, b.client_secret));
	assert_non_null(strstr(
		text,
		"DEPS_KEYCLOAK_ISSUER=https://warm-keycloak.ci.example.org/realms/lasuite-drive-0a6fb2\n"));
	unlink(path);
}

static void printed_binding_masks_secrets(void **state)
{
	struct binding b;
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	(void)state;
	make_binding(&b);
	binding_print_masked(&b, f);
	fclose(f);
	assert_null(strstr(out, b.client_secret));
	assert_null(strstr(out, b.password));
	assert_non_null(strstr(out, "DEPS_KEYCLOAK_CLIENT_SECRET=***"));
	assert_non_null(strstr(out, "DEPS_KEYCLOAK_REALM=lasuite-drive-0a6fb2"));
	free(out);
}

static void lease_marks_round_trip(void **state)
{
	static const char *const path[] = { "attributes", NULL };
	struct buf b = BUF_INIT;
	struct lease l;

	(void)state;
	assert_int_equal(buf_puts(&b, "{\"realm\":\"x\",\"attributes\":{"), 0);
	assert_int_equal(lease_json_members(&b, "0a6fb2", "coop/\"x\"#1.2", 1700000000LL), 0);
	assert_int_equal(buf_puts(&b, "}}"), 0);
	assert_int_equal(lease_from_json(b.data, b.len, path, &l), 0);
	assert_true(l.owned);
	assert_string_equal(l.run, "0a6fb2");
	assert_string_equal(l.job, "coop/\"x\"#1.2");
	assert_int_equal(l.expires, 1700000000LL);
	assert_true(lease_expired(&l, 1700000001LL));
	assert_false(lease_expired(&l, 1699999999LL));
	buf_free(&b);
}

static void only_owned_leases_may_be_replaced(void **state)
{
	static const char *const path[] = { "attributes", NULL };
	const char *foreign =
		"{\"attributes\":{\"drone-deps.owner\":\"someone\",\"drone-deps.expires\":\"1\"}}";
	const char *unmarked = "{\"realm\":\"x\"}";
	const char *nested =
		"{\"x\":{\"attributes\":{\"drone-deps.owner\":\"drone-deps\"}},\"attributes\":{}}";
	const char *live =
		"{\"attributes\":{\"drone-deps.owner\":\"drone-deps\",\"drone-deps.job\":\"a#1.1\",\"drone-deps.expires\":\"2000\"}}";
	const char *noexp = "{\"attributes\":{\"drone-deps.owner\":\"drone-deps\"}}";
	struct lease l;

	(void)state;
	assert_int_equal(lease_from_json(foreign, strlen(foreign), path, &l), 0);
	assert_false(l.owned);
	assert_false(lease_may_replace(&l, "a#1.1", 5000));
	assert_int_equal(lease_from_json(unmarked, strlen(unmarked), path, &l), 0);
	assert_false(l.owned);
	assert_int_equal(lease_from_json(nested, strlen(nested), path, &l), 0);
	assert_false(l.owned);
	assert_int_equal(lease_from_json(live, strlen(live), path, &l), 0);
	assert_true(lease_may_replace(&l, "a#1.1", 1000));  /* same job */
	assert_false(lease_may_replace(&l, "b#1.1", 1000)); /* another live run */
	assert_true(lease_may_replace(&l, "b#1.1", 3000));  /* expired */
	assert_int_equal(lease_from_json(noexp, strlen(noexp), path, &l), 0);
	assert_true(lease_expired(&l, 1));
	assert_int_equal(lease_from_json("{oops", 5, path, &l), -1);
}

/* down's rule: owner, run, parent and the key's hash all match; a lease
 * without a key mark never does. */
static void only_the_run_key_takes_a_lease_down(void **state)
{
	static const char *const path[] = { "attributes", NULL };
	char key[RUN_KEY_LEN + 1], hash[SHA256_HEX_LEN + 1], other[SHA256_HEX_LEN + 1];
	struct buf b = BUF_INIT;
	const char *why;
	struct lease l;

	(void)state;
	assert_int_equal(lease_key_new(key, hash), 0);
	assert_int_equal(strlen(key), RUN_KEY_LEN);
	sha256_hex("another key", 11, other);
	assert_int_equal(buf_puts(&b, "{\"attributes\":{"), 0);
	assert_int_equal(lease_json_members(&b, "0a6fb2", "a#1.1", 2000), 0);
	assert_int_equal(lease_json_guard(&b, "recipe", hash), 0);
	assert_int_equal(buf_puts(&b, "}}"), 0);
	assert_null(strstr(b.data, key));
	assert_int_equal(lease_from_json(b.data, b.len, path, &l), 0);
	assert_string_equal(l.parent, "recipe");
	assert_string_equal(l.key_hash, hash);
	assert_true(lease_may_down(&l, "0a6fb2", "recipe", hash, &why));
	assert_null(why);
	assert_false(lease_may_down(&l, "0a6fb2", "recipe", other, &why));
	assert_false(lease_may_down(&l, "0a6fb3", "recipe", hash, &why));
	assert_false(lease_may_down(&l, "0a6fb2", "recipe2", hash, &why));
	assert_false(lease_may_down(&l, "0a6fb2", "recipe", "", &why));
	/* one hex digit off, wherever it is, is another key */
	for (size_t at = 0; at < SHA256_HEX_LEN; at++) {
		memcpy(other, hash, sizeof(other));
		other[at] = other[at] == '0' ? '1' : '0';
		assert_false(lease_may_down(&l, "0a6fb2", "recipe", other, &why));
	}
	l.key_hash[0] = '\0'; /* a lease from before the key */
	assert_false(lease_may_down(&l, "0a6fb2", "recipe", hash, &why));
	assert_false(lease_may_down(&l, "0a6fb2", "recipe", "", &why));
	l.owned = false;
	assert_false(lease_may_down(&l, "0a6fb2", "recipe", hash, &why));
	buf_free(&b);
}

/* The key goes to env_file, never into the hook's environment. */
static void run_key_in_env_file_only(void **state)
{
	char path[] = "/tmp/drone-deps-unit-XXXXXX", file[64], key[RUN_KEY_LEN + 1];
	char *envp[] = { "DEPS_RUN_KEY=stale", NULL };
	struct binding b;
	char **env, **e;

	(void)state;
	make_binding(&b);
	snprintf(b.run_key, sizeof(b.run_key), "%s", "K0123456789012345678901234567890123456789");
	env = binding_env(&b, envp);
	assert_non_null(env);
	for (e = env; *e; e++)
		assert_int_not_equal(strncmp(*e, "DEPS_RUN_KEY=", 13), 0);
	binding_env_free(env);
	assert_non_null(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/deps.env", path);
	assert_int_equal(binding_write_env_file(&b, file, -1, -1), 0);
	assert_int_equal(binding_read_run_key(file, key), 0);
	assert_string_equal(key, b.run_key);
	/* an empty key, or one longer than any drone-deps gives, is none */
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(file, "w");

		assert_non_null(f);
		fprintf(f, "DEPS_RUN_KEY=%s\n", i ? "K01234567890123456789012345678901234567890" : "");
		fclose(f);
		assert_int_equal(binding_read_run_key(file, key), -1);
	}
	unlink(file);
	assert_int_equal(binding_read_run_key(file, key), -1);
	rmdir(path);
}

static void realm_body_is_one_complete_representation(void **state)
{
	char *env[] = { "PLUGIN_DEPS=keycloak",
			"PLUGIN_PARENT=lasuite-drive",
			"PLUGIN_DOMAIN=ci.example.org",
			"PLUGIN_KEYCLOAK_ADMIN_PASSWORD=pw",
			"PLUGIN_HOOK=true",
			"PLUGIN_DOCKER_HOST=unix:///nonexistent",
			"PLUGIN_PARENT_DOMAIN=lasu-0a6fb2.ci.example.org",
			NULL };
	char *argv[] = { "drone-deps", NULL };
	struct config cfg;
	struct binding b;
	struct buf body = BUF_INIT;
	struct json j;
	char s[256], err[512];
	int c, u, cr;

	(void)state;
	assert_int_equal(config_load(&cfg, 1, argv, env, err, sizeof(err)), 0);
	assert_int_equal(binding_init(&b, cfg.run_id, cfg.realm, cfg.parent), 0);
	binding_set_instance(&b, "warm", cfg.keycloak_url);
	assert_int_equal(realm_body(&body, &cfg, &b, 1234), 0);
	assert_int_equal(json_parse(&j, body.data, body.len), 0);
	assert_int_equal(json_get_string(&j, 0, "realm", s, sizeof(s)), 20);
	assert_string_equal(s, "lasuite-drive-0a6fb2");
	assert_int_equal(json_get_string(&j, json_object_get(&j, 0, "attributes"),
					 "drone-deps.expires", s, sizeof(s)),
			 4);
	c = json_array_get(&j, json_object_get(&j, 0, "clients"), 0);
	assert_int_equal(json_get_string(&j, c, "secret", s, sizeof(s)),
			 (int)strlen(b.client_secret));
	assert_int_equal(
		json_string_copy(&j, json_array_get(&j, json_object_get(&j, c, "redirectUris"), 0),
				 s, sizeof(s)),
		36);
	assert_string_equal(s, "https://lasu-0a6fb2.ci.example.org/*");
	assert_memory_equal(body.data + j.tok[json_object_get(&j, c, "publicClient")].start,
			    "false", 5);
	u = json_array_get(&j, json_object_get(&j, 0, "users"), 0);
	assert_true(json_get_string(&j, u, "email", s, sizeof(s)) > 0);
	assert_true(json_get_string(&j, u, "firstName", s, sizeof(s)) > 0);
	assert_true(json_get_string(&j, u, "lastName", s, sizeof(s)) > 0);
	assert_memory_equal(body.data + j.tok[json_object_get(&j, u, "emailVerified")].start,
			    "true", 4);
	cr = json_array_get(&j, json_object_get(&j, u, "credentials"), 0);
	assert_int_equal(json_get_string(&j, cr, "value", s, sizeof(s)), (int)strlen(b.password));
	json_free(&j);
	buf_free(&body);
	config_free(&cfg);
}

static void buf_escapes_json_and_forms(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(buf_json_string(&b, "a\"b\\c\n\x01"), 0);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
	buf_reset(&b);
	assert_int_equal(buf_form_value(&b, "p&ss=w rd/é"), 0);
	assert_string_equal(b.data, "p%26ss%3Dw%20rd%2F%C3%A9");
	buf_free(&b);
	b.limit = 4;
	assert_int_equal(buf_puts(&b, "1234"), 0);
	assert_int_equal(buf_puts(&b, "5"), -1);
	assert_string_equal(b.data, "1234");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secrets_are_long_random_and_distinct),
		cmocka_unit_test(hook_env_has_the_binding_and_no_admin_password),
		cmocka_unit_test(env_file_is_0600_and_complete),
		cmocka_unit_test(printed_binding_masks_secrets),
		cmocka_unit_test(lease_marks_round_trip),
		cmocka_unit_test(only_owned_leases_may_be_replaced),
		cmocka_unit_test(only_the_run_key_takes_a_lease_down),
		cmocka_unit_test(run_key_in_env_file_only),
		cmocka_unit_test(realm_body_is_one_complete_representation),
		cmocka_unit_test(buf_escapes_json_and_forms),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("binding", tests, NULL, NULL);
}
