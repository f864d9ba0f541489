/* recovery: how long a worker slot is out of service after its worker is
 * SIGKILLed, as a client sees it.
 *
 *   build/bench/recovery URL [ROUNDS]
 *
 * Each round: read worker 0's pid from status, SIGKILL it, then poll status
 * as fast as it answers until slot 0 is ready again with a new pid. Prints
 * each round's time and the median, p90 and max. Run it against gild on the
 * same machine (it sends the signal). */
#include "gild.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* Slot 0's pid, and whether it is ready (or busy). */
static long
slot0(gild_client *c, int *ready)
{
	gild_value *st = NULL;
	long pid = -1;

	*ready = 0;
	if (gild_status(c, 5000, &st, NULL) != GILD_OK)
		return -1;
	const gild_value *w = gild_value_item(gild_map_get(st, "workers"), 0);
	const char *state = gild_value_str(gild_map_get(w, "state"), NULL);
	pid = (long) gild_value_int(gild_map_get(w, "pid"));
	*ready = state != NULL &&
		 (!strcmp(state, "ready") || !strcmp(state, "busy"));
	gild_value_free(st);
	return pid;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *urls[1];
	gild_client *c = NULL;
	gild_error err = {0};
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	double *t;
	int ready, done = 0;

	if (argc < 2 || rounds <= 0 || rounds > 10000) {
		fprintf(stderr, "usage: recovery URL [ROUNDS]\n");
		return 2;
	}
	urls[0] = argv[1];
	if (gild_connect(&c, urls, 1, &err) != GILD_OK) {
		fprintf(stderr, "recovery: %s\n", err.message);
		return 1;
	}
	t = calloc((size_t) rounds, sizeof(*t));
	for (int r = 0; r < rounds && t != NULL; r++) {
		long victim = -1, pid;
		double t0, end;

		/* Start from a ready slot. */
		for (end = now_ms() + 30000; now_ms() < end; usleep(1000))
			if ((victim = slot0(c, &ready)) > 0 && ready)
				break;
		if (victim <= 0 || !ready || kill((pid_t) victim, SIGKILL) != 0) {
			fprintf(stderr, "recovery: no ready worker 0\n");
			break;
		}
		t0 = now_ms();
		for (end = t0 + 30000; now_ms() < end;) {
			pid = slot0(c, &ready);
			if (ready && pid > 0 && pid != victim)
				break;
		}
		t[done++] = now_ms() - t0;
		printf("round %d: %.1f ms\n", r + 1, t[done - 1]);
		usleep(200000); /* let the restart backoff see a healthy worker */
	}
	if (done > 0) {
		qsort(t, (size_t) done, sizeof(*t), cmp);
		printf("recovery over %d rounds: median %.1f ms, p90 %.1f ms, "
		       "max %.1f ms\n",
		    done, t[done / 2], t[(done * 9) / 10 < done ? (done * 9) / 10 : done - 1],
		    t[done - 1]);
	}
	free(t);
	gild_close(c);
	return done == rounds ? 0 : 1;
}
