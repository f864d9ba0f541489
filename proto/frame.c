/* Length-prefixed framing of worker.proto messages on a stream socket. */
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

void
frame_header_encode(uint8_t hdr[FRAME_HEADER_LEN], size_t len)
{
	hdr[0] = (uint8_t) len;
	hdr[1] = (uint8_t) (len >> 8);
	hdr[2] = (uint8_t) (len >> 16);
	hdr[3] = (uint8_t) (len >> 24);
}

void
frame_header_encode_shm(uint8_t hdr[FRAME_HEADER_LEN], size_t len)
{
	frame_header_encode(hdr, len | FRAME_SHM);
}

size_t
frame_header_decode(const uint8_t hdr[FRAME_HEADER_LEN])
{
	return (size_t) hdr[0] | (size_t) hdr[1] << 8 | (size_t) hdr[2] << 16 |
	       (size_t) hdr[3] << 24;
}

/* Writes all of the n pieces of iov (modified) to fd. */
static int
writev_all(int fd, struct iovec *iov, int n)
{
	int i = 0;

	while (i < n) {
		ssize_t w = writev(fd, iov + i, n - i);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (i < n && (size_t) w >= iov[i].iov_len) {
			w -= (ssize_t) iov[i].iov_len;
			i++;
		}
		if (i < n) {
			iov[i].iov_base = (uint8_t *) iov[i].iov_base + w;
			iov[i].iov_len -= (size_t) w;
		}
	}
	return 0;
}

/* Writes len bytes as they are. */
static int
frame_write_raw(int fd, const void *p, size_t len)
{
	struct iovec iov = {(void *) p, len};

	return writev_all(fd, &iov, 1);
}

int
frame_write(int fd, const void *payload, size_t len)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	struct iovec iov[2];

	if (len > FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	frame_header_encode(hdr, len);
	iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof(hdr)};
	iov[1] = (struct iovec){.iov_base = (void *) payload, .iov_len = len};
	return writev_all(fd, iov, 2);
}

/* Reads exactly len bytes. Returns 0, 1 on EOF before any byte, -EPROTO on
 * EOF after some bytes, or -errno. */
static int
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return got == 0 ? 1 : -EPROTO;
		got += (size_t) r;
	}
	return 0;
}

/* Reads the n-byte payload after a header into a new buffer. */
static int
read_payload(int fd, size_t n, uint8_t **out, size_t *len, size_t max)
{
	uint8_t *buf;
	int rc;

	if (n > max)
		return -EPROTO;
	if ((buf = malloc(n ? n : 1)) == NULL)
		return -ENOMEM;
	if ((rc = read_full(fd, buf, n)) != 0) {
		free(buf);
		return rc == 1 ? -EPROTO : rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

int
frame_read(int fd, uint8_t **out, size_t *len, size_t max)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	int rc;

	if ((rc = read_full(fd, hdr, sizeof(hdr))) != 0)
		return rc == 1 ? -ECONNRESET : rc;
	return read_payload(fd, frame_header_decode(hdr), out, len, max);
}

/* ---- shared memory ------------------------------------------------------ */

/* What a sent memfd is sealed against: any change after it is passed on. */
#define SHM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

int
frame_shm_create(const struct iovec *iov, int n)
{
	struct iovec v[n > 0 ? n : 1];
	int fd, e;

	fd = memfd_create("gild-frame", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		return -errno;
	memcpy(v, iov, sizeof(*iov) * (size_t) n);
	if ((e = writev_all(fd, v, n)) != 0) {
		close(fd);
		return e;
	}
	if (fcntl(fd, F_ADD_SEALS, SHM_SEALS) == -1) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int
frame_shm_send(int chan, int mfd, int nonblock)
{
	uint8_t one = 1;

	return frame_shm_send_data(chan, mfd, nonblock, &one, 1);
}

int
frame_shm_send_data(int chan, int mfd, int nonblock, const void *data,
    size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {(void *) data, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf)};
	struct cmsghdr *c;
	ssize_t r;

	memset(&cb, 0, sizeof(cb));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &mfd, sizeof(int));
	do
		r = sendmsg(chan, &mh, MSG_NOSIGNAL | (nonblock ? MSG_DONTWAIT : 0));
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return (size_t) r == len ? 0 : -EIO;
}

int
frame_shm_recv(int chan, int nonblock)
{
	uint8_t one;
	size_t n;

	return frame_shm_recv_data(chan, nonblock, &one, 1, &n);
}

int
frame_shm_recv_data(int chan, int nonblock, void *data, size_t cap,
    size_t *len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {data, cap};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf)};
	struct cmsghdr *c;
	ssize_t r;
	int fd = -1;

	do
		r = recvmsg(chan, &mh,
		    MSG_CMSG_CLOEXEC | (nonblock ? MSG_DONTWAIT : 0));
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (r == 0)
		return -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		/* One descriptor per message; close any extra. */
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int x;
			memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd == -1)
				fd = x;
			else
				close(x);
		}
	}
	if ((mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || fd == -1) {
		if (fd != -1)
			close(fd);
		return -EPROTO;
	}
	*len = (size_t) r;
	return fd;
}

int
frame_shm_send_handle(int chan, int mfd, int nonblock, uint64_t handle)
{
	uint8_t data[8];

	for (int i = 0; i < 8; i++)
		data[i] = (uint8_t) (handle >> (8 * i));
	return frame_shm_send_data(chan, mfd, nonblock, data, sizeof(data));
}

int
frame_shm_recv_handle(int chan, int nonblock, uint64_t *handle)
{
	uint8_t data[8];
	size_t n = 0;
	int fd = frame_shm_recv_data(chan, nonblock, data, sizeof(data), &n);

	if (fd >= 0 && n != sizeof(data)) {
		close(fd);
		return -EPROTO;
	}
	*handle = 0;
	for (int i = 7; fd >= 0 && i >= 0; i--)
		*handle = *handle << 8 | data[i];
	return fd;
}

int
frame_shm_map(int mfd, size_t len, const uint8_t **out)
{
	struct stat st;
	int seals = fcntl(mfd, F_GET_SEALS);
	void *p;
	int rc = 0;

	/* Shrinkable, or smaller than it says: touching the mapping could
	 * raise SIGBUS. Writable: it could change while read. Refused. */
	if (seals == -1 || (seals & (F_SEAL_SHRINK | F_SEAL_WRITE)) !=
			       (F_SEAL_SHRINK | F_SEAL_WRITE) ||
	    fstat(mfd, &st) == -1 ||
	    st.st_size < 0 || (size_t) st.st_size < len) {
		close(mfd);
		return -EPROTO;
	}
	if (len == 0) {
		*out = (const uint8_t *) "";
	} else if ((p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE,
			mfd, 0)) == MAP_FAILED) {
		rc = -errno;
	} else {
		*out = p;
	}
	close(mfd);
	return rc;
}

void
frame_shm_unmap(const uint8_t *p, size_t len)
{
	if (len > 0)
		munmap((void *) p, len);
}

int
frame_write_shm(int fd, int chan, const void *payload, size_t len)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	struct iovec iov = {(void *) payload, len};
	int mfd, rc;

	if (chan < 0 || len < FRAME_SHM_MIN || len > FRAME_MAX_PAYLOAD)
		return frame_write(fd, payload, len);
	if ((mfd = frame_shm_create(&iov, 1)) < 0)
		return frame_write(fd, payload, len); /* no memfd: the socket */
	rc = frame_shm_send(chan, mfd, 0);
	close(mfd);
	if (rc != 0)
		return rc;
	frame_header_encode_shm(hdr, len);
	return frame_write_raw(fd, hdr, sizeof(hdr));
}

/* Payloads that are memfd mappings, not heap: received by frame_read_shm
 * (read-only, fd -1) or made by frame_alloc (writable, fd its memfd).
 * frame_free unmaps these. Few are alive at once (about one per call being
 * run). */
typedef struct mapping {
	uint8_t *p;
	size_t len;
	int fd;
	struct mapping *next;
} mapping;
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;
static mapping *maps;

/* Registers mapping p; returns 0 or -ENOMEM. */
static int
maps_add(uint8_t *p, size_t len, int fd)
{
	mapping *m = malloc(sizeof(*m));

	if (m == NULL)
		return -ENOMEM;
	*m = (mapping){p, len, fd, NULL};
	pthread_mutex_lock(&maps_mu);
	m->next = maps;
	maps = m;
	pthread_mutex_unlock(&maps_mu);
	return 0;
}

/* p's mapping, or NULL when p is heap memory; unregistered with take.
 * Only the thread that holds p frees it, so a mapping found stays. */
static mapping *
maps_find(const uint8_t *p, bool take)
{
	mapping **pp, *m = NULL;

	pthread_mutex_lock(&maps_mu);
	for (pp = &maps; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->p == p) {
			m = *pp;
			if (take)
				*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&maps_mu);
	return m;
}

uint8_t *
frame_alloc(size_t n)
{
	void *p;
	int fd;

	if (n < FRAME_SHM_MIN)
		return malloc(n ? n : 1);
	fd = memfd_create("gild-frame", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1)
		return malloc(n);
	/* Pages allocated and mapped in one go, not one fault each. */
	if (posix_fallocate(fd, 0, (off_t) n) != 0 ||
	    (p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		 fd, 0)) == MAP_FAILED) {
		close(fd);
		return malloc(n);
	}
	if (maps_add(p, n, fd) != 0) {
		munmap(p, n);
		close(fd);
		return NULL;
	}
	return p;
}

uint8_t *
frame_grow(uint8_t *buf, size_t len, size_t newlen)
{
	const mapping *m = maps_find(buf, false);
	uint8_t *p;

	if (m == NULL)
		return realloc(buf, newlen ? newlen : 1);
	if (newlen <= m->len)
		return buf; /* frame_send trims it to what was used */
	if ((p = frame_alloc(newlen)) == NULL)
		return NULL; /* buf stays valid, as with realloc */
	memcpy(p, buf, len < newlen ? len : newlen);
	frame_free(buf);
	return p;
}

int
frame_send(int fd, int chan, uint8_t *buf, size_t len)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	mapping *m;
	int rc;

	m = chan >= 0 && len >= FRAME_SHM_MIN ? maps_find(buf, false) : NULL;
	if (m == NULL || m->fd == -1 || len > m->len) {
		/* Heap memory, or a received payload: copied. */
		rc = frame_write_shm(fd, chan, buf, len);
		frame_free(buf);
		return rc;
	}
	/* Built in place: unmap (a write seal needs no writable mapping
	 * left), trim to len, seal, pass on. */
	maps_find(buf, true);
	munmap(m->p, m->len);
	if ((len < m->len && ftruncate(m->fd, (off_t) len) == -1) ||
	    fcntl(m->fd, F_ADD_SEALS, SHM_SEALS) == -1) {
		/* Not sealable (EBUSY while the kernel still holds a page):
		 * the socket takes it, read back from the memfd. */
		void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, m->fd, 0);
		rc = p == MAP_FAILED ? -errno : frame_write(fd, p, len);
		if (p != MAP_FAILED)
			munmap(p, len);
	} else if ((rc = frame_shm_send(chan, m->fd, 0)) == 0) {
		frame_header_encode_shm(hdr, len);
		rc = frame_write_raw(fd, hdr, sizeof(hdr));
	}
	close(m->fd);
	free(m);
	return rc;
}

/* The n-byte payload (FRAME_SHM cleared) of a FRAME_SHM header: the next
 * descriptor on chan, mapped read-only. */
static int
shm_payload(int chan, size_t n, uint8_t **out, size_t *len, size_t max)
{
	const uint8_t *p;
	int rc, mfd;

	if (n > max)
		return -EPROTO;
	if ((mfd = frame_shm_recv(chan, 0)) < 0)
		return mfd == -ECONNRESET ? -EPROTO : mfd;
	if ((rc = frame_shm_map(mfd, n, &p)) != 0)
		return rc;
	if (n == 0) {
		/* Nothing mapped: hand out a heap byte like frame_read. */
		if ((*out = malloc(1)) == NULL)
			return -ENOMEM;
	} else if (maps_add((uint8_t *) p, n, -1) != 0) {
		frame_shm_unmap(p, n);
		return -ENOMEM;
	} else {
		*out = (uint8_t *) p;
	}
	*len = n;
	return 0;
}

int
frame_read_shm(int fd, int chan, uint8_t **out, size_t *len, size_t max)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t n;
	int rc;

	if ((rc = read_full(fd, hdr, sizeof(hdr))) != 0)
		return rc == 1 ? -ECONNRESET : rc;
	n = frame_header_decode(hdr);
	if (!(n & FRAME_SHM) || chan < 0)
		return read_payload(fd, n, out, len, max);
	return shm_payload(chan, n & ~(size_t) FRAME_SHM, out, len, max);
}

/* ---- buffered reading --------------------------------------------------- */

int
frame_reader_init(frame_reader *r, int fd, int chan, size_t max)
{
	*r = (frame_reader){.fd = fd, .chan = chan, .max = max};
	r->buf = malloc(FRAME_READER_BUF);
	return r->buf != NULL ? 0 : -ENOMEM;
}

void
frame_reader_fini(frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

int
frame_reader_next(frame_reader *r, uint8_t **out, size_t *len)
{
	size_t have = r->end - r->start, n;
	uint8_t *p;
	int rc;

	if (have < FRAME_HEADER_LEN)
		return -EAGAIN;
	n = frame_header_decode(r->buf + r->start);
	if ((n & FRAME_SHM) && r->chan >= 0) {
		/* Its descriptor was passed before its header was written. */
		r->start += FRAME_HEADER_LEN;
		return shm_payload(r->chan, n & ~(size_t) FRAME_SHM, out, len,
		    r->max);
	}
	if (n > r->max)
		return -EPROTO;
	if (have < FRAME_HEADER_LEN + n && FRAME_HEADER_LEN + n <= FRAME_READER_BUF)
		return -EAGAIN; /* fits: frame_reader_fill reads the rest */
	if ((p = malloc(n ? n : 1)) == NULL)
		return -ENOMEM;
	have -= FRAME_HEADER_LEN;
	if (have > n)
		have = n;
	memcpy(p, r->buf + r->start + FRAME_HEADER_LEN, have);
	r->start += FRAME_HEADER_LEN + have;
	if (have < n) {
		/* Larger than the buffer: the rest straight into p. Its
		 * header is here, so the rest is on its way: wait for it. */
		if ((rc = read_full(r->fd, p + have, n - have)) != 0) {
			free(p);
			return rc == 1 ? -EPROTO : rc;
		}
	}
	*out = p;
	*len = n;
	return 0;
}

int
frame_reader_fill(frame_reader *r, int nowait)
{
	ssize_t got;

	if (r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	do
		got = recv(r->fd, r->buf + r->end, FRAME_READER_BUF - r->end,
		    nowait ? MSG_DONTWAIT : 0);
	while (got == -1 && errno == EINTR);
	if (got == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (got == 0)
		return r->end == 0 ? -ECONNRESET : -EPROTO;
	r->more = r->end + (size_t) got == FRAME_READER_BUF;
	r->end += (size_t) got;
	return 0;
}

void
frame_free(uint8_t *payload)
{
	mapping *m;

	if (payload == NULL)
		return;
	if ((m = maps_find(payload, true)) == NULL) {
		free(payload);
		return;
	}
	munmap(m->p, m->len);
	if (m->fd != -1)
		close(m->fd);
	free(m);
}
