/* floor: what the transport and the machine cost alone, as a floor under
 * loadgen's numbers: a bare nng REQ/REP echo in C, a ping-pong over a Unix
 * socketpair, and memcpy bandwidth. Prints one JSON object on stdout.
 *
 *   build/bench/floor --nng URL [--calls N] [--closed K] [--bytes B]
 *   build/bench/floor --socketpair [--calls N] [--bytes B]
 *   build/bench/floor --memcpy --bytes B [--seconds S]
 *
 * (--warmup N unmeasured round trips first, default 100; --seconds also
 * bounds the round-trip modes, default 30.) The echo server is a child
 * process, forked before nng starts any thread, stopped and reaped by pid
 * at the end. Exit 0, 1 on a failure, 2 on a usage error. */
#include "bench.h"
#include "hist.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

/* How long one round trip may take before it counts as failed. */
#define REPLY_TIMEOUT_MS 10000

enum mode { MODE_NONE, MODE_NNG, MODE_SOCKETPAIR, MODE_MEMCPY };

typedef struct opts {
	enum mode mode;
	const char *url;
	long calls, warmup;
	int k;
	long bytes; /* -1: the mode's default */
	double seconds; /* 0: the mode's default */
} opts;

/* What a round-trip run measured. */
typedef struct tally {
	hist *h;
	long calls;
	bench_errors err;
	double seconds;
	char url[600]; /* nng: where the echo server listened */
} tally;

/* ---- the echo child ---------------------------------------------------- */

/* The child: its pid and the two pipes that tie it to the parent. */
typedef struct child {
	pid_t pid;  /* 0: none */
	int ctl;    /* parent's write end; the child exits when it closes */
	char ipc_path[512]; /* ipc:// socket file to remove after it, or "" */
} child;

/* Stops the child (closes its control pipe, SIGTERM) and reaps it, then
 * removes its ipc socket file. Safe to call twice. */
static void
child_stop(child *ch)
{
	if (ch->ctl >= 0) {
		close(ch->ctl);
		ch->ctl = -1;
	}
	if (ch->pid > 0) {
		kill(ch->pid, SIGTERM);
		while (waitpid(ch->pid, NULL, 0) == -1 && errno == EINTR)
			;
		ch->pid = 0;
	}
	if (ch->ipc_path[0] != '\0') {
		unlink(ch->ipc_path);
		ch->ipc_path[0] = '\0';
	}
}

/* In the child: dies with the parent, and returns once the parent closes
 * the control pipe (or is gone). */
static void
child_wait_parent(int ctl, pid_t parent)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	while (read(ctl, &c, 1) == -1 && errno == EINTR)
		;
}

/* One REP context of the echo server: receives a request, sends the same
 * message back, and again. */
enum echo_state { ECHO_RECV, ECHO_SEND };

typedef struct echo {
	enum echo_state state;
	nng_ctx ctx;
	nng_aio *aio;
} echo;

static void
echo_cb(void *arg)
{
	echo *e = arg;
	int rv = nng_aio_result(e->aio);

	switch (e->state) {
	case ECHO_RECV:
		if (rv == NNG_ECLOSED)
			return;
		if (rv != 0) {
			nng_ctx_recv(e->ctx, e->aio);
			return;
		}
		/* The message, with its REP header, goes back as it came. */
		nng_aio_set_msg(e->aio, nng_aio_get_msg(e->aio));
		e->state = ECHO_SEND;
		nng_ctx_send(e->ctx, e->aio);
		return;
	case ECHO_SEND:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(e->aio));
		if (rv == NNG_ECLOSED)
			return;
		e->state = ECHO_RECV;
		nng_ctx_recv(e->ctx, e->aio);
		return;
	}
}

/* The URL a listener on `url` can be dialled at: tcp port 0 replaced by
 * the port it got. Returns 0 or an nng error. */
static int
bound_url(const char *url, nng_listener l, char *out, size_t len)
{
	const char *colon = strrchr(url, ':');
	int port, rv;

	if (strncmp(url, "tcp", 3) != 0 || colon == NULL ||
	    strcmp(colon, ":0") != 0) {
		snprintf(out, len, "%s", url);
		return 0;
	}
	if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0)
		return rv;
	snprintf(out, len, "%.*s:%d", (int) (colon - url), url, port);
	return 0;
}

/* The child's whole life: an echo server on url with k contexts. Writes
 * "URL\n" (or "!error\n") to ready, then serves until the parent lets go.
 * Never returns. */
static void
nng_echo_child(const char *url, int k, int ready, int ctl, pid_t parent)
{
	nng_socket sock;
	nng_listener l;
	char buf[600], where[512];
	echo *es = calloc((size_t) k, sizeof(*es));
	int rv, n;

	if (es == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_listen(sock, url, &l, 0)) != 0 ||
	    (rv = bound_url(url, l, where, sizeof(where))) != 0)
		goto fail;
	for (int i = 0; i < k; i++) {
		if ((rv = nng_ctx_open(&es[i].ctx, sock)) != 0 ||
		    (rv = nng_aio_alloc(&es[i].aio, echo_cb, &es[i])) != 0)
			goto fail;
		es[i].state = ECHO_RECV;
		nng_ctx_recv(es[i].ctx, es[i].aio);
	}
	n = snprintf(buf, sizeof(buf), "%s\n", where);
	if (write(ready, buf, (size_t) n) != n)
		_exit(1);
	close(ready);
	child_wait_parent(ctl, parent);
	_exit(0); /* no nng_close: the process goes, and its sockets with it */
fail:
	n = snprintf(buf, sizeof(buf), "!%s\n", nng_strerror(rv));
	if (write(ready, buf, (size_t) n) != n)
		_exit(1);
	_exit(1);
}

/* Forks the nng echo server and reads where it listens into t->url.
 * Returns 0, or -1 with the reason in t. */
static int
nng_echo_start(const opts *o, child *ch, tally *t)
{
	int ready[2], ctl[2];
	pid_t parent = getpid();
	char buf[600];
	ssize_t n, got = 0;

	if (pipe(ready) == -1)
		goto fail_errno;
	if (pipe(ctl) == -1) {
		close(ready[0]);
		close(ready[1]);
		goto fail_errno;
	}
	fflush(NULL);
	if ((ch->pid = fork()) == -1) {
		ch->pid = 0;
		close(ready[0]);
		close(ready[1]);
		close(ctl[0]);
		close(ctl[1]);
		goto fail_errno;
	}
	if (ch->pid == 0) {
		close(ready[0]);
		close(ctl[1]);
		nng_echo_child(o->url, o->k, ready[1], ctl[0], parent);
	}
	close(ready[1]);
	close(ctl[0]);
	ch->ctl = ctl[1];
	if (strncmp(o->url, "ipc://", 6) == 0)
		snprintf(ch->ipc_path, sizeof(ch->ipc_path), "%s", o->url + 6);
	/* One line, or EOF when the child died first. */
	while ((size_t) got < sizeof(buf) - 1 &&
	    memchr(buf, '\n', (size_t) got) == NULL) {
		n = read(ready[0], buf + got, sizeof(buf) - 1 - (size_t) got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(ready[0]);
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (got == 0 || buf[0] == '!') {
		bench_fail(&t->err, "echo server on %s: %s", o->url,
		    got ? buf + 1 : "exited before listening");
		return -1;
	}
	snprintf(t->url, sizeof(t->url), "%s", buf);
	return 0;
fail_errno:
	bench_fail(&t->err, "cannot start the echo server: %s",
	    strerror(errno));
	return -1;
}

/* ---- the nng client ---------------------------------------------------- */

typedef struct nng_run nng_run;

/* One REQ context: sends a request, receives its reply, and again, until
 * the run has no more calls to give out. */
enum req_state { REQ_SENDING, REQ_RECEIVING, REQ_FINISHED };

typedef struct req {
	enum req_state state;
	nng_run *r;
	nng_ctx ctx;
	nng_aio *aio;
	hist *h;       /* this context's latencies: its callbacks run one at a time */
	long calls;
	bench_errors err;
	bool measured; /* the call in flight counts */
	int64_t t_send;
} req;

struct nng_run {
	const opts *o;
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* a context finished */
	long given;        /* calls given out, warm-up included */
	int finished;      /* contexts done */
	bool stop;         /* time is up, or a call failed */
	int64_t t0;        /* when the first measured call was sent */
	int64_t t_last;    /* when the last measured reply came */
	const nng_msg *proto; /* the request body every call copies */
};

/* Gives q its next call and sends it, or finishes q. */
static void
req_next(req *q)
{
	nng_run *r = q->r;
	int64_t now = bench_now_ns();
	nng_msg *m;
	int rv;

	pthread_mutex_lock(&r->mtx);
	if (r->t0 != 0 && now - r->t0 >= (int64_t) (r->o->seconds * 1e9))
		r->stop = true;
	if (r->stop || r->given >= r->o->warmup + r->o->calls) {
		q->state = REQ_FINISHED;
		r->finished++;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mtx);
		return;
	}
	q->measured = r->given++ >= r->o->warmup;
	if (q->measured && r->t0 == 0)
		r->t0 = now;
	pthread_mutex_unlock(&r->mtx);
	if ((rv = nng_msg_dup(&m, r->proto)) != 0) {
		bench_fail(&q->err, "nng_msg_dup: %s", nng_strerror(rv));
		pthread_mutex_lock(&r->mtx);
		r->stop = true;
		pthread_mutex_unlock(&r->mtx);
		req_next(q);
		return;
	}
	q->state = REQ_SENDING;
	q->t_send = bench_now_ns();
	nng_aio_set_msg(q->aio, m);
	nng_ctx_send(q->ctx, q->aio);
}

static void
req_cb(void *arg)
{
	req *q = arg;
	nng_run *r = q->r;
	int rv = nng_aio_result(q->aio);
	int64_t now = bench_now_ns();

	switch (q->state) {
	case REQ_SENDING:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(q->aio));
			bench_fail(&q->err, "send: %s", nng_strerror(rv));
			break;
		}
		q->state = REQ_RECEIVING;
		nng_ctx_recv(q->ctx, q->aio);
		return;
	case REQ_RECEIVING:
		if (rv != 0) {
			bench_fail(&q->err, "receive: %s", nng_strerror(rv));
			break;
		} else {
			nng_msg *m = nng_aio_get_msg(q->aio);
			const uint8_t *p = nng_msg_body(m);
			size_t n = nng_msg_len(m), want = (size_t) r->o->bytes;
			bool ok = n == want && (n == 0 ||
			    (p[0] == bench_pattern(0) &&
				p[n - 1] == bench_pattern(n - 1)));

			nng_msg_free(m);
			if (!ok) {
				bench_fail(&q->err,
				    "echo of %zu bytes came back as %zu", want, n);
			} else if (q->measured) {
				hist_record(q->h, (uint64_t) (now - q->t_send));
				q->calls++;
				pthread_mutex_lock(&r->mtx);
				if (now > r->t_last)
					r->t_last = now;
				pthread_mutex_unlock(&r->mtx);
			}
		}
		req_next(q);
		return;
	case REQ_FINISHED:
		return;
	}
	/* A failed send or receive: the run stops. */
	pthread_mutex_lock(&r->mtx);
	r->stop = true;
	pthread_mutex_unlock(&r->mtx);
	req_next(q);
}

/* Measures round trips of o->bytes with o->k REQ contexts in flight against
 * the echo child. Returns 0, or -1 (the reason in t). */
static int
run_nng(const opts *o, tally *t)
{
	child ch = {.ctl = -1};
	nng_run r = {.o = o};
	nng_socket sock;
	nng_msg *proto = NULL;
	req *qs = NULL;
	bool sock_open = false;
	int rv = 0, rc = -1, opened = 0;

	if (nng_echo_start(o, &ch, t) != 0)
		goto out;
	pthread_mutex_init(&r.mtx, NULL);
	pthread_cond_init(&r.cv, NULL);
	if ((qs = calloc((size_t) o->k, sizeof(*qs))) == NULL) {
		bench_fail(&t->err, "out of memory");
		goto out_sync;
	}
	if ((rv = nng_msg_alloc(&proto, (size_t) o->bytes)) != 0)
		goto nng_fail;
	for (size_t i = 0; i < (size_t) o->bytes; i++)
		((uint8_t *) nng_msg_body(proto))[i] = bench_pattern(i);
	r.proto = proto;
	if ((rv = nng_req0_open(&sock)) != 0)
		goto nng_fail;
	sock_open = true;
	/* No resends: a slow reply is a measurement, not a loss. */
	if ((rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME,
		3600 * 1000)) != 0 ||
	    (rv = nng_dial(sock, t->url, NULL, 0)) != 0)
		goto nng_fail;
	for (; opened < o->k; opened++) {
		req *q = &qs[opened];

		q->r = &r;
		if (hist_init(&q->h) != 0) {
			rv = NNG_ENOMEM;
			goto nng_fail;
		}
		if ((rv = nng_ctx_open(&q->ctx, sock)) != 0)
			goto nng_fail;
		if ((rv = nng_aio_alloc(&q->aio, req_cb, q)) != 0) {
			nng_ctx_close(q->ctx);
			goto nng_fail;
		}
		nng_aio_set_timeout(q->aio, REPLY_TIMEOUT_MS);
	}
	for (int i = 0; i < o->k; i++)
		req_next(&qs[i]);
	pthread_mutex_lock(&r.mtx);
	while (r.finished < o->k)
		pthread_cond_wait(&r.cv, &r.mtx);
	pthread_mutex_unlock(&r.mtx);
	rc = 0;
	goto collect;
nng_fail:
	bench_fail(&t->err, "nng on %s: %s", t->url, nng_strerror(rv));
	/* Nothing was started: the contexts opened so far are idle. */
collect:
	for (int i = 0; i < opened; i++) {
		req *q = &qs[i];

		nng_aio_stop(q->aio);
		nng_ctx_close(q->ctx);
		nng_aio_free(q->aio);
		bench_errors_merge(&t->err, &q->err);
		t->calls += q->calls;
		hist_merge(t->h, q->h);
	}
	for (int i = 0; qs != NULL && i < o->k; i++)
		hist_fini(qs[i].h);
	if (sock_open)
		nng_close(sock);
	nng_msg_free(proto);
	if (r.t0 != 0 && r.t_last > r.t0)
		t->seconds = (double) (r.t_last - r.t0) / 1e9;
out_sync:
	free(qs);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mtx);
out:
	child_stop(&ch);
	return rc;
}

/* ---- socketpair -------------------------------------------------------- */

/* Reads or writes exactly n bytes: 0, or -1 (EOF or an error). */
static int
io_full(int fd, void *buf, size_t n, bool wr)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t k = wr ? write(fd, p, n) : read(fd, p, n);

		if (k == -1 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t) k;
	}
	return 0;
}

/* B-byte ping-pong between this process and a forked child over a Unix
 * stream socketpair. Returns 0 or -1. */
static int
run_socketpair(const opts *o, tally *t)
{
	child ch = {.ctl = -1};
	size_t b = (size_t) o->bytes;
	uint8_t *out = malloc(b + 1), *in = malloc(b + 1);
	int sv[2] = {-1, -1}, rc = -1;
	pid_t parent = getpid();
	int64_t t0 = 0, end = 0, limit = (int64_t) (o->seconds * 1e9);

	if (out == NULL || in == NULL) {
		bench_fail(&t->err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b; i++)
		out[i] = bench_pattern(i);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		bench_fail(&t->err, "socketpair: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	if ((ch.pid = fork()) == -1) {
		ch.pid = 0;
		bench_fail(&t->err, "fork: %s", strerror(errno));
		goto out;
	}
	if (ch.pid == 0) { /* echo until the parent closes its end */
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		while (io_full(sv[1], in, b, false) == 0)
			if (io_full(sv[1], in, b, true) != 0)
				break;
		_exit(0);
	}
	close(sv[1]);
	sv[1] = -1;
	snprintf(t->url, sizeof(t->url), "socketpair");
	for (long i = 0; i < o->warmup + o->calls; i++) {
		int64_t ts = bench_now_ns(), now;

		if (i == o->warmup)
			t0 = ts;
		if (io_full(sv[0], out, b, true) != 0 ||
		    io_full(sv[0], in, b, false) != 0) {
			bench_fail(&t->err, "ping-pong: %s",
			    errno ? strerror(errno) : "EOF");
			goto out;
		}
		now = bench_now_ns();
		if (b > 0 && (in[0] != out[0] || in[b - 1] != out[b - 1])) {
			bench_fail(&t->err, "the echo came back different");
			goto out;
		}
		if (i >= o->warmup) {
			hist_record(t->h, (uint64_t) (now - ts));
			t->calls++;
			end = now;
			if (now - t0 >= limit)
				break;
		}
	}
	rc = 0;
out:
	if (end > t0)
		t->seconds = (double) (end - t0) / 1e9;
	if (sv[0] >= 0)
		close(sv[0]); /* the child sees EOF */
	if (sv[1] >= 0)
		close(sv[1]);
	child_stop(&ch);
	free(out);
	free(in);
	return rc;
}

/* ---- memcpy ------------------------------------------------------------ */

/* Copies of o->bytes for about o->seconds: bytes copied per second. Writes
 * the copies made and the time taken. Returns 0 or -1. */
static int
run_memcpy(const opts *o, double *gbps, long *copies, double *secs)
{
	size_t b = (size_t) o->bytes, batch = 1, n = 0;
	uint8_t *src = aligned_alloc(64, (b + 63) / 64 * 64 + 64);
	uint8_t *dst = aligned_alloc(64, (b + 63) / 64 * 64 + 64);
	int64_t t0, now, limit = (int64_t) (o->seconds * 1e9);

	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		return -1;
	}
	/* Fault every page in, then one copy to warm the caches. */
	memset(src, 0x5a, b);
	memset(dst, 0, b);
	memcpy(dst, src, b);
	/* Batches of at least ~1 ms, so that reading the clock costs nothing. */
	for (;;) {
		t0 = bench_now_ns();
		for (size_t i = 0; i < batch; i++) {
			memcpy(dst, src, b);
			__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
		}
		if (bench_now_ns() - t0 >= 1000000 || batch >= (size_t) 1 << 40)
			break;
		batch *= 2;
	}
	t0 = bench_now_ns();
	do {
		for (size_t i = 0; i < batch; i++) {
			memcpy(dst, src, b);
			__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
		}
		n += batch;
		now = bench_now_ns();
	} while (now - t0 < limit);
	*secs = (double) (now - t0) / 1e9;
	*copies = (long) n;
	*gbps = (double) b * (double) n / *secs / 1e9;
	free(src);
	free(dst);
	return 0;
}

/* ---- output ------------------------------------------------------------ */

/* The round-trip modes' JSON object, in loadgen's shape, on stdout.
 * Returns 0 or -1. */
static int
report(const opts *o, const tally *t)
{
	double per_s = t->seconds > 0 ? (double) t->calls / t->seconds : 0;
	json_t *obj = json_object();
	int bad = 0;

	/* json_object_set_new takes the value even when it fails (or gets
	 * NULL, or obj is NULL): nothing leaks on the way. */
	bad |= json_object_set_new(obj, "tool", json_string("floor"));
	bad |= json_object_set_new(obj, "mode",
	    json_string(o->mode == MODE_NNG ? "nng" : "socketpair"));
	bad |= json_object_set_new(obj, "url", json_string(t->url));
	bad |= json_object_set_new(obj, "k",
	    json_integer(o->mode == MODE_NNG ? o->k : 1));
	bad |= json_object_set_new(obj, "rate", json_null());
	bad |= json_object_set_new(obj, "bytes", json_integer(o->bytes));
	bad |= json_object_set_new(obj, "arg_bytes", json_integer(o->bytes));
	bad |= json_object_set_new(obj, "calls", json_integer(t->calls));
	bad |= json_object_set_new(obj, "errors", json_integer(t->err.count));
	bad |= json_object_set_new(obj, "late", json_integer(0));
	bad |= json_object_set_new(obj, "seconds", bench_real_json(t->seconds));
	bad |= json_object_set_new(obj, "calls_per_s", bench_real_json(per_s));
	bad |= json_object_set_new(obj, "bytes_per_s",
	    bench_real_json((double) o->bytes * 2 * per_s));
	bad |= json_object_set_new(obj, "chunks_per_s", json_null());
	bad |= json_object_update_new(obj, hist_json(t->h));
	return bench_print_json(stdout, obj, bad);
}

/* The memcpy mode's JSON object on stdout. Returns 0 or -1. */
static int
report_memcpy(const opts *o, double gbps, long copies, double secs)
{
	json_t *obj = json_object();
	int bad = 0;

	bad |= json_object_set_new(obj, "tool", json_string("floor"));
	bad |= json_object_set_new(obj, "mode", json_string("memcpy"));
	bad |= json_object_set_new(obj, "bytes", json_integer(o->bytes));
	bad |= json_object_set_new(obj, "seconds", bench_real_json(secs));
	bad |= json_object_set_new(obj, "copies", json_integer(copies));
	bad |= json_object_set_new(obj, "gb_per_s", bench_real_json(gbps));
	return bench_print_json(stdout, obj, bad);
}

/* ---- options ----------------------------------------------------------- */

static const char usage_text[] =
    "usage: floor --nng URL [--calls N] [--closed K] [--bytes B]\n"
    "       floor --socketpair [--calls N] [--bytes B]\n"
    "       floor --memcpy --bytes B [--seconds S]\n"
    "  --nng URL      bare nng REQ/REP echo against a forked REP server\n"
    "                 listening on URL (tcp://127.0.0.1:0: a free port)\n"
    "  --closed K     nng: K requests in flight (K contexts; default 1)\n"
    "  --socketpair   ping-pong with a forked process over a socketpair\n"
    "  --memcpy       memcpy bandwidth of B-byte buffers\n"
    "  --calls N      measured round trips (default 10000)\n"
    "  --warmup N     unmeasured round trips first (default 100)\n"
    "  --bytes B      message size (default 8)\n"
    "  --seconds S    time bound (round trips: default 30; memcpy: 1)\n"
    "Prints one JSON object on stdout.\n";

static int
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "floor: %s\n", why);
	fputs(usage_text, stderr);
	return 2;
}

static int
parse_opts(int argc, char **argv, opts *o)
{
	static const struct option longs[] = {
	    {"nng", required_argument, NULL, 'N'},
	    {"socketpair", no_argument, NULL, 'P'},
	    {"memcpy", no_argument, NULL, 'M'},
	    {"calls", required_argument, NULL, 'n'},
	    {"closed", required_argument, NULL, 'k'},
	    {"bytes", required_argument, NULL, 'b'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"seconds", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum mode m;
	long v;
	int ch;

	*o = (opts){.calls = 10000, .warmup = 100, .k = 1, .bytes = -1};
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'N':
		case 'P':
		case 'M':
			m = ch == 'N' ? MODE_NNG : ch == 'P' ? MODE_SOCKETPAIR :
			    MODE_MEMCPY;
			if (o->mode != MODE_NONE && o->mode != m)
				return usage("one of --nng, --socketpair, --memcpy");
			o->mode = m;
			if (ch == 'N')
				o->url = optarg;
			break;
		case 'n':
			if (!bench_parse_long(optarg, 1, LONG_MAX / 2,
			    &o->calls))
				return usage("--calls: expected a count > 0");
			break;
		case 'k':
			if (!bench_parse_long(optarg, 1, 8192, &v))
				return usage("--closed: expected 1 to 8192");
			o->k = (int) v;
			break;
		case 'b':
			if (!bench_parse_long(optarg, 0, 1L << 32, &o->bytes))
				return usage("--bytes: expected 0 to 2^32");
			break;
		case 'w':
			if (!bench_parse_long(optarg, 0, LONG_MAX / 2,
			    &o->warmup))
				return usage("--warmup: expected a count >= 0");
			break;
		case 's':
			if (!bench_parse_pos_double(optarg, &o->seconds))
				return usage("--seconds: expected seconds > 0");
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return usage("unknown option or missing value");
		}
	}
	if (optind < argc)
		return usage("unexpected argument");
	if (o->mode == MODE_NONE)
		return usage("give --nng URL, --socketpair or --memcpy");
	if (o->mode == MODE_MEMCPY && o->bytes <= 0)
		return usage("--memcpy needs --bytes B > 0");
	if (o->mode != MODE_NNG && o->k != 1)
		return usage("--closed is for --nng");
	if (o->bytes < 0)
		o->bytes = 8;
	if (o->seconds == 0)
		o->seconds = o->mode == MODE_MEMCPY ? 1 : 30;
	return 0;
}

int
main(int argc, char **argv)
{
	opts o;
	tally t = {0};
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	/* A dead echo child must not kill us through a write. */
	signal(SIGPIPE, SIG_IGN);
	if (o.mode == MODE_MEMCPY) {
		double gbps, secs;
		long copies;

		if (run_memcpy(&o, &gbps, &copies, &secs) != 0) {
			fprintf(stderr, "floor: out of memory\n");
			return 1;
		}
		fprintf(stderr, "floor: memcpy of %ld bytes: %.2f GB/s\n", o.bytes,
		    gbps);
		if (report_memcpy(&o, gbps, copies, secs) != 0) {
			fprintf(stderr, "floor: cannot write the report\n");
			return 1;
		}
		return 0;
	}
	if (hist_init(&t.h) != 0) {
		fprintf(stderr, "floor: out of memory\n");
		return 1;
	}
	if (o.mode == MODE_NNG)
		run_nng(&o, &t);
	else
		run_socketpair(&o, &t);
	if (t.err.count > 0)
		fprintf(stderr, "floor: %ld errors; the first: %s\n",
		    t.err.count, t.err.first);
	fprintf(stderr, "floor: %s %ld bytes: %ld round trips in %.3f s "
	    "(%.0f/s), p50 %.1f us, p99 %.1f us, max %.1f us\n",
	    o.mode == MODE_NNG ? t.url : "socketpair", o.bytes, t.calls,
	    t.seconds, t.seconds > 0 ? (double) t.calls / t.seconds : 0,
	    hist_quantile_us(t.h, 0.5), hist_quantile_us(t.h, 0.99),
	    hist_max_us(t.h));
	if (report(&o, &t) != 0) {
		fprintf(stderr, "floor: cannot write the report\n");
		t.err.count++;
	}
	rc = t.err.count > 0 || t.calls == 0 ? 1 : 0;
	hist_fini(t.h);
	return rc;
}
