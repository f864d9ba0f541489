/* Shared by every CUnit test program: runs the registered suites verbosely,
 * lets a test say it was skipped or is expected to fail, and prints the
 * counts tests/run.sh adds up. Implemented in tests/test_main.c. */
#ifndef GILD_TEST_MAIN_H
#define GILD_TEST_MAIN_H

#include <CUnit/Basic.h>

/* Called by the running test, which should then return: it ran nothing and
 * is counted as skipped, not passed. Prints "SKIP: <test>: <why>". */
void test_skip(const char *why);

/* Called by the running test before it asserts: the test is known to fail
 * until `why` is fixed. If it fails, it counts as an expected failure and
 * "XFAIL: <test>: <why>" is printed with its failed assertions; if it
 * passes, "XPASS: <test>: <why>" is printed and it counts as a failure, so
 * the mark is removed once the cause is fixed. */
void test_xfail(const char *why);

/* Runs every registered suite, frees the registry, prints one line
 * "GILD_COUNTS passed=P failed=F skipped=S xfail=X left_out=L" for
 * tests/run.sh, and returns 0 only if no test failed (an unexpected pass
 * included) and no suite's setup or cleanup failed (a suite whose setup
 * fails runs none of its tests: they count as failed). With
 * GILD_TEST_ONLY=TEXT set, only the tests whose name contains TEXT run; the
 * others are "left out", and named on stdout. */
int test_run_all(void);

#endif
