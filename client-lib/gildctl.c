/* gildctl: call functions on a gild server (or stream a generator's
 * chunks), ping it, or show its status, from the command line. Arguments
 * and results are JSON (valjson.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "gild.h"
#include "statusjson.h"
#include "valjson.h"

#define EXIT_FAILED 1 /* the server or the connection said no */
#define EXIT_USAGE 2  /* the command line is wrong */

static const char usage_text[] =
    "usage: gildctl [--timeout SECONDS] call URL FUNCTION [ARG...] [NAME=ARG...]\n"
    "       gildctl [--timeout SECONDS] stream URL FUNCTION [ARG...] [NAME=ARG...]\n"
    "       gildctl [--timeout SECONDS] exec URL FILE|- [NAME=ARG...]\n"
    "       gildctl [--timeout SECONDS] ping URL\n"
    "       gildctl [--timeout SECONDS] status URL\n"
    "\n"
    "  call    call FUNCTION and print its result as JSON\n"
    "  stream  call generator FUNCTION and print each value it yields as\n"
    "          JSON, one per line, as they come\n"
    "  exec    run the Python source in FILE (- reads standard input) on\n"
    "          the server, with each NAME=ARG as a variable, and print the\n"
    "          value it leaves in `result` as JSON; the server must run\n"
    "          with --allow-exec\n"
    "  ping    round trip to each server; print the time it took\n"
    "  status  print the server's status as JSON\n"
    "\n"
    "URL is tcp://HOST:PORT, ipc:///PATH, ws://HOST:PORT/PATH or\n"
    "tls+tcp://HOST:PORT (TLS: the server's certificate is verified against\n"
    "--tls-ca and must name HOST); several may be given separated by\n"
    "commas. Each ARG is a JSON value (1, \"s\", [1,2],\n"
    "{\"a\":1}, null, 1.5, integers of any size; NaN, Infinity and -Infinity\n"
    "as a whole ARG); NAME=ARG passes it as keyword argument NAME.\n"
    "Values JSON lacks are written {\"$bytes\": \"<base64>\"},\n"
    "{\"$pickle\": \"<base64>\"} (a pickled Python object, for servers run\n"
    "with --allow-pickle),\n"
    "{\"$map\": [[key, value], ...]} and\n"
    "{\"$tensor\": {\"dtype\": \"float32\", \"shape\": [2, 3], \"base64\": \"...\"}}.\n"
    "\n"
    "options:\n"
    "  --token SECRET     the server's token (default: $GILD_TOKEN), for a\n"
    "                     server started with --token\n"
    "  --tls-ca FILE      PEM CA certificate(s) that signed the server's\n"
    "                     certificate, for tls+tcp:// URLs (default:\n"
    "                     $GILD_TLS_CA, else the system's CA bundle)\n"
    "  --tls-cert FILE    this client's PEM certificate, for a server that\n"
    "                     requires one (gild serve --tls-ca; default:\n"
    "                     $GILD_TLS_CERT)\n"
    "  --tls-key FILE     its unencrypted PEM private key (default:\n"
    "                     $GILD_TLS_KEY, else the key inside --tls-cert)\n"
    "  --tls-server-name NAME\n"
    "                     the name the server's certificate must carry\n"
    "                     (default: the URL's HOST)\n"
    "  --timeout SECONDS  give up (and cancel the call) after this long;\n"
    "                     for stream, the whole stream's deadline;\n"
    "                     default: wait as long as it takes\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 success, 1 error reply or no connection (for stream,\n"
    "also an error after some values: it is printed after them), 2 usage\n"
    "error\n";

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "gildctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	return EXIT_USAGE;
}

/* Prints "CODE: message" (and a Python traceback) to stderr in one write. */
static void
print_error(int code, const gild_error *err)
{
	const char *msg = err->message ? err->message : "";
	const char *type = err->python_type;
	const char *tb = err->traceback;
	size_t tl = tb ? strlen(tb) : 0;
	bool with_type = type != NULL && strncmp(msg, type, strlen(type)) != 0;

	fprintf(stderr, "%s: %s%s%s\n%s%s", gild_code_name(code),
	    with_type ? type : "", with_type ? ": " : "", msg, tb ? tb : "",
	    tl > 0 && tb[tl - 1] != '\n' ? "\n" : "");
}

/* Splits "a,b,c" into a NULL-terminated array of new strings; the array
 * and its strings are freed with free_urls. NULL when an entry is empty. */
static char **
split_urls(const char *list, size_t *n)
{
	size_t count = 1, i = 0;
	char **urls;
	const char *p;

	for (p = list; *p; p++)
		count += *p == ',';
	if ((urls = calloc(count + 1, sizeof(*urls))) == NULL)
		return NULL;
	for (p = list;; i++) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t) (e - p) : strlen(p);

		if (len == 0 || (urls[i] = strndup(p, len)) == NULL) {
			for (size_t k = 0; k < i; k++)
				free(urls[k]);
			free(urls);
			return NULL;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	*n = count;
	return urls;
}

static void
free_urls(char **urls)
{
	for (size_t i = 0; urls != NULL && urls[i] != NULL; i++)
		free(urls[i]);
	free(urls);
}

/* How to connect: the token (--token, else $GILD_TOKEN, else NULL) is sent
 * with every request; the TLS files (--tls-*, else $GILD_TLS_*) are for
 * tls+tcp:// URLs. */
static gild_connect_options conn_opts;

static int
connect_to(char *const *urls, size_t n, gild_client **c)
{
	gild_error err = {0};
	int rc = gild_connect_opts(c, (const char *const *) urls, n, &conn_opts,
	    &err);

	if (rc != GILD_OK) {
		print_error(rc, &err);
		gild_error_clear(&err);
		return rc == GILD_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILED;
	}
	return 0;
}

/* Prints v as JSON and a newline on stdout. */
static int
print_value(const gild_value *v, int indent)
{
	char *text = valjson_dump(v, indent);

	if (text == NULL) {
		fprintf(stderr, "gildctl: out of memory\n");
		return EXIT_FAILED;
	}
	printf("%s\n", text);
	free(text);
	return fflush(stdout) == 0 ? 0 : EXIT_FAILED;
}

static bool
is_keyword(const char *arg, size_t *name_len)
{
	size_t n = 0;

	if (!(arg[0] == '_' || (arg[0] >= 'a' && arg[0] <= 'z') ||
	    (arg[0] >= 'A' && arg[0] <= 'Z')))
		return false;
	n = strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_");
	*name_len = n;
	return arg[n] == '=';
}

struct close_guard {
	atomic_bool done;
};

static void *
close_guard_main(void *arg)
{
	struct close_guard *g = arg;

	for (int i = 0; i < 100 && !atomic_load(&g->done); i++)
		usleep(50 * 1000);
	if (!atomic_load(&g->done)) {
		fprintf(stderr, "gildctl: the connection did not close within "
				"5 s (a known nng 1.5.2 deadlock); exiting\n");
		fflush(NULL);
		_exit(EXIT_FAILED);
	}
	return NULL;
}

/* gild_close, but nng 1.5.2's nng_close can deadlock now and then (nng issue
 * #1543): if it has not returned in 5 s, flush and exit with EXIT_FAILED
 * rather than hang the shell. */
static void
close_client(gild_client *c)
{
	struct close_guard g;
	pthread_t t;
	bool guarded;

	fflush(NULL);
	atomic_init(&g.done, false);
	guarded = pthread_create(&t, NULL, close_guard_main, &g) == 0;
	gild_close(c);
	atomic_store(&g.done, true);
	if (guarded)
		pthread_join(t, NULL);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Parses the JSON arguments of call and stream into new *args (a list)
 * and *kwargs (a map). Returns 0, EXIT_USAGE (said why on stderr) or
 * EXIT_FAILED (out of memory); *args and *kwargs are the caller's to free
 * either way. */
static int
parse_args(char **argv, int argc, gild_value **args, gild_value **kwargs)
{
	char why[256];
	int n_pos = 0;

	*args = gild_list();
	*kwargs = gild_map();
	if (*args == NULL || *kwargs == NULL)
		return EXIT_FAILED;
	for (int i = 0; i < argc; i++) {
		size_t nl = 0;
		bool kw = is_keyword(argv[i], &nl);
		const char *text = kw ? argv[i] + nl + 1 : argv[i];
		gild_value *v = NULL, *name = NULL;
		char *nm = kw ? strndup(argv[i], nl) : NULL;

		if (kw && nm == NULL)
			return EXIT_FAILED;
		if (kw && gild_map_get(*kwargs, nm) != NULL) {
			fprintf(stderr, "gildctl: keyword argument %s given twice\n",
			    nm);
			free(nm);
			return EXIT_USAGE;
		}
		if (valjson_parse(text, &v, why, sizeof(why)) != 0) {
			if (kw)
				fprintf(stderr, "gildctl: argument %s: %s\n", nm, why);
			else
				fprintf(stderr, "gildctl: argument %d: %s\n",
				    n_pos + 1, why);
			free(nm);
			return EXIT_USAGE;
		}
		if (kw) {
			name = gild_cstr(nm);
			free(nm);
			if (name == NULL ||
			    gild_map_set(*kwargs, name, v) != GILD_OK) {
				gild_value_free(name);
				gild_value_free(v);
				return EXIT_FAILED;
			}
		} else {
			n_pos++;
			if (gild_list_append(*args, v) != GILD_OK) {
				gild_value_free(v);
				return EXIT_FAILED;
			}
		}
	}
	return 0;
}

static int
cmd_call(char **urls, size_t n_urls, const char *function, char **argv,
    int argc, int timeout_ms)
{
	gild_value *args = NULL, *kwargs = NULL, *out = NULL;
	gild_client *c = NULL;
	gild_error err = {0};
	int rc;

	if ((rc = parse_args(argv, argc, &args, &kwargs)) != 0)
		goto out;
	if ((rc = connect_to(urls, n_urls, &c)) != 0)
		goto out;
	rc = gild_call(c, function, args, kwargs, timeout_ms, &out, &err);
	if (rc != GILD_OK) {
		print_error(rc, &err);
		rc = EXIT_FAILED;
		goto out;
	}
	rc = print_value(out, 0);
out:
	gild_error_clear(&err);
	gild_value_free(out);
	gild_value_free(args);
	gild_value_free(kwargs);
	close_client(c);
	return rc;
}

/* The whole of FILE (or standard input for "-") as a new NUL-terminated
 * string, or NULL with the reason printed. */
static char *
read_source(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "gildctl: exec: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);
			if (nb == NULL) {
				fprintf(stderr, "gildctl: out of memory\n");
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "gildctl: exec: reading %s: %s\n", path,
		    strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		fprintf(stderr, "gildctl: exec: %s holds a NUL byte: not Python "
				"source\n", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	return buf;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

/* Runs the source in path with NAME=ARG variables and prints `result`. As
 * gild_call, the server gets timeout_ms as the deadline and gildctl waits
 * GILD_CALL_GRACE_MS more before it cancels. */
static int
cmd_exec(char **urls, size_t n_urls, const char *path, char **argv,
    int argc, int timeout_ms)
{
	gild_value *args = NULL, *vars = NULL;
	gild_result res = {0};
	gild_client *c = NULL;
	gild_error err = {0};
	gild_call_id id;
	char *src = NULL;
	int rc;

	if ((rc = parse_args(argv, argc, &args, &vars)) != 0)
		goto out;
	if (gild_value_len(args) > 0) {
		rc = usage_error("%s", "exec takes only NAME=ARG variables after "
				      "FILE");
		goto out;
	}
	if ((src = read_source(path)) == NULL) {
		rc = EXIT_FAILED;
		goto out;
	}
	if ((rc = connect_to(urls, n_urls, &c)) != 0)
		goto out;
	rc = gild_submit_exec(c, src, vars,
	    strcmp(path, "-") == 0 ? "<stdin>" : path,
	    timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : timeout_ms, &id, &err);
	if (rc == GILD_OK) {
		rc = gild_wait(c, id,
		    timeout_ms < 0 ? -1 : timeout_ms + GILD_CALL_GRACE_MS, &res);
		if (rc == GILD_DEADLINE_EXCEEDED) {
			gild_cancel(c, id, NULL);
			err.message = strdup("no reply in time");
		} else if (rc == GILD_OK && res.code != GILD_OK) {
			rc = res.code;
			err = res.error;
			res.error = (gild_error){0};
		}
	}
	if (rc != GILD_OK) {
		print_error(rc, &err);
		rc = EXIT_FAILED;
		goto out;
	}
	rc = print_value(res.value, 0);
out:
	gild_result_clear(&res);
	gild_error_clear(&err);
	gild_value_free(args);
	gild_value_free(vars);
	free(src);
	close_client(c);
	return rc;
}

/* Prints each chunk of the stream as one line of JSON, flushed as it
 * comes; an error that ends the stream goes to stderr after the chunks
 * before it. With timeout_ms >= 0, the server gets it as the stream's
 * deadline, and gildctl gives up GILD_CALL_GRACE_MS after it (closing the
 * stream cancels it). */
static int
cmd_stream(char **urls, size_t n_urls, const char *function, char **argv,
    int argc, int timeout_ms)
{
	gild_value *args = NULL, *kwargs = NULL, *v = NULL;
	gild_client *c = NULL;
	gild_stream *s = NULL;
	gild_error err = {0};
	double give_up = 0;
	int rc;

	if ((rc = parse_args(argv, argc, &args, &kwargs)) != 0)
		goto out;
	if ((rc = connect_to(urls, n_urls, &c)) != 0)
		goto out;
	/* A deadline of 0 ms is no deadline on the wire: send 1 ms. */
	rc = gild_stream_open(c, function, args, kwargs, 0,
	    timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 : timeout_ms, &s, &err);
	if (rc != GILD_OK) {
		print_error(rc, &err);
		rc = EXIT_FAILED;
		goto out;
	}
	if (timeout_ms >= 0)
		give_up = now_ms() + timeout_ms + GILD_CALL_GRACE_MS;
	for (;;) {
		double left = timeout_ms < 0 ? 0 : give_up - now_ms();
		int wait = timeout_ms < 0 ? -1 : left <= 0 ? 0 :
		    left >= INT_MAX - 1 ? INT_MAX : (int) left + 1;

		rc = gild_stream_next(s, wait, &v, &err);
		if (rc != GILD_OK)
			break;
		rc = print_value(v, 0);
		gild_value_free(v);
		v = NULL;
		if (rc != 0)
			goto out;
	}
	if (rc == GILD_STREAM_END) {
		rc = 0;
	} else if (rc == GILD_DEADLINE_EXCEEDED && err.code == GILD_OK) {
		fprintf(stderr, "%s: the stream did not end within %lld ms\n",
		    gild_code_name(rc),
		    (long long) timeout_ms + GILD_CALL_GRACE_MS);
		rc = EXIT_FAILED;
	} else {
		print_error(rc, &err);
		rc = EXIT_FAILED;
	}
out:
	gild_error_clear(&err);
	gild_value_free(args);
	gild_value_free(kwargs);
	gild_stream_close(s);
	close_client(c);
	return rc;
}

/* Pings each URL over its own connection. */
static int
cmd_ping(char **urls, size_t n_urls, int timeout_ms)
{
	int status = 0;

	for (size_t i = 0; i < n_urls; i++) {
		gild_client *c = NULL;
		gild_error err = {0};
		char *version = NULL;
		double t0;
		int rc;

		if ((rc = connect_to(&urls[i], 1, &c)) != 0) {
			status = status ? status : rc;
			continue;
		}
		t0 = now_ms();
		rc = client_ping(c, timeout_ms, &version, &err);
		if (rc == GILD_OK) {
			printf("pong from %s (gild %s) in %.3f ms\n", urls[i],
			    version, now_ms() - t0);
			fflush(stdout);
		} else {
			print_error(rc, &err);
			status = EXIT_FAILED;
		}
		free(version);
		gild_error_clear(&err);
		close_client(c);
	}
	return status;
}

/* One URL: its status object. Several: an object of them keyed by URL. */
static int
cmd_status(char **urls, size_t n_urls, int timeout_ms)
{
	json_t *all = n_urls > 1 ? json_object() : NULL, *one = NULL;
	char *text;
	int rc = 0;

	for (size_t i = 0; i < n_urls && rc == 0; i++) {
		gild_client *c = NULL;
		gild_error err = {0};
		Gild__V1__Status *st;

		if ((rc = connect_to(&urls[i], 1, &c)) != 0)
			break;
		if ((rc = client_status_message(c, timeout_ms, &st, &err)) !=
		    GILD_OK) {
			print_error(rc, &err);
			rc = EXIT_FAILED;
		} else {
			json_decref(one);
			one = statusjson_object(st);
			gild__v1__status__free_unpacked(st, NULL);
			if (one == NULL || (all != NULL &&
			    json_object_set(all, urls[i], one) != 0))
				rc = EXIT_FAILED;
		}
		gild_error_clear(&err);
		close_client(c);
	}
	if (rc == 0) {
		if ((text = statusjson_dump(all != NULL ? all : one, 2)) ==
		    NULL) {
			fprintf(stderr, "gildctl: out of memory\n");
			rc = EXIT_FAILED;
		} else {
			printf("%s\n", text);
			free(text);
			rc = fflush(stdout) == 0 ? 0 : EXIT_FAILED;
		}
	}
	json_decref(all);
	json_decref(one);
	return rc;
}

static int
parse_timeout(const char *s, int *ms)
{
	char *end;
	double sec;

	errno = 0;
	sec = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(sec >= 0) || isinf(sec))
		return -1;
	*ms = sec * 1000 >= INT_MAX ? INT_MAX : (int) ceil(sec * 1000);
	return 0;
}

/* $name, or NULL when it is unset or empty. */
static const char *
env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* If argv[*i] is --tls-ca, --tls-cert, --tls-key (a FILE next, or after
 * '=') or --tls-server-name (a NAME): stores the value in conn_opts, moves
 * *i past it and returns true, with *rc 0, or EXIT_USAGE when it is
 * missing or the FILE unreadable (said why). */
static bool
tls_option(char **argv, int *i, int *rc)
{
	static const char *const names[] = {"--tls-ca", "--tls-cert",
	    "--tls-key", "--tls-server-name"};
	const char **fields[] = {&conn_opts.tls_ca, &conn_opts.tls_cert,
	    &conn_opts.tls_key, &conn_opts.tls_server_name};
	const char *a = argv[*i], *v;

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		size_t len = strlen(names[k]);

		if (strncmp(a, names[k], len) != 0 ||
		    (a[len] != '\0' && a[len] != '='))
			continue;
		v = a[len] == '=' ? a + len + 1 : argv[++*i];
		*rc = 0;
		if (v == NULL || *v == '\0') {
			*rc = usage_error("%s needs a value", names[k]);
		} else if (fields[k] != &conn_opts.tls_server_name &&
		    access(v, R_OK) != 0) {
			fprintf(stderr, "gildctl: %s %s: %s\n", names[k], v,
			    strerror(errno));
			*rc = EXIT_USAGE;
		}
		*fields[k] = v;
		return true;
	}
	return false;
}

int
main(int argc, char **argv)
{
	char **pos, **urls = NULL;
	int npos = 0, timeout_ms = -1, rc;
	bool options = true;
	size_t n_urls = 0;

	if ((pos = calloc((size_t) argc + 1, sizeof(*pos))) == NULL)
		return EXIT_FAILED;
	conn_opts.token = env_or_null("GILD_TOKEN");
	conn_opts.tls_ca = env_or_null("GILD_TLS_CA");
	conn_opts.tls_cert = env_or_null("GILD_TLS_CERT");
	conn_opts.tls_key = env_or_null("GILD_TLS_KEY");
	/* Options may come anywhere before "--": none of them is valid JSON,
	 * so they cannot be mistaken for an argument (a negative number is
	 * not an option). */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options && strcmp(a, "--") == 0) {
			options = false;
		} else if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			fputs(usage_text, stdout);
			free(pos);
			return 0;
		} else if (options && (!strcmp(a, "--timeout") ||
		    !strncmp(a, "--timeout=", 10))) {
			const char *v = a[9] == '=' ? a + 10 : argv[++i];

			if (v == NULL || parse_timeout(v, &timeout_ms) != 0) {
				free(pos);
				return usage_error("--timeout needs a number of "
				    "seconds, not '%s'", v ? v : "");
			}
		} else if (options && (!strcmp(a, "--token") ||
		    !strncmp(a, "--token=", 8))) {
			if ((conn_opts.token = a[7] == '=' ? a + 8 : argv[++i]) ==
			    NULL || *conn_opts.token == '\0') {
				free(pos);
				return usage_error("--token needs a value%s", "");
			}
		} else if (options && tls_option(argv, &i, &rc)) {
			if (rc != 0) {
				free(pos);
				return rc;
			}
		} else if (options && a[0] == '-' && a[1] == '-') {
			free(pos);
			return usage_error("unknown option %s", a);
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (npos < 2) {
		rc = usage_error("%s", npos == 0 ? "no command given" :
		    "no server URL given");
		goto out;
	}
	if ((urls = split_urls(pos[1], &n_urls)) == NULL) {
		rc = usage_error("bad URL list '%s'", pos[1]);
		goto out;
	}
	if (strcmp(pos[0], "call") == 0) {
		if (npos < 3) {
			rc = usage_error("%s", "call needs a FUNCTION name");
			goto out;
		}
		rc = cmd_call(urls, n_urls, pos[2], pos + 3, npos - 3, timeout_ms);
	} else if (strcmp(pos[0], "stream") == 0) {
		if (npos < 3) {
			rc = usage_error("%s", "stream needs a FUNCTION name");
			goto out;
		}
		rc = cmd_stream(urls, n_urls, pos[2], pos + 3, npos - 3,
		    timeout_ms);
	} else if (strcmp(pos[0], "exec") == 0) {
		if (npos < 3) {
			rc = usage_error("%s", "exec needs a FILE (or - for "
					      "standard input)");
			goto out;
		}
		rc = cmd_exec(urls, n_urls, pos[2], pos + 3, npos - 3,
		    timeout_ms);
	} else if (strcmp(pos[0], "ping") == 0 && npos == 2) {
		rc = cmd_ping(urls, n_urls, timeout_ms);
	} else if (strcmp(pos[0], "status") == 0 && npos == 2) {
		rc = cmd_status(urls, n_urls, timeout_ms);
	} else if (strcmp(pos[0], "ping") == 0 || strcmp(pos[0], "status") == 0) {
		rc = usage_error("%s takes only a URL", pos[0]);
	} else {
		rc = usage_error("unknown command '%s'", pos[0]);
	}
out:
	free_urls(urls);
	free(pos);
	return rc;
}
