/* inbox: what the front end sends a worker, read off its socket and handed
 * to the job threads (inbox.h). */
#include <Python.h>

#include "inbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "frame.h"
#include "gild.pb-c.h"
#include "interrupt.h"
#include "reply.h"
#include "wire.h"

/* What inbox_init was given. */
static int sock = -1, chan = -1, nthreads = 1;
static pthread_mutex_t *write_mu;
static pthread_t reader;

/* The reader thread owns the socket's read side: calls go into the inbox
 * for the threads that run Python; interrupts and take-backs are acted on
 * at once (the Python threads are busy running the jobs they are about).
 * Every call goes into one queue that all job threads take from, oldest
 * first, so no thread idles while a call waits (and the front end, which
 * counts on that order, knows which calls have started). The exception is
 * a job for an actor: it goes to the queue of the one thread that runs
 * that actor (actor id modulo the thread count), so an actor always runs
 * on the thread that created it. */
typedef struct inbox_item {
	uint8_t *buf;
	size_t len;
	uint64_t job_id; /* ToWorker.job_id: what a TakeBack names */
	struct inbox_item *next;
} inbox_item;

typedef struct inbox_queue {
	inbox_item *head, *tail;
} inbox_queue;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	inbox_queue any;     /* for any thread */
	inbox_queue *pinned; /* [nthreads]: for that thread only */
	int end; /* 0 while reading; 1 at EOF; a negative errno on error */
	int stop; /* a job thread stopped the worker: take nothing more */
} inbox = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL, NULL},
    NULL, 0, 0};

int
inbox_init(int fd, int ch, int n, pthread_mutex_t *wmu)
{
	sock = fd;
	chan = ch;
	nthreads = n;
	write_mu = wmu;
	inbox.pinned = calloc((size_t) nthreads, sizeof(*inbox.pinned));
	return inbox.pinned != NULL ? 0 : -1;
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
	if (inbox.end == 0)
		inbox.end = end;
	inbox_signal(-1);
}

/* ToWorker field numbers (worker.proto). */
enum {
	TW_JOB_ID = 1,
	TW_CALL = 2,
	TW_INTERRUPT = 3,
	TW_CREDIT = 5,
	TW_ACTOR_ID = 11,
	TW_TAKE_BACK = 14,
	CALL_ACTOR_ID = 7,
	INTERRUPT_CODE = 1,
	CREDIT_N = 1,
};

/* The thread that must run the job in buf: the one of its actor (creating,
 * calling or destroying it), or -1 for any thread. */
static int
thread_for(const uint8_t *buf, size_t len)
{
	wire_field f, call;
	uint64_t actor = 0;

	if (nthreads == 1)
		return -1;
	if (wire_find(buf, len, TW_ACTOR_ID, &f) == 1 && f.type == WIRE_VARINT)
		actor = f.value;
	else if (wire_find(buf, len, TW_CALL, &call) == 1 &&
		 call.type == WIRE_LEN &&
		 wire_find(call.data, call.len, CALL_ACTOR_ID, &f) == 1 &&
		 f.type == WIRE_VARINT)
		actor = f.value;
	return actor != 0 ? (int) (actor % (uint64_t) nthreads) : -1;
}

/* TakeBack: drops job_id from the shared queue if no job thread has taken
 * it yet, and answers whether it did. A thread writes a call's result
 * before it takes the next one, so when the answer is "started" the
 * results of the calls before it have been written already, and when it
 * is "returned" the front end counts the call after it as the one that
 * started in its place. Calls sent ahead are plain calls, which wait in
 * the shared queue only. Returns 0, or -1 when the answer cannot go. */
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
	pthread_mutex_unlock(&inbox.mu);
	if (it != NULL) {
		frame_free(it->buf);
		free(it);
	}
	len = reply_taken_back(job_id, it != NULL, out);
	pthread_mutex_lock(write_mu);
	rc = frame_write(fd, out, len);
	pthread_mutex_unlock(write_mu);
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

	if (wire_find(buf, len, TW_JOB_ID, &id) == 1 && id.type == WIRE_VARINT)
		job_id = id.value;
	if (wire_find(buf, len, TW_INTERRUPT, &body) == 1 &&
	    body.type == WIRE_LEN) {
		int c = GILD__V1__CODE__CANCELLED;
		if (wire_find(body.data, body.len, INTERRUPT_CODE, &f) == 1 &&
		    f.type == WIRE_VARINT &&
		    f.value == GILD__V1__CODE__DEADLINE_EXCEEDED)
			c = GILD__V1__CODE__DEADLINE_EXCEEDED;
		interrupt_request(job_id, c);
	} else if (wire_find(buf, len, TW_CREDIT, &body) == 1 &&
		   body.type == WIRE_LEN) {
		if (wire_find(body.data, body.len, CREDIT_N, &f) == 1 &&
		    f.type == WIRE_VARINT && f.value <= UINT32_MAX)
			interrupt_credit(job_id, (uint32_t) f.value);
	} else if (wire_find(buf, len, TW_TAKE_BACK, &body) == 1 &&
		   body.type == WIRE_LEN) {
		rc = take_back(fd, job_id) == 0 ? 1 : -1;
	} else {
		return 0;
	}
	frame_free(buf);
	return rc;
}

static void *
reader_main(void *arg)
{
	int fd = sock;

	for (;;) {
		inbox_item *it;
		uint8_t *buf = NULL;
		size_t len = 0;
		wire_field id;
		int rc = frame_read_shm(fd, chan, &buf, &len,
		    FRAME_MAX_PAYLOAD);
		inbox_queue *q;
		int k;

		if (rc < 0) {
			pthread_mutex_lock(&inbox.mu);
			inbox_close(rc == -ECONNRESET ? 1 : rc);
			pthread_mutex_unlock(&inbox.mu);
			return NULL;
		}
		if ((rc = take_control(fd, buf, len)) == 1)
			continue;
		if (rc < 0) {
			pthread_mutex_lock(&inbox.mu);
			inbox_close(-EIO);
			pthread_mutex_unlock(&inbox.mu);
			return NULL;
		}
		if ((it = malloc(sizeof(*it))) == NULL) {
			frame_free(buf);
			pthread_mutex_lock(&inbox.mu);
			inbox_close(-ENOMEM);
			pthread_mutex_unlock(&inbox.mu);
			return NULL;
		}
		it->buf = buf;
		it->len = len;
		it->job_id = wire_find(buf, len, TW_JOB_ID, &id) == 1 &&
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
	}
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

uint8_t *
inbox_take(size_t *len, int *end, int wait)
{
	inbox_queue *mine = &inbox.pinned[interrupt_thread_index()];
	inbox_item *it;
	uint8_t *buf = NULL;

	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&inbox.mu);
	while (wait && mine->head == NULL && inbox.any.head == NULL &&
	       inbox.end == 0)
		pthread_cond_wait(&inbox.cv, &inbox.mu);
	it = NULL;
	if (!inbox.stop && (it = queue_pop(mine)) == NULL)
		it = queue_pop(&inbox.any);
	*end = inbox.stop ? 1 : inbox.end; /* the stopper reports the cause */
	pthread_mutex_unlock(&inbox.mu);
	Py_END_ALLOW_THREADS
	if (it != NULL) {
		buf = it->buf;
		*len = it->len;
		free(it);
	}
	return buf;
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
	shutdown(sock, SHUT_RDWR); /* wakes a reader still blocked in read */
	pthread_join(reader, NULL);
}
