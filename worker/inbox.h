/* inbox: what the front end sends a worker, read off its socket and handed
 * to the job threads. Calls wait in a queue all job threads take from
 * (oldest first), or, for an actor, in the queue of the one thread that
 * runs it; interrupts, stream credit and take-backs are acted on as they
 * are read. */
#ifndef GILD_WORKER_INBOX_H
#define GILD_WORKER_INBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Reads frames from fd (with large ones through memfds on chan, -1: none)
 * for nthreads job threads. shared: job threads with nothing to run read
 * fd themselves (inbox_take with wait); 0: only the reader thread does (for
 * asyncio loops, which take calls without waiting). Answers to take-backs
 * are written to fd under write_mu, the lock every writer of fd holds,
 * taken inside the inbox's own lock (so a holder of write_mu must not wait
 * for the inbox). Call once. Returns 0 or -1 (out of memory). */
int inbox_init(int fd, int chan, int nthreads, int shared,
    pthread_mutex_t *write_mu);

/* Starts the reader thread. Returns 0 or -1. */
int inbox_start(void);

/* Stops the reader thread (it may be blocked reading: its socket is shut
 * down) and waits for it. Call without the GIL: the reader takes it to
 * deliver interrupts. */
void inbox_join(void);

/* The calling job thread's next call's frame (caller frees with
 * frame_free), or NULL with *end set once the inbox has ended and holds
 * nothing for it (or, when wait is 0, when nothing is there now): 1 at the
 * front end's EOF or after inbox_stop, a negative errno on an error. Its
 * own queue comes first. Needs the GIL, and waits without it (reading the
 * socket itself when nobody else does, with shared). */
uint8_t *inbox_take(size_t *len, int *end, int wait);

/* The calling job thread's call needs what the front end sends while it
 * runs (a stream's credit): the reader thread reads from now on, until a
 * job thread has nothing to run. */
void inbox_need_reader(void);

/* Stops every job thread: they take nothing more from the inbox. For a
 * thread whose worker cannot go on (a socket error, out of memory). */
void inbox_stop(void);

#endif
