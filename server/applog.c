/* applog: reading the app's stdout and stderr pipes and logging each line
 * as a gild event (see applog.h, and proto/applog_frame.h for what the
 * worker writes on them). */
#include "applog.h"

#include "applog_frame.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a pipe's text buffer starts at, and the most it keeps between
 * lines. */
#define TEXT_MIN 256
#define TEXT_KEEP 4096
/* The most bytes read from one pipe per wake-up: a worker printing in a
 * tight loop gets its turn like every other event of the loop. */
#define READ_MAX 65536
/* What applog_fini still reads from a pipe that is not at EOF (a process
 * that outlived gild's workers, such as one the app started). */
#define FINI_READ_MAX (1u << 20)

typedef enum pstate {
	P_TEXT,    /* plain text: a line until '\n' (or RS) */
	P_HEADER,  /* after RS: a record's header until '\n' */
	P_PAYLOAD, /* a record's text: `left` more bytes */
} pstate;

typedef struct proc proc;

/* One pipe: the stdout or the stderr of a process (and of whatever it
 * forked before it got its own). */
typedef struct pipe_in {
	proc *p;
	const char *name; /* "stdout" or "stderr" */
	int fd;           /* -1 once closed */
	struct event *ev;
	pstate state;
	char *text; /* the line or record text so far (NULL: none yet) */
	size_t n;
	size_t cap; /* text's size: grows to APPLOG_LINE_MAX, and goes back
		       after a long line, so an idle pipe holds little */
	bool cut;                    /* more came than text holds */
	char hdr[APPLOG_HEADER_MAX]; /* P_HEADER: the header so far */
	size_t hn;
	/* P_PAYLOAD: the record's header, parsed. */
	size_t left;
	bool in_call;
	unsigned long long request_id;
	char function[128];
	char logger[128];
	enum log_level level;
} pipe_in;

struct proc {
	applog *a;
	int slot; /* -1: a template */
	pid_t pid;
	pipe_in s[2];
	proc *next;
};

struct applog {
	struct event_base *base;
	proc *procs;
	struct event *reap_ev; /* frees the procs whose pipes are closed */
	uint64_t lines;
	uint64_t dropped;
	uint64_t dropped_unsaid; /* dropped since the last warning */
};

/* Whether gild's stderr takes a line now: a pipe to a log collector that
 * does not keep up is full, and waiting for it would stall every call. */
static bool
stderr_ready(void)
{
	struct pollfd pfd = {STDERR_FILENO, POLLOUT, 0};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

/* The length of s (n bytes) without a UTF-8 sequence cut at its end. */
static size_t
whole_utf8(const char *s, size_t n)
{
	size_t back = 0, need;
	unsigned char c;

	while (back < 4 && back < n &&
	       ((unsigned char) s[n - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back == n)
		return n;
	c = (unsigned char) s[n - 1 - back];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return need > back + 1 ? n - 1 - back : n;
}

/* Says how many lines were dropped since it last said so, if any. */
static void
say_dropped(applog *a)
{
	if (a->dropped_unsaid == 0)
		return;
	log_event(LOG_WARN,
	    (log_field[]){LOG_NUM("dropped", a->dropped_unsaid),
		LOG_NUM("dropped_total", a->dropped)},
	    2, "app output dropped: gild's stderr was full");
	a->dropped_unsaid = 0;
}

/* Logs the line or record held in s (a record: with its call and level),
 * then empties it. */
static void
emit(pipe_in *s, bool record)
{
	applog *a = s->p->a;
	log_field f[8];
	size_t nf = 0, len = s->n;
	enum log_level level = record ? s->level : LOG_INFO;

	if (!log_enabled(level))
		goto done;
	if (!stderr_ready()) {
		a->dropped++;
		a->dropped_unsaid++;
		goto done;
	}
	say_dropped(a);
	f[nf++] = LOG_STR("stream", s->name);
	if (s->p->slot >= 0)
		f[nf++] = LOG_NUM("slot", s->p->slot);
	else
		f[nf++] = LOG_STR("process", "template");
	if (s->p->pid > 0)
		f[nf++] = LOG_NUM("pid", s->p->pid);
	if (record && s->in_call) {
		f[nf++] = LOG_NUM("request_id", s->request_id);
		f[nf++] = LOG_STR("function", s->function);
	}
	if (record && s->logger[0] != '\0')
		f[nf++] = LOG_STR("logger", s->logger);
	if (s->cut) {
		f[nf++] = LOG_NUM("truncated", 1);
		len = whole_utf8(s->text, len);
	}
	log_text(level, f, nf, s->n > 0 ? s->text : "", len);
	a->lines++;
done:
	s->n = 0;
	s->cut = false;
	if (s->cap > TEXT_KEEP) {
		free(s->text);
		s->text = NULL;
		s->cap = 0;
	}
}

/* Adds n bytes to the text; what goes past APPLOG_LINE_MAX (or does not
 * fit in memory) is dropped, and the text marked cut. */
static void
keep(pipe_in *s, const char *p, size_t n)
{
	size_t want = s->n + n, room;

	if (want > APPLOG_LINE_MAX)
		want = APPLOG_LINE_MAX;
	if (want > s->cap) {
		size_t cap = s->cap ? s->cap : TEXT_MIN;
		char *t;
		while (cap < want)
			cap *= 2;
		if (cap > APPLOG_LINE_MAX)
			cap = APPLOG_LINE_MAX;
		if ((t = realloc(s->text, cap)) != NULL) {
			s->text = t;
			s->cap = cap;
		}
	}
	room = s->cap - s->n;
	if (n > room) {
		s->cut = true;
		n = room;
	}
	if (n > 0)
		memcpy(s->text + s->n, p, n);
	s->n += n;
}

static enum log_level
level_named(const char *name)
{
	if (strcmp(name, "DEBUG") == 0)
		return LOG_DEBUG;
	if (strcmp(name, "WARNING") == 0)
		return LOG_WARN;
	if (strcmp(name, "ERROR") == 0 || strcmp(name, "CRITICAL") == 0)
		return LOG_ERROR;
	return LOG_INFO;
}

/* Copies the header field that starts at *p (up to US or the end, e) into
 * out (cap bytes), and moves *p past it. Returns false when there is no
 * US after it (last: a field that ends at e instead). */
static bool
field(const char **p, const char *e, char *out, size_t cap, bool last)
{
	const char *us = memchr(*p, APPLOG_US, (size_t) (e - *p));
	const char *end = us != NULL ? us : e;
	size_t n = (size_t) (end - *p);

	if ((us == NULL) != last)
		return false;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = us != NULL ? us + 1 : e;
	return true;
}

/* Parses a whole header (s->hdr, s->hn bytes, without RS and '\n').
 * Returns whether it is one: then s is in the state that follows. */
static bool
header(pipe_in *s)
{
	const char *p = s->hdr + 1, *e = s->hdr + s->hn;
	char rid[24], len[24], level[16], *end;
	unsigned long long v;

	if (s->hn < 1)
		return false;
	if (s->hdr[0] == 'p') {
		if (!field(&p, e, rid, sizeof(rid), true))
			return false;
		errno = 0;
		v = strtoull(rid, &end, 10);
		if (errno != 0 || end == rid || *end != '\0' || v == 0 ||
		    v > INT32_MAX)
			return false;
		s->p->pid = (pid_t) v;
		s->state = P_TEXT;
		return true;
	}
	if (s->hdr[0] != 'l' || !field(&p, e, rid, sizeof(rid), false) ||
	    !field(&p, e, s->function, sizeof(s->function), false) ||
	    !field(&p, e, level, sizeof(level), false) ||
	    !field(&p, e, s->logger, sizeof(s->logger), false) ||
	    !field(&p, e, len, sizeof(len), true))
		return false;
	errno = 0;
	v = strtoull(len, &end, 10);
	if (errno != 0 || end == len || *end != '\0')
		return false;
	if (strspn(rid, "0123456789") != strlen(rid))
		return false;
	s->left = (size_t) v;
	s->in_call = rid[0] != '\0';
	s->request_id = s->in_call ? strtoull(rid, NULL, 10) : 0;
	s->level = level[0] != '\0' ? level_named(level) : LOG_INFO;
	s->state = P_PAYLOAD;
	if (s->left == 0) {
		emit(s, true);
		s->state = P_TEXT;
	}
	return true;
}

/* Takes n bytes read from s's pipe. */
static void
feed(pipe_in *s, const char *p, size_t n)
{
	while (n > 0) {
		size_t k;

		switch (s->state) {
		case P_TEXT:
			for (k = 0; k < n && p[k] != '\n' && p[k] != APPLOG_RS;
			     k++)
				;
			keep(s, p, k);
			if (k == n)
				return;
			if (p[k] == '\n' || s->n > 0 || s->cut)
				emit(s, false);
			if (p[k] == APPLOG_RS) {
				s->state = P_HEADER;
				s->hn = 0;
			}
			p += k + 1;
			n -= k + 1;
			break;
		case P_HEADER:
			for (k = 0; k < n && p[k] != '\n' &&
			     s->hn + k < sizeof(s->hdr);
			     k++)
				;
			memcpy(s->hdr + s->hn, p, k);
			s->hn += k;
			if (k == n)
				return;
			if (p[k] == '\n' && header(s)) {
				p += k + 1;
				n -= k + 1;
				break;
			}
			/* Not a header: plain text after all. */
			s->state = P_TEXT;
			keep(s, s->hdr, s->hn);
			p += k;
			n -= k;
			break;
		case P_PAYLOAD:
			k = n < s->left ? n : s->left;
			keep(s, p, k);
			s->left -= k;
			p += k;
			n -= k;
			if (s->left == 0) {
				emit(s, true);
				s->state = P_TEXT;
			}
			break;
		}
	}
}

/* The pipe is at its end (or broken): what is left of a line is logged
 * (a record cut short is logged as far as it came, marked truncated). */
static void
pipe_close(pipe_in *s)
{
	if (s->fd == -1)
		return;
	if (s->state == P_PAYLOAD) {
		s->cut = true;
		emit(s, true);
	} else if (s->state == P_HEADER) {
		keep(s, s->hdr, s->hn);
		emit(s, false);
	} else if (s->n > 0 || s->cut) {
		emit(s, false);
	}
	s->state = P_TEXT;
	if (s->ev != NULL)
		event_del(s->ev);
	close(s->fd);
	s->fd = -1;
}

/* Reads at most max bytes of s's pipe without blocking. Returns 1 when
 * more may come, 0 when the pipe is closed (EOF or an error). */
static int
pipe_read(pipe_in *s, size_t max)
{
	static char buf[READ_MAX];
	size_t got = 0;

	while (got < max) {
		size_t want = max - got < sizeof(buf) ? max - got : sizeof(buf);
		ssize_t r = read(s->fd, buf, want);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (r <= 0) {
			pipe_close(s);
			return 0;
		}
		feed(s, buf, (size_t) r);
		got += (size_t) r;
	}
	return 1;
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	pipe_in *s = arg;

	if (pipe_read(s, READ_MAX) == 0 && s->p->s[0].fd == -1 &&
	    s->p->s[1].fd == -1)
		event_active(s->p->a->reap_ev, 0, 0);
}

static void
proc_free(proc *p)
{
	for (int i = 0; i < 2; i++) {
		pipe_close(&p->s[i]);
		if (p->s[i].ev != NULL)
			event_free(p->s[i].ev);
		free(p->s[i].text);
	}
	free(p);
}

/* Frees the procs whose pipes are both closed: after the event that
 * closed them, never from inside it. */
static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	applog *a = arg;

	for (proc **pp = &a->procs; *pp != NULL;) {
		proc *p = *pp;
		if (p->s[0].fd == -1 && p->s[1].fd == -1) {
			*pp = p->next;
			proc_free(p);
		} else {
			pp = &p->next;
		}
	}
}

int
applog_init(applog **out, struct event_base *base)
{
	applog *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	a->base = base;
	if ((a->reap_ev = event_new(base, -1, 0, on_reap, a)) == NULL) {
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

void
applog_fini(applog *a)
{
	if (a == NULL)
		return;
	while (a->procs != NULL) {
		proc *p = a->procs;
		a->procs = p->next;
		for (int i = 0; i < 2; i++)
			if (p->s[i].fd != -1)
				pipe_read(&p->s[i], FINI_READ_MAX);
		proc_free(p);
	}
	say_dropped(a); /* waits for stderr: gild is leaving */
	event_free(a->reap_ev);
	free(a);
}

int
applog_open(applog *a, int slot, pid_t pid, int w[2])
{
	static const char *const names[] = {"stdout", "stderr"};
	int fds[2][2] = {{-1, -1}, {-1, -1}};
	proc *p = calloc(1, sizeof(*p));
	int rc = -ENOMEM;

	if (p == NULL)
		return -ENOMEM;
	p->a = a;
	p->slot = slot;
	p->pid = pid;
	for (int i = 0; i < 2; i++) {
		pipe_in *s = &p->s[i];
		s->p = p;
		s->name = names[i];
		s->fd = -1;
		if (pipe2(fds[i], O_CLOEXEC) == -1) {
			rc = -errno;
			goto fail;
		}
		if (fcntl(fds[i][0], F_SETFL, O_NONBLOCK) == -1) {
			rc = -errno;
			goto fail;
		}
		if ((s->ev = event_new(a->base, fds[i][0],
			 EV_READ | EV_PERSIST, on_readable, s)) == NULL ||
		    event_add(s->ev, NULL) != 0) {
			rc = -ENOMEM;
			goto fail;
		}
		s->fd = fds[i][0];
	}
	p->next = a->procs;
	a->procs = p;
	w[0] = fds[0][1];
	w[1] = fds[1][1];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (p->s[i].ev != NULL)
			event_free(p->s[i].ev);
		if (fds[i][0] != -1)
			close(fds[i][0]);
		if (fds[i][1] != -1)
			close(fds[i][1]);
	}
	free(p);
	return rc;
}

uint64_t
applog_lines(const applog *a)
{
	return a->lines;
}

uint64_t
applog_dropped(const applog *a)
{
	return a->dropped;
}
