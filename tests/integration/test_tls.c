/* libgild over tls+tcp://: gild_connect_opts against the real gild with
 * certificates made at run time (tests/tls/make-certs.sh). */
#include "gild.h"
#include "integration/harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

#define APP "examples/app.py"

static char dir[64];      /* the certificates */
static gild_proc plain;   /* server certificate only */
static gild_proc mutual;  /* --tls-ca: client certificates required */
static bool plain_up, mutual_up;

/* dir/name, in one of a few rotating buffers. */
static const char *
pem(const char *name)
{
	static char buf[8][128];
	static int i;
	char *p = buf[i++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static int
suite_init(void)
{
	char cmd[256];

	snprintf(dir, sizeof(dir), "/tmp/gild-tls-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "tests/tls/make-certs.sh %s >/dev/null",
	    dir);
	if (system(cmd) != 0)
		return -1;
	{
		const char *extra[] = {"--tls-cert", pem("server.pem"),
		    "--tls-key", pem("server.key"), NULL};
		if (proc_start(&plain, APP, 1, "tls+tcp://127.0.0.1:0",
			extra) != 0)
			return -1;
		plain_up = true;
	}
	{
		/* The key inside the certificate's file. */
		const char *extra[] = {"--tls-cert",
		    pem("server-combined.pem"), "--tls-ca", pem("ca.pem"),
		    NULL};
		if (proc_start(&mutual, APP, 1, "tls+tcp://localhost:0",
			extra) != 0)
			return -1;
		mutual_up = true;
	}
	return 0;
}

static int
suite_fini(void)
{
	char cmd[256];
	int rc = 0;

	if (plain_up && proc_stop(&plain) != 0)
		rc = -1;
	if (mutual_up && proc_stop(&mutual) != 0)
		rc = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (dir[0] != '\0' && system(cmd) != 0)
		rc = -1;
	return rc;
}

/* Connects to url with o; on GILD_OK checks that add(20, 22) is 42 and
 * that status answers. Returns the connect code; err keeps its message. */
static int
connect_and_call(const char *url, const gild_connect_options *o,
    gild_error *err)
{
	gild_client *c = NULL;
	gild_value *args, *out = NULL, *st = NULL;
	int rc = gild_connect_opts(&c, &url, 1, o, err);

	if (rc != GILD_OK) {
		CU_ASSERT_PTR_NULL(c);
		return rc;
	}
	args = gild_list();
	gild_list_append(args, gild_int(20));
	gild_list_append(args, gild_int(22));
	CU_ASSERT_EQUAL(gild_call(c, "add", args, NULL, 30000, &out, err),
	    GILD_OK);
	CU_ASSERT_EQUAL(gild_value_int(out), 42);
	CU_ASSERT_EQUAL(gild_status(c, 30000, &st, err), GILD_OK);
	CU_ASSERT_PTR_NOT_NULL(gild_map_get(st, "workers"));
	gild_value_free(args);
	gild_value_free(out);
	gild_value_free(st);
	gild_close(c);
	return rc;
}

static bool
has(const gild_error *err, const char *what)
{
	bool yes = err->message != NULL && strstr(err->message, what) != NULL;

	if (!yes)
		fprintf(stderr, "\n  expected '%s' in: %s\n", what,
		    err->message ? err->message : "(no message)");
	return yes;
}

static void
test_right_ca(void)
{
	gild_connect_options o = {.tls_ca = pem("ca.pem")};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err), GILD_OK);
	gild_error_clear(&err);
}

static void
test_wrong_ca(void)
{
	gild_connect_options o = {.tls_ca = pem("other-ca.pem")};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err),
	    GILD_UNAVAILABLE);
	CU_ASSERT_EQUAL(err.code, GILD_UNAVAILABLE);
	CU_ASSERT(has(&err, "TLS handshake failed"));
	CU_ASSERT(has(&err, pem("other-ca.pem")));
	/* No TLS settings at all: the system's CA bundle, which does not
	 * hold the test CA. */
	CU_ASSERT_EQUAL(connect_and_call(plain.url, NULL, &err),
	    GILD_UNAVAILABLE);
	CU_ASSERT(has(&err, "TLS handshake failed"));
	gild_error_clear(&err);
}

static void
test_server_name(void)
{
	gild_connect_options o = {.tls_ca = pem("ca.pem"),
	    .tls_server_name = "localhost"};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err), GILD_OK);
	o.tls_server_name = "gild.example.com";
	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err),
	    GILD_UNAVAILABLE);
	CU_ASSERT(has(&err, "does not name 'gild.example.com'"));
	gild_error_clear(&err);
}

static void
test_plain_tcp_refused(void)
{
	char url[sizeof(plain.url) + 8];
	gild_error err = {0};

	snprintf(url, sizeof(url), "tcp://%.1000s", plain.url + 10);
	CU_ASSERT_EQUAL(connect_and_call(url, NULL, &err), GILD_UNAVAILABLE);
	CU_ASSERT(has(&err, "cannot connect to tcp://"));
	gild_error_clear(&err);
}

static void
test_mutual(void)
{
	gild_connect_options o = {.tls_ca = pem("ca.pem")};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call(mutual.url, &o, &err),
	    GILD_UNAVAILABLE);
	CU_ASSERT(has(&err, "client certificate"));
	o.tls_cert = pem("other-client.pem");
	o.tls_key = pem("other-client.key");
	CU_ASSERT_EQUAL(connect_and_call(mutual.url, &o, &err),
	    GILD_UNAVAILABLE);
	o.tls_cert = pem("client.pem");
	o.tls_key = pem("client.key");
	CU_ASSERT_EQUAL(connect_and_call(mutual.url, &o, &err), GILD_OK);
	gild_error_clear(&err);
}

static void
test_bad_files(void)
{
	gild_connect_options o = {.tls_ca = pem("nope.pem")};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT(has(&err, "tls_ca "));
	CU_ASSERT(has(&err, "No such file or directory"));
	o.tls_ca = pem("ca.pem");
	o.tls_key = pem("client.key");
	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT(has(&err, "tls_key needs tls_cert"));
	o.tls_key = NULL;
	o.tls_cert = pem("client.pem");
	CU_ASSERT_EQUAL(connect_and_call(plain.url, &o, &err),
	    GILD_INVALID_ARGUMENT);
	CU_ASSERT(has(&err, "no PEM private key"));
	gild_error_clear(&err);
}

/* Other URLs ignore the TLS settings: a missing CA file is no error
 * there, the closed port is. */
static void
test_tls_settings_ignored_without_tls(void)
{
	gild_connect_options o = {.tls_ca = pem("nope.pem")};
	gild_error err = {0};

	CU_ASSERT_EQUAL(connect_and_call("tcp://127.0.0.1:1", &o, &err),
	    GILD_UNAVAILABLE);
	gild_error_clear(&err);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tls+tcp:// with gild_connect_opts", suite_init,
	    suite_fini);
	CU_add_test(s, "the right CA calls", test_right_ca);
	CU_add_test(s, "the wrong CA fails to connect", test_wrong_ca);
	CU_add_test(s, "the name checked", test_server_name);
	CU_add_test(s, "a plain tcp:// client is refused",
	    test_plain_tcp_refused);
	CU_add_test(s, "mutual TLS: client certificates", test_mutual);
	CU_add_test(s, "unusable files", test_bad_files);
	CU_add_test(s, "TLS settings ignored without TLS",
	    test_tls_settings_ignored_without_tls);
	return test_run_all();
}
