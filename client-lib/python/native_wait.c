/* gild._native: long waits, sliced so that signal handlers run (native.h). */
#include "native.h"

/* ------------------------------------------------------------ long waits */

/* In the main thread a wait with no limit (or a long one) runs in slices of
 * SLICE_MS, so that signal handlers run in between: Ctrl-C interrupts
 * wait(), poll() and Stream.next() as it would time.sleep(). Other threads
 * wait in one go (Python runs signal handlers in the main thread only). */
#define SLICE_MS 100

/* Whether this thread may run signal handlers. 3.13 made
 * _PyOS_IsMainThread internal: there every thread slices its long waits,
 * PyErr_CheckSignals doing nothing outside the main thread. */
static bool
runs_signal_handlers(void)
{
#if PY_VERSION_HEX < 0x030D0000
	return _PyOS_IsMainThread();
#else
	return true;
#endif
}


void
waiter_init(waiter *w, int timeout_ms)
{
	w->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
	w->sliced = (timeout_ms < 0 || timeout_ms > SLICE_MS) &&
	            runs_signal_handlers();
	clock_gettime(CLOCK_MONOTONIC, &w->end);
	if (timeout_ms > 0) {
		w->end.tv_sec += timeout_ms / 1000;
		w->end.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
		if (w->end.tv_nsec >= 1000000000L) {
			w->end.tv_sec++;
			w->end.tv_nsec -= 1000000000L;
		}
	}
}

/* The milliseconds to wait next. */
int
waiter_slice(const waiter *w)
{
	struct timespec now;
	long long left;

	if (!w->sliced)
		return w->timeout_ms;
	if (w->timeout_ms < 0)
		return SLICE_MS;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (long long) (w->end.tv_sec - now.tv_sec) * 1000 +
	       (w->end.tv_nsec - now.tv_nsec) / 1000000;
	return left <= 0 ? 0 : left < SLICE_MS ? (int) left : SLICE_MS;
}

/* After a slice of `slice` ms passed with nothing: 1 to wait on, 0 when
 * the whole timeout has passed, -1 with the exception a signal handler
 * raised. */
int
waiter_more(const waiter *w, int slice)
{
	if (!w->sliced)
		return 0;
	if (PyErr_CheckSignals() == -1)
		return -1;
	return w->timeout_ms < 0 || (slice > 0 && waiter_slice(w) > 0);
}
