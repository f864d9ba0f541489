/* shm: the shared-memory side socket of gild serve --shm (shm.h): local
 * clients hand over memfds holding whole Requests, and take memfds holding
 * large Replies. */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fields.h"
#include "frame.h"
#include "gild.pb-c.h"
#include "log.h"
#include "wire.h"

/* What a memfd handed to the server must be sealed against: anything that
 * could change it, or the memory it pins, once checked. */
#define SEALS_NEEDED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
/* A side socket's send buffer: bounds the reply memfds queued to a client
 * that does not read them (a few), after which replies go through nng. */
#define SIDE_SNDBUF 16384

typedef struct held {
	uint64_t handle;
	int fd;          /* -1 when refused on arrival (bad says why) */
	size_t size;     /* its size on arrival, counted in the budget */
	const char *bad; /* why it cannot be used, or NULL */
} held;

typedef struct side {
	shm *s;
	int fd;
	struct event *ev;
	struct offer *tied; /* the pipe's offer it presented the key of */
	held h[SHM_MAX_HELD];
	size_t nheld, held_bytes;
	uint64_t next_reply; /* handles of reply memfds */
	struct side *prev, *next;
} side;

typedef struct offer {
	uint32_t pipe;
	uint8_t key[SHM_KEY_LEN];
	side *side; /* tied to it, or NULL */
	struct offer *next;
} offer;

struct shm {
	struct event_base *base;
	int lfd;
	struct event *lev;
	char *path, *ipc_path; /* the side socket's; its listener's */
	size_t max_message, max_held_bytes;
	offer *offers;
	side *sides;
	shm_counts n;
};

static offer *
offer_of(const shm *s, uint32_t pipe)
{
	for (offer *o = s->offers; o != NULL; o = o->next)
		if (o->pipe == pipe)
			return o;
	return NULL;
}

static void
side_close(side *d)
{
	shm *s = d->s;

	for (size_t i = 0; i < d->nheld; i++)
		if (d->h[i].fd != -1)
			close(d->h[i].fd);
	s->n.held -= d->nheld;
	if (d->tied != NULL)
		d->tied->side = NULL;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		s->sides = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	s->n.sides--;
	event_free(d->ev);
	close(d->fd);
	free(d);
}

/* Checks a memfd just handed over: *bad is NULL when it may be used. */
static size_t
check_fd(int fd, const char **bad)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	*bad = NULL;
	if (seals == -1) {
		*bad = "not a memfd (it cannot carry seals)";
		return 0;
	}
	if ((seals & SEALS_NEEDED) != SEALS_NEEDED) {
		*bad = "not sealed against writing, growing and shrinking "
		       "(F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)";
		return 0;
	}
	if (fstat(fd, &st) == -1 || st.st_size < 0) {
		*bad = "cannot be inspected";
		return 0;
	}
	return (size_t) st.st_size;
}

/* Reads one message from d. Returns 1 (one taken), 0 (none waiting), or
 * -1 when d was closed (d is freed). */
static int
side_read_one(side *d)
{
	shm *s = d->s;
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	uint8_t data[64];
	struct iovec iov = {data, sizeof(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf)};
	int fds[4], nfd = 0;
	const char *why = NULL;
	ssize_t r;

	do
		r = recvmsg(d->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); r > 0 && c != NULL;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfd < 4; i++)
			memcpy(&fds[nfd++], CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
	}
	if (r <= 0) {
		side_close(d);
		return -1;
	}
	if (d->tied == NULL) {
		/* The first message: a key, nothing else. */
		offer *o = NULL;
		if (r == SHM_KEY_LEN && nfd == 0 &&
		    !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			for (o = s->offers; o != NULL; o = o->next) {
				unsigned char diff = 0;
				for (int i = 0; i < SHM_KEY_LEN; i++)
					diff |= o->key[i] ^ data[i];
				if (diff == 0 && o->side == NULL)
					break;
			}
		if (o == NULL) {
			why = "no valid key";
			goto refuse;
		}
		o->side = d;
		d->tied = o;
		return 1;
	}
	if (r != 8 || nfd != 1 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		why = "a message that is not a handle with one memfd";
		goto refuse;
	}
	uint64_t handle = 0;
	for (int i = 7; i >= 0; i--)
		handle = handle << 8 | data[i];
	for (size_t i = 0; i < d->nheld; i++)
		if (d->h[i].handle == handle) {
			why = "a handle already in use";
			goto refuse;
		}
	held h = {.handle = handle, .fd = fds[0]};
	h.size = check_fd(fds[0], &h.bad);
	if (h.bad != NULL) {
		close(fds[0]);
		h.fd = -1;
	}
	if (d->nheld == SHM_MAX_HELD ||
	    d->held_bytes + h.size > s->max_held_bytes) {
		nfd = h.fd == -1 ? 0 : 1;
		s->n.over_budget++;
		log_warn("connection %" PRIu32 ": shared-memory socket closed: "
			 "it handed over more memfds than it used (at most %d, "
			 "%zu bytes)",
		    d->tied->pipe, SHM_MAX_HELD, s->max_held_bytes);
		if (nfd)
			close(fds[0]);
		side_close(d);
		return -1;
	}
	d->h[d->nheld++] = h;
	d->held_bytes += h.size;
	s->n.held++;
	return 1;
refuse:
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	log_warn("shared-memory socket closed: %s", why);
	side_close(d);
	return -1;
}

static void
on_side(evutil_socket_t fd, short what, void *arg)
{
	side *d = arg;

	(void) fd;
	(void) what;
	/* Bounded: at most the budget's worth before it closes. */
	for (int i = 0; i < SHM_MAX_HELD + 2; i++)
		if (side_read_one(d) != 1)
			return;
}

/* Accepts one side connection if one waits: 1 if one was taken (kept,
 * or closed over a bound), 0 if none waits. */
static int
accept_one(shm *s)
{
	int sndbuf = SIDE_SNDBUF;
	side *d;
	int fd;

	if ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1)
		return 0;
	/* Connections that have not presented a key yet: past
	 * SHM_MAX_UNTIED the oldest goes, so that idle ones cannot keep the
	 * clients that follow out. */
	side *oldest = NULL;
	size_t untied = 0;
	for (side *x = s->sides; x != NULL; x = x->next)
		if (x->tied == NULL) {
			untied++;
			oldest = x; /* the list is newest first */
		}
	if (untied >= SHM_MAX_UNTIED)
		side_close(oldest);
	if (s->n.sides >= SHM_MAX_SIDES || (d = calloc(1, sizeof(*d))) == NULL) {
		close(fd);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	d->s = s;
	d->fd = fd;
	if ((d->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_side,
		 d)) == NULL ||
	    event_add(d->ev, NULL) != 0) {
		if (d->ev != NULL)
			event_free(d->ev);
		close(fd);
		free(d);
		return 1;
	}
	d->next = s->sides;
	if (s->sides != NULL)
		s->sides->prev = d;
	s->sides = d;
	s->n.sides++;
	return 1;
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	(void) lfd;
	(void) what;
	accept_one(arg);
}

/* A request may come over nng before the loop has seen its side
 * connection, or the key on it, though the client sent both first:
 * accepts the connections waiting (SHM_MAX_UNTIED at most) and reads the
 * key of each one not tied yet. */
static void
tie_pending(shm *s)
{
	for (int i = 0; i < SHM_MAX_UNTIED && accept_one(s); i++)
		;
	for (side *x = s->sides, *next; x != NULL; x = next) {
		next = x->next;
		if (x->tied == NULL)
			side_read_one(x); /* may close x, not next */
	}
}

int
shm_init(shm **out, struct event_base *base, const char *path,
    size_t max_message, size_t max_held_bytes, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	shm *s;

	*out = NULL;
	if (n < 5 || n + 1 > sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--shm: the socket path %s is too long "
				      "(at most %zu bytes)",
		    path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(path)) == NULL ||
	    (s->ipc_path = strndup(path, n - 4)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->base = base;
	s->max_message = max_message;
	s->max_held_bytes = max_held_bytes;
	memcpy(sa.sun_path, path, n);
	unlink(path);
	if ((s->lfd = socket(AF_UNIX,
		 SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(s->lfd, (struct sockaddr *) &sa, sizeof(sa)) == -1 ||
	    listen(s->lfd, 64) == -1) {
		snprintf(err, errlen, "--shm: cannot listen on %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if ((s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, on_accept,
		 s)) == NULL ||
	    event_add(s->lev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s != NULL && s->lfd > 0) {
		close(s->lfd);
		unlink(path);
	}
	if (s != NULL) {
		if (s->lev != NULL)
			event_free(s->lev);
		free(s->path);
		free(s->ipc_path);
	}
	free(s);
	return -1;
}

void
shm_fini(shm *s)
{
	if (s == NULL)
		return;
	while (s->sides != NULL)
		side_close(s->sides);
	while (s->offers != NULL) {
		offer *o = s->offers;
		s->offers = o->next;
		free(o);
	}
	event_free(s->lev);
	close(s->lfd);
	unlink(s->path);
	free(s->path);
	free(s->ipc_path);
	free(s);
}

const char *
shm_path(const shm *s)
{
	return s->path;
}

bool
shm_may_offer(const shm *s, uint32_t pipe)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	nng_sockaddr sa;

	p.id = pipe;
	return nng_pipe_get_addr(p, NNG_OPT_LOCADDR, &sa) == 0 &&
	    sa.s_family == NNG_AF_IPC &&
	    strcmp(sa.s_ipc.sa_path, s->ipc_path) == 0;
}

int
shm_offer(shm *s, uint32_t pipe, uint8_t key[SHM_KEY_LEN])
{
	offer *o;

	shm_pipe_gone(s, pipe);
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -ENOMEM;
	if (getrandom(o->key, sizeof(o->key), 0) != (ssize_t) sizeof(o->key)) {
		free(o);
		return -EIO;
	}
	o->pipe = pipe;
	o->next = s->offers;
	s->offers = o;
	memcpy(key, o->key, SHM_KEY_LEN);
	return 0;
}

void
shm_pipe_gone(shm *s, uint32_t pipe)
{
	for (offer **pp = &s->offers; *pp != NULL; pp = &(*pp)->next) {
		offer *o = *pp;
		if (o->pipe != pipe)
			continue;
		if (o->side != NULL) {
			o->side->tied = NULL;
			side_close(o->side);
		}
		*pp = o->next;
		free(o);
		return;
	}
}

/* Counts a refusal, sets why and returns code. */
static int
refuse(shm *s, int code, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int
refuse(shm *s, int code, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	s->n.refused++;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return code;
}

int
shm_take(shm *s, uint32_t pipe, uint64_t handle, uint64_t len,
    nng_msg **out, char *why, size_t whylen)
{
	offer *o = offer_of(s, pipe);
	side *d;
	held h;
	size_t i;
	int code = 0;

	*out = NULL;
	if (o != NULL && o->side == NULL)
		tie_pending(s);
	if (o == NULL || o->side == NULL)
		return refuse(s, GILD__V1__CODE__INVALID_ARGUMENT, why, whylen,
		    "shared memory: this connection has no shared-memory "
		    "socket: ask with Ping.want_shm, then connect to "
		    "Pong.shm.path");
	/* The client passed the memfd before it sent the request; it may
	 * still wait in the socket. */
	for (;;) {
		d = o->side;
		for (i = 0; i < d->nheld && d->h[i].handle != handle; i++)
			;
		if (i < d->nheld)
			break;
		if (side_read_one(d) != 1)
			return refuse(s, GILD__V1__CODE__INVALID_ARGUMENT, why,
			    whylen,
			    "shared memory: no memfd %" PRIu64 " was handed "
			    "over on this connection's socket",
			    handle);
	}
	h = d->h[i];
	d->h[i] = d->h[--d->nheld];
	d->held_bytes -= h.size;
	s->n.held--;
	if (h.bad != NULL) {
		return refuse(s, GILD__V1__CODE__INVALID_ARGUMENT, why, whylen,
		    "shared memory: memfd %" PRIu64 " is %s", handle, h.bad);
	}
	if (len > s->max_message) {
		code = refuse(s, GILD__V1__CODE__RESOURCE_EXHAUSTED, why, whylen,
		    "request of %" PRIu64 " bytes exceeds the server's "
		    "--max-message of %zu bytes",
		    len, s->max_message);
	} else if (h.size < len || len == 0) {
		code = refuse(s, GILD__V1__CODE__INVALID_ARGUMENT, why, whylen,
		    "shared memory: the memfd holds %zu bytes, less than the "
		    "%" PRIu64 " the request says",
		    h.size, len);
	} else if (nng_msg_alloc(out, len) != 0) {
		code = refuse(s, GILD__V1__CODE__RESOURCE_EXHAUSTED, why, whylen,
		    "server out of memory");
	} else {
		/* One copy, into the message the job keeps; sealed, so what
		 * was checked is what is read. */
		uint8_t *p = nng_msg_body(*out);
		size_t got = 0;
		while (got < len) {
			ssize_t r = pread(h.fd, p + got, len - got, (off_t) got);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t) r;
		}
		if (got < len) {
			nng_msg_free(*out);
			*out = NULL;
			code = refuse(s, GILD__V1__CODE__INVALID_ARGUMENT, why,
			    whylen,
			    "shared memory: memfd %" PRIu64 " could not be read "
			    "(%zu bytes)",
			    handle, got);
		} else {
			s->n.taken++;
			s->n.taken_bytes += len;
		}
	}
	close(h.fd);
	return code;
}

void
shm_reply(shm *s, uint32_t pipe, nng_msg **msg)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__ShmRef ref = GILD__V1__SHM_REF__INIT;
	offer *o = offer_of(s, pipe);
	size_t len = nng_msg_len(*msg);
	struct iovec iov = {nng_msg_body(*msg), len};
	wire_field f;
	side *d;
	nng_msg *small;
	int mfd;

	if (o == NULL || (d = o->side) == NULL || len < FRAME_SHM_MIN ||
	    wire_find(iov.iov_base, len, GILD_F_REPLY_ID, &f) != 1 ||
	    f.type != WIRE_VARINT)
		return;
	if ((mfd = frame_shm_create(&iov, 1)) < 0)
		return;
	ref.handle = ++d->next_reply;
	ref.len = len;
	r.id = f.value;
	r.shm = &ref;
	if (nng_msg_alloc(&small, gild__v1__reply__get_packed_size(&r)) !=
	    0) {
		close(mfd);
		return;
	}
	if (frame_shm_send_handle(d->fd, mfd, 1, ref.handle) != 0) {
		close(mfd); /* full (a client that does not read it): nng */
		nng_msg_free(small);
		return;
	}
	close(mfd);
	gild__v1__reply__pack(&r, nng_msg_body(small));
	nng_msg_free(*msg);
	*msg = small;
	s->n.replies++;
	s->n.reply_bytes += len;
}

void
shm_get_counts(const shm *s, shm_counts *out)
{
	*out = s->n;
}
