/* Shared by every CUnit test program: runs the registered suites verbosely
 * and turns any failure into the exit status. */
#ifndef GILD_TEST_MAIN_H
#define GILD_TEST_MAIN_H

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

/* Runs every registered suite, frees the registry, and returns 0 only if
 * no assertion failed, no test failed, and no suite's setup or cleanup
 * failed (a suite whose setup fails runs none of its tests). With
 * GILD_TEST_ONLY=TEXT set, only the tests whose name contains TEXT run
 * (the others count as inactive): for rerunning one test while working. */
static inline int
test_run_all(void)
{
	const char *only = getenv("GILD_TEST_ONLY");
	unsigned failed;

	for (CU_pSuite s = CU_get_registry()->pSuite; only != NULL && s != NULL;
	     s = s->pNext)
		for (CU_pTest t = s->pTest; t != NULL; t = t->pNext)
			if (strstr(t->pName, only) == NULL)
				CU_set_test_active(t, CU_FALSE);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed != 0;
}

#endif
