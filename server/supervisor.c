/* The worker supervisor: spawn, watch, restart. */
#include "supervisor.h"

#include "frame.h"
#include "log.h"
#include "parse.h"
#include "wire.h"
#include "worker.pb-c.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum wstate {
	W_STARTING,   /* spawned, no hello yet */
	W_READY,      /* said hello, takes jobs */
	W_DOWN,       /* socket closed or process gone; not both seen yet */
	W_RESTARTING, /* reaped; restart timer armed */
	W_STOPPED,    /* reaped after supervisor_stop */
	W_RETIRING,   /* recycled: socket closed, waiting for the reap */
} wstate;

typedef struct worker {
	supervisor *sup;
	int slot;
	wstate state;
	pid_t pid;              /* 0 once reaped */
	struct bufferevent *bev;
	struct event *restart_ev;
	struct timespec started;
	uint64_t jobs_done;
	uint64_t jobs_since_spawn;
	uint32_t restarts;
	uint32_t recycles;
	uint32_t quick_failures; /* consecutive deaths soon after start */
	bool said_hello;
	bool killed;            /* by supervisor_kill: restart without backoff */
	char *startup_error;    /* message of a StartupError, if sent */
	char *startup_traceback;
} worker;

struct supervisor {
	struct event_base *base;
	sup_config cfg;
	sup_events ev;
	void *arg;
	worker *w;
	struct event *sigchld_ev;
	struct event *kill_ev;
	bool stopping;
	bool ever_ready;
	char **functions;
	sup_function_options *options; /* parallel to functions */
	size_t nfunctions;
	char *python_version;
};

static void worker_down(worker *w, const char *reason);

/* Closes our end of w's socket: the worker reads EOF and exits. */
static void
close_socket(worker *w)
{
	if (w->bev != NULL) {
		bufferevent_free(w->bev);
		w->bev = NULL;
	}
}

static double
since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - t->tv_sec) +
	       (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

static void
free_functions(supervisor *s)
{
	for (size_t i = 0; i < s->nfunctions; i++)
		free(s->functions[i]);
	free(s->functions);
	free(s->options);
	s->functions = NULL;
	s->options = NULL;
	s->nfunctions = 0;
}

static void
on_hello(worker *w, const uint8_t *data, size_t len)
{
	supervisor *s = w->sup;
	Gild__Worker__V1__Hello *h;

	h = gild__worker__v1__hello__unpack(NULL, len, data);
	if (h == NULL) {
		worker_down(w, "worker sent a malformed hello");
		return;
	}
	free_functions(s);
	s->functions = calloc(h->n_functions ? h->n_functions : 1,
	    sizeof(char *));
	s->options = calloc(h->n_functions ? h->n_functions : 1,
	    sizeof(*s->options));
	for (size_t i = 0; s->functions && s->options && i < h->n_functions;
	     i++) {
		if ((s->functions[i] = strdup(h->functions[i])) == NULL)
			break;
		for (size_t k = 0; k < h->n_options; k++) {
			if (strcmp(h->options[k]->name, h->functions[i]) != 0)
				continue;
			s->options[i].timeout_ms = h->options[k]->timeout_ms;
			s->options[i].retries = h->options[k]->retries;
		}
		s->nfunctions++;
	}
	free(s->python_version);
	s->python_version = strdup(h->python_version);
	gild__worker__v1__hello__free_unpacked(h, NULL);
	w->said_hello = true;
	w->state = W_READY;
	if (!s->ever_ready)
		log_info("app %s exports %zu functions (Python %s)", s->cfg.app,
		    s->nfunctions, s->python_version ? s->python_version : "?");
	s->ever_ready = true;
	log_debug("worker %d (pid %d) ready", w->slot, (int) w->pid);
	s->ev.ready(s->arg, w->slot);
}

static void
on_startup_error(worker *w, const uint8_t *data, size_t len)
{
	Gild__Worker__V1__StartupError *e;

	e = gild__worker__v1__startup_error__unpack(NULL, len, data);
	if (e != NULL && e->error != NULL) {
		free(w->startup_error);
		free(w->startup_traceback);
		w->startup_error = strdup(e->error->message);
		w->startup_traceback = strdup(e->error->traceback);
	}
	if (e != NULL)
		gild__worker__v1__startup_error__free_unpacked(e, NULL);
}

/* The worker's resident set in KiB, from /proc/PID/statm; 0 if unknown. */
static uint64_t
rss_kib(pid_t pid)
{
	char path[64];
	unsigned long long size, resident;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (uint64_t) sysconf(_SC_PAGESIZE) / 1024 : 0;
}

/* Whether w has reached --max-jobs-per-worker or --max-worker-rss. Checked
 * between jobs, never during one. */
static bool
due_for_recycling(worker *w)
{
	const sup_config *c = &w->sup->cfg;
	uint64_t rss;

	if (c->max_jobs != 0 && w->jobs_since_spawn >= c->max_jobs) {
		log_info("worker %d (pid %d) recycled after %llu jobs "
			 "(--max-jobs-per-worker)",
		    w->slot, (int) w->pid,
		    (unsigned long long) w->jobs_since_spawn);
		return true;
	}
	if (c->max_rss_kib != 0 && (rss = rss_kib(w->pid)) > c->max_rss_kib) {
		log_info("worker %d (pid %d) recycled: RSS %llu MiB over "
			 "--max-worker-rss %llu MiB",
		    w->slot, (int) w->pid, (unsigned long long) rss / 1024,
		    (unsigned long long) c->max_rss_kib / 1024);
		return true;
	}
	return false;
}

/* Recycles w: EOF on its socket makes it exit 0; the reap respawns it. */
static void
retire(worker *w)
{
	close_socket(w);
	w->state = W_RETIRING;
}

/* Handles one FromWorker frame. Returns false if the worker was put down
 * or retired. */
static bool
on_frame(worker *w, const uint8_t *p, size_t len)
{
	parsed_from_worker fw;

	parse_from_worker(p, len, &fw);
	switch (fw.kind) {
	case FW_HELLO:
		on_hello(w, fw.data, fw.len);
		return w->state == W_READY;
	case FW_STARTUP_ERROR:
		on_startup_error(w, fw.data, fw.len);
		return true;
	case FW_RESULT:
		w->jobs_done++;
		w->jobs_since_spawn++;
		if (due_for_recycling(w)) {
			/* No new job may reach it while its result goes out. */
			w->sup->ev.retiring(w->sup->arg, w->slot);
			w->sup->ev.result(w->sup->arg, w->slot, fw.job_id,
			    fw.data, fw.len);
			retire(w);
			return false;
		}
		w->sup->ev.result(w->sup->arg, w->slot, fw.job_id, fw.data,
		    fw.len);
		return true;
	default:
		worker_down(w, "worker sent a malformed frame");
		return false;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t n;

	while (evbuffer_get_length(in) >= FRAME_HEADER_LEN) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		n = frame_header_decode(hdr);
		if (n > w->sup->cfg.max_frame) {
			worker_down(w, "worker sent an oversized frame");
			return;
		}
		if (evbuffer_get_length(in) < FRAME_HEADER_LEN + n) {
			/* Wake up only when the whole frame is here. */
			bufferevent_setwatermark(bev, EV_READ,
			    FRAME_HEADER_LEN + n, 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		/* One contiguous view; copies only if the frame is split. */
		const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t) (FRAME_HEADER_LEN + n));
		if (p == NULL) {
			worker_down(w, "out of memory reading a frame");
			return;
		}
		/* A frame's callbacks may retire this worker (or stop them
		 * all): then leave the rest of the buffer alone. libevent holds a
		 * reference on bev until this callback returns. */
		if (!on_frame(w, p + FRAME_HEADER_LEN, n) || w->bev != bev)
			return;
		evbuffer_drain(in, FRAME_HEADER_LEN + n);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	worker *w = arg;

	if (what & BEV_EVENT_EOF)
		worker_down(w, "worker closed its socket");
	else if (what & BEV_EVENT_ERROR)
		worker_down(w, strerror(EVUTIL_SOCKET_ERROR()));
}

static void maybe_stopped(supervisor *s);

/* The worker can no longer be used: close its socket, make sure the process
 * goes, tell the owner once. The restart follows the reap. */
static void
worker_down(worker *w, const char *reason)
{
	supervisor *s = w->sup;
	bool was_up = w->state == W_STARTING || w->state == W_READY;

	close_socket(w);
	if (w->pid > 0)
		kill(w->pid, SIGKILL);
	if (!was_up)
		return;
	w->state = W_DOWN;
	if (!s->stopping && w->said_hello)
		log_warn("worker %d (pid %d) lost: %s", w->slot, (int) w->pid,
		    reason);
	s->ev.lost(s->arg, w->slot, reason);
}

static int
spawn(worker *w)
{
	supervisor *s = w->sup;
	char slot[16], fdarg[] = "3", mem[24];
	char *argv[] = {(char *) s->cfg.worker_bin, "--fd", fdarg, "--app",
	    (char *) s->cfg.app, "--slot", slot, "--memory-limit", mem, NULL};
	int sv[2];
	pid_t pid;

	snprintf(slot, sizeof(slot), "%d", w->slot);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long) s->cfg.memory_mib);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	pid = fork();
	if (pid == -1) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		/* Child: async-signal-safe calls only until exec. */
		sigset_t none;
		int devnull;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* Own process group: a terminal's Ctrl-C reaches the server,
		 * which stops the workers in order. */
		setpgid(0, 0);
		if (sv[1] == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(sv[1], 3) == -1)
			_exit(127);
		if ((devnull = open("/dev/null", O_RDONLY)) != -1)
			dup2(devnull, 0);
		dup2(2, 1); /* app prints go to the log, not our stdout */
		close_range(4, ~0U, 0);
		execv(s->cfg.worker_bin, argv);
		_exit(127);
	}
	close(sv[1]);
	evutil_make_socket_nonblocking(sv[0]);
	w->bev = bufferevent_socket_new(s->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	if (w->bev == NULL) {
		close(sv[0]);
		kill(pid, SIGKILL);
		w->pid = pid; /* reaped by on_sigchld */
		w->state = W_DOWN;
		return -ENOMEM;
	}
	bufferevent_setcb(w->bev, on_read, NULL, on_event, w);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
	w->pid = pid;
	w->state = W_STARTING;
	w->said_hello = false;
	w->killed = false;
	w->jobs_since_spawn = 0;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	log_debug("worker %d spawned (pid %d)", w->slot, (int) pid);
	return 0;
}

static void
on_restart(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;
	int rc;

	if (w->sup->stopping)
		return;
	if ((rc = spawn(w)) != 0) {
		log_error("cannot respawn worker %d: %s", w->slot,
		    strerror(-rc));
		struct timeval tv = {1, 0};
		w->state = W_RESTARTING;
		evtimer_add(w->restart_ev, &tv);
	}
}

static char *
describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	return buf;
}

static void
on_reaped(worker *w, int status)
{
	supervisor *s = w->sup;
	char why[128];
	struct timeval tv = {0, 0};
	long delay_ms;

	describe_exit(status, why, sizeof(why));
	w->pid = 0;
	if (w->state == W_RETIRING && !s->stopping) {
		w->recycles++;
		w->state = W_RESTARTING;
		evtimer_add(w->restart_ev, &tv); /* now: no backoff for a recycle */
		return;
	}
	worker_down(w, why);
	if (s->stopping) {
		w->state = W_STOPPED;
		maybe_stopped(s);
		return;
	}
	if (!w->said_hello && !s->ever_ready) {
		/* The app does not start at all: restarting would loop. */
		char msg[512];
		if (w->startup_error != NULL)
			snprintf(msg, sizeof(msg), "%s", w->startup_error);
		else
			snprintf(msg, sizeof(msg),
			    "worker %s before it was ready", why);
		w->state = W_STOPPED;
		s->ev.failed(s->arg, msg, w->startup_traceback);
		return;
	}
	if (w->startup_error)
		log_error("worker %d cannot load the app: %s", w->slot,
		    w->startup_error);
	/* Back off only while workers die soon after they start without
	 * finishing a job: that is a crash loop, not a worker that was killed
	 * (by us, after --kill-grace, or by someone else) while serving. */
	if (w->killed || w->jobs_since_spawn > 0 || since(&w->started) >= 10.0)
		w->quick_failures = 0;
	else
		w->quick_failures++;
	w->killed = false;
	delay_ms = w->quick_failures <= 1 ? 0 : 100L << (w->quick_failures - 2);
	if (delay_ms > 5000)
		delay_ms = 5000;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	w->restarts++;
	w->state = W_RESTARTING;
	evtimer_add(w->restart_ev, &tv);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	supervisor *s = arg;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < s->cfg.workers; i++) {
			if (s->w[i].pid == pid) {
				on_reaped(&s->w[i], status);
				break;
			}
		}
	}
}

static void
maybe_stopped(supervisor *s)
{
	for (int i = 0; i < s->cfg.workers; i++) {
		if (s->w[i].pid > 0)
			return;
	}
	event_del(s->kill_ev);
	s->ev.stopped(s->arg);
}

static void
on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	supervisor *s = arg;

	for (int i = 0; i < s->cfg.workers; i++) {
		if (s->w[i].pid > 0) {
			log_warn("worker %d (pid %d) did not exit: killing it",
			    i, (int) s->w[i].pid);
			kill(s->w[i].pid, SIGKILL);
		}
	}
}

int
supervisor_init(supervisor **out, struct event_base *base,
    const sup_config *cfg, const sup_events *ev, void *arg)
{
	supervisor *s;

	if (cfg->workers <= 0)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->base = base;
	s->cfg = *cfg;
	s->ev = *ev;
	s->arg = arg;
	s->cfg.worker_bin = strdup(cfg->worker_bin);
	s->cfg.app = strdup(cfg->app);
	s->w = calloc((size_t) cfg->workers, sizeof(worker));
	s->sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, s);
	s->kill_ev = evtimer_new(base, on_kill_timer, s);
	if (s->cfg.worker_bin == NULL || s->cfg.app == NULL || s->w == NULL ||
	    s->sigchld_ev == NULL || s->kill_ev == NULL ||
	    evsignal_add(s->sigchld_ev, NULL) != 0)
		goto fail;
	for (int i = 0; i < cfg->workers; i++) {
		s->w[i].sup = s;
		s->w[i].slot = i;
		s->w[i].state = W_STOPPED;
		if ((s->w[i].restart_ev = evtimer_new(base, on_restart,
			 &s->w[i])) == NULL)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	supervisor_fini(s);
	return -ENOMEM;
}

int
supervisor_start(supervisor *s)
{
	int rc;

	for (int i = 0; i < s->cfg.workers; i++) {
		if ((rc = spawn(&s->w[i])) != 0)
			return rc;
	}
	return 0;
}

int
supervisor_send(supervisor *s, int slot, uint64_t job_id, const uint8_t *call,
    size_t len)
{
	uint8_t hdr[FRAME_HEADER_LEN + 2 * (1 + WIRE_MAX_VARINT)];
	size_t n = FRAME_HEADER_LEN;
	struct evbuffer *out;
	worker *w;

	if (slot < 0 || slot >= s->cfg.workers)
		return -EINVAL;
	w = &s->w[slot];
	if (w->state != W_READY || w->bev == NULL)
		return -EPIPE;
	/* ToWorker{job_id = 1, call = 2}, encoded by hand around the call
	 * bytes so they are not copied. */
	n += wire_put_tag(hdr + n, 1, WIRE_VARINT);
	n += wire_put_varint(hdr + n, job_id);
	n += wire_put_tag(hdr + n, 2, WIRE_LEN);
	n += wire_put_varint(hdr + n, len);
	frame_header_encode(hdr, n - FRAME_HEADER_LEN + len);
	out = bufferevent_get_output(w->bev);
	if (evbuffer_add(out, hdr, n) != 0 ||
	    (len > 0 && evbuffer_add_reference(out, call, len, NULL, NULL) != 0))
		return -ENOMEM;
	return 0;
}

int
supervisor_interrupt(supervisor *s, int slot, uint64_t job_id, int code)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__Worker__V1__Interrupt in = GILD__WORKER__V1__INTERRUPT__INIT;
	uint8_t buf[FRAME_HEADER_LEN + 32];
	size_t n;
	worker *w;

	if (slot < 0 || slot >= s->cfg.workers)
		return -EINVAL;
	w = &s->w[slot];
	if (w->bev == NULL)
		return -EPIPE;
	in.code = (Gild__V1__Code) code;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_INTERRUPT;
	m.interrupt = &in;
	n = gild__worker__v1__to_worker__pack(&m, buf + FRAME_HEADER_LEN);
	frame_header_encode(buf, n);
	if (evbuffer_add(bufferevent_get_output(w->bev), buf,
		FRAME_HEADER_LEN + n) != 0)
		return -ENOMEM;
	return 0;
}

void
supervisor_kill(supervisor *s, int slot, const char *reason)
{
	worker *w;

	if (slot < 0 || slot >= s->cfg.workers)
		return;
	w = &s->w[slot];
	if (w->state != W_STARTING && w->state != W_READY)
		return;
	log_warn("worker %d (pid %d) killed: %s", w->slot, (int) w->pid,
	    reason);
	w->killed = true;
	worker_down(w, reason);
}

void
supervisor_stop(supervisor *s, int grace_ms)
{
	struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};

	s->stopping = true;
	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		event_del(w->restart_ev);
		close_socket(w);
		if (w->state != W_RESTARTING)
			w->state = w->pid > 0 ? W_DOWN : W_STOPPED;
		else
			w->state = W_STOPPED;
	}
	evtimer_add(s->kill_ev, &tv);
	maybe_stopped(s);
}

void
supervisor_fini(supervisor *s)
{
	if (s == NULL)
		return;
	for (int i = 0; s->w && i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		if (w->bev)
			bufferevent_free(w->bev);
		if (w->pid > 0) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, NULL, 0);
		}
		if (w->restart_ev)
			event_free(w->restart_ev);
		free(w->startup_error);
		free(w->startup_traceback);
	}
	if (s->sigchld_ev)
		event_free(s->sigchld_ev);
	if (s->kill_ev)
		event_free(s->kill_ev);
	free_functions(s);
	free(s->python_version);
	free((char *) s->cfg.worker_bin);
	free((char *) s->cfg.app);
	free(s->w);
	free(s);
}

void
supervisor_info(const supervisor *s, int slot, sup_worker_info *out)
{
	static const char *names[] = {"starting", "ready", "restarting",
	    "restarting", "stopped", "recycling"};
	const worker *w = &s->w[slot];

	out->pid = w->pid;
	out->state = names[w->state];
	out->jobs_done = w->jobs_done;
	out->restarts = w->restarts;
	out->recycles = w->recycles;
}

int
supervisor_count(const supervisor *s)
{
	return s->cfg.workers;
}

const char *const *
supervisor_functions(const supervisor *s, size_t *n)
{
	*n = s->nfunctions;
	return (const char *const *) s->functions;
}

sup_function_options
supervisor_function_options(const supervisor *s, const char *name,
    size_t len)
{
	sup_function_options none = {0, 0};

	for (size_t i = 0; i < s->nfunctions; i++) {
		if (strlen(s->functions[i]) == len &&
		    memcmp(s->functions[i], name, len) == 0)
			return s->options[i];
	}
	return none;
}

const char *
supervisor_python_version(const supervisor *s)
{
	return s->python_version;
}
