/* The marks that make a realm a spare of a parent (plugin/pool.c,
 * plugin/lease.c): a name alone proves nothing. */
#include <string.h>

#include "unit.h"
#include "../../plugin/lease.h"
#include "../../plugin/pool.h"

static const char *const attrs_path[] = { "attributes", NULL };

static struct lease marks(const char *json)
{
	struct lease l;

	assert_int_equal(lease_from_json(json, strlen(json), attrs_path, &l), 0);
	return l;
}

#define SPARE(parent)                                                                              \
	"{\"attributes\":{\"drone-deps.owner\":\"drone-deps\",\"drone-deps.run\":\"spare\","       \
	"\"drone-deps.job\":\"pool\",\"drone-deps.expires\":\"99\",\"drone-deps.spare\":\"" parent \
	"\"}}"

static void a_spare_is_claimed_only_by_its_parent(void **state)
{
	struct lease l = marks(SPARE("acme"));

	(void)state;
	assert_string_equal(l.spare, "acme");
	assert_true(pool_is_spare(&l, "acme-spare-0", "acme"));
	assert_true(pool_is_spare(&l, "acme-spare-12", "acme"));
	assert_true(pool_is_spare(&l, "acme-spare-3", NULL));
	/* another parent, or a name that is not a slot of this one */
	assert_false(pool_is_spare(&l, "acme-spare-0", "acm"));
	assert_false(pool_is_spare(&l, "acme-x-spare-0", "acme"));
	assert_false(pool_is_spare(&l, "acme-spare-0x", NULL));
	assert_false(pool_is_spare(&l, "acme-spare-", NULL));
	assert_false(pool_is_spare(&l, "acme-spare-1234", NULL));
	/* "acme" is not the parent of "acme-b-spare-0" */
	assert_false(pool_is_spare(&l, "acme-b-spare-0", NULL));
}

static void an_instance_spare_is_claimed_by_its_mark_only(void **state)
{
	struct lease l = marks(SPARE("@instance"));
	struct lease named = marks(SPARE("drone-deps-pool"));

	(void)state;
	assert_true(pool_is_spare(&l, "drone-deps-pool-spare-0", POOL_INSTANCE_MARK));
	assert_true(pool_is_spare(&l, "drone-deps-pool-spare-31", NULL));
	/* a parent never claims an instance spare as its own, nor the reverse */
	assert_false(pool_is_spare(&l, "drone-deps-pool-spare-0", "drone-deps-pool"));
	assert_false(pool_is_spare(&l, "acme-spare-0", POOL_INSTANCE_MARK));
	assert_false(pool_is_spare(&l, "acme-spare-0", NULL));
	/* the instance's names under a parent's mark no drone-deps writes
	 * (no parent is called so): neither claimed nor reaped */
	assert_false(pool_is_spare(&named, "drone-deps-pool-spare-0", "drone-deps-pool"));
	assert_false(pool_is_spare(&named, "drone-deps-pool-spare-0", NULL));
	assert_false(pool_is_spare(&named, "drone-deps-pool-spare-0", POOL_INSTANCE_MARK));
}

static void marks_short_of_a_spare_are_not_one(void **state)
{
	struct lease none = marks("{\"attributes\":{}}");
	struct lease other = marks(SPARE("other"));
	struct lease run = marks("{\"attributes\":{\"drone-deps.owner\":\"drone-deps\","
				 "\"drone-deps.run\":\"abc123\",\"drone-deps.job\":\"pool\","
				 "\"drone-deps.spare\":\"acme\"}}");
	struct lease unowned = marks("{\"attributes\":{\"drone-deps.run\":\"spare\","
				     "\"drone-deps.job\":\"pool\",\"drone-deps.spare\":\"acme\"}}");
	struct lease legacy = marks("{\"attributes\":{\"drone-deps.owner\":\"drone-deps\","
				    "\"drone-deps.run\":\"spare\",\"drone-deps.job\":\"pool\"}}");
	/* a run mark of "spare" alone is no spare: the job mark is one too */
	struct lease job = marks("{\"attributes\":{\"drone-deps.owner\":\"drone-deps\","
				 "\"drone-deps.run\":\"spare\",\"drone-deps.job\":\"a#1.1.1\","
				 "\"drone-deps.spare\":\"acme\"}}");

	(void)state;
	assert_false(pool_is_spare(&none, "acme-spare-0", "acme"));
	assert_false(pool_is_spare(&none, "acme-spare-0", NULL));
	assert_false(pool_is_spare(&other, "acme-spare-0", "acme"));
	assert_false(pool_is_spare(&other, "acme-spare-0", NULL));
	assert_false(pool_is_spare(&run, "acme-spare-0", "acme"));
	assert_false(pool_is_spare(&unowned, "acme-spare-0", "acme"));
	assert_false(pool_is_spare(&job, "acme-spare-0", "acme"));
	assert_false(pool_is_spare(&job, "acme-spare-0", NULL));
	/* a spare from before the spare mark: reaped, never claimed */
	assert_true(pool_is_spare(&legacy, "acme-spare-0", NULL));
	assert_false(pool_is_spare(&legacy, "acme-spare-0", "acme"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_spare_is_claimed_only_by_its_parent),
		cmocka_unit_test(an_instance_spare_is_claimed_by_its_mark_only),
		cmocka_unit_test(marks_short_of_a_spare_are_not_one),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
