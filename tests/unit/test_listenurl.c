/* Tests of server/listenurl.c: who can reach a --listen URL, and origins. */
#include "server/listenurl.h"

#include "test_main.h"
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static void
test_reach(void)
{
	static const struct {
		const char *url;
		int rc;
		enum listenurl_reach reach;
	} cases[] = {
	    {"tcp://127.0.0.1:7700", 0, LISTENURL_LOCAL},
	    {"tcp://127.0.0.2:0", 0, LISTENURL_LOCAL},
	    {"tcp://localhost:0", 0, LISTENURL_LOCAL},
	    {"tcp://[::1]:0", 0, LISTENURL_LOCAL},
	    {"tcp4://127.0.0.1:0", 0, LISTENURL_LOCAL},
	    {"tls+tcp://127.0.0.1:0", 0, LISTENURL_LOCAL},
	    {"ipc:///tmp/gild.sock", 0, LISTENURL_LOCAL},
	    {"inproc://x", 0, LISTENURL_LOCAL},
	    {"ws://127.0.0.1:7701/x", 0, LISTENURL_BROWSER},
	    {"wss://localhost:7701/x", 0, LISTENURL_BROWSER},
	    {"abstract://gild", 0, LISTENURL_ABSTRACT},
	    {"tcp://0.0.0.0:0", 0, LISTENURL_PUBLIC},
	    {"tcp://:7700", 0, LISTENURL_PUBLIC},
	    {"tcp://*:7700", 0, LISTENURL_PUBLIC},
	    {"tcp://[::]:0", 0, LISTENURL_PUBLIC},
	    {"tcp://[::ffff:127.0.0.1]:0", 0, LISTENURL_LOCAL},
	    {"ws://0.0.0.0:0/x", 0, LISTENURL_PUBLIC},
	    /* Host names are resolved, not read as text. */
	    {"tcp://127.evil.example:0", 0, LISTENURL_PUBLIC},
	    {"tcp://127.0.0.1.evil.example:0", 0, LISTENURL_PUBLIC},
	    {"zt://x", 0, LISTENURL_PUBLIC},
	    /* nng drops user@ and binds the host after it. */
	    {"ws://127.0.0.1@0.0.0.0:7701/x", -1, 0},
	    {"tcp://u:p@127.0.0.1:0", -1, 0},
	    {"127.0.0.1:7700", -1, 0},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum listenurl_reach reach = 99;
		int rc =
		    listenurl_reach(cases[i].url, &reach, err, sizeof(err));

		CU_ASSERT_EQUAL(rc, cases[i].rc);
		if (rc != cases[i].rc)
			printf("\n%s: rc %d\n", cases[i].url, rc);
		if (rc == 0 && cases[i].rc == 0 && reach != cases[i].reach)
			printf("\n%s: reach %d, expected %d\n", cases[i].url,
			    (int) reach, (int) cases[i].reach);
		if (rc == 0)
			CU_ASSERT_EQUAL(reach, cases[i].reach);
	}
	CU_ASSERT_EQUAL(listenurl_reach("ws://a@127.0.0.1:1/x",
	                    &(enum listenurl_reach){0}, err, sizeof(err)),
	    -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "user@"));
	/* The check alone: the same refusals, no resolving. */
	CU_ASSERT_EQUAL(listenurl_check("tcp://127.evil.example:0", err,
			    sizeof(err)), 0);
	CU_ASSERT_EQUAL(listenurl_check("ws://127.0.0.1@0.0.0.0:1/x", err,
			    sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "user@"));
	CU_ASSERT_EQUAL(listenurl_check("localhost:7700", err, sizeof(err)),
	    -1);
}

static void
test_origins(void)
{
	static const char *const good[] = {"http://a.example",
	    "https://a.example:8443", "http://127.0.0.1:3000",
	    "chrome-extension://abcdef"};
	static const char *const bad[] = {"", "a.example", "http://",
	    "http://a.example/", "http://a.example/x", "http://u@a.example",
	    "http://a.example?q", "http://a example", "://a.example",
	    "http://:80", "ht tp://a.example"};
	static const char *const allowed[] = {
	    "http://a.example", "https://b.example:8443"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT(listenurl_is_origin(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT(!listenurl_is_origin(bad[i]));
	CU_ASSERT(listenurl_origin_allowed("http://a.example", allowed, 2));
	CU_ASSERT(listenurl_origin_allowed("HTTP://A.Example", allowed, 2));
	CU_ASSERT(
	    listenurl_origin_allowed("https://b.example:8443", allowed, 2));
	CU_ASSERT(!listenurl_origin_allowed("https://b.example", allowed, 2));
	CU_ASSERT(
	    !listenurl_origin_allowed("http://a.example.evil", allowed, 2));
	CU_ASSERT(!listenurl_origin_allowed("null", allowed, 2));
	CU_ASSERT(!listenurl_origin_allowed("http://a.example", allowed, 0));
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("listenurl", NULL, NULL);
	CU_add_test(s, "who can reach a listen URL", test_reach);
	CU_add_test(s, "WebSocket origins", test_origins);
	return test_run_all();
}
