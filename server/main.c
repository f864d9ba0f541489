/* gild: the command line of the server daemon. */
#include "cpus.h"
#include "log.h"
#include "server.h"
#include "tlscheck.h"
#include "tlsconf.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LISTEN 32

static const char usage[] =
    "usage: gild serve APP [options]\n"
    "       gild --version\n"
    "\n"
    "Serves the public functions of APP (a .py file or an importable\n"
    "module name) to clients over nng.\n"
    "\n"
    "options:\n"
    "  --listen URL        where clients connect (repeatable; tcp://, ipc://,\n"
    "                      ws://, tls+tcp://); default tcp://127.0.0.1:7700;\n"
    "                      tcp port 0 picks a free port (printed at start)\n"
    "  --tls-cert FILE     tls+tcp:// listeners present this PEM certificate\n"
    "                      (with its chain; needed for tls+tcp://)\n"
    "  --tls-key FILE      its PEM private key, unencrypted (default: the\n"
    "                      key inside the --tls-cert file)\n"
    "  --tls-ca FILE       require client certificates signed by a CA in\n"
    "                      this PEM file (mutual TLS; default: none asked)\n"
    "  --token SECRET      require SECRET on every request (default: the\n"
    "                      GILD_TOKEN environment variable; none: no check);\n"
    "                      others get UNAUTHENTICATED\n"
    "  --insecure          listen on a non-loopback address without a token\n"
    "                      (refused otherwise)\n"
    "  --http HOST:PORT    also serve /healthz, /readyz, /status and\n"
    "                      /metrics over HTTP there (off by default; port\n"
    "                      0: a free port, printed at start)\n"
    "  --workers N         worker processes (default: usable CPUs, honouring\n"
    "                      the cgroup CPU quota and the affinity mask; with\n"
    "                      --runtime free-threaded, 1)\n"
    "  --runtime R         process (default): one Python per worker process,\n"
    "                      with its GIL; free-threaded: workers embed a\n"
    "                      free-threaded Python (gild-worker-ft) and run\n"
    "                      calls on --threads threads each, in parallel\n"
    "  --threads T         free-threaded runtime: Python threads per worker\n"
    "                      (default: usable CPUs)\n"
    "  --max-message SIZE  largest request or result (default 64M; K, M, G)\n"
    "  --max-queue N       calls waiting for a worker before new ones get\n"
    "                      RESOURCE_EXHAUSTED (default 10000)\n"
    "  --max-jobs-per-worker N\n"
    "                      replace a worker after N calls (default 0: never)\n"
    "  --max-worker-rss MIB\n"
    "                      replace a worker whose resident memory is over MIB\n"
    "                      after a call (default 0: never)\n"
    "  --default-timeout S deadline of calls that set none and whose function\n"
    "                      declares none, in seconds (default 0: none)\n"
    "  --kill-grace S      seconds an interrupted call (deadline, cancel) may\n"
    "                      take to stop before its worker is killed (default 2)\n"
    "  --worker-memory MIB hard address-space limit of each worker (for\n"
    "                      free-threaded ones: on top of what the worker\n"
    "                      reserved by the time the app was imported); a call\n"
    "                      that needs more ends with WORKER_LOST and the\n"
    "                      worker is replaced (default 0: none)\n"
    "  --spawn fork|exec   how workers start: fork (default) from a template\n"
    "                      process that imported the app once (a new worker\n"
    "                      is ready in milliseconds), or exec, each worker\n"
    "                      importing the app itself (for apps that are not\n"
    "                      safe to fork after import)\n"
    "  --drain-timeout S   on SIGTERM/SIGINT, seconds the accepted calls\n"
    "                      (running and queued) may take to finish (default 30)\n"
    "                      SIGHUP reloads the app: workers are replaced one\n"
    "                      at a time, between calls\n"
    "  --worker-bin PATH   the gild-worker program (default: next to gild,\n"
    "                      or PREFIX/libexec/gild/gild-worker)\n"
    "  --log-level LEVEL   debug, info, warn or error (default info)\n"
    "  --log-format F      logfmt (default) or json: one event per line on\n"
    "                      stderr either way\n"
    "  --slow-ms MS        log a warning for each call that takes MS ms or\n"
    "                      more from arrival to answer (default 0: off)\n"
    "  -h, --help          this help\n";

static int
die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "gild: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see gild serve --help)\n");
	return 2;
}

/* Whether a --listen URL is reachable from this machine only: ipc:// and
 * inproc://, or a TCP or WebSocket address on loopback. */
static bool
url_is_local(const char *url)
{
	const char *p = strstr(url, "://"), *h;
	size_t n;

	if (p == NULL)
		return false;
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0 ||
	    strncmp(url, "abstract://", 11) == 0)
		return true;
	h = p + 3;
	if (*h == '[') /* [v6]:port */
		return strncmp(h, "[::1]", 5) == 0;
	n = strcspn(h, ":/");
	return (n == 9 && strncmp(h, "localhost", 9) == 0) ||
	       (n >= 4 && strncmp(h, "127.", 4) == 0);
}

/* "64M" -> bytes; returns 0 or -1. */
static int
parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0' || v == 0 || v > (1ull << 31) - (1u << 21))
		return -1;
	*out = (size_t) v;
	return 0;
}

/* "1.5" seconds -> milliseconds in [min_ms, max_ms]; returns 0 or -1. */
static int
parse_seconds(const char *s, long min_ms, long max_ms, long *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v * 1000 >= (double) min_ms) ||
	    !(v * 1000 <= (double) max_ms))
		return -1;
	*out = (long) (v * 1000 + 0.5);
	return 0;
}

static int
parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* name (gild-worker or gild-worker-ft) next to this program, or in
 * ../libexec/gild/. */
static int
find_worker(const char *name, char *out, size_t len)
{
	char self[PATH_MAX], *dir;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -1;
	self[n] = '\0';
	dir = dirname(self);
	snprintf(out, len, "%s/%s", dir, name);
	if (access(out, X_OK) == 0)
		return 0;
	snprintf(out, len, "%s/../libexec/gild/%s", dir, name);
	return access(out, X_OK) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"http", required_argument, NULL, 'H'},
	    {"token", required_argument, NULL, 'K'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"workers", required_argument, NULL, 'w'},
	    {"runtime", required_argument, NULL, 'r'},
	    {"threads", required_argument, NULL, 'T'},
	    {"max-message", required_argument, NULL, 'm'},
	    {"max-queue", required_argument, NULL, 'q'},
	    {"drain-timeout", required_argument, NULL, 'd'},
	    {"default-timeout", required_argument, NULL, 't'},
	    {"kill-grace", required_argument, NULL, 'g'},
	    {"worker-memory", required_argument, NULL, 'M'},
	    {"spawn", required_argument, NULL, 'S'},
	    {"max-jobs-per-worker", required_argument, NULL, 'J'},
	    {"max-worker-rss", required_argument, NULL, 'R'},
	    {"worker-bin", required_argument, NULL, 'b'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"log-format", required_argument, NULL, 'F'},
	    {"slow-ms", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen[MAX_LISTEN];
	char worker_bin[PATH_MAX], app_path[PATH_MAX];
	server_opts o = {
	    .listen = listen,
	    .max_message = 64u << 20,
	    .max_queue = 10000,
	    .drain_ms = 30000,
	    .kill_grace_ms = 2000,
	};
	bool insecure = false, any_tls = false;
	tlsconf_opts tls = {.server = true, .cert_opt = "--tls-cert",
	    .key_opt = "--tls-key", .ca_opt = "--tls-ca",
	    .check_pair = tlscheck_pair};
	char tls_err[PATH_MAX + 512];
	long v;
	int c, rc;

	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("gild %s\n", GILD_VERSION);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "serve") != 0) {
		bool help = argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
					     strcmp(argv[1], "--help") == 0);
		fputs(usage, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	worker_bin[0] = '\0';
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (o.nlisten == MAX_LISTEN)
				return die_usage("too many --listen URLs", "");
			listen[o.nlisten++] = optarg;
			break;
		case 'w':
			if (parse_int(optarg, 1, 4096, &v) != 0)
				return die_usage("--workers: expected a whole "
						 "number from 1 to 4096, got '%s'",
				    optarg);
			o.workers = (int) v;
			break;
		case 'r':
			if (strcmp(optarg, "process") == 0)
				o.free_threaded = false;
			else if (strcmp(optarg, "free-threaded") == 0)
				o.free_threaded = true;
			else
				return die_usage("--runtime: expected process or "
						 "free-threaded, got '%s'",
				    optarg);
			break;
		case 'T':
			if (parse_int(optarg, 1, 1024, &v) != 0)
				return die_usage("--threads: expected a whole "
						 "number from 1 to 1024, got '%s'",
				    optarg);
			o.threads = (int) v;
			break;
		case 'm':
			if (parse_size(optarg, &o.max_message) != 0)
				return die_usage("--max-message: expected a size "
						 "such as 1048576, 512K or 64M "
						 "(at most 2046M), got '%s'",
				    optarg);
			break;
		case 's':
			if (parse_int(optarg, 0, 86400000, &v) != 0)
				return die_usage("--slow-ms: expected a whole "
						 "number of milliseconds (0: "
						 "off), got '%s'",
				    optarg);
			o.slow_ms = (uint32_t) v;
			break;
		case 'q':
			if (parse_int(optarg, 1, 100000000, &v) != 0)
				return die_usage("--max-queue: expected a whole "
						 "number from 1, got '%s'",
				    optarg);
			o.max_queue = (size_t) v;
			break;
		case 'd':
			if (parse_int(optarg, 0, 86400, &v) != 0)
				return die_usage("--drain-timeout: expected "
						 "seconds from 0 to 86400, got '%s'",
				    optarg);
			o.drain_ms = (int) v * 1000;
			break;
		case 't':
			if (parse_seconds(optarg, 0, 86400000L, &v) != 0)
				return die_usage("--default-timeout: expected "
						 "seconds from 0 (none) to 86400, "
						 "got '%s'",
				    optarg);
			o.default_timeout_ms = (uint32_t) v;
			break;
		case 'g':
			if (parse_seconds(optarg, 0, 3600000L, &v) != 0)
				return die_usage("--kill-grace: expected seconds "
						 "from 0 to 3600, got '%s'",
				    optarg);
			o.kill_grace_ms = (int) v;
			break;
		case 'M':
			if (parse_int(optarg, 0, 1L << 30, &v) != 0 ||
			    (v != 0 && v < 64))
				return die_usage("--worker-memory: expected MiB "
						 "as a whole number, at least 64 "
						 "(0: no limit), got '%s'",
				    optarg);
			o.worker_memory_mib = (uint64_t) v;
			break;
		case 'S':
			if (strcmp(optarg, "fork") == 0)
				o.spawn_exec = false;
			else if (strcmp(optarg, "exec") == 0)
				o.spawn_exec = true;
			else
				return die_usage("--spawn: expected fork or exec, "
						 "got '%s'",
				    optarg);
			break;
		case 'J':
			if (parse_int(optarg, 0, LONG_MAX, &v) != 0)
				return die_usage("--max-jobs-per-worker: expected "
						 "a whole number (0: never), got '%s'",
				    optarg);
			o.max_jobs = (uint64_t) v;
			break;
		case 'R':
			if (parse_int(optarg, 0, 1L << 30, &v) != 0)
				return die_usage("--max-worker-rss: expected MiB "
						 "as a whole number (0: never), got "
						 "'%s'",
				    optarg);
			o.max_rss_mib = (uint64_t) v;
			break;
		case 'b':
			snprintf(worker_bin, sizeof(worker_bin), "%s", optarg);
			break;
		case 'H':
			o.http = optarg;
			break;
		case 'K':
			o.token = optarg;
			break;
		case 'I':
			insecure = true;
			break;
		case 'C':
			tls.cert = optarg;
			break;
		case 'k':
			tls.key = optarg;
			break;
		case 'A':
			tls.ca = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "logfmt") == 0)
				log_set_format(LOG_LOGFMT);
			else if (strcmp(optarg, "json") == 0)
				log_set_format(LOG_JSON);
			else
				return die_usage("--log-format: expected logfmt "
						 "or json, got '%s'",
				    optarg);
			break;
		case 'L':
			if (strcmp(optarg, "debug") == 0)
				log_set_level(LOG_DEBUG);
			else if (strcmp(optarg, "info") == 0)
				log_set_level(LOG_INFO);
			else if (strcmp(optarg, "warn") == 0)
				log_set_level(LOG_WARN);
			else if (strcmp(optarg, "error") == 0)
				log_set_level(LOG_ERROR);
			else
				return die_usage("--log-level: expected debug, "
						 "info, warn or error, got '%s'",
				    optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("gild %s\n", GILD_VERSION);
			return 0;
		default:
			return 2; /* getopt printed why */
		}
	}
	if (optind != argc - 1)
		return die_usage(optind >= argc ? "serve: missing APP%s"
						: "serve: one APP expected, "
						  "extra argument '%s'",
		    optind >= argc ? "" : argv[optind + 1]);
	o.app = argv[optind];
	/* A .py file must exist; workers get its absolute path. */
	if (strlen(o.app) > 3 && strcmp(o.app + strlen(o.app) - 3, ".py") == 0) {
		if (realpath(o.app, app_path) == NULL) {
			fprintf(stderr, "gild: app file %s: %s\n", o.app,
			    strerror(errno));
			return 2;
		}
		o.app = app_path;
	}
	if (o.nlisten == 0)
		listen[o.nlisten++] = "tcp://127.0.0.1:7700";
	if (o.token != NULL && *o.token == '\0')
		return die_usage("--token: empty%s", "");
	if (o.token == NULL && getenv("GILD_TOKEN") != NULL &&
	    *getenv("GILD_TOKEN") != '\0')
		o.token = getenv("GILD_TOKEN");
	for (size_t i = 0; i < o.nlisten && o.token == NULL && !insecure; i++)
		if (!url_is_local(listen[i])) {
			fprintf(stderr,
			    "gild: refusing to listen on %s without a token: "
			    "anyone who can reach it could run the app's "
			    "functions. Give --token SECRET (or set "
			    "GILD_TOKEN), listen on 127.0.0.1 or ipc://, or "
			    "pass --insecure to do it anyway\n",
			    listen[i]);
			return 2;
		}
	/* TLS: a tls+tcp:// listener needs a certificate, and TLS options
	 * without one are a mistake. */
	for (size_t i = 0; i < o.nlisten; i++)
		any_tls = any_tls || tlsconf_url_is_tls(listen[i]);
	if (any_tls && tls.cert == NULL)
		return die_usage("a tls+tcp:// --listen URL needs --tls-cert "
				 "FILE (and --tls-key FILE unless the key is "
				 "in it)%s", "");
	if (!any_tls && (tls.cert || tls.key || tls.ca))
		return die_usage("--tls-cert, --tls-key and --tls-ca are for "
				 "tls+tcp:// listeners, and no --listen URL is "
				 "one%s", "");
	if (o.threads != 0 && !o.free_threaded)
		return die_usage("--threads needs --runtime free-threaded (the "
				 "process runtime runs one call per worker: "
				 "use --workers)%s", "");
	if (o.free_threaded) {
		if (o.workers == 0)
			o.workers = 1;
		if (o.threads == 0)
			o.threads = cpus_usable();
	} else {
		o.threads = 1;
		if (o.workers == 0)
			o.workers = cpus_usable();
	}
	if (worker_bin[0] == '\0' && o.free_threaded &&
	    find_worker("gild-worker-ft", worker_bin, sizeof(worker_bin)) != 0) {
		fprintf(stderr,
		    "gild: --runtime free-threaded needs gild-worker-ft, the "
		    "worker built against a free-threaded Python, and it is not "
		    "next to gild or in ../libexec/gild/. `make` builds it (and "
		    "that Python, or uses GILD_PYTHON_FT=/path/to/"
		    "python3.13t-config); or point --worker-bin at one\n");
		return 2;
	}
	if (worker_bin[0] == '\0' &&
	    find_worker("gild-worker", worker_bin, sizeof(worker_bin)) != 0) {
		fprintf(stderr, "gild: cannot find gild-worker next to gild or "
				"in ../libexec/gild/; use --worker-bin\n");
		return 2;
	}
	if (access(worker_bin, X_OK) != 0) {
		fprintf(stderr, "gild: --worker-bin %s: %s\n", worker_bin,
		    strerror(errno));
		return 2;
	}
	o.worker_bin = worker_bin;
	/* Unreadable or unusable TLS files are refused at start. */
	if (any_tls && tlsconf_new(&o.tls, &tls, tls_err, sizeof(tls_err)) != 0) {
		fprintf(stderr, "gild: %s\n", tls_err);
		return 2;
	}
	rc = server_run(&o);
	if (o.tls != NULL)
		nng_tls_config_free(o.tls);
	return rc;
}
