/* Tests of server/conns.c: each connection's budgets. */
#include "server/conns.h"

#include <CUnit/Basic.h>
#include "test_main.h"

/* Past max_connections new ones are refused; a removed one makes room. */
static void
test_count(void)
{
	conn_limits lim = {.max_connections = 2, .max_unread = 10,
	    .max_unread_bytes = 1000, .max_auth_failures = 3};
	conns *c = conns_new(&lim);

	CU_ASSERT_EQUAL(conns_add(c, 1, 0), 0);
	CU_ASSERT_EQUAL(conns_add(c, 1025, 0), 0); /* same bucket */
	CU_ASSERT_EQUAL(conns_add(c, 7, 0), -1);
	CU_ASSERT_EQUAL(conns_count(c), 2);
	conns_remove(c, 1);
	conns_remove(c, 99); /* never added (refused): nothing */
	CU_ASSERT_EQUAL(conns_add(c, 7, 0), 0);
	CU_ASSERT_EQUAL(conns_count(c), 2);
	conns_free(c);
}

/* Unread replies: muted once past the count or the bytes (one reply
 * always goes), said once; never closed for it. */
static void
test_unread(void)
{
	conn_limits lim = {.max_unread = 3, .max_unread_bytes = 1000,
	    .max_auth_failures = 3};
	conns *c = conns_new(&lim);

	conns_add(c, 1, 0);
	conns_add(c, 2, 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(conns_queued(c, 1, 10), CONN_OK);
	conns_sent(c, 1, 10); /* read one: 2 unread */
	CU_ASSERT_EQUAL(conns_queued(c, 1, 10), CONN_OK);
	CU_ASSERT_EQUAL(conns_queued(c, 1, 10), CONN_UNREAD);
	CU_ASSERT_TRUE(conns_muted(c, 1));
	CU_ASSERT_EQUAL(conns_queued(c, 1, 10), CONN_OK); /* said once */
	for (int i = 0; i < 4; i++)
		conns_sent(c, 1, 10);
	CU_ASSERT_TRUE(conns_muted(c, 1)); /* muted for good */
	/* Bytes: one huge reply goes; a second over the budget mutes. */
	CU_ASSERT_EQUAL(conns_queued(c, 2, 5000), CONN_OK);
	CU_ASSERT_EQUAL(conns_queued(c, 2, 1), CONN_UNREAD_BYTES);
	CU_ASSERT_FALSE(conns_muted(c, 3)); /* unknown: not muted */
	CU_ASSERT_EQUAL(conns_queued(c, 3, 1), CONN_OK);
	conns_free(c);
}

/* Token failures: muted at the limit, once; never closed. */
static void
test_auth(void)
{
	conn_limits lim = {.max_unread = 100, .max_unread_bytes = 1000,
	    .max_auth_failures = 2};
	conns *c = conns_new(&lim);

	conns_add(c, 1, 0);
	CU_ASSERT_EQUAL(conns_auth_failed(c, 1), CONN_OK);
	CU_ASSERT_FALSE(conns_muted(c, 1));
	CU_ASSERT_EQUAL(conns_auth_failed(c, 1), CONN_AUTH_FAILURES);
	CU_ASSERT_TRUE(conns_muted(c, 1));
	CU_ASSERT_EQUAL(conns_auth_failed(c, 1), CONN_OK); /* said once */
	CU_ASSERT_EQUAL(conns_auth_failed(c, 9), CONN_OK); /* unknown */
	CU_ASSERT_STRING_EQUAL(conns_over_option(CONN_AUTH_FAILURES),
	    "--max-auth-failures");
	conns_free(c);
}

/* Idle: no request in hand, no reply in nng, quiet for idle_s, and sent
 * next to nothing; each listed once. */
static void
test_idle(void)
{
	conn_limits lim = {.max_unread = 100, .max_unread_bytes = 1 << 20,
	    .max_auth_failures = 2, .idle_s = 10};
	conns *c = conns_new(&lim);
	uint32_t out[8];

	conns_add(c, 1, 0);
	conns_add(c, 2, 0);
	conns_add(c, 3, 0);
	conns_request(c, 2, 5);     /* 2: a call in hand */
	conns_request(c, 3, 5);
	conns_answered(c, 3, 6);
	conns_queued(c, 3, 10000);  /* 3: a reply in nng until 20 */
	CU_ASSERT_EQUAL(conns_idle(c, 9, out, 8), 0);
	CU_ASSERT_EQUAL(conns_idle(c, 10, out, 8), 1);
	CU_ASSERT_EQUAL(out[0], 1);
	CU_ASSERT_EQUAL(conns_idle(c, 19, out, 8), 0); /* 3: its reply */
	conns_sent(c, 3, 10000);
	conns_request(c, 3, 20);
	conns_answered(c, 3, 20);
	CU_ASSERT_EQUAL(conns_idle(c, 29, out, 8), 0);
	CU_ASSERT_EQUAL(conns_idle(c, 30, out, 8), 1);
	CU_ASSERT_EQUAL(out[0], 3);
	CU_ASSERT_EQUAL(conns_idle(c, 100, out, 8), 0); /* listed already */
	conns_answered(c, 2, 50);
	CU_ASSERT_EQUAL(conns_idle(c, 59, out, 8), 0);
	CU_ASSERT_EQUAL(conns_idle(c, 60, out, 8), 1);
	CU_ASSERT_EQUAL(out[0], 2);
	lim.idle_s = 0;
	conns_free(c);
	c = conns_new(&lim);
	conns_add(c, 1, 0);
	CU_ASSERT_EQUAL(conns_idle(c, 1e9, out, 8), 0); /* 0: never */
	conns_free(c);
}

/* Each connection is aged within 10% of max_age_s of its opening, the
 * ages spread over that range; no age when max_age_s is 0. */
static void
test_age(void)
{
	conn_limits lim = {.max_unread = 10, .max_unread_bytes = 1000,
	    .max_auth_failures = 3, .max_age_s = 100, .seed = 42};
	conns *c = conns_new(&lim);
	int early = 0, late = 0, at_mid = 0;
	bool first;

	for (uint32_t p = 1; p <= 200; p++) {
		CU_ASSERT_EQUAL(conns_add(c, p, 1000), 0);
		early += conns_aged(c, p, 1000 + 89.9, NULL);
		at_mid += conns_aged(c, p, 1000 + 100, NULL);
		late += conns_aged(c, p, 1000 + 110.1, NULL);
	}
	CU_ASSERT_EQUAL(early, 0);
	CU_ASSERT_EQUAL(late, 200);
	CU_ASSERT(at_mid > 40 && at_mid < 160); /* spread, not all alike */
	CU_ASSERT_FALSE(conns_aged(c, 999, 1e9, NULL)); /* not in the table */
	first = false;
	CU_ASSERT_TRUE(conns_aged(c, 1, 2000, &first));
	CU_ASSERT_FALSE(first); /* said already, above */
	conns_add(c, 500, 0);
	CU_ASSERT_TRUE(conns_aged(c, 500, 200, &first));
	CU_ASSERT_TRUE(first);
	CU_ASSERT_TRUE(conns_aged(c, 500, 200, &first));
	CU_ASSERT_FALSE(first);
	conns_free(c);
	lim.max_age_s = 0;
	c = conns_new(&lim);
	conns_add(c, 1, 0);
	CU_ASSERT_FALSE(conns_aged(c, 1, 1e9, &first)); /* 0: never */
	CU_ASSERT_FALSE(first);
	conns_free(c);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("conns", NULL, NULL);
	CU_add_test(s, "connections at once", test_count);
	CU_add_test(s, "unread replies", test_unread);
	CU_add_test(s, "token failures", test_auth);
	CU_add_test(s, "idle connections", test_idle);
	CU_add_test(s, "connection age", test_age);
	return test_run_all();
}
