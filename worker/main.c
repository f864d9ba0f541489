/* gild-worker: one worker process. Imports the app, says hello to the front
 * end over the socket it was given, then answers calls until EOF.
 * Usage: gild-worker --fd FD [--chan FD2] --app APP [--slot N]
 *                    [--memory-limit MIB] [--threads T] [LIFE...]
 *        gild-worker --template --fd FD --app APP [--memory-limit MIB]
 *                    [--threads T] [LIFE...]
 * LIFE: --env NAME=TEMPLATE, --python-path DIR (both repeatable) and
 * --venv DIR, as gild serve's --worker-env, --python-path and --venv
 * (worker/lifecycle.h). A worker runs the app's start hooks and warm-ups
 * before its hello, and its stop hooks after the front end closed its
 * socket (a planned exit).
 * --threads T runs calls on T Python threads at once (the free-threaded
 * runtime, gild-worker-ft); the default, 1, runs them one at a time.
 * With --template it imports the app once and forks workers on request
 * (worker/template.h) instead of serving calls itself.
 * Exit status: 0 after EOF, 1 on a socket or internal error, 2 on bad usage,
 * 3 when the app cannot be loaded or a start hook or warm-up raised (after
 * sending startup_error), 4 after a
 * call ran out of memory under --memory-limit (its reply sent).
 * Environment: PYTHONPATH (added to sys.path despite isolated mode),
 * GILD_NUMPY=0 (tensors arrive as memoryviews even if numpy is installed).
 * --slot N is exported to the app as GILD_WORKER_SLOT and tags log lines. */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "app.h"
#include "applog.h"
#include "convert.h"
#include "fields.h"
#include "frame.h"
#include "inbox.h"
#include "interp.h"
#include "interrupt.h"
#include "job.h"
#include "lifecycle.h"
#include "reply.h"
#include "template.h"
#include "wire.h"

#define EXIT_USAGE 2
#define EXIT_STARTUP 3
#define EXIT_MEMORY 4

static char log_tag[64] = "gild-worker";

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
logf_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", log_tag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: gild-worker --fd FD [--chan FD2] --app APP [--slot N] "
	    "[--memory-limit MIB] [--threads T] [--allow-pickle]\n"
	    "       [--app-logs [--no-log-handler]]\n"
	    "  FD   the worker's end of the front end's socketpair\n"
	    "  FD2  its descriptor channel: large frames come and go as\n"
	    "       memfds passed on it (without it, all through FD)\n"
	    "  APP  a .py file or an importable module name\n"
	    "  T    Python threads running calls at once (default 1)\n"
	    "  --allow-pickle  unpickle pickled arguments and pickle\n"
	    "       results that have no other form (gild serve\n"
	    "       --allow-pickle); refused with PERMISSION_DENIED otherwise\n"
	    "  --app-logs  stdout and stderr are read by gild: each line\n"
	    "       written from Python names its call, and (unless\n"
	    "       --no-log-handler) `logging` records go there too\n"
	    "  --env NAME=TEMPLATE  set NAME in the worker's environment,\n"
	    "       {slot} replaced by its slot (repeatable)\n"
	    "  --python-path DIR  put DIR at the front of sys.path\n"
	    "       (repeatable)\n"
	    "  --venv DIR  add the site-packages of the virtual\n"
	    "       environment DIR (made by this worker's Python)\n");
}

/* Job threads (--threads) share the socket: one frame at a time. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;
static int nthreads = 1;
/* The descriptor channel: large frames go through memfds passed on it
 * (proto/frame.h). -1: none, everything through the socket. */
static int chan = -1;

/* Sends one encoded FromWorker (from reply.c) with the GIL released, so
 * app threads run while the socket blocks. Frees buf. Returns
 * frame_send's result. */
static int
send_frame(int fd, uint8_t *buf, size_t len)
{
	int rc;

	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&write_mu);
	rc = frame_send(fd, chan, buf, len);
	pthread_mutex_unlock(&write_mu);
	Py_END_ALLOW_THREADS
	return rc;
}

/* Sends startup_error for *e and exits with status 3. Python is not
 * finalized: a half-imported app may have started threads it would wait
 * for. retry: the app was loaded, a start hook or warm-up raised. */
static void
startup_fail(int fd, const werr *e, bool retry)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	logf_("%s: %s", retry ? "not ready" : "cannot load the app",
	    e->message ? e->message : "?");
	if (e->traceback != NULL)
		fputs(e->traceback, stderr);
	if (Py_IsInitialized())
		interp_flush_stdio();
	if (reply_startup_error(e, retry, &buf, &len) == 0 &&
	    frame_write(fd, buf, len) < 0)
		logf_("cannot send startup_error: %s", strerror(errno));
	frame_free(buf);
	fflush(NULL);
	_exit(EXIT_STARTUP);
}

/* Adds to a job's end (*out, *len) how long the job took since `since`
 * (FromWorker.run_us: the front end's estimate of its function feeds on
 * it; since NULL: not said) and, after a job that leaves the worker
 * unusable (out of memory under --memory-limit), that the worker exits
 * (FromWorker.exiting), so the front end sends it nothing more. Left as it
 * is if out of memory. */
static void
mark_end(uint8_t **out, size_t *len, const struct timespec *since)
{
	uint8_t add[2 * (1 + WIRE_MAX_VARINT)], *p;
	struct timespec now;
	int64_t us;
	size_t n = 0;

	if (since != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		us = (int64_t) (now.tv_sec - since->tv_sec) * 1000000 +
		     (now.tv_nsec - since->tv_nsec) / 1000;
		if (us < 1)
			us = 1; /* 0 would say "not measured" */
		if (us > UINT32_MAX)
			us = UINT32_MAX;
		n = wire_put_tag(add, GILD_WF_FROM_WORKER_RUN_US, WIRE_VARINT);
		n += wire_put_varint(add + n, (uint64_t) us);
	}
	if (n == 0 && !job_must_exit())
		return;
	if (job_must_exit()) {
		n += wire_put_tag(add + n, GILD_WF_FROM_WORKER_EXITING,
		    WIRE_VARINT);
		n += wire_put_varint(add + n, 1);
	}
	if ((p = frame_grow(*out, *len, *len + n)) == NULL)
		return;
	memcpy(p + *len, add, n);
	*out = p;
	*len += n;
}

/* A streaming job's chunks go straight out. */
static int
sink_send(void *arg, uint8_t *buf, size_t len)
{
	return send_frame((int) (intptr_t) arg, buf, len) == 0 ? 0 : -1;
}

/* Answers calls until the front end closes the socket. Returns the exit
 * status. */
static int
serve(int fd, const app *a)
{
	const job_sink sink = {sink_send, (void *) (intptr_t) fd};

	for (;;) {
		uint8_t *in = NULL;
		uint8_t *out = NULL;
		size_t inlen = 0;
		size_t outlen = 0;
		struct timespec t0;
		int rc, end;

		if ((in = inbox_take(&inlen, &end, 1)) == NULL) {
			if (end == 1)
				return 0;
			logf_("reading from the front end: %s", strerror(-end));
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = job_run(a, in, inlen, &sink, &out, &outlen);
		frame_free(in);
		interp_flush_stdio();
		if (rc == -EPIPE) {
			inbox_stop();
			return 0; /* the front end is gone: nobody to answer */
		}
		if (rc < 0) {
			logf_("cannot build a reply: %s", strerror(-rc));
			inbox_stop();
			return 1;
		}
		mark_end(&out, &outlen, &t0);
		rc = send_frame(fd, out, outlen);
		if (rc == -EPIPE || rc == -ECONNRESET) {
			inbox_stop();
			return 0; /* the front end is gone: nobody to answer */
		}
		if (rc < 0) {
			logf_("writing to the front end: %s", strerror(-rc));
			inbox_stop();
			return 1;
		}
		if (job_must_exit()) {
			logf_("out of memory under --worker-memory: exiting");
			inbox_stop();
			return EXIT_MEMORY;
		}
	}
}

/* ---- async mode ---------------------------------------------------------
 * An app with async def functions is served by an asyncio loop in each job
 * thread (gild/_loop.py), which calls back into these. */

static struct {
	int fd;          /* the front end's socket */
	const app *a;
	job_sink sink;
} aio = {-1, NULL, {NULL, NULL}};
/* This thread's loop: the inbox has ended (1 clean, < 0 error), or 0. */
static _Thread_local int aio_eof;
/* The async call this thread's loop runs alone (job_start's alone), or 0:
 * while there is one, the loop takes no other call, as a thread running a
 * plain function would not. So a call sent ahead behind it starts only
 * after its result is written, and the front end, having read that result,
 * knows which calls had started when a worker dies. */
static _Thread_local uint64_t aio_alone;
/* When that call was taken: its end says how long it held the loop. */
static _Thread_local struct timespec aio_alone_since;

/* _gild_worker.take(): runs the calls that arrived (those of plain
 * functions to the end, answering them) and returns [(job_id, coroutine,
 * (request_id, function))] for those of async functions, taking none after one that runs alone
 * until it has finished; None once the front end has closed. */
static PyObject *
aio_take(PyObject *self, PyObject *unused)
{
	PyObject *started = PyList_New(0);

	if (started == NULL)
		return NULL;
	for (;;) {
		uint8_t *in, *out = NULL;
		size_t inlen = 0, outlen = 0;
		uint64_t job_id = 0;
		PyObject *coro = NULL, *tag = NULL;
		struct timespec t0;
		int rc, end, alone = 0;

		if (aio_alone != 0)
			return started; /* finish() lets it take again */
		if ((in = inbox_take(&inlen, &end, 0)) == NULL) {
			if (end != 0 && PyList_GET_SIZE(started) == 0) {
				aio_eof = end;
				Py_DECREF(started);
				Py_RETURN_NONE;
			}
			return started;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = job_start(aio.a, in, inlen, &aio.sink, &job_id, &coro,
		    &tag, &alone, &out, &outlen);
		frame_free(in);
		if (rc == 1) {
			if (alone) {
				aio_alone = job_id;
				aio_alone_since = t0;
			}
			PyObject *t = Py_BuildValue("(KNN)",
			    (unsigned long long) job_id, coro, tag);
			if (t == NULL || PyList_Append(started, t) == -1) {
				Py_XDECREF(t);
				Py_DECREF(started);
				return NULL;
			}
			Py_DECREF(t);
			continue;
		}
		interp_flush_stdio();
		if (rc >= 0)
			mark_end(&out, &outlen, &t0);
		if (rc < 0 || send_frame(aio.fd, out, outlen) != 0 ||
		    job_must_exit()) {
			aio_eof = rc < 0 ? rc : 1;
			Py_DECREF(started);
			Py_RETURN_NONE; /* cannot answer: stop */
		}
	}
}

/* _gild_worker.finish(job_id, result, exc): answers an async job. */
static PyObject *
aio_finish(PyObject *self, PyObject *args)
{
	unsigned long long job_id;
	PyObject *result, *exc;
	uint8_t *out = NULL;
	size_t outlen = 0;
	bool alone;
	int rc;

	if (!PyArg_ParseTuple(args, "KOO", &job_id, &result, &exc))
		return NULL;
	rc = job_finish(job_id, result, exc == Py_None ? NULL : exc, &out,
	    &outlen);
	if ((alone = aio_alone == job_id))
		aio_alone = 0; /* its result goes out first: take() may take */
	if (rc != 0)
		return PyErr_NoMemory();
	/* Only a call that ran alone held its thread: its time is a stamp. */
	mark_end(&out, &outlen, alone ? &aio_alone_since : NULL);
	interp_flush_stdio();
	if (send_frame(aio.fd, out, outlen) != 0)
		aio_eof = 1; /* the front end is gone */
	Py_RETURN_NONE;
}

/* _gild_worker.interrupted(): ids of async jobs to cancel now. */
static PyObject *
aio_interrupted(PyObject *self, PyObject *unused)
{
	uint64_t ids[256];
	size_t n = interrupt_async_take(ids, 256);
	PyObject *list = PyList_New((Py_ssize_t) n);

	for (size_t i = 0; list != NULL && i < n; i++)
		PyList_SET_ITEM(list, (Py_ssize_t) i,
		    PyLong_FromUnsignedLongLong(ids[i]));
	return list;
}

/* _gild_worker.wake_fd() and clear_wake(): the eventfd the loop watches. */
static PyObject *
aio_wake_fd(PyObject *self, PyObject *unused)
{
	return PyLong_FromLong(interrupt_async_fd());
}

static PyObject *
aio_clear_wake(PyObject *self, PyObject *unused)
{
	uint64_t n;

	if (read(interrupt_async_fd(), &n, sizeof(n)) < 0)
		(void) 0; /* EAGAIN: nothing to clear */
	Py_RETURN_NONE;
}

static PyMethodDef aio_methods[] = {
    {"take", aio_take, METH_NOARGS, NULL},
    {"finish", aio_finish, METH_VARARGS, NULL},
    {"interrupted", aio_interrupted, METH_NOARGS, NULL},
    {"wake_fd", aio_wake_fd, METH_NOARGS, NULL},
    {"clear_wake", aio_clear_wake, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* Serves with gild._loop.serve() on an asyncio loop of the calling job
 * thread. Returns the exit status. */
static int
serve_async(void)
{
	PyObject *loop = NULL, *r = NULL;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (efd == -1) {
		logf_("eventfd: %s", strerror(errno));
		inbox_stop();
		return 1;
	}
	interrupt_async_wake_fd(efd);
	if ((loop = PyImport_ImportModule("gild._loop")) == NULL ||
	    (r = PyObject_CallMethod(loop, "serve", NULL)) == NULL) {
		logf_("the asyncio loop failed:");
		PyErr_Print();
		aio_eof = -EIO;
	}
	Py_XDECREF(r);
	Py_XDECREF(loop);
	interrupt_async_wake_fd(-1);
	close(efd);
	if (aio_eof != 1)
		inbox_stop();
	return aio_eof == 1 ? 0 : 1;
}

/* What each job thread serves. */
static struct {
	int fd;
	const app *a;
} job_threads;

/* Job thread k's whole life: serves until the inbox ends. */
static int
serve_thread(int k)
{
	interrupt_thread_enter(k);
	return app_has_async(job_threads.a) ? serve_async()
					    : serve(job_threads.fd, job_threads.a);
}

/* Job threads 1..T-1 attach to Python themselves; thread 0 is main(). */
static void *
job_thread_main(void *arg)
{
	PyGILState_STATE g = PyGILState_Ensure();
	int status = serve_thread((int) (intptr_t) arg);

	PyGILState_Release(g);
	return (void *) (intptr_t) status;
}

/* Starts the reader and the job threads, serves as thread 0, and stops the
 * reader before Python goes: it takes the GIL to deliver interrupts.
 * Returns the exit status: the first thread's that is not 0. */
static int
serve_with_reader(int fd, const app *a)
{
	pthread_t *threads;
	PyObject *m;
	int status, started = 1;

	if (interrupt_threads(nthreads) == -1 ||
	    inbox_init(fd, chan, nthreads, !app_has_async(a), &write_mu) ==
		-1 ||
	    (threads = calloc((size_t) nthreads, sizeof(*threads))) == NULL) {
		logf_("out of memory starting %d threads", nthreads);
		return 1;
	}
	aio.fd = job_threads.fd = fd;
	aio.a = job_threads.a = a;
	aio.sink = (job_sink){sink_send, (void *) (intptr_t) fd};
	if (app_has_async(a) &&
	    ((m = PyImport_ImportModule("_gild_worker")) == NULL ||
		PyModule_AddFunctions(m, aio_methods) == -1)) {
		logf_("cannot set up the asyncio loop:");
		PyErr_Print();
		free(threads);
		return 1;
	}
	if (inbox_start() != 0) {
		logf_("cannot start the reader thread");
		free(threads);
		return 1;
	}
	for (; started < nthreads; started++) {
		if (pthread_create(&threads[started], NULL, job_thread_main,
			(void *) (intptr_t) started) != 0) {
			logf_("cannot start job thread %d of %d: running %d",
			    started + 1, nthreads, started);
			break;
		}
	}
	status = serve_thread(0);
	Py_BEGIN_ALLOW_THREADS
	for (int k = 1; k < started; k++) {
		void *ret;
		pthread_join(threads[k], &ret);
		if (status == 0)
			status = (int) (intptr_t) ret;
	}
	inbox_join();
	Py_END_ALLOW_THREADS
	free(threads);
	return status;
}

/* Tags log lines with the slot and tells the app (GILD_WORKER_SLOT). Before
 * Python starts the environment is enough; after (a forked worker),
 * os.environ must be told too. */
static void
set_slot(const char *slot, int python_running)
{
	PyObject *os, *env, *v;

	snprintf(log_tag, sizeof(log_tag), "gild-worker[%s]", slot);
	setenv("GILD_WORKER_SLOT", slot, 1);
	if (!python_running)
		return;
	os = PyImport_ImportModule("os");
	env = os != NULL ? PyObject_GetAttrString(os, "environ") : NULL;
	v = PyUnicode_FromString(slot);
	if (env == NULL || v == NULL ||
	    PyMapping_SetItemString(env, "GILD_WORKER_SLOT", v) == -1)
		PyErr_Clear();
	Py_XDECREF(v);
	Py_XDECREF(env);
	Py_XDECREF(os);
}

/* Runs the app's start hooks and warm-ups in a worker about to say hello:
 * if one raises, the worker is not ready and says why (startup_fail). */
static void
start_hooks(int fd, const char *slot)
{
	werr err = {0};

	if (life_set_worker(atoi(slot), nthreads, &err) == -1)
		startup_fail(fd, &err, false);
	if (life_start(&err) == -1)
		startup_fail(fd, &err, true);
}

/* How long a worker's stop hooks may take, together, before SIGALRM ends
 * it: a recycled worker's slot is replaced only once it has exited. */
#define STOP_HOOKS_S 10

/* Runs the app's stop hooks in a worker whose front end closed its socket
 * (a recycle, a reload, a stop), logging those that raise. (The template
 * that forked it waits for it before exiting: template_run.) */
static void
stop_hooks(void)
{
	werr errs[8] = {{0}};
	size_t n;

	alarm(STOP_HOOKS_S);
	n = life_stop(errs, 8);
	alarm(0); /* the rest of the exit is bounded as it was */
	for (size_t i = 0; i < n && i < 8; i++) {
		logf_("%s", errs[i].message ? errs[i].message : "?");
		if (errs[i].traceback != NULL)
			fputs(errs[i].traceback, stderr);
		werr_clear(&errs[i]);
	}
	if (n > 8)
		logf_("%zu more stop hooks raised", n - 8);
	interp_flush_stdio();
}

/* Sends Hello: this process's pid, the app's functions and options. */
static int
send_hello(int fd, const app *a, const char *version)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (reply_hello((int32_t) getpid(), a, version, interp_gil_enabled(),
		&buf, &len) < 0) {
		logf_("cannot build hello: out of memory");
		return -1;
	}
	return send_frame(fd, buf, len);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"fd", required_argument, NULL, 'f'},
	    {"app", required_argument, NULL, 'a'},
	    {"slot", required_argument, NULL, 's'},
	    {"memory-limit", required_argument, NULL, 'm'},
	    {"template", no_argument, NULL, 't'},
	    {"threads", required_argument, NULL, 'T'},
	    {"chan", required_argument, NULL, 'c'},
	    {"allow-pickle", no_argument, NULL, 'P'},
	    {"app-logs", no_argument, NULL, 'L'},
	    {"no-log-handler", no_argument, NULL, 'N'},
	    {"env", required_argument, NULL, 'E'},
	    {"python-path", required_argument, NULL, 'p'},
	    {"venv", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	pid_t parent = getppid();
	const char *spec = NULL;
	const char *slot = NULL;
	const char *venv = NULL;
	char *envs[argc + 1], *paths[argc + 1]; /* --env, --python-path */
	size_t nenv = 0, npath = 0;
	char *end = NULL;
	long fd = -1;
	unsigned long long memory_mib = 0;
	int template_mode = 0;
	bool app_logs = false, log_handler = true;
	int wfd;
	char slotbuf[16];
	app *a = NULL;
	werr err = {0};
	char version[32];
	int c, status;

	/* Die with the front end; it may already be gone. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		return 1;
	/* No core dumps: a worker's memory holds the app's data and the
	 * calls' arguments. Nor ptrace or /proc/PID/mem from the other
	 * workers, which run other clients' calls (and with --allow-exec any
	 * code): not dumpable. Forked workers inherit both from the
	 * template. */
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	if (prctl(PR_SET_DUMPABLE, 0) == -1)
		return 1;
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			errno = 0;
			fd = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || fd < 0 || fd > 65535)
				fd = -2;
			break;
		case 'a':
			spec = optarg;
			break;
		case 'c':
			errno = 0;
			chan = (int) strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || chan < 0 ||
			    chan > 65535 ||
			    fcntl(chan, F_SETFD, FD_CLOEXEC) == -1)
				fd = -2; /* bad usage */
			break;
		case 's':
			slot = optarg;
			break;
		case 't':
			template_mode = 1;
			break;
		case 'P':
			convert_set_pickle(1);
			break;
		case 'L':
			app_logs = true;
			break;
		case 'N':
			log_handler = false;
			break;
		case 'E':
			envs[nenv++] = optarg;
			break;
		case 'p':
			paths[npath++] = optarg;
			break;
		case 'v':
			venv = optarg;
			break;
		case 'm':
			errno = 0;
			memory_mib = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0')
				fd = -2; /* bad usage */
			break;
		case 'T':
			errno = 0;
			nthreads = (int) strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || nthreads < 1 ||
			    nthreads > 1024)
				fd = -2; /* bad usage */
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return EXIT_USAGE;
		}
	}
	if (fd < 0 || spec == NULL || *spec == '\0' || optind != argc) {
		usage();
		return EXIT_USAGE;
	}
	if (fcntl((int) fd, F_SETFD, FD_CLOEXEC) == -1) {
		logf_("--fd %ld: %s", fd, strerror(errno));
		return EXIT_USAGE;
	}
	if (slot != NULL) {
		set_slot(slot, 0);
		/* Before Python starts: it reads the environment as it starts. */
		if (life_env_apply(envs, nenv, slot, 0, &err) == -1)
			startup_fail((int) fd, &err, false);
	} else if (template_mode)
		snprintf(log_tag, sizeof(log_tag), "gild-worker[template]");
	if (getenv("GILD_NUMPY") != NULL &&
	    strcmp(getenv("GILD_NUMPY"), "0") == 0)
		convert_set_numpy(0);

	if (app_logs)
		applog_announce();
	/* gild.worker() answers from here on: while the app is imported
	 * too (its slot is None in the template). */
	if (interp_init(spec, &err) == -1 ||
	    life_set_worker(slot != NULL ? atoi(slot) : -1, nthreads, &err) ==
		-1 ||
	    life_paths(venv, paths, npath, &err) == -1)
		startup_fail((int) fd, &err, false);
	if (app_logs && applog_install(&err) == -1)
		startup_fail((int) fd, &err, false);
	if (convert_init() == -1 || job_init() == -1) {
		werr_from_python(&err, GILD__V1__CODE__INTERNAL);
		startup_fail((int) fd, &err, false);
	}
	if (app_load(&a, spec, &err) == -1)
		startup_fail((int) fd, &err, false);
	if (app_logs && log_handler && applog_install_handler(&err) == -1)
		startup_fail((int) fd, &err, false);

	if (memory_mib != 0) {
#if defined(__SANITIZE_ADDRESS__)
		/* ASan reserves terabytes of shadow address space up front. */
		logf_("--worker-memory is ignored: this worker is built with "
		      "AddressSanitizer");
#else
		char limit_err[256];
		if (job_limit_memory(memory_mib, limit_err,
			sizeof(limit_err)) == -1) {
			werr_set(&err, GILD__V1__CODE__FAILED_PRECONDITION, NULL,
			    "%s", limit_err);
			startup_fail((int) fd, &err, false);
		}
#endif
	}
	interp_python_version(version, sizeof(version));
	if (interp_free_threaded() && interp_gil_enabled()) {
		/* Said by the template (once), or by each exec'd worker. */
		char causes[512];
		if (interp_gil_causes(causes, sizeof(causes)) == 0)
			snprintf(causes, sizeof(causes), "an extension module "
			    "that does not declare free-threading support");
		logf_("warning: the GIL is enabled in this free-threaded "
		      "Python, so its %d threads run Python one at a time; "
		      "turned on by importing %s (PYTHON_GIL=0 in gild's "
		      "environment keeps it off, at the risk of that "
		      "module's thread safety)",
		    nthreads, causes);
	}
	interp_flush_stdio();
	if (!template_mode)
		start_hooks((int) fd, slot != NULL ? slot : "-1");
	if (send_hello((int) fd, a, version) < 0)
		return 1;
	if (template_mode) {
		/* Returns in each forked worker only. */
		template_run((int) fd, app_logs, &wfd, &chan, slotbuf, sizeof(slotbuf));
		fd = wfd;
		set_slot(slotbuf, 1);
		if (life_env_apply(envs, nenv, slotbuf, 1, &err) == -1)
			startup_fail((int) fd, &err, false);
		start_hooks((int) fd, slotbuf);
		if (send_hello((int) fd, a, version) < 0)
			return 1;
	}
	status = serve_with_reader((int) fd, a);
	if (status == 0)
		stop_hooks();

	app_free(a);
	convert_fini();
	if (interp_fini() < 0 && status == 0)
		status = 1;
	close((int) fd);
	if (chan != -1)
		close(chan);
	return status;
}
