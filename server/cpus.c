/* How many CPUs this process may really use. */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
ceil_div(long long quota, long long period)
{
	if (quota <= 0 || period <= 0)
		return 0;
	return (int) ((quota + period - 1) / period);
}

int
cpus_from_cpu_max(const char *text)
{
	long long quota, period;

	if (text == NULL || strncmp(text, "max", 3) == 0)
		return 0;
	if (sscanf(text, "%lld %lld", &quota, &period) != 2)
		return 0;
	return ceil_div(quota, period);
}

int
cpus_from_cfs(const char *quota, const char *period)
{
	if (quota == NULL || period == NULL)
		return 0;
	return ceil_div(atoll(quota), atoll(period));
}

/* Reads a small file into buf; returns buf or NULL. */
static char *
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The cgroup v2 folder of this process, from /proc/self/cgroup ("0::/x"). */
static int
cgroup2_path(char *out, size_t len)
{
	char buf[4096], *line, *save = NULL;

	if (slurp("/proc/self/cgroup", buf, sizeof(buf)) == NULL)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(out, len, "/sys/fs/cgroup%s", line + 3);
			return 0;
		}
	}
	return -1;
}

int
cpus_usable(void)
{
	char path[4200], a[128], b[128];
	cpu_set_t set;
	int n = 0, quota = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = 1;
	/* cgroup v2: the process's own group, then the root view. */
	if (cgroup2_path(path, sizeof(path) - 16) == 0) {
		strcat(path, "/cpu.max");
		quota = cpus_from_cpu_max(slurp(path, a, sizeof(a)));
	}
	if (quota == 0)
		quota = cpus_from_cpu_max(
		    slurp("/sys/fs/cgroup/cpu.max", a, sizeof(a)));
	if (quota == 0)
		quota = cpus_from_cfs(
		    slurp("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", a, sizeof(a)),
		    slurp("/sys/fs/cgroup/cpu/cpu.cfs_period_us", b, sizeof(b)));
	return quota > 0 && quota < n ? quota : n;
}
