/* gild: the command line of the server daemon. */
#include "config.h"
#include "cpus.h"
#include "listenurl.h"
#include "log.h"
#include "privs.h"
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the options set; main turns it into server_opts. */
static struct settings {
	const char *config, *app, *http, *token, *worker_bin, *user;
	const char *tls_cert, *tls_key, *tls_ca, *venv;
	conf_list listen, ws_origins, worker_env, python_path;
	bool insecure, allow_exec, allow_pickle, app_log_handler, shm;
	long workers, threads, max_queue, pipeline, max_jobs, max_rss,
	    default_timeout_ms, kill_grace_ms, worker_memory, drain_ms, slow_ms;
	long stream_idle_timeout_ms, max_conn_idle_ms, max_conn_age_ms, max_conn_streams,
	    max_conn_actors, max_conn_calls;
	size_t max_stream_bytes;
	long max_connections, max_unread_replies, max_auth_failures, max_actors;
	size_t max_message, max_unread_bytes, max_actor_bytes;
	int runtime, spawn, log_level, log_format; /* indexes into choices */
} S = {
    .max_message = 64u << 20,
    .max_queue = 10000,
    .max_connections = 1024,
    .max_unread_replies = 1024,
    .max_unread_bytes = 64u << 20,
    .max_auth_failures = 8,
    .max_actors = 10000,
    .max_actor_bytes = 256u << 20,
    .stream_idle_timeout_ms = 120000,
    .max_conn_idle_ms = 300000,
    .max_stream_bytes = 64u << 20,
    .max_conn_streams = 1000,
    .max_conn_actors = 1000,
    .max_conn_calls = 10000,
    .pipeline = 8,
    .kill_grace_ms = 2000,
    .drain_ms = 30000,
    .log_level = LOG_INFO,
    .log_format = LOG_LOGFMT,
    .app_log_handler = true,
};

static const char *const runtimes[] = {"process", "free-threaded", NULL};
static const char *const spawns[] = {"fork", "exec", NULL};
/* In enum log_level's and enum log_format's order. */
static const char *const log_levels[] = {"debug", "info", "warn", "error",
    NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};

/* 0 (no limit), or at least 64 MiB: less cannot hold a Python. */
static int
parse_worker_memory(const conf_opt *o, const char *text)
{
	return conf_mib(o, text) != 0 ||
			   (*(long *) o->dst != 0 && *(long *) o->dst < 64)
		   ? -1
		   : 0;
}

/* A --listen URL: one nng parses, with no user@ (nng would drop it). */
static int
parse_listen(const conf_opt *o, const char *text)
{
	char err[256];

	return listenurl_check(text, err, sizeof(err)) != 0 ? -1
							    : conf_url(o, text);
}

/* A --ws-allow-origin: an origin as browsers send it. */
static int
parse_origin(const conf_opt *o, const char *text)
{
	conf_list *l = o->dst;

	if (!listenurl_is_origin(text) || l->n == CONF_LIST_MAX)
		return -1;
	l->v[l->n++] = text;
	return 0;
}

/* A --worker-env NAME=TEMPLATE: NAME a portable environment variable
 * name, TEMPLATE any text in which {slot} is the only {...}. */
static int
parse_worker_env(const conf_opt *o, const char *text)
{
	conf_list *l = o->dst;
	const char *eq = strchr(text, '=');

	if (eq == NULL || eq == text || l->n == CONF_LIST_MAX ||
	    (*text >= '0' && *text <= '9'))
		return -1;
	for (const char *p = text; p < eq; p++)
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') ||
			(*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return -1;
	if (eq - text == 16 && strncmp(text, "GILD_WORKER_SLOT", 16) == 0)
		return -1; /* gild sets it */
	for (const char *p = strchr(eq, '{'); p != NULL; p = strchr(p + 1, '{'))
		if (strncmp(p, "{slot}", 6) != 0)
			return -1;
	l->v[l->n++] = text;
	return 0;
}

/* A --python-path DIR: a directory that exists now. */
static int
parse_dir(const conf_opt *o, const char *text)
{
	conf_list *l = o->dst;
	struct stat st;

	if (l->n == CONF_LIST_MAX || stat(text, &st) == -1 ||
	    !S_ISDIR(st.st_mode))
		return -1;
	l->v[l->n++] = text;
	return 0;
}

/* A --venv DIR: a directory with a pyvenv.cfg (python3 -m venv made it);
 * whether its Python is the workers' is for the worker to say, which
 * knows its own. */
static int
parse_venv(const conf_opt *o, const char *text)
{
	char cfg[PATH_MAX];

	if (snprintf(cfg, sizeof(cfg), "%s/pyvenv.cfg", text) >=
		(int) sizeof(cfg) ||
	    access(cfg, R_OK) != 0)
		return -1;
	*(const char **) o->dst = text;
	return 0;
}

/* Every setting of gild serve, in --help's order. One entry is its flag
 * (--name), its env var (GILD_NAME), its config file key (name), its
 * check and its help. */
static const conf_opt options[] = {
    {.name = "config", .arg = "FILE", .parse = conf_string,
	.dst = &S.config, .allowed = "a file name", .flags = CONF_NOFILE,
	.help = "read settings from FILE, `name = value` lines (see\n"
		"below and docs/operations.md); also GILD_CONFIG"},
    {.name = "app", .arg = "APP", .parse = conf_string, .dst = &S.app,
	.allowed = "a .py file or an importable module name",
	.flags = CONF_NOFLAG, .help = "the app (the positional argument)"},
    {.name = "listen", .arg = "URL", .parse = parse_listen, .dst = &S.listen,
	.allowed = "a URL such as tcp://127.0.0.1:7700 or "
		   "ipc:///run/gild.sock, with no user@ part",
	.def = "tcp://127.0.0.1:7700", .flags = CONF_LIST,
	.help = "where clients connect (repeatable; tcp://, ipc://,\n"
		"ws://, tls+tcp://); default tcp://127.0.0.1:7700;\n"
		"tcp port 0 picks a free port (printed at start)"},
    {.name = "tls-cert", .arg = "FILE", .parse = conf_string,
	.dst = &S.tls_cert, .allowed = "a PEM certificate file",
	.help = "tls+tcp:// listeners present this PEM certificate\n"
		"(with its chain; needed for tls+tcp://)"},
    {.name = "tls-key", .arg = "FILE", .parse = conf_string,
	.dst = &S.tls_key, .allowed = "a PEM private key file",
	.help = "its PEM private key, unencrypted (default: the\n"
		"key inside the --tls-cert file)"},
    {.name = "tls-ca", .arg = "FILE", .parse = conf_string,
	.dst = &S.tls_ca, .allowed = "a PEM file of CA certificates",
	.help = "require client certificates signed by a CA in\n"
		"this PEM file (mutual TLS; default: none asked)"},
    {.name = "token", .arg = "SECRET", .parse = conf_string, .dst = &S.token,
	.allowed = "a non-empty secret", .flags = CONF_SECRET,
	.help = "require SECRET on every request (better given as\n"
		"GILD_TOKEN: a command line shows in ps; none: no\n"
		"check); others get UNAUTHENTICATED"},
    {.name = "insecure", .parse = conf_switch, .dst = &S.insecure,
	.allowed = "true or false", .def = "false",
	.help = "run without a token where one is otherwise\n"
		"required: a non-loopback address, ws:// or wss://,\n"
		"abstract://, --allow-exec, --allow-pickle"},
    {.name = "ws-allow-origin", .arg = "ORIGIN", .parse = parse_origin,
	.dst = &S.ws_origins, .flags = CONF_LIST,
	.allowed = "an origin such as https://app.example.com (scheme://"
		   "host[:port], no path)",
	.help = "web pages from ORIGIN may connect over ws:// and\n"
		"wss:// (repeatable); a WebSocket upgrade that\n"
		"carries another Origin header is closed (default:\n"
		"none; clients that are not browsers send none)"},
    {.name = "allow-exec", .parse = conf_switch, .dst = &S.allow_exec,
	.allowed = "true or false", .def = "false",
	.help = "serve Exec requests (run submitted Python source):\n"
		"anyone who can send requests runs any code as the\n"
		"workers; refused (PERMISSION_DENIED) otherwise"},
    {.name = "allow-pickle", .parse = conf_switch, .dst = &S.allow_pickle,
	.allowed = "true or false", .def = "false",
	.help = "accept pickled values (unpickling runs any code)\n"
		"and pickle results that have no other form;\n"
		"refused (PERMISSION_DENIED) otherwise"},
    {.name = "shm", .parse = conf_switch, .dst = &S.shm,
	.allowed = "true or false", .def = "false",
	.help = "offer shared memory to clients of the first\n"
		"ipc:// listener: requests and replies of 256 KiB\n"
		"and more travel as sealed memfds over a Unix\n"
		"socket beside it (PATH.shm); never to tcp://"},
    {.name = "http", .arg = "HOST:PORT", .parse = conf_string, .dst = &S.http,
	.allowed = "HOST:PORT, such as 127.0.0.1:8080",
	.help = "also serve /healthz, /readyz, /status and\n"
		"/metrics over HTTP there (off by default; port\n"
		"0: a free port, printed at start)"},
    {.name = "user", .arg = "NAME", .parse = conf_string, .dst = &S.user,
	.allowed = "a user name or uid",
	.help = "after binding the listeners and --http as the\n"
		"starting user (root), run the server and every\n"
		"worker as user NAME (default: stay who started)"},
    {.name = "workers", .arg = "N", .parse = conf_int, .dst = &S.workers,
	.min = 1, .max = 4096, .allowed = "a whole number from 1 to 4096",
	.help = "worker processes (default: usable CPUs, honouring\n"
		"the cgroup CPU quota and the affinity mask; with\n"
		"--runtime free-threaded, 1)"},
    {.name = "runtime", .arg = "R", .parse = conf_choice, .dst = &S.runtime,
	.choices = runtimes, .allowed = "process or free-threaded",
	.def = "process",
	.help = "process (default): one Python per worker process,\n"
		"with its GIL; free-threaded: workers embed a\n"
		"free-threaded Python (gild-worker-ft) and run\n"
		"calls on --threads threads each, in parallel"},
    {.name = "threads", .arg = "T", .parse = conf_int, .dst = &S.threads,
	.min = 1, .max = 1024, .allowed = "a whole number from 1 to 1024",
	.help = "free-threaded runtime: Python threads per worker\n"
		"(default: usable CPUs)"},
    {.name = "max-message", .arg = "SIZE", .parse = conf_size,
	.dst = &S.max_message,
	.allowed = "a size such as 1048576 (bytes), 512K or 64M (at most "
		   "2046M)",
	.def = "64M",
	.help = "largest request or result (default 64M; K, M, G;\n"
		"bare: bytes)"},
    {.name = "max-queue", .arg = "N", .parse = conf_int, .dst = &S.max_queue,
	.min = 1, .max = 100000000, .allowed = "a whole number from 1",
	.def = "10000",
	.help = "calls waiting for a worker before new ones get\n"
		"RESOURCE_EXHAUSTED (default 10000)"},
    {.name = "max-connections", .arg = "N", .parse = conf_int,
	.dst = &S.max_connections, .min = 1, .max = 1000000,
	.allowed = "a whole number from 1 to 1000000", .def = "1024",
	.help = "client connections open at once; more are closed\n"
		"as they come (default 1024)"},
    {.name = "max-unread-replies", .arg = "N", .parse = conf_int,
	.dst = &S.max_unread_replies, .min = 1, .max = 100000000,
	.allowed = "a whole number from 1", .def = "1024",
	.help = "replies one connection's client may leave unread;\n"
		"past that (or --max-unread-bytes) the connection is\n"
		"closed (default 1024)"},
    {.name = "max-unread-bytes", .arg = "SIZE", .parse = conf_size,
	.dst = &S.max_unread_bytes,
	.allowed = "a size such as 1048576 (bytes), 512K or 64M (at most "
		   "2046M)",
	.def = "64M",
	.help = "bytes of replies one connection's client may leave\n"
		"unread (one reply always goes; default 64M)"},
    {.name = "max-auth-failures", .arg = "N", .parse = conf_int,
	.dst = &S.max_auth_failures, .min = 1, .max = 1000000,
	.allowed = "a whole number from 1 to 1000000", .def = "8",
	.help = "requests with a missing or wrong token after which\n"
		"their connection is closed (default 8)"},
    {.name = "max-actors", .arg = "N", .parse = conf_int,
	.dst = &S.max_actors, .min = 1, .max = 10000000,
	.allowed = "a whole number from 1", .def = "10000",
	.help = "actors alive at once; more ActorNew get\n"
		"RESOURCE_EXHAUSTED (default 10000)"},
    {.name = "max-actor-bytes", .arg = "SIZE", .parse = conf_size,
	.dst = &S.max_actor_bytes,
	.allowed = "a size such as 1048576 (bytes), 512K or 64M (at most "
		   "2046M)",
	.def = "256M",
	.help = "bytes of constructor arguments the actors keep\n"
		"(to create them again), together (default 256M)"},
    {.name = "max-connection-idle", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.max_conn_idle_ms, .min = 0, .max = 86400000L,
	.allowed = "a duration from 0 (never) to 24h, such as 300, 90s or "
		   "5m (bare: seconds)",
	.def = "300",
	.help = "close a client connection that has had no request\n"
		"in hand for DURATION and was sent at most 4 KiB\n"
		"(default 300 s; 0: never)"},
    {.name = "max-connection-age", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.max_conn_age_ms, .min = 0, .max = 86400000L * 7,
	.allowed = "a duration from 0 (never) to 168h, such as 30m, 2s or "
		   "600 (bare: seconds)",
	.def = "0",
	.help = "after DURATION (+/- 10%), refuse a connection's new\n"
		"calls as not started, so its client reconnects (and a\n"
		"load balancer may pick another server); default 0: never"},
    {.name = "max-stream-bytes", .arg = "SIZE", .parse = conf_size,
	.dst = &S.max_stream_bytes,
	.allowed = "a size such as 1048576 (bytes), 512K or 64M (at most "
		   "2046M)",
	.def = "64M",
	.help = "chunks one stream may hold that its client has not\n"
		"taken; past that its generator is cancelled\n"
		"(default 64M)"},
    {.name = "max-conn-streams", .arg = "N", .parse = conf_int,
	.dst = &S.max_conn_streams, .min = 1, .max = 100000000,
	.allowed = "a whole number from 1", .def = "1000",
	.help = "streams one connection may have open (default 1000)"},
    {.name = "max-conn-actors", .arg = "N", .parse = conf_int,
	.dst = &S.max_conn_actors, .min = 1, .max = 10000000,
	.allowed = "a whole number from 1", .def = "1000",
	.help = "actors one connection may create and keep (default\n"
		"1000)"},
    {.name = "max-conn-calls", .arg = "N", .parse = conf_int,
	.dst = &S.max_conn_calls, .min = 1, .max = 100000000,
	.allowed = "a whole number from 1", .def = "10000",
	.help = "requests of one connection the server may hold\n"
		"unanswered; its next call gets RESOURCE_EXHAUSTED\n"
		"(default 10000)"},
    {.name = "stream-idle-timeout", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.stream_idle_timeout_ms, .min = 0, .max = 86400000L,
	.allowed = "a duration from 0 (never) to 24h, such as 120, 90s or "
		   "2m (bare: seconds)",
	.def = "120",
	.help = "a stream whose client asks for no chunks for\n"
		"DURATION is cancelled and its worker freed\n"
		"(default 120 s; 0: never)"},
    {.name = "pipeline", .arg = "N", .parse = conf_int, .dst = &S.pipeline,
	.min = 0, .max = 64, .allowed = "a whole number from 0 to 64",
	.def = "8",
	.help = "when every worker is busy, send each up to N more\n"
		"short plain calls to start as soon as it is free; a\n"
		"worker that frees up first takes back those still\n"
		"waiting (default 8; 0: one call per worker thread at\n"
		"a time)"},
    {.name = "max-jobs-per-worker", .arg = "N", .parse = conf_int,
	.dst = &S.max_jobs, .min = 0, .max = LONG_MAX,
	.allowed = "a whole number (0: never)", .def = "0",
	.help = "replace a worker after N calls (default 0: never)"},
    {.name = "max-worker-rss", .arg = "SIZE", .parse = conf_mib,
	.dst = &S.max_rss, .min = 0, .max = 1L << 30,
	.allowed = "a size in whole MiB such as 512 (bare: MiB), 512M or "
		   "2G (0: never)",
	.def = "0",
	.help = "replace a worker whose resident memory is over\n"
		"SIZE after a call (M, G; bare: MiB; default 0:\n"
		"never)"},
    {.name = "default-timeout", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.default_timeout_ms, .min = 0, .max = 86400000L,
	.allowed = "a duration from 0 (none) to 24h, such as 1.5, 500ms or "
		   "5m (bare: seconds)",
	.def = "0",
	.help = "deadline of calls that set none and whose function\n"
		"declares none (ms, s, m, h; bare: seconds; default\n"
		"0: none)"},
    {.name = "kill-grace", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.kill_grace_ms, .min = 0, .max = 3600000L,
	.allowed = "a duration from 0 to 1h, such as 2, 500ms or 1m (bare: "
		   "seconds)",
	.def = "2",
	.help = "how long an interrupted call (deadline, cancel)\n"
		"may take to stop before its worker is killed\n"
		"(bare: seconds; default 2 s)"},
    {.name = "worker-memory", .arg = "SIZE", .parse = parse_worker_memory,
	.show = conf_show_mib, .dst = &S.worker_memory, .min = 0,
	.max = 1L << 30,
	.allowed = "a size in whole MiB, at least 64M, such as 512 (bare: "
		   "MiB), 512M or 2G (0: no limit)",
	.def = "0",
	.help = "hard address-space limit of each worker (M, G;\n"
		"bare: MiB; for free-threaded ones: on top of what\n"
		"the worker reserved by the time the app was\n"
		"imported); a call that needs more ends with\n"
		"WORKER_LOST and the worker is replaced (default 0:\n"
		"none)"},
    {.name = "spawn", .arg = "fork|exec", .parse = conf_choice,
	.dst = &S.spawn, .choices = spawns, .allowed = "fork or exec",
	.def = "fork",
	.help = "how workers start: fork (default) from a template\n"
		"process that imported the app once (a new worker\n"
		"is ready in milliseconds), or exec, each worker\n"
		"importing the app itself (for apps that are not\n"
		"safe to fork after import)"},
    {.name = "worker-env", .arg = "NAME=TEMPLATE", .parse = parse_worker_env,
	.dst = &S.worker_env, .flags = CONF_LIST,
	.allowed = "NAME=VALUE, NAME letters, digits and _, where {slot} "
		   "(the worker's slot: 0, 1, ...) is the only {...}, such as "
		   "CUDA_VISIBLE_DEVICES={slot}",
	.help = "set NAME in each worker's environment, {slot}\n"
		"replaced by its slot number (repeatable), before\n"
		"its start hooks run: CUDA_VISIBLE_DEVICES={slot}"},
    {.name = "venv", .arg = "DIR", .parse = parse_venv, .dst = &S.venv,
	.allowed = "a virtual environment's directory (with a pyvenv.cfg), "
		   "made by the workers' Python: python3 -m venv "
		   "--system-site-packages DIR",
	.help = "add the site-packages of the virtual environment\n"
		"DIR to the workers' sys.path; it must have been\n"
		"made by the Python the workers embed (checked at\n"
		"start)"},
    {.name = "python-path", .arg = "DIR", .parse = parse_dir,
	.dst = &S.python_path, .flags = CONF_LIST,
	.allowed = "a directory that exists",
	.help = "put DIR at the front of the workers' sys.path\n"
		"(repeatable, in order; PYTHONPATH works too)"},
    {.name = "drain-timeout", .arg = "DURATION", .parse = conf_seconds,
	.dst = &S.drain_ms, .min = 0, .max = 86400000L,
	.allowed = "a duration from 0 to 24h, such as 30, 1500ms or 2m "
		   "(bare: seconds)",
	.def = "30",
	.help = "on SIGTERM/SIGINT, how long the accepted calls\n"
		"(running and queued) may take to finish (bare:\n"
		"seconds; default 30 s)\n"
		"SIGHUP reloads the app: workers are replaced one\n"
		"at a time, between calls"},
    {.name = "worker-bin", .arg = "PATH", .parse = conf_string,
	.dst = &S.worker_bin, .allowed = "the path of gild-worker",
	.help = "the gild-worker program (default: next to gild,\n"
		"or PREFIX/libexec/gild/gild-worker)"},
    {.name = "log-level", .arg = "LEVEL", .parse = conf_choice,
	.dst = &S.log_level, .choices = log_levels,
	.allowed = "debug, info, warn or error", .def = "info",
	.help = "debug, info, warn or error (default info)"},
    {.name = "log-format", .arg = "F", .parse = conf_choice,
	.dst = &S.log_format, .choices = log_formats,
	.allowed = "logfmt or json", .def = "logfmt",
	.help = "logfmt (default) or json: one event per line on\n"
		"stderr either way; the app's output too, one\n"
		"event per line"},
    {.name = "app-log-handler", .parse = conf_switch,
	.dst = &S.app_log_handler, .allowed = "true or false",
	.def = "true",
	.help = "give the app's root logger a handler that makes\n"
		"each `logging` record one gild event, at INFO,\n"
		"when the app configured none (false: the app's\n"
		"logging is its own; what it prints is still logged\n"
		"line by line)"},
    {.name = "slow-ms", .arg = "DURATION", .parse = conf_millis,
	.dst = &S.slow_ms, .min = 0, .max = 86400000L,
	.allowed = "a duration up to 24h, such as 200 (bare: milliseconds), "
		   "0.5s or 1m (0: off)",
	.def = "0",
	.help = "log a warning for each call that takes DURATION\n"
		"or more from arrival to answer (bare:\n"
		"milliseconds; default 0: off)"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char usage_head[] =
    "usage: gild serve [APP] [options]\n"
    "       gild --version\n"
    "\n"
    "Serves the public functions of APP (a .py file or an importable\n"
    "module name) to clients over nng.\n"
    "\n"
    "options:\n";

static const char usage_tail[] =
    "  --print-config      print the settings gild would run with, in the\n"
    "                      config file's format with where each came from,\n"
    "                      and exit\n"
    "  -h, --help          this help\n"
    "\n"
    "Every option is also an environment variable, GILD_ and its name in\n"
    "capitals with _ for - (GILD_MAX_QUEUE=100, GILD_APP=app.py; a list\n"
    "comma-separated: GILD_LISTEN=tcp://127.0.0.1:7700,ipc:///run/g.sock),\n"
    "and a `name = value` line of the --config file (# comments; repeat\n"
    "`listen = URL` lines for several). A flag beats the environment, which\n"
    "beats the file. Switches take --insecure=false, and true or false in\n"
    "the environment and the file.\n"
    "\n"
    "A DURATION is a number with ms, s, m or h (1500ms, 0.5s, 2m), a SIZE\n"
    "one with K, M or G (512K, 64M, 1.5G; binary); a bare number is in the\n"
    "option's own unit, as its help says. --print-config shows durations\n"
    "in seconds and sizes in the largest unit that holds them whole.\n";

/* Checks gild serve's token rules for o (no token, no --insecure):
 * returns 0, or prints why it refuses to start and returns -1. Whoever can
 * send requests runs the app's functions, and with --allow-exec or
 * --allow-pickle any code: without a token that must be this machine's
 * users only, and not web pages its browsers open. */
static int
check_token_needed(const server_opts *o)
{
	enum listenurl_reach reach;
	char err[512];

	if (o->allow_exec || o->allow_pickle) {
		fprintf(stderr,
		    "gild: refusing %s without a token: anyone who can send "
		    "requests (another user of this machine, a web page "
		    "through a WebSocket listener) would run any code as the "
		    "workers. Give --token SECRET (or set GILD_TOKEN), or "
		    "pass --insecure to do it anyway\n",
		    o->allow_exec ? "--allow-exec" : "--allow-pickle");
		return -1;
	}
	for (size_t i = 0; i < o->nlisten; i++) {
		const char *why;

		if (listenurl_reach(o->listen[i], &reach, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "gild: --listen: %s\n", err);
			return -1;
		}
		if (reach == LISTENURL_LOCAL)
			continue;
		why = reach == LISTENURL_BROWSER
			  ? "any web page open in a browser on this machine "
			    "could call the app's functions"
		      : reach == LISTENURL_ABSTRACT
			  ? "any process in this network namespace could call "
			    "the app's functions (no file permissions guard "
			    "an abstract socket)"
			  : "anyone who can reach it could run the app's "
			    "functions";
		fprintf(stderr,
		    "gild: refusing to listen on %s without a token: %s. "
		    "Give --token SECRET (or set GILD_TOKEN), listen on "
		    "tcp://127.0.0.1 or ipc://, or pass --insecure to do it "
		    "anyway\n",
		    o->listen[i], why);
		return -1;
	}
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

/* Takes the token out of this process's environment and off its command
 * line once configure has copied it: workers inherit the environment, and
 * app code can read /proc/<gild pid>/environ and cmdline, which show the
 * memory the strings were first written in, whatever unsetenv does to
 * environ. The --token values are the flags' texts, pointers into argv. */
static void
scrub_token(char **token_args, size_t n)
{
	char *v = getenv("GILD_TOKEN");

	if (v != NULL) {
		char *entry = v - strlen("GILD_TOKEN=");

		/* unsetenv only drops the pointer from environ. */
		unsetenv("GILD_TOKEN");
		explicit_bzero(entry, strlen(entry));
	}
	for (size_t i = 0; i < n; i++)
		explicit_bzero(token_args[i], strlen(token_args[i]));
}

/* Prints "gild: why" and the pointer to --help; returns the exit status. */
static int
die_usage(const char *why)
{
	fprintf(stderr, "gild: %s\n(see gild serve --help)\n", why);
	return 2;
}

static void
usage(FILE *f, const conf *c)
{
	fputs(usage_head, f);
	conf_write_help(c, f);
	fputs(usage_tail, f);
}

/* " (threads is set by GILD_THREADS)" when option name was not a flag,
 * else "": for errors about a combination of options. */
static const char *
set_by(const conf *c, const char *name, char *buf, size_t len)
{
	const char *where;
	int i = conf_find(c, name);

	if (conf_source_of(c, i, &where) == CONF_FLAG)
		return "";
	snprintf(buf, len, " (%s is set by %s)", name, where);
	return buf;
}

/* Reads the sources into S, lowest first (file, env, flags), checks them
 * and fills *o. Sets *print_config for --print-config, which needs less:
 * no APP, and a worker program not found is shown as unset. Returns 0;
 * -1 when it answered --help or --version; or an exit status, having
 * printed why. */
static int
configure(conf *c, int argc, char **argv, server_opts *o, privs_user *user,
    char *worker_bin, size_t worker_bin_len, char *app_path,
    bool *print_config)
{
	struct option longopts[NOPTIONS + 4];
	struct {
		int i;
		const char *text;
	} *flags = NULL;
	char **token_args = NULL;
	size_t nflags = 0, ntoken_args = 0, k = 0;
	char err[1024], where[96], num[32], why[160];
	bool any_tls = false;
	const char *config, *config_from;
	int ch, rc = 2;

	for (size_t i = 0; i < NOPTIONS; i++) {
		if (options[i].flags & CONF_NOFLAG)
			continue;
		longopts[k++] = (struct option){options[i].name,
		    options[i].arg ? required_argument : optional_argument,
		    NULL, 256 + (int) i};
	}
	longopts[k++] = (struct option){"print-config", no_argument, NULL, 'P'};
	longopts[k++] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[k++] = (struct option){"version", no_argument, NULL, 'V'};
	longopts[k] = (struct option){NULL, 0, NULL, 0};
	if ((flags = calloc((size_t) argc, sizeof(*flags))) == NULL ||
	    (token_args = calloc((size_t) argc, sizeof(*token_args))) == NULL) {
		free(flags);
		return die_usage("out of memory");
	}

	/* Flags are applied last (they win), but --config is needed first. */
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout, c);
			rc = -1;
			goto out;
		} else if (ch == 'V') {
			printf("gild %s\n", GILD_VERSION);
			rc = -1;
			goto out;
		} else if (ch == 'P') {
			*print_config = true;
		} else if (ch >= 256) {
			flags[nflags].i = ch - 256;
			/* A bare switch (--insecure) means true. */
			flags[nflags++].text = optarg ? optarg : "true";
		} else {
			goto out; /* getopt printed why */
		}
	}
	if (argc - optind > 1) {
		snprintf(err, sizeof(err),
		    "serve: one APP expected, extra argument '%s'",
		    argv[optind + 1]);
		rc = die_usage(err);
		goto out;
	}

	config = getenv("GILD_CONFIG");
	config_from = "GILD_CONFIG";
	for (size_t f = 0; f < nflags; f++)
		if (strcmp(options[flags[f].i].name, "config") == 0) {
			config = flags[f].text;
			config_from = "--config";
		}
	if (config != NULL && *config != '\0' &&
	    conf_read_file(c, config, err, sizeof(err)) != 0) {
		if (strncmp(err, "config file ", 12) == 0) {
			size_t n = strlen(err);
			snprintf(err + n, sizeof(err) - n, " (from %s)",
			    config_from);
		}
		rc = die_usage(err);
		goto out;
	}
	if (conf_read_env(c, err, sizeof(err)) != 0) {
		rc = die_usage(err);
		goto out;
	}
	for (size_t f = 0; f < nflags; f++) {
		snprintf(where, sizeof(where), "--%s", options[flags[f].i].name);
		if (conf_set(c, flags[f].i, flags[f].text, CONF_FLAG, where, err,
			sizeof(err)) != 0) {
			rc = die_usage(err);
			goto out;
		}
		if (strcmp(options[flags[f].i].name, "token") == 0)
			token_args[ntoken_args++] = (char *) flags[f].text;
	}
	/* conf_set copied it: from here on only S.token holds it. */
	scrub_token(token_args, ntoken_args);
	if (optind < argc &&
	    conf_set(c, conf_find(c, "app"), argv[optind], CONF_FLAG, "APP",
		err, sizeof(err)) != 0) {
		rc = die_usage(err);
		goto out;
	}

	/* Combinations, and the defaults worked out at start. */
	if (S.app == NULL && !*print_config) {
		rc = die_usage("serve: missing APP (the positional argument, "
			       "GILD_APP or app = in the --config file)");
		goto out;
	}
	/* A .py file must exist; workers get its absolute path. */
	o->app = S.app;
	if (S.app != NULL && strlen(S.app) > 3 &&
	    strcmp(S.app + strlen(S.app) - 3, ".py") == 0) {
		if (realpath(S.app, app_path) == NULL) {
			fprintf(stderr, "gild: app file %s: %s\n", S.app,
			    strerror(errno));
			goto out;
		}
		o->app = app_path;
	}
	for (size_t i = 0; i < S.listen.n; i++)
		o->listen[i] = S.listen.v[i];
	o->nlisten = S.listen.n;
	if (o->nlisten == 0)
		o->listen[o->nlisten++] = "tcp://127.0.0.1:7700";
	o->token = S.token;
	o->allow_exec = S.allow_exec;
	o->allow_pickle = S.allow_pickle;
	o->shm = S.shm;
	o->ws_origins = S.ws_origins.v;
	o->nws_origins = S.ws_origins.n;
	if (o->token == NULL && !S.insecure && check_token_needed(o) != 0)
		goto out;
	/* TLS: a tls+tcp:// listener needs a certificate, and TLS options
	 * without one are a mistake. */
	for (size_t i = 0; i < o->nlisten; i++)
		any_tls = any_tls || tlsconf_url_is_tls(o->listen[i]);
	if (any_tls && S.tls_cert == NULL) {
		rc = die_usage("a tls+tcp:// --listen URL needs --tls-cert FILE "
			       "(and --tls-key FILE unless the key is in it)");
		goto out;
	}
	if (!any_tls && (S.tls_cert || S.tls_key || S.tls_ca)) {
		rc = die_usage("--tls-cert, --tls-key and --tls-ca are for "
			       "tls+tcp:// listeners, and no --listen URL is one");
		goto out;
	}
	o->free_threaded = S.runtime == 1;
	if (S.threads != 0 && !o->free_threaded) {
		snprintf(err, sizeof(err),
		    "--threads needs --runtime free-threaded (the process "
		    "runtime runs one call per worker: use --workers)%s",
		    set_by(c, "threads", why, sizeof(why)));
		rc = die_usage(err);
		goto out;
	}
	o->workers = (int) S.workers;
	o->threads = (int) S.threads;
	if (o->free_threaded) {
		if (o->workers == 0)
			o->workers = 1;
		if (o->threads == 0)
			o->threads = cpus_usable();
		snprintf(num, sizeof(num), "%d", o->threads);
		conf_set_default(c, conf_find(c, "threads"), num, "usable CPUs");
		snprintf(num, sizeof(num), "%d", o->workers);
		conf_set_default(c, conf_find(c, "workers"), num,
		    "--runtime free-threaded: 1");
	} else {
		o->threads = 1;
		if (o->workers == 0)
			o->workers = cpus_usable();
		snprintf(num, sizeof(num), "%d", o->workers);
		conf_set_default(c, conf_find(c, "workers"), num, "usable CPUs");
		conf_set_default(c, conf_find(c, "threads"), NULL,
		    "--runtime process: one call per worker");
	}
	o->max_message = S.max_message;
	o->max_queue = (size_t) S.max_queue;
	o->max_connections = (size_t) S.max_connections;
	o->max_unread_replies = (size_t) S.max_unread_replies;
	o->max_unread_bytes = S.max_unread_bytes;
	o->max_auth_failures = (uint32_t) S.max_auth_failures;
	o->max_actors = (size_t) S.max_actors;
	o->max_actor_bytes = S.max_actor_bytes;
	o->stream_idle_timeout_ms = (uint32_t) S.stream_idle_timeout_ms;
	o->max_conn_idle_ms = (uint32_t) S.max_conn_idle_ms;
	o->max_conn_age_ms = (uint32_t) S.max_conn_age_ms;
	o->max_stream_bytes = S.max_stream_bytes;
	o->max_conn_streams = (size_t) S.max_conn_streams;
	o->max_conn_actors = (size_t) S.max_conn_actors;
	o->max_conn_calls = (size_t) S.max_conn_calls;
	o->pipeline = (int) S.pipeline;
	o->max_jobs = (uint64_t) S.max_jobs;
	o->max_rss_mib = (uint64_t) S.max_rss;
	o->default_timeout_ms = (uint32_t) S.default_timeout_ms;
	o->kill_grace_ms = (int) S.kill_grace_ms;
	o->worker_memory_mib = (uint64_t) S.worker_memory;
	o->spawn_exec = S.spawn == 1;
	o->worker_env = S.worker_env.v;
	o->nworker_env = S.worker_env.n;
	o->python_path = S.python_path.v;
	o->npython_path = S.python_path.n;
	o->venv = S.venv;
	o->drain_ms = (int) S.drain_ms;
	o->http = S.http;
	o->slow_ms = (uint32_t) S.slow_ms;
	o->app_log_handler = S.app_log_handler;
	log_set_level((enum log_level) S.log_level);
	log_set_format((enum log_format) S.log_format);

	if (S.user != NULL) {
		if (privs_lookup(S.user, user, err, sizeof(err)) != 0) {
			if (conf_source_of(c, conf_find(c, "user"), NULL) !=
			    CONF_FLAG) {
				size_t n = strlen(err);
				snprintf(err + n, sizeof(err) - n, "%s",
				    set_by(c, "user", why, sizeof(why)));
			}
			rc = die_usage(err);
			goto out;
		}
		o->user = user;
	}

	if (S.worker_bin != NULL) {
		snprintf(worker_bin, worker_bin_len, "%s", S.worker_bin);
		if (access(worker_bin, X_OK) != 0) {
			fprintf(stderr, "gild: --worker-bin %s: %s\n", worker_bin,
			    strerror(errno));
			goto out;
		}
	} else if (o->free_threaded &&
		   find_worker("gild-worker-ft", worker_bin, worker_bin_len) !=
		       0) {
		if (*print_config) {
			conf_set_default(c, conf_find(c, "worker-bin"), NULL,
			    "gild-worker-ft not found");
		} else {
			fprintf(stderr,
			    "gild: --runtime free-threaded needs gild-worker-ft, "
			    "the worker built against a free-threaded Python, "
			    "and it is not next to gild or in ../libexec/gild/. "
			    "`make` builds it (and that Python, or uses "
			    "GILD_PYTHON_FT=/path/to/python3.13t-config); or "
			    "point --worker-bin at one\n");
			goto out;
		}
	} else if (!o->free_threaded &&
		   find_worker("gild-worker", worker_bin, worker_bin_len) != 0) {
		if (*print_config) {
			conf_set_default(c, conf_find(c, "worker-bin"), NULL,
			    "gild-worker not found");
		} else {
			fprintf(stderr, "gild: cannot find gild-worker next to "
					"gild or in ../libexec/gild/; use "
					"--worker-bin\n");
			goto out;
		}
	} else {
		conf_set_default(c, conf_find(c, "worker-bin"), worker_bin,
		    "found next to gild");
	}
	o->worker_bin = worker_bin;
	rc = 0;
out:
	free(flags);
	free(token_args);
	return rc;
}

/* The TLS config of the tls+tcp:// listeners (configure checked that there
 * is one exactly when --tls-cert is given): unreadable or unusable files
 * are refused at start. Returns 0 or the exit status. */
static int
tls_setup(server_opts *o)
{
	tlsconf_opts t = {.server = true, .cert = S.tls_cert, .key = S.tls_key,
	    .ca = S.tls_ca, .cert_opt = "--tls-cert", .key_opt = "--tls-key",
	    .ca_opt = "--tls-ca", .check_pair = tlscheck_pair};
	char err[PATH_MAX + 512];

	if (S.tls_cert == NULL)
		return 0;
	if (tlsconf_new(&o->tls, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "gild: %s\n", err);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *listen[CONF_LIST_MAX + 1];
	char worker_bin[PATH_MAX], app_path[PATH_MAX];
	server_opts o = {.listen = listen};
	privs_user user;
	bool print_config = false;
	conf *c;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("gild %s\n", GILD_VERSION);
		return 0;
	}
	/* Not dumpable: no core file, and processes of the same user (app
	 * code in the workers) cannot ptrace gild or read its memory through
	 * /proc, where the token lives. */
	if (prctl(PR_SET_DUMPABLE, 0) == -1) {
		perror("gild: prctl(PR_SET_DUMPABLE)");
		return 1;
	}
	if (conf_init(&c, options, NOPTIONS) != 0) {
		fprintf(stderr, "gild: out of memory\n");
		return 1;
	}
	if (argc < 2 || strcmp(argv[1], "serve") != 0) {
		bool help = argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
					     strcmp(argv[1], "--help") == 0);
		usage(help ? stdout : stderr, c);
		conf_fini(c);
		return help ? 0 : 2;
	}
	worker_bin[0] = '\0';
	rc = configure(c, argc, argv, &o, &user, worker_bin, sizeof(worker_bin),
	    app_path, &print_config);
	if (rc == 0 && print_config)
		conf_write(c, stdout);
	else if (rc == 0 && (rc = tls_setup(&o)) == 0) {
		rc = server_run(&o);
		if (o.tls != NULL)
			nng_tls_config_free(o.tls);
	}
	conf_fini(c);
	return rc < 0 ? 0 : rc;
}
