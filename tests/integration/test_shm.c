/* Integration tests of shared memory for local clients (gild serve --shm,
 * gild_set_shm): values of 256 KiB to 64 MiB round-trip through memfds;
 * memfds that are not sealed, too short, or not memfds at all are refused
 * with INVALID_ARGUMENT and the server goes on; a tcp:// client is never
 * offered it; a client that hands over memfds and never uses them loses
 * its side socket, and gild's descriptors stay bounded. Against the real
 * gild serving examples/app.py. */
#include "gild.h"
#include "gild.pb-c.h"
#include "integration/harness.h"
#include "integration/served.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <fcntl.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "test_main.h"

#define APP "examples/app.py"
#define LISTEN "ipc://%s/g.sock"
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static const char *const shm_args[] = {"--shm", "--max-message", "80MiB",
    NULL};

/* A connected client of p with shared memory asked for. */
static gild_client *
connect_shm(const gild_proc *p)
{
	const char *urls[1] = {p->url};
	gild_client *c = NULL;

	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 1, NULL), GILD_OK);
	CU_ASSERT_EQUAL(gild_set_shm(c, true, NULL), GILD_OK);
	return c;
}

/* echo(b) with b n bytes of a pattern: whether the same bytes came back. */
static bool
echo_same(gild_client *c, size_t n)
{
	uint8_t *buf = malloc(n);
	gild_value *args = gild_list(), *out = NULL;
	gild_error err = {0};
	const uint8_t *got;
	size_t len = 0;
	bool same;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t) (i * 131 + (i >> 12));
	gild_list_append(args, gild_bytes(buf, n));
	rc = gild_call(c, "echo", args, NULL, 60000, &out, &err);
	if (rc != GILD_OK)
		fprintf(stderr, "\n  echo of %zu bytes: %s\n", n,
		    err.message ? err.message : "?");
	/* echo(x) returns x. */
	got = rc == GILD_OK && gild_value_kind(out) == GILD_BYTES
	    ? gild_value_bytes(out, &len)
	    : NULL;
	same = got != NULL && len == n && memcmp(got, buf, n) == 0;
	gild_value_free(out);
	gild_value_free(args);
	gild_error_clear(&err);
	free(buf);
	return same;
}

static void
test_roundtrip(void)
{
	static const size_t sizes[] = {256 << 10, (256 << 10) + 1, 1 << 20,
	    16 << 20, 64 << 20};
	gild_proc p;
	gild_client *c;
	int64_t req0, rep0;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, shm_args), 0);
	c = connect_shm(&p);
	CU_ASSERT(gild_shm_active(c));
	req0 = served_status_int(c, "shm_requests", false);
	rep0 = served_status_int(c, "shm_replies", false);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		CU_ASSERT(echo_same(c, sizes[i]));
	/* Small values still go over nng alone. */
	CU_ASSERT(echo_same(c, 1000));
	CU_ASSERT_EQUAL(served_status_int(c, "shm_requests", false) - req0,
	    5);
	CU_ASSERT_EQUAL(served_status_int(c, "shm_replies", false) - rep0, 5);
	served_close(c, "the shared-memory client");
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* Without --shm, gild_set_shm is no error and everything goes over nng. */
static void
test_not_offered_without_flag(void)
{
	gild_proc p;
	gild_client *c;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, NULL), 0);
	c = connect_shm(&p);
	CU_ASSERT(!gild_shm_active(c));
	CU_ASSERT(echo_same(c, 1 << 20));
	served_close(c, "the client");
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* ---- a hand-made client: nng REQ + the side socket ---------------------- */

typedef struct raw {
	nng_socket s;
	int side; /* -1: none offered */
	char path[200];
} raw;

/* Sends req, returns the Reply (free with gild__v1__reply__free_unpacked)
 * or NULL. */
static Gild__V1__Reply *
raw_rt(raw *r, const Gild__V1__Request *req)
{
	size_t n = gild__v1__request__get_packed_size(req);
	uint8_t *buf = malloc(n);
	Gild__V1__Reply *rep = NULL;
	nng_msg *m;

	gild__v1__request__pack(req, buf);
	if (nng_send(r->s, buf, n, 0) == 0 && nng_recvmsg(r->s, &m, 0) == 0) {
		rep = gild__v1__reply__unpack(NULL, nng_msg_len(m),
		    nng_msg_body(m));
		nng_msg_free(m);
	}
	free(buf);
	return rep;
}

/* Dials url and asks for shared memory; r->side is the tied side socket,
 * or -1 when none was offered. */
static void
raw_open(raw *r, const char *url)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__Ping ping = GILD__V1__PING__INIT;
	Gild__V1__Reply *rep;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	r->side = -1;
	CU_ASSERT_EQUAL_FATAL(nng_req0_open(&r->s), 0);
	nng_socket_set_ms(r->s, NNG_OPT_RECVTIMEO, 30000);
	CU_ASSERT_EQUAL_FATAL(nng_dial(r->s, url, NULL, 0), 0);
	ping.want_shm = true;
	req.id = 1;
	req.body_case = GILD__V1__REQUEST__BODY_PING;
	req.ping = &ping;
	rep = raw_rt(r, &req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->body_case, GILD__V1__REPLY__BODY_PONG);
	if (rep->pong != NULL && rep->pong->shm != NULL) {
		snprintf(r->path, sizeof(r->path), "%s", rep->pong->shm->path);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", r->path);
		r->side = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CU_ASSERT_EQUAL(connect(r->side, (struct sockaddr *) &sa,
				    sizeof(sa)),
		    0);
		CU_ASSERT_EQUAL(send(r->side, rep->pong->shm->key.data,
				    rep->pong->shm->key.len, 0),
		    (ssize_t) rep->pong->shm->key.len);
	}
	gild__v1__reply__free_unpacked(rep, NULL);
}

static void
raw_close(raw *r)
{
	if (r->side != -1)
		close(r->side);
	CU_ASSERT_EQUAL(close_bounded(r->s, 5000), 0);
}

/* Passes fd with handle on the side socket: whether it went. */
static bool
pass(raw *r, uint64_t handle, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint8_t data[8];
	struct iovec iov = {data, 8};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;

	for (int i = 0; i < 8; i++)
		data[i] = (uint8_t) (handle >> (8 * i));
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(r->side, &mh, MSG_NOSIGNAL) == 8;
}

/* A memfd holding Request{id, ping{payload "hi"}}, padded with zeros to
 * pad bytes (zeros are not valid protobuf: the caller names the real
 * length), sealed with seals; *len gets the request's length. */
static int
ping_memfd(uint64_t id, size_t pad, int seals, size_t *len)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__Ping ping = GILD__V1__PING__INIT;
	uint8_t buf[64];
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ping.payload.data = (uint8_t *) "hi";
	ping.payload.len = 2;
	req.id = id;
	req.body_case = GILD__V1__REQUEST__BODY_PING;
	req.ping = &ping;
	*len = gild__v1__request__pack(&req, buf);
	CU_ASSERT_EQUAL(write(fd, buf, *len), (ssize_t) *len);
	if (pad > *len)
		CU_ASSERT_EQUAL(ftruncate(fd, (off_t) pad), 0);
	if (seals)
		CU_ASSERT_EQUAL(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* Request{id, shm{handle, len}}: the reply's code (0: a Pong came). */
static int
use(raw *r, uint64_t id, uint64_t handle, uint64_t len, char *msg,
    size_t msglen)
{
	Gild__V1__Request req = GILD__V1__REQUEST__INIT;
	Gild__V1__ShmRef ref = GILD__V1__SHM_REF__INIT;
	Gild__V1__Reply *rep;
	int code = -1;

	ref.handle = handle;
	ref.len = len;
	req.id = id;
	req.shm = &ref;
	rep = raw_rt(r, &req);
	if (rep == NULL)
		return -1;
	msg[0] = '\0';
	if (rep->body_case == GILD__V1__REPLY__BODY_PONG && rep->id == id &&
	    rep->pong->payload.len == 2)
		code = 0;
	else if (rep->body_case == GILD__V1__REPLY__BODY_ERROR) {
		code = rep->error->code;
		snprintf(msg, msglen, "%s", rep->error->message);
	}
	gild__v1__reply__free_unpacked(rep, NULL);
	return code;
}

static void
test_bad_memfds(void)
{
	gild_proc p;
	raw r;
	char msg[300], file[300];
	size_t len;
	int fd, pipefd[2];
	gild_client *c;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, shm_args), 0);
	raw_open(&r, p.url);
	CU_ASSERT_FATAL(r.side != -1);

	/* A good one first: served from the memfd. */
	fd = ping_memfd(10, 0, SEALS, &len);
	CU_ASSERT(pass(&r, 1, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 10, 1, len, msg, sizeof(msg)), 0);

	/* Not sealed. */
	fd = ping_memfd(11, 0, 0, &len);
	CU_ASSERT(pass(&r, 2, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 11, 2, len, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not sealed"));

	/* Sealed against writing only: it could still shrink. */
	fd = ping_memfd(12, 0, F_SEAL_WRITE, &len);
	CU_ASSERT(pass(&r, 3, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 12, 3, len, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);

	/* Too short for the length the request names. */
	fd = ping_memfd(13, 0, SEALS, &len);
	CU_ASSERT(pass(&r, 4, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 13, 4, len + 4096, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "less than"));

	/* A pipe. */
	CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
	CU_ASSERT(pass(&r, 5, pipefd[0]));
	close(pipefd[0]);
	close(pipefd[1]);
	CU_ASSERT_EQUAL(use(&r, 14, 5, 8, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not a memfd"));

	/* A regular file. */
	snprintf(file, sizeof(file), "%s/regular", p.dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CU_ASSERT_EQUAL(write(fd, "12345678", 8), 8);
	CU_ASSERT(pass(&r, 6, fd));
	close(fd);
	unlink(file);
	CU_ASSERT_EQUAL(use(&r, 15, 6, 8, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not a memfd"));

	/* A handle never handed over. */
	CU_ASSERT_EQUAL(use(&r, 16, 99, 8, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);

	/* The connection and the server go on. */
	fd = ping_memfd(17, 0, SEALS, &len);
	CU_ASSERT(pass(&r, 7, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 17, 7, len, msg, sizeof(msg)), 0);
	raw_close(&r);
	c = connect_shm(&p);
	served_assert_serving(c);
	CU_ASSERT_EQUAL(served_status_int(c, "shm_refused", false), 6);
	served_close(c, "the client");
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* A request naming a memfd on a connection that has no side socket (here
 * another connection's handle) is refused: no client can name another's. */
static void
test_other_connection(void)
{
	gild_proc p;
	raw a, b;
	char msg[300];
	size_t len;
	int fd;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, shm_args), 0);
	raw_open(&a, p.url);
	raw_open(&b, p.url);
	fd = ping_memfd(20, 0, SEALS, &len);
	CU_ASSERT(pass(&a, 1, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&b, 20, 1, len, msg, sizeof(msg)),
	    GILD__V1__CODE__INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(use(&a, 20, 1, len, msg, sizeof(msg)), 0);
	raw_close(&a);
	raw_close(&b);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* Over tcp:// (even on loopback) no offer, whatever the client asks. */
static void
test_tcp_never_offered(void)
{
	char ipc[300];
	const char *extra[] = {"--shm", "--listen", ipc, NULL};
	char tmp[] = "/tmp/gild-shm-XXXXXX";
	gild_proc p;
	gild_client *c;
	raw r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmp));
	snprintf(ipc, sizeof(ipc), "ipc://%s/g.sock", tmp);
	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, NULL, extra), 0);
	CU_ASSERT_EQUAL(strncmp(p.url, "tcp://", 6), 0);
	raw_open(&r, p.url);
	CU_ASSERT_EQUAL(r.side, -1);
	raw_close(&r);
	c = connect_shm(&p);
	CU_ASSERT(!gild_shm_active(c));
	CU_ASSERT(echo_same(c, 1 << 20));
	CU_ASSERT_EQUAL(served_status_int(c, "shm_requests", false), 0);
	CU_ASSERT_EQUAL(served_status_int(c, "shm_replies", false), 0);
	served_close(c, "the tcp client");
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
	rmdir(tmp);
}

/* Descriptors gild has open. */
static int
open_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* gild's resident memory in KiB (VmRSS), or -1. */
static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Whether the server closed r's side socket within 10 s. */
static bool
side_closed(raw *r)
{
	struct pollfd pf = {r->side, POLLIN, 0};
	char b;

	for (int i = 0; i < 100; i++) {
		if (poll(&pf, 1, 100) == 1)
			return recv(r->side, &b, 1, MSG_DONTWAIT) == 0;
	}
	return false;
}

static void
test_budget(void)
{
	gild_proc p;
	gild_client *c;
	int fds0 = -1, fds;
	long rss0 = -1;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, shm_args), 0);
	for (int round = 0; round < 4; round++) {
		raw r;
		int sent = 0;

		raw_open(&r, p.url);
		CU_ASSERT_FATAL(r.side != -1);
		/* 1 MiB each, never used: the 17th is one too many. */
		for (int i = 0; i < 40 && sent < 17; i++) {
			size_t len;
			int fd = ping_memfd(1, 1 << 20, SEALS, &len);
			sent += pass(&r, (uint64_t) i + 1, fd);
			close(fd);
		}
		CU_ASSERT_EQUAL(sent, 17);
		CU_ASSERT(side_closed(&r));
		raw_close(&r);
		/* After the first round: no more descriptors held, and the
		 * 17 MiB handed over each round never became gild's memory
		 * (it maps no memfd it holds): 4 MiB of slack for the heap. */
		fds = open_fds(p.pid);
		if (round == 0) {
			fds0 = fds;
			rss0 = rss_kib(p.pid);
		} else {
			CU_ASSERT(fds <= fds0);
			CU_ASSERT(rss_kib(p.pid) < rss0 + 4096);
		}
	}
	c = connect_shm(&p);
	served_assert_serving(c);
	CU_ASSERT_EQUAL(served_status_int(c, "shm_over_budget", false), 4);
	CU_ASSERT(echo_same(c, 1 << 20)); /* a fresh client still gets it */
	served_close(c, "the client");
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

/* Side sockets that never present a key: past 64 the oldest are closed,
 * and a client that presents its key still gets shared memory. */
static void
test_untied(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	gild_proc p;
	raw r, idle[70];
	char msg[300];
	size_t len;
	int fd, closed = 0;

	CU_ASSERT_EQUAL_FATAL(proc_start(&p, APP, 1, LISTEN, shm_args), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/g.sock.shm", p.dir);
	for (int i = 0; i < 70; i++) {
		idle[i].side = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CU_ASSERT_EQUAL(connect(idle[i].side, (struct sockaddr *) &sa,
				    sizeof(sa)),
		    0);
	}
	raw_open(&r, p.url);
	CU_ASSERT_FATAL(r.side != -1);
	fd = ping_memfd(30, 0, SEALS, &len);
	CU_ASSERT(pass(&r, 1, fd));
	close(fd);
	CU_ASSERT_EQUAL(use(&r, 30, 1, len, msg, sizeof(msg)), 0);
	/* The first ones connected are the ones closed. */
	for (int i = 0; i < 6; i++)
		closed += side_closed(&idle[i]);
	CU_ASSERT_EQUAL(closed, 6);
	for (int i = 0; i < 70; i++)
		close(idle[i].side);
	raw_close(&r);
	CU_ASSERT_EQUAL(proc_stop(&p), 0);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("shm", NULL, NULL);
	CU_add_test(s, "values round-trip through memfds", test_roundtrip);
	CU_add_test(s, "no offer without --shm", test_not_offered_without_flag);
	CU_add_test(s, "bad memfds refused", test_bad_memfds);
	CU_add_test(s, "another connection's memfd", test_other_connection);
	CU_add_test(s, "tcp never offered", test_tcp_never_offered);
	CU_add_test(s, "unused memfds hit the budget", test_budget);
	CU_add_test(s, "side sockets without a key", test_untied);
	return test_run_all();
}
