/* Tests of server/svctime.c: per-function service-time estimates. */
#include "server/svctime.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>
#include "test_main.h"

static void
note(svctime *t, const char *name, uint32_t us)
{
	svctime_note(t, name, strlen(name), us);
}

static uint32_t
get(const svctime *t, const char *name)
{
	return svctime_get(t, name, strlen(name));
}

/* Unknown until a call ran; up at once to a longer run, down an eighth of
 * the way per shorter one. */
static void
test_estimates(void)
{
	svctime *t;
	uint32_t prev;

	CU_ASSERT_EQUAL_FATAL(svctime_init(&t), 0);
	CU_ASSERT_EQUAL(get(t, "f"), 0);
	note(t, "f", 800);
	CU_ASSERT_EQUAL(get(t, "f"), 800);
	CU_ASSERT_EQUAL(get(t, "g"), 0); /* per function */
	CU_ASSERT_EQUAL(svctime_get(t, "ff", 1), 800); /* len counts */
	note(t, "f", 0); /* no stamp: ignored */
	CU_ASSERT_EQUAL(get(t, "f"), 800);
	note(t, "f", 5000);
	CU_ASSERT_EQUAL(get(t, "f"), 5000);
	note(t, "f", 200);
	CU_ASSERT_EQUAL(get(t, "f"), 5000 - (4800 + 7) / 8);
	/* Quick calls bring it down to their level, step by step. */
	for (int i = 0; i < 200; i++) {
		prev = get(t, "f");
		note(t, "f", 200);
		CU_ASSERT(get(t, "f") <= prev);
	}
	CU_ASSERT_EQUAL(get(t, "f"), 200);
	svctime_fini(t);
	svctime_fini(NULL);
}

/* Bounded: names past SVCTIME_NAME_MAX have no estimate; many functions
 * share SVCTIME_SLOTS entries, the newest keeping its slot. */
static void
test_bounded(void)
{
	char name[SVCTIME_NAME_MAX + 2], fn[32];
	svctime *t;
	int known = 0;

	CU_ASSERT_EQUAL_FATAL(svctime_init(&t), 0);
	memset(name, 'x', sizeof(name));
	svctime_note(t, name, SVCTIME_NAME_MAX + 1, 10);
	CU_ASSERT_EQUAL(svctime_get(t, name, SVCTIME_NAME_MAX + 1), 0);
	svctime_note(t, name, SVCTIME_NAME_MAX, 10);
	CU_ASSERT_EQUAL(svctime_get(t, name, SVCTIME_NAME_MAX), 10);
	for (int i = 0; i < 4 * SVCTIME_SLOTS; i++) {
		snprintf(fn, sizeof(fn), "fn%d", i);
		note(t, fn, (uint32_t) i + 1);
		CU_ASSERT_EQUAL(get(t, fn), (uint32_t) i + 1);
	}
	for (int i = 0; i < 4 * SVCTIME_SLOTS; i++) {
		snprintf(fn, sizeof(fn), "fn%d", i);
		uint32_t us = get(t, fn);
		CU_ASSERT(us == 0 || us == (uint32_t) i + 1);
		known += us != 0;
	}
	CU_ASSERT(known <= SVCTIME_SLOTS);
	CU_ASSERT(known >= SVCTIME_SLOTS / 2);
	svctime_fini(t);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("svctime", NULL, NULL);
	CU_add_test(s, "estimates rise at once, fall slowly", test_estimates);
	CU_add_test(s, "bounded in functions and name length", test_bounded);
	return test_run_all();
}
