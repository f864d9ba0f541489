/* How many CPUs this process may really use: the affinity mask and the
 * cgroup CPU quota (as a container limits it), whichever is smaller. */
#ifndef GILD_CPUS_H
#define GILD_CPUS_H

/* The usable CPU count, at least 1. */
int cpus_usable(void);

/* Parses cgroup v2 `cpu.max` text ("max 100000" or "150000 100000") into a
 * CPU count rounded up; returns 0 when there is no limit or it is unreadable. */
int cpus_from_cpu_max(const char *text);

/* The same for cgroup v1's cfs quota and period files' contents. */
int cpus_from_cfs(const char *quota, const char *period);

#endif
