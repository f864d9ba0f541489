/* launch: starting gild-worker processes (fork + exec, with their socket as
 * fd 3 and, optionally, a descriptor channel as fd 4) and saying how one
 * ended or why it could not start; the crash-loop backoff their restarts
 * share. Used for exec'd workers (supervisor.c) and for the template
 * (forker.c). */
#ifndef GILD_LAUNCH_H
#define GILD_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

/* What every gild-worker is started with. */
typedef struct launch_config {
	const char *worker_bin; /* path of gild-worker (borrowed) */
	const char *app;        /* its --app (borrowed) */
	uint64_t memory_mib;    /* --memory-limit (0: none) */
	int threads;            /* --threads (0: 1) */
	bool allow_pickle;      /* --allow-pickle */
	struct applog *logs;    /* reads their stdout and stderr (NULL: they
				   write on gild's stderr) */
	bool log_handler;       /* their Python `logging` goes to gild's log
				   (else --no-log-handler) */
	/* gild serve --worker-env NAME=TEMPLATE, --python-path DIR and --venv
	 * DIR, passed on as the worker's --env, --python-path and --venv
	 * (borrowed: they must outlive every launch) */
	const char *const *worker_env;
	size_t nworker_env;
	const char *const *python_path;
	size_t npython_path;
	const char *venv; /* NULL: none */
} launch_config;

/* Forks and execs cfg's gild-worker for slot (-1: the template) with its
 * socket as fd 3 and the NULL-terminated extra arguments (6 at most are
 * used); with chan not NULL, also a descriptor channel as fd 4 (--chan 4).
 * The child gets its own process group; its stdout and stderr are pipes
 * to cfg->logs (--app-logs), or both gild's stderr. Returns 0 with our
 * ends in *fd (and *chan) and the child's pid, or a negative errno. */
int launch_worker(const launch_config *cfg, int slot, const char *const *extra,
    int *fd, int *chan, pid_t *pid);


/* A socketpair for a worker's descriptor channel (proto/frame.h). Returns
 * 0 or a negative errno. */
int launch_chan_pair(int ch[2]);

/* "killed by signal 9 (Killed)" or "exited with status 3" for a waitpid
 * status, in buf (len bytes), which is returned. */
char *launch_describe_exit(int status, char *buf, size_t len);

/* How long to wait before starting a process again after its n-th quick
 * failure in a row: none for the first, then 100 ms doubling up to 5 s. */
struct timeval launch_backoff(uint32_t n);

/* Keeps a StartupError message's (data, len bytes) message and traceback
 * in *msg and *tb (new strings, replacing theirs) and its retry flag in
 * *retry (a start hook or warm-up failed: the app itself imports); leaves
 * them as they are when it cannot be decoded. */
void launch_startup_error(const uint8_t *data, size_t len, char **msg,
    char **tb, bool *retry);

#endif
