/* forker: starting, watching and restarting the template workers are
 * forked from, and asking it for workers (see forker.h). */
#include "forker.h"

#include "frame.h"
#include "framein.h"
#include "log.h"
#include "parse.h"
#include "worker.pb-c.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* One template process. */
typedef struct tmpl {
	forker *f;
	uint32_t gen;            /* unique, from 1 */
	pid_t pid;               /* 0 once reaped */
	struct bufferevent *bev; /* NULL once closed */
	bool ready;              /* said hello: takes Spawn requests */
	char *startup_error;
	char *startup_traceback;
} tmpl;

struct forker {
	struct event_base *base;
	launch_config cfg;
	forker_events ev;
	void *arg;
	tmpl *cur;  /* the template new workers come from */
	tmpl *old;  /* during a reload: the one being replaced */
	uint32_t next_gen;
	struct event *restart_ev; /* starts a new current template */
	uint32_t failures;        /* template deaths in a row before hello */
	bool stopping;
	bool ever_ready;          /* a template has said hello */
};

static void template_start(forker *f);
static void template_down(tmpl *t, const char *reason);

static void
template_free(tmpl *t)
{
	if (t == NULL)
		return;
	if (t->bev != NULL)
		bufferevent_free(t->bev);
	free(t->startup_error);
	free(t->startup_traceback);
	free(t);
}

/* The template that takes Spawn requests now, if any: the current one, or
 * during a reload the one being replaced until the new one is ready. */
static tmpl *
ready_template(forker *f)
{
	if (f->cur != NULL && f->cur->ready)
		return f->cur;
	if (f->old != NULL && f->old->ready && f->old->bev != NULL)
		return f->old;
	return NULL;
}

static void
on_template_hello(tmpl *t, const uint8_t *data, size_t len)
{
	forker *f = t->f;

	if (f->ev.hello(f->arg, data, len) != 0) {
		log_error("the template sent a malformed hello");
		return;
	}
	t->ready = true;
	f->ever_ready = true;
	f->failures = 0;
	log_debug("template (pid %d) ready", (int) t->pid);
	f->ev.ready(f->arg, t == f->cur && f->old != NULL);
}

/* Spawned{slot, pid}: now the worker's pid is known. */
static void
on_spawned(tmpl *t, const uint8_t *data, size_t len)
{
	Gild__Worker__V1__Spawned *m;

	m = gild__worker__v1__spawned__unpack(NULL, len, data);
	if (m == NULL) {
		log_error("the template sent a malformed spawned message");
		return;
	}
	t->f->ev.spawned(t->f->arg, t->gen, m->slot,
	    m->pid > 0 ? (pid_t) m->pid : 0);
	gild__worker__v1__spawned__free_unpacked(m, NULL);
}

/* Exited{pid, status}: the template reaped one of its workers. */
static void
on_exited(tmpl *t, const uint8_t *data, size_t len)
{
	Gild__Worker__V1__Exited *m;

	m = gild__worker__v1__exited__unpack(NULL, len, data);
	if (m == NULL)
		return;
	if (m->pid > 0)
		t->f->ev.exited(t->f->arg, (pid_t) m->pid, m->wait_status);
	gild__worker__v1__exited__free_unpacked(m, NULL);
}

static bool
on_template_frame(void *arg, const uint8_t *p, size_t len)
{
	tmpl *t = arg;
	parsed_from_worker fw;

	parse_from_worker(p, len, &fw);
	switch (fw.kind) {
	case FW_HELLO:
		on_template_hello(t, fw.data, fw.len);
		return true;
	case FW_STARTUP_ERROR:
		launch_startup_error(fw.data, fw.len, &t->startup_error,
		    &t->startup_traceback);
		return true;
	case FW_SPAWNED:
		on_spawned(t, fw.data, fw.len);
		return true;
	case FW_EXITED:
		on_exited(t, fw.data, fw.len);
		return true;
	default:
		template_down(t, "it sent a malformed frame");
		return false;
	}
}

static void
on_template_read(struct bufferevent *bev, void *arg)
{
	tmpl *t = arg;
	const char *bad = framein_read(bev, &t->bev, -1, NULL, 1u << 20,
	    on_template_frame, t);

	if (bad != NULL)
		template_down(t, bad);
}

static void
on_template_event(struct bufferevent *bev, short what, void *arg)
{
	template_down(arg, what & BEV_EVENT_EOF ? "it closed its socket"
						: "its socket failed");
}

/* The template is gone or broken. Its workers die with it (their
 * PDEATHSIG) and, gild being their subreaper, are reaped by the
 * supervisor; those whose pid never came are ended by `down`. */
static void
template_down(tmpl *t, const char *reason)
{
	forker *f = t->f;

	if (t->bev == NULL)
		return;
	bufferevent_free(t->bev);
	t->bev = NULL;
	t->ready = false;
	if (t->pid > 0 && !f->stopping)
		kill(t->pid, SIGKILL); /* stopping: EOF is enough */
	if (!f->stopping)
		log_debug("template (pid %d) down: %s", (int) t->pid, reason);
	f->ev.down(f->arg, t->gen);
}

static void
on_template_restart(evutil_socket_t fd, short what, void *arg)
{
	template_start(arg);
}

/* The template process has been reaped. */
static void
template_reaped(tmpl *t, int status)
{
	forker *f = t->f;
	char why[128], msg[600];
	struct timeval tv;

	t->pid = 0;
	template_down(t, launch_describe_exit(status, why, sizeof(why)));
	f->ev.reaped(f->arg, t->gen);
	if (t == f->old) {
		f->old = NULL;
		template_free(t);
		return;
	}
	if (f->stopping) {
		f->ev.stopped(f->arg);
		return;
	}
	if (!t->ready && !f->ever_ready) {
		/* The app does not start at all: restarting would loop. */
		snprintf(msg, sizeof(msg), "%s",
		    t->startup_error ? t->startup_error : why);
		f->ev.failed(f->arg, msg, t->startup_traceback);
		return;
	}
	if (!t->ready && f->old != NULL) {
		/* A reload whose app does not import: keep what runs. */
		log_error("reload failed, the running workers are kept: %s",
		    t->startup_error ? t->startup_error : why);
		if (t->startup_traceback)
			fprintf(stderr, "%s", t->startup_traceback);
		f->cur = f->old;
		f->old = NULL;
		template_free(t);
		return;
	}
	log_warn("template (pid %d) %s: starting a new one", (int) t->pid,
	    why);
	if (t->startup_error)
		log_error("the app cannot be loaded: %s", t->startup_error);
	f->failures = t->ready ? 0 : f->failures + 1;
	f->cur = NULL;
	template_free(t);
	tv = launch_backoff(f->failures);
	evtimer_add(f->restart_ev, &tv);
}

/* Starts a new current template (the old one, if any, stays until the
 * workers it forked are replaced). */
static void
template_start(forker *f)
{
	const char *extra[] = {"--template", NULL};
	struct timeval retry = {1, 0};
	tmpl *t = calloc(1, sizeof(*t));
	int fd, rc;

	if (f->stopping) {
		free(t);
		return;
	}
	if (t == NULL ||
	    (rc = launch_worker(&f->cfg, extra, &fd, NULL, &t->pid)) != 0) {
		log_error("cannot start the template process: %s",
		    t ? strerror(-rc) : "out of memory");
		free(t);
		evtimer_add(f->restart_ev, &retry);
		return;
	}
	t->f = f;
	t->gen = ++f->next_gen;
	evutil_make_socket_nonblocking(fd);
	if ((t->bev = bufferevent_socket_new(f->base, fd,
		 BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		free(t);
		evtimer_add(f->restart_ev, &retry);
		return;
	}
	bufferevent_setcb(t->bev, on_template_read, NULL, on_template_event, t);
	bufferevent_enable(t->bev, EV_READ);
	f->cur = t;
	log_debug("template spawned (pid %d)", (int) t->pid);
}

int
forker_init(forker **out, struct event_base *base, const launch_config *cfg,
    const forker_events *ev, void *arg)
{
	forker *f;

	/* Forked workers are the template's children; if it dies first they
	 * are re-parented to us, and reaped here, rather than to init. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		return -errno;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -ENOMEM;
	f->base = base;
	f->cfg = *cfg;
	f->ev = *ev;
	f->arg = arg;
	if ((f->restart_ev = evtimer_new(base, on_template_restart, f)) ==
	    NULL) {
		free(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

int
forker_start(forker *f)
{
	template_start(f);
	return f->cur != NULL ? 0 : -EIO;
}

int
forker_spawn(forker *f, int slot, int *fd, int *chan, uint32_t *gen)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	Gild__Worker__V1__Spawn sp = GILD__WORKER__V1__SPAWN__INIT;
	uint8_t buf[FRAME_HEADER_LEN + 16];
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {buf, 0};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	size_t n;
	int sv[2], ch[2], rc, give[2];
	ssize_t sent;
	tmpl *t = ready_template(f);

	if (t == NULL)
		return -EAGAIN;
	sp.slot = (uint32_t) slot;
	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_SPAWN;
	m.spawn = &sp;
	n = gild__worker__v1__to_worker__pack(&m, buf + FRAME_HEADER_LEN);
	frame_header_encode(buf, n);
	iov.iov_len = FRAME_HEADER_LEN + n;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	if ((rc = launch_chan_pair(ch)) != 0) {
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	/* The worker's socket, then its descriptor channel. */
	give[0] = sv[1];
	give[1] = ch[1];
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(give));
	memcpy(CMSG_DATA(c), give, sizeof(give));
	/* A few bytes on a socket the template drains: all or nothing. */
	do
		sent = sendmsg(bufferevent_getfd(t->bev), &mh, MSG_NOSIGNAL);
	while (sent == -1 && errno == EINTR);
	rc = sent == (ssize_t) iov.iov_len ? 0 : sent == -1 ? -errno : -EIO;
	close(sv[1]);
	close(ch[1]);
	if (rc != 0) {
		close(sv[0]);
		close(ch[0]);
		return rc;
	}
	*fd = sv[0];
	*chan = ch[0];
	*gen = t->gen;
	return 0;
}

int
forker_reload(forker *f)
{
	f->old = f->cur;
	f->cur = NULL;
	template_start(f);
	if (f->cur == NULL) { /* could not even start: keep what runs */
		f->cur = f->old;
		f->old = NULL;
		return -EIO;
	}
	return 0;
}

bool
forker_reloading(const forker *f)
{
	return f != NULL && f->old != NULL;
}

void
forker_reload_done(forker *f)
{
	if (f != NULL && f->old != NULL && f->old->bev != NULL) {
		/* EOF: the old template exits; its reap frees it. */
		bufferevent_free(f->old->bev);
		f->old->bev = NULL;
		f->old->ready = false;
	}
}

bool
forker_reaped(forker *f, pid_t pid, int status)
{
	if (f == NULL || pid <= 0)
		return false;
	if (f->cur != NULL && f->cur->pid == pid)
		template_reaped(f->cur, status);
	else if (f->old != NULL && f->old->pid == pid)
		template_reaped(f->old, status);
	else
		return false;
	return true;
}

void
forker_stop(forker *f)
{
	if (f == NULL)
		return;
	f->stopping = true;
	event_del(f->restart_ev);
	/* A template exits at EOF; the workers it forked die with it. */
	if (f->cur != NULL)
		template_down(f->cur, "stopping");
	if (f->old != NULL)
		template_down(f->old, "stopping");
}

bool
forker_running(const forker *f)
{
	return f != NULL && ((f->cur != NULL && f->cur->pid > 0) ||
				(f->old != NULL && f->old->pid > 0));
}

void
forker_kill(forker *f)
{
	if (f == NULL)
		return;
	if (f->cur != NULL && f->cur->pid > 0)
		kill(f->cur->pid, SIGKILL);
	if (f->old != NULL && f->old->pid > 0)
		kill(f->old->pid, SIGKILL);
}

void
forker_fini(forker *f)
{
	tmpl *t[2];

	if (f == NULL)
		return;
	t[0] = f->cur;
	t[1] = f->old;
	for (int i = 0; i < 2; i++) {
		if (t[i] != NULL && t[i]->pid > 0) {
			kill(t[i]->pid, SIGKILL);
			waitpid(t[i]->pid, NULL, 0);
		}
		template_free(t[i]);
	}
	event_free(f->restart_ev);
	free(f);
}
