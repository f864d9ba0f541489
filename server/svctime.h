/* Service-time estimates: how long each function's calls run, from the
 * workers' own stamps (FromWorker.run_us), for the scheduler's send-ahead
 * policy (sched.h: job.est_us). Pure bookkeeping and bounded: at most
 * SVCTIME_SLOTS functions with names of at most SVCTIME_NAME_MAX bytes are
 * tracked; a function that is not (a longer name, or one whose slot
 * another took) simply has no estimate. */
#ifndef GILD_SVCTIME_H
#define GILD_SVCTIME_H

#include <stddef.h>
#include <stdint.h>

#define SVCTIME_SLOTS 256
#define SVCTIME_NAME_MAX 64

typedef struct svctime svctime;

/* Returns 0 or -ENOMEM. */
int svctime_init(svctime **out);
/* Accepts NULL. */
void svctime_fini(svctime *t);

/* A call of function `name` (len bytes, not NUL-terminated) ran us
 * microseconds. The estimate rises to a longer run at once and falls an
 * eighth of the way to a shorter one per call: a function that was slow
 * lately counts as slow until it has been quick for a while, so a call is
 * sent ahead behind it only when that is likely to pay. */
void svctime_note(svctime *t, const char *name, size_t len, uint32_t us);

/* The estimate for `name` in microseconds, 0 when there is none. */
uint32_t svctime_get(const svctime *t, const char *name, size_t len);

#endif
