/* job: one ToWorker call in, one FromWorker reply out. Every call gets a
 * reply; only running out of memory for the reply itself is an error. */
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "convert.h"
#include "interrupt.h"
#include "reply.h"
#include "wire.h"
#include "worker.pb-c.h"

/* Field numbers of gild.proto / worker.proto walked by depth_check. */
enum {
	F_TOWORKER_CALL = 2,
	F_CALL_ARGS = 2,
	F_CALL_KWARGS = 3,
	F_KWARG_NAME = 1,
	F_KWARG_VALUE = 2,
	F_VALUE_LIST = 8,
	F_VALUE_TUPLE = 9,
	F_VALUE_MAP = 10,
	F_LIST_ITEMS = 1,
	F_MAP_ENTRIES = 1,
};

/* Returns 1 if the Value encoded in p/len holds Values deeper than
 * CONVERT_MAX_DEPTH (it is at depth `depth`), 0 if not, -1 if malformed.
 * Recursion stops at the limit, so a hostile message cannot exhaust the
 * stack the way protobuf-c's unbounded recursive unpack would. */
static int
value_too_deep(const uint8_t *p, size_t len, int depth)
{
	const uint8_t *end = p + len;
	wire_field f, g, h;
	int r;

	if (depth > CONVERT_MAX_DEPTH)
		return 1;
	while ((r = wire_next(&p, end, &f)) == 1) {
		const uint8_t *q, *qe;
		if (f.type != WIRE_LEN)
			continue;
		if (f.number != F_VALUE_LIST && f.number != F_VALUE_TUPLE &&
		    f.number != F_VALUE_MAP)
			continue;
		q = f.data;
		qe = f.data + f.len;
		while ((r = wire_next(&q, qe, &g)) == 1) {
			if (g.type != WIRE_LEN || g.number != F_LIST_ITEMS)
				continue;
			if (f.number != F_VALUE_MAP) {
				if ((r = value_too_deep(
				         g.data, g.len, depth + 1)))
					return r;
				continue;
			}
			/* A MapEntry: key = 1 and value = 2 are both Values. */
			const uint8_t *e = g.data, *ee = g.data + g.len;
			while ((r = wire_next(&e, ee, &h)) == 1) {
				if (h.type == WIRE_LEN &&
				    (h.number == 1 || h.number == 2) &&
				    (r = value_too_deep(
				         h.data, h.len, depth + 1)))
					return r;
			}
			if (r == -1)
				return -1;
		}
		if (r == -1)
			return -1;
	}
	return r;
}

/* Checks every argument of the ToWorker in buf before protobuf-c sees it.
 * Returns 0 (fine, or malformed: left to protobuf-c to reject) or -1 with
 * *err naming the argument that is nested too deep. */
static int
depth_check(const uint8_t *buf, size_t len, werr *err)
{
	wire_field call, f, g;
	const uint8_t *p, *end;
	size_t nargs = 0;
	size_t nkw = 0;
	int r;

	if (wire_find(buf, len, F_TOWORKER_CALL, &call) != 1 ||
	    call.type != WIRE_LEN)
		return 0;
	p = call.data;
	end = call.data + call.len;
	while (wire_next(&p, end, &f) == 1) {
		if (f.type != WIRE_LEN)
			continue;
		if (f.number == F_CALL_ARGS) {
			nargs++;
			if (value_too_deep(f.data, f.len, 0) == 1)
				goto deep;
		} else if (f.number == F_CALL_KWARGS) {
			const char *name = "?";
			int nlen = 1;
			nkw++;
			if (wire_find(f.data, f.len, F_KWARG_NAME, &g) == 1 &&
			    g.type == WIRE_LEN && g.len < 200) {
				name = (const char *) g.data;
				nlen = (int) g.len;
			}
			if (wire_find(f.data, f.len, F_KWARG_VALUE, &g) == 1 &&
			    g.type == WIRE_LEN &&
			    (r = value_too_deep(g.data, g.len, 0)) == 1) {
				werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT,
				    NULL,
				    "keyword argument '%.*s': values nested "
				    "deeper than %d levels",
				    nlen, name, CONVERT_MAX_DEPTH);
				return -1;
			}
		}
	}
	return 0;
deep:
	werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
	    "argument %zu: values nested deeper than %d levels", nargs,
	    CONVERT_MAX_DEPTH);
	return -1;
}

/* "function 'x' not found in app 'a' (exported: f, g)" into *err. */
static void
not_found(const app *a, const char *name, werr *err)
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

/* Builds the positional tuple and keyword dict (new references) for call.
 * Returns 0, or -1 with *err (INVALID_ARGUMENT naming the argument). */
static int
build_args(
    const Gild__V1__Call *call, PyObject **args, PyObject **kwargs, werr *err)
{
	PyObject *t = PyTuple_New((Py_ssize_t) call->n_args);
	PyObject *d = NULL;
	PyObject *key = NULL;
	PyObject *val = NULL;

	*args = *kwargs = NULL;
	if (t == NULL)
		goto fail_py;
	for (size_t i = 0; i < call->n_args; i++) {
		PyObject *o = convert_to_py(call->args[i], err);
		if (o == NULL) {
			werr_prefix(err, "argument %zu: ", i + 1);
			goto fail;
		}
		PyTuple_SET_ITEM(t, (Py_ssize_t) i, o);
	}
	if (call->n_kwargs > 0 && (d = PyDict_New()) == NULL)
		goto fail_py;
	for (size_t i = 0; i < call->n_kwargs; i++) {
		const Gild__V1__Kwarg *kw = call->kwargs[i];
		const char *name = kw->name != NULL ? kw->name : "";
		key = PyUnicode_DecodeUTF8(
		    name, (Py_ssize_t) strlen(name), "strict");
		if (key == NULL) {
			PyErr_Clear();
			werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
			    "keyword argument %zu: name is not valid UTF-8",
			    i + 1);
			goto fail;
		}
		if (PyDict_Contains(d, key) == 1) {
			werr_set(err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
			    "keyword argument '%s' given more than once", name);
			goto fail;
		}
		val = convert_to_py(kw->value, err);
		if (val == NULL) {
			werr_prefix(err, "keyword argument '%s': ", name);
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
static int must_exit;

int
job_limit_memory(uint64_t mib, char *err, size_t errlen)
{
	struct rlimit rl;
	unsigned long long pages = 0;
	uint64_t used_mib;
	FILE *f;

	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	used_mib = pages * (uint64_t) sysconf(_SC_PAGESIZE) >> 20;
	if (used_mib >= mib) {
		snprintf(err, errlen,
		    "the worker already uses %llu MiB of address space after "
		    "importing the app, over --worker-memory %llu MiB",
		    (unsigned long long) used_mib, (unsigned long long) mib);
		return -1;
	}
	rl.rlim_cur = rl.rlim_max = (rlim_t) mib << 20;
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

/* Runs call and encodes its reply. */
static int
run_call(const app *a, uint64_t job_id, const Gild__V1__Call *call,
    uint8_t **out, size_t *outlen)
{
	const char *fname = call->function != NULL ? call->function : "";
	PyObject *fn = app_function(a, fname);
	PyObject *args = NULL;
	PyObject *kwargs = NULL;
	PyObject *res = NULL;
	Gild__V1__Value *v = NULL;
	convert_pins *pins = NULL;
	werr err = {0};
	int rc, code;

	if (fn == NULL) {
		not_found(a, fname, &err);
		goto fail;
	}
	if (build_args(call, &args, &kwargs, &err) == -1)
		goto fail;
	if ((code = interrupt_begin(job_id)) != 0) {
		werr_set(&err, (Gild__V1__Code) code, NULL,
		    "'%s' was interrupted before it started", fname);
		goto fail;
	}
	res = PyObject_Call(fn, args, kwargs);
	code = interrupt_end();
	if (res == NULL) {
		/* SystemExit and KeyboardInterrupt too: the job fails, the
		 * worker carries on. */
		werr_from_python(&err, GILD__V1__CODE__PYTHON_ERROR);
		if (code != 0)
			err.code = (Gild__V1__Code) code;
		goto fail;
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
	rc = reply_error(job_id, &err, out, outlen);
done:
	convert_value_free(v, pins);
	Py_XDECREF(res);
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	werr_clear(&err);
	return rc;
}

/* The job id of a message protobuf-c may reject: the last job_id field
 * before the bytes stop making sense, or 0. */
static uint64_t
recover_job_id(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf;
	wire_field f;
	uint64_t id = 0;

	while (wire_next(&p, buf + len, &f) == 1)
		if (f.number == 1 && f.type == WIRE_VARINT)
			id = f.value;
	return id;
}

int
job_run(
    const app *a, const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen)
{
	Gild__Worker__V1__ToWorker *msg = NULL;
	uint64_t job_id;
	werr err = {0};
	int rc;

	job_id = recover_job_id(buf, len);
	if (depth_check(buf, len, &err) == -1)
		goto fail;
	msg = gild__worker__v1__to_worker__unpack(NULL, len, buf);
	if (msg == NULL) {
		werr_set(&err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: %zu bytes are not a valid ToWorker "
		    "message%s",
		    len,
		    wire_check(buf, len) == -1
		        ? " (broken protobuf wire format)"
		        : " (a field has the wrong type or a bad string)");
		goto fail;
	}
	job_id = msg->job_id;
	if (msg->body_case != GILD__WORKER__V1__TO_WORKER__BODY_CALL ||
	    msg->call == NULL) {
		werr_set(&err, GILD__V1__CODE__INVALID_ARGUMENT, NULL,
		    "malformed call: the message holds no call");
		goto fail;
	}
	rc = run_call(a, job_id, msg->call, out, outlen);
	goto done;
fail:
	rc = reply_error(job_id, &err, out, outlen);
done:
	if (msg != NULL)
		gild__worker__v1__to_worker__free_unpacked(msg, NULL);
	werr_clear(&err);
	return rc;
}
