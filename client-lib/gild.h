/* libgild: the C client of gild servers. Connects to one or more servers
 * over nng, makes synchronous calls, or keeps thousands of calls in flight
 * on one connection (submit, then wait or poll). It never prints, never
 * exits and keeps no global state; a gild_client may be used from several
 * threads at once. See docs/protocol.md for the wire format. */
#ifndef GILD_H
#define GILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes, the same numbers as gild.v1.Code on the wire. Every libgild
 * function that can fail returns GILD_OK (0) or one of these;
 * gild_stream_next also returns GILD_STREAM_END, which is not a wire code
 * and never an error. */
enum gild_code {
	GILD_STREAM_END = -1, /* a stream ended normally: no chunk follows */
	GILD_OK = 0,
	GILD_CANCELLED = 1,
	GILD_UNKNOWN = 2,
	GILD_INVALID_ARGUMENT = 3,
	GILD_DEADLINE_EXCEEDED = 4,
	GILD_NOT_FOUND = 5,
	GILD_ALREADY_EXISTS = 6,
	GILD_PERMISSION_DENIED = 7,
	GILD_RESOURCE_EXHAUSTED = 8,
	GILD_FAILED_PRECONDITION = 9,
	GILD_UNIMPLEMENTED = 12,
	GILD_INTERNAL = 13,
	GILD_UNAVAILABLE = 14,
	GILD_UNAUTHENTICATED = 16,
	GILD_WORKER_LOST = 100,
	GILD_PYTHON_ERROR = 101,
};

/* "NOT_FOUND" for GILD_NOT_FOUND; "UNKNOWN" for numbers not listed. */
const char *gild_code_name(int code);

/* A failure: its code and a message; for GILD_PYTHON_ERROR also the remote
 * exception's type name and formatted traceback. Strings are malloc'd and
 * owned by the struct (NULL when absent): release with gild_error_clear. A
 * zero-initialised gild_error is valid and empty. */
typedef struct gild_error {
	int code;
	char *message;
	char *python_type;
	char *traceback;
} gild_error;

/* Frees the strings and zeroes *err. Accepts NULL. */
void gild_error_clear(gild_error *err);

/* ---- values ----------------------------------------------------------- */

typedef enum gild_kind {
	GILD_NULL,
	GILD_BOOL,
	GILD_INT,    /* fits in int64_t */
	GILD_BIGINT, /* any size: two's complement little-endian bytes */
	GILD_FLOAT,
	GILD_STR,    /* UTF-8, may hold NUL bytes: use the length */
	GILD_BYTES,
	GILD_LIST,
	GILD_TUPLE,
	GILD_MAP,    /* ordered entries; keys are any value */
	GILD_TENSOR, /* dtype + shape + raw little-endian C-order bytes */
	GILD_PICKLE, /* a pickled Python object: bytes only Python reads;
			servers refuse it unless started with --allow-pickle */
} gild_kind;

typedef struct gild_value gild_value;

/* Constructors return a new value owned by the caller (free it with
 * gild_value_free, or hand it to a container), or NULL when out of memory or
 * when the arguments are invalid. Strings and buffers are copied. */
gild_value *gild_null(void);
gild_value *gild_bool(bool b);
gild_value *gild_int(int64_t i);
/* n bytes of two's complement little-endian; normalised to GILD_INT when it
 * fits in 64 bits. */
gild_value *gild_bigint(const uint8_t *le, size_t n);
/* A decimal integer of any size ("-123", "184467440737095516160"); NULL if
 * s is not one. GILD_INT when it fits. */
gild_value *gild_int_from_decimal(const char *s);
gild_value *gild_float(double d);
/* UTF-8 text; NULL if s is not valid UTF-8. */
gild_value *gild_str(const char *s, size_t len);
gild_value *gild_cstr(const char *s);
gild_value *gild_bytes(const void *p, size_t len);
/* A GILD_PICKLE: len bytes written by Python's pickle.dumps, passed through
 * as they are (libgild never reads them). */
gild_value *gild_pickle(const void *p, size_t len);
gild_value *gild_list(void);
gild_value *gild_tuple(void);
gild_value *gild_map(void);
/* dtype as in gild.proto ("float32", ...); len must be itemsize * prod(shape). */
gild_value *gild_tensor(const char *dtype, const uint64_t *shape, size_t ndim,
    const void *data, size_t len);

/* Appends item to a list or tuple. Takes ownership of item on success only.
 * Returns GILD_OK or GILD_INVALID_ARGUMENT (not a list/tuple, NULL item) or
 * GILD_RESOURCE_EXHAUSTED (out of memory). */
int gild_list_append(gild_value *list, gild_value *item);
/* Appends the entry key -> val to a map (no duplicate check). Takes both on
 * success only. */
int gild_map_set(gild_value *map, gild_value *key, gild_value *val);

/* A deep copy, or NULL when out of memory. */
gild_value *gild_value_copy(const gild_value *v);
void gild_value_free(gild_value *v); /* accepts NULL */

/* Deep equality; floats compare by bits, so NaN equals the same NaN. */
bool gild_value_equal(const gild_value *a, const gild_value *b);

/* Accessors: borrowed results, valid while v lives. A kind mismatch returns
 * false / 0 / 0.0 / NULL. */
gild_kind gild_value_kind(const gild_value *v);
bool gild_value_bool(const gild_value *v);
int64_t gild_value_int(const gild_value *v);
double gild_value_float(const gild_value *v);
const char *gild_value_str(const gild_value *v, size_t *len);
/* GILD_BYTES: the bytes; GILD_BIGINT: the two's complement LE bytes;
 * GILD_PICKLE: the pickle's bytes. */
const uint8_t *gild_value_bytes(const gild_value *v, size_t *len);
/* Decimal text of a GILD_INT or GILD_BIGINT, malloc'd; NULL otherwise. */
char *gild_value_to_decimal(const gild_value *v);
/* Number of items (list, tuple) or entries (map); 0 otherwise. */
size_t gild_value_len(const gild_value *v);
const gild_value *gild_value_item(const gild_value *v, size_t i);
const gild_value *gild_map_key(const gild_value *v, size_t i);
const gild_value *gild_map_val(const gild_value *v, size_t i);
/* The entry whose key is the string `key`, or NULL. */
const gild_value *gild_map_get(const gild_value *v, const char *key);
const char *gild_tensor_dtype(const gild_value *v);
size_t gild_tensor_ndim(const gild_value *v);
const uint64_t *gild_tensor_shape(const gild_value *v);
const void *gild_tensor_data(const gild_value *v, size_t *len);

/* ---- client ----------------------------------------------------------- */

typedef struct gild_client gild_client;
typedef uint64_t gild_call_id;

/* Most calls one client keeps in flight: nng's largest receive buffer, so
 * that no reply can be dropped by a full queue. gild_submit blocks while
 * this many are outstanding. */
#define GILD_MAX_IN_FLIGHT 8192

/* Connects to every URL (tcp://, ipc://, ws://, tls+tcp://: for TLS see
 * gild_connect_opts); calls are spread over the
 * connected servers. Returns GILD_OK and a new client in *out, or
 * GILD_UNAVAILABLE (no URL could be reached; err says why for each) or
 * GILD_INVALID_ARGUMENT (bad URL). Lost connections are redialled; calls in
 * flight on a lost connection fail with GILD_UNAVAILABLE, and a call made
 * while no connection is up (or whose connection drops as it is sent) waits
 * up to 5 s for one before failing so. A call a draining server refuses
 * as not started is sent again, to another URL or on a redialled
 * connection (through a load balancer: another server), for up to 5 s
 * before it fails with that GILD_UNAVAILABLE; it never runs twice. */
int gild_connect(gild_client **out, const char *const *urls, size_t n_urls,
    gild_error *err);

/* How gild_connect_opts connects. Zero-initialize it and set what you need;
 * every field may be NULL. The TLS fields apply to tls+tcp:// (and wss://)
 * URLs only, other URLs ignore them. */
typedef struct gild_connect_options {
	/* Sent with every request (as gild_set_token). */
	const char *token;
	/* PEM file of the CA certificate(s) the server's certificate must be
	 * signed by. The server is always verified: its certificate must
	 * chain to this CA and name the host of the URL (or tls_server_name).
	 * NULL: the system's CA bundle, /etc/ssl/certs/ca-certificates.crt. */
	const char *tls_ca;
	/* This client's PEM certificate and unencrypted private key, for a
	 * server that requires client certificates (gild serve --tls-ca).
	 * tls_key NULL: the key is in the tls_cert file. */
	const char *tls_cert;
	const char *tls_key;
	/* The name the server's certificate must carry (NULL: the URL's
	 * host). */
	const char *tls_server_name;
} gild_connect_options;

/* gild_connect with options (opts NULL: none, the same as gild_connect).
 * Every connection and every redial of a TLS URL uses the TLS settings.
 * Also returns GILD_INVALID_ARGUMENT for a TLS file that cannot be read or
 * used (err names the field and the file). A TLS handshake that fails (a
 * server certificate the CA did not sign, a client certificate the server
 * refused, no handshake within 10 s) counts as an unreachable URL:
 * GILD_UNAVAILABLE when no URL could be reached, with the reason in err. */
int gild_connect_opts(gild_client **out, const char *const *urls,
    size_t n_urls, const gild_connect_options *opts, gild_error *err);
/* Sends token with every request from now on (NULL: none): a server
 * started with --token answers requests without the right one with
 * GILD_UNAUTHENTICATED. Call it before sending; not while other threads
 * send on c. Returns GILD_OK, or GILD_RESOURCE_EXHAUSTED. */
int gild_set_token(gild_client *c, const char *token, gild_error *err);

/* Shared memory with a local server (docs/protocol.md#shared-memory).
 * With on, asks each ipc:// server of c for it (a server offers it only
 * when started with --shm, and never over tcp://); from then on requests
 * and replies of 256 KiB and more travel as sealed memfds over a Unix
 * socket beside the server's, and only a small message over nng. Where it
 * is not offered, nng carries everything as before: not an error. A
 * redialled connection goes back to nng alone (call it again). Call it
 * before sending; not while other threads send on c. Returns GILD_OK, or
 * the error of the ping that asked (GILD_UNAVAILABLE, ...). */
int gild_set_shm(gild_client *c, bool on, gild_error *err);
/* Whether some connection of c has shared memory now. */
bool gild_shm_active(gild_client *c);

/* Closes the connections and frees the client; results of calls still in
 * flight are discarded. Accepts NULL. Close its streams first
 * (gild_stream_close): a stream left open is cut off from the client, and
 * then only gild_stream_close may be called on it (it frees it without
 * telling the server). Returns within GILD_CLOSE_WAIT_MS: nng 1.5.2 can
 * wedge closing a connection whose server died in the middle of a send
 * (nng #1543); then the close goes on on a thread of its own, which frees
 * the client if nng ever returns, and a line on stderr says so. */
#define GILD_CLOSE_WAIT_MS 3000
void gild_close(gild_client *c);

/* Sends a call of `function` with positional args (a GILD_LIST or GILD_TUPLE
 * value, or NULL for none) and keyword args (a GILD_MAP with GILD_STR keys,
 * or NULL). args and kwargs are borrowed. On GILD_OK, *id names the call for
 * gild_wait / gild_cancel. */
int gild_submit(gild_client *c, const char *function, const gild_value *args,
    const gild_value *kwargs, gild_call_id *id, gild_error *err);
/* gild_submit with a deadline: timeout_ms > 0 is sent as the call's
 * Call.timeout_ms. A call still queued at its deadline ends with
 * GILD_DEADLINE_EXCEEDED without running; a running one is interrupted (and
 * its worker replaced if it does not stop within the server's
 * --kill-grace). 0 leaves the deadline to the function's
 * @gild.function(timeout=...) or the server's --default-timeout. */
int gild_submit_timeout(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_call_id *id, gild_error *err);

/* A W3C Trace Context (https://www.w3.org/TR/trace-context/) that joins a
 * call to the caller's trace: the app reads it in gild.context(), gild's
 * log lines about the call show it. Both strings NUL-terminated, borrowed.
 * traceparent: "00-" 32 lowercase hex digits (trace id) "-" 16 (parent id)
 * "-" 2 (flags), neither id all zeros; NULL: no trace context. tracestate:
 * NULL, or at most GILD_MAX_TRACESTATE bytes of printable ASCII, passed on
 * as it is. Anything else is refused with GILD_INVALID_ARGUMENT before it
 * is sent (and by the server, from any client). */
typedef struct gild_trace_context {
	const char *traceparent;
	const char *tracestate;
} gild_trace_context;
#define GILD_MAX_TRACESTATE 512

/* gild_submit_timeout with a trace context (NULL: none). */
int gild_submit_traced(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    const gild_trace_context *trace, gild_call_id *id, gild_error *err);

/* The outcome of one call. code is GILD_OK with value set (owned by the
 * struct), or an error code with error filled. Release with
 * gild_result_clear; a zero-initialised gild_result is valid and empty. */
typedef struct gild_result {
	gild_call_id id;
	int code;
	gild_value *value;
	gild_error error;
} gild_result;
void gild_result_clear(gild_result *res); /* accepts NULL */

/* Waits up to timeout_ms (-1: no limit) for call `id`. Returns GILD_OK with
 * *res filled when it finished (look at res->code for how), then the id is
 * forgotten; GILD_DEADLINE_EXCEEDED if it is still running (it stays in
 * flight); GILD_NOT_FOUND for an id not in flight. */
int gild_wait(gild_client *c, gild_call_id id, int timeout_ms,
    gild_result *res);
/* Like gild_wait, for whichever call in flight finishes first.
 * GILD_NOT_FOUND when no call is in flight. */
int gild_poll(gild_client *c, int timeout_ms, gild_result *res);
/* Number of calls submitted and not yet returned by gild_wait/gild_poll. */
size_t gild_in_flight(gild_client *c);

/* One call of a batch (gild_submit_many): as gild_submit_timeout's
 * arguments, borrowed. */
typedef struct gild_call_spec {
	const char *function;
	const gild_value *args;   /* GILD_LIST or GILD_TUPLE, or NULL: none */
	const gild_value *kwargs; /* GILD_MAP with GILD_STR keys, or NULL */
	int timeout_ms;           /* > 0: its deadline; 0: the default */
} gild_call_spec;

/* Most calls in one gild_submit_many (the server's limit per batch). */
#define GILD_MAX_BATCH 4096

/* Submits n calls (1 to GILD_MAX_BATCH) in one message to one server:
 * each runs as if submitted alone and gets its own id in ids[i], for
 * gild_wait / gild_poll / gild_cancel. The transport's cost is paid once for
 * the n calls, but the server answers them together, in one message, when
 * the last one is done: batch calls that take about as long, such as the
 * calls whose results came back together. All are sent or none (then the
 * error says why). */
int gild_submit_many(gild_client *c, const gild_call_spec *calls, size_t n,
    gild_call_id *ids, gild_error *err);
/* gild_submit_many with a trace context per call: traces is NULL (none)
 * or holds n, traces[i] going with calls[i]. */
int gild_submit_many_traced(gild_client *c, const gild_call_spec *calls,
    const gild_trace_context *traces, size_t n, gild_call_id *ids,
    gild_error *err);

/* Asks the server to cancel call `id`: a queued call is removed, a running
 * one interrupted. The call stays in flight and ends as usual through
 * gild_wait / gild_poll, with GILD_CANCELLED (or its result, if it finished
 * before the cancel arrived). Returns GILD_OK or GILD_NOT_FOUND. */
int gild_cancel(gild_client *c, gild_call_id id, gild_error *err);

/* How much longer than its timeout gild_call waits for the server's own
 * DEADLINE_EXCEEDED (covering the server's --kill-grace, default 2 s). */
#define GILD_CALL_GRACE_MS 5000

/* submit + wait. Returns the call's code: GILD_OK with *out (a new value
 * owned by the caller), or the error code with err filled. With timeout_ms
 * >= 0, the call is sent with that deadline (as gild_submit_timeout) and
 * ends with GILD_DEADLINE_EXCEEDED past it; if no reply comes even
 * GILD_CALL_GRACE_MS after it, the call is cancelled and
 * GILD_DEADLINE_EXCEEDED returned. */
int gild_call(gild_client *c, const char *function, const gild_value *args,
    const gild_value *kwargs, int timeout_ms, gild_value **out,
    gild_error *err);

/* ---- exec ------------------------------------------------------------ */

/* Runs Python source on a server started with --allow-exec (others answer
 * GILD_PERMISSION_DENIED): the source (NUL-terminated UTF-8) is compiled as
 * a module and run in a fresh namespace holding `variables` (a GILD_MAP with
 * GILD_STR keys, borrowed, or NULL), and the result is the value the source
 * left in the variable `result` (null when it set none). It runs on a
 * worker like a call: queued, deadline, cancel, GILD_WORKER_LOST; an
 * exception or a SyntaxError is GILD_PYTHON_ERROR with its traceback.
 * filename (NULL: "<exec>") is what tracebacks show. timeout_ms as in
 * gild_submit_timeout. On GILD_OK, *id is for gild_wait / gild_poll /
 * gild_cancel. */
int gild_submit_exec(gild_client *c, const char *source,
    const gild_value *variables, const char *filename, int timeout_ms,
    gild_call_id *id, gild_error *err);
/* gild_submit_exec + wait, with timeout_ms as in gild_call. Returns
 * GILD_OK with *out (new, owned by the caller), or the error code. */
int gild_exec(gild_client *c, const char *source, const gild_value *variables,
    int timeout_ms, gild_value **out, gild_error *err);

/* Round trip to a server. GILD_OK, or the failure's code. */
int gild_ping(gild_client *c, int timeout_ms, gild_error *err);

/* The server's status as a GILD_MAP (field names as in gild.v1.Status,
 * workers as a list of maps). *out is new, owned by the caller. */
int gild_status(gild_client *c, int timeout_ms, gild_value **out,
    gild_error *err);

/* ---- streams --------------------------------------------------------- */

/* The results of a generator function, chunk by chunk. The server runs the
 * generator ahead of the client by at most `window` chunks, and the client
 * holds at most `window` chunks it has received and not yet returned: it
 * asks for more (always on the connection the stream was opened on) once
 * half of them have been returned, so that the next ones are on their way
 * while the caller works through the rest. A gild_stream is used by one
 * thread at a time; its client may meanwhile serve other threads. */
typedef struct gild_stream gild_stream;

/* Largest window: the server holds at most this many chunks per stream. */
#define GILD_STREAM_MAX_WINDOW 4096

/* Opens a stream of function(*args, **kwargs): args and kwargs as in
 * gild_submit (borrowed). window: the chunks in flight, 1 to
 * GILD_STREAM_MAX_WINDOW (0: 64). timeout_ms > 0 is sent as the call's
 * deadline (Call.timeout_ms, as gild_submit_timeout), which bounds the
 * whole stream; 0 (or less) leaves it to the server. Returns once the call
 * is sent: GILD_OK with a new stream in *out (free it with
 * gild_stream_close), or an error code with err filled (arguments that
 * cannot be sent, no connection). Errors the server reports for the call
 * itself (GILD_NOT_FOUND, GILD_RESOURCE_EXHAUSTED...) come from the first
 * gild_stream_next. */
int gild_stream_open(gild_client *c, const char *function,
    const gild_value *args, const gild_value *kwargs, int window,
    int timeout_ms, gild_stream **out, gild_error *err);

/* The next chunk, waiting up to timeout_ms for it (-1: no limit; 0: do not
 * wait, only take one already received). Returns:
 * - GILD_OK with *out, a new value owned by the caller;
 * - GILD_STREAM_END once the stream has ended normally and every chunk has
 *   been returned;
 * - GILD_DEADLINE_EXCEEDED with err empty (code 0) when no chunk came in
 *   time: the stream goes on, call again;
 * - otherwise the error that ended the stream, with err filled, once every
 *   chunk received before it has been returned: the function's own
 *   (GILD_PYTHON_ERROR, a GILD_DEADLINE_EXCEEDED of the call's deadline,
 *   GILD_NOT_FOUND...), GILD_UNAVAILABLE when the connection was lost, or
 *   GILD_INTERNAL when the server broke the protocol (chunks out of order,
 *   more than were asked for).
 * After GILD_STREAM_END or an error, further calls return the same. */
int gild_stream_next(gild_stream *s, int timeout_ms, gild_value **out,
    gild_error *err);

/* For event loops (asyncio, libevent, epoll): a file descriptor of s that
 * becomes readable when a gild_stream_next(s, 0, ...) that returned
 * GILD_DEADLINE_EXCEEDED (nothing yet) would now return something: a
 * chunk, the end or an error. Read it (8 bytes; it is an eventfd, in
 * non-blocking mode) to clear it, then call gild_stream_next(s, 0, ...)
 * until it says GILD_DEADLINE_EXCEEDED again. It starts readable. It
 * belongs to s (closed by gild_stream_close). Returns it, or a negative
 * errno. No thread waits: one loop can watch any number of streams. */
int gild_stream_fd(gild_stream *s);

/* The sequence number of the chunk the next gild_stream_next returns: the
 * number of chunks returned so far (the first chunk is 0). */
uint64_t gild_stream_seq(const gild_stream *s);

/* Closes the stream and frees s (and the chunks it holds). If the server
 * may still be running it, sends a Cancel so that the generator stops.
 * Call it before gild_close of the stream's client. Accepts NULL. */
void gild_stream_close(gild_stream *s);

/* ---- actors ----------------------------------------------------------- */

/* An instance of an @gild.actor class, living in one worker of one server:
 * it keeps its state between calls and runs one call at a time, in arrival
 * order. The id also names the server (of the client's URLs) it is on. */
typedef uint64_t gild_actor_id;

/* Creates an actor of class_name(*args, **kwargs) on one of the servers
 * (round-robin), on its least-loaded worker. It is this client's
 * connection's own: other clients get GILD_NOT_FOUND for its id, unless
 * it has a name (NULL: none; others find it with gild_actor_get) or is
 * detached (its id then works from any connection). Unless detached, it
 * is destroyed when this client's connection closes. Returns GILD_OK with
 * *out once the constructor has run; GILD_NOT_FOUND (no such class),
 * GILD_ALREADY_EXISTS (name taken), or the constructor's error. Given up
 * at timeout_ms before the constructor ran, no actor is created. */
int gild_actor_new(gild_client *c, const char *class_name,
    const gild_value *args, const gild_value *kwargs, const char *name,
    bool detached, int timeout_ms, gild_actor_id *out, gild_error *err);
/* Finds the actor created with this name on any of the servers. */
int gild_actor_get(gild_client *c, const char *name, int timeout_ms,
    gild_actor_id *out, gild_error *err);
/* gild_actor_get that also says which @gild.actor class the actor is an
 * instance of: on GILD_OK, *class_name is a new NUL-terminated string
 * (free() it), or NULL when the server is too old to say. */
int gild_actor_lookup(gild_client *c, const char *name, int timeout_ms,
    gild_actor_id *out, char **class_name, gild_error *err);
/* Destroys it after the calls already sent to it. GILD_NOT_FOUND if there
 * is no such actor (or it is another connection's private one). */
int gild_actor_destroy(gild_client *c, gild_actor_id a, int timeout_ms,
    gild_error *err);
/* Calls its public method `method`, as gild_submit / gild_call do for a
 * function. A call whose actor is gone gets GILD_NOT_FOUND ("actor lost"
 * once its worker died and it has no restarts left); calls in flight when
 * its worker dies get GILD_WORKER_LOST. */
int gild_actor_submit(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, gild_call_id *id,
    gild_error *err);
/* gild_actor_submit with a deadline, as gild_submit_timeout. Calls one
 * client submits to one actor start in the order it submitted them. */
int gild_actor_submit_timeout(gild_client *c, gild_actor_id a,
    const char *method, const gild_value *args, const gild_value *kwargs,
    int timeout_ms, gild_call_id *id, gild_error *err);
int gild_actor_call(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_value **out, gild_error *err);
/* Opens a stream of its generator method `method`, as gild_stream_open
 * does for a generator function (same window, same gild_stream_next). The
 * stream holds its place among the actor's calls until it ends: with
 * @gild.actor(concurrency=1), the default, its next calls wait for it. */
int gild_actor_stream_open(gild_client *c, gild_actor_id a,
    const char *method, const gild_value *args, const gild_value *kwargs,
    int window, int timeout_ms, gild_stream **out, gild_error *err);

#ifdef __cplusplus
}
#endif
#endif
