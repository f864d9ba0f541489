/* forker: the template, the gild-worker process that imports the app once
 * and forks every worker after (worker/template.h is its side). The forker
 * starts it, asks it to fork a worker for a slot (Spawn), hears from it
 * each worker's pid and end (Spawned, Exited), and during a reload keeps
 * the old one forking until the new one is ready.
 *
 * Once a template is ready it is asked for a standby: a forked copy of
 * itself, idle, sharing its memory. If the template dies, its workers die
 * with it, but the standby takes over at once, so they are forked again
 * within milliseconds, and a new standby is asked for. Without one, a
 * template that had imported the app is replaced at once; one that dies
 * before its hello is replaced at once if it was killed (SIGKILL), else
 * with the crash-loop backoff (launch_backoff).
 *
 * The workers themselves are the supervisor's (supervisor.c): the forker
 * tells it what happens to them through forker_events. */
#ifndef GILD_FORKER_H
#define GILD_FORKER_H

#include "launch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
typedef struct forker forker;

/* What the forker tells its owner, always on the loop. A template is
 * named by its generation `gen` (unique, from 1), which forker_spawn gives
 * for each worker it asks for. */
typedef struct forker_events {
	/* A template said hello; hello is its Hello message (len bytes,
	 * valid during the call). Returns 0, or -1 when it is malformed (the
	 * template is then not used). */
	int (*hello)(void *arg, const uint8_t *hello, size_t len);
	/* A template takes spawn requests from now on (one that said hello,
	 * or a standby that took over). reload: it is the one forker_reload
	 * started, and the workers are to be replaced. */
	void (*ready)(void *arg, bool reload);
	/* Template gen answered the spawn request for slot (as it was sent:
	 * check it): the worker is process pid, or pid is 0 when the fork
	 * failed. */
	void (*spawned)(void *arg, uint32_t gen, uint32_t slot, pid_t pid);
	/* A template reaped pid, a worker it forked (status as from
	 * waitpid). */
	void (*exited)(void *arg, pid_t pid, int status);
	/* Template gen takes no more spawn requests: it is gone or going.
	 * The workers it forked die with it (not a crash of theirs); a spawn
	 * request it has not answered never will be. */
	void (*down)(void *arg, uint32_t gen);
	/* Template gen's process has been reaped: a worker it forked that is
	 * no longer there ended without being reported; the others are
	 * gild's to reap. */
	void (*reaped)(void *arg, uint32_t gen);
	/* The first template died before it was ready: the app cannot start
	 * (message, and traceback or NULL). */
	void (*failed)(void *arg, const char *message, const char *traceback);
	/* After forker_stop: a template process has been reaped (see
	 * forker_running). */
	void (*stopped)(void *arg);
} forker_events;

/* Makes gild the subreaper of the workers the template forks (they are
 * reaped here if it dies first). cfg's strings must outlive f. Returns 0
 * or a negative errno. */
int forker_init(forker **out, struct event_base *base,
    const launch_config *cfg, const forker_events *ev, void *arg);
/* Starts the template. Returns 0, or -EIO when it could not start. */
int forker_start(forker *f);
/* Asks a ready template to fork slot's worker. Returns 0 with gild's ends
 * of the worker's socket and descriptor channel in *fd and *chan (the
 * caller's) and the template's generation in *gen; -EAGAIN when no
 * template is ready (`ready` follows when one is); or a negative errno. */
int forker_spawn(forker *f, int slot, int *fd, int *chan, uint32_t *gen);
/* Starts a new template that imports the app again; the current one forks
 * the workers asked for until the new one is ready (`ready` with reload),
 * and goes at forker_reload_done. If the new one dies before it is ready,
 * the current one stays and the error is logged. Returns 0, or a negative
 * errno when the new one could not even start. */
int forker_reload(forker *f);
/* Whether a reload's old template is still there. */
bool forker_reloading(const forker *f);
/* The reload is over: its old template gets EOF and exits. */
void forker_reload_done(forker *f);
/* The pid of template gen while its process is there; 0 when it is not
 * (or not known). Accepts NULL. */
pid_t forker_pid(const forker *f, uint32_t gen);
/* pid has been reaped with status: returns whether it was a template's
 * (then it is handled). Accepts f NULL. */
bool forker_reaped(forker *f, pid_t pid, int status);
/* Closes every template's socket: each exits, and the workers it forked
 * die with it. No template is started after this. Accepts NULL. */
void forker_stop(forker *f);
/* Whether a template process is still to be reaped. Accepts NULL. */
bool forker_running(const forker *f);
/* SIGKILLs every template process. Accepts NULL. */
void forker_kill(forker *f);
/* Kills and reaps every template process; frees f. Accepts NULL. */
void forker_fini(forker *f);

#endif
