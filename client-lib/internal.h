/* libgild internal: what the files of the C client share: a client, its
 * connections, the table of calls in flight, streams. Not installed. */
#ifndef GILD_CLIENT_INTERNAL_H
#define GILD_CLIENT_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "codec.h"
#include "error.h"
#include "fields.h"
#include "gild.h"
#include "gild_limits.h"

/* gild.h, installed on its own, repeats these limits of the protocol. */
_Static_assert(GILD_MAX_BATCH == GILD_BATCH_REQUESTS_MAX,
    "gild.h's GILD_MAX_BATCH is proto/gild_limits.h's");
_Static_assert(GILD_MAX_TRACESTATE == GILD_TRACESTATE_MAX,
    "gild.h's GILD_MAX_TRACESTATE is proto/gild_limits.h's");
_Static_assert(GILD_STREAM_MAX_WINDOW == GILD_STREAM_WINDOW_MAX,
    "gild.h's GILD_STREAM_MAX_WINDOW is proto/gild_limits.h's");

/* Reply memfds a connection keeps that came before their Reply. */
#define GILD_SHM_STASH 8

/* How long a call waits for a lost connection to be redialled. */
#define REDIAL_WAIT_MS 5000

/* What a table entry is waiting for. Only CALL_USER entries are visible to
 * gild_wait / gild_poll / gild_cancel; the others belong to a synchronous
 * function running in some thread, or (CALL_STREAM: a stream's Call or
 * StreamNext, answered with Chunks) to a gild_stream. */
enum call_kind {
	CALL_USER, CALL_SYNC, CALL_PING, CALL_STATUS, CALL_STREAM,
	CALL_BATCH, /* a batch of `members` CALL_USER calls, the next ids */
	CALL_SHM,   /* gild_set_shm's Ping: answered with the Pong's bytes */
};

typedef struct call {
	uint64_t id;
	enum call_kind kind;
	bool done;   /* res is filled; no reply is awaited any more */
	size_t conn; /* index of the connection the request went out on */
	size_t members; /* CALL_BATCH */
	/* Calls that may be resent (CALL_USER and CALL_SYNC sent to any
	 * server): the encoded request, kept until the call ends. */
	bool movable;
	codec_buf body;
	/* Refused as not started, waiting to be resent (res holds the
	 * refusal, its outcome if no server takes it in time). */
	bool refused;
	struct timespec give_up; /* refused: when to stop trying */
	struct call *rprev, *rnext; /* c->refused list */
	/* Sent again alone after its refusal: when it was a batch member, the
	 * batch's reply no longer speaks for it (the resender may send it
	 * before that reply has been read to its end). */
	bool resent;
	gild_result res;
	/* CALL_STREAM with res.code GILD_OK: what came. A Reply.error is
	 * kept here as a stream that ended with that error. */
	codec_chunks chunks;
	struct call *hnext;         /* hash chain */
	struct call *dprev, *dnext; /* done list, CALL_USER only */
} call;

typedef struct conn {
	gild_client *c;
	size_t idx;
	char *url;
	nng_socket sock;
	bool opened;
	/* TLS URLs: what every dialer of this URL gets, and for messages the
	 * CA file and the name the server's certificate must carry. */
	nng_tls_config *tls;
	char *tls_ca, *tls_name;
	bool redial; /* the first dial failed: dial in the background */
	nng_aio *aio; /* the receive always posted */
	/* Ids of the connected pipes; under c->mtx. A set, not a flag: nng runs
	 * pipe callbacks on several threads, so a redialled pipe's ADD_POST can
	 * come before the lost pipe's REM_POST, and a pipe that dies while
	 * being added gets a REM_POST without an ADD_POST. One dialer has one
	 * pipe at a time, give or take such an overlap. */
	uint32_t pipe_ids[4];
	int pipes;
	/* A pipe whose server refused a call as not started (it is draining),
	 * or 0: no new call goes out on it, and it is closed once this
	 * client has nothing running there. */
	uint32_t refusing;
	/* The refusing pipe is gone: its redialled successor takes calls once
	 * it has answered a ping. A server answers only on connections it
	 * counts, and a stopping gild waits for those to close before it
	 * exits, so a call sent after the ping is read, not lost with the
	 * connection (docs/reliability.md#draining). */
	bool verify;
	/* Shared memory (shm.c): the side socket (-1: none) and the pipe it
	 * is tied to (0: off: a redial unties it), under c->mtx; the last
	 * handle passed (under c->mtx); reply memfds that came before their
	 * Reply (the receive callback's only). */
	int shm_fd;
	uint32_t shm_pipe;
	uint64_t shm_next;
	struct {
		uint64_t handle;
		int fd;
	} shm_stash[GILD_SHM_STASH];
	int shm_nstash;
} conn;

/* A thread asleep in libgild (on its stack, under the client's mutex while
 * listed): what it waits for, so that an entry's end wakes the one thread
 * that waits for it, not every thread waiting on the client. */
enum wait_for {
	WAIT_ENTRY,    /* entry `id` ends or leaves */
	WAIT_ANY_USER, /* gild_poll: any CALL_USER entry ends, or none is left */
	WAIT_CHANGE,   /* room for a call, a connection, nothing pending */
};

typedef struct waiter {
	sem_t sem; /* posted once when chosen */
	int efd;   /* >= 0: an eventfd written when chosen, instead of sem
		      (a stream's watch: gild_stream_fd), under c->mtx */
	enum wait_for what;
	uint64_t id;        /* WAIT_ENTRY */
	bool chosen;        /* taken off c->waiters by a waker: sem is posted */
	struct waiter *prev, *next; /* c->waiters; next: c->to_wake */
} waiter;

struct gild_client {
	char *token; /* sent with every request (gild_set_token), or NULL */
	pthread_mutex_t mtx;
	/* Under mtx: the threads asleep, and those chosen to wake, whose
	 * semaphores gild__unlock posts once the mutex is released (a thread
	 * woken while the waker still holds it would wake a second time, on
	 * the mutex). */
	waiter *waiters, *to_wake;
	conn *conns;
	size_t n_conns;
	size_t rr;
	uint64_t next_id;
	call **buckets; /* power of two many; ids are sequential */
	size_t n_buckets;
	size_t n_calls;
	size_t n_pending; /* entries not done: their replies may still come */
	struct timespec last_send; /* when a request last went out */
	size_t n_user;    /* CALL_USER entries: gild_in_flight */
	call *done_head, *done_tail;
	gild_stream *streams; /* open streams, so a lost connection ends them */
	/* The resender (see the top of the file), under mtx. */
	call *refused_head, *refused_tail; /* entries with refused set */
	bool resender_started, stopping;
	pthread_t resender;
	pthread_cond_t resend_cv; /* work for the resender, or stopping */
	/* gild__keep_encoded (value.h), under mtx: results and stream
	 * chunks are VALUE_ENCODED, not decoded. */
	bool keep_encoded;
};


/* Where a stream is: a request for chunks in flight, none (more may be
 * asked for), or nothing more to receive. */
enum stream_state { STREAM_WAITING, STREAM_IDLE, STREAM_ENDED };

struct gild_stream {
	gild_client *c; /* NULL once gild_close has cut the stream off */
	uint64_t id;    /* the Call's request id: the stream's name on the wire */
	size_t conn;    /* its connection: the server keys streams by it */
	uint32_t window;
	/* The rest is under c->mtx. */
	enum stream_state state;
	uint64_t pull;     /* STREAM_WAITING: the entry whose Chunks are due */
	uint32_t pull_max; /* ... and how many chunks it may bring */
	gild_value **queue; /* ring of `window` slots: received, not returned */
	size_t head, len;
	uint64_t seq;      /* of queue[head]: the chunks returned so far */
	bool server_done;  /* the server ended it: closing needs no Cancel */
	bool lost;         /* its connection went down */
	int code;          /* STREAM_ENDED: GILD_STREAM_END or error.code */
	gild_error error;
	gild_stream *prev, *next; /* c->streams */
	/* gild_stream_fd: an eventfd (-1: none) and the waiter that writes it
	 * when a gild_stream_next that found nothing would have woken;
	 * watching: it is in c->waiters. */
	int efd;
	waiter watch;
	bool watching;
};

/* table.c */

/* Entry id, or NULL. */
call *gild__table_find(gild_client *c, uint64_t id);

/* Adds cl (its id set). Returns 0, or -1 when out of memory. */
int gild__table_insert(gild_client *c, call *cl);

/* Takes cl out of the table (the caller frees it) and wakes waiters. */
void gild__table_remove(gild_client *c, call *cl);

/* Frees an entry taken out of the table (NULL is fine). */
void gild__call_free(call *cl);

/* Marks cl done with the outcome *res (moved in) and wakes waiters. */
void gild__table_finish(gild_client *c, call *cl, gild_result *res);

/* recv.c */

/* nng's callbacks of a connection (arg: its conn): a received message,
 * and a pipe added or removed. */
void gild__recv_cb(void *arg);
void gild__pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg);

/* resend.c */

/* Takes cl off the list of refused calls, if it is on it. */
void gild__refused_unlink(gild_client *c, call *cl);

/* The next connection, round robin, that may take a request of `kind`:
 * connection `want` only (-1: any) when it is up; calls free to go
 * anywhere avoid a draining server's connection (pings and status are
 * answered there). NULL if none now. Under c->mtx. */
conn *gild__next_conn(gild_client *c, enum call_kind kind, int want);

/* k's pipe `pipe` refused a request as not started: take no new call
 * there, and have the resender close it once idle. Under c->mtx. */
void gild__note_refusal(gild_client *c, conn *k, uint32_t pipe);

/* cl was refused as not started: it waits to be resent, for up to
 * REDIAL_WAIT_MS, with *res (moved in) as its outcome if none takes it.
 * Under c->mtx. */
void gild__refuse(gild_client *c, call *cl, gild_result *res);

/* send.c */

/* Prepends the request id to body and sends it on k. Blocks while nng's
 * send queue is full, at most REDIAL_WAIT_MS (then UNAVAILABLE). */
int gild__send_request(conn *k, codec_buf *body, uint64_t id, gild_error *err);

/* Sends a request whose body is in *body, tracked as a new table entry of
 * `kind`, on connection `want` (-1: the next one that is up). On GILD_OK *id
 * names the entry and *idx (when not NULL) is its connection. */
int gild__start(gild_client *c, enum call_kind kind, codec_buf *body, int want,
    uint64_t *id, size_t *idx, gild_error *err);

/* Asks connection `idx` to cancel call `target`. Failures are ignored: a
 * lost connection cancels the call anyway. */
void gild__send_cancel(gild_client *c, size_t idx, uint64_t target);

/* stream.c */

/* gild_stream_open of function, or with actor_id (not 0) of that method of
 * the actor the server knows by that id, on connection `want` (-1: the
 * next one that is up). c and out are not NULL. */
int gild__stream_open(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, uint64_t actor_id,
    int want, int window, int timeout_ms, gild_stream **out, gild_error *err);

/* wait.c */

/* *ts = timeout_ms from now on CLOCK_MONOTONIC. */
void gild__deadline_of(int timeout_ms, struct timespec *ts);

/* Under c->mtx (released while asleep): one sleep of the calling thread,
 * until a waker chooses w (see enum wait_for) or the deadline ts passes
 * (timeout_ms < 0: none; 0: no sleep). Returns false once it has passed.
 * w is set up with gild__waiter_init, and ended with gild__waiter_fini. */
bool gild__sleep(gild_client *c, waiter *w, int timeout_ms,
    const struct timespec *ts);
void gild__waiter_init(waiter *w, enum wait_for what, uint64_t id);
void gild__waiter_fini(waiter *w);
/* Under c->mtx: w (its what and id set) joins c->waiters, for a waker to
 * choose. gild__sleep then sleeps on it; a stream's watch (w->efd set)
 * has nobody sleeping on it: the waker that chooses it writes w->efd.
 * gild__unwatch takes it out if it is still there. */
void gild__watch(gild_client *c, waiter *w);
void gild__unwatch(gild_client *c, waiter *w);

/* Releases c->mtx, then wakes the threads chosen while it was held. */
void gild__unlock(gild_client *c);
/* Under c->mtx: wakes the chosen threads now, the mutex still held (before
 * a wait that releases it other than through gild__unlock). */
void gild__wake_now(gild_client *c);

/* Under c->mtx: chooses the threads to wake when entry id (of kind) ends
 * or leaves the table (gone), and those waiting for a change. */
void gild__wake_entry(gild_client *c, uint64_t id, enum call_kind kind,
    bool gone);
/* Under c->mtx: chooses every waiting thread (a connection came or went). */
void gild__wake_all(gild_client *c);

/* start + wait for the synchronous functions. On GILD_OK *out (may be NULL
 * to drop it) gets the value; otherwise err gets the error. */
int gild__round_trip_on(gild_client *c, enum call_kind kind, codec_buf *body,
    int want, int timeout_ms, gild_value **out, gild_error *err);

/* A synchronous call's timeout (-1: none) as the deadline the server gets
 * (0: none; 0 ms becomes 1 ms, already past), and as how long to wait for
 * the reply: the deadline plus the server's --kill-grace, since the server
 * ends the call then (interrupting it if it runs). */
uint32_t gild__deadline_ms(int timeout_ms);
int gild__reply_wait_ms(int timeout_ms);

/* shm.c. A request of len bytes (the whole encoded Request) to send on
 * k: when k has shared memory and it is large, it goes into a memfd passed
 * on the side socket and *out gets the small Request that names it: 0. 1:
 * send req itself; -1: out of memory. */
int gild__shm_wrap(conn *k, const uint8_t *req, size_t len, uint64_t id,
    codec_buf *out);
/* A received message: when it is a Reply naming a memfd (Reply.shm), that
 * memfd mapped read-only (*out, *outlen; gild__shm_unmap it): 0. 1: not
 * such a Reply; -1: its memfd did not come or is unusable. Receive
 * callback only. */
int gild__shm_unwrap(conn *k, const uint8_t *buf, size_t len,
    const uint8_t **out, size_t *outlen);
void gild__shm_unmap(const uint8_t *p, size_t len);
/* Closes k's side socket and the memfds it kept (gild_close). */
void gild__shm_close(conn *k);

#endif
