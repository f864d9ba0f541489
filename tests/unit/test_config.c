/* Tests of server/config.c: the value parsers, the config file reader,
 * precedence between sources, and --print-config's output. */
#include "server/config.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_main.h"

static long n_val, ms_val, slow_val, rss_val;
static size_t size_val;
static int choice_val;
static bool sw_val;
static const char *str_val;
static conf_list list_val;
static const char *const colours[] = {"red", "green", NULL};

static const conf_opt opts[] = {
    {.name = "count", .arg = "N", .parse = conf_int, .dst = &n_val, .min = 1,
	.max = 10, .allowed = "1 to 10", .def = "5", .help = "a count"},
    {.name = "wait", .arg = "S", .parse = conf_seconds, .dst = &ms_val,
	.min = 0, .max = 60000, .allowed = "0 to 60 s", .def = "1",
	.help = "a wait\nover two lines"},
    {.name = "size", .arg = "SIZE", .parse = conf_size, .dst = &size_val,
	.allowed = "a size", .help = "a size"},
    {.name = "colour", .arg = "C", .parse = conf_choice, .dst = &choice_val,
	.choices = colours, .allowed = "red or green", .def = "red",
	.help = "a colour"},
    {.name = "loud", .parse = conf_switch, .dst = &sw_val,
	.allowed = "true or false", .def = "false", .help = "a switch"},
    {.name = "secret", .arg = "S", .parse = conf_string, .dst = &str_val,
	.allowed = "a secret", .flags = CONF_SECRET, .help = "a secret"},
    {.name = "url", .arg = "URL", .parse = conf_url, .dst = &list_val,
	.allowed = "a URL", .def = "tcp://127.0.0.1:1", .flags = CONF_LIST,
	.help = "urls"},
    {.name = "config", .arg = "FILE", .parse = conf_string, .dst = &str_val,
	.allowed = "a file", .flags = CONF_NOFILE, .help = "the file"},
    {.name = "slow", .arg = "DURATION", .parse = conf_millis,
	.dst = &slow_val, .min = 0, .max = 86400000L, .allowed = "0 to 24h",
	.def = "0", .help = "bare: ms"},
    {.name = "rss", .arg = "SIZE", .parse = conf_mib, .dst = &rss_val,
	.min = 0, .max = 1L << 30, .allowed = "whole MiB", .def = "0",
	.help = "bare: MiB"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static conf *
fresh(void)
{
	conf *c;

	n_val = slow_val = rss_val = 0;
	ms_val = 1000; /* wait's default */
	size_val = 0;
	choice_val = 0;
	sw_val = false;
	str_val = NULL;
	list_val.n = 0;
	CU_ASSERT_FATAL(conf_init(&c, opts, NOPTS) == 0);
	return c;
}

/* A temporary file holding text; its path is in path (PATH_MAX). */
static void
write_file(char *path, const char *text)
{
	int fd;

	strcpy(path, "/tmp/gild-test-config-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd != -1);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
	close(fd);
}

static void
test_parsers(void)
{
	static const struct {
		const char *name, *text;
		int ok;
	} cases[] = {
	    {"count", "1", 1}, {"count", "10", 1}, {"count", "0", 0},
	    {"count", "11", 0}, {"count", "3x", 0}, {"count", "", 0},
	    {"count", " 3", 1}, /* strtol skips leading blanks */
	    {"wait", "1.5", 1}, {"wait", "60", 1}, {"wait", "60.1", 0},
	    {"wait", "-1", 0}, {"wait", "nan", 0}, {"wait", "soon", 0},
	    {"size", "512K", 1}, {"size", "64MiB", 1}, {"size", "1G", 1},
	    {"size", "3G", 0}, {"size", "0", 0}, {"size", "-1", 0},
	    {"size", "12Q", 0},
	    {"colour", "green", 1}, {"colour", "Green", 0}, {"colour", "", 0},
	    {"loud", "yes", 1}, {"loud", "off", 1}, {"loud", "maybe", 0},
	    {"secret", "x", 1}, {"secret", "", 0},
	    {"url", "ipc:///tmp/x", 1}, {"url", "localhost:1", 0},
	    {"url", "://x", 0}, {"url", "tcp://", 0},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf *c = fresh();
		int rc = conf_set(c, conf_find(c, cases[i].name), cases[i].text,
		    CONF_FLAG, "--x", err, sizeof(err));
		if ((rc == 0) != cases[i].ok)
			fprintf(stderr, "\n  %s '%s': rc %d\n", cases[i].name,
			    cases[i].text, rc);
		CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
		conf_fini(c);
	}
	/* What they store. */
	conf *c = fresh();
	CU_ASSERT(conf_set(c, 1, "1.5", CONF_FLAG, "--wait", err, 256) == 0);
	CU_ASSERT_EQUAL(ms_val, 1500);
	CU_ASSERT(conf_set(c, 2, "512K", CONF_FLAG, "--size", err, 256) == 0);
	CU_ASSERT_EQUAL(size_val, 512u << 10);
	CU_ASSERT(conf_set(c, 3, "green", CONF_FLAG, "--colour", err, 256) == 0);
	CU_ASSERT_EQUAL(choice_val, 1);
	conf_fini(c);
}

/* Durations with ms, s, m, h and sizes with K, M, G (or B), next to each
 * option's bare unit: seconds, milliseconds, bytes or MiB. */
static void
test_units(void)
{
	static const struct {
		const char *name, *text;
		int ok;
		long long want; /* what dst holds then */
	} cases[] = {
	    /* conf_seconds: bare seconds, to 60 s. */
	    {"wait", "1500ms", 1, 1500}, {"wait", "1.5", 1, 1500},
	    {"wait", "1.5s", 1, 1500}, {"wait", "1m", 1, 60000},
	    {"wait", "0", 1, 0}, {"wait", "0s", 1, 0},
	    {"wait", "0.5ms", 1, 1}, {"wait", "0.25", 1, 250},
	    {"wait", "0.4ms", 0, 0}, /* not 0, yet under 1 ms */
	    {"wait", "2m", 0, 0}, {"wait", "1h", 0, 0}, {"wait", "61s", 0, 0},
	    {"wait", "1 s", 0, 0}, {"wait", "1S", 0, 0}, {"wait", "1sec", 0, 0},
	    {"wait", "s", 0, 0}, {"wait", "1.s", 0, 0}, {"wait", ".5s", 0, 0},
	    {"wait", "-1s", 0, 0}, {"wait", "+1", 0, 0}, {"wait", "1e3", 0, 0},
	    {"wait", "0x10", 0, 0}, {"wait", "inf", 0, 0}, {"wait", " 1", 0, 0},
	    {"wait", "1M", 0, 0}, {"wait", "", 0, 0},
	    /* conf_millis: bare milliseconds, to 24 h. */
	    {"slow", "500", 1, 500}, {"slow", "0.5s", 1, 500},
	    {"slow", "1500ms", 1, 1500}, {"slow", "2m", 1, 120000},
	    {"slow", "24h", 1, 86400000}, {"slow", "0", 1, 0},
	    {"slow", "25h", 0, 0}, {"slow", "0.4", 0, 0},
	    {"slow", "99999999999999999999999s", 0, 0},
	    /* conf_size: bare bytes, 1 to 2046M. */
	    {"size", "64M", 1, 64ll << 20}, {"size", "67108864", 1, 64ll << 20},
	    {"size", "64m", 1, 64ll << 20}, {"size", "64MiB", 1, 64ll << 20},
	    {"size", "64MB", 1, 64ll << 20}, {"size", "64Mi", 1, 64ll << 20},
	    {"size", "1.5K", 1, 1536}, {"size", "100B", 1, 100},
	    {"size", "1", 1, 1}, {"size", "2046M", 1, 2046ll << 20},
	    {"size", "1.1K", 0, 0}, {"size", "0.5", 0, 0},
	    {"size", "2047M", 0, 0}, {"size", "1.5G", 1, 1536ll << 20},
	    {"size", "2G", 0, 0}, {"size", "64 M", 0, 0}, {"size", "M", 0, 0},
	    {"size", "64MiBs", 0, 0}, {"size", "64T", 0, 0},
	    {"size", "1e6", 0, 0},
	    /* conf_mib: bare MiB, whole MiB. */
	    {"rss", "512", 1, 512}, {"rss", "512M", 1, 512},
	    {"rss", "2G", 1, 2048}, {"rss", "1.5G", 1, 1536},
	    {"rss", "1024K", 1, 1}, {"rss", "1048576B", 1, 1},
	    {"rss", "0", 1, 0}, {"rss", "0M", 1, 0},
	    {"rss", "100K", 0, 0}, {"rss", "0.5", 0, 0}, {"rss", "-1", 0, 0},
	    {"rss", "1048577G", 0, 0},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf *c = fresh();
		int k = conf_find(c, cases[i].name);
		int rc = conf_set(c, k, cases[i].text, CONF_FLAG, "--x", err,
		    sizeof(err));
		long long got = opts[k].parse == conf_size
				    ? (long long) size_val
				    : *(long *) opts[k].dst;
		if ((rc == 0) != cases[i].ok || (rc == 0 && got != cases[i].want))
			fprintf(stderr, "\n  %s '%s': rc %d, got %lld\n",
			    cases[i].name, cases[i].text, rc, got);
		CU_ASSERT_EQUAL(rc == 0, cases[i].ok);
		if (rc == 0)
			CU_ASSERT_EQUAL(got, cases[i].want);
		conf_fini(c);
	}
}

/* --print-config shows a duration or size in one unit however it was
 * given, and what it shows reads back as the same value. */
static void
test_shown_in_one_unit(void)
{
	static const struct {
		const char *name, *text, *shown;
	} cases[] = {
	    {"wait", "1500ms", "1.5s"}, {"wait", "1.5", "1.5s"},
	    {"wait", "1m", "60s"}, {"wait", "0", "0s"},
	    {"wait", "0.001", "0.001s"}, {"wait", "12.34", "12.34s"},
	    {"slow", "0.5s", "0.5s"}, {"slow", "500", "0.5s"},
	    {"slow", "24h", "86400s"},
	    {"size", "64M", "64M"}, {"size", "67108864", "64M"},
	    {"size", "1G", "1G"}, {"size", "1024M", "1G"},
	    {"size", "1.5G", "1536M"}, {"size", "1536", "1536"},
	    {"size", "1000", "1000"}, {"size", "1", "1"},
	    {"rss", "2048", "2G"}, {"rss", "512", "512M"}, {"rss", "0", "0"},
	};
	char err[256], *buf, want[128];
	size_t len;
	FILE *f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf *c = fresh();
		int k = conf_find(c, cases[i].name);
		long long before;

		CU_ASSERT_FATAL(conf_set(c, k, cases[i].text, CONF_FLAG, "--x",
				    err, sizeof(err)) == 0);
		before = opts[k].parse == conf_size ? (long long) size_val
						    : *(long *) opts[k].dst;
		buf = NULL;
		CU_ASSERT_FATAL((f = open_memstream(&buf, &len)) != NULL);
		conf_write(c, f);
		fclose(f);
		snprintf(want, sizeof(want), "\n# from the flag --x\n%s = %s\n",
		    cases[i].name, cases[i].shown);
		if (strstr(buf, want) == NULL)
			fprintf(stderr, "\n  %s '%s': no '%s' in\n%s\n",
			    cases[i].name, cases[i].text, want, buf);
		CU_ASSERT(strstr(buf, want) != NULL);
		free(buf);
		/* Read back: the same value. */
		CU_ASSERT(conf_set(c, k, cases[i].shown, CONF_FILE, "f:1", err,
			      sizeof(err)) == 0);
		CU_ASSERT_EQUAL(opts[k].parse == conf_size
				    ? (long long) size_val
				    : *(long *) opts[k].dst,
		    before);
		conf_fini(c);
	}
}

static void
test_error_names_the_source(void)
{
	conf *c = fresh();
	char err[256];

	CU_ASSERT(conf_set(c, 0, "0", CONF_FLAG, "--count", err, 256) != 0);
	CU_ASSERT_STRING_EQUAL(err, "--count: expected 1 to 10, got '0'");
	CU_ASSERT(conf_set(c, 0, "0", CONF_ENV, "GILD_COUNT", err, 256) != 0);
	CU_ASSERT_STRING_EQUAL(err,
	    "GILD_COUNT (--count): expected 1 to 10, got '0'");
	CU_ASSERT(conf_set(c, 0, "0", CONF_FILE, "f.conf:3", err, 256) != 0);
	CU_ASSERT_STRING_EQUAL(err, "f.conf:3: count: expected 1 to 10, got '0'");
	CU_ASSERT(conf_set(c, 5, "", CONF_FLAG, "--secret", err, 256) != 0);
	CU_ASSERT_STRING_EQUAL(err,
	    "--secret: expected a secret, got an empty value");
	conf_fini(c);
}

static void
test_env_name(void)
{
	const conf_opt o = {.name = "max-jobs-per-worker"};
	char out[64];

	conf_env_name(&o, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "GILD_MAX_JOBS_PER_WORKER");
	conf_env_name(&o, out, 8);
	CU_ASSERT_STRING_EQUAL(out, "GILD_MA");
}

static void
test_file(void)
{
	static const struct {
		const char *text;
		const char *err; /* after "PATH:", or NULL: read */
	} cases[] = {
	    {"# comment\n\n  count = 3  \r\n\twait=2\n", NULL},
	    {"count = 3", NULL}, /* no final newline */
	    {"", NULL},
	    {"count = 3\ncount = 4\n", ":2: count given again (first on line 1)"},
	    {"url = tcp://a:1\nurl = tcp://b:2\n", NULL},
	    {"cuont = 3\n", ":1: unknown setting 'cuont'"},
	    {"count 3\n", ":1: expected `name = value`"},
	    {"count = 3 # three\n", ":1: count: expected 1 to 10, got '3 # three'"},
	    {"config = x\n", ":1: config cannot be set in a config file"},
	    {"\n\ncount =\n", ":3: count: expected 1 to 10, got ''"},
	};
	char path[64], err[512], want[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf *c = fresh();
		int rc;

		write_file(path, cases[i].text);
		rc = conf_read_file(c, path, err, sizeof(err));
		if (cases[i].err == NULL) {
			CU_ASSERT_EQUAL(rc, 0);
			if (rc != 0)
				fprintf(stderr, "\n  case %zu: %s\n", i, err);
		} else {
			snprintf(want, sizeof(want), "%s%s", path, cases[i].err);
			CU_ASSERT(rc != 0 && strncmp(err, want, strlen(want)) == 0);
			if (rc == 0 || strncmp(err, want, strlen(want)) != 0)
				fprintf(stderr, "\n  case %zu: '%s'\n", i,
				    rc ? err : "read");
		}
		if (i == 0)
			CU_ASSERT(n_val == 3 && ms_val == 2000);
		if (i == 4)
			CU_ASSERT(list_val.n == 2 &&
				  strcmp(list_val.v[1], "tcp://b:2") == 0);
		unlink(path);
		conf_fini(c);
	}
	conf *c = fresh();
	CU_ASSERT(conf_read_file(c, "/nonexistent/x.conf", err, 512) != 0);
	CU_ASSERT_STRING_EQUAL(err, "config file /nonexistent/x.conf: No such "
				    "file or directory");
	conf_fini(c);
}

static void
test_precedence(void)
{
	conf *c = fresh();
	char path[64], err[512];
	const char *where;

	write_file(path, "count = 2\nwait = 3\nurl = tcp://f:1\nurl = tcp://f:2\n"
			 "colour = green\n");
	setenv("GILD_WAIT", "4", 1);
	setenv("GILD_URL", "tcp://e:1, tcp://e:2,,", 1);
	setenv("GILD_COUNT", "", 1); /* empty: unset */
	CU_ASSERT(conf_read_file(c, path, err, sizeof(err)) == 0);
	CU_ASSERT(conf_read_env(c, err, sizeof(err)) == 0);
	CU_ASSERT(conf_set(c, 3, "red", CONF_FLAG, "--colour", err, 512) == 0);
	unsetenv("GILD_WAIT");
	unsetenv("GILD_URL");
	unsetenv("GILD_COUNT");
	unlink(path);

	CU_ASSERT_EQUAL(n_val, 2);
	CU_ASSERT_EQUAL(conf_source_of(c, 0, &where), CONF_FILE);
	CU_ASSERT(strstr(where, ":1") != NULL);
	CU_ASSERT_EQUAL(ms_val, 4000);
	CU_ASSERT_EQUAL(conf_source_of(c, 1, &where), CONF_ENV);
	CU_ASSERT_STRING_EQUAL(where, "GILD_WAIT");
	CU_ASSERT_EQUAL(choice_val, 0);
	CU_ASSERT_EQUAL(conf_source_of(c, 3, NULL), CONF_FLAG);
	/* The env's list replaced the file's whole. */
	CU_ASSERT_EQUAL(list_val.n, 2);
	CU_ASSERT_STRING_EQUAL(list_val.v[0], "tcp://e:1");
	CU_ASSERT_STRING_EQUAL(list_val.v[1], "tcp://e:2");
	/* ... and flags replace the env's. */
	CU_ASSERT(conf_set(c, 6, "tcp://x:1", CONF_FLAG, "--url", err, 512) == 0);
	CU_ASSERT(list_val.n == 1 && strcmp(list_val.v[0], "tcp://x:1") == 0);
	CU_ASSERT_EQUAL(conf_source_of(c, 4, &where), CONF_DEFAULT);
	CU_ASSERT_STRING_EQUAL(where, "default");
	conf_fini(c);
}

static void
test_write(void)
{
	conf *c = fresh();
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;

	CU_ASSERT(conf_set(c, 0, "7", CONF_ENV, "GILD_COUNT", err, 256) == 0);
	CU_ASSERT(conf_set(c, 5, "hunter2", CONF_FLAG, "--secret", err, 256) ==
		  0);
	conf_set_default(c, 2, "1M", "worked out");
	CU_ASSERT_FATAL((f = open_memstream(&buf, &len)) != NULL);
	conf_write(c, f);
	fclose(f);
	CU_ASSERT(strstr(buf, "\n# from the environment: GILD_COUNT\ncount = 7\n")
		  != NULL);
	/* A duration's default in its one unit too. */
	CU_ASSERT(strstr(buf, "\n# default\nwait = 1s\n") != NULL);
	CU_ASSERT(strstr(buf, "\n# default\nslow = 0s\n") != NULL);
	CU_ASSERT(strstr(buf, "\n# default (worked out)\nsize = 1M\n") != NULL);
	CU_ASSERT(strstr(buf, "\n# default\nurl = tcp://127.0.0.1:1\n") != NULL);
	CU_ASSERT(strstr(buf, "hunter2") == NULL);
	CU_ASSERT(strstr(buf, "\n# secret = ********\n") != NULL);
	CU_ASSERT(strstr(buf, "\n# config = \n") != NULL);
	free(buf);
	buf = NULL;
	CU_ASSERT_FATAL((f = open_memstream(&buf, &len)) != NULL);
	conf_write_help(c, f);
	fclose(f);
	CU_ASSERT(strstr(buf, "  --count N           a count\n") != NULL);
	CU_ASSERT(strstr(buf, "  --wait S            a wait\n"
			      "                      over two lines\n") != NULL);
	CU_ASSERT(strstr(buf, "  --loud              a switch\n") != NULL);
	free(buf);
	conf_fini(c);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("config", NULL, NULL);
	CU_add_test(s, "value parsers", test_parsers);
	CU_add_test(s, "errors name the option and the source",
	    test_error_names_the_source);
	CU_add_test(s, "durations and sizes with units", test_units);
	CU_add_test(s, "--print-config shows them in one unit",
	    test_shown_in_one_unit);
	CU_add_test(s, "env var names", test_env_name);
	CU_add_test(s, "config file lines", test_file);
	CU_add_test(s, "flag > env > file > default", test_precedence);
	CU_add_test(s, "--print-config and --help output", test_write);
	return test_run_all();
}
