/* Unit tests of libgild's client (client-lib/client.c) against a tiny raw
 * REP server running in a thread of this test: connecting, matching replies
 * to calls with thousands in flight, timeouts, cancellation, lost
 * connections, several servers, and streams. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/tcp/tcp.h>

#include "gild.h"
#include "gild.pb-c.h"
#include "test_main.h"

/* ---- the test server --------------------------------------------------- *
 * Functions: echo (result = first argument; replies are held until `batch`
 * of them are queued, then sent newest first), hang (never answers), fail
 * (a PYTHON_ERROR), drop (closes the caller's connection). Also answers
 * Ping and StatusRequest, and counts Cancels.
 *
 * Streaming calls (Call.stream): count(n) yields 0 .. n-1, at most
 * STREAM_BATCH chunks per reply and never more than StreamNext.max (nor the
 * window, in the Call's reply); count_fail(n) yields as many, then ends with
 * a PYTHON_ERROR; count_gap(n) skips a sequence number in its second reply;
 * count_drop(n) closes the connection on the first StreamNext; stall never
 * answers; any other name is NOT_FOUND. Every StreamNext.max is recorded,
 * and checked against the window minus the chunks the client holds (sent,
 * less the `taken` the test has announced).
 *
 * Held replies go out WINDOW at a time, each window only once the test has
 * collected the one before (server_consumed): nng 1.5.2's raw REP socket
 * silently drops a reply when the connection's send queue is full, even on
 * a blocking send, so a burst of 2,000 sometimes loses a few dozen. */
#define WINDOW 32

#define STREAM_BATCH 5
#define MAX_STREAMS 8
#define MAX_PULLS 256

enum stream_mode { COUNT, COUNT_FAIL, COUNT_GAP, COUNT_DROP };

typedef struct fake_stream {
	uint64_t id;         /* the Call's request id */
	enum stream_mode mode;
	int n, sent;         /* chunks in all, and sent so far */
	uint32_t window;
	bool cancelled;
} fake_stream;

typedef struct server {
	nng_socket sock;
	char url[64];
	pthread_t thr;
	int batch;
	nng_msg **held;
	int n_held;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int echoes, cancels, hangs;
	uint32_t hang_timeout_ms; /* Call.timeout_ms of the latest hang */
	int consumed; /* held replies the test has collected */
	atomic_bool stop;
	/* Streams; under mtx as far as the test reads them. */
	fake_stream streams[MAX_STREAMS];
	int n_streams, stalls;
	uint32_t stream_window, stream_timeout_ms; /* of the latest stream */
	uint32_t pulls[MAX_PULLS]; /* StreamNext.max, in arrival order */
	int n_pulls;
	int over_window; /* StreamNexts asking for more than the client has room */
	int taken;       /* chunks the test has (at most) taken: set by it */
} server;

/* Waits (5 s at most) until the test has collected n held replies. */
static void
wait_consumed(server *s, int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&s->mtx);
	while (s->consumed < n &&
	    pthread_cond_timedwait(&s->cv, &s->mtx, &ts) == 0)
		;
	pthread_mutex_unlock(&s->mtx);
}

/* The test has collected n more held replies. */
static void
server_consumed(server *s, int n)
{
	pthread_mutex_lock(&s->mtx);
	s->consumed += n;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

static void
send_reply(server *s, nng_msg *req, const Gild__V1__Reply *r, bool hold)
{
	size_t n = gild__v1__reply__get_packed_size(r);
	nng_msg *m;

	if (nng_msg_alloc(&m, n) != 0)
		return;
	gild__v1__reply__pack(r, nng_msg_body(m));
	/* The backtrace (pipe id, request id) routes the reply back. */
	nng_msg_header_append(m, nng_msg_header(req), nng_msg_header_len(req));
	if (!hold) {
		if (nng_sendmsg(s->sock, m, 0) != 0)
			nng_msg_free(m);
		return;
	}
	s->held[s->n_held++] = m;
	if (s->n_held == s->batch) {
		for (int sent = 0; s->n_held > 0; sent++) {
			if (sent > 0 && sent % WINDOW == 0)
				wait_consumed(s, sent);
			m = s->held[--s->n_held];
			if (nng_sendmsg(s->sock, m, 0) != 0)
				nng_msg_free(m);
		}
	}
}

/* Answers a streaming Call (max = 0) or a StreamNext with the next chunks
 * of fs. */
static void
stream_reply(server *s, nng_msg *m, uint64_t id, fake_stream *fs,
    uint32_t max)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Chunks ch = GILD__V1__CHUNKS__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	Gild__V1__Value vals[STREAM_BATCH], *items[STREAM_BATCH];
	int k = fs->n - fs->sent;

	if (k > STREAM_BATCH)
		k = STREAM_BATCH;
	if (max > 0 && (uint32_t) k > max)
		k = (int) max;
	if ((uint32_t) k > fs->window)
		k = (int) fs->window;
	for (int i = 0; i < k; i++) {
		gild__v1__value__init(&vals[i]);
		vals[i].kind_case = GILD__V1__VALUE__KIND_INT_VALUE;
		vals[i].int_value = fs->sent + i;
		items[i] = &vals[i];
	}
	r.id = id;
	r.body_case = GILD__V1__REPLY__BODY_CHUNKS;
	r.chunks = &ch;
	ch.first_seq = (uint64_t) fs->sent +
	    (fs->mode == COUNT_GAP && fs->sent > 0);
	ch.n_items = (size_t) k;
	ch.items = items;
	fs->sent += k;
	if (fs->cancelled) {
		ch.end = true;
		ch.error = &e;
		e.code = GILD__V1__CODE__CANCELLED;
		e.message = "cancelled";
	} else if (fs->sent == fs->n) {
		ch.end = true;
		if (fs->mode == COUNT_FAIL) {
			ch.error = &e;
			e.code = GILD__V1__CODE__PYTHON_ERROR;
			e.message = "boom";
			e.python_type = "ValueError";
			e.traceback = "Traceback (most recent call last):\n"
			    "ValueError: boom\n";
		}
	}
	send_reply(s, m, &r, false);
}

/* The newest stream with that id: a new client numbers its calls from 1
 * again. */
static fake_stream *
find_stream(server *s, uint64_t id)
{
	for (int i = s->n_streams; i-- > 0;)
		if (s->streams[i].id == id)
			return &s->streams[i];
	return NULL;
}

static void
reply_not_found(server *s, nng_msg *m, uint64_t id, const char *msg)
{
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;

	r.id = id;
	r.body_case = GILD__V1__REPLY__BODY_ERROR;
	r.error = &e;
	e.code = GILD__V1__CODE__NOT_FOUND;
	e.message = (char *) msg;
	send_reply(s, m, &r, false);
}

static void
serve_stream_call(server *s, nng_msg *m, const Gild__V1__Request *q)
{
	static const struct {
		const char *name;
		enum stream_mode mode;
	} fns[] = {{"count", COUNT}, {"count_fail", COUNT_FAIL},
	    {"count_gap", COUNT_GAP}, {"count_drop", COUNT_DROP}};
	const Gild__V1__Call *call = q->call;
	fake_stream *fs;

	pthread_mutex_lock(&s->mtx);
	s->stream_window = call->window;
	s->stream_timeout_ms = call->timeout_ms;
	if (strcmp(call->function, "stall") == 0) {
		s->stalls++;
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		if (strcmp(call->function, fns[i].name) != 0 ||
		    s->n_streams == MAX_STREAMS)
			continue;
		fs = &s->streams[s->n_streams++];
		memset(fs, 0, sizeof(*fs));
		fs->id = q->id;
		fs->mode = fns[i].mode;
		fs->n = call->n_args > 0 ? (int) call->args[0]->int_value : 0;
		fs->window = call->window > 0 ? call->window : 64;
		stream_reply(s, m, q->id, fs, 0);
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	pthread_mutex_unlock(&s->mtx);
	reply_not_found(s, m, q->id, "no generator function");
}

static void
serve_stream_next(server *s, nng_msg *m, const Gild__V1__Request *q)
{
	const Gild__V1__StreamNext *sn = q->stream_next;
	fake_stream *fs;

	pthread_mutex_lock(&s->mtx);
	fs = find_stream(s, sn->call_id);
	if (fs != NULL) {
		/* The client holds every chunk sent (it asks only once the
		 * last reply came) less those taken. */
		if (s->n_pulls < MAX_PULLS)
			s->pulls[s->n_pulls++] = sn->max;
		if (sn->max == 0 || (int64_t) sn->max + fs->sent - s->taken >
		    (int64_t) fs->window)
			s->over_window++;
		if (fs->mode == COUNT_DROP) {
			nng_pipe_close(nng_msg_get_pipe(m));
			pthread_mutex_unlock(&s->mtx);
			return;
		}
		stream_reply(s, m, q->id, fs, sn->max);
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	pthread_mutex_unlock(&s->mtx);
	reply_not_found(s, m, q->id, "no such stream");
}

static void
serve_one(server *s, nng_msg *m)
{
	Gild__V1__Request *q = gild__v1__request__unpack(NULL, nng_msg_len(m),
	    nng_msg_body(m));
	Gild__V1__Reply r = GILD__V1__REPLY__INIT;
	Gild__V1__Value null = GILD__V1__VALUE__INIT;
	Gild__V1__Null nv = GILD__V1__NULL__INIT;
	Gild__V1__Error e = GILD__V1__ERROR__INIT;
	Gild__V1__Pong pong = GILD__V1__PONG__INIT;
	Gild__V1__Status st = GILD__V1__STATUS__INIT;
	char *fns[1] = {"echo"};

	if (q == NULL)
		return;
	r.id = q->id;
	null.kind_case = GILD__V1__VALUE__KIND_NULL_VALUE;
	null.null_value = &nv;
	switch (q->body_case) {
	case GILD__V1__REQUEST__BODY_CALL:
		if (q->call->stream) {
			serve_stream_call(s, m, q);
		} else if (strcmp(q->call->function, "echo") == 0) {
			r.body_case = GILD__V1__REPLY__BODY_RESULT;
			r.result = q->call->n_args > 0 ? q->call->args[0] : &null;
			pthread_mutex_lock(&s->mtx);
			s->echoes++;
			pthread_mutex_unlock(&s->mtx);
			send_reply(s, m, &r, s->batch > 1);
		} else if (strcmp(q->call->function, "hang") == 0) {
			pthread_mutex_lock(&s->mtx);
			s->hangs++;
			s->hang_timeout_ms = q->call->timeout_ms;
			pthread_mutex_unlock(&s->mtx);
		} else if (strcmp(q->call->function, "drop") == 0) {
			nng_pipe_close(nng_msg_get_pipe(m));
		} else {
			r.body_case = GILD__V1__REPLY__BODY_ERROR;
			r.error = &e;
			e.code = GILD__V1__CODE__PYTHON_ERROR;
			e.message = "boom";
			e.python_type = "ValueError";
			e.traceback = "Traceback (most recent call last):\n"
			    "ValueError: boom\n";
			send_reply(s, m, &r, false);
		}
		break;
	case GILD__V1__REQUEST__BODY_CANCEL: {
		fake_stream *fs;

		pthread_mutex_lock(&s->mtx);
		s->cancels++;
		if ((fs = find_stream(s, q->cancel->target_id)) != NULL)
			fs->cancelled = true;
		pthread_mutex_unlock(&s->mtx);
		break;
	}
	case GILD__V1__REQUEST__BODY_STREAM_NEXT:
		serve_stream_next(s, m, q);
		break;
	case GILD__V1__REQUEST__BODY_PING:
		r.body_case = GILD__V1__REPLY__BODY_PONG;
		r.pong = &pong;
		pong.payload = q->ping->payload;
		pong.server_version = "test-1.0";
		send_reply(s, m, &r, false);
		break;
	case GILD__V1__REQUEST__BODY_STATUS:
		r.body_case = GILD__V1__REPLY__BODY_STATUS;
		r.status = &st;
		st.server_version = "test-1.0";
		st.app = "test";
		st.runtime = "process";
		st.n_functions = 1;
		st.functions = fns;
		st.calls_total = 7;
		send_reply(s, m, &r, false);
		break;
	default:
		break;
	}
	gild__v1__request__free_unpacked(q, NULL);
}

static void *
server_main(void *arg)
{
	server *s = arg;
	nng_msg *m;

	/* Polls with a timeout: nng 1.5.2 does not always wake a receive
	 * blocked in another thread when the socket is closed. */
	while (!atomic_load(&s->stop)) {
		int rc = nng_recvmsg(s->sock, &m, 0);
		if (rc == NNG_ETIMEDOUT)
			continue;
		if (rc != 0)
			break;
		serve_one(s, m);
		nng_msg_free(m);
	}
	return NULL;
}

static server *
server_start(int batch)
{
	server *s = calloc(1, sizeof(*s));
	nng_listener l;
	int port = 0;

	s->batch = batch;
	s->held = calloc((size_t) batch + 1, sizeof(*s->held));
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (nng_rep0_open_raw(&s->sock) != 0 ||
	    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 0) != 0 ||
	    nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 50) != 0 ||
	    nng_listen(s->sock, "tcp://127.0.0.1:0", &l, 0) != 0 ||
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return NULL;
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", port);
	pthread_create(&s->thr, NULL, server_main, s);
	return s;
}

static void
server_stop(server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thr, NULL);
	nng_close(s->sock);
	while (s->n_held > 0)
		nng_msg_free(s->held[--s->n_held]);
	free(s->held);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

static int
server_count(server *s, int *field)
{
	int n;

	pthread_mutex_lock(&s->mtx);
	n = *field;
	pthread_mutex_unlock(&s->mtx);
	return n;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Waits for *field to reach n, up to 30 s (a bound only a hang reaches);
 * returns its value. */
static int
wait_count(server *s, int *field, int n)
{
	for (int i = 0; i < 3000 && server_count(s, field) < n; i++)
		sleep_ms(10);
	return server_count(s, field);
}

static gild_client *
connect_one(const char *url)
{
	gild_client *c = NULL;
	gild_error err = {0};

	CU_ASSERT_EQUAL(gild_connect(&c, &url, 1, &err), GILD_OK);
	gild_error_clear(&err);
	return c;
}

/* [x] as a new list. */
static gild_value *
args1(gild_value *x)
{
	gild_value *l = gild_list();

	gild_list_append(l, x);
	return l;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_unreachable(void)
{
	const char *urls[] = {"tcp://127.0.0.1:1"};
	const char *bad[] = {"bogus://x"};
	gild_client *c = NULL;
	gild_error err = {0};
	double t0 = now_ms();

	CU_ASSERT_EQUAL(gild_connect(&c, urls, 1, &err), GILD_UNAVAILABLE);
	/* The refusal is reported, not retried in the background: a bound
	 * only retrying (or a hang) reaches, not a slow machine. */
	CU_ASSERT(now_ms() - t0 < GILD_CALL_GRACE_MS);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err.code, GILD_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(err.message,
	    "cannot connect to tcp://127.0.0.1:1: Connection refused");
	CU_ASSERT_EQUAL(gild_connect(&c, bad, 1, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(gild_connect(&c, urls, 0, &err), GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);
	gild_close(NULL);
}

static void
test_calls(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_value *args, *kw, *out = NULL, *st = NULL;
	gild_error err = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	args = args1(gild_int_from_decimal("-1606938044258990275541962092341162602522202993782792835301376"));
	kw = gild_map();
	gild_map_set(kw, gild_cstr("k"), gild_null());
	CU_ASSERT_EQUAL(gild_call(c, "echo", args, kw, 1000, &out, &err), GILD_OK);
	CU_ASSERT_TRUE(gild_value_equal(out, gild_value_item(args, 0)));
	gild_value_free(out);
	gild_value_free(args);
	gild_value_free(kw);

	CU_ASSERT_EQUAL(gild_call(c, "echo", NULL, NULL, -1, &out, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_kind(out), GILD_NULL);
	gild_value_free(out);

	CU_ASSERT_EQUAL(gild_call(c, "nope", NULL, NULL, -1, &out, &err),
	    GILD_PYTHON_ERROR);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(err.code, GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.message, "boom");
	CU_ASSERT_STRING_EQUAL(err.python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(err.traceback,
	    "Traceback (most recent call last):\nValueError: boom\n");
	gild_error_clear(&err);

	/* Arguments that cannot be sent never reach the server. */
	kw = gild_list();
	CU_ASSERT_EQUAL(gild_call(c, "echo", NULL, kw, -1, &out, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message, "keyword arguments must be a map");
	gild_value_free(kw);
	gild_error_clear(&err);

	CU_ASSERT_EQUAL(gild_ping(c, 1000, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_status(c, 1000, &st, &err), GILD_OK);
	CU_ASSERT_STRING_EQUAL(gild_value_str(gild_map_get(st, "server_version"),
	    NULL), "test-1.0");
	CU_ASSERT_EQUAL(gild_value_int(gild_map_get(st, "calls_total")), 7);
	CU_ASSERT_STRING_EQUAL(gild_value_str(gild_value_item(gild_map_get(st,
	    "functions"), 0), NULL), "echo");
	gild_value_free(st);
	CU_ASSERT_EQUAL(gild_in_flight(c), 0);
	gild_close(c);
	server_stop(s);
}

/* 2,000 calls in flight; the server answers only when it has them all,
 * newest first, WINDOW at a time. In each window the oldest call (the last
 * to come) is collected by id with gild_wait first, the others by
 * gild_poll. */
#define N_CALLS 2000

static void
test_many_in_flight(void)
{
	server *s = server_start(N_CALLS);
	gild_client *c;
	gild_call_id ids[N_CALLS];
	bool seen[N_CALLS] = {false};
	gild_error err = {0};
	gild_result res = {0};
	int by_id = 0, polled = 0, windows = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < N_CALLS; i++) {
		gild_value *a = args1(gild_int(i));

		CU_ASSERT_EQUAL(gild_submit(c, "echo", a, NULL, &ids[i], &err),
		    GILD_OK);
		gild_value_free(a);
	}
	CU_ASSERT_EQUAL(gild_in_flight(c), N_CALLS);
	for (int hi = N_CALLS; hi > 0; hi -= WINDOW, windows++) {
		int lo = hi > WINDOW ? hi - WINDOW : 0;

		if (gild_wait(c, ids[lo], 5000, &res) == GILD_OK &&
		    res.code == GILD_OK && res.id == ids[lo] &&
		    gild_value_int(res.value) == lo && !seen[lo]) {
			seen[lo] = true;
			by_id++;
		}
		gild_result_clear(&res);
		for (int k = lo + 1; k < hi; k++) {
			int64_t i;

			if (gild_poll(c, 5000, &res) != GILD_OK)
				break;
			i = gild_value_int(res.value);
			if (res.code == GILD_OK && i > lo && i < hi &&
			    ids[i] == res.id && !seen[i]) {
				seen[i] = true;
				polled++;
			}
			gild_result_clear(&res);
		}
		server_consumed(s, hi - lo);
	}
	CU_ASSERT_EQUAL(by_id, windows);
	CU_ASSERT_EQUAL(by_id + polled, N_CALLS);
	CU_ASSERT_EQUAL(gild_in_flight(c), 0);
	CU_ASSERT_EQUAL(gild_poll(c, 0, &res), GILD_NOT_FOUND);
	CU_ASSERT_EQUAL(gild_wait(c, ids[0], 0, &res), GILD_NOT_FOUND);
	CU_ASSERT_EQUAL(server_count(s, &s->echoes), N_CALLS);
	gild_close(c);
	server_stop(s);
}

static void
test_timeout_cancel(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_value *out = NULL;
	gild_error err = {0};
	gild_result res = {0};
	gild_call_id id;
	double t0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	/* The timeout goes to the server as the call's deadline; a server
	 * that never answers is given GILD_CALL_GRACE_MS more. */
	t0 = now_ms();
	CU_ASSERT_EQUAL(gild_call(c, "hang", NULL, NULL, 100, &out, &err),
	    GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(now_ms() - t0 >= 99 + GILD_CALL_GRACE_MS);
	CU_ASSERT_STRING_EQUAL(err.message, "no reply within 5100 ms");
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(server_count(s, &s->hangs), 1);
	pthread_mutex_lock(&s->mtx);
	CU_ASSERT_EQUAL(s->hang_timeout_ms, 100);
	pthread_mutex_unlock(&s->mtx);
	gild_error_clear(&err);

	/* gild_cancel asks the server and keeps the call in flight: its end
	 * comes back as usual (this server never sends one). */
	CU_ASSERT_EQUAL(gild_submit_timeout(c, "hang", NULL, NULL, 250, &id,
	    &err), GILD_OK);
	wait_count(s, &s->hangs, 2);
	pthread_mutex_lock(&s->mtx);
	CU_ASSERT_EQUAL(s->hang_timeout_ms, 250);
	pthread_mutex_unlock(&s->mtx);
	CU_ASSERT_EQUAL(gild_wait(c, id, 50, &res), GILD_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(gild_poll(c, 0, &res), GILD_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(gild_in_flight(c), 1);
	CU_ASSERT_EQUAL(gild_cancel(c, id, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_in_flight(c), 1);
	CU_ASSERT_EQUAL(gild_wait(c, id, 0, &res), GILD_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(gild_cancel(c, 999999, &err), GILD_NOT_FOUND);
	gild_error_clear(&err);

	/* Both Cancels reach the server (one from gild_call's timeout). */
	CU_ASSERT_EQUAL(wait_count(s, &s->cancels, 2), 2);
	CU_ASSERT_EQUAL(server_count(s, &s->hangs), 2);
	CU_ASSERT_EQUAL(gild_ping(c, 1000, &err), GILD_OK);
	gild_close(c);
	server_stop(s);
}

static void
test_connection_lost(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_value *out = NULL;
	gild_error err = {0};
	gild_result res = {0};
	gild_call_id id, id2;
	char want[128];
	int rc = GILD_UNAVAILABLE;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	snprintf(want, sizeof(want), "connection to %s lost", s->url);
	CU_ASSERT_EQUAL(gild_submit(c, "hang", NULL, NULL, &id, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_submit(c, "drop", NULL, NULL, &id2, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_wait(c, id, 2000, &res), GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(res.error.message, want);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(gild_wait(c, id2, 2000, &res), GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_UNAVAILABLE);
	gild_result_clear(&res);

	/* nng redials by itself. */
	for (int i = 0; i < 300 && rc == GILD_UNAVAILABLE; i++) {
		gild_error_clear(&err);
		rc = gild_call(c, "echo", NULL, NULL, 1000, &out, &err);
		if (rc == GILD_UNAVAILABLE)
			sleep_ms(10);
	}
	CU_ASSERT_EQUAL(rc, GILD_OK);
	gild_value_free(out);
	gild_error_clear(&err);
	gild_close(c);

	/* A server that goes away: calls fail, none hangs. */
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(gild_submit(c, "hang", NULL, NULL, &id, &err), GILD_OK);
	wait_count(s, &s->hangs, 2);
	server_stop(s);
	CU_ASSERT_EQUAL(gild_wait(c, id, 2000, &res), GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_UNAVAILABLE);
	gild_result_clear(&res);
	CU_ASSERT_EQUAL(gild_call(c, "echo", NULL, NULL, 1000, &out, &err),
	    GILD_UNAVAILABLE);
	gild_error_clear(&err);
	gild_close(c);
}

typedef struct worker_arg {
	gild_client *c;
	int base, ok;
} worker_arg;

static void *
caller(void *p)
{
	worker_arg *w = p;

	for (int i = 0; i < 200; i++) {
		gild_value *a = args1(gild_int(w->base + i)), *out = NULL;
		gild_error err = {0};

		if (gild_call(w->c, "echo", a, NULL, 5000, &out, &err) == GILD_OK &&
		    gild_value_int(out) == w->base + i)
			w->ok++;
		gild_value_free(a);
		gild_value_free(out);
		gild_error_clear(&err);
	}
	return NULL;
}

static void
test_threads_and_servers(void)
{
	server *s1 = server_start(1), *s2 = server_start(1);
	const char *urls[3];
	gild_client *c = NULL;
	gild_error err = {0};
	pthread_t t[4];
	worker_arg w[4];
	int ok = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	urls[0] = s1->url;
	urls[1] = "tcp://127.0.0.1:1"; /* unreachable: the others still serve */
	urls[2] = s2->url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 3, &err), GILD_OK);
	for (int i = 0; i < 4; i++) {
		w[i] = (worker_arg){c, i * 1000, 0};
		pthread_create(&t[i], NULL, caller, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	CU_ASSERT_EQUAL(ok, 800);
	CU_ASSERT_EQUAL(server_count(s1, &s1->echoes) +
	    server_count(s2, &s2->echoes), 800);
	CU_ASSERT(server_count(s1, &s1->echoes) >= 300);
	CU_ASSERT(server_count(s2, &s2->echoes) >= 300);
	gild_error_clear(&err);
	gild_close(c);
	server_stop(s1);
	server_stop(s2);
}

/* ---- streams ----------------------------------------------------------- */

static void
set_taken(server *s, int n)
{
	pthread_mutex_lock(&s->mtx);
	s->taken = n;
	pthread_mutex_unlock(&s->mtx);
}

/* count(50) through a window of 8: every chunk in order, several
 * StreamNexts, none asking for more than the client has room for, each sent
 * once half the window was free, the first while chunks were still held. */
static void
test_stream_count(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_stream *st = NULL;
	gild_value *args = args1(gild_int(50)), *v = NULL;
	gild_error err = {0};
	int in_order = 0, n_pulls;
	uint32_t lo = UINT32_MAX, hi = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count", args, NULL, 8, 3000,
	    &st, &err), GILD_OK);
	gild_value_free(args);
	CU_ASSERT_EQUAL(gild_stream_seq(st), 0);
	for (int i = 0; i < 50; i++) {
		int rc;

		/* Announced before the call: the pull that follows this pop
		 * is then judged against exactly what the client holds. */
		set_taken(s, i + 1);
		CU_ASSERT_EQUAL(gild_stream_seq(st), (uint64_t) i);
		rc = gild_stream_next(st, 2000, &v, &err);
		if (rc == GILD_OK && gild_value_int(v) == i)
			in_order++;
		gild_value_free(v);
		v = NULL;
		if (rc != GILD_OK)
			break;
		if (i == 0) {
			/* 4 more of the first reply are held: the non-blocking
			 * next takes one. */
			CU_ASSERT_EQUAL(gild_stream_next(st, 0, &v, &err), GILD_OK);
			CU_ASSERT_EQUAL(gild_value_int(v), 1);
			gild_value_free(v);
			v = NULL;
			i++;
			in_order++;
			set_taken(s, i + 1);
		}
		/* The server has judged the pull this take sent (if any)
		 * before the next take: it answers requests in order. */
		CU_ASSERT_EQUAL(gild_ping(c, 10000, &err), GILD_OK);
	}
	CU_ASSERT_EQUAL(in_order, 50);
	CU_ASSERT_EQUAL(gild_stream_next(st, 2000, &v, &err), GILD_STREAM_END);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(gild_stream_next(st, 0, &v, &err), GILD_STREAM_END);
	CU_ASSERT_EQUAL(gild_stream_seq(st), 50);
	CU_ASSERT_EQUAL(err.code, GILD_OK);
	gild_stream_close(st);

	pthread_mutex_lock(&s->mtx);
	n_pulls = s->n_pulls;
	for (int i = 0; i < n_pulls; i++) {
		lo = s->pulls[i] < lo ? s->pulls[i] : lo;
		hi = s->pulls[i] > hi ? s->pulls[i] : hi;
	}
	CU_ASSERT_EQUAL(s->over_window, 0);
	CU_ASSERT_EQUAL(s->stream_window, 8);
	CU_ASSERT_EQUAL(s->stream_timeout_ms, 3000);
	/* 5 came with the Call; after one was taken, 4 were held: max 4. */
	CU_ASSERT(n_pulls > 0 && s->pulls[0] == 4);
	pthread_mutex_unlock(&s->mtx);
	CU_ASSERT(n_pulls >= 9); /* 45 more chunks, at most 5 per reply */
	CU_ASSERT(lo >= 4);      /* asked only with half the window free */
	CU_ASSERT(hi <= 8);
	/* An ended stream is not cancelled. */
	CU_ASSERT_EQUAL(gild_ping(c, 1000, &err), GILD_OK);
	CU_ASSERT_EQUAL(server_count(s, &s->cancels), 0);
	gild_close(c);
	server_stop(s);
}

/* An error ends the stream after the chunks before it; an error reply to
 * the Call comes from the first next. */
static void
test_stream_errors(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_stream *st = NULL;
	gild_value *args = args1(gild_int(7)), *v = NULL;
	gild_error err = {0};
	int got = 0, rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count_fail", args, NULL, 4,
	    0, &st, &err), GILD_OK);
	gild_value_free(args);
	while ((rc = gild_stream_next(st, 2000, &v, &err)) == GILD_OK) {
		if (gild_value_int(v) == got)
			got++;
		gild_value_free(v);
		v = NULL;
	}
	CU_ASSERT_EQUAL(got, 7);
	CU_ASSERT_EQUAL(rc, GILD_PYTHON_ERROR);
	CU_ASSERT_EQUAL(err.code, GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.message, "boom");
	CU_ASSERT_STRING_EQUAL(err.python_type, "ValueError");
	CU_ASSERT_STRING_EQUAL(err.traceback,
	    "Traceback (most recent call last):\nValueError: boom\n");
	gild_error_clear(&err);
	/* It stays ended with the same error. */
	CU_ASSERT_EQUAL(gild_stream_next(st, 0, &v, &err), GILD_PYTHON_ERROR);
	CU_ASSERT_STRING_EQUAL(err.message, "boom");
	CU_ASSERT_EQUAL(gild_stream_seq(st), 7);
	gild_error_clear(&err);
	gild_stream_close(st);
	pthread_mutex_lock(&s->mtx);
	CU_ASSERT_EQUAL(s->stream_window, 4);
	CU_ASSERT_EQUAL(s->stream_timeout_ms, 0);
	pthread_mutex_unlock(&s->mtx);

	/* The stream fails before it starts; window 0 is sent as 64. */
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "nope", NULL, NULL, 0, 0,
	    &st, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_stream_next(st, 2000, &v, &err), GILD_NOT_FOUND);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_STRING_EQUAL(err.message, "no generator function");
	CU_ASSERT_EQUAL(gild_stream_seq(st), 0);
	gild_error_clear(&err);
	gild_stream_close(st);
	pthread_mutex_lock(&s->mtx);
	CU_ASSERT_EQUAL(s->stream_window, 64);
	pthread_mutex_unlock(&s->mtx);

	/* Chunks out of order are the server's bug: INTERNAL after the
	 * good ones, and the stream is cancelled on close. */
	args = args1(gild_int(20));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count_gap", args, NULL, 8,
	    0, &st, &err), GILD_OK);
	gild_value_free(args);
	got = 0;
	while ((rc = gild_stream_next(st, 2000, &v, &err)) == GILD_OK) {
		if (gild_value_int(v) == got)
			got++;
		gild_value_free(v);
		v = NULL;
	}
	CU_ASSERT_EQUAL(got, 5);
	CU_ASSERT_EQUAL(rc, GILD_INTERNAL);
	CU_ASSERT_STRING_EQUAL(err.message, "stream chunk 6 came from the "
	    "server where chunk 5 was due");
	gild_error_clear(&err);
	gild_stream_close(st);
	CU_ASSERT_EQUAL(wait_count(s, &s->cancels, 1), 1);

	/* Bad arguments never reach the server. */
	CU_ASSERT_EQUAL(gild_stream_open(c, "count", NULL, NULL, 4097, 0, &st,
	    &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message,
	    "stream window must be 0 to 4096, not 4097");
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_EQUAL(gild_stream_open(c, "count", NULL, NULL, -1, 0, &st,
	    &err), GILD_INVALID_ARGUMENT);
	args = gild_map();
	CU_ASSERT_EQUAL(gild_stream_open(c, "count", args, NULL, 4, 0, &st,
	    &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err.message,
	    "positional arguments must be a list or tuple");
	gild_value_free(args);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_stream_next(NULL, 0, &v, &err),
	    GILD_INVALID_ARGUMENT);
	gild_error_clear(&err);
	gild_stream_close(NULL);
	CU_ASSERT_EQUAL(gild_in_flight(c), 0);
	CU_ASSERT_EQUAL(gild_ping(c, 1000, &err), GILD_OK);
	CU_ASSERT_EQUAL(server_count(s, &s->cancels), 1);
	gild_close(c);
	server_stop(s);
}

/* The non-blocking next, a bounded wait, and close before the end. */
static void
test_stream_wait_close(void)
{
	server *s = server_start(1);
	gild_client *c;
	gild_stream *st = NULL, *st2 = NULL;
	gild_value *args, *v = NULL;
	gild_error err = {0};
	double t0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	c = connect_one(s->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "stall", NULL, NULL, 4, 0,
	    &st, &err), GILD_OK);
	/* "stall" never sends a chunk: with 0, next does not wait for one,
	 * where -1 would wait for ever. The bound is a hang's, not a
	 * measure of speed. */
	t0 = now_ms();
	CU_ASSERT_EQUAL(gild_stream_next(st, 0, &v, &err),
	    GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(now_ms() - t0 < GILD_CALL_GRACE_MS);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(err.code, GILD_OK); /* only no chunk yet */
	t0 = now_ms();
	CU_ASSERT_EQUAL(gild_stream_next(st, 100, &v, &err),
	    GILD_DEADLINE_EXCEEDED);
	CU_ASSERT(now_ms() - t0 >= 99);
	CU_ASSERT_EQUAL(gild_stream_seq(st), 0);
	CU_ASSERT_EQUAL(wait_count(s, &s->stalls, 1), 1);
	gild_stream_close(st);
	CU_ASSERT_EQUAL(wait_count(s, &s->cancels, 1), 1);

	/* Closed half way: cancelled, and its chunks freed. */
	args = args1(gild_int(100));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count", args, NULL, 4, 0,
	    &st, &err), GILD_OK);
	gild_value_free(args);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(gild_stream_next(st, 2000, &v, &err), GILD_OK);
		CU_ASSERT_EQUAL(gild_value_int(v), i);
		gild_value_free(v);
		v = NULL;
	}
	CU_ASSERT_EQUAL(gild_stream_seq(st), 3);
	gild_stream_close(st);
	CU_ASSERT_EQUAL(wait_count(s, &s->cancels, 2), 2);

	/* A stream left open at gild_close is cut off, still closable. */
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "stall", NULL, NULL, 0, 0,
	    &st2, &err), GILD_OK);
	args = args1(gild_int(3));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count", args, NULL, 4, 0,
	    &st, &err), GILD_OK);
	gild_value_free(args);
	CU_ASSERT_EQUAL(gild_stream_next(st, 2000, &v, &err), GILD_OK);
	gild_value_free(v);
	v = NULL;
	CU_ASSERT_EQUAL(gild_in_flight(c), 0);
	gild_close(c);
	CU_ASSERT_EQUAL(gild_stream_next(st2, 0, &v, &err), GILD_UNAVAILABLE);
	gild_error_clear(&err);
	gild_stream_close(st2);
	gild_stream_close(st);
	server_stop(s);
}

/* A lost connection ends the stream with UNAVAILABLE after the chunks it
 * had; with two servers, each stream's StreamNexts go to its own. */
static void
test_stream_connections(void)
{
	server *s1 = server_start(1), *s2 = server_start(1);
	const char *urls[2];
	gild_client *c = NULL;
	gild_stream *st[2] = {NULL, NULL};
	gild_value *args, *v = NULL;
	gild_error err = {0};
	char want[128];
	int got = 0, rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	c = connect_one(s1->url);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	snprintf(want, sizeof(want), "connection to %s lost", s1->url);
	args = args1(gild_int(20));
	CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count_drop", args, NULL, 8,
	    0, &st[0], &err), GILD_OK);
	while ((rc = gild_stream_next(st[0], 2000, &v, &err)) == GILD_OK) {
		if (gild_value_int(v) == got)
			got++;
		gild_value_free(v);
		v = NULL;
	}
	CU_ASSERT_EQUAL(got, 5);
	CU_ASSERT_EQUAL(rc, GILD_UNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(err.message, want);
	gild_error_clear(&err);
	gild_stream_close(st[0]);
	gild_close(c);
	CU_ASSERT_EQUAL(server_count(s1, &s1->cancels), 0);

	urls[0] = s1->url;
	urls[1] = s2->url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&c, urls, 2, &err), GILD_OK);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(gild_stream_open(c, "count", args, NULL, 2,
		    0, &st[i], &err), GILD_OK);
	gild_value_free(args);
	got = 0;
	for (int k = 0; k < 20; k++) {
		for (int i = 0; i < 2; i++) {
			if (gild_stream_next(st[i], 2000, &v, &err) == GILD_OK &&
			    gild_value_int(v) == k)
				got++;
			gild_value_free(v);
			v = NULL;
		}
	}
	CU_ASSERT_EQUAL(got, 40);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(gild_stream_next(st[i], 2000, &v, &err),
		    GILD_STREAM_END);
		gild_stream_close(st[i]);
	}
	gild_error_clear(&err);
	/* One stream on each server (s1 had count_drop's): round robin. */
	CU_ASSERT_EQUAL(server_count(s1, &s1->n_streams), 2);
	CU_ASSERT_EQUAL(server_count(s2, &s2->n_streams), 1);
	gild_close(c);
	server_stop(s1);
	server_stop(s2);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("client", NULL, NULL);
	CU_add_test(s, "unreachable URL", test_unreachable);
	CU_add_test(s, "calls, errors, ping, status", test_calls);
	CU_add_test(s, "2000 in flight, answered in reverse",
	    test_many_in_flight);
	CU_add_test(s, "timeouts and cancel", test_timeout_cancel);
	CU_add_test(s, "lost connections", test_connection_lost);
	CU_add_test(s, "threads and several servers", test_threads_and_servers);
	CU_add_test(s, "stream: chunks in order, bounded pulls",
	    test_stream_count);
	CU_add_test(s, "stream: errors", test_stream_errors);
	CU_add_test(s, "stream: waits and close", test_stream_wait_close);
	CU_add_test(s, "stream: connections", test_stream_connections);
	return test_run_all();
}
