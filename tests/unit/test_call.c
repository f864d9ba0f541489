/* Tests of server/call.c: a call's state machine, driven through every
 * event in every state from a table, and the one-reply rule over random
 * runs of events. */
#include "server/call.h"

#include "gild.pb-c.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>
#include "test_main.h"

enum {
	OK = GILD__V1__CODE__OK,
	DL = GILD__V1__CODE__DEADLINE_EXCEEDED,
	CN = GILD__V1__CODE__CANCELLED,
	LOST = GILD__V1__CODE__WORKER_LOST,
	UNAV = GILD__V1__CODE__UNAVAILABLE,
	INT = GILD__V1__CODE__INTERNAL,
	AH = CF_AHEAD,
	AR = CF_ALL_READ,
};

/* A row: a call in `from` (stopped with DEADLINE_EXCEEDED if it is
 * stopping or being killed; with `retries` retries left, retryable), fed
 * `ev` with `facts`, goes to `to` with `action` (and its code, and
 * whether it answers the client). */
typedef struct row {
	call_state from;
	call_event ev;
	unsigned facts;
	uint32_t retries;
	call_state to;
	call_action action;
	int code;
	bool answer;
} row;

#define NONE_IN(s, e) {s, e, 0, 0, s, CA_NONE, 0, false}

static const row rows[] = {
    /* Waiting for its actor's turn: not in the queue, not on a worker. */
    {CALL_WAITING, CE_QUEUED, 0, 0, CALL_QUEUED, CA_NONE, 0, false},
    NONE_IN(CALL_WAITING, CE_SENT),
    NONE_IN(CALL_WAITING, CE_RETURNED),
    NONE_IN(CALL_WAITING, CE_HELD),
    NONE_IN(CALL_WAITING, CE_ENDED),
    {CALL_WAITING, CE_TIMER, 0, 0, CALL_DONE, CA_DROP, DL, true},
    {CALL_WAITING, CE_CANCEL, 0, 0, CALL_DONE, CA_DROP, CN, true},
    {CALL_WAITING, CE_GONE, 0, 0, CALL_DONE, CA_DROP, CN, true},
    NONE_IN(CALL_WAITING, CE_LOST),
    NONE_IN(CALL_WAITING, CE_SEND_FAILED),
    {CALL_WAITING, CE_STOP, 0, 0, CALL_DONE, CA_FAIL, UNAV, true},

    /* Queued: it has not run, so it ends without running. */
    NONE_IN(CALL_QUEUED, CE_QUEUED),
    {CALL_QUEUED, CE_SENT, 0, 0, CALL_SENT, CA_NONE, 0, false},
    NONE_IN(CALL_QUEUED, CE_RETURNED),
    {CALL_QUEUED, CE_HELD, 0, 0, CALL_WAITING, CA_NONE, 0, false},
    NONE_IN(CALL_QUEUED, CE_ENDED),
    {CALL_QUEUED, CE_TIMER, 0, 0, CALL_DONE, CA_DROP, DL, true},
    {CALL_QUEUED, CE_CANCEL, 0, 0, CALL_DONE, CA_DROP, CN, true},
    {CALL_QUEUED, CE_GONE, 0, 0, CALL_DONE, CA_DROP, CN, true},
    NONE_IN(CALL_QUEUED, CE_LOST),
    NONE_IN(CALL_QUEUED, CE_SEND_FAILED),
    {CALL_QUEUED, CE_STOP, 0, 0, CALL_DONE, CA_FAIL, UNAV, true},

    /* On a worker. */
    NONE_IN(CALL_SENT, CE_QUEUED),
    NONE_IN(CALL_SENT, CE_SENT),
    {CALL_SENT, CE_RETURNED, 0, 0, CALL_QUEUED, CA_NONE, 0, false},
    NONE_IN(CALL_SENT, CE_HELD),
    {CALL_SENT, CE_ENDED, 0, 0, CALL_DONE, CA_REPLY, OK, true},
    {CALL_SENT, CE_TIMER, 0, 0, CALL_STOPPING, CA_INTERRUPT, DL, false},
    /* Waiting in the worker: its client is told now, the worker skips
     * it. */
    {CALL_SENT, CE_TIMER, AH, 0, CALL_STOPPING, CA_INTERRUPT, DL, true},
    {CALL_SENT, CE_CANCEL, 0, 0, CALL_STOPPING, CA_INTERRUPT, CN, false},
    {CALL_SENT, CE_CANCEL, AH, 0, CALL_STOPPING, CA_INTERRUPT, CN, true},
    {CALL_SENT, CE_GONE, 0, 0, CALL_STOPPING, CA_INTERRUPT, CN, false},
    {CALL_SENT, CE_LOST, 0, 0, CALL_DONE, CA_FAIL, LOST, true},
    {CALL_SENT, CE_LOST, AR, 0, CALL_DONE, CA_FAIL, LOST, true},
    /* Not started, but not all its worker wrote was read: it may have. */
    {CALL_SENT, CE_LOST, AH, 0, CALL_DONE, CA_FAIL, LOST, true},
    {CALL_SENT, CE_LOST, AH | AR, 0, CALL_QUEUED, CA_REQUEUE, 0, false},
    {CALL_SENT, CE_LOST, 0, 2, CALL_QUEUED, CA_RETRY, 0, false},
    {CALL_SENT, CE_SEND_FAILED, 0, 0, CALL_DONE, CA_FAIL, INT, true},
    {CALL_SENT, CE_STOP, 0, 0, CALL_DONE, CA_FAIL, UNAV, true},

    /* Asked to stop at its deadline: however it ends, it ends so. */
    NONE_IN(CALL_STOPPING, CE_QUEUED),
    NONE_IN(CALL_STOPPING, CE_SENT),
    {CALL_STOPPING, CE_RETURNED, 0, 0, CALL_DONE, CA_DROP, DL, true},
    NONE_IN(CALL_STOPPING, CE_HELD),
    {CALL_STOPPING, CE_ENDED, 0, 0, CALL_DONE, CA_FAIL, DL, true},
    {CALL_STOPPING, CE_TIMER, 0, 0, CALL_KILLING, CA_KILL, 0, false},
    {CALL_STOPPING, CE_TIMER, AH, 0, CALL_STOPPING, CA_WAIT, 0, false},
    NONE_IN(CALL_STOPPING, CE_CANCEL),
    NONE_IN(CALL_STOPPING, CE_GONE),
    {CALL_STOPPING, CE_LOST, 0, 0, CALL_DONE, CA_FAIL, DL, true},
    {CALL_STOPPING, CE_LOST, AH | AR, 0, CALL_DONE, CA_FAIL, DL, true},
    /* No retry for a call stopped on purpose. */
    {CALL_STOPPING, CE_LOST, 0, 2, CALL_DONE, CA_FAIL, DL, true},
    NONE_IN(CALL_STOPPING, CE_SEND_FAILED),
    {CALL_STOPPING, CE_STOP, 0, 0, CALL_DONE, CA_FAIL, UNAV, true},

    /* Its worker being killed: the death ends it. */
    NONE_IN(CALL_KILLING, CE_QUEUED),
    NONE_IN(CALL_KILLING, CE_SENT),
    {CALL_KILLING, CE_RETURNED, 0, 0, CALL_DONE, CA_DROP, DL, true},
    NONE_IN(CALL_KILLING, CE_HELD),
    {CALL_KILLING, CE_ENDED, 0, 0, CALL_DONE, CA_FAIL, DL, true},
    NONE_IN(CALL_KILLING, CE_TIMER),
    NONE_IN(CALL_KILLING, CE_CANCEL),
    NONE_IN(CALL_KILLING, CE_GONE),
    {CALL_KILLING, CE_LOST, 0, 0, CALL_DONE, CA_FAIL, DL, true},
    NONE_IN(CALL_KILLING, CE_SEND_FAILED),
    {CALL_KILLING, CE_STOP, 0, 0, CALL_DONE, CA_FAIL, UNAV, true},

    /* Done: nothing moves it, nothing answers again. */
    NONE_IN(CALL_DONE, CE_QUEUED),
    NONE_IN(CALL_DONE, CE_SENT),
    NONE_IN(CALL_DONE, CE_RETURNED),
    NONE_IN(CALL_DONE, CE_HELD),
    NONE_IN(CALL_DONE, CE_ENDED),
    NONE_IN(CALL_DONE, CE_TIMER),
    NONE_IN(CALL_DONE, CE_CANCEL),
    NONE_IN(CALL_DONE, CE_GONE),
    NONE_IN(CALL_DONE, CE_LOST),
    NONE_IN(CALL_DONE, CE_SEND_FAILED),
    NONE_IN(CALL_DONE, CE_STOP),
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* A call in state s, as the rows mean it. */
static call
in_state(call_state s, uint32_t retries, bool internal)
{
	call c;

	call_init(&c, s, internal, true, retries);
	if (s == CALL_STOPPING || s == CALL_KILLING)
		c.stop_code = DL;
	return c;
}

/* Every row: the next state, the action, its code, whether it answers;
 * and the rows name every event in every state (facts 0). */
static void
test_table(void)
{
	bool seen[CALL_STATES][CALL_EVENTS] = {{false}};
	int bad = 0, missing = 0;

	for (size_t i = 0; i < NROWS; i++) {
		const row *r = &rows[i];
		call c = in_state(r->from, r->retries, false);
		call_step st = call_on(&c, r->ev, r->facts);
		bool ok = c.state == r->to && st.action == r->action &&
			  st.answer == r->answer &&
			  (r->code == 0 || st.code == r->code) &&
			  st.done == (r->to == CALL_DONE && r->from != CALL_DONE);

		if (!ok && bad++ < 10)
			printf("\n  %s + %s (facts %u): got %s, action %d code "
			       "%d answer %d done %d; want %s, %d %d %d",
			    call_state_name(r->from), call_event_name(r->ev),
			    r->facts, call_state_name(c.state), st.action,
			    st.code, st.answer, st.done,
			    call_state_name(r->to), r->action, r->code,
			    r->answer);
		if (r->facts == 0)
			seen[r->from][r->ev] = true;
		if (r->action == CA_RETRY)
			CU_ASSERT_EQUAL(c.retries_left, r->retries - 1);
	}
	for (int s = 0; s < CALL_STATES; s++)
		for (int e = 0; e < CALL_EVENTS; e++)
			if (!seen[s][e] && missing++ < 10)
				printf("\n  no row for %s + %s",
				    call_state_name((call_state) s),
				    call_event_name((call_event) e));
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(missing, 0);
}

/* A call whose client has its answer (interrupted while it waited in a
 * worker) is only freed however it ends; the server's own calls never
 * answer anyone. */
static void
test_answered_and_internal(void)
{
	call c = in_state(CALL_SENT, 0, false);
	call_step st = call_on(&c, CE_TIMER, CF_AHEAD);

	CU_ASSERT_TRUE(st.answer);
	CU_ASSERT_TRUE(c.answered);
	st = call_on(&c, CE_ENDED, 0);
	CU_ASSERT_EQUAL(st.action, CA_FREE);
	CU_ASSERT_FALSE(st.answer);
	CU_ASSERT_TRUE(st.done);

	/* Given back after it was answered: unlinked, not answered again. */
	c = in_state(CALL_SENT, 0, false);
	call_on(&c, CE_CANCEL, CF_AHEAD);
	st = call_on(&c, CE_RETURNED, 0);
	CU_ASSERT_EQUAL(st.action, CA_DROP);
	CU_ASSERT_FALSE(st.answer);

	c = in_state(CALL_SENT, 0, true);
	st = call_on(&c, CE_ENDED, 0);
	CU_ASSERT_EQUAL(st.action, CA_REPLY);
	CU_ASSERT_FALSE(st.answer);
	c = in_state(CALL_QUEUED, 0, true);
	st = call_on(&c, CE_STOP, 0);
	CU_ASSERT_FALSE(st.answer);
	CU_ASSERT_TRUE(st.done);

	/* The front end's own failure answers once, then only frees. */
	c = in_state(CALL_SENT, 0, false);
	CU_ASSERT_TRUE(call_fail(&c).answer);
	st = call_fail(&c);
	CU_ASSERT_EQUAL(st.action, CA_FREE);
	CU_ASSERT_FALSE(st.answer);
	/* A retry is used once; then the death is final. */
	c = in_state(CALL_SENT, 1, false);
	CU_ASSERT_EQUAL(call_on(&c, CE_LOST, 0).action, CA_RETRY);
	CU_ASSERT_EQUAL(call_on(&c, CE_SENT, 0).action, CA_NONE);
	CU_ASSERT_EQUAL(call_on(&c, CE_LOST, 0).action, CA_FAIL);
	/* A call that may not run again (a stream, an actor's) is not. */
	call_init(&c, CALL_SENT, false, false, 3);
	CU_ASSERT_EQUAL(call_on(&c, CE_LOST, 0).action, CA_FAIL);
	/* Killed: its end says so. */
	c = in_state(CALL_SENT, 0, false);
	call_on(&c, CE_TIMER, 0);
	call_on(&c, CE_TIMER, 0);
	st = call_on(&c, CE_LOST, 0);
	CU_ASSERT_TRUE(st.killed);
	CU_ASSERT_EQUAL(st.code, DL);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng >> 32);
}

/* 20,000 runs of up to 40 random events (random facts; the front end's
 * own failure among them) from a new call: it answers at most once, and
 * exactly once by the time it is done, unless it is the server's own;
 * once done, nothing moves it. */
static void
test_one_reply(void)
{
	int runs = 20000, bad = 0, done = 0;

	for (int r = 0; r < runs; r++) {
		bool internal = next_rand() % 8 == 0;
		call c;
		int answers = 0;

		call_init(&c, next_rand() % 2 ? CALL_QUEUED : CALL_WAITING,
		    internal, next_rand() % 2, next_rand() % 3);
		for (int k = 0; k < 40 && c.state != CALL_DONE; k++) {
			call_step st = next_rand() % 30 == 0
					   ? call_fail(&c)
					   : call_on(&c,
						 (call_event) (next_rand() %
							       CALL_EVENTS),
						 next_rand() % 4);
			answers += st.answer;
			if (st.done != (c.state == CALL_DONE))
				bad++;
		}
		if (c.state == CALL_DONE) {
			call_step st = call_on(&c, CE_ENDED, 0);
			done++;
			if (st.action != CA_NONE || st.answer ||
			    answers != (internal ? 0 : 1))
				bad++;
		} else if (answers > (internal ? 0 : 1)) {
			bad++;
		}
	}
	printf("\n  %d runs, %d ended, %d broke the one-reply rule\n", runs,
	    done, bad);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(done > runs / 2);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("call", NULL, NULL);
	CU_add_test(s, "every event in every state", test_table);
	CU_add_test(s, "answered, internal, retries, killed",
	    test_answered_and_internal);
	CU_add_test(s, "one reply, over random runs", test_one_reply);
	return test_run_all();
}
