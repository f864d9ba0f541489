/* libgild: connections to gild servers (this file), the table of calls in
 * flight (table.c), what nng's threads deliver (recv.c), sending
 * (send.c), waiting (wait.c), resending refused calls (resend.c),
 * streams (stream.c) and actors (actor.c); internal.h has what they share.
 *
 * One raw nng REQ socket per URL. Each call gets an id from a per-client
 * counter and an entry in a hash table (mutex + condvar); one receive is
 * always posted per socket, and its callback (on an nng thread) decodes the
 * Reply and completes the entry whose id the Reply carries. gild_wait and
 * gild_poll sleep on the condvar.
 *
 * A stream's Call and each of its StreamNext requests are entries too
 * (CALL_STREAM), at most one at a time per stream; the consumer's thread, in
 * gild_stream_next, moves a finished entry's chunks into the stream's queue
 * and sends the next StreamNext, so nothing is sent from nng's threads.
 *
 * A draining server refuses new calls as "not started" (Error.not_started).
 * Such a call is not ended: it is sent again, by the client's resender
 * thread (started on the first refusal), on another connection, or on this
 * one once the refusing connection has been closed and redialled (through a
 * load balancer, the redial reaches another server). The refusing
 * connection takes no new call and is closed as soon as nothing of this
 * client is running on it. To resend, a call keeps its encoded request
 * until it ends. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/protocol/reqrep0/req.h>

#include "tlsconf.h"

/* What a failed dial of k most likely means, beyond nng's word for it. */
static const char *
dial_hint(const conn *k, int rv, char *buf, size_t len)
{
	if (k->tls != NULL && (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH)) {
		snprintf(buf, len, " (TLS handshake failed: the server's "
				   "certificate is not signed by a CA in %s "
				   "or does not name '%s', or the server does "
				   "not speak TLS there)",
		    k->tls_ca, k->tls_name);
		return buf;
	}
	if (k->tls != NULL && rv == NNG_ETIMEDOUT)
		return " (no TLS handshake within 10 s: is it a TLS listener?)";
	if (k->tls != NULL && (rv == NNG_ECONNSHUT || rv == NNG_ECLOSED))
		return " (the server ended the TLS handshake: it may require "
		       "a client certificate it trusts, or not speak TLS "
		       "there)";
	if (k->tls == NULL && rv == NNG_ECONNSHUT)
		return " (the server closed the connection at once: is it a "
		       "TLS listener, tls+tcp:// or wss://?)";
	return "";
}

/* Appends "; " and a formatted message about k's failed dial to the
 * message in err. */
static void
error_append(gild_error *err, const conn *k, int rv)
{
	char hint[PATH_MAX + 512], *msg;

	if (err == NULL)
		return;
	if (asprintf(&msg, "%s%scannot connect to %s: %s%s",
	    err->message ? err->message : "", err->message ? "; " : "",
	    k->url, nng_strerror(rv), dial_hint(k, rv, hint, sizeof(hint))) ==
	    -1)
		return;
	free(err->message);
	err->message = msg;
}

static int
conn_open(conn *k, gild_error *err)
{
	int rv;

	if ((rv = nng_req0_open_raw(&k->sock)) != 0)
		return error_set(err, GILD_INTERNAL, "cannot open an nng socket: %s",
		    nng_strerror(rv));
	k->opened = true;
	/* nng's largest receive queue, no size limit on results, a send that
	 * gives up when the connection drops under it (else it would block
	 * until a redial, forever if none comes), and notice of every
	 * connection and disconnection. */
	if ((rv = nng_socket_set_int(k->sock, NNG_OPT_RECVBUF,
	    GILD_MAX_IN_FLIGHT)) != 0 ||
	    (rv = nng_socket_set_size(k->sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_socket_set_ms(k->sock, NNG_OPT_SENDTIMEO,
		 REDIAL_WAIT_MS)) != 0 ||
	    (rv = nng_pipe_notify(k->sock, NNG_PIPE_EV_ADD_POST, gild__pipe_cb, k)) ||
	    (rv = nng_pipe_notify(k->sock, NNG_PIPE_EV_REM_POST, gild__pipe_cb, k)) ||
	    (rv = nng_aio_alloc(&k->aio, gild__recv_cb, k)) != 0)
		return error_set(err, GILD_INTERNAL,
		    "cannot set up an nng socket: %s", nng_strerror(rv));
	nng_recv_aio(k->sock, k->aio);
	return GILD_OK;
}

/* The CA bundle a TLS client trusts when given none (Debian's). */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* For a TLS URL, builds k->tls from opts (NULL: defaults): the server is
 * verified against opts->tls_ca for the URL's host. */
static int
conn_tls(conn *k, const gild_connect_options *opts, gild_error *err)
{
	static const gild_connect_options none;
	tlsconf_opts t = {.server = false, .cert_opt = "tls_cert",
	    .key_opt = "tls_key", .ca_opt = "tls_ca"};
	char msg[PATH_MAX + 256];
	nng_url *u;
	int rv;

	if (!tlsconf_url_is_tls(k->url))
		return GILD_OK;
	if (opts == NULL)
		opts = &none;
	if ((rv = nng_url_parse(&u, k->url)) != 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "bad URL '%s': %s",
		    k->url, nng_strerror(rv));
	k->tls_name = strdup(opts->tls_server_name ? opts->tls_server_name
						   : u->u_hostname);
	nng_url_free(u);
	t.ca = opts->tls_ca;
	if (t.ca == NULL && access(SYSTEM_CA_FILE, R_OK) == 0)
		t.ca = SYSTEM_CA_FILE;
	if (k->tls_name == NULL || (k->tls_ca = strdup(t.ca ? t.ca : "")) ==
	    NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	t.cert = opts->tls_cert;
	t.key = opts->tls_key;
	t.server_name = k->tls_name;
	if (tlsconf_new(&k->tls, &t, msg, sizeof(msg)) != 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "%s: %s", k->url,
		    msg);
	return GILD_OK;
}

/* How long a first TLS dial may take, handshake included. nng 1.5.2 puts
 * no time limit on a TLS handshake (a plain tcp:// one gives up after
 * 10 s): a peer that accepts and then stays silent would hold
 * gild_connect forever. */
#define TLS_DIAL_MS 10000


/* A blocking dial and the thread that closes its dialer if the dial is
 * not over by TLS_DIAL_MS. */
typedef struct dial_watch {
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	nng_dialer d;
	bool done;  /* the dial returned */
	bool fired; /* the watchdog closed the dialer */
} dial_watch;

static void *
dial_watchdog(void *arg)
{
	dial_watch *w = arg;
	struct timespec end;
	bool fire;

	gild__deadline_of(TLS_DIAL_MS, &end);
	pthread_mutex_lock(&w->mtx);
	while (!w->done &&
	    pthread_cond_timedwait(&w->cv, &w->mtx, &end) != ETIMEDOUT)
		;
	fire = w->fired = !w->done;
	pthread_mutex_unlock(&w->mtx);
	if (fire)
		nng_dialer_close(w->d); /* the blocked dial returns an error */
	return NULL;
}

/* nng_dialer_start(d, 0), given up after TLS_DIAL_MS (NNG_ETIMEDOUT, the
 * dialer closed). */
static int
dial_bounded(nng_dialer d)
{
	dial_watch w = {.d = d};
	pthread_condattr_t ca;
	pthread_t t;
	int rv;

	pthread_mutex_init(&w.mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, dial_watchdog, &w) != 0) {
		rv = NNG_ENOMEM;
		goto out;
	}
	rv = nng_dialer_start(d, 0);
	pthread_mutex_lock(&w.mtx);
	w.done = true;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mtx);
	pthread_join(t, NULL);
	/* Fired just as the dial succeeded: the dialer is closed all the
	 * same, so it counts as failed. */
	if (w.fired)
		rv = NNG_ETIMEDOUT;
out:
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	return rv;
}

/* Dials k once (flags 0: waits for the connection, TLS handshake
 * included) or keeps dialing in the background (NNG_FLAG_NONBLOCK). The
 * dialer gets k's TLS settings before it starts; nng redials through the
 * same dialer. Returns 0 or an nng error (the dialer is then closed). */
static int
conn_dial(conn *k, int flags)
{
	nng_dialer d;
	int rv;

	if ((rv = nng_dialer_create(&d, k->sock, k->url)) != 0)
		return rv;
	if (k->tls != NULL &&
	    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, k->tls)) != 0)
		goto fail;
	if (k->tls != NULL && flags == 0)
		rv = dial_bounded(d);
	else
		rv = nng_dialer_start(d, flags);
	if (rv == 0)
		return 0;
fail:
	nng_dialer_close(d);
	return rv;
}

int
gild_connect(gild_client **out, const char *const *urls, size_t n_urls,
    gild_error *err)
{
	return gild_connect_opts(out, urls, n_urls, NULL, err);
}

int
gild_connect_opts(gild_client **out, const char *const *urls, size_t n_urls,
    const gild_connect_options *opts, gild_error *err)
{
	gild_client *c = NULL;
	pthread_condattr_t ca;
	gild_error why = {0};
	size_t n_up = 0;
	int rc = GILD_RESOURCE_EXHAUSTED;

	if (out == NULL || urls == NULL || n_urls == 0)
		return error_set(err, GILD_INVALID_ARGUMENT, "no server URL given");
	for (size_t i = 0; i < n_urls; i++)
		if (urls[i] == NULL || *urls[i] == '\0')
			return error_set(err, GILD_INVALID_ARGUMENT, "empty URL");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return error_set(err, rc, "out of memory");
	pthread_mutex_init(&c->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->resend_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->next_id = 1;
	c->n_buckets = 64;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	c->conns = calloc(n_urls, sizeof(*c->conns));
	if (c->buckets == NULL || c->conns == NULL) {
		error_set(err, rc, "out of memory");
		goto fail;
	}
	c->n_conns = n_urls;
	for (size_t i = 0; i < n_urls; i++)
		c->conns[i].shm_fd = -1; /* before any can fail */
	for (size_t i = 0; i < n_urls; i++) {
		conn *k = &c->conns[i];

		k->c = c;
		k->idx = i;
		if ((k->url = strdup(urls[i])) == NULL) {
			error_set(err, rc, "out of memory");
			goto fail;
		}
		if ((rc = conn_open(k, err)) != GILD_OK ||
		    (rc = conn_tls(k, opts, err)) != GILD_OK)
			goto fail;
	}
	if (opts != NULL && opts->token != NULL &&
	    (rc = gild_set_token(c, opts->token, err)) != GILD_OK)
		goto fail;
	for (size_t i = 0; i < n_urls; i++) {
		conn *k = &c->conns[i];
		int rv = conn_dial(k, 0);

		if (rv == 0) {
			n_up++; /* pipe_cb counts the pipe itself */
		} else if (rv == NNG_ENOTSUP || rv == NNG_EINVAL ||
		    rv == NNG_EADDRINVAL) {
			rc = error_set(err, GILD_INVALID_ARGUMENT,
			    "bad URL '%s': %s", k->url, nng_strerror(rv));
			goto fail;
		} else {
			error_append(&why, k, rv);
			k->redial = true;
		}
	}
	if (n_up == 0) {
		rc = error_set(err, GILD_UNAVAILABLE, "%s",
		    why.message ? why.message : "no server reachable");
		goto fail;
	}
	/* Keep trying the others in the background: their servers may come.
	 * Only now, so that a client that fails closes no dialer in the middle
	 * of a connection (nng 1.5.2 can leak that dialer). */
	for (size_t i = 0; i < n_urls; i++)
		if (c->conns[i].redial)
			conn_dial(&c->conns[i], NNG_FLAG_NONBLOCK);
	gild_error_clear(&why);
	*out = c;
	return GILD_OK;
fail:
	gild_error_clear(&why);
	gild_close(c);
	return rc;
}

/* Under c->mtx: gives replies still on their way (calls not collected, a
 * Cancel's answer) a moment to land. nng 1.5.2's nng_close can hang for
 * good when a reply arrives while it closes (nng issue #1543): waiting
 * until nothing is pending and nothing was sent for CLOSE_QUIET_MS, at
 * most CLOSE_SETTLE_MS in all, makes that rare. */
#define CLOSE_QUIET_MS 50
#define CLOSE_SETTLE_MS 300

static void
settle(gild_client *c)
{
	struct timespec end, now;
	waiter w;

	gild__waiter_init(&w, WAIT_CHANGE, 0);
	gild__deadline_of(CLOSE_SETTLE_MS, &end);
	for (;;) {
		struct timespec quiet = c->last_send;
		quiet.tv_nsec += CLOSE_QUIET_MS * 1000000L;
		if (quiet.tv_nsec >= 1000000000L) {
			quiet.tv_sec++;
			quiet.tv_nsec -= 1000000000L;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		if (c->n_pending == 0 &&
		    (now.tv_sec > quiet.tv_sec ||
			(now.tv_sec == quiet.tv_sec &&
			    now.tv_nsec >= quiet.tv_nsec)))
			break;
		gild__sleep(c, &w, 1, c->n_pending == 0 ? &quiet : &end);
	}
	gild__waiter_fini(&w);
}

int
gild_set_token(gild_client *c, const char *token, gild_error *err)
{
	char *t = NULL;

	if (token != NULL && (t = strdup(token)) == NULL)
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	free(c->token);
	c->token = t;
	return GILD_OK;
}

void
gild__keep_encoded(gild_client *c)
{
	pthread_mutex_lock(&c->mtx);
	c->keep_encoded = true;
	gild__unlock(c);
}

/* Closes c's sockets and frees c: the second half of gild_close. */
static void
close_and_free(gild_client *c)
{
	/* The receives are stopped before their sockets close: nng 1.5.2
	 * sometimes panics ("pthread_mutex_lock: Invalid argument") when a raw
	 * REQ socket is closed with a receive posted just after a reply came.
	 * Closing runs the REM_POST callbacks of its pipes before it returns. */
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].aio != NULL)
			nng_aio_stop(c->conns[i].aio);
	for (size_t i = 0; i < c->n_conns; i++)
		if (c->conns[i].opened)
			nng_close(c->conns[i].sock);
	for (size_t i = 0; i < c->n_conns; i++) {
		if (c->conns[i].aio != NULL)
			nng_aio_free(c->conns[i].aio);
		if (c->conns[i].tls != NULL)
			nng_tls_config_free(c->conns[i].tls);
		gild__shm_close(&c->conns[i]);
		free(c->conns[i].url);
		free(c->conns[i].tls_ca);
		free(c->conns[i].tls_name);
	}
	for (size_t i = 0; c->buckets != NULL && i < c->n_buckets; i++) {
		call *cl = c->buckets[i], *next;

		for (; cl != NULL; cl = next) {
			next = cl->hnext;
			gild__call_free(cl);
		}
	}
	free(c->buckets);
	free(c->conns);
	free(c->token);
	pthread_cond_destroy(&c->resend_cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

/* A close run on a thread of its own, so that gild_close can give up
 * waiting for it: nng 1.5.2's nng_close can wedge for good when the peer
 * died in the middle of a send (nng #1543, fixed after 1.5.2). Whoever
 * comes second (the closer finishing, or gild_close giving up) frees it. */
typedef struct closer {
	pthread_mutex_t mtx;
	pthread_cond_t done_cv;
	bool done, abandoned;
	gild_client *c;
} closer;

static void
closer_free(closer *k)
{
	pthread_cond_destroy(&k->done_cv);
	pthread_mutex_destroy(&k->mtx);
	free(k);
}

static void *
closer_main(void *arg)
{
	closer *k = arg;
	bool abandoned;

	close_and_free(k->c);
	pthread_mutex_lock(&k->mtx);
	k->done = true;
	abandoned = k->abandoned;
	pthread_cond_signal(&k->done_cv);
	pthread_mutex_unlock(&k->mtx);
	if (abandoned)
		closer_free(k);
	return NULL;
}

/* Runs close_and_free(c) on a thread and waits for it at most
 * GILD_CLOSE_WAIT_MS; past that the thread is left to finish (and free c)
 * if nng ever lets it, and gild_close returns. Returns false when no
 * thread could be started (the caller closes inline). */
static bool
close_bounded(gild_client *c)
{
	closer *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	struct timespec end;
	pthread_t t;
	bool done;

	if (k == NULL)
		return false;
	k->c = c;
	pthread_mutex_init(&k->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t, NULL, closer_main, k) != 0) {
		closer_free(k);
		return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += GILD_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&k->mtx);
	while (!k->done &&
	       pthread_cond_timedwait(&k->done_cv, &k->mtx, &end) != ETIMEDOUT)
		;
	done = k->done;
	k->abandoned = !done;
	pthread_mutex_unlock(&k->mtx);
	if (done) {
		pthread_join(t, NULL);
		closer_free(k);
	} else {
		pthread_detach(t);
		fprintf(stderr, "gild_close: nng did not close within %d ms "
				"(nng 1.5.2, nng #1543): going on without it\n",
		    GILD_CLOSE_WAIT_MS);
	}
	return true;
}

void
gild_close(gild_client *c)
{
	if (c == NULL)
		return;
	/* Streams left open keep only their chunks (gild_stream_close); the
	 * pipe callbacks of the closing sockets no longer see them. */
	pthread_mutex_lock(&c->mtx);
	for (gild_stream *s = c->streams; s != NULL; s = s->next)
		s->c = NULL;
	c->streams = NULL;
	settle(c);
	c->stopping = true;
	pthread_cond_signal(&c->resend_cv);
	gild__unlock(c);
	if (c->resender_started)
		pthread_join(c->resender, NULL);
	if (!close_bounded(c))
		close_and_free(c);
}

