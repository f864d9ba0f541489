/* Shared by every CUnit test program: runs the registered suites verbosely
 * and turns any failure into the exit status. */
#ifndef GILD_TEST_MAIN_H
#define GILD_TEST_MAIN_H

#include <CUnit/Basic.h>

/* Runs every registered suite, frees the registry, and returns 0 only if
 * no assertion failed, no test failed, and no suite's setup or cleanup
 * failed (a suite whose setup fails runs none of its tests). */
static inline int
test_run_all(void)
{
	unsigned failed;

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed != 0;
}

#endif
