/* Tests of server/applog.c: bytes written on a process's stdout or stderr
 * pipe, and the gild log events (JSON, parsed back) they become. */
#include "server/applog.h"
#include "server/log.h"
#include "proto/applog_frame.h"

#include <CUnit/Basic.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_main.h"

#define RS "\x1e"
#define US "\x1f"

/* Writes in (len bytes) on pipe `which` (0: stdout, 1: stderr) of a
 * process in slot 3, closes its write ends unless keep_open, runs the loop
 * until the pipes are read, and returns the events logged (new; NULL when
 * a line was not JSON). */
static json_t *
events_of(const char *in, size_t len, int which, bool keep_open)
{
	char path[] = "/tmp/gild-test-applog-XXXXXX", line[80000];
	struct event_base *base = event_base_new();
	json_t *out = json_array();
	applog *a = NULL;
	int w[2], saved = dup(2), tmp = mkstemp(path);
	FILE *f;

	CU_ASSERT_FATAL(base != NULL && tmp != -1 && saved != -1);
	unlink(path);
	fflush(stderr);
	dup2(tmp, 2);
	CU_ASSERT_EQUAL_FATAL(applog_init(&a, base), 0);
	CU_ASSERT_EQUAL_FATAL(applog_open(a, 3, 0, w), 0);
	CU_ASSERT_EQUAL(write(w[which], in, len), (ssize_t) len);
	if (!keep_open) {
		close(w[0]);
		close(w[1]);
	}
	/* Nothing else in the loop: it ends once both pipes are at EOF. */
	if (!keep_open)
		event_base_dispatch(base);
	applog_fini(a);
	if (keep_open) {
		close(w[0]);
		close(w[1]);
	}
	event_base_free(base);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(tmp, 0, SEEK_SET);
	f = fdopen(tmp, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		json_error_t err;
		json_t *e = json_loads(line, JSON_ALLOW_NUL, &err);
		if (e == NULL) {
			json_decref(out);
			out = NULL;
			break;
		}
		json_array_append_new(out, e);
	}
	if (f != NULL)
		fclose(f);
	return out;
}

/* What one event should say: its message (mlen bytes; 0: strlen), and
 * fields; request_id -1, function and logger NULL: absent. */
typedef struct want {
	const char *msg;
	size_t mlen;
	const char *stream;
	long long request_id;
	const char *function;
	const char *logger;
	const char *level;
	bool truncated;
	long long pid; /* 0: absent */
} want;

static void
check(const json_t *e, const want *w)
{
	const char *msg = json_string_value(json_object_get(e, "msg"));
	size_t mlen = w->mlen ? w->mlen : strlen(w->msg);
	json_t *rid = json_object_get(e, "request_id");
	json_t *fn = json_object_get(e, "function");
	json_t *lg = json_object_get(e, "logger");
	json_t *pid = json_object_get(e, "pid");

	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(e, "msg")), mlen);
	CU_ASSERT(memcmp(msg, w->msg, mlen) == 0);
	CU_ASSERT_STRING_EQUAL(
	    json_string_value(json_object_get(e, "stream")), w->stream);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(e, "slot")), 3);
	CU_ASSERT_STRING_EQUAL(
	    json_string_value(json_object_get(e, "level")), w->level);
	/* CUnit's asserts are blocks: hence the braces. */
	if (w->request_id < 0) {
		CU_ASSERT_PTR_NULL(rid);
	} else {
		CU_ASSERT_EQUAL(json_integer_value(rid), w->request_id);
	}
	if (w->function == NULL) {
		CU_ASSERT_PTR_NULL(fn);
	} else {
		CU_ASSERT_STRING_EQUAL(json_string_value(fn), w->function);
	}
	if (w->logger == NULL) {
		CU_ASSERT_PTR_NULL(lg);
	} else {
		CU_ASSERT_STRING_EQUAL(json_string_value(lg), w->logger);
	}
	CU_ASSERT_EQUAL(json_object_get(e, "truncated") != NULL, w->truncated);
	if (w->pid == 0) {
		CU_ASSERT_PTR_NULL(pid);
	} else {
		CU_ASSERT_EQUAL(json_integer_value(pid), w->pid);
	}
}

#define PLAIN(m) {m, 0, "stdout", -1, NULL, NULL, "info", false, 0}

/* One case: what is written and the events it gives, in order. */
typedef struct tcase {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	int which;
	want out[4];
	size_t n;
} tcase;

static const tcase cases[] = {
    {"plain lines", "hello\nworld\n", 0, 0,
	{PLAIN("hello"), PLAIN("world")}, 2},
    {"an empty line is an event", "\n", 0, 0, {PLAIN("")}, 1},
    {"stderr", "oops\n", 0, 1,
	{{"oops", 0, "stderr", -1, NULL, NULL, "info", false, 0}}, 1},
    {"a pid announced", RS "p42\nx\n", 0, 0,
	{{"x", 0, "stdout", -1, NULL, NULL, "info", false, 42}}, 1},
    {"a record with newlines is one event",
	RS "l7" US "work" US US US "3\na\nb" "after\n", 0, 0,
	{{"a\nb", 0, "stdout", 7, "work", NULL, "info", false, 0},
	    PLAIN("after")},
	2},
    {"a logging record", RS "l" US US "WARNING" US "my.log" US "2\nhi", 0, 0,
	{{"hi", 0, "stdout", -1, NULL, "my.log", "warn", false, 0}}, 1},
    {"RS ends plain text before it", "abc" RS "p9\nd\n", 0, 0,
	{PLAIN("abc"), {"d", 0, "stdout", -1, NULL, NULL, "info", false, 9}},
	2},
    {"a bad header is plain text", RS "zzz\n", 0, 0, {PLAIN("zzz")}, 1},
    {"a bad request id is plain text", RS "lx" US "f" US US US "1\nq\n", 0,
	0, {PLAIN("lx" US "f" US US US "1"), PLAIN("q")}, 2},
    {"a partial line at the end", "tail", 0, 0, {PLAIN("tail")}, 1},
    {"a record cut short at the end",
	RS "l1" US "f" US US US "10\nabc", 0, 0,
	{{"abc", 0, "stdout", 1, "f", NULL, "info", true, 0}}, 1},
    {"NUL bytes", "a\0b\n", 4, 0, {{"a\0b", 3, "stdout", -1, NULL, NULL,
				       "info", false, 0}},
	1},
};

static void
test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const tcase *c = &cases[i];
		json_t *ev = events_of(c->in, c->len ? c->len : strlen(c->in),
		    c->which, false);

		CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
		if (json_array_size(ev) != c->n)
			fprintf(stdout, "case '%s': %zu events\n", c->name,
			    json_array_size(ev));
		CU_ASSERT_EQUAL(json_array_size(ev), c->n);
		for (size_t k = 0; k < c->n && k < json_array_size(ev); k++)
			check(json_array_get(ev, k), &c->out[k]);
		json_decref(ev);
	}
}

/* A line over APPLOG_LINE_MAX is cut there, between two UTF-8 characters,
 * and what follows up to its newline is dropped; so is a record's. */
static void
test_long_lines(void)
{
	size_t n = APPLOG_LINE_MAX + 5000, hl;
	char *in = malloc(n + 100), head[64];
	json_t *ev;

	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	/* 'a' * (MAX - 1), then 'é' across the cut, then more, '\n', 'z\n'. */
	memset(in, 'a', n);
	memcpy(in + APPLOG_LINE_MAX - 1, "\xc3\xa9", 2);
	memcpy(in + n, "\nz\n", 3);
	ev = events_of(in, n + 3, 0, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL_FATAL(json_array_size(ev), 2);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(
			    json_array_get(ev, 0), "msg")),
	    APPLOG_LINE_MAX - 1);
	CU_ASSERT_PTR_NOT_NULL(json_object_get(json_array_get(ev, 0),
	    "truncated"));
	check(json_array_get(ev, 1), &(want) PLAIN("z"));
	json_decref(ev);

	hl = (size_t) snprintf(head, sizeof(head), RS "l5" US "f" US US US
	    "%zu\n", n);
	memmove(in + hl, in, n);
	memcpy(in, head, hl);
	memset(in + hl, 'b', n);
	memcpy(in + hl + n, "z\n", 2);
	ev = events_of(in, hl + n + 2, 0, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL_FATAL(json_array_size(ev), 2);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(
			    json_array_get(ev, 0), "msg")),
	    APPLOG_LINE_MAX);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(
			    json_array_get(ev, 0), "request_id")),
	    5);
	check(json_array_get(ev, 1), &(want) PLAIN("z"));
	json_decref(ev);
	free(in);
}

/* A header that never ends within APPLOG_HEADER_MAX is plain text. */
static void
test_long_header(void)
{
	char in[APPLOG_HEADER_MAX + 100];
	json_t *ev;

	in[0] = APPLOG_RS;
	memset(in + 1, 'h', sizeof(in) - 2);
	in[sizeof(in) - 1] = '\n';
	ev = events_of(in, sizeof(in), 0, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL_FATAL(json_array_size(ev), 1);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(
			    json_array_get(ev, 0), "msg")),
	    sizeof(in) - 2);
	json_decref(ev);
}

/* applog_fini logs what a pipe still open holds, a partial line too. */
static void
test_fini_reads_rest(void)
{
	json_t *ev = events_of("one\ntwo", 7, 0, true);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL_FATAL(json_array_size(ev), 2);
	check(json_array_get(ev, 0), &(want) PLAIN("one"));
	check(json_array_get(ev, 1), &(want) PLAIN("two"));
	json_decref(ev);
}

int
main(void)
{
	CU_pSuite s;

	log_set_format(LOG_JSON);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("applog", NULL, NULL);
	CU_add_test(s, "what is written, and the events", test_cases);
	CU_add_test(s, "long lines are cut", test_long_lines);
	CU_add_test(s, "a header too long is plain text", test_long_header);
	CU_add_test(s, "what is left at fini is logged", test_fini_reads_rest);
	return test_run_all();
}
