/* The supervisor's own: its worker slots and its state, shared by its two
 * files: supervisor.c (the workers' processes: start, hello, death,
 * restart, recycling, reload) and supervisor_send.c (the frames sent to
 * them). Not for the rest of server/: supervisor.h is. */
#ifndef GILD_SERVER_SUPERVISOR_PRIV_H
#define GILD_SERVER_SUPERVISOR_PRIV_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "catalog.h"
#include "forker.h"
#include "launch.h"
#include "supervisor.h"

typedef enum wstate {
	W_STARTING,   /* spawned, no hello yet */
	W_READY,      /* said hello, takes jobs */
	W_DOWN,       /* socket closed or process gone; not both seen yet */
	W_RESTARTING, /* reaped; restart timer armed */
	W_STOPPED,    /* reaped after supervisor_stop */
	W_RETIRING,   /* recycled: socket closed, waiting for the reap */
	W_DYING,      /* being put down: takes no job, and what it wrote is
			 read until it is gone (worker_down) */
} wstate;

/* How a worker is put down (worker_down): what it wrote before it went is
 * read first, so that the jobs it had not started are known for sure. */
typedef enum down_how {
	DOWN_GONE,   /* it is gone (EOF, EPIPE, ECONNRESET, reaped): all it
			wrote is on its socket now */
	DOWN_KILL,   /* it may still run: kill it, and read until EOF or the
			reap */
	DOWN_BROKEN, /* what it wrote cannot be read any further */
} down_how;

/* Why a worker is recycled (supervisor.c's recycle_reasons names them). */
enum recycle_why { RC_MAX_JOBS, RC_MAX_RSS, RC_RELOAD };

typedef struct worker {
	supervisor *sup;
	int slot;
	wstate state;
	pid_t pid;              /* 0 once reaped, or while not known (a fork
				   the template has not answered) */
	int pidfd;              /* a pidfd of pid (Linux 5.3+), or -1: what
				   signals go through, so that one never
				   reaches a process that reused its pid */
	pid_t logged_pid;       /* its process's pid for the log: kept after
				   the reap; 0 only while not known */
	struct bufferevent *bev;
	int chan;               /* its descriptor channel (proto/frame.h);
				   valid while bev is not NULL, -1: none */
	/* Frames for it written during this loop pass, in order: flush()
	 * writes them at the pass's end, in one writev when bev's output is
	 * empty, without a pass of the loop to wait for the socket. */
	struct evbuffer *pending;
	struct event *restart_ev;
	struct timespec started;
	uint64_t jobs_done;
	uint64_t jobs_since_spawn;
	uint32_t restarts;
	uint32_t recycles;
	uint32_t quick_failures; /* consecutive deaths soon after start */
	bool said_hello;
	catalog_table *table;   /* what its one hello said (held) */
	bool killed;            /* by supervisor_kill: restart without backoff */
	bool roll;              /* replace it after its running job (reload) */
	enum recycle_why recycle_why; /* W_RETIRING, or draining: why */
	bool out_of_memory;     /* draining because it said it exits (out of
				   --worker-memory): a restart, not a recycle */
	bool draining;          /* takes no new job: retired once it has none
				   running (a recycle with several threads) */
	int running;            /* jobs sent and not answered */
	char why[256];          /* W_DYING, W_DOWN: why it was put down */
	struct event *dying_ev; /* W_DYING: the wait for its death's end */
	uint32_t generation;    /* the reload it was started after */
	uint32_t tgen;          /* the template that forked it (0: exec) */
	bool template_died;     /* that template died: so does it, through
				   no fault of its own (no backoff) */
	char *startup_error;    /* message of a StartupError, if sent */
	char *startup_traceback;
	bool startup_retry;     /* ... about a start hook or warm-up: the app
				   imports, try again with backoff */
} worker;

struct supervisor {
	struct event_base *base;
	sup_config cfg;
	sup_events ev;
	void *arg;
	worker *w;
	struct event *sigchld_ev;
	struct event *kill_ev;
	struct event *reload_ev; /* runs a reload asked for during one */
	bool reload_pending;     /* a SIGHUP came during a reload */
	struct event *flush_ev; /* made active when a frame is pending */
	bool stopping;
	bool ever_ready;
	bool logged_exports;
	launch_config launch; /* how a gild-worker is started */
	forker *fk;  /* the template workers are forked from (NULL: exec) */
	uint32_t generation; /* reloads so far */
	int rolling;         /* during a reload: the slot being replaced, or -1 */
	catalog *cat;        /* the app's tables, as the hellos said */
	catalog_table *tmpl_table; /* the current template's */
	uint64_t shm_bytes; /* frame payloads sent or received as memfds */
	uint64_t restarts[SUP_RESTART_REASONS]; /* workers that died and were
						   restarted, by why */
	uint64_t recycles[SUP_RECYCLE_REASONS]; /* workers replaced on
						   purpose, by why */
};

/* " (pid N)" naming w's process in a log line, or "" while its pid is
 * not known: a log line never says pid 0. */
typedef struct pid_note {
	char s[24];
} pid_note;
pid_note pid_of(const worker *w);

/* w's frames of this pass go nowhere (it is being put down). */
void drop_pending(worker *w);
/* The worker can no longer be used: it gets no new job, its process is
 * made to go, and the owner is told once (`lost`), after every frame it
 * wrote has been read and handed on (how says whether it is gone, or must
 * be killed and waited for first, or can no longer be read). */
void worker_down(worker *w, const char *reason, down_how how);
/* The callback of the supervisor's flush event (supervisor_send.c). */
void supervisor_flush_event(evutil_socket_t fd, short what, void *arg);

#endif
