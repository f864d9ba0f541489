/* The gild front end: one libevent loop that owns the listener, the
 * scheduler and the supervisor, turns requests into jobs and worker results
 * into replies. Nothing here is shared between threads. */
#ifndef GILD_SERVER_H
#define GILD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct server_opts {
	const char *app;          /* .py path or module name */
	const char **listen;      /* URLs */
	size_t nlisten;
	const char *const *ws_origins; /* --ws-allow-origin: web pages that
					  may use ws:// and wss:// listeners */
	size_t nws_origins;
	int workers;              /* > 0 */
	size_t max_message;       /* bytes; larger requests are refused */
	size_t max_queue;         /* queued calls; more get RESOURCE_EXHAUSTED */
	/* Per connection: at most this many replies (and bytes) left unread
	 * by its client, and requests without the right token, before it is
	 * closed; connections open at once (0: any). */
	size_t max_unread_replies, max_unread_bytes;
	uint32_t max_auth_failures;
	size_t max_connections;
	uint32_t max_conn_idle_ms; /* a connection idle this long (having been
				      sent next to nothing) is closed; 0: never */
	uint32_t max_conn_age_ms;  /* a connection this old (+/- 10%) has its
				      new calls refused as not started; 0: never */
	size_t max_actors;        /* live actors; more ActorNew are refused */
	size_t max_actor_bytes;   /* their constructor requests' bytes */
	uint32_t stream_idle_timeout_ms; /* a stream nobody pulls from is
					    ended after this (0: never) */
	size_t max_stream_bytes;  /* chunks one stream may hold untaken */
	size_t max_conn_streams;  /* streams one connection may have open */
	size_t max_conn_actors;   /* actors one connection may have made */
	size_t max_conn_calls;    /* requests of one connection in hand */
	const char *worker_bin;   /* path of gild-worker */
	int drain_ms;             /* on SIGTERM, how long accepted calls may take */
	uint64_t max_jobs;        /* recycle a worker after N calls (0: never) */
	uint64_t max_rss_mib;     /* ... or when over N MiB of RSS (0: never) */
	uint32_t default_timeout_ms; /* deadline of calls that set none (0) */
	int kill_grace_ms;        /* after an interrupt, before the kill */
	uint64_t worker_memory_mib; /* workers' address-space limit (0: none) */
	bool spawn_exec;          /* exec each worker instead of forking the template */
	bool free_threaded;       /* --runtime free-threaded (gild-worker-ft) */
	int threads;              /* Python threads per worker (1: process) */
	int pipeline;             /* calls a busy worker may hold waiting
				     (sched_set_pipeline; 0: none) */
	const char *http;         /* --http HOST:PORT side port, or NULL */
	uint32_t slow_ms;         /* log calls slower than this (0: none) */
	const char *token;        /* --token / GILD_TOKEN: required on every
				     request (NULL: none) */
	bool allow_exec;          /* --allow-exec: serve Exec requests */
	bool allow_pickle;        /* --allow-pickle: workers (un)pickle values */
	bool shm;                 /* --shm: shared memory for ipc:// clients */
	bool app_log_handler;     /* --app-log-handler: on the app's root logger */
	/* The workers' environment and sys.path: --worker-env NAME=TEMPLATE
	 * ({slot} replaced by each worker), --python-path DIR, --venv DIR
	 * (NULL: none); borrowed */
	const char *const *worker_env;
	size_t nworker_env;
	const char *const *python_path;
	size_t npython_path;
	const char *venv;
	const struct privs_user *user; /* --user: who to become once the
					  listeners are bound (NULL: stay) */
	struct nng_tls_config *tls; /* what tls+tcp:// listeners present and
				       check (NULL: none); the caller's */
} server_opts;

/* Runs gild until SIGINT/SIGTERM (returns 0 after a clean stop) or a fatal
 * error such as an app that cannot be imported (returns 1, having logged
 * why). Prints "gild: listening on URL" per URL and "gild: ready (N
 * workers)" on stdout. */
int server_run(const server_opts *opts);

#endif
