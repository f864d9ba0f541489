/* loadgen: drives one gild server through libgild and measures call
 * latency and throughput, closed loop (K calls in flight), open loop (R
 * calls/s on a fixed schedule) or streams. Prints one JSON object on stdout
 * (bench/suite.py reads it); people read stderr.
 *
 *   build/bench/loadgen --url URL --fn NAME [--arg-int N | --arg-bytes N]
 *       (--closed K | --rate R) [--calls N] [--seconds S] [--warmup N]
 *       [--stream] [--window W] [--max-in-flight M] [--batch B]
 *
 * Exit 0 when every call succeeded, 1 when one failed or none completed,
 * 2 on a usage error. */
#include "gild.h"
#include "bench.h"
#include "hist.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* How long one reply may take before the run is called broken. */
#define REPLY_TIMEOUT_MS 60000
/* Open loop: a call sent this much after its scheduled time is late. */
#define LATE_NS 1000000
/* Open loop: how long replies may still come after the last send. */
#define DRAIN_NS (30 * INT64_C(1000000000))

typedef struct opts {
	const char *url, *fn;
	bool has_int;
	int64_t arg_int;
	long arg_bytes; /* -1: no bytes argument */
	int k;          /* closed loop / stream: calls in flight; 0: open */
	double rate;    /* open loop: calls per second; 0: closed */
	long calls;     /* open loop: LONG_MAX unless given */
	double seconds;
	long warmup;    /* -1: the default for the mode */
	bool stream;
	int window;     /* stream window; 0: libgild's default */
	long max_in_flight;
	int batch;      /* closed loop: calls per message (1: one each) */
	bool shm;       /* gild_set_shm: shared memory with a local server */
} opts;

/* What a run measured. */
typedef struct tally {
	hist *h;
	long calls;       /* succeeded and measured */
	bench_errors err; /* failed, wrong result, or never answered */
	long sent, late;
	long chunks;      /* streams: chunks received in measured streams */
	double seconds;
} tally;

/* The positional arguments the options ask for (a new list), or NULL for
 * none; *err set when out of memory. */
static gild_value *
make_args(const opts *o, bool *err)
{
	gild_value *args, *v = NULL;
	uint8_t *buf = NULL;

	*err = false;
	if (!o->has_int && o->arg_bytes < 0)
		return NULL;
	if ((args = gild_list()) == NULL)
		goto fail;
	if (o->has_int) {
		v = gild_int(o->arg_int);
	} else {
		if ((buf = malloc((size_t) o->arg_bytes + 1)) == NULL)
			goto fail;
		for (size_t i = 0; i < (size_t) o->arg_bytes; i++)
			buf[i] = bench_pattern(i);
		v = gild_bytes(buf, (size_t) o->arg_bytes);
		free(buf);
	}
	if (v == NULL || gild_list_append(args, v) != GILD_OK)
		goto fail;
	return args;
fail:
	gild_value_free(v);
	gild_value_free(args);
	*err = true;
	return NULL;
}

/* Whether v is what o->fn returns for the arguments sent; the functions of
 * bench/apps/bench_app.py are checked, any other is taken as it comes.
 * Writes why not to why. */
static bool
result_ok(const opts *o, const gild_value *v, char *why, size_t len)
{
	if (strcmp(o->fn, "noop") == 0 && gild_value_kind(v) != GILD_NULL) {
		snprintf(why, len, "noop returned a value of kind %d",
		    (int) gild_value_kind(v));
		return false;
	}
	if (strcmp(o->fn, "echo") != 0)
		return true;
	if (o->arg_bytes >= 0) {
		size_t n = 0, want = (size_t) o->arg_bytes;
		const uint8_t *p = gild_value_kind(v) == GILD_BYTES ?
		    gild_value_bytes(v, &n) : NULL;

		if (p == NULL || n != want || (n > 0 &&
		    (p[0] != bench_pattern(0) ||
			p[n - 1] != bench_pattern(n - 1)))) {
			snprintf(why, len, "echo returned %zu bytes (kind %d) "
			    "not the %zu sent", n, (int) gild_value_kind(v), want);
			return false;
		}
	} else if (o->has_int && (gild_value_kind(v) != GILD_INT ||
	    gild_value_int(v) != o->arg_int)) {
		snprintf(why, len, "echo returned something else than %" PRId64,
		    o->arg_int);
		return false;
	}
	return true;
}

/* Counts a finished call's outcome: true when it succeeded with the right
 * result. */
static bool
judge(const opts *o, const gild_result *res, tally *t)
{
	char why[256];

	if (res->code != GILD_OK) {
		bench_fail(&t->err, "call failed: %s: %s",
		    gild_code_name(res->code),
		    res->error.message ? res->error.message : "");
		return false;
	}
	if (!result_ok(o, res->value, why, sizeof(why))) {
		bench_fail(&t->err, "%s", why);
		return false;
	}
	return true;
}

/* ---- calls in flight: id -> time, open addressing ---------------------- */

/* Where a call is, as the tables sees it: sent (t: when it was sent or
 * meant to be), or answered before its sender filed it (t: when the reply
 * came; the open loop's receiver can see a reply before the sender has
 * written down the id gild_submit gave it). */
enum slot_state { SLOT_FREE, SLOT_SENT, SLOT_ANSWERED };

typedef struct slot {
	uint64_t id;
	int64_t t;
	enum slot_state state;
	bool ok; /* SLOT_ANSWERED: the call succeeded */
} slot;

typedef struct idmap {
	slot *slots;
	size_t mask;
} idmap;

/* A table for up to n entries at once: 0 or -ENOMEM. */
static int
idmap_init(idmap *m, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	if ((m->slots = calloc(cap, sizeof(*m->slots))) == NULL)
		return -ENOMEM;
	m->mask = cap - 1;
	return 0;
}

static void
idmap_fini(idmap *m)
{
	free(m->slots);
	m->slots = NULL;
}

static size_t
idmap_home(const idmap *m, uint64_t id)
{
	return (size_t) ((id * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & m->mask;
}

static slot *
idmap_find(idmap *m, uint64_t id)
{
	for (size_t i = idmap_home(m, id);; i = (i + 1) & m->mask) {
		if (m->slots[i].state == SLOT_FREE)
			return NULL;
		if (m->slots[i].id == id)
			return &m->slots[i];
	}
}

/* Files id; the table must have room (idmap_init's n). */
static void
idmap_put(idmap *m, uint64_t id, int64_t t, enum slot_state st, bool ok)
{
	size_t i = idmap_home(m, id);

	while (m->slots[i].state != SLOT_FREE)
		i = (i + 1) & m->mask;
	m->slots[i] = (slot){.id = id, .t = t, .state = st, .ok = ok};
}

/* Removes s, shifting back the entries that probed past it. */
static void
idmap_del(idmap *m, slot *s)
{
	size_t i = (size_t) (s - m->slots), j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & m->mask;
		if (m->slots[j].state == SLOT_FREE)
			break;
		home = idmap_home(m, m->slots[j].id);
		/* Leave it when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i].state = SLOT_FREE;
}

/* ---- closed loop ------------------------------------------------------- */

/* The closed loop's state. */
typedef struct closed_run {
	gild_client *c;
	const opts *o;
	const gild_value *args;
	tally *t;
	idmap m;
	long sent, done, out, calls;
	int64_t t0, end_ns;
	bool stop;
	int rc;
} closed_run;

/* Sends up to n more calls (in batches of --batch). Returns false when one
 * could not be sent. */
static bool
closed_send(closed_run *r, long n)
{
	enum { MAXB = 256 };
	gild_call_spec specs[MAXB];
	gild_call_id ids[MAXB];
	long b = r->o->batch > 1 ? r->o->batch : 1;

	for (int i = 0; i < MAXB; i++)
		specs[i] = (gild_call_spec){r->o->fn, r->args, NULL, 0};
	while (n > 0) {
		size_t k = (size_t) (n < b ? n : b);
		int64_t ts = bench_now_ns();
		gild_error err = {0};
		int rc = k == 1 ? gild_submit(r->c, r->o->fn, r->args, NULL,
				      &ids[0], &err)
				: gild_submit_many(r->c, specs, k, ids, &err);

		if (rc != GILD_OK) {
			bench_fail(&r->t->err, "cannot send: %s",
			    err.message ? err.message : gild_code_name(err.code));
			gild_error_clear(&err);
			return false;
		}
		for (size_t i = 0; i < k; i++)
			idmap_put(&r->m, ids[i], ts, SLOT_SENT, false);
		r->sent += (long) k;
		r->out += (long) k;
		n -= (long) k;
	}
	return true;
}

/* Files one reply. */
static void
closed_take(closed_run *r, gild_result *res)
{
	int64_t now = bench_now_ns();
	slot *s;

	r->out--;
	if ((s = idmap_find(&r->m, res->id)) != NULL) {
		int64_t ts = s->t;

		idmap_del(&r->m, s);
		if (!judge(r->o, res, r->t)) {
			if (r->t->h == NULL)
				r->stop = true, r->rc = -1;
		} else if (!r->stop && r->t->h != NULL) {
			hist_record(r->t->h, (uint64_t) (now - ts));
			r->t->calls++;
		}
	}
	gild_result_clear(res);
	if (!r->stop && (++r->done >= r->calls ||
	    (r->end_ns > 0 && now - r->t0 >= r->end_ns))) {
		r->stop = true;
		r->t->seconds = (double) (now - r->t0) / 1e9;
	}
}

/* Keeps `depth` calls in flight until `calls` have finished or `seconds`
 * have passed (seconds <= 0: no time bound). With --batch B, calls go out B
 * to a message: the replies that came together are refilled together. With
 * t->h set, each call finished before the stop is judged and timed into t;
 * calls still out at the stop are collected and only their failures
 * counted. Without t->h (warm-up), any failure ends it. Returns 0, or -1
 * when the server stopped answering or a call could not be sent (in
 * t->err). */
static int
closed_loop(gild_client *c, const opts *o, const gild_value *args,
    int depth, long calls, double seconds, tally *t)
{
	closed_run r = {.c = c, .o = o, .args = args, .t = t, .calls = calls,
	    .end_ns = (int64_t) (seconds * 1e9)};

	if (idmap_init(&r.m, (size_t) depth) != 0) {
		bench_fail(&t->err, "out of memory");
		return -1;
	}
	r.t0 = bench_now_ns();
	while (!r.stop || r.out > 0) {
		gild_result res = {0};
		long room = depth - r.out;

		if (calls - r.sent < room)
			room = calls - r.sent;
		if (!r.stop && room > 0 && !closed_send(&r, room)) {
			r.stop = true;
			r.rc = -1;
		}
		if (r.out == 0)
			break;
		if (gild_poll(c, REPLY_TIMEOUT_MS, &res) != GILD_OK) {
			bench_fail(&t->err, "no reply within %d ms",
			    REPLY_TIMEOUT_MS);
			t->err.count += r.out - 1;
			r.rc = -1;
			break;
		}
		closed_take(&r, &res);
		/* With batches, take what came with it before refilling. */
		while (o->batch > 1 && r.out > 0 && gild_poll(c, 0, &res) ==
		    GILD_OK)
			closed_take(&r, &res);
	}
	if (t->seconds == 0)
		t->seconds = (double) (bench_now_ns() - r.t0) / 1e9;
	t->sent += r.sent;
	idmap_fini(&r.m);
	return r.rc;
}

/* ---- open loop --------------------------------------------------------- */

/* The sender (main thread) and the receiver share this, under mtx. */
typedef struct open_run {
	gild_client *c;
	const opts *o;
	tally *t;
	idmap m;
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* sent, received or sender_done changed */
	long sent, received;
	bool sender_done;
	int64_t t0, last_reply, drain_end;
} open_run;

/* A call with its scheduled time and its reply time both known. */
static void
open_finish(open_run *r, int64_t intended, int64_t replied, bool ok)
{
	if (ok) {
		hist_record(r->t->h, (uint64_t) (replied > intended ?
		    replied - intended : 0));
		r->t->calls++;
	}
	if (replied > r->last_reply)
		r->last_reply = replied;
}

/* The receiver: takes every reply as it comes and times it from the
 * moment its call was scheduled, until the sender is done and every call
 * has been answered (or DRAIN_NS has passed since). */
static void *
open_receiver(void *arg)
{
	open_run *r = arg;

	for (;;) {
		gild_result res = {0};
		int rc = gild_poll(r->c, 100, &res);

		if (rc == GILD_OK) {
			int64_t now = bench_now_ns();
			slot *s;
			bool ok;

			pthread_mutex_lock(&r->mtx);
			ok = judge(r->o, &res, r->t);
			r->received++;
			if ((s = idmap_find(&r->m, res.id)) != NULL) {
				open_finish(r, s->t, now, ok);
				idmap_del(&r->m, s);
			} else {
				idmap_put(&r->m, res.id, now, SLOT_ANSWERED, ok);
			}
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mtx);
			gild_result_clear(&res);
			continue;
		}
		pthread_mutex_lock(&r->mtx);
		if (r->sender_done && r->received >= r->sent) {
			pthread_mutex_unlock(&r->mtx);
			break;
		}
		if (r->sender_done && bench_now_ns() >= r->drain_end) {
			long lost = r->sent - r->received;

			bench_fail(&r->t->err, "%ld calls never answered",
			    lost);
			r->t->err.count += lost - 1;
			pthread_mutex_unlock(&r->mtx);
			break;
		}
		/* Nothing in flight: sleep until the sender sends. */
		while (rc == GILD_NOT_FOUND && !r->sender_done &&
		    r->received >= r->sent)
			pthread_cond_wait(&r->cv, &r->mtx);
		pthread_mutex_unlock(&r->mtx);
	}
	return NULL;
}

/* Sleeps until the CLOCK_MONOTONIC time t (ns). */
static void
sleep_until_ns(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/* Sends calls at o->rate per second for o->seconds (at most o->calls),
 * call i at t0 + i / rate whatever happened to the others, with at most
 * o->max_in_flight unanswered; each call's latency runs from its scheduled
 * time. Returns 0 or -1 (a send failed: the run stops there). */
static int
open_loop(gild_client *c, const opts *o, const gild_value *args, tally *t)
{
	open_run r = {.c = c, .o = o, .t = t};
	pthread_t rx;
	int64_t span = (int64_t) (o->seconds * 1e9), end;
	int rc = 0;

	if (idmap_init(&r.m, (size_t) o->max_in_flight + 64) != 0) {
		bench_fail(&t->err, "out of memory");
		return -1;
	}
	pthread_mutex_init(&r.mtx, NULL);
	pthread_cond_init(&r.cv, NULL);
	/* Wake-ups on time: the default 50 us timer slack would be noise. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	r.t0 = bench_now_ns() + 1000000;
	if (pthread_create(&rx, NULL, open_receiver, &r) != 0) {
		bench_fail(&t->err, "cannot start the receiver thread");
		idmap_fini(&r.m);
		return -1;
	}
	for (long i = 0; i < o->calls; i++) {
		int64_t due = r.t0 + (int64_t) ((double) i * 1e9 / o->rate), sent;
		gild_error err = {0};
		gild_call_id id;
		slot *s;

		if (due - r.t0 >= span)
			break;
		if (bench_now_ns() < due)
			sleep_until_ns(due);
		pthread_mutex_lock(&r.mtx);
		while (r.sent - r.received >= o->max_in_flight)
			pthread_cond_wait(&r.cv, &r.mtx);
		pthread_mutex_unlock(&r.mtx);
		if (gild_submit(c, o->fn, args, NULL, &id, &err) != GILD_OK) {
			pthread_mutex_lock(&r.mtx);
			bench_fail(&t->err, "cannot send: %s", err.message ?
			    err.message : gild_code_name(err.code));
			pthread_mutex_unlock(&r.mtx);
			gild_error_clear(&err);
			rc = -1;
			break;
		}
		sent = bench_now_ns();
		pthread_mutex_lock(&r.mtx);
		r.sent++;
		if (sent - due > LATE_NS)
			t->late++;
		if ((s = idmap_find(&r.m, id)) != NULL) { /* answered already */
			open_finish(&r, due, s->t, s->ok);
			idmap_del(&r.m, s);
		} else {
			idmap_put(&r.m, id, due, SLOT_SENT, false);
		}
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mtx);
	}
	end = bench_now_ns();
	pthread_mutex_lock(&r.mtx);
	r.sender_done = true;
	r.drain_end = end + DRAIN_NS;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mtx);
	pthread_join(rx, NULL);
	t->sent = r.sent;
	/* From the first scheduled send to the last reply (or the last send,
	 * when none came). */
	t->seconds = (double) ((r.last_reply > end ? r.last_reply : end) - r.t0) /
	    1e9;
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mtx);
	idmap_fini(&r.m);
	return rc;
}

/* ---- streams ----------------------------------------------------------- */

/* K threads each open one stream after another on the shared client. */
typedef struct stream_run {
	gild_client *c;
	const opts *o;
	const gild_value *args;
	pthread_mutex_t mtx; /* over started, t's counts and stop */
	long started, limit;
	int64_t t0, end_ns;
	bool stop, measure;
	tally *t;
} stream_run;

typedef struct stream_worker {
	stream_run *r;
	hist *h; /* this thread's stream latencies */
	pthread_t th;
	bool started;
} stream_worker;

/* Runs one stream to its end. Returns the chunks it gave, or -1 (failure
 * counted in r->t, under r->mtx). */
static long
one_stream(stream_run *r)
{
	const opts *o = r->o;
	gild_stream *s = NULL;
	gild_error err = {0};
	gild_value *v = NULL;
	long n = 0;
	int rc;

	if ((rc = gild_stream_open(r->c, o->fn, r->args, NULL, o->window, 0, &s,
	    &err)) == GILD_OK) {
		while ((rc = gild_stream_next(s, REPLY_TIMEOUT_MS, &v, &err)) ==
		    GILD_OK) {
			bool bad = strcmp(o->fn, "chunks") == 0 &&
			    (gild_value_kind(v) != GILD_INT ||
				gild_value_int(v) != n);

			gild_value_free(v);
			if (bad) {
				err.code = GILD_INTERNAL;
				err.message = strdup("chunk out of order");
				rc = GILD_INTERNAL;
				break;
			}
			n++;
		}
	}
	gild_stream_close(s);
	if (rc == GILD_STREAM_END && strcmp(o->fn, "chunks") == 0 &&
	    n != o->arg_int) {
		rc = GILD_INTERNAL;
		err.code = rc;
		err.message = strdup("stream ended early");
	}
	if (rc != GILD_STREAM_END) {
		pthread_mutex_lock(&r->mtx);
		bench_fail(&r->t->err, "stream failed after %ld chunks: %s: %s",
		    n, gild_code_name(rc), err.message ? err.message : "");
		pthread_mutex_unlock(&r->mtx);
		gild_error_clear(&err);
		return -1;
	}
	gild_error_clear(&err);
	return n;
}

static void *
stream_thread(void *arg)
{
	stream_worker *w = arg;
	stream_run *r = w->r;

	for (;;) {
		int64_t ts, now;
		long n;

		pthread_mutex_lock(&r->mtx);
		if (r->stop || r->started >= r->limit) {
			pthread_mutex_unlock(&r->mtx);
			break;
		}
		r->started++;
		pthread_mutex_unlock(&r->mtx);
		ts = bench_now_ns();
		n = one_stream(r);
		now = bench_now_ns();
		pthread_mutex_lock(&r->mtx);
		if (n < 0 && !r->measure)
			r->stop = true;
		if (n >= 0 && r->measure && !r->stop) {
			hist_record(w->h, (uint64_t) (now - ts));
			r->t->calls++;
			r->t->chunks += n;
		}
		if (r->end_ns > 0 && now - r->t0 >= r->end_ns && !r->stop) {
			r->stop = true;
			r->t->seconds = (double) (now - r->t0) / 1e9;
		}
		pthread_mutex_unlock(&r->mtx);
	}
	return NULL;
}

/* Runs streams on o->k threads until `limit` have been opened or
 * `seconds` have passed (<= 0: no bound); measured into t when `measure`.
 * Returns 0, or -1 when a thread or memory could not be had. */
static int
stream_loop(gild_client *c, const opts *o, const gild_value *args,
    long limit, double seconds, bool measure, tally *t)
{
	stream_run r = {.c = c, .o = o, .args = args, .limit = limit,
	    .end_ns = (int64_t) (seconds * 1e9), .measure = measure, .t = t};
	stream_worker *w = calloc((size_t) o->k, sizeof(*w));
	int rc = 0;

	if (w == NULL) {
		bench_fail(&t->err, "out of memory");
		return -1;
	}
	pthread_mutex_init(&r.mtx, NULL);
	r.t0 = bench_now_ns();
	for (int i = 0; i < o->k; i++) {
		w[i].r = &r;
		if (hist_init(&w[i].h) != 0 ||
		    pthread_create(&w[i].th, NULL, stream_thread, &w[i]) != 0) {
			pthread_mutex_lock(&r.mtx);
			r.stop = true;
			bench_fail(&t->err, "cannot start stream thread %d", i);
			pthread_mutex_unlock(&r.mtx);
			rc = -1;
			break;
		}
		w[i].started = true;
	}
	for (int i = 0; i < o->k; i++) {
		if (w[i].started)
			pthread_join(w[i].th, NULL);
		if (w[i].h != NULL && t->h != NULL)
			hist_merge(t->h, w[i].h);
		hist_fini(w[i].h);
	}
	if (t->seconds == 0)
		t->seconds = (double) (bench_now_ns() - r.t0) / 1e9;
	t->sent += r.started;
	pthread_mutex_destroy(&r.mtx);
	free(w);
	return rc;
}

/* Unmeasured calls first (o->warmup of them, K in flight; 16 for the
 * open loop); any failure (a missing function, a bad argument) ends the
 * run before it starts. Returns 0, or -1 with the failure counted in t. */
static int
warm_up(gild_client *c, const opts *o, const gild_value *args, tally *t)
{
	tally warm = {0};
	int rc = 0;

	if (o->warmup == 0)
		return 0;
	if (o->stream)
		rc = stream_loop(c, o, args, o->warmup, 0, false, &warm);
	else
		rc = closed_loop(c, o, args, o->k > 0 ? o->k : 16, o->warmup, 0,
		    &warm);
	if (rc == 0 && warm.err.count == 0)
		return 0;
	bench_fail(&t->err, "warm-up failed: %s", warm.err.first);
	t->err.count = warm.err.count > 0 ? warm.err.count : 1;
	return -1;
}

/* ---- output ------------------------------------------------------------ */

/* Prints the one JSON object, one line, on stdout: the options, the counts
 * and hist_json's latencies; null for what the mode does not have. Returns
 * 0 or -1. */
static int
report(const opts *o, const tally *t)
{
	const char *mode = o->stream ? "stream" : o->rate > 0 ? "open" :
	    "closed";
	double per_s = t->seconds > 0 ? (double) t->calls / t->seconds : 0;
	double ways = strcmp(o->fn, "echo") == 0 ? 2 : 1;
	double bytes_per_s = o->arg_bytes > 0 ?
	    (double) o->arg_bytes * ways * per_s : 0;
	double chunks_per_s = t->seconds > 0 ?
	    (double) t->chunks / t->seconds : 0;
	json_t *obj = json_object();
	int bad = 0;

	/* json_object_set_new takes the value even when it fails (or gets
	 * NULL, or obj is NULL): nothing leaks on the way. */
	bad |= json_object_set_new(obj, "tool", json_string("loadgen"));
	bad |= json_object_set_new(obj, "mode", json_string(mode));
	bad |= json_object_set_new(obj, "url", json_string(o->url));
	bad |= json_object_set_new(obj, "fn", json_string(o->fn));
	bad |= json_object_set_new(obj, "k", o->rate == 0 ?
	    json_integer(o->k) : json_null());
	bad |= json_object_set_new(obj, "batch", json_integer(o->batch));
	bad |= json_object_set_new(obj, "shm", json_boolean(o->shm));
	bad |= json_object_set_new(obj, "rate", o->rate > 0 ?
	    bench_real_json(o->rate) : json_null());
	bad |= json_object_set_new(obj, "arg_bytes",
	    json_integer(o->arg_bytes > 0 ? o->arg_bytes : 0));
	bad |= json_object_set_new(obj, "arg_int", o->has_int ?
	    json_integer(o->arg_int) : json_null());
	bad |= json_object_set_new(obj, "calls", json_integer(t->calls));
	bad |= json_object_set_new(obj, "errors", json_integer(t->err.count));
	bad |= json_object_set_new(obj, "sent", json_integer(t->sent));
	bad |= json_object_set_new(obj, "late", json_integer(t->late));
	if (o->rate > 0) {
		bad |= json_object_set_new(obj, "late_after_us",
		    json_integer(LATE_NS / 1000));
		bad |= json_object_set_new(obj, "max_in_flight",
		    json_integer(o->max_in_flight));
	}
	bad |= json_object_set_new(obj, "seconds", bench_real_json(t->seconds));
	bad |= json_object_set_new(obj, "calls_per_s", bench_real_json(per_s));
	bad |= json_object_set_new(obj, "bytes_per_s",
	    bench_real_json(bytes_per_s));
	bad |= json_object_set_new(obj, "chunks_per_s", o->stream ?
	    bench_real_json(chunks_per_s) : json_null());
	if (o->stream) {
		bad |= json_object_set_new(obj, "chunks",
		    json_integer(t->chunks));
		bad |= json_object_set_new(obj, "window", json_integer(
		    o->window > 0 ? o->window : 64)); /* libgild's default */
	}
	bad |= json_object_update_new(obj, hist_json(t->h));
	return bench_print_json(stdout, obj, bad);
}

/* ---- closing ----------------------------------------------------------- */

/* gild_close on a thread, waited for at most ms: nng 1.5.2 can hang in
 * nng_close when a reply lands meanwhile (nng issue #1543), and a bench
 * must not. Returns 0 when it closed in time. */
typedef struct closer {
	gild_client *c;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	bool done;
} closer;

static void *
close_thread(void *arg)
{
	closer *k = arg;

	gild_close(k->c);
	pthread_mutex_lock(&k->mtx);
	k->done = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mtx);
	return NULL;
}

static int
close_bounded(gild_client *c, int ms)
{
	static closer k = {.mtx = PTHREAD_MUTEX_INITIALIZER,
	    .cv = PTHREAD_COND_INITIALIZER};
	struct timespec ts;
	pthread_t th;
	bool done;

	k.c = c;
	if (pthread_create(&th, NULL, close_thread, &k) != 0) {
		gild_close(c);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long) (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&k.mtx);
	while (!k.done && pthread_cond_timedwait(&k.cv, &k.mtx, &ts) == 0)
		;
	done = k.done;
	pthread_mutex_unlock(&k.mtx);
	if (!done)
		return -1; /* k lives on (static) for the thread left behind */
	pthread_join(th, NULL);
	return 0;
}

/* ---- options ----------------------------------------------------------- */

static const char usage_text[] =
    "usage: loadgen --url URL --fn NAME [--arg-int N | --arg-bytes N]\n"
    "           (--closed K | --rate R) [--calls N] [--seconds S]\n"
    "           [--warmup N] [--stream] [--window W] [--max-in-flight M]\n"
    "           [--batch B] [--shm]\n"
    "  --closed K        closed loop: K calls in flight (streams: K threads)\n"
    "  --rate R          open loop: R calls/s on a fixed schedule; latency\n"
    "                    counts from each call's scheduled time\n"
    "  --calls N         at most N measured calls (default 100000; open\n"
    "                    loop: no bound but --seconds)\n"
    "  --seconds S       at most S seconds of measurement (default 5)\n"
    "  --warmup N        unmeasured calls first (default 100; streams 0)\n"
    "  --arg-int N       call fn(N)\n"
    "  --arg-bytes N     call fn(b'...' of N bytes); echo results checked\n"
    "  --stream          open fn(N) as a stream (needs --arg-int) and count\n"
    "                    its chunks\n"
    "  --window W        stream window (default libgild's, 64)\n"
    "  --max-in-flight M open loop: most unanswered calls (default and\n"
    "                    largest 8192, GILD_MAX_IN_FLIGHT); calls that\n"
    "                    wait for room are sent late\n"
    "  --batch B         closed loop: send up to B calls per message\n"
    "                    (gild_submit_many), refilling together the calls\n"
    "                    whose replies came together (default 1, at most\n"
    "                    256)\n"
    "  --shm             shared memory with an ipc:// server run with --shm\n"
    "                    (gild_set_shm); fails when it is not offered\n"
    "Prints one JSON object on stdout.\n";

static int
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "loadgen: %s\n", why);
	fputs(usage_text, stderr);
	return 2;
}

/* Fills o from argv: 0, or the exit status of a usage error. */
static int
parse_opts(int argc, char **argv, opts *o)
{
	static const struct option longs[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"fn", required_argument, NULL, 'f'},
	    {"arg-int", required_argument, NULL, 'i'},
	    {"arg-bytes", required_argument, NULL, 'b'},
	    {"closed", required_argument, NULL, 'k'},
	    {"rate", required_argument, NULL, 'r'},
	    {"calls", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, 's'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"stream", no_argument, NULL, 'S'},
	    {"window", required_argument, NULL, 'W'},
	    {"max-in-flight", required_argument, NULL, 'm'},
	    {"batch", required_argument, NULL, 'B'},
	    {"shm", no_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool calls_given = false;
	long v;
	int ch;

	*o = (opts){.arg_bytes = -1, .calls = 100000, .seconds = 5,
	    .warmup = -1, .max_in_flight = GILD_MAX_IN_FLIGHT, .batch = 1};
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o->url = optarg;
			break;
		case 'f':
			o->fn = optarg;
			break;
		case 'i':
			if (!bench_parse_long(optarg, LONG_MIN, LONG_MAX, &v))
				return usage("--arg-int: expected an integer");
			o->has_int = true;
			o->arg_int = v;
			break;
		case 'b':
			if (!bench_parse_long(optarg, 0, 1L << 30, &v))
				return usage("--arg-bytes: expected 0 to 2^30");
			o->arg_bytes = v;
			break;
		case 'k':
			if (!bench_parse_long(optarg, 1, GILD_MAX_IN_FLIGHT,
			    &v))
				return usage("--closed: expected 1 to 8192");
			o->k = (int) v;
			break;
		case 'r':
			if (!bench_parse_pos_double(optarg, &o->rate))
				return usage("--rate: expected calls per second > 0");
			break;
		case 'n':
			if (!bench_parse_long(optarg, 1, LONG_MAX, &o->calls))
				return usage("--calls: expected a count > 0");
			calls_given = true;
			break;
		case 's':
			if (!bench_parse_pos_double(optarg, &o->seconds))
				return usage("--seconds: expected seconds > 0");
			break;
		case 'M':
			o->shm = true;
			break;
		case 'w':
			if (!bench_parse_long(optarg, 0, LONG_MAX, &o->warmup))
				return usage("--warmup: expected a count >= 0");
			break;
		case 'S':
			o->stream = true;
			break;
		case 'W':
			if (!bench_parse_long(optarg, 1, GILD_STREAM_MAX_WINDOW,
			    &v))
				return usage("--window: expected 1 to 4096");
			o->window = (int) v;
			break;
		case 'm':
			if (!bench_parse_long(optarg, 1, GILD_MAX_IN_FLIGHT,
			    &o->max_in_flight))
				return usage("--max-in-flight: expected 1 to 8192");
			break;
		case 'B':
			if (!bench_parse_long(optarg, 1, 256, &v))
				return usage("--batch: expected 1 to 256");
			o->batch = (int) v;
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
	if (o->url == NULL || o->fn == NULL)
		return usage("--url and --fn are required");
	if (o->has_int && o->arg_bytes >= 0)
		return usage("--arg-int and --arg-bytes exclude each other");
	if (o->stream) {
		if (o->rate > 0)
			return usage("--stream runs closed (--closed K streams)");
		if (!o->has_int)
			return usage("--stream needs --arg-int N");
		if (o->k == 0)
			o->k = 1;
	} else if ((o->k > 0) == (o->rate > 0)) {
		return usage("give one of --closed K and --rate R");
	}
	if (o->rate > 0 && !calls_given)
		o->calls = LONG_MAX; /* the schedule is bounded by --seconds */
	if (o->warmup < 0)
		o->warmup = o->stream ? 0 : 100;
	return 0;
}

int
main(int argc, char **argv)
{
	opts o;
	tally t = {0};
	gild_client *c = NULL;
	gild_value *args = NULL;
	gild_error err = {0};
	bool oom;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if (hist_init(&t.h) != 0 || ((args = make_args(&o, &oom)) == NULL &&
	    oom)) {
		fprintf(stderr, "loadgen: out of memory\n");
		hist_fini(t.h);
		return 1;
	}
	/* A run that cannot start still reports, with its error counted. */
	if (gild_connect(&c, &o.url, 1, &err) != GILD_OK) {
		bench_fail(&t.err, "%s", err.message ? err.message :
		    gild_code_name(err.code));
		gild_error_clear(&err);
		c = NULL;
	} else if (o.shm && (gild_set_shm(c, true, &err) != GILD_OK ||
			       !gild_shm_active(c))) {
		bench_fail(&t.err, "--shm: %s", err.message ? err.message :
		    "the server offered no shared memory");
		gild_error_clear(&err);
	} else if (warm_up(c, &o, args, &t) != 0) {
		/* t says why */
	} else if (o.stream) {
		stream_loop(c, &o, args, o.calls, o.seconds, true, &t);
	} else if (o.rate > 0) {
		open_loop(c, &o, args, &t);
	} else {
		closed_loop(c, &o, args, o.k, o.calls, o.seconds, &t);
	}
	if (t.err.count > 0 && t.err.first[0] != '\0')
		fprintf(stderr, "loadgen: %ld errors; the first: %s\n",
		    t.err.count, t.err.first);
	fprintf(stderr, "loadgen: %s %s: %ld calls in %.3f s (%.0f/s), "
	    "p50 %.1f us, p99 %.1f us, max %.1f us, %ld errors, %ld late\n",
	    o.stream ? "stream" : o.rate > 0 ? "open" : "closed", o.fn, t.calls,
	    t.seconds, t.seconds > 0 ? (double) t.calls / t.seconds : 0,
	    hist_quantile_us(t.h, 0.5), hist_quantile_us(t.h, 0.99),
	    hist_max_us(t.h), t.err.count, t.late);
	if (report(&o, &t) != 0) {
		fprintf(stderr, "loadgen: cannot write the report\n");
		t.err.count++;
	}
	rc = t.err.count > 0 || t.calls == 0 ? 1 : 0;
	hist_fini(t.h);
	/* After the report: a close that hangs costs nothing measured. */
	if (c != NULL && close_bounded(c, 5000) != 0) {
		fprintf(stderr, "loadgen: gild_close hung; exiting without it\n");
		_exit(rc);
	}
	gild_value_free(args);
	return rc;
}
