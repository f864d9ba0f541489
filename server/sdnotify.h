/* sdnotify: what gild tells systemd when it runs as a Type=notify service
 * (NOTIFY_SOCKET set): READY=1 once every worker is ready, STOPPING=1
 * when a drain starts, and WATCHDOG=1 from the event loop while it turns
 * (WATCHDOG_USEC set for this process). Through libsystemd's sd_notify;
 * without NOTIFY_SOCKET every call does nothing. */
#ifndef GILD_SDNOTIFY_H
#define GILD_SDNOTIFY_H

#include <event2/event.h>

typedef struct sdnotify sdnotify;

/* Reads the environment systemd gave gild and, when it asks for a
 * watchdog, starts a timer on base that sends WATCHDOG=1 every half of
 * WATCHDOG_USEC: a loop that stops turning stops feeding it, and systemd
 * restarts the service. Returns 0 or -ENOMEM. */
int sdnotify_init(sdnotify **out, struct event_base *base);
/* Stops the watchdog timer. Accepts NULL. */
void sdnotify_fini(sdnotify *n);

/* READY=1, with status (a line for `systemctl status`). Once. */
void sdnotify_ready(sdnotify *n, const char *status);
/* STOPPING=1, with status. Once. */
void sdnotify_stopping(sdnotify *n, const char *status);

#endif
