/* The worker supervisor: spawn (forked by the template, forker.c, or
 * exec'd, launch.c), watch, restart, recycle, reload. */
#include "supervisor_priv.h"

#include "catalog.h"
#include "forker.h"
#include "framein.h"
#include "launch.h"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"

/* Why workers died and were restarted, as /metrics labels them. */
enum { RS_SIGNAL, RS_EXIT, RS_KILLED, RS_MEMORY };
static const char *const restart_reasons[] = {
    [RS_SIGNAL] = "signal",     /* died of a signal (a crash, OOM kill) */
    [RS_EXIT] = "exit",         /* exited on its own */
    [RS_KILLED] = "killed",     /* by gild: stuck past --kill-grace */
    [RS_MEMORY] = "worker-memory", /* out of --worker-memory: it said so
				      with its last job's end and exited */
};
_Static_assert(sizeof(restart_reasons) / sizeof(restart_reasons[0]) ==
		   SUP_RESTART_REASONS,
    "a name for every restart reason");

/* Why workers were replaced on purpose (recycled), as /metrics labels
 * them: worker.recycle_why. */
static const char *const recycle_reasons[] = {
    [RC_MAX_JOBS] = "max-jobs", /* --max-jobs-per-worker */
    [RC_MAX_RSS] = "max-rss",   /* --max-worker-rss */
    [RC_RELOAD] = "reload",     /* SIGHUP: the app imported again */
};
_Static_assert(sizeof(recycle_reasons) / sizeof(recycle_reasons[0]) ==
		   SUP_RECYCLE_REASONS,
    "a name for every recycle reason");

static void on_reaped(worker *w, int status, const char *why);
static void maybe_stopped(supervisor *s);
static void roll_next(supervisor *s);

pid_note
pid_of(const worker *w)
{
	pid_note n = {""};

	if (w->logged_pid > 0)
		snprintf(n.s, sizeof(n.s), " (pid %d)", (int) w->logged_pid);
	return n;
}

void
drop_pending(worker *w)
{
	evbuffer_drain(w->pending, evbuffer_get_length(w->pending));
}

/* Closes our end of w's socket: the worker reads EOF and exits. */
static void
close_socket(worker *w)
{
	drop_pending(w);
	if (w->bev != NULL) {
		bufferevent_free(w->bev);
		w->bev = NULL;
		if (w->chan != -1)
			close(w->chan);
		w->chan = -1;
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

static void reload_later(supervisor *s);

/* ---- hello: the app's functions ---------------------------------------- */

static void
log_exports(supervisor *s)
{
	const catalog_table *t = catalog_newest(s->cat);
	const char *pyver = catalog_python_version(t);
	size_t n;

	catalog_functions(t, &n);
	if (!s->logged_exports && (s->logged_exports = true))
		log_info("app %s exports %zu functions (Python %s)", s->cfg.app,
		    n, pyver != NULL ? pyver : "?");
}

/* The parent of process pid, from /proc; 0 when not known. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold anything but ends at
	 * the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %*c %d",
						    &ppid) != 1)
		return 0;
	return (pid_t) ppid;
}

/* w's process is pid: kept with a pidfd opened now. A worker forked by a
 * template could have ended and its pid been reused before the pidfd was
 * opened: the pidfd is kept only if pid's parent is still that template
 * (or gild, its subreaper). */
static void
set_pid(worker *w, pid_t pid)
{
	pid_t parent;

	w->pid = pid;
	w->logged_pid = pid;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = pidfd_open(pid, 0);
	if (w->pidfd >= 0 && w->tgen != 0 &&
	    (parent = parent_of(pid)) != getpid() &&
	    parent != forker_pid(w->sup->fk, w->tgen)) {
		close(w->pidfd);
		w->pidfd = -1;
	}
}

/* w's process is gone (reaped): no pid, no pidfd. */
static void
clear_pid(worker *w)
{
	w->pid = 0;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
}

/* Sends sig to w's process: through its pidfd, never by a pid that may
 * have been reused; a worker gild itself started (--spawn exec), whose
 * pid is not reused before gild reaps it, also by pid. */
static void
signal_worker(const worker *w, int sig)
{
	if (w->pidfd >= 0)
		(void) pidfd_send_signal(w->pidfd, sig, NULL, 0);
	else if (w->pid > 0 && w->tgen == 0)
		(void) kill(w->pid, sig);
}

/* A forked worker whose hello came before the template's Spawned (they
 * come on two sockets): its pid from the hello, taken once it is seen to
 * be a child of the template that forked it, or of gild (its template
 * died), so that it is reaped and named in the log. */
static void
pid_from_hello(worker *w, pid_t pid)
{
	pid_t parent;

	if (w->pid != 0 || w->tgen == 0 || pid <= 0)
		return;
	parent = parent_of(pid);
	if (parent == getpid() ||
	    (parent > 0 && parent == forker_pid(w->sup->fk, w->tgen)))
		set_pid(w, pid);
}

static void
on_hello(worker *w, const uint8_t *data, size_t len)
{
	supervisor *s = w->sup;
	catalog_table *t;
	int32_t pid;

	if (w->said_hello) {
		/* Only a worker's first Hello counts: it is broken. */
		worker_down(w, "worker sent a second hello", DOWN_BROKEN);
		return;
	}
	if ((t = catalog_take(s->cat, data, len, &pid)) == NULL) {
		worker_down(w, "worker sent a malformed hello", DOWN_BROKEN);
		return;
	}
	catalog_release(s->cat, w->table);
	w->table = t;
	pid_from_hello(w, pid > 0 ? (pid_t) pid : 0);
	w->said_hello = true;
	w->state = W_READY;
	log_exports(s);
	s->ever_ready = true;
	log_debug("worker %d%s ready", w->slot, pid_of(w).s);
	s->ev.ready(s->arg, w->slot);
	if (s->rolling >= 0)
		roll_next(s);
}

/* ---- recycling --------------------------------------------------------- */

/* Whether w is to be replaced now that a job ended: --max-jobs-per-worker,
 * --max-worker-rss, or a reload. Checked between jobs, never during one. */
static bool
due_for_recycling(worker *w)
{
	const sup_config *c = &w->sup->cfg;
	uint64_t rss;

	if (w->roll) {
		w->recycle_why = RC_RELOAD;
		return true;
	}
	if (c->max_jobs != 0 && w->jobs_since_spawn >= c->max_jobs) {
		w->recycle_why = RC_MAX_JOBS;
		log_info("worker %d%s recycled after %llu jobs "
			 "(--max-jobs-per-worker)",
		    w->slot, pid_of(w).s,
		    (unsigned long long) w->jobs_since_spawn);
		return true;
	}
	if (c->max_rss_kib != 0 &&
	    (rss = procstat_rss_bytes(w->pid) / 1024) > c->max_rss_kib) {
		w->recycle_why = RC_MAX_RSS;
		log_info("worker %d%s recycled: RSS %llu MiB over "
			 "--max-worker-rss %llu MiB",
		    w->slot, pid_of(w).s, (unsigned long long) rss / 1024,
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
	w->roll = false;
}

/* ---- workers ----------------------------------------------------------- */

/* After a frame that ended (or gave back) one of w's jobs: whether to read
 * on. Not when w went meanwhile, nor when it is being recycled and that
 * was its last job (of several threads'): it is retired now. */
static bool
still_reading(worker *w)
{
	if (w->bev == NULL)
		return false;
	if (w->state == W_READY && w->draining && w->running == 0) {
		retire(w);
		return false;
	}
	return true;
}

/* Handles one FromWorker frame of a worker. */
static bool
on_worker_frame(void *arg, const uint8_t *p, size_t len)
{
	worker *w = arg;
	supervisor *s = w->sup;
	parsed_from_worker fw;

	parse_from_worker(p, len, &fw);
	switch (fw.kind) {
	case FW_HELLO:
		if (w->state == W_DYING)
			return true; /* it is not coming back */
		on_hello(w, fw.data, fw.len);
		return w->state == W_READY;
	case FW_STARTUP_ERROR:
		launch_startup_error(fw.data, fw.len, &w->startup_error,
		    &w->startup_traceback, &w->startup_retry);
		return true;
	case FW_CHUNK:
		s->ev.chunk(s->arg, w->slot, fw.job_id, fw.data, fw.len);
		return w->bev != NULL;
	case FW_RESULT:
	case FW_STREAM_END: {
		/* The job's end: a result or error, or a stream's end. */
		void (*end)(void *, int, uint64_t, const uint8_t *, size_t) =
		    fw.kind == FW_RESULT ? s->ev.result : s->ev.stream_end;
		if (fw.run_us != 0 && fw.kind == FW_RESULT)
			s->ev.ran(s->arg, w->slot, fw.job_id, fw.run_us);
		w->jobs_done++;
		w->jobs_since_spawn++;
		if (w->running > 0)
			w->running--;
		if (w->state == W_READY && !w->draining &&
		    (fw.exiting || due_for_recycling(w))) {
			/* No new job may reach it while its result goes out. */
			w->draining = true;
			w->out_of_memory = fw.exiting;
			s->ev.retiring(s->arg, w->slot);
		}
		end(s->arg, w->slot, fw.job_id, fw.data, fw.len);
		return still_reading(w);
	}
	case FW_TAKEN_BACK:
		if (fw.returned && w->running > 0)
			w->running--; /* one less to wait for before a retire */
		s->ev.taken_back(s->arg, w->slot, fw.job_id, fw.returned);
		return still_reading(w);
	default:
		worker_down(w, "worker sent a malformed frame", DOWN_BROKEN);
		return false;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	worker *w = arg;
	const char *bad = framein_read(bev, &w->bev, w->chan,
	    &w->sup->shm_bytes, w->sup->cfg.max_frame, on_worker_frame, w);

	if (bad != NULL) {
		char why[96];
		snprintf(why, sizeof(why), "worker %s", bad);
		worker_down(w, why, DOWN_BROKEN);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	worker *w = arg;
	int e = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_EOF)
		worker_down(w, "worker closed its socket", DOWN_GONE);
	else if (what & BEV_EVENT_ERROR)
		/* EPIPE, ECONNRESET: its end is closed, it writes no more. */
		worker_down(w, strerror(e),
		    e == EPIPE || e == ECONNRESET ? DOWN_GONE : DOWN_KILL);
}

/* Tells the owner that w is lost (why: w->why). all_read: every frame it
 * wrote has been handed on, so the jobs it had not started are exactly
 * those it had not been free to take. */
static void
worker_lost(worker *w, bool all_read)
{
	supervisor *s = w->sup;

	close_socket(w);
	signal_worker(w, SIGKILL);
	event_del(w->dying_ev);
	w->state = W_DOWN;
	w->running = 0;
	if (!s->stopping && w->said_hello)
		log_warn("worker %d%s lost: %s%s", w->slot, pid_of(w).s,
		    w->why,
		    all_read ? "" : " (what it ran before it died is not known)");
	s->ev.lost(s->arg, w->slot, w->why, all_read);
}

/* How long a worker killed with SIGKILL may take to be gone (its memory
 * freed, its socket closed) before its jobs are ended without knowing
 * which had started. */
#define DYING_WAIT_MS 5000

static void
on_dying_timeout(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;

	if (w->state != W_DYING)
		return;
	log_warn("worker %d%s is still there %d ms after SIGKILL", w->slot,
	    pid_of(w).s, DYING_WAIT_MS);
	worker_lost(w, false);
}

/* The worker can no longer be used: it gets no new job, its process is
 * made to go, and the owner is told once (`lost`), after every frame it
 * wrote has been read and handed on (how says whether it is gone, or
 * must be killed and waited for first, or can no longer be read). A
 * worker that was not up is only closed and killed. The restart follows
 * the reap. */
void
worker_down(worker *w, const char *reason, down_how how)
{
	supervisor *s = w->sup;
	struct timeval wait = {DYING_WAIT_MS / 1000, 0};
	const char *bad;

	if (w->state == W_STARTING) {
		/* No job yet, and a hello read now would make it ready. */
		snprintf(w->why, sizeof(w->why), "%s", reason);
		worker_lost(w, true);
		return;
	}
	if (w->state == W_READY) {
		snprintf(w->why, sizeof(w->why), "%s", reason);
		w->state = W_DYING;
		s->ev.retiring(s->arg, w->slot); /* no new job from now on */
		bufferevent_disable(w->bev, EV_WRITE);
		drop_pending(w);
		evbuffer_drain(bufferevent_get_output(w->bev),
		    evbuffer_get_length(bufferevent_get_output(w->bev)));
		if (how == DOWN_KILL) {
			/* Its pid may not be known yet: on_spawned kills it. */
			signal_worker(w, SIGKILL);
			evtimer_add(w->dying_ev, &wait);
			return; /* its EOF or its reap comes back here */
		}
	} else if (w->state != W_DYING) {
		close_socket(w);
		signal_worker(w, SIGKILL);
		return;
	} else if (how == DOWN_KILL) {
		return; /* already on its way */
	}
	if (how == DOWN_GONE && w->bev != NULL) {
		bad = framein_read_rest(w->bev, &w->bev, w->chan,
		    &s->shm_bytes, s->cfg.max_frame, on_worker_frame, w);
		if (w->state != W_DYING)
			return; /* put down or stopped by what was read */
		if (bad != NULL) {
			log_warn("worker %d%s: what it wrote before it "
				 "went ends in a broken frame: it %s",
			    w->slot, pid_of(w).s, bad);
			how = DOWN_BROKEN;
		}
	}
	worker_lost(w, how != DOWN_BROKEN);
}

/* w runs on our end fd of its socket and chan of its descriptor channel
 * (both taken), as process pid (0: not known yet). */
static int
attach(worker *w, int fd, int chan, pid_t pid)
{
	supervisor *s = w->sup;

	evutil_make_socket_nonblocking(fd);
	w->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (w->bev == NULL) {
		close(fd);
		close(chan);
		return -ENOMEM;
	}
	w->chan = chan;
	bufferevent_setcb(w->bev, on_read, NULL, on_event, w);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
	if (pid > 0)
		set_pid(w, pid);
	else
		clear_pid(w);
	w->template_died = false;
	w->state = W_STARTING;
	w->said_hello = false;
	catalog_release(s->cat, w->table); /* its last process's */
	w->table = NULL;
	w->killed = false;
	w->roll = false;
	w->draining = false;
	w->out_of_memory = false;
	w->running = 0;
	w->jobs_since_spawn = 0;
	w->generation = w->sup->generation;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	return 0;
}

static int
spawn(worker *w)
{
	supervisor *s = w->sup;
	const char *extra[] = {"--slot", NULL, NULL};
	char slot[16];
	pid_t pid;
	uint32_t gen;
	int rc, fd, chan;

	if (s->fk != NULL) {
		rc = forker_spawn(s->fk, w->slot, &fd, &chan, &gen);
		if (rc == -EAGAIN) {
			/* Spawned when a template is ready (on_forker_ready) */
			w->state = W_RESTARTING;
			return 0;
		}
		if (rc != 0 || (rc = attach(w, fd, chan, 0)) != 0)
			return rc;
		w->tgen = gen;
		log_debug("worker %d: fork requested from the template",
		    w->slot);
		return 0;
	}
	snprintf(slot, sizeof(slot), "%d", w->slot);
	extra[1] = slot;
	if ((rc = launch_worker(&s->launch, w->slot, extra, &fd, &chan, &pid)) != 0)
		return rc;
	if ((rc = attach(w, fd, chan, pid)) != 0) {
		kill(pid, SIGKILL);
		w->pid = pid; /* reaped by on_sigchld */
		w->state = W_DOWN;
		return rc;
	}
	w->tgen = 0;
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

/* w's process has ended: status as from waitpid (-1: not known), why says
 * how in words. Restarts it, or stops. */
static void
on_reaped(worker *w, int status, const char *why)
{
	supervisor *s = w->sup;
	struct timeval tv = {0, 0};

	clear_pid(w);
	if (w->state == W_RETIRING && !s->stopping) {
		/* A planned replacement, unless the worker asked for it
		 * because it ran out of --worker-memory. */
		if (w->out_of_memory) {
			w->restarts++;
			s->restarts[RS_MEMORY]++;
		} else {
			w->recycles++;
			s->recycles[w->recycle_why]++;
		}
		w->state = W_RESTARTING;
		evtimer_add(w->restart_ev, &tv); /* now: no backoff for a recycle */
		return;
	}
	worker_down(w, why, DOWN_GONE);
	if (s->stopping) {
		w->state = W_STOPPED;
		maybe_stopped(s);
		return;
	}
	if (!w->said_hello && !s->ever_ready && w->tgen == 0 &&
	    !w->startup_retry) {
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
	if (w->startup_error && !w->startup_retry)
		log_error("worker %d cannot load the app: %s", w->slot,
		    w->startup_error);
	/* Back off only in a crash loop: workers that die before they are
	 * ready, or on their own soon after without finishing a job. Not a
	 * worker SIGKILLed from outside (an operator, the OOM killer) or by
	 * us after --kill-grace, nor one that died with its template: its
	 * replacement is wanted at once. */
	if (w->template_died ||
	    (w->said_hello &&
		(w->killed || w->jobs_since_spawn > 0 ||
		    since(&w->started) >= 10.0 ||
		    (status != -1 && WIFSIGNALED(status) &&
			WTERMSIG(status) == SIGKILL))))
		w->quick_failures = 0;
	else
		w->quick_failures++;
	s->restarts[w->killed ? RS_KILLED
		    : status != -1 && WIFSIGNALED(status) ? RS_SIGNAL
							   : RS_EXIT]++;
	w->killed = false;
	tv = launch_backoff(w->quick_failures);
	if (w->startup_error && w->startup_retry)
		log_error("worker %d is not ready: %s; starting it again in "
			  "%ld ms",
		    w->slot, w->startup_error,
		    (long) tv.tv_sec * 1000 + (long) tv.tv_usec / 1000);
	free(w->startup_error);
	free(w->startup_traceback);
	w->startup_error = w->startup_traceback = NULL;
	w->startup_retry = false;
	w->restarts++;
	w->state = W_RESTARTING;
	evtimer_add(w->restart_ev, &tv);
}

static worker *
worker_by_pid(supervisor *s, pid_t pid)
{
	for (int i = 0; pid > 0 && i < s->cfg.workers; i++)
		if (s->w[i].pid == pid)
			return &s->w[i];
	return NULL;
}

/* ---- the template's news (forker.h) ------------------------------------ */

static int
on_forker_hello(void *arg, const uint8_t *data, size_t len)
{
	supervisor *s = arg;
	catalog_table *t;
	int32_t pid;

	if ((t = catalog_take(s->cat, data, len, &pid)) == NULL)
		return -1;
	catalog_release(s->cat, s->tmpl_table);
	s->tmpl_table = t;
	log_exports(s);
	return 0;
}

/* A template is ready: every slot that waits for one is spawned. */
static void
on_forker_ready(void *arg, bool reload)
{
	supervisor *s = arg;

	if (reload) {
		/* Replace the workers one at a time. */
		log_info("reload: the app imports again; replacing %d workers "
			 "one at a time",
		    s->cfg.workers);
		s->rolling = 0;
		roll_next(s);
	}
	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		struct timeval now = {0, 0};
		if (w->state == W_RESTARTING && w->pid == 0 &&
		    !evtimer_pending(w->restart_ev, NULL))
			evtimer_add(w->restart_ev, &now);
	}
}

/* Now the pid of the worker forked for slot by template gen is known. */
static void
on_forker_spawned(void *arg, uint32_t gen, uint32_t slot, pid_t pid)
{
	supervisor *s = arg;
	worker *w;

	if (slot >= (uint32_t) s->cfg.workers) {
		log_error("the template sent a malformed spawned message");
		return;
	}
	w = &s->w[slot];
	if (w->tgen != gen || w->pid != 0)
		return; /* stale: that slot has moved on */
	if (pid == 0) {
		worker_down(w, "the template could not fork a worker",
		    DOWN_GONE);
		on_reaped(w, -1, "fork failed");
		return;
	}
	set_pid(w, pid);
	log_debug("worker %d forked (pid %d)", w->slot, (int) w->pid);
	if (w->state != W_STARTING && w->state != W_READY)
		signal_worker(w, SIGKILL); /* put down before its pid came */
}

/* A template reaped one of its workers. */
static void
on_forker_exited(void *arg, pid_t pid, int status)
{
	supervisor *s = arg;
	char why[128];
	worker *w;

	if ((w = worker_by_pid(s, pid)) != NULL)
		on_reaped(w, status,
		    launch_describe_exit(status, why, sizeof(why)));
}

/* Template gen is gone or going, and its workers with it: they are
 * replaced without the crash-loop backoff. Those whose pid never came
 * (the template may not have forked them) are ended here; the others are
 * reaped. */
static void
on_forker_down(void *arg, uint32_t gen)
{
	static const char why[] = "the template died before it said its pid";
	supervisor *s = arg;

	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		if (w->tgen != gen || w->state == W_RESTARTING ||
		    w->state == W_STOPPED)
			continue;
		w->template_died = true;
		if (w->pid != 0)
			continue;
		/* A ready one may have run a job: not all it wrote is read. */
		worker_down(w, why, w->state == W_READY ? DOWN_BROKEN
							: DOWN_GONE);
		on_reaped(w, -1, why);
	}
}

/* Template gen has been reaped: workers it reaped but could not report
 * any more are gone for good; the others are ours to reap now. */
static void
on_forker_reaped(void *arg, uint32_t gen)
{
	supervisor *s = arg;

	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		if (w->tgen == gen && w->pid > 0 &&
		    (w->pidfd >= 0 ? pidfd_send_signal(w->pidfd, 0, NULL, 0)
				   : kill(w->pid, 0)) == -1 &&
		    errno == ESRCH)
			on_reaped(w, -1, "ended with its template");
	}	/* A reload's old template once it is done, or a new one whose app
	 * did not import: a reload asked for meanwhile may go now. */
	reload_later(s);
}

static void
on_forker_failed(void *arg, const char *message, const char *traceback)
{
	supervisor *s = arg;

	s->ev.failed(s->arg, message, traceback);
}

static void
on_forker_stopped(void *arg)
{
	maybe_stopped(arg);
}

/* ---- reload ------------------------------------------------------------ */

/* A SIGHUP came while a reload was under way: once that one is over (its
 * workers replaced, its old template gone, or its app failed to import),
 * one more runs, for the app as it is now. Checked after the events that
 * may end a reload, from a timer so that the forker has finished its own
 * bookkeeping first. */
static void
reload_later(supervisor *s)
{
	struct timeval now = {0, 0};

	if (s->reload_pending && !s->stopping)
		evtimer_add(s->reload_ev, &now);
}

static void
on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
	supervisor *s = arg;

	if (s->reload_pending && !s->stopping && s->rolling < 0 &&
	    !forker_reloading(s->fk))
		supervisor_reload(s);
}


/* Replaces the next worker started before the reload, one at a time: a
 * ready worker is retired when idle (now, or after its running job); the
 * next waits for its replacement's hello. */
static void
roll_next(supervisor *s)
{
	while (s->rolling >= 0 && s->rolling < s->cfg.workers) {
		worker *w = &s->w[s->rolling];

		if (w->generation == s->generation &&
		    (w->state == W_READY || w->state == W_STOPPED)) {
			s->rolling++;
			continue;
		}
		if (w->generation != s->generation && w->state == W_READY) {
			if (w->running == 0) {
				s->ev.retiring(s->arg, w->slot);
				w->recycle_why = RC_RELOAD;
				retire(w);
			} else {
				w->roll = true;
			}
		}
		return; /* its replacement's hello calls again */
	}
	if (s->rolling < 0)
		return;
	s->rolling = -1;
	log_info("reload done: every worker runs the reloaded app");
	forker_reload_done(s->fk);
	reload_later(s);
}

void
supervisor_reload(supervisor *s)
{
	if (s->stopping)
		return;
	if (s->rolling >= 0 || forker_reloading(s->fk)) {
		/* The app may have changed since that one imported it. */
		if (!s->reload_pending)
			log_info("reload: one is under way; another follows it");
		s->reload_pending = true;
		return;
	}
	s->reload_pending = false;
	s->generation++;
	log_info("reload: %s", s->cfg.use_template
				   ? "importing the app in a new template"
				   : "replacing the workers one at a time");
	if (!s->cfg.use_template) {
		s->rolling = 0;
		roll_next(s);
		return;
	}
	(void) forker_reload(s->fk); /* on failure, what runs is kept */
}

/* ---- processes --------------------------------------------------------- */

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	supervisor *s = arg;
	char why[128];
	worker *w;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (forker_reaped(s->fk, pid, status))
			continue;
		if ((w = worker_by_pid(s, pid)) != NULL)
			on_reaped(w, status,
			    launch_describe_exit(status, why, sizeof(why)));
	}
}

static void
maybe_stopped(supervisor *s)
{
	for (int i = 0; i < s->cfg.workers; i++) {
		if (s->w[i].pid > 0)
			return;
	}
	if (forker_running(s->fk))
		return;
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
			signal_worker(&s->w[i], SIGKILL);
		}
	}
	forker_kill(s->fk);
}

int
supervisor_init(supervisor **out, struct event_base *base,
    const sup_config *cfg, const sup_events *ev, void *arg)
{
	static const forker_events forker_ev = {
	    .hello = on_forker_hello,
	    .ready = on_forker_ready,
	    .spawned = on_forker_spawned,
	    .exited = on_forker_exited,
	    .down = on_forker_down,
	    .reaped = on_forker_reaped,
	    .failed = on_forker_failed,
	    .stopped = on_forker_stopped,
	};
	supervisor *s;

	if (cfg->workers <= 0)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->base = base;
	s->cfg = *cfg;
	s->ev = *ev;
	s->arg = arg;
	s->rolling = -1;
	s->cfg.worker_bin = strdup(cfg->worker_bin);
	s->cfg.app = strdup(cfg->app);
	s->w = calloc((size_t) cfg->workers, sizeof(worker));
	s->sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, s);
	s->kill_ev = evtimer_new(base, on_kill_timer, s);
	s->reload_ev = evtimer_new(base, on_reload_timer, s);
	s->flush_ev = event_new(base, -1, 0, supervisor_flush_event, s);
	if (catalog_new(&s->cat) != 0 || s->cfg.worker_bin == NULL ||
	    s->cfg.app == NULL || s->w == NULL ||
	    s->sigchld_ev == NULL || s->kill_ev == NULL || s->reload_ev == NULL ||
	    s->flush_ev == NULL || evsignal_add(s->sigchld_ev, NULL) != 0)
		goto fail;
	s->launch = (launch_config){.worker_bin = s->cfg.worker_bin,
	    .app = s->cfg.app,
	    .memory_mib = cfg->memory_mib,
	    .threads = cfg->threads,
	    .allow_pickle = cfg->allow_pickle,
	    .logs = cfg->logs,
	    .log_handler = cfg->app_log_handler,
	    .worker_env = cfg->worker_env,
	    .nworker_env = cfg->nworker_env,
	    .python_path = cfg->python_path,
	    .npython_path = cfg->npython_path,
	    .venv = cfg->venv};
	if (cfg->use_template &&
	    forker_init(&s->fk, base, &s->launch, &forker_ev, s) != 0)
		goto fail;
	for (int i = 0; i < cfg->workers; i++) {
		s->w[i].sup = s;
		s->w[i].slot = i;
		s->w[i].state = W_STOPPED;
		s->w[i].chan = -1;
		s->w[i].pidfd = -1;
		if ((s->w[i].pending = evbuffer_new()) == NULL ||
		    (s->w[i].restart_ev = evtimer_new(base, on_restart,
			 &s->w[i])) == NULL ||
		    (s->w[i].dying_ev = evtimer_new(base, on_dying_timeout,
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

	if (s->fk != NULL && (rc = forker_start(s->fk)) != 0)
		return rc;
	for (int i = 0; i < s->cfg.workers; i++) {
		if ((rc = spawn(&s->w[i])) != 0)
			return rc;
	}
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
	log_warn("worker %d%s killed: %s", w->slot, pid_of(w).s,
	    reason);
	w->killed = true;
	worker_down(w, reason, DOWN_KILL);
}

void
supervisor_stop(supervisor *s, int grace_ms)
{
	struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};

	s->stopping = true;
	forker_stop(s->fk);
	for (int i = 0; i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		event_del(w->restart_ev);
		event_del(w->dying_ev);
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
	/* Templates first: once one is reaped, the workers it forked are our
	 * children (we are their subreaper) and can be reaped here too. */
	for (int i = 0; s->w && i < s->cfg.workers; i++)
		signal_worker(&s->w[i], SIGKILL);
	forker_fini(s->fk);
	for (int i = 0; s->w && i < s->cfg.workers; i++) {
		worker *w = &s->w[i];
		if (w->bev)
			bufferevent_free(w->bev);
		if (w->pid > 0)
			waitpid(w->pid, NULL, 0);
		clear_pid(w);
		if (w->restart_ev)
			event_free(w->restart_ev);
		if (w->dying_ev)
			event_free(w->dying_ev);
		if (w->pending)
			evbuffer_free(w->pending);
		free(w->startup_error);
		free(w->startup_traceback);
		catalog_release(s->cat, w->table);
	}
	if (s->sigchld_ev)
		event_free(s->sigchld_ev);
	if (s->kill_ev)
		event_free(s->kill_ev);
	if (s->reload_ev)
		event_free(s->reload_ev);
	if (s->flush_ev)
		event_free(s->flush_ev);
	if (s->cat != NULL)
		catalog_release(s->cat, s->tmpl_table);
	catalog_free(s->cat);
	free((char *) s->cfg.worker_bin);
	free((char *) s->cfg.app);
	free(s->w);
	free(s);
}

void
supervisor_info(const supervisor *s, int slot, sup_worker_info *out)
{
	static const char *names[] = {"starting", "ready", "restarting",
	    "restarting", "stopped", "recycling", "restarting"};
	const worker *w = &s->w[slot];

	out->pid = w->pid;
	/* A worker of several threads being recycled finishes its running
	 * calls first, taking no new one. */
	out->state = w->state == W_READY && w->draining ? "recycling"
							: names[w->state];
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
	return catalog_functions(catalog_newest(s->cat), n);
}

bool
supervisor_has_function(const supervisor *s, const char *name, size_t len)
{
	const catalog_table *t = catalog_newest(s->cat);
	size_t n;

	catalog_functions(t, &n);
	return n == 0 || catalog_has_function(t, name, len);
}

const char *
supervisor_reported_name(const supervisor *s, const char *cls,
    const char *name, size_t len, size_t *outlen)
{
	const catalog_table *t = catalog_newest(s->cat);
	const char *m;

	if (cls == NULL) {
		*outlen = len;
		return catalog_has_function(t, name, len) ? name : NULL;
	}
	if ((m = catalog_method(t, cls, name, len)) != NULL)
		*outlen = strlen(m);
	return m;
}

sup_function_options
supervisor_function_options(const supervisor *s, const char *name,
    size_t len)
{
	return catalog_function_options(catalog_newest(s->cat), name, len);
}

sup_function_options
supervisor_function_options_on(const supervisor *s, int slot,
    const char *name, size_t len)
{
	const catalog_table *t = slot >= 0 && slot < s->cfg.workers
				     ? s->w[slot].table
				     : NULL;

	return catalog_function_options(t != NULL ? t : catalog_newest(s->cat),
	    name, len);
}

uint32_t
supervisor_method_batch_on(const supervisor *s, int slot, const char *cls,
    const char *name, size_t len)
{
	const catalog_table *t = slot >= 0 && slot < s->cfg.workers
				     ? s->w[slot].table
				     : NULL;

	return catalog_method_batch(t != NULL ? t : catalog_newest(s->cat),
	    cls, name, len);
}

bool
supervisor_actor_class(const supervisor *s, const char *name, size_t len,
    catalog_actor_options *out)
{
	return catalog_actor_class(catalog_newest(s->cat), name, len, out);
}

const char *
supervisor_python_version(const supervisor *s)
{
	return catalog_python_version(catalog_newest(s->cat));
}

bool
supervisor_gil_enabled(const supervisor *s)
{
	return catalog_gil_enabled(catalog_newest(s->cat));
}

uint64_t
supervisor_shm_bytes(const supervisor *s)
{
	return s->shm_bytes;
}

size_t
supervisor_restarts(const supervisor *s, const char *const **reasons,
    const uint64_t **counts)
{
	*reasons = restart_reasons;
	*counts = s->restarts;
	return sizeof(restart_reasons) / sizeof(restart_reasons[0]);
}

size_t
supervisor_recycles(const supervisor *s, const char *const **reasons,
    const uint64_t **counts)
{
	*reasons = recycle_reasons;
	*counts = s->recycles;
	return sizeof(recycle_reasons) / sizeof(recycle_reasons[0]);
}
