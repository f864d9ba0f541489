/* libgild: shared memory with a local server (gild_set_shm): requests and
 * replies of GILD_SHM_MIN bytes and more travel as sealed memfds over a
 * Unix socket beside the server's ipc:// listener, and only a small
 * Request / Reply referring to them over nng (docs/protocol.md). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "wire.h"

/* How long a Reply waits for its memfd, which the server passed before
 * it sent the Reply (so it is normally there already). */
#define SHM_RECV_WAIT_MS 2000

/* Prepends varint field number = v to b. */
static int
prepend_varint(codec_buf *b, uint32_t number, uint64_t v)
{
	uint8_t tmp[2 * WIRE_MAX_VARINT];
	size_t n = wire_put_tag(tmp, number, WIRE_VARINT);

	n += wire_put_varint(tmp + n, v);
	return codec_prepend(b, tmp, n, NULL);
}

/* Request{ping{want_shm: true}} (the id and token come later). */
static int
encode_shm_ping(codec_buf *b, gild_error *err)
{
	size_t mark = codec_mark(b);

	if (prepend_varint(b, GILD_F_PING_WANT_SHM, 1) != GILD_OK ||
	    codec_wrap(b, mark, GILD_F_REQUEST_PING, NULL) != GILD_OK)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	return GILD_OK;
}

/* Request.shm = ShmRef{handle, len}. */
static int
encode_shm_ref(codec_buf *b, uint64_t handle, uint64_t len)
{
	size_t mark = codec_mark(b);

	if (prepend_varint(b, GILD_F_SHM_REF_LEN, len) != GILD_OK ||
	    prepend_varint(b, GILD_F_SHM_REF_HANDLE, handle) != GILD_OK ||
	    codec_wrap(b, mark, GILD_F_REQUEST_SHM, NULL) != GILD_OK)
		return GILD_RESOURCE_EXHAUSTED;
	return GILD_OK;
}

/* Connects to the server's side socket at path and presents key. Returns
 * the socket, or -1. */
static int
side_connect(const char *path, const uint8_t *key, size_t keylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == -1 ||
	    send(fd, key, keylen, MSG_NOSIGNAL) != (ssize_t) keylen) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Asks connection idx for shared memory and ties a side socket to it.
 * Returns GILD_OK whether or not it was offered. */
static int
shm_open_conn(gild_client *c, size_t idx, gild_error *err)
{
	conn *k = &c->conns[idx];
	codec_buf body = {0};
	gild_value *pong = NULL;
	Gild__V1__Pong *p = NULL;
	const uint8_t *data;
	uint32_t pipe = 0;
	size_t len;
	int rc, fd;

	if ((rc = encode_shm_ping(&body, err)) == GILD_OK)
		rc = gild__round_trip_on(c, CALL_SHM, &body, (int) idx, 5000,
		    &pong, err);
	codec_buf_fini(&body);
	if (rc != GILD_OK)
		return rc;
	data = gild_value_bytes(pong, &len);
	if ((p = gild__v1__pong__unpack(NULL, len, data)) == NULL) {
		rc = error_set(err, GILD_INTERNAL, "malformed pong");
		goto out;
	}
	if (p->shm == NULL || p->shm->path == NULL)
		goto out; /* not offered: nng only */
	pthread_mutex_lock(&c->mtx);
	if (k->pipes == 1)
		pipe = k->pipe_ids[0];
	gild__unlock(c);
	if (pipe == 0)
		goto out; /* redialling meanwhile: not tied to any */
	if ((fd = side_connect(p->shm->path, p->shm->key.data,
		 p->shm->key.len)) == -1)
		goto out; /* not reachable from here (another host?): nng */
	pthread_mutex_lock(&c->mtx);
	if (k->shm_fd != -1)
		close(k->shm_fd);
	k->shm_fd = fd;
	k->shm_pipe = pipe;
	gild__unlock(c);
out:
	if (p != NULL)
		gild__v1__pong__free_unpacked(p, NULL);
	gild_value_free(pong);
	return rc;
}

int
gild_set_shm(gild_client *c, bool on, gild_error *err)
{
	int rc = GILD_OK;

	if (c == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL client");
	for (size_t i = 0; i < c->n_conns && rc == GILD_OK; i++) {
		conn *k = &c->conns[i];

		pthread_mutex_lock(&c->mtx);
		k->shm_pipe = 0; /* off until tied again */
		gild__unlock(c);
		/* Only ipc:// servers are local (the server checks too). */
		if (on && strncmp(k->url, "ipc://", 6) == 0)
			rc = shm_open_conn(c, i, err);
	}
	return rc;
}

bool
gild_shm_active(gild_client *c)
{
	bool any = false;

	if (c == NULL)
		return false;
	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < c->n_conns; i++)
		any = any || c->conns[i].shm_pipe != 0;
	gild__unlock(c);
	return any;
}

int
gild__shm_wrap(conn *k, const uint8_t *req, size_t len, uint64_t id,
    codec_buf *out)
{
	gild_client *c = k->c;
	uint64_t handle;
	int fd, mfd;

	if (len < FRAME_SHM_MIN)
		return 1;
	pthread_mutex_lock(&c->mtx);
	fd = k->shm_pipe != 0 ? k->shm_fd : -1;
	handle = ++k->shm_next;
	gild__unlock(c);
	if (fd == -1 ||
	    (mfd = frame_shm_create(&(struct iovec){(void *) req, len}, 1)) < 0)
		return 1;
	if (frame_shm_send_handle(fd, mfd, 0, handle) != 0) {
		close(mfd);
		return 1; /* the side socket is gone: nng takes it */
	}
	close(mfd);
	if (encode_shm_ref(out, handle, len) != GILD_OK ||
	    codec_encode_id(out, id, NULL) != GILD_OK ||
	    codec_encode_token(out, c->token, NULL) != GILD_OK)
		return -1;
	return 0;
}

/* The next memfd on k's side socket, waiting up to SHM_RECV_WAIT_MS:
 * its handle into *handle. -1 when none came. */
static int
recv_fd(conn *k, int fd, uint64_t *handle)
{
	struct pollfd pf = {fd, POLLIN, 0};
	int got;

	(void) k;
	if (poll(&pf, 1, SHM_RECV_WAIT_MS) != 1 ||
	    (got = frame_shm_recv_handle(fd, 1, handle)) < 0)
		return -1;
	return got;
}

int
gild__shm_unwrap(conn *k, const uint8_t *buf, size_t len,
    const uint8_t **out, size_t *outlen)
{
	gild_client *c = k->c;
	wire_field f, h;
	uint64_t handle = 0, want, n = 0;
	struct stat st;
	int fd, mfd = -1, seals;
	void *p;

	if (wire_find(buf, len, GILD_F_REPLY_SHM, &f) != 1 ||
	    f.type != WIRE_LEN)
		return 1;
	if (wire_find(f.data, f.len, GILD_F_SHM_REF_HANDLE, &h) != 1 ||
	    h.type != WIRE_VARINT)
		return -1;
	want = h.value;
	if (wire_find(f.data, f.len, GILD_F_SHM_REF_LEN, &h) == 1 &&
	    h.type == WIRE_VARINT)
		n = h.value;
	pthread_mutex_lock(&c->mtx);
	fd = k->shm_fd;
	gild__unlock(c);
	if (fd == -1 || n == 0)
		return -1;
	/* Only the receive callback reads the side socket and the stash:
	 * memfds come in the order the server made its replies, which may
	 * not be the order the Replies arrive in. */
	for (int i = 0; i < k->shm_nstash; i++)
		if (k->shm_stash[i].handle == want) {
			mfd = k->shm_stash[i].fd;
			k->shm_stash[i] = k->shm_stash[--k->shm_nstash];
			break;
		}
	for (int tries = 0; mfd == -1 && tries < GILD_SHM_STASH + 1; tries++) {
		int got = recv_fd(k, fd, &handle);
		if (got == -1)
			return -1;
		if (handle == want) {
			mfd = got;
		} else if (k->shm_nstash < GILD_SHM_STASH) {
			k->shm_stash[k->shm_nstash].handle = handle;
			k->shm_stash[k->shm_nstash++].fd = got;
		} else {
			close(got);
		}
	}
	if (mfd == -1)
		return -1;
	/* The server's memfd: trusted as much as the server, still checked
	 * so that reading it cannot fault. */
	seals = fcntl(mfd, F_GET_SEALS);
	if (seals == -1 || (seals & (F_SEAL_SHRINK | F_SEAL_WRITE)) !=
			       (F_SEAL_SHRINK | F_SEAL_WRITE) ||
	    fstat(mfd, &st) == -1 || (uint64_t) st.st_size < n ||
	    n > SIZE_MAX ||
	    (p = mmap(NULL, (size_t) n, PROT_READ, MAP_SHARED | MAP_POPULATE,
		 mfd, 0)) == MAP_FAILED) {
		close(mfd);
		return -1;
	}
	close(mfd);
	*out = p;
	*outlen = (size_t) n;
	return 0;
}

void
gild__shm_unmap(const uint8_t *p, size_t len)
{
	munmap((void *) p, len);
}

void
gild__shm_close(conn *k)
{
	if (k->shm_fd != -1)
		close(k->shm_fd);
	k->shm_fd = -1;
	for (int i = 0; i < k->shm_nstash; i++)
		close(k->shm_stash[i].fd);
	k->shm_nstash = 0;
}
