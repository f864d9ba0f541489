/* procstat: a process's CPU time, memory, descriptors and start time, read
 * from /proc (proc(5)). */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The boot time in seconds since the epoch (/proc/stat's btime), or -1. */
static long long
boot_time(void)
{
	char line[256];
	long long btime = -1;
	FILE *f = fopen("/proc/stat", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	return btime;
}

/* The descriptors open in this process: /proc/self/fd's entries, less
 * the one reading it. */
static uint64_t
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0;
}

int
procstat_self(procstat *out)
{
	char buf[1024], *p;
	unsigned long long utime, stime, start, vsize;
	long long rss, btime;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	size_t n;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if ((f = fopen("/proc/self/stat", "r")) == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields after it start past its last ')'. Field 3 (state) follows;
	 * utime and stime are fields 14 and 15, starttime 22, vsize 23, rss
	 * 24 (in pages). */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1,
		" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d "
		"%*d %*d %*d %*d %*d %llu %llu %lld",
		&utime, &stime, &start, &vsize, &rss) != 5)
		return -EINVAL;
	if (ticks <= 0)
		ticks = 100;
	out->cpu_seconds = (double) (utime + stime) / (double) ticks;
	out->virtual_bytes = vsize;
	out->resident_bytes = rss > 0 ? (uint64_t) rss * (uint64_t) page : 0;
	if ((btime = boot_time()) >= 0)
		out->start_time = (double) btime + (double) start / (double) ticks;
	out->open_fds = count_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
							    : rl.rlim_cur;
	return 0;
}

uint64_t
procstat_rss_bytes(pid_t pid)
{
	char path[64];
	unsigned long long size, resident;
	FILE *f;
	int n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (uint64_t) sysconf(_SC_PAGESIZE) : 0;
}
