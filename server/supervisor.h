/* The worker supervisor: starts gild-worker processes, one per slot, talks
 * to each over a socketpair with length-prefixed worker.proto frames,
 * notices a death at once (socket EOF, SIGCHLD, or the template's report),
 * and restarts with backoff. By default workers are forked from a template
 * process that has imported the app once (worker/template.h), so a
 * replacement is ready in milliseconds; with use_template off each worker
 * is exec'd and imports the app itself. */
#ifndef GILD_SUPERVISOR_H
#define GILD_SUPERVISOR_H

#include "catalog.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
typedef struct supervisor supervisor;

typedef struct sup_config {
	const char *worker_bin; /* path of gild-worker */
	const char *app;        /* passed to the worker as --app */
	int workers;            /* number of slots */
	size_t max_frame;       /* largest frame a worker may send */
	uint64_t max_jobs;      /* recycle a worker after this many (0: never) */
	uint64_t max_rss_kib;   /* ... or when its RSS is over this (0: never) */
	uint64_t memory_mib;    /* workers' address-space limit (0: none) */
	bool use_template;      /* fork workers from a template (else exec) */
	int threads;            /* Python threads per worker (--threads; 1) */
	bool allow_pickle;      /* workers get --allow-pickle */
	struct applog *logs;    /* reads the workers' output (NULL: it goes
				   to gild's stderr) */
	bool app_log_handler;   /* gild's handler on the app's root logger */
	/* --worker-env, --python-path, --venv: launch_config's (borrowed:
	 * they must outlive the supervisor) */
	const char *const *worker_env;
	size_t nworker_env;
	const char *const *python_path;
	size_t npython_path;
	const char *venv;
} sup_config;

/* What the supervisor tells its owner, always on the loop. */
typedef struct sup_events {
	/* Worker `slot` said hello and takes jobs. */
	void (*ready)(void *arg, int slot);
	/* Worker `slot` takes no new jobs: it is recycled once the results of
	 * the jobs it runs (the `result` events that follow) are delivered,
	 * and says hello again; or it is being put down, and `lost` follows
	 * the results it had written. */
	void (*retiring)(void *arg, int slot);
	/* Worker `slot` died or broke its protocol; a restart is scheduled.
	 * all_read: every frame it wrote was delivered before this (its death
	 * was seen, its socket read to the end), so a job it had not started
	 * by its last result never started: it takes its next job only after
	 * writing the result of one it ran. Without all_read (its stream
	 * broke, or it would not die) any job sent to it may have started. */
	void (*lost)(void *arg, int slot, const char *reason, bool all_read);
	/* Job `job_id` ended on `slot`: reply_fields is the rest of the
	 * FromWorker after job_id (its result or error field, encoded), valid
	 * during the call only. */
	void (*result)(void *arg, int slot, uint64_t job_id,
	    const uint8_t *reply_fields, size_t len);
	/* A streaming job sent a chunk: chunk is the encoded worker Chunk
	 * message (seq, value), valid during the call only. */
	void (*chunk)(void *arg, int slot, uint64_t job_id,
	    const uint8_t *chunk, size_t len);
	/* A streaming job ended: end is the encoded StreamEnd (count, and the
	 * error if it stopped early). Like result, the job is over. */
	void (*stream_end)(void *arg, int slot, uint64_t job_id,
	    const uint8_t *end, size_t len);
	/* Just before job_id's result: the worker took run_us microseconds
	 * over it (its own stamps). */
	void (*ran)(void *arg, int slot, uint64_t job_id, uint32_t run_us);
	/* The answer to supervisor_take_back: job_id was returned (it never
	 * started there, and never will) or had started (its end comes as
	 * usual, or came already). */
	void (*taken_back)(void *arg, int slot, uint64_t job_id, bool returned);
	/* The app could not start on any worker: message and traceback say
	 * why. The owner should stop. */
	void (*failed)(void *arg, const char *message, const char *traceback);
	/* Every worker has exited after supervisor_stop. */
	void (*stopped)(void *arg);
} sup_events;

/* Copies cfg strings. Returns 0 or a negative errno. */
int supervisor_init(supervisor **out, struct event_base *base,
    const sup_config *cfg, const sup_events *ev, void *arg);
/* Spawns every worker. Returns 0 or a negative errno. */
int supervisor_start(supervisor *s);
/* One job to send: its ids, what gild.context() says, and its encoded
 * gild.v1.Call (referenced, not copied: it must stay valid until the job
 * ends or the worker is lost). */
typedef struct sup_job {
	enum { SUP_CALL, SUP_ACTOR_NEW, SUP_ACTOR_DESTROY, SUP_EXEC } op;
	uint64_t actor_id;    /* SUP_ACTOR_*, an actor's call: which actor
				 (0: none) */
	uint64_t job_id;
	uint64_t request_id;
	uint32_t deadline_ms; /* left before its deadline (0: none) */
	uint32_t queued_us;   /* time it waited in the queue */
	const uint8_t *call;  /* SUP_ACTOR_NEW: an encoded gild.v1.ActorNew;
				 SUP_EXEC: an encoded gild.v1.Exec */
	size_t len;
	const uint8_t *trace; /* an encoded gild.v1.TraceContext (NULL: none);
				 of a batch, its first job's goes */
	size_t trace_len;
} sup_job;

/* Sends n jobs to `slot`: one call, or (batch) a batch of n >= 1 calls of
 * one batched function, or of one actor's batched method, run together.
 * Returns 0, or -EPIPE when that worker is not running. */
int supervisor_send(supervisor *s, int slot, const sup_job *jobs, size_t n,
    bool batch);
/* Asks worker `slot` to interrupt job_id with code (DEADLINE_EXCEEDED or
 * CANCELLED): the worker raises an exception in the running Python code and
 * answers with the job's end as usual. Returns 0 or a negative errno. */
int supervisor_interrupt(supervisor *s, int slot, uint64_t job_id, int code);
/* Asks worker `slot` to give back job_id, a call sent ahead to it, if it
 * has not started it; `taken_back` brings the answer. Returns 0 or a
 * negative errno (no answer will come). */
int supervisor_take_back(supervisor *s, int slot, uint64_t job_id);
/* Lets streaming job job_id on `slot` send n more chunks. Returns 0 or a
 * negative errno. */
int supervisor_credit(supervisor *s, int slot, uint64_t job_id, uint32_t n);
/* Writes the frames queued so far to the workers' sockets now (what the
 * socket does not take waits in its bufferevent). Without it they are
 * written at the end of the loop pass that queued them. */
void supervisor_flush(supervisor *s);
/* Kills worker `slot` now (SIGKILL): it takes no new job (`retiring`),
 * the results it writes until it is gone are delivered, then `lost`
 * follows with reason; the restart comes without backoff. */
void supervisor_kill(supervisor *s, int slot, const char *reason);
/* Reloads the app without failing a call: with a template, a new one
 * imports the app again (if that fails, the running workers are kept and
 * the error logged); then the workers are replaced one at a time, each
 * between jobs. */
void supervisor_reload(supervisor *s);
/* Asks every worker to exit (closing its socket), kills those still there
 * after grace_ms, and reports `stopped` when all are reaped. */
void supervisor_stop(supervisor *s, int grace_ms);
/* Kills and reaps every worker at once; frees everything. Accepts NULL. */
void supervisor_fini(supervisor *s);

/* What status reports about a slot. */
typedef struct sup_worker_info {
	pid_t pid;
	const char *state; /* "starting", "ready", "recycling", "restarting",
			      "stopped" */
	uint64_t jobs_done;
	uint32_t restarts; /* after a crash */
	uint32_t recycles; /* after --max-jobs-per-worker / --max-worker-rss /
			      a reload */
} sup_worker_info;
void supervisor_info(const supervisor *s, int slot, sup_worker_info *out);
int supervisor_count(const supervisor *s);
/* The functions the app exports, from the newest hello (borrowed; n may be
 * 0 before any worker is ready), and the workers' Python version. */
const char *const *supervisor_functions(const supervisor *s, size_t *n);
/* Whether the app exports function `name` (len bytes), as the newest hello
 * says; true while no function is known (before any hello: the worker
 * will check). */
bool supervisor_has_function(const supervisor *s, const char *name,
    size_t len);
/* The name /metrics may count a call under: function `name` (len bytes)
 * when cls is NULL, or "cls.name" for a public method of @gild.actor
 * class cls, when the newest hello lists it; NULL for any other name (a
 * client's to choose). Borrowed (from name, or the catalog: use it at
 * once); its length in *outlen. */
const char *supervisor_reported_name(const supervisor *s, const char *cls,
    const char *name, size_t len, size_t *outlen);
const char *supervisor_python_version(const supervisor *s);
/* Whether the workers' interpreter has its GIL on, as the latest hello
 * said (a free-threaded one turns it on for an extension that needs it). */
bool supervisor_gil_enabled(const supervisor *s);
/* Bytes of frames that went to or came from workers as memfds rather than
 * through their sockets (proto/frame.h), since start. */
uint64_t supervisor_shm_bytes(const supervisor *s);
/* Workers restarted since start because they died (a signal, an exit of
 * their own, killed by gild past --kill-grace, out of --worker-memory),
 * and workers recycled on purpose (--max-jobs-per-worker,
 * --max-worker-rss, a reload): each sets the reasons' names and their
 * counts (both borrowed) and returns how many there are. */
#define SUP_RESTART_REASONS 4
#define SUP_RECYCLE_REASONS 3
size_t supervisor_restarts(const supervisor *s, const char *const **reasons,
    const uint64_t **counts);
size_t supervisor_recycles(const supervisor *s, const char *const **reasons,
    const uint64_t **counts);
/* Whether the app has an @gild.actor class `name` (len bytes), and its
 * options. */
bool supervisor_actor_class(const supervisor *s, const char *name, size_t len,
    catalog_actor_options *out);

/* What the app declared with @gild.function for function `name` (len bytes,
 * not NUL-terminated); zeroes when nothing or not known yet: as the newest
 * Hello says (what new calls are checked against), or as the Hello of the
 * worker on `slot` said (the code that will run a call there: during a
 * reload, old and new workers may differ). */
typedef catalog_options sup_function_options;
sup_function_options supervisor_function_options(const supervisor *s,
    const char *name, size_t len);
sup_function_options supervisor_function_options_on(const supervisor *s,
    int slot, const char *name, size_t len);
/* The batch size @gild.function(batch=N) declares for method `name` (len
 * bytes) of @gild.actor class cls, as the Hello of the worker on `slot`
 * said (the newest when it has none); 0: not batched. */
uint32_t supervisor_method_batch_on(const supervisor *s, int slot,
    const char *cls, const char *name, size_t len);

#endif
