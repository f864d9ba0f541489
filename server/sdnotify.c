/* sdnotify: READY, STOPPING and WATCHDOG for systemd (sdnotify.h). */
#include "sdnotify.h"

#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

struct sdnotify {
	struct event *watchdog_ev; /* NULL: no watchdog asked for */
	bool ready, stopping;
	bool watchdog_failed;      /* a failed feed was logged */
};

/* Sends state (and STATUS=status) when NOTIFY_SOCKET is set; logs a
 * failure, which systemd would otherwise only show as a timeout. */
static void
notify(const char *state, const char *status)
{
	int rc = status != NULL
		     ? sd_notifyf(0, "%s\nSTATUS=%s", state, status)
		     : sd_notify(0, state);

	if (rc < 0)
		log_warn("cannot tell systemd %s (NOTIFY_SOCKET=%s): %s",
		    state, getenv("NOTIFY_SOCKET"), strerror(-rc));
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	sdnotify *n = arg;
	int rc = sd_notify(0, "WATCHDOG=1");

	if (rc < 0 && !n->watchdog_failed) {
		n->watchdog_failed = true;
		log_warn("cannot feed systemd's watchdog (NOTIFY_SOCKET=%s): "
			 "%s", getenv("NOTIFY_SOCKET"), strerror(-rc));
	}
}

int
sdnotify_init(sdnotify **out, struct event_base *base)
{
	sdnotify *n = calloc(1, sizeof(*n));
	uint64_t usec = 0;
	struct timeval tv;
	int rc;

	if (n == NULL)
		return -ENOMEM;
	/* > 0: WATCHDOG_USEC is set, and WATCHDOG_PID (if set) is ours. */
	if ((rc = sd_watchdog_enabled(0, &usec)) < 0)
		log_warn("ignoring systemd's watchdog settings "
			 "(WATCHDOG_USEC=%s, WATCHDOG_PID=%s): %s",
		    getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
		    strerror(-rc));
	if (rc > 0 && usec > 0) {
		/* Half the timeout, as sd_watchdog_enabled(3) advises. */
		usec /= 2;
		tv.tv_sec = (time_t) (usec / 1000000);
		tv.tv_usec = (suseconds_t) (usec % 1000000);
		n->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, n);
		if (n->watchdog_ev == NULL ||
		    event_add(n->watchdog_ev, &tv) != 0) {
			sdnotify_fini(n);
			return -ENOMEM;
		}
		on_watchdog(-1, 0, n);
		log_debug("feeding systemd's watchdog every %llu ms",
		    (unsigned long long) (usec / 1000));
	}
	*out = n;
	return 0;
}

void
sdnotify_fini(sdnotify *n)
{
	if (n == NULL)
		return;
	if (n->watchdog_ev != NULL)
		event_free(n->watchdog_ev);
	free(n);
}

void
sdnotify_ready(sdnotify *n, const char *status)
{
	if (n == NULL || n->ready)
		return;
	n->ready = true;
	notify("READY=1", status);
}

void
sdnotify_stopping(sdnotify *n, const char *status)
{
	if (n == NULL || n->stopping)
		return;
	n->stopping = true;
	notify("STOPPING=1", status);
}
