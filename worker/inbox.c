/* inbox: what the front end sends a worker, read off its socket and handed
 * to the job threads (inbox.h).
 *
 * Who reads the socket. A job thread with nothing to run reads it itself:
 * the front end's write wakes the thread that runs the call, and nothing
 * else (one wake-up per call where a reader thread that handed calls on
 * made two). While every job thread runs a call nobody reads, until one
 * of them comes back for its next call: frames then wait in the socket,
 * and take-backs and interrupts with them. So that a long call can still
 * be interrupted, and a call sent ahead behind it taken back, each call's
 * start arms a timer: if it fires (AUX_AFTER_NS after the latest start)
 * while the job threads still all run calls, the reader thread takes the
 * socket over, until a job thread wants it back. A stream, which waits for
 * credit as it runs, asks for the reader thread at once
 * (inbox_need_reader). An app with async functions has its asyncio loops
 * take calls without waiting: there the reader thread reads all along.
 *
 * Every call goes into one queue that all job threads take from, oldest
 * first, so no thread idles while a call waits (and the front end, which
 * counts on that order, knows which calls have started). The exception is
 * a job for an actor: it goes to the queue of the one thread that runs
 * that actor (actor id modulo the thread count), so an actor always runs
 * on the thread that created it. Whoever reads acts on interrupts, credit
 * and take-backs at once, in the order they came. */
#include <Python.h>

#include "inbox.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "fields.h"
#include "frame.h"
#include "gild.pb-c.h"
#include "interrupt.h"
#include "reply.h"
#include "wire.h"

/* How long the job threads may all run calls with nobody reading. */
#define AUX_AFTER_NS 1000000

/* What inbox_init was given. */
static int sock = -1, nthreads = 1;
static pthread_mutex_t *write_mu;
static pthread_t reader;
/* Whoever holds the read side (inbox.reading) reads through rd. */
static frame_reader rd;
/* The reader thread's doorbell (inbox.aux_now, want_back, the end) and
 * its timer (see above); and what wakes job threads waiting in poll once
 * the inbox has ended (written once, never read: it stays readable). */
static int bell = -1, timer = -1, endfd = -1;

typedef struct inbox_item {
	uint8_t *buf;
	size_t len;
	uint64_t job_id; /* ToWorker.job_id: what a TakeBack names */
	struct inbox_item *next;
} inbox_item;

typedef struct inbox_queue {
	inbox_item *head, *tail;
} inbox_queue;

/* Who reads the socket now. */
enum reading { R_NONE, R_JOB, R_AUX };

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* for job threads: a call, the read side, the end */
	inbox_queue any;     /* for any thread */
	inbox_queue *pinned; /* [nthreads]: for that thread only */
	int end; /* 0 while reading; 1 at EOF; a negative errno on error */
	int stop; /* a job thread stopped the worker: take nothing more */
	bool shared;  /* job threads read too (no asyncio loops) */
	enum reading reading;
	bool *busy;   /* [nthreads]: that thread runs a call */
	int nbusy;
	int waiting;  /* job threads waiting on cv */
	bool aux_now;   /* a stream wants the reader thread to read */
	bool want_back; /* a job thread wants the read side back */
} inbox = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL, NULL},
    NULL, 0, 0, false, R_NONE, NULL, 0, 0, false, false};

int
inbox_init(int fd, int chan, int n, int shared, pthread_mutex_t *wmu)
{
	sock = fd;
	nthreads = n;
	write_mu = wmu;
	inbox.shared = shared;
	inbox.reading = shared ? R_NONE : R_AUX;
	inbox.pinned = calloc((size_t) nthreads, sizeof(*inbox.pinned));
	inbox.busy = calloc((size_t) nthreads, sizeof(*inbox.busy));
	bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	endfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (inbox.pinned == NULL || inbox.busy == NULL || bell == -1 ||
	    endfd == -1 || timer == -1 || frame_reader_init(&rd, fd, chan,
		FRAME_MAX_PAYLOAD) != 0)
		return -1;
	return 0;
}

/* Rings the doorbell fd (an eventfd). */
static void
ring_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) == -1)
		(void) 0; /* a full counter rings too */
}

/* Rings the reader thread's doorbell. */
static void
ring(void)
{
	ring_fd(bell);
}

/* Under inbox.mu: something arrived for thread k (-1: any thread, or the
 * stream ended). Wakes the threads waiting here, or their asyncio loops. */
static void
inbox_signal(int k)
{
	if (k == -1 && nthreads == 1)
		pthread_cond_signal(&inbox.cv);
	else
		pthread_cond_broadcast(&inbox.cv);
	interrupt_async_wake(k);
}

/* Under inbox.mu: the inbox is at its end (see inbox.end); every thread
 * stops once the queues are empty. */
static void
inbox_close(int end)
{
	if (inbox.end == 0) {
		inbox.end = end;
		ring_fd(endfd);
	}
	inbox_signal(-1);
	ring();
}

/* The thread that must run the job in buf: the one of its actor (creating,
 * calling or destroying it), or -1 for any thread. */
static int
thread_for(const uint8_t *buf, size_t len)
{
	wire_field f, call;
	uint64_t actor = 0;

	if (nthreads == 1)
		return -1;
	if (wire_find(buf, len, GILD_WF_TO_WORKER_ACTOR_ID, &f) == 1 &&
	    f.type == WIRE_VARINT)
		actor = f.value;
	else if (wire_find(buf, len, GILD_WF_TO_WORKER_CALL, &call) == 1 &&
		 call.type == WIRE_LEN &&
		 wire_find(call.data, call.len, GILD_F_CALL_ACTOR_ID, &f) ==
		     1 &&
		 f.type == WIRE_VARINT)
		actor = f.value;
	return actor != 0 ? (int) (actor % (uint64_t) nthreads) : -1;
}

/* TakeBack: drops job_id from the shared queue if no job thread has taken
 * it yet, and answers whether it did. A thread writes a call's result
 * before it takes the next one, so when the answer is "started" the
 * results of the calls before it have been written already, and when it
 * is "returned" the front end counts the call after it as the one that
 * started in its place. The answer is written before inbox.mu is let go:
 * no thread takes that next call before it, so a worker that dies before
 * answering has started none in its place, and the front end, which read
 * everything it wrote, knows which calls started (sched_slot_lost). Calls
 * sent ahead are plain calls, which wait in the shared queue only.
 * Returns 0, or -1 when the answer cannot go. */
static int
take_back(int fd, uint64_t job_id)
{
	inbox_item *it, *prev = NULL;
	uint8_t out[REPLY_TAKEN_BACK_MAX];
	size_t len;
	int rc;

	pthread_mutex_lock(&inbox.mu);
	for (it = inbox.any.head; it != NULL && it->job_id != job_id;
	     it = it->next)
		prev = it;
	if (it != NULL) {
		if (prev != NULL)
			prev->next = it->next;
		else
			inbox.any.head = it->next;
		if (inbox.any.tail == it)
			inbox.any.tail = prev;
	}
	len = reply_taken_back(job_id, it != NULL, out);
	pthread_mutex_lock(write_mu);
	rc = frame_write(fd, out, len);
	pthread_mutex_unlock(write_mu);
	pthread_mutex_unlock(&inbox.mu);
	if (it != NULL) {
		frame_free(it->buf);
		free(it);
	}
	return rc == 0 ? 0 : -1;
}

/* Acts on buf if it is an Interrupt, a Credit or a TakeBack (and frees
 * it): returns 1, or -1 when a TakeBack's answer could not be sent; 0 if
 * it is none of them. */
static int
take_control(int fd, uint8_t *buf, size_t len)
{
	wire_field id, body, f;
	int rc = 1;
	uint64_t job_id = 0;

	if (wire_find(buf, len, GILD_WF_TO_WORKER_JOB_ID, &id) == 1 &&
	    id.type == WIRE_VARINT)
		job_id = id.value;
	if (wire_find(buf, len, GILD_WF_TO_WORKER_INTERRUPT, &body) == 1 &&
	    body.type == WIRE_LEN) {
		int c = GILD__V1__CODE__CANCELLED;
		if (wire_find(body.data, body.len, GILD_WF_INTERRUPT_CODE,
			&f) == 1 &&
		    f.type == WIRE_VARINT &&
		    f.value == GILD__V1__CODE__DEADLINE_EXCEEDED)
			c = GILD__V1__CODE__DEADLINE_EXCEEDED;
		interrupt_request(job_id, c);
	} else if (wire_find(buf, len, GILD_WF_TO_WORKER_CREDIT, &body) == 1 &&
		   body.type == WIRE_LEN) {
		if (wire_find(body.data, body.len, GILD_WF_CREDIT_N, &f) ==
			1 &&
		    f.type == WIRE_VARINT && f.value <= UINT32_MAX)
			interrupt_credit(job_id, (uint32_t) f.value);
	} else if (wire_find(buf, len, GILD_WF_TO_WORKER_TAKE_BACK, &body) ==
		       1 &&
		   body.type == WIRE_LEN) {
		rc = take_back(fd, job_id) == 0 ? 1 : -1;
	} else {
		return 0;
	}
	frame_free(buf);
	return rc;
}

/* Acts on one frame read off the socket, or queues it for a job thread
 * (taking buf). Returns 0, or the inbox's end when it cannot go on. */
static int
dispatch(uint8_t *buf, size_t len)
{
	inbox_item *it;
	inbox_queue *q;
	wire_field id;
	int rc, k;

	if ((rc = take_control(sock, buf, len)) == 1)
		return 0;
	if (rc < 0)
		return -EIO;
	if ((it = malloc(sizeof(*it))) == NULL) {
		frame_free(buf);
		return -ENOMEM;
	}
	it->buf = buf;
	it->len = len;
	it->job_id = wire_find(buf, len, GILD_WF_TO_WORKER_JOB_ID, &id) == 1 &&
			     id.type == WIRE_VARINT
			 ? id.value
			 : 0;
	it->next = NULL;
	k = thread_for(buf, len);
	pthread_mutex_lock(&inbox.mu);
	q = k == -1 ? &inbox.any : &inbox.pinned[k];
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	inbox_signal(k);
	pthread_mutex_unlock(&inbox.mu);
	return 0;
}

/* By the holder of the read side: acts on or queues every frame that has
 * arrived (without wait, reading at least once: the reader thread calls it
 * when poll found the socket readable). With wait, waits until at least
 * one has, in poll: the inbox's
 * end wakes it there too (a job thread may end it while another waits),
 * and it is not woken each time the front end reads what this worker
 * wrote (a task blocked in recv on a Unix stream socket is woken by the
 * peer's reads too, as they free write space: one wake-up per call more,
 * for nothing). Returns 0, or the inbox's end (1 at EOF, a negative
 * errno). */
static int
read_frames(bool wait)
{
	uint8_t *buf;
	size_t len;
	int rc, got = 0;

	for (;;) {
		while ((rc = frame_reader_next(&rd, &buf, &len)) == 0) {
			got++;
			if ((rc = dispatch(buf, len)) != 0)
				return rc;
		}
		if (rc != -EAGAIN)
			return rc == -ECONNRESET ? 1 : rc;
		/* Read again only when it may bring something: what came
		 * in one read is what had arrived. */
		if (got > 0 && !rd.more)
			return 0;
		if (got == 0 && wait) {
			struct pollfd p[2] = {{sock, POLLIN, 0},
			    {endfd, POLLIN, 0}};
			if (poll(p, 2, -1) == -1 && errno != EINTR)
				return -errno;
			if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
				return 0; /* ended: inbox_take sees it */
		}
		rc = frame_reader_fill(&rd, 1);
		if (rc == -EAGAIN)
			return 0;
		if (rc != 0)
			return rc == -ECONNRESET ? 1 : rc;
	}
}

/* The reader thread reads all along: an app with asyncio loops. */
static void
read_always(void)
{
	int rc;

	while ((rc = read_frames(true)) == 0)
		;
	pthread_mutex_lock(&inbox.mu);
	inbox_close(rc);
	pthread_mutex_unlock(&inbox.mu);
}

/* Empties fd, an eventfd or a timerfd: whether it had fired. */
static bool
drain_fd(int fd)
{
	uint64_t n;

	return read(fd, &n, sizeof(n)) == sizeof(n);
}

static void *
reader_main(void *arg)
{
	bool fired = false;
	int rc;

	if (!inbox.shared) {
		read_always();
		return NULL;
	}
	for (;;) {
		struct pollfd p[3] = {{bell, POLLIN, 0}, {timer, POLLIN, 0},
		    {sock, POLLIN, 0}};
		bool mine;

		pthread_mutex_lock(&inbox.mu);
		if (inbox.end != 0 || inbox.stop) {
			pthread_mutex_unlock(&inbox.mu);
			return NULL;
		}
		if (inbox.reading == R_AUX && inbox.want_back) {
			/* A job thread has nothing to run: it reads again. */
			inbox.reading = R_NONE;
			pthread_cond_broadcast(&inbox.cv);
		} else if (inbox.reading == R_NONE && inbox.nbusy > 0 &&
			   (fired || inbox.aux_now)) {
			inbox.reading = R_AUX;
		}
		inbox.want_back = inbox.aux_now = false;
		mine = inbox.reading == R_AUX;
		pthread_mutex_unlock(&inbox.mu);
		if (poll(p, mine ? 3 : 2, -1) == -1 && errno != EINTR) {
			rc = -errno;
			goto end;
		}
		if (p[0].revents)
			drain_fd(bell);
		fired = p[1].revents && drain_fd(timer);
		if (mine && p[2].revents && (rc = read_frames(false)) != 0)
			goto end;
	}
end:
	pthread_mutex_lock(&inbox.mu);
	inbox_close(rc);
	pthread_mutex_unlock(&inbox.mu);
	return NULL;
}

/* Under inbox.mu: the first item of q, unlinked, or NULL. */
static inbox_item *
queue_pop(inbox_queue *q)
{
	inbox_item *it = q->head;

	if (it != NULL && (q->head = it->next) == NULL)
		q->tail = NULL;
	return it;
}

/* Starts the reader thread's timer (see the top of the file). */
static void
arm_timer(void)
{
	struct itimerspec t = {{0, 0}, {0, AUX_AFTER_NS}};

	timerfd_settime(timer, 0, &t, NULL);
}

/* Under inbox.mu, by a job thread that may take the read side: reads
 * (read_frames) with the lock released, then gives the read side back;
 * an end it found ends the inbox. */
static void
job_reads(bool wait)
{
	int rc;

	inbox.reading = R_JOB;
	pthread_mutex_unlock(&inbox.mu);
	rc = read_frames(wait);
	pthread_mutex_lock(&inbox.mu);
	inbox.reading = R_NONE;
	if (rc != 0)
		inbox_close(rc);
}

uint8_t *
inbox_take(size_t *len, int *end, int wait)
{
	int self = interrupt_thread_index();
	inbox_queue *mine = &inbox.pinned[self];
	inbox_item *it = NULL;
	uint8_t *buf = NULL;

	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&inbox.mu);
	if (inbox.busy[self]) {
		inbox.busy[self] = false;
		inbox.nbusy--;
	}
	for (bool fresh = false;;) {
		if (inbox.shared && inbox.reading == R_NONE && !fresh &&
		    inbox.end == 0 && !inbox.stop && wait &&
		    (mine->head != NULL || inbox.any.head != NULL)) {
			/* Calls are queued, but what came behind them (a
			 * take-back, an interrupt) is acted on first, as the
			 * reader thread would have. */
			job_reads(false);
		}
		fresh = true;
		if (inbox.stop || (it = queue_pop(mine)) != NULL ||
		    (it = queue_pop(&inbox.any)) != NULL || inbox.end != 0 ||
		    !wait)
			break;
		if (inbox.shared && inbox.reading == R_NONE) {
			job_reads(true);
			continue;
		}
		if (inbox.shared && inbox.reading == R_AUX &&
		    !inbox.want_back) {
			inbox.want_back = true;
			ring();
		}
		inbox.waiting++;
		pthread_cond_wait(&inbox.cv, &inbox.mu);
		inbox.waiting--;
	}
	if (it != NULL && inbox.shared) {
		inbox.busy[self] = true;
		inbox.nbusy++;
		/* The read side is free: another idle thread takes it. */
		if (inbox.reading == R_NONE && inbox.waiting > 0)
			pthread_cond_signal(&inbox.cv);
	}
	*end = inbox.stop ? 1 : inbox.end; /* the stopper reports the cause */
	pthread_mutex_unlock(&inbox.mu);
	if (it != NULL && inbox.shared)
		arm_timer();
	Py_END_ALLOW_THREADS
	if (it != NULL) {
		buf = it->buf;
		*len = it->len;
		free(it);
	}
	return buf;
}

void
inbox_need_reader(void)
{
	if (!inbox.shared)
		return;
	pthread_mutex_lock(&inbox.mu);
	inbox.aux_now = true;
	pthread_mutex_unlock(&inbox.mu);
	ring();
}

void
inbox_stop(void)
{
	pthread_mutex_lock(&inbox.mu);
	inbox.stop = 1;
	inbox_close(-EIO);
	pthread_mutex_unlock(&inbox.mu);
}

int
inbox_start(void)
{
	return pthread_create(&reader, NULL, reader_main, NULL) == 0 ? 0 : -1;
}

void
inbox_join(void)
{
	/* Wakes a reader still blocked in recv, or in poll. */
	shutdown(sock, SHUT_RDWR);
	ring();
	pthread_join(reader, NULL);
}
