/* libFuzzer target: arbitrary bytes as a ToWorker frame, run through
 * job_run as a worker's job thread runs each frame it reads: decode.c's
 * envelope and convert.c's values into Python objects (an embedded
 * CPython, started once), a call of an app function that takes anything
 * and sends it back (so the result converts back to a Value too), an
 * actor constructor, a batch, a stream. An exec is not run (its source
 * would be arbitrary code): its variables go through the same conversion.
 * Checks each frame is answered with a FromWorker that decodes, and that
 * no Python exception is left behind. */
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fields.h"
#include "frame.h"
#include "wire.h"
#include "worker.pb-c.h"
#include "worker/app.h"
#include "worker/convert.h"
#include "worker/decode.h"
#include "worker/interp.h"
#include "worker/interrupt.h"
#include "worker/job.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* The interpreter keeps some allocations until exit, by design
 * (worker/lsan.supp); gild's own code is still checked. */
const char *
__lsan_default_suppressions(void)
{
	return "leak:^Py\nleak:^_Py\nleak:libpython3\n";
}

static const char app_src[] =
    "def echo(*args, **kwargs):\n"
    "    return [list(args), kwargs]\n"
    "def gen(*args, **kwargs):\n"
    "    yield from args\n"
    "class Box:\n"
    "    __gild_actor__ = {}\n"
    "    def __init__(self, *args, **kwargs):\n"
    "        self.args = args\n"
    "    def get(self):\n"
    "        return list(self.args)\n";

static app *the_app;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/gild-fuzz-XXXXXX", path[64];
	PyPreConfig pre;
	werr err = {0};
	FILE *f;

	(void) argc;
	(void) argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/fuzzapp.py", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(app_src, f);
	fclose(f);
	/* Python's objects on the C heap, not in pymalloc's mmap'd arenas,
	 * which LeakSanitizer does not scan: what they point to would look
	 * leaked. interp_init's own preinitialization is then a no-op. */
	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1;
	pre.allocator = PYMEM_ALLOCATOR_MALLOC;
	if (PyStatus_Exception(Py_PreInitialize(&pre)) ||
	    interp_init("fuzz_to_worker", &err) == -1 ||
	    convert_init() == -1 || job_init() == -1 ||
	    interrupt_threads(1) == -1) {
		fprintf(stderr, "fuzz_to_worker: cannot start Python: %s\n",
		    err.message != NULL ? err.message : "?");
		abort();
	}
	interrupt_thread_enter(0);
	if (app_load(&the_app, path, &err) == -1) {
		fprintf(stderr, "fuzz_to_worker: %s\n", err.message);
		abort();
	}
	unlink(path);
	rmdir(dir);
	return 0;
}

/* A stream's chunks: checked to decode, then dropped, each one credited
 * back at once as a client that keeps up would (the front end's Credit). */
static int
sink_send(void *arg, uint8_t *buf, size_t len)
{
	Gild__Worker__V1__FromWorker *r =
	    gild__worker__v1__from_worker__unpack(NULL, len, buf);

	(void) arg;
	if (r == NULL)
		abort();
	interrupt_credit(r->job_id, 1);
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	frame_free(buf);
	return 0;
}

/* An exec's variables (each a Map) converted as a Value{map_value}. */
static void
exec_variables(const decode_msg *m)
{
	decode_bytes vars;
	size_t it = 0;

	while (decode_next(m->exec, GILD_F_EXEC_VARIABLES, &it, &vars) == 1) {
		uint8_t *v = malloc(1 + WIRE_MAX_VARINT + vars.len);
		size_t n = wire_put_tag(v, GILD_F_VALUE_MAP, WIRE_LEN);
		werr err = {0};
		PyObject *o;

		n += wire_put_varint(v + n, vars.len);
		memcpy(v + n, vars.data, vars.len);
		o = convert_wire_to_py(v, n + vars.len, &err);
		if ((o == NULL) != (err.message != NULL))
			abort(); /* an error always says why */
		Py_XDECREF(o);
		werr_clear(&err);
		free(v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const job_sink sink = {sink_send, NULL};
	Gild__Worker__V1__FromWorker *r;
	uint8_t *out = NULL;
	size_t outlen = 0;
	uint64_t actor_id = 0;
	decode_msg m;
	werr err = {0};
	int exec;

	exec = decode_frame(data, size, &m, &err) == 0 &&
	       m.body == GILD_WF_TO_WORKER_EXEC;
	if (exec)
		exec_variables(&m);
	if (m.body == GILD_WF_TO_WORKER_ACTOR_NEW)
		actor_id = m.actor_id;
	/* A stream waits for credit, which can only be given to a job with
	 * an id: the front end never sends job 0. */
	if (m.body == GILD_WF_TO_WORKER_CALL && m.call.stream && m.job_id == 0)
		exec = 1;
	decode_free(&m);
	werr_clear(&err);
	if (exec || PyErr_Occurred())
		goto done; /* not run: an exec, or a stream of job 0 */
	if (job_run(the_app, data, size, &sink, &out, &outlen) != 0)
		abort(); /* not out of memory, and the sink never fails */
	if ((r = gild__worker__v1__from_worker__unpack(NULL, outlen, out)) ==
	    NULL)
		abort();
	gild__worker__v1__from_worker__free_unpacked(r, NULL);
	frame_free(out);
	if (actor_id != 0) {
		/* Not one actor kept per input: ToWorker{actor_id, destroy}. */
		uint8_t d[4 + 2 * WIRE_MAX_VARINT];
		size_t n = wire_put_tag(d, GILD_WF_TO_WORKER_ACTOR_ID,
		    WIRE_VARINT);
		n += wire_put_varint(d + n, actor_id);
		n += wire_put_tag(d + n, GILD_WF_TO_WORKER_ACTOR_DESTROY,
		    WIRE_VARINT);
		d[n++] = 1;
		if (job_run(the_app, d, n, &sink, &out, &outlen) != 0)
			abort();
		frame_free(out);
	}
done:
	if (PyErr_Occurred())
		abort();
	return 0;
}
