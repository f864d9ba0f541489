/* job: one ToWorker call in, one FromWorker reply out. Every call gets a
 * reply; only running out of memory for the reply itself is an error. */
#include "job.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "convert.h"
#include "decode.h"
#include "fields.h"
#include "gild_limits.h"
#include "inbox.h"
#include "interp.h"
#include "interrupt.h"
#include "reply.h"
#include "wire.h"
#include "worker.pb-c.h"

void
job_not_found(const app *a, const char *name, werr *err)
{
	char *list = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&list, &size);
	char **names = app_names(a);

	if (f != NULL) {
		for (size_t i = 0; i < app_count(a); i++)
			fprintf(f, "%s%s", i ? ", " : "", names[i]);
		fclose(f);
	}
	werr_set(err, GILD__V1__CODE__NOT_FOUND, NULL,
	    "function '%s' not found in app '%s' (exported: %s)", name,
	    app_spec(a), list != NULL && *list ? list : "none");
	free(list);
}

/* The Value in field `field` of msg (a Kwarg's value, a MapEntry's key or
 * value) as a new reference: each occurrence of the field is converted and
 * the last kept, so a second one is checked like the first. NULL with
 * *err, "value is missing" when there is none. */
static PyObject *
value_field(decode_bytes msg, uint32_t field, werr *err)
{
	PyObject *val = NULL, *o;
	decode_bytes v;
	size_t it = 0;

	while (decode_next(msg, field, &it, &v) == 1) {
		if ((o = convert_wire_to_py(v.data, v.len, err)) == NULL) {
			Py_XDECREF(val);
			return NULL;
		}
		Py_XSETREF(val, o);
	}
	if (val == NULL)
		werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "value is missing");
	return val;
}

int
job_build_args(const decode_call *call, PyObject **args, PyObject **kwargs,
    werr *err)
{
	int grow = call->n_args > PYCONV_PREALLOC_MAX;
	PyObject *t =
	    grow ? PyList_New(0) : PyTuple_New((Py_ssize_t) call->n_args);
	PyObject *d = NULL;
	PyObject *key = NULL;
	PyObject *val = NULL;
	decode_bytes v, kw;
	wire_field name;
	size_t it = 0;

	*args = *kwargs = NULL;
	if (t == NULL)
		goto fail_py;
	for (size_t i = 0;
	     decode_next(call->body, GILD_F_CALL_ARGS, &it, &v) == 1; i++) {
		PyObject *o = convert_wire_to_py(v.data, v.len, err);
		if (o == NULL) {
			werr_prefix(err, "argument %zu: ", i + 1);
			goto fail;
		}
		if (!grow) {
			PyTuple_SET_ITEM(t, (Py_ssize_t) i, o);
		} else if (PyList_Append(t, o) == -1) {
			Py_DECREF(o);
			goto fail_py;
		} else {
			Py_DECREF(o);
		}
	}
	if (grow) {
		Py_SETREF(t, PyList_AsTuple(t));
		if (t == NULL)
			goto fail_py;
	}
	if (call->n_kwargs > 0 && (d = PyDict_New()) == NULL)
		goto fail_py;
	it = 0;
	for (size_t i = 0;
	     decode_next(call->body, GILD_F_CALL_KWARGS, &it, &kw) == 1; i++) {
		const char *nm = "";
		int nlen = 0;
		if (wire_find(kw.data, kw.len, GILD_F_KWARG_NAME, &name) == 1) {
			nm = (const char *) name.data;
			nlen = (int) name.len;
		}
		key = PyUnicode_DecodeUTF8(nm, nlen, "strict");
		if (key == NULL) {
			PyErr_Clear();
			werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
			    "keyword argument %zu: name is not valid UTF-8",
			    i + 1);
			goto fail;
		}
		if (PyDict_Contains(d, key) == 1) {
			werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
			    "keyword argument '%.*s' given more than once",
			    nlen > 200 ? 200 : nlen, nm);
			goto fail;
		}
		if ((val = value_field(kw, GILD_F_KWARG_VALUE, err)) == NULL) {
			werr_prefix(err, "keyword argument '%.*s': ",
			    nlen > 200 ? 200 : nlen, nm);
			goto fail;
		}
		if (PyDict_SetItem(d, key, val) == -1)
			goto fail_py;
		Py_CLEAR(key);
		Py_CLEAR(val);
	}
	*args = t;
	*kwargs = d;
	return 0;
fail_py:
	werr_from_python(err, GILD__V1__CODE__INTERNAL);
fail:
	Py_XDECREF(t);
	Py_XDECREF(d);
	Py_XDECREF(key);
	Py_XDECREF(val);
	return -1;
}

static uint64_t memory_limit_mib;
static atomic_int must_exit; /* set by one job thread, read by all */

int
job_limit_memory(uint64_t mib, char *err, size_t errlen)
{
	struct rlimit rl;
	unsigned long long pages = 0;
	uint64_t used_mib, reserved_mib = 0;
	FILE *f;

	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	used_mib = pages * (uint64_t) sysconf(_SC_PAGESIZE) >> 20;
	if (interp_free_threaded()) {
		/* Its allocator (mimalloc) reserves a 1 GiB arena up front,
		 * used or not: the limit is on what comes on top of that. */
		reserved_mib = used_mib;
	} else if (used_mib >= mib) {
		snprintf(err, errlen,
		    "the worker already uses %llu MiB of address space after "
		    "importing the app, over --worker-memory %llu MiB",
		    (unsigned long long) used_mib, (unsigned long long) mib);
		return -1;
	}
	rl.rlim_cur = rl.rlim_max = (rlim_t) (reserved_mib + mib) << 20;
	if (setrlimit(RLIMIT_AS, &rl) == -1) {
		snprintf(err, errlen, "cannot limit the address space to %llu "
		    "MiB: %s", (unsigned long long) mib, strerror(errno));
		return -1;
	}
	memory_limit_mib = mib;
	return 0;
}

int
job_must_exit(void)
{
	return must_exit;
}

/* A MemoryError under --worker-memory is the worker's end, not the call's
 * own error: the client learns which limit it hit. */
static void
check_memory_limit(werr *err)
{
	if (memory_limit_mib == 0 || err->python_type == NULL ||
	    strcmp(err->python_type, "MemoryError") != 0)
		return;
	must_exit = 1;
	err->code = GILD__V1__CODE__WORKER_LOST;
	werr_prefix(err, "the worker ran out of memory: its address space is "
			 "limited to %llu MiB (--worker-memory), so it is "
			 "replaced. ",
	    (unsigned long long) memory_limit_mib);
}

/* ---- actors ------------------------------------------------------------ */

/* dict: actor id -> instance living here. Each actor is only ever touched
 * by one job thread (main.c pins it), so a borrowed instance stays valid. */
static PyObject *actors;

int
job_init(void)
{
	return (actors = PyDict_New()) != NULL ? 0 : -1;
}

PyObject *
job_resolve(const app *a, const decode_call *call, werr *err)
{
	const char *name = call->function != NULL ? call->function : "";
	PyObject *key, *inst, *m = NULL;

	if (call->actor_id == 0) {
		if ((m = app_function(a, name)) == NULL)
			job_not_found(a, name, err);
		return Py_XNewRef(m);
	}
	key = PyLong_FromUnsignedLongLong(call->actor_id);
	inst = key != NULL ? PyDict_GetItem(actors, key) : NULL;
	Py_XDECREF(key);
	if (inst == NULL) {
		werr_set(err, GILD__V1__CODE__NOT_FOUND, NULL,
		    "actor %llu does not live in this worker",
		    (unsigned long long) call->actor_id);
		return NULL;
	}
	if (name[0] == '_' || (m = PyObject_GetAttrString(inst, name)) == NULL ||
	    !PyCallable_Check(m)) {
		PyErr_Clear();
		werr_set(err, GILD__V1__CODE__NOT_FOUND, NULL,
		    "actor %llu (%s) has no public method '%s'",
		    (unsigned long long) call->actor_id, Py_TYPE(inst)->tp_name,
		    name);
		Py_XDECREF(m);
		return NULL;
	}
	return m;
}

/* ToWorker{actor_id, actor_new}: creates the instance. */
static int
run_actor_new(const app *a, const decode_msg *msg, uint8_t **out,
    size_t *outlen)
{
	Gild__V1__Value ok = GILD__V1__VALUE__INIT;
	const char *cname = msg->call.function;
	PyObject *cls = app_actor_class(a, cname);
	PyObject *args = NULL, *kwargs = NULL, *inst = NULL, *key = NULL;
	job_ctx ctx = {.job_id = msg->job_id, .request_id = msg->request_id,
	    .function = cname, .deadline_ms = msg->deadline_ms,
	    .queued_us = msg->queued_us, .batch_size = 1};
	job_ctx_trace(&ctx, msg->traceparent.data, msg->traceparent.len,
	    msg->tracestate.data, msg->tracestate.len);
	werr err = {0};
	int rc, code;

	if (cls == NULL) {
		werr_set(&err, GILD__V1__CODE__NOT_FOUND, NULL,
		    "no @gild.actor class '%s' in app '%s'", cname, app_spec(a));
		goto fail;
	}
	if (job_build_args(&msg->call, &args, &kwargs, &err) == -1)
		goto fail;
	if ((code = interrupt_begin(&ctx)) != 0) {
		werr_set(&err, (Gild__V1__Code) code, NULL,
		    "creating %s was interrupted", cname);
		goto fail;
	}
	inst = PyObject_Call(cls, args, kwargs);
	code = interrupt_end();
	if (inst == NULL) {
		werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		if (code != 0)
			err.code = (Gild__V1__Code) code;
		goto fail;
	}
	if ((key = PyLong_FromUnsignedLongLong(msg->actor_id)) == NULL ||
	    PyDict_SetItem(actors, key, inst) == -1) {
		werr_from_python(&err, GILD__V1__CODE__INTERNAL);
		goto fail;
	}
	ok.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	ok.bool_value = 1;
	rc = reply_result(msg->job_id, &ok, out, outlen);
	goto done;
fail:
	check_memory_limit(&err);
	rc = reply_error(msg->job_id, &err, out, outlen);
done:
	Py_XDECREF(key);
	Py_XDECREF(inst);
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	werr_clear(&err);
	return rc;
}

/* ToWorker{actor_id, actor_destroy}: drops the instance. */
static int
run_actor_destroy(const decode_msg *msg, uint8_t **out,
    size_t *outlen)
{
	Gild__V1__Value v = GILD__V1__VALUE__INIT;
	PyObject *key = PyLong_FromUnsignedLongLong(msg->actor_id);
	int had = key != NULL && PyDict_Contains(actors, key) == 1;

	if (had && PyDict_DelItem(actors, key) == -1)
		PyErr_Clear(); /* its __del__ raised: it is gone anyway */
	PyErr_Clear();
	Py_XDECREF(key);
	v.kind_case = GILD__V1__VALUE__KIND_BOOL_VALUE;
	v.bool_value = had;
	return reply_result(msg->job_id, &v, out, outlen);
}

/* Closes a generator (running its finally: blocks); errors are ignored. */
static void
close_generator(PyObject *it)
{
	PyObject *r;

	if (!PyObject_HasAttrString(it, "close"))
		return;
	r = PyObject_CallMethod(it, "close", NULL);
	Py_XDECREF(r);
	PyErr_Clear();
}

/* Sends res as a stream: each item of a generator (or other iterator) as a
 * Chunk, one chunk per credit, pausing the generator while there is none;
 * any other value as a single chunk. Returns 0 when it ended, -1 with *err
 * when it raised or was interrupted (the generator is closed), or -2 when
 * the front end is gone. *count is the chunks sent. */
static int
stream_out(PyObject *res, uint64_t job_id, uint32_t window,
    const job_sink *sink, werr *err, uint64_t *count)
{
	bool iter = PyGen_Check(res) || PyIter_Check(res);
	PyObject *it = iter ? res : NULL;

	/* Its credit comes while it runs: someone must read it. */
	inbox_need_reader();
	interrupt_credit(job_id, window);
	for (bool last = false; !last;) {
		Gild__V1__Value *v = NULL;
		convert_pins *pins = NULL;
		PyObject *item;
		uint8_t *buf = NULL;
		size_t len = 0;
		int code, rc;

		if ((code = interrupt_take_credit()) != 0) {
			interrupt_disarm();
			if (it != NULL)
				close_generator(it);
			werr_set(err, (Gild__V1__Code) code, NULL,
			    "the stream was %s after %llu chunks",
			    code == GILD__V1__CODE__CANCELLED ? "cancelled"
							      : "interrupted",
			    (unsigned long long) *count);
			return -1;
		}
		if (it != NULL) {
			item = PyIter_Next(it);
			if (item == NULL) {
				if (!PyErr_Occurred())
					return 0;
				werr_from_python(err, GILD__V1__CODE__PYTHON_ERROR);
				return -1;
			}
		} else {
			item = Py_NewRef(res);
			last = true;
		}
		rc = convert_from_py(item, &v, &pins, err);
		Py_DECREF(item);
		if (rc == -1) {
			err->code = GILD__V1__CODE__PYTHON_ERROR;
			werr_prefix(err, "cannot send chunk %llu: ",
			    (unsigned long long) *count);
			if (it != NULL)
				close_generator(it);
			return -1;
		}
		rc = reply_chunk(job_id, *count, v, &buf, &len);
		convert_value_free(v, pins);
		if (rc != 0 || sink->send(sink->arg, buf, len) != 0) {
			if (it != NULL)
				close_generator(it);
			return -2;
		}
		(*count)++;
	}
	return 0;
}

/* Runs call and encodes its final reply (for a stream: StreamEnd, the
 * chunks having gone through sink). */
static int
run_call(const app *a, const decode_msg *msg, const job_sink *sink,
    uint8_t **out, size_t *outlen)
{
	const decode_call *call = &msg->call;
	uint64_t job_id = msg->job_id;
	const char *fname = call->function;
	job_ctx ctx = {.job_id = job_id, .request_id = msg->request_id,
	    .function = fname, .deadline_ms = msg->deadline_ms,
	    .queued_us = msg->queued_us, .batch_size = 1};
	job_ctx_trace(&ctx, msg->traceparent.data, msg->traceparent.len,
	    msg->tracestate.data, msg->tracestate.len);
	werr err = {0};
	PyObject *fn = job_resolve(a, call, &err);
	PyObject *args = NULL;
	PyObject *kwargs = NULL;
	PyObject *res = NULL;
	Gild__V1__Value *v = NULL;
	convert_pins *pins = NULL;
	uint64_t count = 0;
	uint32_t window = call->window == 0 ? GILD_STREAM_WINDOW_DEFAULT
			  : call->window > GILD_STREAM_WINDOW_MAX
			      ? GILD_STREAM_WINDOW_MAX
			      : call->window;
	int rc, code, srv = 0;

	if (fn == NULL)
		goto fail;
	if (job_build_args(call, &args, &kwargs, &err) == -1)
		goto fail;
	if ((code = interrupt_begin(&ctx)) != 0) {
		werr_set(&err, (Gild__V1__Code) code, NULL,
		    "'%s' was interrupted before it started", fname);
		goto fail;
	}
	/* An async generator runs as a generator would (interp_sync_iter). */
	res = interp_sync_iter(PyObject_Call(fn, args, kwargs));
	if (res != NULL && call->stream) {
		srv = stream_out(res, job_id, window, sink, &err, &count);
	} else if (res != NULL && PyGen_Check(res)) {
		/* A generator called without asking for a stream: the whole
		 * list in one reply. */
		PyObject *list = PySequence_List(res);
		Py_SETREF(res, list);
	}
	code = interrupt_end();
	if (srv == -2) {
		rc = -EPIPE;
		goto done;
	}
	if (srv == -1 || res == NULL) {
		/* SystemExit and KeyboardInterrupt too: the job fails, the
		 * worker carries on. */
		if (res == NULL)
			werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		if (code != 0)
			err.code = (Gild__V1__Code) code;
		goto fail;
	}
	if (call->stream) {
		rc = reply_stream_end(job_id, count, NULL, out, outlen);
		goto done;
	}
	if (convert_from_py(res, &v, &pins, &err) == -1) {
		err.code = GILD__V1__CODE__PYTHON_ERROR;
		werr_prefix(&err, "cannot send the result of '%s': ", fname);
		goto fail;
	}
	rc = reply_result(job_id, v, out, outlen);
	goto done;
fail:
	check_memory_limit(&err);
	rc = call->stream ? reply_stream_end(job_id, count, &err, out, outlen)
			  : reply_error(job_id, &err, out, outlen);
done:
	convert_value_free(v, pins);
	Py_XDECREF(res);
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(fn);
	werr_clear(&err);
	return rc;
}

/* One entry of an Exec's variables (e, a MapEntry) into ns: its name must
 * convert to a str. Returns 0, or -1 with *err. */
static int
exec_variable(decode_bytes e, size_t i, PyObject *ns, werr *err)
{
	PyObject *key = value_field(e, GILD_F_MAP_ENTRY_KEY, err), *val;
	int rc;

	if (key == NULL || !PyUnicode_Check(key)) {
		Py_XDECREF(key);
		werr_clear(err);
		return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "exec variable %zu: its name must be a str (valid UTF-8)",
		    i + 1);
	}
	if ((val = value_field(e, GILD_F_MAP_ENTRY_VALUE, err)) == NULL) {
		werr_prefix(err, "exec variable '%s': ",
		    PyUnicode_AsUTF8(key) != NULL ? PyUnicode_AsUTF8(key) : "?");
		PyErr_Clear();
		Py_DECREF(key);
		return -1;
	}
	rc = PyDict_SetItem(ns, key, val);
	Py_DECREF(key);
	Py_DECREF(val);
	return rc == -1 ? werr_from_python(err, GILD__V1__CODE__INTERNAL) : 0;
}

/* Fills ns (a fresh namespace dict) with an Exec's variables: the entries
 * of every variables field, in order (protobuf's merge of a Map). Returns
 * 0, or -1 with *err (INVALID_ARGUMENT naming the variable;
 * PERMISSION_DENIED for a pickle without --allow-pickle). */
static int
exec_variables(decode_bytes ex, PyObject *ns, werr *err)
{
	decode_bytes vars;
	size_t it = 0, i = 0;

	while (decode_next(ex, GILD_F_EXEC_VARIABLES, &it, &vars) == 1) {
		const uint8_t *p = vars.data, *end = vars.data + vars.len;
		wire_field f;
		int r;
		while ((r = wire_next(&p, end, &f)) == 1) {
			decode_bytes e = {f.data, f.len};
			if (f.number != GILD_F_MAP_ENTRIES)
				continue;
			if (f.type != WIRE_LEN || wire_check(f.data, f.len) == -1)
				r = -1;
			else if (exec_variable(e, i++, ns, err) == -1)
				return -1;
			if (r == -1)
				break;
		}
		if (r == -1)
			return werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT,
			    NULL,
			    "malformed call: the exec's variables are not "
			    "valid protobuf wire format");
	}
	return 0;
}

/* ToWorker{exec}: compiles the source as a module, runs it in a fresh
 * namespace holding its variables (and __name__ "__gild_exec__"), and
 * answers with the namespace's `result` (None when unset). A SyntaxError
 * or an exception is PYTHON_ERROR with its traceback, as for a call. */
static int
run_exec(const decode_msg *msg, uint8_t **out, size_t *outlen)
{
	const decode_bytes *source = &msg->source;
	const char *fname =
	    msg->filename[0] != '\0' ? msg->filename : "<exec>";
	job_ctx ctx = {.job_id = msg->job_id, .request_id = msg->request_id,
	    .function = fname, .deadline_ms = msg->deadline_ms,
	    .queued_us = msg->queued_us, .batch_size = 1};
	job_ctx_trace(&ctx, msg->traceparent.data, msg->traceparent.len,
	    msg->tracestate.data, msg->tracestate.len);
	PyObject *ns = NULL, *file = NULL, *code = NULL, *r = NULL, *res;
	Gild__V1__Value *v = NULL;
	convert_pins *pins = NULL;
	char *src = NULL;
	werr err = {0};
	int rc, icode;

	if (source->len > 0 &&
	    memchr(source->data, '\0', source->len) != NULL) {
		werr_set(&err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "exec source holds a NUL byte");
		goto fail;
	}
	if ((src = malloc(source->len + 1)) == NULL) {
		werr_set(&err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
		goto fail;
	}
	if (source->len > 0)
		memcpy(src, source->data, source->len);
	src[source->len] = '\0';
	if ((ns = PyDict_New()) == NULL ||
	    PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) ==
		-1 ||
	    (file = PyUnicode_FromString("__gild_exec__")) == NULL ||
	    PyDict_SetItemString(ns, "__name__", file) == -1) {
		werr_from_python(&err, GILD__V1__CODE__INTERNAL);
		goto fail;
	}
	Py_CLEAR(file);
	if (exec_variables(msg->exec, ns, &err) == -1)
		goto fail;
	if ((file = PyUnicode_DecodeFSDefault(fname)) == NULL) {
		werr_from_python(&err, GILD__V1__CODE__INVALID_ARGUMENT);
		goto fail;
	}
	if ((code = Py_CompileStringObject(src, file, Py_file_input, NULL,
		 -1)) == NULL) {
		werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		goto fail;
	}
	if ((icode = interrupt_begin(&ctx)) != 0) {
		werr_set(&err, (Gild__V1__Code) icode, NULL,
		    "the exec was interrupted before it started");
		goto fail;
	}
	r = PyEval_EvalCode(code, ns, ns);
	icode = interrupt_end();
	if (r == NULL) {
		werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		if (icode != 0)
			err.code = (Gild__V1__Code) icode;
		goto fail;
	}
	res = PyDict_GetItemString(ns, "result"); /* borrowed */
	if (convert_from_py(res != NULL ? res : Py_None, &v, &pins, &err) ==
	    -1) {
		err.code = GILD__V1__CODE__PYTHON_ERROR;
		werr_prefix(&err, "cannot send the exec's result: ");
		goto fail;
	}
	rc = reply_result(msg->job_id, v, out, outlen);
	goto done;
fail:
	check_memory_limit(&err);
	rc = reply_error(msg->job_id, &err, out, outlen);
done:
	convert_value_free(v, pins);
	/* Not cleared: a thread the source started may still use its
	 * globals; the cycle through the functions it defined is left to
	 * the garbage collector. */
	Py_XDECREF(ns);
	Py_XDECREF(r);
	Py_XDECREF(code);
	Py_XDECREF(file);
	free(src);
	werr_clear(&err);
	return rc;
}

int
job_run(const app *a, const uint8_t *buf, size_t len, const job_sink *sink,
    uint8_t **out, size_t *outlen)
{
	decode_msg msg;
	werr err = {0};
	int rc;

	if (decode_frame(buf, len, &msg, &err) == -1) {
		rc = batch_fail(buf, len, &err, sink, out, outlen);
		if (rc != 1)
			goto done; /* every job of the batch answered */
		goto fail;
	}
	switch (msg.body) {
	case GILD_WF_TO_WORKER_BATCH:
		if (msg.n_calls == 0 || msg.n_calls != msg.n_job_ids)
			break;
		rc = batch_run(a, &msg, sink, out, outlen);
		goto done;
	case GILD_WF_TO_WORKER_ACTOR_NEW:
		rc = run_actor_new(a, &msg, out, outlen);
		goto done;
	case GILD_WF_TO_WORKER_ACTOR_DESTROY:
		rc = run_actor_destroy(&msg, out, outlen);
		goto done;
	case GILD_WF_TO_WORKER_EXEC:
		rc = run_exec(&msg, out, outlen);
		goto done;
	case GILD_WF_TO_WORKER_CALL:
		rc = run_call(a, &msg, sink, out, outlen);
		goto done;
	default:
		break;
	}
	werr_set(&err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "malformed call: the message holds no call");
fail:
	rc = reply_error(msg.job_id, &err, out, outlen);
done:
	decode_free(&msg);
	werr_clear(&err);
	return rc;
}

/* ---- async functions ---------------------------------------------------- */

/* A str of the n bytes at s, or None when n is 0 (new). */
static PyObject *
str_or_none(const uint8_t *s, size_t n)
{
	if (n == 0)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8((const char *) s, (Py_ssize_t) n, "replace");
}

/* What gild.context() says inside the task of async call msg, as
 * _gild_worker.context_info() does for a call on a thread (new): its
 * deadline counted from now, as interrupt_begin would. */
static PyObject *
async_context(const decode_msg *msg)
{
	struct timespec ts;
	PyObject *deadline;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic()'s clock */
	deadline = msg->deadline_ms != 0
		       ? PyFloat_FromDouble((double) ts.tv_sec + ts.tv_nsec / 1e9 +
					    msg->deadline_ms / 1000.0)
		       : Py_NewRef(Py_None);
	return Py_BuildValue("(KsNdkNN)", (unsigned long long) msg->request_id,
	    msg->call.function, deadline, msg->queued_us / 1000.0, 1ul,
	    str_or_none(msg->traceparent.data, msg->traceparent.len),
	    str_or_none(msg->tracestate.data, msg->tracestate.len));
}

int
job_start(const app *a, const uint8_t *buf, size_t len, const job_sink *sink,
    uint64_t *job_id, PyObject **coro, PyObject **tag, int *alone,
    uint8_t **out, size_t *outlen)
{
	decode_msg msg;
	PyObject *args = NULL, *kwargs = NULL, *fn = NULL;
	const app_options *opts;
	werr err = {0};
	int rc = 1;

	*coro = NULL;
	*tag = NULL;
	*alone = 0;
	/* Everything but a plain call of an async def (a function, or an
	 * actor's method) runs as usual. */
	if (decode_frame(buf, len, &msg, &err) == -1 ||
	    msg.body != GILD_WF_TO_WORKER_CALL || msg.call.stream ||
	    (fn = job_resolve(a, &msg.call, &err)) == NULL ||
	    !interp_is_coroutine_function(fn)) {
		decode_free(&msg);
		Py_XDECREF(fn);
		werr_clear(&err);
		PyErr_Clear();
		return job_run(a, buf, len, sink, out, outlen);
	}
	*job_id = msg.job_id;
	opts = msg.call.actor_id == 0 ? app_options_of(a, msg.call.function)
				      : NULL;
	*alone = msg.call.actor_id == 0 &&
		 (opts == NULL || opts->concurrency <= 1);
	if (job_build_args(&msg.call, &args, &kwargs, &err) == -1 ||
	    (*coro = PyObject_Call(fn, args, kwargs)) == NULL) {
		if (*coro == NULL && err.message == NULL)
			werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		rc = reply_error(*job_id, &err, out, outlen);
	} else if ((*tag = async_context(&msg)) == NULL ||
		   interrupt_async_add(*job_id) == -1) {
		Py_CLEAR(*coro);
		Py_CLEAR(*tag);
		PyErr_Clear();
		werr_set(&err, GILD__V1__CODE__INTERNAL, NULL, "out of memory");
		rc = reply_error(*job_id, &err, out, outlen);
	}
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(fn);
	werr_clear(&err);
	decode_free(&msg);
	return rc;
}

/* Sets exc (borrowed) as the pending exception. */
static void
raise_object(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(Py_NewRef(exc));
#else
	PyObject *tb = PyException_GetTraceback(exc);
	Py_INCREF(Py_TYPE(exc));
	Py_INCREF(exc);
	PyErr_Restore((PyObject *) Py_TYPE(exc), exc, tb);
#endif
}

int
job_finish(uint64_t job_id, PyObject *result, PyObject *exc, uint8_t **out,
    size_t *outlen)
{
	Gild__V1__Value *v = NULL;
	convert_pins *pins = NULL;
	werr err = {0};
	int code = interrupt_async_remove(job_id), rc;

	if (exc != NULL) {
		raise_object(exc);
		werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		if (code != 0)
			err.code = (Gild__V1__Code) code;
	} else if (convert_from_py(result, &v, &pins, &err) == -1) {
		err.code = GILD__V1__CODE__PYTHON_ERROR;
		werr_prefix(&err, "cannot send the result: ");
	}
	check_memory_limit(&err);
	rc = err.message != NULL || exc != NULL
		 ? reply_error(job_id, &err, out, outlen)
		 : reply_result(job_id, v, out, outlen);
	convert_value_free(v, pins);
	werr_clear(&err);
	return rc;
}
