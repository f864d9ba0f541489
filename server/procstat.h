/* procstat: what Linux's /proc says about a process: gild's own CPU time,
 * memory, descriptors and start time (the Prometheus client libraries'
 * process_* families), and a worker's resident memory. */
#ifndef GILD_SERVER_PROCSTAT_H
#define GILD_SERVER_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

typedef struct procstat {
	double cpu_seconds;      /* user + system, since it started */
	uint64_t resident_bytes; /* its resident set */
	uint64_t virtual_bytes;  /* its address space */
	uint64_t open_fds;       /* descriptors open now */
	uint64_t max_fds;        /* RLIMIT_NOFILE's soft limit */
	double start_time;       /* seconds since the Unix epoch */
} procstat;

/* Fills *out for the calling process from /proc/self/stat, /proc/stat's
 * btime, /proc/self/fd and getrlimit. Returns 0, or -errno when /proc
 * cannot be read (then *out is zeroed). */
int procstat_self(procstat *out);

/* The resident set of process pid in bytes, from /proc/PID/statm (mode
 * 0444: readable as any user, even when pid is not dumpable); 0 if it
 * cannot be read (the process is gone). */
uint64_t procstat_rss_bytes(pid_t pid);

#endif
