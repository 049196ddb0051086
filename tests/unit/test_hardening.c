/* Hardening rules that a unit can show: saturated arithmetic on server
 * data (plugin/sat.h, keycloak_token_expiry) and leases at the ends of
 * the 64-bit range. Built with UBSan: an overflow aborts the test. */
#include <limits.h>
#include <string.h>

#include "unit.h"
#include "../../plugin/config.h"
#include "../../plugin/keycloak.h"
#include "../../plugin/lease.h"
#include "../../plugin/sat.h"

static void saturating_arithmetic_clamps_at_the_ends(void **state)
{
	(void)state;
	assert_true(sat_add(LLONG_MAX, 1) == LLONG_MAX);
	assert_true(sat_add(LLONG_MIN, -1) == LLONG_MIN);
	assert_true(sat_add(40, 2) == 42);
	assert_true(sat_sub(1796161656LL, LLONG_MIN) == LLONG_MAX);
	assert_true(sat_sub(LLONG_MIN, 1) == LLONG_MIN);
	assert_true(sat_sub(LLONG_MAX, -5) == LLONG_MAX);
	assert_true(sat_sub(50, 8) == 42);
	assert_true(sat_mul(LLONG_MAX, 1000) == LLONG_MAX);
	assert_true(sat_mul(LLONG_MIN, 1000) == LLONG_MIN);
	assert_true(sat_mul(-LLONG_MAX, -1000) == LLONG_MAX);
	assert_true(sat_mul(LLONG_MAX / 2, -3) == LLONG_MIN);
	assert_true(sat_mul(6, 7) == 42);
}

static void token_expiry_saturates_and_keeps_a_margin(void **state)
{
	(void)state;
	/* a usual token: renewed 5 s before its end */
	assert_true(keycloak_token_expiry(1000, 60) == 1000 + 55000);
	/* too short for a margin: its own life */
	assert_true(keycloak_token_expiry(1000, 3) == 4000);
	assert_true(keycloak_token_expiry(LLONG_MAX - 10, LLONG_MAX) == LLONG_MAX);
	assert_true(keycloak_token_expiry(123456789, LLONG_MAX) == LLONG_MAX);
	assert_true(keycloak_token_expiry(123456789, LLONG_MAX / 1000 + 1) == LLONG_MAX);
	/* the caller refuses expires_in <= 0 first; still no overflow */
	assert_true(keycloak_token_expiry(0, LLONG_MIN) == LLONG_MIN);
}

static void leases_at_the_ends_of_the_range(void **state)
{
	struct lease l = { .owned = true, .expires = LLONG_MIN };

	(void)state;
	assert_true(lease_expired(&l, 0));
	assert_true(lease_expired(&l, LLONG_MIN + 1));
	l.expires = LLONG_MAX;
	assert_false(lease_expired(&l, LLONG_MAX));
	assert_false(lease_may_replace(&l, "other#1.1.1", 1796161656LL));
	assert_true(sat_sub(l.expires, 1796161656LL) > 0);
}

static void secret_settings_are_zeroed_in_the_environment_block(void **state)
{
	char pw[] = "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=hunter2-secret";
	char user[] = "PLUGIN_KEYCLOAK_ADMIN_USER=admin";
	char other[] = "HOME=/root";
	char *envp[] = { user, pw, other, NULL };
	size_t i, n = sizeof(pw) - 1, name = strlen("PLUGIN_KEYCLOAK_ADMIN_PASSWORD=");

	(void)state;
	config_wipe_secrets(envp);
	/* the name stays, every byte of the value is zero, in place */
	assert_memory_equal(pw, "PLUGIN_KEYCLOAK_ADMIN_PASSWORD=", name);
	for (i = name; i < n; i++)
		assert_int_equal(pw[i], 0);
	assert_string_equal(user, "PLUGIN_KEYCLOAK_ADMIN_USER=admin");
	assert_string_equal(other, "HOME=/root");
	assert_true(envp[1] == pw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(saturating_arithmetic_clamps_at_the_ends),
		cmocka_unit_test(token_expiry_saturates_and_keeps_a_margin),
		cmocka_unit_test(leases_at_the_ends_of_the_range),
		cmocka_unit_test(secret_settings_are_zeroed_in_the_environment_block),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("hardening", tests, NULL, NULL);
}
