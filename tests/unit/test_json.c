/* JSON extraction from server responses (plugin/json.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../plugin/json.h"

static void parse_ok(struct json *j, const char *text)
{
	assert_int_equal(json_parse(j, text, strlen(text)), 0);
}

static void nested_key_of_the_same_name_never_matches(void **state)
{
	const char *text = "{\"inner\":{\"access_token\":\"wrong\"},\"access_token\":\"right\"}";
	struct json j;
	char out[32];

	(void)state;
	parse_ok(&j, text);
	assert_int_equal(json_get_string(&j, 0, "access_token", out, sizeof(out)), 5);
	assert_string_equal(out, "right");
	json_free(&j);
}

static void key_inside_an_array_value_is_not_a_member(void **state)
{
	const char *text = "{\"list\":[\"realm\",{\"realm\":\"x\"}],\"n\":1}";
	struct json j;
	char out[8];

	(void)state;
	parse_ok(&j, text);
	assert_int_equal(json_object_get(&j, 0, "realm"), -1);
	assert_int_equal(json_get_string(&j, 0, "realm", out, sizeof(out)), -1);
	json_free(&j);
}

static void escapes_are_decoded(void **state)
{
	const char *text = "{\"s\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}";
	struct json j;
	char out[64];

	(void)state;
	parse_ok(&j, text);
	assert_true(json_get_string(&j, 0, "s", out, sizeof(out)) > 0);
	assert_string_equal(out, "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
	json_free(&j);
}

static void invalid_escapes_and_nul_are_refused(void **state)
{
	const char *bad[] = {
		"{\"s\":\"\\x41\"}",	"{\"s\":\"\\u12\"}",	 "{\"s\":\"\\ud800\"}",
		"{\"s\":\"\\udc00x\"}", "{\"s\":\"a\\u0000b\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json j;
		char out[16];

		if (json_parse(&j, bad[i], strlen(bad[i])) == 0)
			assert_int_equal(json_get_string(&j, 0, "s", out, sizeof(out)), -1);
		json_free(&j);
	}
}

static void a_string_that_does_not_fit_is_refused_not_cut(void **state)
{
	const char *text = "{\"token\":\"0123456789\"}";
	struct json j;
	char out[10];

	(void)state;
	parse_ok(&j, text);
	assert_int_equal(json_get_string(&j, 0, "token", out, sizeof(out)), -1);
	json_free(&j);
}

static void truncated_and_hostile_bodies_are_not_json(void **state)
{
	const char *bad[] = {
		"{\"access_token\":\"abc",
		"{\"a\":1",
		"",
		"   ",
		"<html>oops</html>",
		"{} {}",
		"{\"a\":1}x",
		"nul",
		"123",
		"{\"a\" 1}",
		"[1,2",
		"{\"a\":tru}",
		"{\"a\":01}",
		"{\"a\":1.}",
		"{\"a\":-}",
		"{\"a\":1e}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json j;

		assert_int_equal(json_parse(&j, bad[i], strlen(bad[i])), -1);
		json_free(&j);
	}
}

static void large_documents_grow_the_token_array(void **state)
{
	size_t n = 20000, i, len = 0;
	char *text = malloc(n * 8 + 16);
	struct json j;

	(void)state;
	assert_non_null(text);
	text[len++] = '[';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, 16, "%s{\"a\":1}", i ? "," : "");
	text[len++] = ']';
	assert_int_equal(json_parse(&j, text, len), 0);
	assert_int_equal(json_array_len(&j, 0), (int)n);
	assert_true(json_is_object(&j, json_array_get(&j, 0, (int)n - 1)));
	assert_int_equal(json_array_get(&j, 0, (int)n), -1);
	json_free(&j);
	free(text);
}

/* One pass over 100 k nested elements, in order, each subtree skipped
 * once: the iterator never walks back to the start. */
static void the_iterator_visits_each_element_once_in_order(void **state)
{
	size_t n = 100000, i, len = 0;
	char *text = malloc(n * 32 + 16);
	struct json_iter it;
	struct json j;
	long long v;
	int idx, seen = 0;

	(void)state;
	assert_non_null(text);
	text[len++] = '[';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, 32, "%s{\"n\":%zu,\"x\":[1,{}]}", i ? "," : "",
					i);
	text[len++] = ']';
	assert_int_equal(json_parse(&j, text, len), 0);
	assert_int_equal(json_iter_init(&it, &j, 0), (int)n);
	for (idx = json_iter_next(&it); idx >= 0; idx = json_iter_next(&it)) {
		assert_int_equal(json_get_long(&j, idx, "n", &v), 0);
		assert_int_equal(v, seen);
		seen++;
	}
	assert_int_equal(seen, (int)n);
	assert_int_equal(json_iter_next(&it), -1);
	/* not an array: no element, -1 */
	assert_int_equal(json_iter_init(&it, &j, 1), -1);
	assert_int_equal(json_iter_next(&it), -1);
	json_free(&j);
	free(text);
}

static void numbers_come_from_numbers_or_digit_strings(void **state)
{
	const char *text =
		"{\"expires_in\":60,\"exp\":\"1700000000\",\"bad\":\"12x\",\"f\":1.5,\"o\":{}}";
	struct json j;
	long long v = 0;

	(void)state;
	parse_ok(&j, text);
	assert_int_equal(json_get_long(&j, 0, "expires_in", &v), 0);
	assert_int_equal(v, 60);
	assert_int_equal(json_get_long(&j, 0, "exp", &v), 0);
	assert_int_equal(v, 1700000000LL);
	assert_int_equal(json_get_long(&j, 0, "bad", &v), -1);
	assert_int_equal(json_get_long(&j, 0, "f", &v), -1);
	assert_int_equal(json_get_long(&j, 0, "o", &v), -1);
	assert_int_equal(json_get_long(&j, 0, "missing", &v), -1);
	json_free(&j);
}

static void lookups_on_non_objects_answer_absent(void **state)
{
	const char *text = "[\"a\",\"b\"]";
	struct json j;

	(void)state;
	parse_ok(&j, text);
	assert_int_equal(json_object_get(&j, 0, "a"), -1);
	assert_int_equal(json_object_get(&j, 99, "a"), -1);
	assert_int_equal(json_object_get(&j, -1, "a"), -1);
	assert_int_equal(json_array_get(&j, 0, 2), -1);
	assert_int_equal(json_array_get(&j, 0, -1), -1);
	json_free(&j);
}

static void error_messages_come_from_the_first_key_present(void **state)
{
	static const char *const keys[] = { "error_description", "error", NULL };
	const char *both = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid\\nuser\"}";
	const char *one = "{\"nested\":{\"error\":\"no\"},\"error\":\"HTTP 401 Unauthorized\"}";
	char out[64];

	(void)state;
	assert_int_equal(json_error_message(both, strlen(both), keys, out, sizeof(out)), 0);
	assert_string_equal(out, "Invalid user");
	assert_int_equal(json_error_message(one, strlen(one), keys, out, sizeof(out)), 0);
	assert_string_equal(out, "HTTP 401 Unauthorized");
	assert_int_equal(json_error_message("<html>", 6, keys, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(json_error_message("{}", 2, keys, out, sizeof(out)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nested_key_of_the_same_name_never_matches),
		cmocka_unit_test(key_inside_an_array_value_is_not_a_member),
		cmocka_unit_test(escapes_are_decoded),
		cmocka_unit_test(invalid_escapes_and_nul_are_refused),
		cmocka_unit_test(a_string_that_does_not_fit_is_refused_not_cut),
		cmocka_unit_test(truncated_and_hostile_bodies_are_not_json),
		cmocka_unit_test(large_documents_grow_the_token_array),
		cmocka_unit_test(the_iterator_visits_each_element_once_in_order),
		cmocka_unit_test(numbers_come_from_numbers_or_digit_strings),
		cmocka_unit_test(lookups_on_non_objects_answer_absent),
		cmocka_unit_test(error_messages_come_from_the_first_key_present),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
