/* front: what the front end's modules share on the loop: the server's
 * state and a job as the server keeps it (job.h has what is done with
 * one). Not for code outside server/: main.c sees server.h only. */
#ifndef GILD_SERVER_FRONT_H
#define GILD_SERVER_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "actor.h"
#include "call.h"
#include "gild.pb-c.h"
#include "http.h"
#include "listener.h"
#include "metrics.h"
#include "sched.h"
#include "sdnotify.h"
#include "server.h"
#include "stream.h"
#include "supervisor.h"
#include "svctime.h"
#include "trace.h"

typedef enum srv_state { SRV_RUNNING, SRV_DRAINING, SRV_STOPPING } srv_state;

/* The bounds the front end enforces itself (the listener counts those of
 * connections), each counted when reached: /metrics' limit label is the
 * option's name (status.c). */
typedef enum srv_limit {
	LIMIT_QUEUE,       /* --max-queue: a call refused */
	LIMIT_ACTORS,      /* --max-actors: an ActorNew refused */
	LIMIT_ACTOR_BYTES, /* --max-actor-bytes: an ActorNew refused */
	LIMIT_STREAM_IDLE, /* --stream-idle-timeout: a stream ended */
	LIMIT_STREAM_BYTES, /* --max-stream-bytes: a stream ended */
	LIMIT_CONN_STREAMS, /* --max-conn-streams: a stream refused */
	LIMIT_CONN_ACTORS, /* --max-conn-actors: an ActorNew refused */
	LIMIT_CONN_CALLS,  /* --max-conn-calls: a call refused */
	LIMIT_N
} srv_limit;

typedef struct server {
	const server_opts *opts;
	struct event_base *base;
	listener *lst;
	sched *sch;
	svctime *est;           /* how long each function's calls run */
	supervisor *sup;
	struct event *sigint_ev, *sigterm_ev, *sighup_ev, *drain_ev, *exit_ev;
	srv_state state;
	int exit_code;
	bool announced_ready;
	int exit_waits;
	uint64_t next_job_id;
	uint64_t calls_total;
	struct timespec started;
	struct stream *streams; /* open streams, any connection */
	struct event *batch_ev; /* a batch waits to fill up */
	struct event *stream_sweep_ev; /* ends streams nobody reads */
	actor_table actors;
	bool actors_dirty;      /* an actor's job ended: its next may go */
	uint64_t *slot_gen;     /* per slot: hellos so far (a new process) */
	http *http;             /* --http: the side port, or NULL */
	struct shm *shm;        /* --shm: the shared-memory socket, or NULL */
	sdnotify *sdn;          /* what systemd is told */
	struct applog *logs;    /* the workers' stdout and stderr */
	metrics *metrics;       /* what /metrics shows */
	uint64_t limit_hits[LIMIT_N];
} server;

/* A job as the server keeps it: the scheduler's part first (the scheduler
 * hands back job pointers), then what only the server needs. Where it is
 * in its life, and whether its client has its one reply, is `call`'s to
 * say (call.h); only job_step moves it. */
typedef struct sjob {
	job j;
	server *srv;
	call call;             /* its state machine */
	struct event *timer;   /* the deadline, then the --kill-grace wait */
	uint32_t timeout_ms;   /* 0: no deadline */
	struct stream *st;     /* a streaming job's stream, else NULL */
	struct timespec arrived;
	bool arrived_busy;     /* no worker was free when it came */
	bool wait_counted;     /* its queue wait is in /metrics */
	/* Its Request.trace_context (checked; NULL: none), and the
	 * traceparent and tracestate in it, borrowed from j.req. */
	const uint8_t *trace;
	size_t trace_len;
	trace_fields trace_fields;
	uint32_t batch_wait_us; /* how long a batch (j.batch) may wait to fill */
	actor *act;            /* an actor's call, creation or destruction */
	/* JK_EXEC: an Exec request, otherwise handled as a call. */
	enum { JK_CALL, JK_ACTOR_NEW, JK_ACTOR_DESTROY, JK_EXEC } kind;
	int end_code;          /* how its client was answered (a gild.v1.Code),
				  for the metrics */
	const char *stop_why;  /* a CE_CANCEL of the server's own: why, for
				  its client ("nobody read its stream...") */
	char *stop_traceback;  /* stopped while it ran: the traceback its
				  worker reported, where it was; owned */
} sjob;

/* The sjob whose scheduler part is j: the one way from what the scheduler
 * hands back to the server's job (every job in the scheduler is an
 * sjob's). */
static inline sjob *
sjob_of(job *j)
{
	_Static_assert(offsetof(sjob, j) == 0, "sjob starts with its job");
	return (sjob *) j;
}

/* Nothing here needs to hand queued jobs to workers, or to check whether a
 * drain is over: server.c does both after every pass of the loop
 * (after_pass). */

#endif
