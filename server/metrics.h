/* Counters and histograms behind the HTTP side port's /metrics, rendered
 * in the Prometheus text format (version 0.0.4). The server feeds them from
 * its loop; nothing here is shared between threads. */
#ifndef GILD_METRICS_H
#define GILD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "procstat.h"

typedef struct metrics metrics;

/* Returns NULL when out of memory. */
metrics *metrics_new(void);
void metrics_free(metrics *m);

/* A call was answered: its function (len bytes; NULL for one the app does
 * not export, counted as "(unknown)"), the gild.v1.Code it ended with, and
 * the seconds from its arrival to its answer (< 0: not timed). */
void metrics_call(metrics *m, const char *function, size_t len, int code,
    double seconds);

/* A call of function (as for metrics_call) started on a worker, seconds
 * after its arrival: counted once per call, whatever happens to it. */
void metrics_wait(metrics *m, const char *function, size_t len,
    double seconds);
/* A batch of `calls` calls of batched function (as for metrics_call) was
 * handed to a worker. */
void metrics_batch(metrics *m, const char *function, size_t len,
    size_t calls);

/* What the server knows right now, rendered as gauges and counters next
 * to the calls. */
typedef struct metrics_now {
	uint64_t queued, in_flight;
	int workers;
	const char *const *worker_state; /* workers of them: each one's */
	const uint64_t *worker_rss;        /* workers of them: resident bytes
					      (0: no process) */
	const char *const *restart_reason; /* n_reasons names, and */
	const uint64_t *restarts;          /* their counts */
	size_t n_reasons;
	const char *const *recycle_reason; /* n_recycle_reasons names, and */
	const uint64_t *recycles;          /* their counts */
	size_t n_recycle_reasons;
	const char *version, *runtime;     /* gild_build_info's labels */
	procstat process;                  /* gild's own (process_*) */
	uint64_t bytes_in, bytes_out, shm_bytes;
	double uptime_s;
	int draining;
	uint64_t connections;              /* client connections open */
	uint64_t app_lines, app_dropped;   /* app output lines logged, and
					      dropped (gild's stderr full) */
	const char *const *limit;          /* n_limits options ("max-queue"), */
	const uint64_t *limit_hits;        /* how often each was reached */
	size_t n_limits;
} metrics_now;

/* The text for GET /metrics (malloc'd), or NULL when out of memory. */
char *metrics_render(const metrics *m, const metrics_now *now);

#endif
