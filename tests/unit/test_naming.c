/* Run ids and names (plugin/naming.c). */
#include <string.h>

#include "unit.h"
#include "../../plugin/naming.h"

static void run_id_is_exactly_six_lowercase_hex(void **state)
{
	(void)state;
	assert_true(naming_run_id_valid("0a6fb2"));
	assert_false(naming_run_id_valid("0A6FB2"));
	assert_false(naming_run_id_valid("0a6fb"));
	assert_false(naming_run_id_valid("0a6fb21"));
	assert_false(naming_run_id_valid("0a6fbg"));
	assert_false(naming_run_id_valid(""));
	assert_false(naming_run_id_valid(NULL));
}

static void run_id_comes_from_the_parent_domain_first_label(void **state)
{
	char id[RUN_ID_LEN + 1];

	(void)state;
	assert_int_equal(naming_run_id_from_domain("lasu-0a6fb2.ci.example.org", id), 0);
	assert_string_equal(id, "0a6fb2");
	assert_int_equal(naming_run_id_from_domain("a-b-c-123abc", id), 0);
	assert_string_equal(id, "123abc");
	/* only the first label counts */
	assert_int_equal(naming_run_id_from_domain("lasuite.x-0a6fb2.org", id), -1);
	assert_int_equal(naming_run_id_from_domain("lasu0a6fb2.org", id), -1);
	assert_int_equal(naming_run_id_from_domain("-0a6fb2.org", id), -1);
	assert_int_equal(naming_run_id_from_domain("lasu-0A6FB2.org", id), -1);
	assert_int_equal(naming_run_id_from_domain("", id), -1);
}

static void run_id_hash_is_stable_and_separates_parts(void **state)
{
	const char *a[] = { "coop/lasuite", "42", "1", "deps" };
	const char *b[] = { "coop/lasuite", "42", "2", "deps" };
	const char *c[] = { "coop/lasuit", "e42", "1", "deps" };
	char x[RUN_ID_LEN + 1], y[RUN_ID_LEN + 1], z[RUN_ID_LEN + 1], w[RUN_ID_LEN + 1];

	(void)state;
	naming_run_id_hash(a, 4, x);
	naming_run_id_hash(a, 4, w);
	naming_run_id_hash(b, 4, y);
	naming_run_id_hash(c, 4, z);
	assert_true(naming_run_id_valid(x));
	assert_string_equal(x, w);
	assert_string_not_equal(x, y);
	assert_string_not_equal(x, z);
}

static void parent_must_form_a_realm_name(void **state)
{
	char big[PARENT_MAX + 2];

	(void)state;
	assert_true(naming_parent_valid("lasuite-drive"));
	assert_true(naming_parent_valid("a"));
	assert_false(naming_parent_valid("Lasuite"));
	assert_false(naming_parent_valid("-lasuite"));
	assert_false(naming_parent_valid("lasuite-"));
	assert_false(naming_parent_valid("la suite"));
	assert_false(naming_parent_valid("la/suite"));
	assert_false(naming_parent_valid("la_suite"));
	assert_false(naming_parent_valid(""));
	memset(big, 'a', PARENT_MAX);
	big[PARENT_MAX] = '\0';
	assert_true(naming_parent_valid(big));
	big[PARENT_MAX] = 'a';
	big[PARENT_MAX + 1] = '\0';
	assert_false(naming_parent_valid(big));
}

static void repo_names_are_normalised_into_parents(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(naming_parent_from_repo("My_Recipe.v2", out, sizeof(out)), 0);
	assert_string_equal(out, "my-recipe-v2");
	assert_int_equal(naming_parent_from_repo("abc", out, 3), -1);
}

static void names_follow_the_design(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(naming_realm("lasuite-drive", "0a6fb2", out, sizeof(out)), 0);
	assert_string_equal(out, "lasuite-drive-0a6fb2");
	assert_int_equal(naming_realm("lasuite-drive", "0a6fb2", out, 10), -1);
	assert_string_equal(out, "");
	assert_int_equal(naming_cold_service("keycloak", "0a6fb2", out, sizeof(out)), 0);
	assert_string_equal(out, "keyc-0a6fb2");
	assert_int_equal(naming_stack_service("warm-keycloak.ci.example.org", out, sizeof(out)), 0);
	assert_string_equal(out, "warm-keycloak_ci_example_org_app");
	assert_int_equal(naming_url_host("https://warm-keycloak.x.org:8443/auth", out, sizeof(out)),
			 0);
	assert_string_equal(out, "warm-keycloak.x.org");
	assert_int_equal(naming_url_host("http://[::1]:80/", out, sizeof(out)), 0);
	assert_string_equal(out, "::1");
	assert_int_equal(naming_url_host("https://", out, sizeof(out)), -1);
	assert_int_equal(naming_url_host("nourl", out, sizeof(out)), -1);
}

static void only_our_realm_shape_is_a_reap_candidate(void **state)
{
	(void)state;
	assert_true(naming_realm_shape("lasuite-drive-0a6fb2"));
	assert_false(naming_realm_shape("master"));
	assert_false(naming_realm_shape("lasuite-drive"));
	assert_false(naming_realm_shape("-0a6fb2"));
	assert_false(naming_realm_shape("Lasuite-0a6fb2"));
	assert_false(naming_realm_shape("lasuite-0a6fbz"));
	assert_false(naming_realm_shape("la suite-0a6fb2"));
}

static void spare_names_never_collide_with_run_realms(void **state)
{
	char name[SPARE_NAME_MAX + 1];

	(void)state;
	assert_int_equal(naming_spare("lasuite-drive", 3, name, sizeof(name)), 0);
	assert_string_equal(name, "lasuite-drive-spare-3");
	assert_true(naming_spare_shape(name));
	assert_false(naming_realm_shape(name));
	assert_false(naming_spare_shape("lasuite-drive-0a6fb2"));
	/* a parent ending in "-spare" still gives a run realm, not a spare */
	assert_false(naming_spare_shape("x-spare-0a6fb2"));
	assert_true(naming_realm_shape("x-spare-0a6fb2"));
	assert_false(naming_spare_shape("lasuite-drive-spare-"));
	assert_false(naming_spare_shape("-spare-1"));
	assert_false(naming_spare_shape("Lasuite-spare-1"));
	assert_false(naming_spare_shape("master"));
	assert_int_equal(naming_spare("lasuite", -1, name, sizeof(name)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(run_id_is_exactly_six_lowercase_hex),
		cmocka_unit_test(run_id_comes_from_the_parent_domain_first_label),
		cmocka_unit_test(run_id_hash_is_stable_and_separates_parts),
		cmocka_unit_test(parent_must_form_a_realm_name),
		cmocka_unit_test(repo_names_are_normalised_into_parents),
		cmocka_unit_test(names_follow_the_design),
		cmocka_unit_test(only_our_realm_shape_is_a_reap_candidate),
		cmocka_unit_test(spare_names_never_collide_with_run_realms),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("naming", tests, NULL, NULL);
}
