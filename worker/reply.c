/* reply: FromWorker messages (hello, startup error, result, error), packed
 * with protobuf-c into one buffer each. */
#include "reply.h"

#include <errno.h>
#include <stdlib.h>

#include "frame.h"
#include "pyconv.h"
#include "worker.pb-c.h"

/* Into a frame_alloc buffer: a large result is packed straight into the
 * memfd that carries it to the front end, with REPLY_END_ROOM bytes to
 * spare, so the fields added at a job's end do not copy it. That copy is
 * made with the GIL released when large (the values point into Python
 * objects pinned by convert_from_py: nothing they hold goes away). */
static int
pack(const Gild__Worker__V1__FromWorker *m, uint8_t **out, size_t *len)
{
	size_t n = gild__worker__v1__from_worker__get_packed_size(m);
	uint8_t *buf = frame_alloc(n + REPLY_END_ROOM);

	if (buf == NULL)
		return -ENOMEM;
	if (n >= PYCONV_BIG_COPY && PyGILState_Check()) {
		Py_BEGIN_ALLOW_THREADS
		*len = gild__worker__v1__from_worker__pack(m, buf);
		Py_END_ALLOW_THREADS
	} else {
		*len = gild__worker__v1__from_worker__pack(m, buf);
	}
	*out = buf;
	return 0;
}

/* How many of the n methods batch (parallel to them) are batched. */
static size_t
count_batched(const uint32_t *batch, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += batch[i] > 0;
	return k;
}

int
reply_hello(int32_t pid, const app *a, const char *python_version,
    int gil_enabled, uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__Hello h = GILD__WORKER__V1__HELLO__INIT;
	Gild__Worker__V1__FunctionOptions *fo = NULL, **fop = NULL;
	Gild__Worker__V1__ActorClass *ac = NULL, **acp = NULL;
	Gild__Worker__V1__FunctionOptions *mo = NULL, **mop = NULL;
	char **functions = app_names(a);
	const app_options *options = app_function_options(a);
	size_t n_functions = app_count(a), n_actors = app_actor_count(a);
	size_t n_batched = 0;
	int rc = -ENOMEM;

	fo = calloc(n_functions + 1, sizeof(*fo));
	fop = calloc(n_functions + 1, sizeof(*fop));
	ac = calloc(n_actors + 1, sizeof(*ac));
	acp = calloc(n_actors + 1, sizeof(*acp));
	if (fo == NULL || fop == NULL || ac == NULL || acp == NULL)
		goto done;
	for (size_t i = 0; i < n_actors; i++) {
		gild__worker__v1__actor_class__init(&ac[i]);
		ac[i].name = app_actor_names(a)[i];
		ac[i].max_restarts = app_actor_restarts(a)[i];
		ac[i].concurrency = app_actor_concurrency(a)[i];
		ac[i].methods = (char **) app_actor_methods(a, i,
		    &ac[i].n_methods);
		n_batched += count_batched(app_actor_method_batch(a, i),
		    ac[i].n_methods);
		acp[i] = &ac[i];
	}
	/* The batched methods' options: one array for all classes. */
	mo = calloc(n_batched + 1, sizeof(*mo));
	mop = calloc(n_batched + 1, sizeof(*mop));
	if (mo == NULL || mop == NULL)
		goto done;
	for (size_t i = 0, k = 0; i < n_actors; i++) {
		const uint32_t *batch = app_actor_method_batch(a, i);

		ac[i].method_options = &mop[k];
		for (size_t j = 0; j < ac[i].n_methods; j++) {
			if (batch[j] == 0)
				continue;
			gild__worker__v1__function_options__init(&mo[k]);
			mo[k].name = ac[i].methods[j];
			mo[k].batch = batch[j];
			mop[k] = &mo[k];
			ac[i].n_method_options++;
			k++;
		}
	}
	h.actor_classes = acp;
	h.n_actor_classes = n_actors;
	/* Only functions that declare something: most declare nothing. */
	for (size_t i = 0; i < n_functions; i++) {
		if (options[i].timeout_ms == 0 && options[i].retries == 0 &&
		    options[i].batch == 0 && options[i].concurrency <= 1)
			continue;
		gild__worker__v1__function_options__init(&fo[h.n_options]);
		fo[h.n_options].name = functions[i];
		fo[h.n_options].timeout_ms = options[i].timeout_ms;
		fo[h.n_options].retries = options[i].retries;
		fo[h.n_options].batch = options[i].batch;
		fo[h.n_options].batch_wait_us = options[i].batch_wait_us;
		fo[h.n_options].concurrency = options[i].concurrency;
		fop[h.n_options] = &fo[h.n_options];
		h.n_options++;
	}
	h.options = fop;

	h.pid = pid;
	h.functions = functions;
	h.n_functions = n_functions;
	h.python_version = (char *) python_version;
	h.gil_enabled = gil_enabled != 0;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_HELLO;
	m.hello = &h;
	rc = pack(&m, out, len);
done:
	free(fo);
	free(fop);
	free(mo);
	free(mop);
	free(ac);
	free(acp);
	return rc;
}

int
reply_startup_error(const werr *e, bool retry, uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__StartupError se =
	    GILD__WORKER__V1__STARTUP_ERROR__INIT;
	Gild__V1__Error err = GILD__V1__ERROR__INIT;

	werr_to_proto(e, &err);
	se.error = &err;
	se.retry = retry;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_STARTUP_ERROR;
	m.startup_error = &se;
	return pack(&m, out, len);
}

int
reply_error(uint64_t job_id, const werr *e, uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__V1__Error err = GILD__V1__ERROR__INIT;

	werr_to_proto(e, &err);
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_ERROR;
	m.error = &err;
	return pack(&m, out, len);
}

int
reply_result(
    uint64_t job_id, const Gild__V1__Value *result, uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;

	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_RESULT;
	m.result = (Gild__V1__Value *) result;
	return pack(&m, out, len);
}

int
reply_chunk(uint64_t job_id, uint64_t seq, const Gild__V1__Value *value,
    uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__Chunk c = GILD__WORKER__V1__CHUNK__INIT;

	c.seq = seq;
	c.value = (Gild__V1__Value *) value;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_CHUNK;
	m.chunk = &c;
	return pack(&m, out, len);
}

int
reply_stream_end(uint64_t job_id, uint64_t count, const werr *e,
    uint8_t **out, size_t *len)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__StreamEnd end = GILD__WORKER__V1__STREAM_END__INIT;
	Gild__V1__Error err = GILD__V1__ERROR__INIT;

	end.count = count;
	if (e != NULL) {
		werr_to_proto(e, &err);
		end.error = &err;
	}
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_STREAM_END;
	m.stream_end = &end;
	return pack(&m, out, len);
}

size_t
reply_taken_back(uint64_t job_id, int returned, uint8_t *buf)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__TakenBack tb = GILD__WORKER__V1__TAKEN_BACK__INIT;

	tb.returned = returned != 0;
	m.job_id = job_id;
	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_TAKEN_BACK;
	m.taken_back = &tb;
	return gild__worker__v1__from_worker__pack(&m, buf);
}
