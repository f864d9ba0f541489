/* gild._native: the Client's actor methods. */
#include "native.h"

/* actor_new(class_name, args, kwargs=None, name=None, detached=False,
 * timeout_ms=-1) -> outcome with the actor id */
PyObject *
client_actor_new(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"class_name", "args", "kwargs", "name",
	    "detached", "timeout_ms", NULL};
	PyObject *a, *k = Py_None, *out;
	const char *cls, *name = NULL;
	int detached = 0, timeout = -1, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_actor_id aid = 0;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|Ozpi:actor_new", kwlist,
	        &cls, &a, &k, &name, &detached, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_new(c, cls, va, vk, name, detached != 0,
	             timeout, &aid, &err);
	         gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	out = outcome_py(
	    rc, rc == GILD_OK ? PyLong_FromUnsignedLongLong(aid) : NULL, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_get(name, timeout_ms=-1) -> outcome with (actor id, class name),
 * the class name None from a server too old to say */
PyObject *
client_actor_get(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "timeout_ms", NULL};
	const char *name;
	char *cls = NULL;
	int timeout = -1, rc;
	gild_error err = {0};
	gild_actor_id aid = 0;
	PyObject *out, *v = NULL;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(
	        args, kw, "s|i:actor_get", kwlist, &name, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_lookup(c, name, timeout, &aid, &cls, &err));
	client_leave(self);
	if (rc == GILD_OK)
		v = cls != NULL ? Py_BuildValue("(Ks)", (unsigned long long) aid,
				      cls)
				: Py_BuildValue("(KO)", (unsigned long long) aid,
				      Py_None);
	free(cls);
	if (rc == GILD_OK && v == NULL)
		return NULL;
	out = outcome_py(rc, v, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_destroy(actor_id, timeout_ms=-1) -> outcome with value True */
PyObject *
client_actor_destroy(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"actor_id", "timeout_ms", NULL};
	uint64_t aid;
	int timeout = -1, rc;
	gild_error err = {0};
	PyObject *out;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i:actor_destroy", kwlist,
	        conv_id, &aid, &timeout))
		return NULL;
	if (client_enter(self, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_destroy(c, aid, timeout, &err));
	client_leave(self);
	out = outcome_py(rc, rc == GILD_OK ? Py_NewRef(Py_True) : NULL, &err);
	gild_error_clear(&err);
	return out;
}

/* actor_submit(actor_id, method, args, kwargs=None, timeout_ms=0) ->
 * call id */
PyObject *
client_actor_submit(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "actor_id", "method", "args", "kwargs", "timeout_ms", NULL};
	PyObject *a, *k = Py_None;
	const char *method;
	uint64_t aid;
	int timeout = 0, rc;
	gild_value *va, *vk;
	gild_error err = {0};
	gild_call_id id = 0;
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&sO|Oi:actor_submit",
	        kwlist, conv_id, &aid, &method, &a, &k, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(
	    rc = gild_actor_submit_timeout(c, aid, method, va, vk, timeout,
	        &id, &err);
	    gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	if (rc == GILD_OK)
		client_count_sent(self, 1);
	return call_id_or_raise(rc, &err, id);
}

/* actor_call(actor_id, method, args, kwargs=None, timeout_ms=-1) -> outcome
 */
PyObject *
client_actor_call(client_obj *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	    "actor_id", "method", "args", "kwargs", "timeout_ms", NULL};
	PyObject *a, *k = Py_None, *out;
	const char *method;
	uint64_t aid;
	int timeout = -1, rc;
	gild_value *va, *vk, *v = NULL;
	gild_error err = {0};
	gild_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&sO|Oi:actor_call", kwlist,
	        conv_id, &aid, &method, &a, &k, &timeout))
		return NULL;
	if (call_begin(self, a, k, &va, &vk, &c) == -1)
		return NULL;
	UNLOCKED(rc = gild_actor_call(
	             c, aid, method, va, vk, timeout, &v, &err);
	         gild_value_free(va); gild_value_free(vk));
	client_leave(self);
	out = outcome_value(rc, v, &err, self->pickle);
	gild_error_clear(&err);
	return out;
}
