/* forker: starting, watching and replacing the template workers are
 * forked from, and asking it for workers (see forker.h). */
#include "forker.h"

#include "applog.h"

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

/* One template process: the current one, a reload's old one, the standby,
 * or one that went down and waits for its reap. */
typedef struct tmpl {
	forker *f;
	uint32_t gen;            /* unique, from 1 */
	pid_t pid;               /* 0 while not known (a standby not yet
				    forked) */
	bool reaped;             /* its process is gone: pid is not to be
				    killed any more, only named in the log */
	struct bufferevent *bev; /* NULL once closed */
	bool imported;           /* the app is imported: it said hello, or
				    it is a standby */
	bool ready;              /* takes Spawn requests */
	bool let_go;             /* its socket was closed for it to exit */
	uint32_t parent;         /* a standby: the template forking it */
	struct tmpl *next;       /* in forker.gone or forker.trash */
	char *startup_error;
	char *startup_traceback;
} tmpl;

struct forker {
	struct event_base *base;
	launch_config cfg;
	forker_events ev;
	void *arg;
	tmpl *cur;     /* the template new workers come from */
	tmpl *old;     /* during a reload: the one being replaced */
	tmpl *standby; /* forked from cur: takes over at once if it dies */
	tmpl *gone;    /* went down, not yet reaped */
	tmpl *trash;   /* standbys let go, freed by trash_ev */
	struct event *trash_ev;   /* frees the trash after the event at hand */
	uint32_t next_gen;
	struct event *restart_ev; /* starts a new current template */
	struct event *standby_ev; /* asks cur for a standby again */
	uint32_t failures;        /* templates in a row that died on their
				     own before their hello */
	uint32_t standby_failures; /* standbys lost since the last hello */
	bool stopping;
	bool ever_ready;          /* a template has said hello */
};

static void template_down(tmpl *t, const char *reason);
static void standby_request(forker *f);

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

/* Sends template t a Spawn request with the nfd (1 to 4) descriptors fds
 * (still the caller's). Returns 0 or a negative errno. */
static int
send_spawn(tmpl *t, const Gild__Worker__V1__Spawn *sp, const int *fds,
    size_t nfd)
{
	Gild__Worker__V1__ToWorker m = GILD__WORKER__V1__TO_WORKER__INIT;
	uint8_t buf[FRAME_HEADER_LEN + 16];
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {buf, 0};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = CMSG_SPACE(nfd * sizeof(int))};
	struct cmsghdr *c;
	ssize_t sent;
	size_t n;

	m.body_case = GILD__WORKER__V1__TO_WORKER__BODY_SPAWN;
	m.spawn = (Gild__Worker__V1__Spawn *) sp;
	n = gild__worker__v1__to_worker__pack(&m, buf + FRAME_HEADER_LEN);
	frame_header_encode(buf, n);
	iov.iov_len = FRAME_HEADER_LEN + n;
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	/* A few bytes on a socket the template drains: all or nothing. */
	do
		sent = sendmsg(bufferevent_getfd(t->bev), &mh, MSG_NOSIGNAL);
	while (sent == -1 && errno == EINTR);
	return sent == (ssize_t) iov.iov_len ? 0 : sent == -1 ? -errno : -EIO;
}

/* Puts t on the list of templates that went down and wait for their
 * reap. */
static void
gone_add(forker *f, tmpl *t)
{
	t->next = f->gone;
	f->gone = t;
}

/* Takes t off that list if it is there; returns whether it was. */
static bool
gone_remove(forker *f, tmpl *t)
{
	for (tmpl **p = &f->gone; *p != NULL; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			return true;
		}
	}
	return false;
}

static void
on_template_hello(tmpl *t, const uint8_t *data, size_t len)
{
	forker *f = t->f;

	if (f->ev.hello(f->arg, data, len) != 0) {
		log_error("the template sent a malformed hello");
		return;
	}
	t->imported = true;
	t->ready = true;
	f->ever_ready = true;
	f->failures = 0;
	f->standby_failures = 0;
	log_debug("template (pid %d) ready", (int) t->pid);
	f->ev.ready(f->arg, t == f->cur && f->old != NULL);
	standby_request(f);
}

/* The standby's pid, from the template that forked it (0: the fork
 * failed). */
static void
standby_spawned(tmpl *t, pid_t pid)
{
	forker *f = t->f;
	tmpl *sb = f->standby;

	if (sb == NULL || sb->parent != t->gen || sb->pid != 0)
		return; /* stale: that standby was let go */
	if (pid <= 0) {
		template_down(sb, "the template could not fork it");
		return;
	}
	sb->pid = pid;
	log_debug("template (pid %d) forked its standby (pid %d)",
	    (int) t->pid, (int) pid);
}

/* Spawned{slot, pid}: now the pid of a worker, or of the standby, is
 * known. */
static void
on_spawned(tmpl *t, const uint8_t *data, size_t len)
{
	Gild__Worker__V1__Spawned *m;

	m = gild__worker__v1__spawned__unpack(NULL, len, data);
	if (m == NULL) {
		log_error("the template (pid %d) sent a malformed spawned "
			  "message",
		    (int) t->pid);
		return;
	}
	if (m->standby)
		standby_spawned(t, m->pid > 0 ? (pid_t) m->pid : 0);
	else
		t->f->ev.spawned(t->f->arg, t->gen, m->slot,
		    m->pid > 0 ? (pid_t) m->pid : 0);
	gild__worker__v1__spawned__free_unpacked(m, NULL);
}

/* Exited{pid, status}: the template reaped one of its children: a worker,
 * or its standby. */
static void
on_exited(tmpl *t, const uint8_t *data, size_t len)
{
	forker *f = t->f;
	Gild__Worker__V1__Exited *m;
	char why[128];

	m = gild__worker__v1__exited__unpack(NULL, len, data);
	if (m == NULL)
		return;
	if (f->standby != NULL && m->pid > 0 && f->standby->pid == m->pid) {
		f->standby->reaped = true;
		template_down(f->standby, launch_describe_exit(m->wait_status,
					      why, sizeof(why)));
	} else if (m->pid > 0) {
		f->ev.exited(f->arg, (pid_t) m->pid, m->wait_status);
	}
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
		return t->bev != NULL;
	case FW_STARTUP_ERROR: {
		bool retry; /* a template runs no hooks: never set */
		launch_startup_error(fw.data, fw.len, &t->startup_error,
		    &t->startup_traceback, &retry);
		return true;
	}
	case FW_SPAWNED:
		on_spawned(t, fw.data, fw.len);
		return t->bev != NULL;
	case FW_EXITED:
		on_exited(t, fw.data, fw.len);
		return t->bev != NULL;
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

static void
on_trash(evutil_socket_t fd, short what, void *arg)
{
	forker *f = arg;

	while (f->trash != NULL) {
		tmpl *t = f->trash;
		f->trash = t->next;
		template_free(t);
	}
}

/* Lets the standby go: closing its socket makes it exit (or it is gone
 * already). Its tmpl is freed after the event at hand, which may be one
 * of its own. */
static void
standby_drop(forker *f)
{
	tmpl *sb = f->standby;

	if (sb == NULL)
		return;
	f->standby = NULL;
	if (sb->bev != NULL) {
		bufferevent_free(sb->bev);
		sb->bev = NULL;
	}
	sb->next = f->trash;
	f->trash = sb;
	event_active(f->trash_ev, 0, 0);
}

/* Asks for a standby again later: at once after a hello, then backing
 * off from 100 ms, as standbys keep going. */
static void
standby_later(forker *f)
{
	struct timeval tv = launch_backoff(++f->standby_failures + 1);

	if (!f->stopping)
		evtimer_add(f->standby_ev, &tv);
}

/* Execs a new current template. Returns 0 or a negative errno (logged). */
static int
template_exec(forker *f)
{
	const char *extra[] = {"--template", NULL};
	tmpl *t = calloc(1, sizeof(*t));
	int fd, rc;

	if (t == NULL ||
	    (rc = launch_worker(&f->cfg, -1, extra, &fd, NULL, &t->pid)) != 0) {
		rc = t == NULL ? -ENOMEM : rc;
		log_error("cannot start the template process: %s",
		    strerror(-rc));
		free(t);
		return rc;
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
		log_error("cannot start the template process: out of memory");
		return -ENOMEM;
	}
	bufferevent_setcb(t->bev, on_template_read, NULL, on_template_event, t);
	bufferevent_enable(t->bev, EV_READ);
	f->cur = t;
	log_debug("template spawned (pid %d)", (int) t->pid);
	return 0;
}

/* Starts a new current template now, or tries again in a second. */
static void
template_restart(forker *f)
{
	struct timeval retry = {1, 0};

	if (f->stopping || f->cur != NULL)
		return;
	if (template_exec(f) != 0)
		evtimer_add(f->restart_ev, &retry);
}

static void
on_template_restart(evutil_socket_t fd, short what, void *arg)
{
	template_restart(arg);
}

static void
on_standby_timer(evutil_socket_t fd, short what, void *arg)
{
	standby_request(arg);
}

/* Asks the current template, once ready, to fork a standby, unless there
 * is one. */
static void
standby_request(forker *f)
{
	Gild__Worker__V1__Spawn sp = GILD__WORKER__V1__SPAWN__INIT;
	tmpl *t = f->cur, *sb;
	int sv[2], rc, give[3];
	size_t nfd = 1;

	if (f->stopping || f->standby != NULL || t == NULL || !t->ready ||
	    t->bev == NULL)
		return;
	event_del(f->standby_ev);
	if ((sb = calloc(1, sizeof(*sb))) == NULL) {
		standby_later(f);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("no standby for the template: %s", strerror(errno));
		free(sb);
		standby_later(f);
		return;
	}
	sp.standby = true;
	/* Its socket, then (its output read apart from the template's) its
	 * stdout and stderr. */
	give[0] = sv[1];
	if (f->cfg.logs != NULL &&
	    (rc = applog_open(f->cfg.logs, -1, 0, give + 1)) != 0) {
		log_warn("no standby for the template: %s", strerror(-rc));
		close(sv[0]);
		close(sv[1]);
		free(sb);
		standby_later(f);
		return;
	}
	if (f->cfg.logs != NULL)
		nfd = 3;
	rc = send_spawn(t, &sp, give, nfd);
	for (size_t i = 0; i < nfd; i++)
		close(give[i]);
	evutil_make_socket_nonblocking(sv[0]);
	if (rc != 0 || (sb->bev = bufferevent_socket_new(f->base, sv[0],
			    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warn("no standby for the template (pid %d): %s",
		    (int) t->pid, strerror(rc != 0 ? -rc : ENOMEM));
		close(sv[0]);
		free(sb);
		standby_later(f);
		return;
	}
	sb->f = f;
	sb->gen = ++f->next_gen;
	sb->parent = t->gen;
	sb->imported = true;
	bufferevent_setcb(sb->bev, on_template_read, NULL, on_template_event,
	    sb);
	bufferevent_enable(sb->bev, EV_READ);
	f->standby = sb;
}

/* The standby went (reason: how): another is asked for. */
static void
standby_down(forker *f, const char *reason)
{
	tmpl *sb = f->standby;

	if (!f->stopping) {
		if (sb->pid > 0)
			log_warn("standby template (pid %d) down: %s",
			    (int) sb->pid, reason);
		else
			log_warn("standby template down before it was "
				 "forked: %s",
			    reason);
		standby_later(f);
	}
	standby_drop(f);
}

/* The current template t went down: its standby takes over, or a new one
 * is started at once if it had the app imported; if it had not, its reap
 * decides (template_reaped). */
static void
current_down(forker *f, tmpl *t, const char *reason)
{
	tmpl *sb = f->standby;

	if (sb != NULL && sb->pid > 0 && sb->bev != NULL) {
		log_warn("template (pid %d) down: %s; its standby (pid %d) "
			 "takes over",
		    (int) t->pid, reason, (int) sb->pid);
		f->standby = NULL;
		f->cur = sb;
		sb->ready = true;
		gone_add(f, t);
		f->ev.ready(f->arg, false);
		standby_request(f);
		return;
	}
	standby_drop(f);
	if (t->imported) {
		log_warn("template (pid %d) down: %s; starting a new one",
		    (int) t->pid, reason);
		f->cur = NULL;
		gone_add(f, t);
		template_restart(f);
		return;
	}
	log_warn("template (pid %d) down before it was ready: %s",
	    (int) t->pid, reason);
}

/* t is gone or broken (reason: how), and takes no more requests. The
 * workers it forked die with it (their PDEATHSIG) and, gild being their
 * subreaper, are reaped by the supervisor; those whose pid never came are
 * ended by `down`. */
static void
template_down(tmpl *t, const char *reason)
{
	forker *f = t->f;

	if (t->bev == NULL)
		return;
	bufferevent_free(t->bev);
	t->bev = NULL;
	t->ready = false;
	if (t->pid > 0 && !t->reaped && !f->stopping)
		kill(t->pid, SIGKILL); /* stopping: EOF is enough */
	if (t == f->standby) {
		standby_down(f, reason);
		return;
	}
	f->ev.down(f->arg, t->gen);
	if (f->stopping)
		return;
	if (t == f->cur)
		current_down(f, t, reason);
	else
		log_warn("template (pid %d) down: %s", (int) t->pid, reason);
}

/* A template that went down before it was ready has been reaped: why
 * says how it ended. Starts another, at once if it was killed from
 * outside (SIGKILL: an operator, the OOM killer), else with the
 * crash-loop backoff; or gives up when no template was ever ready. */
static void
unready_reaped(forker *f, tmpl *t, int status, const char *why)
{
	char msg[600];
	struct timeval tv;

	if (!f->ever_ready) {
		/* The app does not start at all: restarting would loop. */
		snprintf(msg, sizeof(msg), "%s",
		    t->startup_error ? t->startup_error : why);
		f->ev.failed(f->arg, msg, t->startup_traceback);
		return;
	}
	if (f->old != NULL) {
		/* A reload whose app does not import: keep what runs. */
		log_error("reload failed, the running workers are kept: %s",
		    t->startup_error ? t->startup_error : why);
		if (t->startup_traceback)
			fprintf(stderr, "%s", t->startup_traceback);
		f->cur = f->old;
		f->old = NULL;
		template_free(t);
		standby_request(f);
		return;
	}
	if (t->startup_error)
		log_error("the app cannot be loaded: %s", t->startup_error);
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		f->failures++;
	tv = launch_backoff(f->failures);
	log_warn("template (pid %d) %s before it was ready: starting a new "
		 "one in %ld ms",
	    (int) t->pid, why, (long) (tv.tv_sec * 1000 + tv.tv_usec / 1000));
	f->cur = NULL;
	template_free(t);
	evtimer_add(f->restart_ev, &tv);
}

/* Template t's process has been reaped with status. */
static void
template_reaped(tmpl *t, int status)
{
	forker *f = t->f;
	bool was_up = t->bev != NULL;
	char why[128];

	launch_describe_exit(status, why, sizeof(why));
	t->reaped = true;
	if (t == f->standby) {
		template_down(t, why); /* lets it go */
		return;
	}
	template_down(t, why);
	/* The reap of one whose death was logged at EOF: how it ended. */
	if (!was_up && !f->stopping && !t->let_go && t->imported)
		log_info("template (pid %d) %s", (int) t->pid, why);
	f->ev.reaped(f->arg, t->gen);
	if (gone_remove(f, t) || t == f->old) {
		if (t == f->old)
			f->old = NULL;
		template_free(t);
		if (f->stopping)
			f->ev.stopped(f->arg);
		return;
	}
	if (f->stopping) {
		f->ev.stopped(f->arg);
		return;
	}
	unready_reaped(f, t, status, why);
}

int
forker_init(forker **out, struct event_base *base, const launch_config *cfg,
    const forker_events *ev, void *arg)
{
	forker *f;

	/* Forked workers are the template's children; if it dies first they
	 * are re-parented to us, and reaped here, rather than to init; so is
	 * its standby, which then serves on. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		return -errno;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -ENOMEM;
	f->base = base;
	f->cfg = *cfg;
	f->ev = *ev;
	f->arg = arg;
	f->restart_ev = evtimer_new(base, on_template_restart, f);
	f->standby_ev = evtimer_new(base, on_standby_timer, f);
	f->trash_ev = event_new(base, -1, 0, on_trash, f);
	if (f->restart_ev == NULL || f->standby_ev == NULL ||
	    f->trash_ev == NULL) {
		forker_fini(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

int
forker_start(forker *f)
{
	return template_exec(f) == 0 ? 0 : -EIO;
}

int
forker_spawn(forker *f, int slot, int *fd, int *chan, uint32_t *gen)
{
	Gild__Worker__V1__Spawn sp = GILD__WORKER__V1__SPAWN__INIT;
	int sv[2], ch[2], rc, give[4];
	size_t nfd = 2;
	tmpl *t = ready_template(f);

	if (t == NULL)
		return -EAGAIN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	if ((rc = launch_chan_pair(ch)) != 0) {
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	/* The worker's socket, its descriptor channel, and (read apart from
	 * the template's) its stdout and stderr. */
	give[0] = sv[1];
	give[1] = ch[1];
	if (f->cfg.logs != NULL &&
	    (rc = applog_open(f->cfg.logs, slot, 0, give + 2)) != 0) {
		for (int i = 0; i < 2; i++) {
			close(sv[i]);
			close(ch[i]);
		}
		return rc;
	}
	if (f->cfg.logs != NULL)
		nfd = 4;
	sp.slot = (uint32_t) slot;
	rc = send_spawn(t, &sp, give, nfd);
	for (size_t i = 0; i < nfd; i++)
		close(give[i]);
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
	/* The standby has the app as it was: a new one comes from the new
	 * template. */
	standby_drop(f);
	event_del(f->standby_ev);
	event_del(f->restart_ev);
	f->old = f->cur;
	f->cur = NULL;
	if (template_exec(f) != 0) { /* keep what runs */
		f->cur = f->old;
		f->old = NULL;
		if (f->cur == NULL)
			template_restart(f);
		standby_request(f);
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
		f->old->let_go = true;
	}
}

/* The template whose process is pid, not yet reaped, if any. */
static tmpl *
template_by_pid(forker *f, pid_t pid)
{
	tmpl *known[] = {f->cur, f->old, f->standby};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] != NULL && known[i]->pid == pid &&
		    !known[i]->reaped)
			return known[i];
	for (tmpl *t = f->gone; t != NULL; t = t->next)
		if (t->pid == pid && !t->reaped)
			return t;
	return NULL;
}

pid_t
forker_pid(const forker *f, uint32_t gen)
{
	const tmpl *known[] = {f ? f->cur : NULL, f ? f->old : NULL};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] != NULL && known[i]->gen == gen &&
		    !known[i]->reaped)
			return known[i]->pid;
	for (const tmpl *t = f ? f->gone : NULL; t != NULL; t = t->next)
		if (t->gen == gen && !t->reaped)
			return t->pid;
	return 0;
}

bool
forker_reaped(forker *f, pid_t pid, int status)
{
	tmpl *t;

	if (f == NULL || pid <= 0 || (t = template_by_pid(f, pid)) == NULL)
		return false;
	template_reaped(t, status);
	return true;
}

void
forker_stop(forker *f)
{
	if (f == NULL)
		return;
	f->stopping = true;
	event_del(f->restart_ev);
	event_del(f->standby_ev);
	standby_drop(f);
	/* A template exits at EOF; the workers it forked die with it. */
	if (f->cur != NULL)
		template_down(f->cur, "stopping");
	if (f->old != NULL)
		template_down(f->old, "stopping");
}

bool
forker_running(const forker *f)
{
	if (f == NULL)
		return false;
	if ((f->cur != NULL && !f->cur->reaped) ||
	    (f->old != NULL && !f->old->reaped))
		return true;
	for (const tmpl *t = f->gone; t != NULL; t = t->next)
		if (!t->reaped)
			return true;
	return false;
}

/* SIGKILLs t's process if it is there. */
static void
template_kill(const tmpl *t)
{
	if (t != NULL && t->pid > 0 && !t->reaped)
		kill(t->pid, SIGKILL);
}

void
forker_kill(forker *f)
{
	if (f == NULL)
		return;
	template_kill(f->cur);
	template_kill(f->old);
	template_kill(f->standby);
	for (const tmpl *t = f->gone; t != NULL; t = t->next)
		template_kill(t);
}

/* Kills t's process if it is there, waits for it (if it is a child of
 * ours), and frees t. */
static void
template_end(tmpl *t)
{
	if (t == NULL)
		return;
	if (t->pid > 0 && !t->reaped) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0); /* ECHILD: not ours (yet) */
	}
	template_free(t);
}

void
forker_fini(forker *f)
{
	if (f == NULL)
		return;
	/* The standby last: it becomes our child when its template is
	 * reaped. */
	forker_kill(f);
	template_end(f->cur);
	template_end(f->old);
	while (f->gone != NULL) {
		tmpl *t = f->gone;
		f->gone = t->next;
		template_end(t);
	}
	template_end(f->standby);
	f->standby = NULL;
	on_trash(-1, 0, f);
	if (f->restart_ev)
		event_free(f->restart_ev);
	if (f->standby_ev)
		event_free(f->standby_ev);
	if (f->trash_ev)
		event_free(f->trash_ev);
	free(f);
}
