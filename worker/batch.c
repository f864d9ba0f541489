/* batch: the calls of one @gild.function(batch=N) function, or of one
 * actor's method so decorated, run together. Calls of the same shape (as
 * many positional arguments, the same keyword names) become one call of
 * the function, each argument a list with one item per call; each call
 * gets its own reply (docs/batching.md). */
#include "batch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "convert.h"
#include "fields.h"
#include "gild_limits.h"
#include "interrupt.h"
#include "reply.h"
#include "wire.h"

/* Sends the reply of job i of a batch: through sink for all but the last,
 * whose reply is the final one in *out. Returns 0 or a negative errno. */
static int
batch_reply(const job_sink *sink, size_t i, size_t n, uint64_t job_id,
    const Gild__V1__Value *v, const werr *e, uint8_t **out, size_t *outlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = v != NULL ? reply_result(job_id, v, &buf, &len)
			   : reply_error(job_id, e, &buf, &len);

	if (rc != 0)
		return rc;
	if (i + 1 == n) {
		*out = buf;
		*outlen = len;
		return 0;
	}
	return sink->send(sink->arg, buf, len) == 0 ? 0 : -EPIPE;
}

/* A call's shape, as a dict key (new reference): (number of positional
 * arguments, sorted tuple of keyword names); NULL with a Python error. */
static PyObject *
shape_of(PyObject *args, PyObject *kwargs)
{
	PyObject *names = kwargs != NULL ? PyDict_Keys(kwargs) : PyList_New(0);
	PyObject *t;

	if (names == NULL || PyList_Sort(names) == -1) {
		Py_XDECREF(names);
		return NULL;
	}
	t = PyList_AsTuple(names);
	Py_DECREF(names);
	if (t == NULL)
		return NULL;
	return Py_BuildValue("(nN)", PyTuple_GET_SIZE(args), t);
}

/* What one run of a batch works on. */
typedef struct run {
	const app *a;
	const decode_msg *b;
	const char *fname;
	const char *what;  /* "function", or "method" of an actor */
	PyObject *fn;      /* new reference; NULL: not found (fnerr) */
	werr fnerr;
	bool ordered;      /* an actor's calls: runs follow the calls' order */
	size_t n;
	PyObject **args;   /* per call: positional tuple, keyword dict (or
			      NULL): new references */
	PyObject **kwargs;
	PyObject **result; /* per call: its result (new reference), or NULL */
	werr *errs;        /* per call: why it failed, when it was not run */
	werr *gerrs;       /* per group: why its run failed */
	const werr **why;  /* per call: the error it gets, or NULL */
} run;

/* The columns of calls idx (a list of indices, all of one shape): a tuple
 * of one list per positional argument, and a dict of one list per keyword
 * (NULL when none). Returns 0, or -1 with a Python error. */
static int
columns(run *r, PyObject *idx, PyObject **cols, PyObject **kwcols)
{
	Py_ssize_t m = PyList_GET_SIZE(idx);
	size_t first = PyLong_AsSize_t(PyList_GET_ITEM(idx, 0));
	Py_ssize_t k = PyTuple_GET_SIZE(r->args[first]);
	PyObject *kw = r->kwargs[first], *name, *unused;
	Py_ssize_t pos = 0;

	*kwcols = NULL;
	if ((*cols = PyTuple_New(k)) == NULL)
		return -1;
	for (Py_ssize_t p = 0; p < k; p++) {
		PyObject *col = PyList_New(m);
		if (col == NULL)
			goto fail;
		PyTuple_SET_ITEM(*cols, p, col);
		for (Py_ssize_t j = 0; j < m; j++) {
			size_t i = PyLong_AsSize_t(PyList_GET_ITEM(idx, j));
			PyObject *o = PyTuple_GET_ITEM(r->args[i], p);
			PyList_SET_ITEM(col, j, Py_NewRef(o));
		}
	}
	if (kw == NULL)
		return 0;
	if ((*kwcols = PyDict_New()) == NULL)
		goto fail;
	while (PyDict_Next(kw, &pos, &name, &unused)) {
		PyObject *col = PyList_New(m);
		if (col == NULL || PyDict_SetItem(*kwcols, name, col) == -1) {
			Py_XDECREF(col);
			goto fail;
		}
		Py_DECREF(col);
		for (Py_ssize_t j = 0; j < m; j++) {
			size_t i = PyLong_AsSize_t(PyList_GET_ITEM(idx, j));
			/* Same shape: every call has this name. */
			PyObject *o = PyDict_GetItem(r->kwargs[i], name);
			PyList_SET_ITEM(col, j, Py_NewRef(o));
		}
	}
	return 0;
fail:
	Py_CLEAR(*cols);
	Py_CLEAR(*kwcols);
	return -1;
}

/* Runs the calls idx (one shape) as one call of the function; on failure
 * each gets *gerr. */
static void
run_group(run *r, PyObject *idx, werr *gerr)
{
	Py_ssize_t m = PyList_GET_SIZE(idx);
	size_t first = PyLong_AsSize_t(PyList_GET_ITEM(idx, 0));
	PyObject *cols = NULL, *kwcols = NULL, *res = NULL;
	/* An interrupt of any call stops the batch. */
	job_ctx ctx = {.job_id = r->b->job_ids[first],
	    .request_id = r->b->request_id, .function = r->fname,
	    .deadline_ms = r->b->deadline_ms, .queued_us = r->b->queued_us,
	    .batch_size = (uint32_t) r->n, .batch_ids = r->b->job_ids};
	int code;

	job_ctx_trace(&ctx, r->b->traceparent.data, r->b->traceparent.len,
	    r->b->tracestate.data, r->b->tracestate.len);
	if (columns(r, idx, &cols, &kwcols) == -1) {
		werr_from_python(gerr, GILD__V1__CODE__INTERNAL);
		goto done;
	}
	if ((code = interrupt_begin(&ctx)) != 0) {
		werr_set(gerr, (Gild__V1__Code) code, NULL,
		    "'%s' was interrupted before it started", r->fname);
		goto done;
	}
	res = PyObject_Call(r->fn, cols, kwcols);
	code = interrupt_end();
	if (res == NULL) {
		werr_from_python(gerr, GILD__V1__CODE__PYTHON_ERROR);
		if (code != 0)
			gerr->code = (Gild__V1__Code) code;
	} else if (!PyList_Check(res) && !PyTuple_Check(res)) {
		werr_set(gerr, GILD__V1__CODE__PYTHON_ERROR, NULL,
		    "batched %s '%s' must return a list of results, one "
		    "per input, not %s", r->what, r->fname,
		    Py_TYPE(res)->tp_name);
	} else if (PySequence_Fast_GET_SIZE(res) != m) {
		werr_set(gerr, GILD__V1__CODE__PYTHON_ERROR, NULL,
		    "batched %s '%s' returned %zd results for %zd inputs",
		    r->what, r->fname, PySequence_Fast_GET_SIZE(res), m);
	} else {
		for (Py_ssize_t j = 0; j < m; j++) {
			size_t i = PyLong_AsSize_t(PyList_GET_ITEM(idx, j));
			r->result[i] =
			    Py_NewRef(PySequence_Fast_GET_ITEM(res, j));
		}
	}
done:
	if (gerr->message != NULL)
		for (Py_ssize_t j = 0; j < m; j++)
			r->why[PyLong_AsSize_t(PyList_GET_ITEM(idx, j))] = gerr;
	Py_XDECREF(res);
	Py_XDECREF(cols);
	Py_XDECREF(kwcols);
}

/* Whether shape key (a new reference, replaced) starts a new run of an
 * actor's calls: another shape than the call before it (*prev, replaced).
 * Then the key gets the run's number, so that the runs keep the calls'
 * order. Returns 0, or -1 with a Python error. */
static int
ordered_key(PyObject **key, PyObject **prev, Py_ssize_t *nrun)
{
	int same = *prev != NULL
		       ? PyObject_RichCompareBool(*prev, *key, Py_EQ)
		       : 1;
	PyObject *numbered;

	if (same == -1)
		return -1;
	*nrun += !same;
	Py_XSETREF(*prev, Py_NewRef(*key));
	numbered = Py_BuildValue("(nO)", *nrun, *key);
	Py_DECREF(*key);
	*key = numbered;
	return numbered != NULL ? 0 : -1;
}

/* Converts each call's arguments and sorts the calls by shape: returns a
 * dict {shape: [call index...]} in the order shapes first came (for an
 * actor's calls: one entry per run of consecutive calls of one shape, in
 * their order) (new reference), or NULL with a Python error. Calls that
 * cannot run get their error in r->errs or r->why. */
static PyObject *
group(run *r)
{
	PyObject *groups = PyDict_New(), *prev = NULL;
	Py_ssize_t nrun = 0;

	for (size_t i = 0; groups != NULL && i < r->n; i++) {
		const decode_call *c = &r->b->calls[i];
		PyObject *key, *idx, *num;

		if (r->fn == NULL) {
			r->why[i] = &r->fnerr;
			continue;
		}
		if (c->n_args + c->n_kwargs == 0) {
			werr_set(&r->errs[i], GILD__V1__CODE__INVALID_ARGUMENT,
			    NULL, "'%s' is batched: call it with its input "
			    "(at least one argument)", r->fname);
			continue;
		}
		if (job_build_args(c, &r->args[i], &r->kwargs[i],
			&r->errs[i]) == -1)
			continue;
		if ((key = shape_of(r->args[i], r->kwargs[i])) == NULL)
			goto fail;
		if (r->ordered && ordered_key(&key, &prev, &nrun) == -1) {
			Py_XDECREF(key);
			goto fail;
		}
		if ((idx = PyDict_GetItemWithError(groups, key)) == NULL) {
			if (PyErr_Occurred() || (idx = PyList_New(0)) == NULL ||
			    PyDict_SetItem(groups, key, idx) == -1) {
				Py_XDECREF(idx);
				Py_DECREF(key);
				goto fail;
			}
			Py_DECREF(idx); /* the dict holds it */
		}
		Py_DECREF(key);
		if ((num = PyLong_FromSize_t(i)) == NULL ||
		    PyList_Append(idx, num) == -1) {
			Py_XDECREF(num);
			goto fail;
		}
		Py_DECREF(num);
	}
	Py_XDECREF(prev);
	return groups;
fail:
	Py_XDECREF(prev);
	Py_DECREF(groups);
	return NULL;
}

int
batch_run(const app *a, const decode_msg *b, const job_sink *sink,
    uint8_t **out, size_t *outlen)
{
	size_t n = b->n_calls < b->n_job_ids ? b->n_calls : b->n_job_ids;
	run r = {.a = a, .b = b, .n = n,
	    .fname = n > 0 ? b->calls[0].function : "",
	    .ordered = n > 0 && b->calls[0].actor_id != 0};
	PyObject *groups = NULL, *key, *idx;
	Py_ssize_t pos = 0, g = 0;
	int rc = 0;

	r.what = r.ordered ? "method" : "function";
	/* Every call of a batch names the same function, or the same
	 * actor's method (the front end groups them so). */
	if (n > 0)
		r.fn = job_resolve(a, &b->calls[0], &r.fnerr);
	r.args = calloc(n ? n : 1, sizeof(*r.args));
	r.kwargs = calloc(n ? n : 1, sizeof(*r.kwargs));
	r.result = calloc(n ? n : 1, sizeof(*r.result));
	r.errs = calloc(n ? n : 1, sizeof(*r.errs));
	r.gerrs = calloc(n ? n : 1, sizeof(*r.gerrs));
	r.why = calloc(n ? n : 1, sizeof(*r.why));
	if (n == 0 || r.args == NULL || r.kwargs == NULL || r.result == NULL ||
	    r.errs == NULL || r.gerrs == NULL || r.why == NULL ||
	    (groups = group(&r)) == NULL) {
		PyErr_Clear();
		rc = -ENOMEM;
		goto done;
	}
	while (PyDict_Next(groups, &pos, &key, &idx))
		run_group(&r, idx, &r.gerrs[g++]);
	for (size_t i = 0; i < n && rc == 0; i++) {
		Gild__V1__Value *v = NULL;
		convert_pins *pins = NULL;
		werr e = {0};
		const werr *why = r.why[i] != NULL ? r.why[i] : &r.errs[i];

		if (r.why[i] == NULL && r.result[i] != NULL &&
		    convert_from_py(r.result[i], &v, &pins, &e) == -1) {
			e.code = GILD__V1__CODE__PYTHON_ERROR;
			werr_prefix(&e, "cannot send the result of '%s': ",
			    r.fname);
			why = &e;
		}
		rc = batch_reply(sink, i, n, b->job_ids[i], v, why, out, outlen);
		convert_value_free(v, pins);
		werr_clear(&e);
	}
done:
	for (size_t i = 0; i < n; i++) {
		if (r.args != NULL)
			Py_XDECREF(r.args[i]);
		if (r.kwargs != NULL)
			Py_XDECREF(r.kwargs[i]);
		if (r.result != NULL)
			Py_XDECREF(r.result[i]);
		if (r.errs != NULL)
			werr_clear(&r.errs[i]);
		if (r.gerrs != NULL)
			werr_clear(&r.gerrs[i]);
	}
	free(r.args);
	free(r.kwargs);
	free(r.result);
	free(r.errs);
	free(r.gerrs);
	free(r.why);
	Py_XDECREF(groups);
	Py_XDECREF(r.fn);
	werr_clear(&r.fnerr);
	return rc;
}

int
batch_fail(const uint8_t *buf, size_t len, const werr *e,
    const job_sink *sink, uint8_t **out, size_t *outlen)
{
	uint64_t ids[GILD_FUNCTION_BATCH_MAX];
	const uint8_t *p, *end;
	wire_field f;
	size_t n = 0;
	int rc = 0;

	if (wire_find(buf, len, GILD_WF_TO_WORKER_BATCH, &f) != 1 ||
	    f.type != WIRE_LEN ||
	    wire_find(f.data, f.len, GILD_WF_BATCH_JOB_IDS, &f) != 1 ||
	    f.type != WIRE_LEN)
		return 1;
	p = f.data;
	end = f.data + f.len;
	while (p < end && n < GILD_FUNCTION_BATCH_MAX &&
	       wire_get_varint(&p, end, &ids[n]) == 0)
		n++;
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = batch_reply(sink, i, n, ids[i], NULL, e, out, outlen);
	return rc;
}
