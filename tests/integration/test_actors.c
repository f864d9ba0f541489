/* Integration tests of actors (docs/actors.md) through libgild against
 * the real gild serving tests/apps/features.py: many actors and clients,
 * order, ownership, streams and lookups, restarts. */
#include "gild.h"
#include "gild.pb-c.h"
#include "integration/features.h"
#include "integration/harness.h"

#include <CUnit/Basic.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

/* ---- actors ------------------------------------------------------------ */

enum { ACTORS = 100, INCRS = 50, CLIENTS = 4 };

typedef struct incr_job {
	const char *url;
	const gild_actor_id *ids;
	int t;
	int failed;
} incr_job;

/* One of 4 clients: its share of the 50 increments of every actor, all
 * in flight at once. */
static void *
incr_main(void *arg)
{
	incr_job *ij = arg;
	const char *urls[1] = {ij->url};
	static __thread gild_call_id calls[ACTORS * INCRS / CLIENTS + ACTORS];
	gild_client *c = NULL;
	int n = 0;

	if (gild_connect(&c, urls, 1, NULL) != GILD_OK) {
		ij->failed = -1;
		return NULL;
	}
	for (int i = ij->t; i < INCRS; i += CLIENTS)
		for (int a = 0; a < ACTORS; a++)
			if (gild_actor_submit(c, ij->ids[a], "incr", NULL, NULL,
				&calls[n], NULL) == GILD_OK)
				n++;
			else
				ij->failed++;
	for (int i = 0; i < n; i++) {
		gild_result res = {0};
		if (gild_wait(c, calls[i], 60000, &res) != GILD_OK ||
		    res.code != GILD_OK)
			ij->failed++;
		gild_result_clear(&res);
	}
	gild_close(c);
	return NULL;
}

/* Item 3: 100 counters on 2 workers, 50 increments each from 4 clients at
 * once: every count is exactly 50, both workers hold some; a named actor is
 * found and used from a second client. The counters are detached, so
 * other connections reach them by id (a private actor is its creator's
 * connection's only: test_actor_owners). */
static void
test_actors(void)
{
	gild_actor_id ids[ACTORS], named, found;
	incr_job jobs[CLIENTS];
	pthread_t thr[CLIENTS];
	gild_client *other = NULL;
	const char *urls[1];
	gild_value *v = NULL, *args;
	gild_error err = {0};
	int exact = 0, failed = 0;
	long pids[2] = {0, 0};
	/* One connection makes ACTORS and a named one: past the default
	 * --max-conn-actors (100). */
	static const char *const extra[] = {"--max-conn-actors", "200", NULL};
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 2, extra), 0);
	for (int a = 0; a < ACTORS; a++)
		CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Counter", NULL, NULL,
					  NULL, true, 20000, &ids[a], &err),
		    GILD_OK);
	for (int t = 0; t < CLIENTS; t++) {
		jobs[t] = (incr_job){s.p.url, ids, t, 0};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&thr[t], NULL, incr_main,
					  &jobs[t]), 0);
	}
	for (int t = 0; t < CLIENTS; t++) {
		pthread_join(thr[t], NULL);
		failed += jobs[t].failed;
	}
	CU_ASSERT_EQUAL(failed, 0);
	for (int a = 0; a < ACTORS; a++) {
		long pid;
		if (gild_actor_call(s.c, ids[a], "get", NULL, NULL, 20000, &v,
			&err) == GILD_OK)
			exact += gild_value_int(v) == INCRS;
		gild_value_free(v);
		if (gild_actor_call(s.c, ids[a], "where", NULL, NULL, 20000, &v,
			&err) == GILD_OK) {
			pid = (long) gild_value_int(v);
			if (pids[0] == 0 || pids[0] == pid)
				pids[0] = pid;
			else
				pids[1] = pid;
		}
		gild_value_free(v);
	}
	CU_ASSERT_EQUAL(exact, ACTORS);
	/* Spread over both workers (free-threaded: all in the one; its
	 * threads are covered by test_runtime). */
	CU_ASSERT(pids[0] != 0 && (pids[1] != 0) == (test_processes(2) == 2));

	/* A named actor, reached from a second client. */
	args = gild_list();
	gild_list_append(args, gild_int(100));
	CU_ASSERT_EQUAL(gild_actor_new(s.c, "Counter", args, NULL, "shared",
			    false, 20000, &named, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_new(s.c, "Counter", args, NULL, "shared",
			    false, 20000, &found, &err), GILD_ALREADY_EXISTS);
	gild_error_clear(&err);
	gild_value_free(args);
	urls[0] = s.p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&other, urls, 1, NULL), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_get(other, "shared", 20000, &found, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(found, named);
	CU_ASSERT_EQUAL(gild_actor_call(other, found, "incr", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(v), 101);
	gild_value_free(v);
	CU_ASSERT_EQUAL(gild_actor_call(other, found, "aincr", NULL, NULL, 20000,
			    &v, &err), GILD_OK); /* an async method */
	CU_ASSERT_EQUAL(gild_value_int(v), 102);
	gild_value_free(v);
	CU_ASSERT_EQUAL(gild_actor_call(other, found, "_private", NULL, NULL,
			    20000, &v, &err), GILD_NOT_FOUND);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_actor_get(other, "nobody", 20000, &found, &err),
	    GILD_NOT_FOUND);
	gild_error_clear(&err);
	/* Destroyed: gone for everyone. */
	CU_ASSERT_EQUAL(gild_actor_destroy(other, named, 20000, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, named, "get", NULL, NULL, 20000,
			    &v, &err), GILD_NOT_FOUND);
	gild_error_clear(&err);
	served_close(other, "the second client");
	served_stop(&s);
}

/* Sends ActorNew{class_name cls, name, detached} on a connection of its
 * own, waits until the server counts one more call waiting (calls_before
 * + 1: its constructor is queued behind a busy worker), and closes that
 * connection: a client that leaves before its actor is created. Returns
 * whether it got that far. */
static bool
actor_new_and_leave(gild_client *watch, const char *url, const char *cls,
    const char *name, int64_t calls_before)
{
	Gild__V1__Request rq = GILD__V1__REQUEST__INIT;
	Gild__V1__ActorNew an = GILD__V1__ACTOR_NEW__INIT;
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	uint8_t buf[256];
	bool queued = false;

	an.class_name = (char *) cls;
	an.name = (char *) name;
	an.detached = true;
	rq.id = 1;
	rq.body_case = GILD__V1__REQUEST__BODY_ACTOR_NEW;
	rq.actor_new = &an;
	if (nng_req0_open(&sock) != 0 || nng_dial(sock, url, NULL, 0) != 0 ||
	    nng_send(sock, buf, gild__v1__request__pack(&rq, buf), 0) != 0) {
		close_bounded(sock, 5000);
		return false;
	}
	for (double end = now_s() + 10; !queued && now_s() < end;
	     usleep(10000))
		queued = served_status_int(watch, "queued", false) >
			 calls_before;
	CU_ASSERT_EQUAL(close_bounded(sock, 5000), 0);
	return queued;
}

/* Actors belong to the connection that made them (issue 17). Client B
 * gets NOT_FOUND calling or destroying client A's private actor by id,
 * exactly as for an id that does not exist, and A's actor is untouched; a
 * named actor is found and used by name from B; ids are not handed out in
 * sequence. A detached actor whose client left before its constructor ran
 * (queued behind a busy worker) is removed with its name, as is one whose
 * ActorNew its client gave up on (libgild cancels it at its timeout). */
static void
test_actor_owners(void)
{
	gild_actor_id mine, mine2, pub, found, again;
	gild_client *b = NULL;
	gild_value *v = NULL, *args;
	gild_error err = {0};
	gild_call_id block;
	gild_result res = {0};
	const char *urls[1];
	char gate[256], nonexistent_msg[512] = "";
	bool gone = false;
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	urls[0] = s.p.url;
	CU_ASSERT_EQUAL_FATAL(gild_connect(&b, urls, 1, NULL), GILD_OK);
	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Counter", NULL, NULL, NULL,
				  false, 20000, &mine, &err), GILD_OK);
	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Counter", NULL, NULL, NULL,
				  false, 20000, &mine2, &err), GILD_OK);
	CU_ASSERT(mine2 != mine + 1 && mine != mine2 + 1);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, mine, "incr", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	gild_value_free(v);
	v = NULL;

	/* B: A's private actor is not there, as a made-up id is not. */
	CU_ASSERT_EQUAL(gild_actor_call(b, mine ^ 1, "incr", NULL, NULL, 20000,
			    &v, &err), GILD_NOT_FOUND);
	if (err.message != NULL)
		snprintf(nonexistent_msg, sizeof(nonexistent_msg), "%s",
		    strstr(err.message, " does not exist") != NULL
			? strstr(err.message, " does not exist")
			: err.message);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_actor_call(b, mine, "incr", NULL, NULL, 20000,
			    &v, &err), GILD_NOT_FOUND);
	CU_ASSERT(err.message != NULL && nonexistent_msg[0] != '\0' &&
		  strstr(err.message, nonexistent_msg) != NULL);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_actor_destroy(b, mine, 20000, &err),
	    GILD_NOT_FOUND);
	gild_error_clear(&err);
	/* A's actor is untouched: one increment, and still there. */
	CU_ASSERT_EQUAL(gild_actor_call(s.c, mine, "get", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(v), 1);
	gild_value_free(v);
	v = NULL;

	/* A named actor: found by name from B, and B's to use. */
	CU_ASSERT_EQUAL(gild_actor_new(s.c, "Counter", NULL, NULL, "public",
			    false, 20000, &pub, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_get(b, "public", 20000, &found, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(found, pub);
	CU_ASSERT_EQUAL(gild_actor_call(b, found, "incr", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(v), 1);
	gild_value_free(v);
	v = NULL;

	/* The one worker busy until the gate opens: constructors wait. */
	snprintf(gate, sizeof(gate), "%s/owners-gate", s.p.dir);
	args = gild_list();
	gild_list_append(args, gild_cstr(gate));
	gild_list_append(args, gild_int(60));
	CU_ASSERT_EQUAL_FATAL(gild_submit(s.c, "until_file", args, NULL,
				  &block, &err), GILD_OK);
	gild_value_free(args);
	for (double end = now_s() + 10;
	     served_status_int(b, "in_flight", false) < 1 && now_s() < end;)
		usleep(10000);
	/* A client that leaves before its detached actor is created... */
	CU_ASSERT(actor_new_and_leave(b, s.p.url, "Counter", "orphan",
	    served_status_int(b, "queued", false)));
	/* ...and one that gives up on its ActorNew. */
	CU_ASSERT_EQUAL(gild_actor_new(s.c, "Counter", NULL, NULL, "late", true,
			    300, &found, &err), GILD_DEADLINE_EXCEEDED);
	gild_error_clear(&err);
	for (double end = now_s() + 10; !gone && now_s() < end;
	     usleep(20000)) {
		gone = gild_actor_get(b, "orphan", 20000, &found, &err) ==
			   GILD_NOT_FOUND &&
		       gild_actor_get(b, "late", 20000, &found, &err) ==
			   GILD_NOT_FOUND;
		gild_error_clear(&err);
	}
	CU_ASSERT(gone);
	fclose(fopen(gate, "w"));
	CU_ASSERT_EQUAL(served_wait(s.c, block, &res), GILD_OK);
	gild_result_clear(&res);
	/* Their names are free again. */
	CU_ASSERT_EQUAL(gild_actor_new(b, "Counter", NULL, NULL, "orphan",
			    false, 20000, &again, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_new(b, "Counter", NULL, NULL, "late", false,
			    20000, &again, &err), GILD_OK);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(served_status_int(b, "queued", false), 0);
	served_close(b, "client B");
	served_stop(&s);
}

/* An actor runs one client's calls in the order they were sent, also when
 * they are all sent before the first one is answered: the k-th increment
 * returns k. 2,000 calls in rounds of 200 in flight. */
enum { ORDER_CALLS = 2000, ORDER_ROUND = 200 };

static void
test_actor_order(void)
{
	static gild_call_id ids[ORDER_ROUND];
	gild_actor_id a;
	gild_error err = {0};
	int in_order = 0, failed = 0, sent = 0;
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 2, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Counter", NULL, NULL, NULL,
				  false, 20000, &a, &err), GILD_OK);
	for (int k = 0; k < ORDER_CALLS; k += ORDER_ROUND) {
		for (int i = 0; i < ORDER_ROUND; i++)
			if (gild_actor_submit(s.c, a, "incr", NULL, NULL,
				&ids[i], &err) != GILD_OK) {
				gild_error_clear(&err);
				ids[i] = 0;
			}
		for (int i = 0; i < ORDER_ROUND; i++) {
			gild_result res = {0};
			if (ids[i] == 0 ||
			    gild_wait(s.c, ids[i], 20000, &res) != GILD_OK ||
			    res.code != GILD_OK)
				failed++;
			else
				in_order += gild_value_int(res.value) ==
					    k + i + 1;
			sent++;
			gild_result_clear(&res);
		}
	}
	printf("\n  %d of %d increments returned their place in the order "
	       "sent; %d failed\n", in_order, sent, failed);
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(in_order, ORDER_CALLS);
	served_stop(&s);
}

/* libgild's actor streams and lookups: a generator method streams through
 * a window smaller than the stream, holding its actor's turn; the lookup
 * by name also says the class. */
static void
test_actor_stream_lookup(void)
{
	gild_actor_id a, found = 0;
	gild_value *v = NULL, *args = gild_list();
	gild_error err = {0};
	gild_stream *st = NULL;
	gild_call_id id;
	gild_result res = {0};
	char *cls = NULL;
	int rc, n = 0, in_order = 0;
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 2, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Counter", NULL, NULL,
				  "streamer", false, 20000, &a, &err), GILD_OK);
	gild_list_append(args, gild_int(20));
	CU_ASSERT_EQUAL_FATAL(gild_actor_stream_open(s.c, a, "upto", args, NULL,
				  2, 20000, &st, &err), GILD_OK);
	gild_value_free(args);
	/* Sent behind the stream: it runs once the stream has ended. */
	CU_ASSERT_EQUAL_FATAL(gild_actor_submit_timeout(s.c, a, "incr", NULL,
				  NULL, 20000, &id, &err), GILD_OK);
	while ((rc = gild_stream_next(st, 30000, &v, &err)) == GILD_OK) {
		in_order += gild_value_int(v) == ++n;
		gild_value_free(v);
	}
	CU_ASSERT_EQUAL(rc, GILD_STREAM_END);
	CU_ASSERT_EQUAL(n, 20);
	CU_ASSERT_EQUAL(in_order, 20);
	gild_stream_close(st);
	CU_ASSERT_EQUAL(gild_wait(s.c, id, 20000, &res), GILD_OK);
	CU_ASSERT_EQUAL(res.code, GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(res.value), 21);
	gild_result_clear(&res);
	/* A method that does not exist ends its stream with NOT_FOUND. */
	CU_ASSERT_EQUAL_FATAL(gild_actor_stream_open(s.c, a, "nope", NULL, NULL,
				  0, 20000, &st, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_stream_next(st, 30000, &v, &err), GILD_NOT_FOUND);
	gild_error_clear(&err);
	gild_stream_close(st);
	/* Not an actor id of this client: refused before anything is sent. */
	CU_ASSERT_EQUAL(gild_actor_stream_open(s.c, 0, "upto", NULL, NULL, 0,
			    20000, &st, &err), GILD_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(st);
	gild_error_clear(&err);

	CU_ASSERT_EQUAL(gild_actor_lookup(s.c, "streamer", 20000, &found, &cls,
			    &err), GILD_OK);
	CU_ASSERT_EQUAL(found, a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cls);
	CU_ASSERT_STRING_EQUAL(cls, "Counter");
	free(cls);
	found = 0;
	CU_ASSERT_EQUAL(gild_actor_get(s.c, "streamer", 20000, &found, &err),
	    GILD_OK);
	CU_ASSERT_EQUAL(found, a);
	cls = (char *) "unchanged";
	CU_ASSERT_EQUAL(gild_actor_lookup(s.c, "nobody", 20000, &found, &cls,
			    &err), GILD_NOT_FOUND);
	CU_ASSERT_PTR_NULL(cls);
	gild_error_clear(&err);
	served_stop(&s);
}

/* Item 4: the worker holding an actor dies. With max_restarts=1 the call
 * in flight gets WORKER_LOST and the next call runs on a fresh instance;
 * without restarts the next call gets "actor lost". */
static void
test_actor_restarts(void)
{
	gild_actor_id phoenix, mortal;
	gild_value *v = NULL, *args = gild_list();
	gild_error err = {0};
	int64_t pid1;
	server s;

	CU_ASSERT_EQUAL_FATAL(features_start(&s, 1, NULL), 0);
	gild_list_append(args, gild_cstr("p"));
	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Phoenix", args, NULL, NULL,
				  false, 20000, &phoenix, &err), GILD_OK);
	gild_value_free(args);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, phoenix, "hit", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	gild_value_free(v);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, phoenix, "hit", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(gild_value_item(v, 1)), 2);
	pid1 = gild_value_int(gild_value_item(v, 2));
	gild_value_free(v);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, phoenix, "die", NULL, NULL, 20000,
			    &v, &err), GILD_WORKER_LOST);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, phoenix, "hit", NULL, NULL, 20000,
			    &v, &err), GILD_OK);
	/* A fresh instance: its count starts again, in a new process. */
	CU_ASSERT_EQUAL(gild_value_int(gild_value_item(v, 1)), 1);
	CU_ASSERT_NOT_EQUAL(gild_value_int(gild_value_item(v, 2)), pid1);
	gild_value_free(v);

	CU_ASSERT_EQUAL_FATAL(gild_actor_new(s.c, "Mortal", NULL, NULL, NULL,
				  false, 20000, &mortal, &err), GILD_OK);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, mortal, "die", NULL, NULL, 20000,
			    &v, &err), GILD_WORKER_LOST);
	gild_error_clear(&err);
	CU_ASSERT_EQUAL(gild_actor_call(s.c, mortal, "hit", NULL, NULL, 20000,
			    &v, &err), GILD_NOT_FOUND);
	CU_ASSERT(err.message && strstr(err.message, "lost") != NULL);
	gild_error_clear(&err);
	/* The phoenix had its one restart: this death loses it for good. */
	CU_ASSERT_EQUAL(gild_actor_call(s.c, phoenix, "hit", NULL, NULL, 20000,
			    &v, &err), GILD_NOT_FOUND);
	gild_error_clear(&err);
	served_stop(&s);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("actors (tests/apps/features.py)", NULL, NULL);
	CU_add_test(s, "actors: 100 counters, 4 clients, names", test_actors);
	CU_add_test(s, "actors: calls run in the order sent", test_actor_order);
	CU_add_test(s, "actors: streams of generator methods, lookup with the class",
	    test_actor_stream_lookup);
	CU_add_test(s, "actors: max_restarts and lost actors", test_actor_restarts);
	CU_add_test(s, "actors: owned by their connection", test_actor_owners);
	return test_run_all();
}
