/* call: the life of one call in the front end, as a state machine
 * (call.h). */
#include "call.h"

#include "gild.pb-c.h"

void
call_init(call *c, call_state state, bool internal, bool retryable,
    uint32_t retries)
{
	*c = (call){.state = state, .internal = internal,
	    .retryable = retryable, .retries_left = retries};
}

/* c ends with action a (CA_REPLY, CA_FAIL or CA_DROP; code for the last
 * two): the one reply goes now, unless its client has it already or
 * nobody waits for it. */
static call_step
end(call *c, call_action a, int code)
{
	call_step st = {.action = a, .code = code, .done = true};

	st.killed = c->state == CALL_KILLING;
	c->state = CALL_DONE;
	if (c->answered) {
		if (a != CA_DROP)
			st.action = CA_FREE; /* a drop still unlinks it */
	} else if (!c->internal) {
		st.answer = true;
		c->answered = true;
	}
	return st;
}

/* c, on a worker, is asked to stop with code. One that has not started
 * there (ahead) is answered now, as if it were still queued: the worker
 * skips it. */
static call_step
stop(call *c, int code, bool ahead)
{
	call_step st = {.action = CA_INTERRUPT, .code = code};

	c->state = CALL_STOPPING;
	c->stop_code = code;
	if (ahead && !c->internal && !c->answered) {
		st.answer = true;
		c->answered = true;
	}
	return st;
}

/* The stop code of an event that stops a call: its deadline, or its
 * client. */
static int
event_code(call_event ev)
{
	return ev == CE_TIMER ? GILD__V1__CODE__DEADLINE_EXCEEDED
			      : GILD__V1__CODE__CANCELLED;
}

/* Waiting for its turn, or queued: it has not run. */
static call_step
on_unstarted(call *c, call_event ev)
{
	switch (ev) {
	case CE_QUEUED:
		if (c->state == CALL_WAITING)
			c->state = CALL_QUEUED;
		break;
	case CE_SENT:
		if (c->state == CALL_QUEUED)
			c->state = CALL_SENT;
		break;
	case CE_HELD:
		if (c->state == CALL_QUEUED)
			c->state = CALL_WAITING;
		break;
	case CE_TIMER:
	case CE_CANCEL:
	case CE_GONE:
		return end(c, CA_DROP, event_code(ev));
	default:
		break;
	}
	return (call_step){.action = CA_NONE};
}

/* On a worker, not asked to stop. */
static call_step
on_sent(call *c, call_event ev, unsigned facts)
{
	bool ahead = (facts & CF_AHEAD) != 0;

	switch (ev) {
	case CE_RETURNED:
		c->state = CALL_QUEUED;
		break;
	case CE_ENDED:
		return end(c, CA_REPLY, GILD__V1__CODE__OK);
	case CE_TIMER:
	case CE_CANCEL:
	case CE_GONE:
		return stop(c, event_code(ev), ahead);
	case CE_LOST:
		if (ahead && (facts & CF_ALL_READ)) {
			c->state = CALL_QUEUED; /* it never started */
			return (call_step){.action = CA_REQUEUE};
		}
		if (c->retryable && c->retries_left > 0) {
			c->retries_left--;
			c->state = CALL_QUEUED;
			return (call_step){.action = CA_RETRY};
		}
		return end(c, CA_FAIL, GILD__V1__CODE__WORKER_LOST);
	case CE_SEND_FAILED:
		return end(c, CA_FAIL, GILD__V1__CODE__INTERNAL);
	default:
		break;
	}
	return (call_step){.action = CA_NONE};
}

/* Asked to stop (CALL_STOPPING), or its worker being killed for not
 * stopping (CALL_KILLING). However it ends now, it ends with its stop
 * code. */
static call_step
on_stopping(call *c, call_event ev, unsigned facts)
{
	switch (ev) {
	case CE_RETURNED:
		return end(c, CA_DROP, c->stop_code); /* it never ran */
	case CE_ENDED:
	case CE_LOST:
		return end(c, CA_FAIL, c->stop_code);
	case CE_TIMER: /* --kill-grace */
		if (c->state != CALL_STOPPING)
			break;
		if (facts & CF_AHEAD) /* not started: nothing to kill yet */
			return (call_step){.action = CA_WAIT};
		c->state = CALL_KILLING;
		return (call_step){.action = CA_KILL};
	default:
		break;
	}
	return (call_step){.action = CA_NONE};
}

call_step
call_on(call *c, call_event ev, unsigned facts)
{
	if (ev == CE_STOP && c->state != CALL_DONE)
		return end(c, CA_FAIL, GILD__V1__CODE__UNAVAILABLE);
	switch (c->state) {
	case CALL_WAITING:
	case CALL_QUEUED:
		return on_unstarted(c, ev);
	case CALL_SENT:
		return on_sent(c, ev, facts);
	case CALL_STOPPING:
	case CALL_KILLING:
		return on_stopping(c, ev, facts);
	default:
		return (call_step){.action = CA_NONE};
	}
}

call_step
call_fail(call *c)
{
	return end(c, CA_FAIL, 0);
}

const char *
call_state_name(call_state s)
{
	static const char *const names[CALL_STATES] = {"waiting", "queued",
	    "sent", "stopping", "killing", "done"};

	return s < CALL_STATES ? names[s] : "?";
}

const char *
call_event_name(call_event e)
{
	static const char *const names[CALL_EVENTS] = {"queued", "sent",
	    "returned", "held", "ended", "timer", "cancel", "gone", "lost",
	    "send-failed", "stop"};

	return e < CALL_EVENTS ? names[e] : "?";
}
