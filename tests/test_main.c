/* The run of a CUnit test program: skips, expected failures, the filter of
 * GILD_TEST_ONLY, and the GILD_COUNTS line tests/run.sh reads. */
#include "test_main.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mark_kind { MARK_SKIP, MARK_XFAIL };

typedef struct mark {
	CU_pTest test;
	enum mark_kind kind;
	const char *why;
} mark;

enum { MAX_MARKS = 512 };
static mark marks[MAX_MARKS];
static int nmarks;

static void
add_mark(enum mark_kind kind, const char *why)
{
	CU_pTest t = CU_get_current_test();

	if (t == NULL || nmarks == MAX_MARKS) {
		fprintf(stderr, "test_main: cannot mark a test (%s)\n", why);
		abort();
	}
	marks[nmarks++] = (mark){.test = t, .kind = kind, .why = why};
}

void
test_skip(const char *why)
{
	add_mark(MARK_SKIP, why);
	printf("\n  SKIP: %s: %s\n", CU_get_current_test()->pName, why);
}

void
test_xfail(const char *why)
{
	add_mark(MARK_XFAIL, why);
}

static const mark *
find_mark(CU_pTest t, enum mark_kind kind)
{
	for (int i = 0; i < nmarks; i++)
		if (marks[i].test == t && marks[i].kind == kind)
			return &marks[i];
	return NULL;
}

/* Whether t has a failed assertion (or setup) on record; with print, lists
 * them. */
static bool
test_failed(CU_pTest t, bool print)
{
	bool failed = false;

	for (CU_pFailureRecord f = CU_get_failure_list(); f != NULL;
	     f = f->pNext) {
		if (f->pTest != t || f->type == CUF_TestInactive)
			continue;
		failed = true;
		if (print)
			printf("    %s:%u: %s\n", f->strFileName ? f->strFileName : "?",
			    f->uiLineNumber, f->strCondition ? f->strCondition : "");
	}
	return failed;
}

/* Marks every test whose name lacks `only` inactive; returns how many. */
static unsigned
filter(const char *only)
{
	unsigned left_out = 0;

	for (CU_pSuite s = CU_get_registry()->pSuite; s != NULL; s = s->pNext)
		for (CU_pTest t = s->pTest; t != NULL; t = t->pNext)
			if (strstr(t->pName, only) == NULL) {
				CU_set_test_active(t, CU_FALSE);
				if (left_out++ == 0)
					printf("GILD_TEST_ONLY=%s leaves out:\n",
					    only);
				printf("  %s\n", t->pName);
			}
	return left_out;
}

int
test_run_all(void)
{
	const char *only = getenv("GILD_TEST_ONLY");
	unsigned passed = 0, failed = 0, skipped = 0, xfail = 0, left_out = 0;

	if (only != NULL && *only != '\0')
		left_out = filter(only);
	CU_set_fail_on_inactive(CU_FALSE);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	printf("\n");
	for (CU_pSuite s = CU_get_registry()->pSuite; s != NULL; s = s->pNext) {
		bool not_set_up = false;

		for (CU_pFailureRecord f = CU_get_failure_list(); f != NULL;
		     f = f->pNext) {
			if (f->pSuite != s || f->pTest != NULL)
				continue;
			if (f->type == CUF_SuiteInitFailed) {
				printf("FAIL: suite '%s' could not be set up: "
				       "none of its tests ran\n", s->pName);
				not_set_up = true;
			} else if (f->type == CUF_SuiteCleanupFailed) {
				printf("FAIL: suite '%s' could not be cleaned "
				       "up\n", s->pName);
				failed++;
			}
		}
		for (CU_pTest t = s->pTest; t != NULL; t = t->pNext) {
			const mark *x = find_mark(t, MARK_XFAIL);
			bool bad = test_failed(t, false);

			if (!t->fActive)
				continue;
			if (x != NULL && bad) {
				printf("XFAIL: %s: %s\n", t->pName, x->why);
				test_failed(t, true);
				xfail++;
			} else if (x != NULL) {
				printf("XPASS: %s: %s (remove the mark)\n",
				    t->pName, x->why);
				failed++;
			} else if (bad) {
				failed++;
			} else if (find_mark(t, MARK_SKIP) != NULL) {
				skipped++;
			} else if (not_set_up) {
				failed++; /* never ran */
			} else {
				passed++;
			}
		}
	}
	printf("GILD_COUNTS passed=%u failed=%u skipped=%u xfail=%u "
	       "left_out=%u\n",
	    passed, failed, skipped, xfail, left_out);
	CU_cleanup_registry();
	return failed != 0;
}
