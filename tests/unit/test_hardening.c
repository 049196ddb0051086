/* Hardening rules that a unit can show: saturated arithmetic on server
 * data (plugin/sat.h, keycloak_token_expiry) and leases at the ends of
 * the 64-bit range. Built with UBSan: an overflow aborts the test. */
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../plugin/buf.h"
#include "../../plugin/config.h"
#include "../../plugin/docker.h"
#include "../../plugin/keycloak.h"
#include "../../plugin/lease.h"
#include "../../plugin/sat.h"
#include "../../plugin/watchdog.h"

#ifdef UNIT_WRAP_ALLOC
/* Linked with --wrap=free,realloc: every block the modules free or hand
 * to realloc (which may move it) is checked for the watched secret at its
 * start, where the tests below put it. */
void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static const char *watched;
static int copies_left;
/* Set: the whole block is searched, not only its start. */
static bool look_everywhere;

static void look(const void *p)
{
	size_t n, i, len;

	if (!p || !watched)
		return;
	len = strlen(watched);
	if (memcmp(p, watched, len) == 0) {
		copies_left++;
		return;
	}
	if (!look_everywhere)
		return;
	n = malloc_usable_size((void *)p);
	for (i = 1; i + len <= n; i++)
		if (memcmp((const char *)p + i, watched, len) == 0) {
			copies_left++;
			return;
		}
}

void __wrap_free(void *p)
{
	look(p);
	__real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
	look(p);
	return __real_realloc(p, n);
}
#endif

/* A buffer that starts with a secret and grows many times, then is freed
 * with buf_free_secret, leaves no copy of it in freed memory. */
#ifdef UNIT_WRAP_ALLOC
static void growing_a_secret_buffer_leaves_no_copy(void **state)
{
	static const char secret[] = "S3cret-admin-password-xyzzy";
	struct buf b = BUF_INIT;
	char filler[100];
	int i;

	(void)state;
	memset(filler, 'f', sizeof(filler));
	watched = secret;
	copies_left = 0;
	assert_int_equal(buf_puts(&b, secret), 0);
	for (i = 0; i < 200; i++) /* 256 bytes to 32 KiB: eight moves */
		assert_int_equal(buf_append(&b, filler, sizeof(filler)), 0);
	assert_true(b.cap >= 20000);
	buf_free_secret(&b);
	watched = NULL;
	assert_int_equal(copies_left, 0);
}

/* A secret deep in a buffer (a password after a JSON prefix, a token in
 * a header) is wiped from every old block too, not only its first bytes. */
static void growing_buffer_wipes_the_whole_old_block(void **state)
{
	static const char secret[] = "S3cret-deep-in-the-buffer-plugh";
	struct buf b = BUF_INIT;
	char filler[100];
	int i;

	(void)state;
	memset(filler, 'f', sizeof(filler));
	watched = secret;
	look_everywhere = true;
	copies_left = 0;
	assert_int_equal(buf_append(&b, filler, sizeof(filler)), 0);
	assert_int_equal(buf_puts(&b, secret), 0); /* at offset 100 */
	for (i = 0; i < 200; i++)
		assert_int_equal(buf_append(&b, filler, sizeof(filler)), 0);
	assert_true(b.cap >= 20000);
	buf_free_secret(&b);
	look_everywhere = false;
	watched = NULL;
	assert_int_equal(copies_left, 0);
}

/* docker exec output (how the warm password is read) grows its buffer
 * frame by frame: no copy of the secret is left either. */
static void exec_output_leaves_no_copy(void **state)
{
	static const char secret[] = "warm-Adm1n-pa55word";
	struct buf in = BUF_INIT, out = BUF_INIT;
	unsigned char h[8] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	char chunk[300];
	int i;

	(void)state;
	memset(chunk, 'c', sizeof(chunk));
	memcpy(chunk, secret, strlen(secret));
	h[6] = (unsigned char)(sizeof(chunk) >> 8);
	h[7] = (unsigned char)(sizeof(chunk) & 0xff);
	for (i = 0; i < 40; i++) {
		assert_int_equal(buf_append(&in, (const char *)h, sizeof(h)), 0);
		assert_int_equal(buf_append(&in, chunk, sizeof(chunk)), 0);
	}
	watched = secret;
	copies_left = 0;
	assert_int_equal(docker_demux(in.data, in.len, &out, NULL), 0);
	assert_int_equal(out.len, 40 * sizeof(chunk));
	buf_free_secret(&out);
	watched = NULL;
	assert_int_equal(copies_left, 0);
	buf_free_secret(&in);
}
#endif

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

/* A watchdog container is left over (reap removes it) when it is ours,
 * not running, and its lease ended or it was never started within the
 * grace; a running one waits for its run whatever its lease says. */
static void watchdog_leftovers_are_ours_and_not_running(void **state)
{
	struct lease l = { 0 };
	long long now = 1000000;

	(void)state;
	l.owned = true;
	l.expires = now + 900;
	assert_false(watchdog_leftover("created", now - 5, &l, now)); /* starting */
	assert_true(watchdog_leftover("created", now - WATCHDOG_START_GRACE_S - 1, &l, now));
	assert_false(watchdog_leftover("running", now - 10000, &l, now));
	assert_false(watchdog_leftover("exited", now - 10, &l, now));
	l.expires = now - 1;
	assert_false(watchdog_leftover("running", now - 10000, &l, now));
	assert_true(watchdog_leftover("exited", now - 10, &l, now));
	assert_true(watchdog_leftover("created", now - 5, &l, now));
	l.owned = false; /* not ours: never */
	assert_false(watchdog_leftover("created", now - 10000, &l, now));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(saturating_arithmetic_clamps_at_the_ends),
		cmocka_unit_test(token_expiry_saturates_and_keeps_a_margin),
		cmocka_unit_test(leases_at_the_ends_of_the_range),
		cmocka_unit_test(secret_settings_are_zeroed_in_the_environment_block),
		cmocka_unit_test(watchdog_leftovers_are_ours_and_not_running),
#ifdef UNIT_WRAP_ALLOC /* the ASan build; valgrind's allocator is its own */
		cmocka_unit_test(growing_a_secret_buffer_leaves_no_copy),
		cmocka_unit_test(growing_buffer_wipes_the_whole_old_block),
		cmocka_unit_test(exec_output_leaves_no_copy),
#endif
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("hardening", tests, NULL, NULL);
}
