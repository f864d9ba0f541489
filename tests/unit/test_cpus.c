/* Tests of server/cpus.c: reading CPU quotas the way containers set them. */
#include "server/cpus.h"

#include <CUnit/Basic.h>
#include <sched.h>
#include "test_main.h"

static void
test_cpu_max(void)
{
	static const struct {
		const char *text;
		int cpus;
	} cases[] = {
	    {"max 100000\n", 0}, {"100000 100000\n", 1}, {"150000 100000", 2},
	    {"200000 100000", 2}, {"50000 100000", 1}, {"400000 100000", 4},
	    {"", 0}, {"garbage", 0}, {"-1 100000", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CU_ASSERT_EQUAL(cpus_from_cpu_max(cases[i].text), cases[i].cpus);
	CU_ASSERT_EQUAL(cpus_from_cpu_max(NULL), 0);
}

static void
test_cfs(void)
{
	CU_ASSERT_EQUAL(cpus_from_cfs("-1\n", "100000\n"), 0);
	CU_ASSERT_EQUAL(cpus_from_cfs("250000\n", "100000\n"), 3);
	CU_ASSERT_EQUAL(cpus_from_cfs(NULL, "100000"), 0);
}

static void
test_usable_within_affinity(void)
{
	cpu_set_t set;
	int n = cpus_usable();

	CU_ASSERT_FATAL(sched_getaffinity(0, sizeof(set), &set) == 0);
	CU_ASSERT(n >= 1);
	CU_ASSERT(n <= CPU_COUNT(&set));
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cpus", NULL, NULL);
	CU_add_test(s, "cgroup v2 cpu.max", test_cpu_max);
	CU_add_test(s, "cgroup v1 cfs quota", test_cfs);
	CU_add_test(s, "usable count within the affinity mask", test_usable_within_affinity);
	return test_run_all();
}
