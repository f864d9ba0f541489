/* A CUnit program with one test of each outcome, for tests/python/
 * test_runner.py: what tests/test_main.c counts and names must match what
 * happened. Not part of make test's own list: it fails on purpose. */
#include "test_main.h"

static void
passes(void)
{
	CU_ASSERT_EQUAL(1 + 1, 2);
}

static void
fails(void)
{
	CU_ASSERT_EQUAL(1 + 1, 3);
}

static void
skipped(void)
{
	test_skip("the fake has nothing to run");
}

static void
fails_as_expected(void)
{
	test_xfail("a known bug");
	CU_ASSERT_EQUAL(2 + 2, 5);
}

static void
passes_unexpectedly(void)
{
	test_xfail("a bug that was fixed");
	CU_ASSERT_EQUAL(2 + 2, 4);
}

static int
cannot_set_up(void)
{
	return 1;
}

int
main(void)
{
	CU_pSuite s, broken;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("fake", NULL, NULL);
	CU_add_test(s, "passes", passes);
	CU_add_test(s, "passes too", passes);
	CU_add_test(s, "fails", fails);
	CU_add_test(s, "skipped", skipped);
	CU_add_test(s, "fails as expected", fails_as_expected);
	CU_add_test(s, "passes unexpectedly", passes_unexpectedly);
	broken = CU_add_suite("fake, setup fails", cannot_set_up, NULL);
	CU_add_test(broken, "never runs", passes);
	return test_run_all();
}
