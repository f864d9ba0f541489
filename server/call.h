/* call: the life of one call in the front end, as a state machine. Every
 * event that moves a call (it is sent to a worker, taken back, answered,
 * its deadline passes, its client cancels or leaves, its worker dies, the
 * server stops) goes through call_on, which says what the front end must do
 * and moves the call to its next state. Pure: no I/O, no clocks, so that
 * tests/unit/test_call.c can drive it through every event in every state.
 *
 * The one-reply rule lives here: a call answers its client at most once
 * (exactly once, by the time it is done, unless nobody waits for it), so
 * whatever happens after its client has its answer only frees it. */
#ifndef GILD_SERVER_CALL_H
#define GILD_SERVER_CALL_H

#include <stdbool.h>
#include <stdint.h>

typedef enum call_state {
	CALL_WAITING,  /* behind its actor's earlier calls, not yet queued */
	CALL_QUEUED,   /* in the front end's queue */
	CALL_SENT,     /* on a worker: started, or waiting there (sent ahead:
			  the scheduler's job.ahead says which) */
	CALL_STOPPING, /* on a worker, asked to stop (deadline or cancel):
			  it has --kill-grace to end */
	CALL_KILLING,  /* it did not stop in time: its worker is being
			  killed, and the worker's death ends it */
	CALL_DONE,     /* ended: to be freed */
	CALL_STATES
} call_state;

typedef enum call_event {
	CE_QUEUED,    /* its actor's turn came: it joins the queue */
	CE_SENT,      /* the scheduler placed it on a worker */
	CE_RETURNED,  /* a take-back's answer: the worker gave it back
			 (it is queued again) */
	CE_HELD,      /* queued for its actor's worker, which died: it
			 waits for the actor's new instance */
	CE_ENDED,     /* the worker's answer: a result or an error */
	CE_TIMER,     /* its timer fired: its deadline, or, once it was
			 asked to stop, the --kill-grace after that */
	CE_CANCEL,    /* its client cancelled it */
	CE_GONE,      /* its client's connection closed */
	CE_LOST,      /* its worker died */
	CE_SEND_FAILED, /* it could not be written to the worker */
	CE_STOP,      /* the server stops */
	CALL_EVENTS
} call_event;

/* What the front end does for a step. Every action that ends the call
 * (call_step.done) frees it afterwards. */
typedef enum call_action {
	CA_NONE,
	CA_REPLY,       /* answer with the worker's answer */
	CA_FAIL,        /* answer with an error: code (unless answered) */
	CA_DROP,        /* take it out of the queue (or its actor's), then
			   as CA_FAIL: it never ran */
	CA_FREE,        /* its client has its answer already */
	CA_INTERRUPT,   /* ask its worker to stop it and wait --kill-grace;
			   with `answer`, tell its client now that it did not
			   run (it waits behind others in that worker, which
			   will skip it) */
	CA_WAIT,        /* wait --kill-grace more: it has not started yet */
	CA_KILL,        /* kill its worker; CE_LOST follows */
	CA_REQUEUE,     /* back to the head of the queue: it never started */
	CA_RETRY,       /* back to the head of the queue, one retry used */
	CALL_ACTIONS
} call_action;

/* What the front end knows about the call besides its state. */
typedef enum call_fact {
	CF_AHEAD = 1,      /* on a worker but not started (job.ahead) */
	CF_ALL_READ = 2,   /* CE_LOST: every frame the worker wrote was
			      read, so "not started" is known to be true */
} call_fact;

typedef struct call {
	call_state state;
	bool answered;         /* its client has its one reply */
	bool internal;         /* the server's own: nobody waits for a reply */
	bool retryable;        /* a plain call: may run again after a death */
	uint32_t retries_left; /* @gild.function(retries=N) */
	int stop_code;         /* once asked to stop: DEADLINE_EXCEEDED or
				  CANCELLED (a gild.v1.Code) */
} call;

typedef struct call_step {
	call_action action;
	int code;    /* CA_FAIL, CA_DROP, CA_INTERRUPT: the gild.v1.Code */
	bool answer; /* this step answers the client (its one reply) */
	bool done;   /* the call ended: free it after the action */
	bool killed; /* CA_FAIL after CALL_KILLING: it was stopped by killing
			its worker (for the message) */
} call_step;

/* A call starting in state (CALL_QUEUED, or CALL_WAITING for an actor's
 * call). */
void call_init(call *c, call_state state, bool internal, bool retryable,
    uint32_t retries);

/* Feeds event ev (facts: a mask of call_fact) to c: moves c and returns
 * what to do. An event that cannot happen in c's state is answered with
 * CA_NONE and leaves c as it was. */
call_step call_on(call *c, call_event ev, unsigned facts);

/* The front end fails c for a reason of its own (its actor is gone, the
 * queue is full, no memory for the reply): c is done, and the step's
 * `answer` says whether the reply is still to be sent (action CA_FAIL)
 * or its client has it already (CA_FREE). */
call_step call_fail(call *c);

const char *call_state_name(call_state s);
const char *call_event_name(call_event e);

#endif
