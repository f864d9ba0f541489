/* libgild: actors (gild_actor_*). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"

/* An actor id names the connection its server is on (the bits above
 * GILD_ACTOR_ID_BITS) and the server's own id for it (the rest). */
static gild_actor_id
actor_handle(size_t conn, uint64_t server_id)
{
	return (gild_actor_id) conn << GILD_ACTOR_ID_BITS | server_id;
}

static int
actor_conn(const gild_client *c, gild_actor_id a, uint64_t *server_id,
    gild_error *err)
{
	size_t conn = (size_t) (a >> GILD_ACTOR_ID_BITS);

	*server_id = a & ((UINT64_C(1) << GILD_ACTOR_ID_BITS) - 1);
	if (conn >= c->n_conns || *server_id == 0) {
		error_set(err, GILD_INVALID_ARGUMENT,
		    "%llu is not an actor id of this client",
		    (unsigned long long) a);
		return -1;
	}
	return (int) conn;
}

/* The server id in an actor request's int result. */
static int
actor_reply(int rc, gild_value *v, size_t conn, gild_actor_id *out,
    gild_error *err)
{
	if (rc == GILD_OK && codec_value_plain(&v, err) != GILD_OK)
		rc = err->code;
	else if (rc == GILD_OK && gild_value_kind(v) != GILD_INT)
		rc = error_set(err, GILD_INTERNAL,
		    "the server answered an actor request without an id");
	if (rc == GILD_OK)
		*out = actor_handle(conn, (uint64_t) gild_value_int(v));
	gild_value_free(v);
	return rc;
}

int
gild_actor_new(gild_client *c, const char *class_name, const gild_value *args,
    const gild_value *kwargs, const char *name, bool detached, int timeout_ms,
    gild_actor_id *out, gild_error *err)
{
	codec_call_opts o = {.actor_new = true, .name = name,
	    .detached = detached};
	codec_buf body = {0};
	gild_value *v = NULL;
	size_t conn;
	int rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	pthread_mutex_lock(&c->mtx);
	conn = c->rr % c->n_conns; /* spread actors over the servers */
	c->rr++;
	gild__unlock(c);
	if ((rc = codec_encode_call_opts(&body, class_name, args, kwargs, &o,
	    err)) == GILD_OK)
		rc = gild__round_trip_on(c, CALL_SYNC, &body, (int) conn, timeout_ms,
		    &v, err);
	codec_buf_fini(&body);
	return actor_reply(rc, v, conn, out, err);
}

/* ActorGet{with_class}'s [id, class name]: the id to *out, the name to
 * *class_name (new; NULL when v is a bare id, from a server that does not
 * know with_class). Takes v. */
static int
lookup_reply(int rc, gild_value *v, size_t conn, gild_actor_id *out,
    char **class_name, gild_error *err)
{
	const gild_value *id, *cls;
	const char *s;
	size_t len;

	/* Kept encoded for the Python client (gild__keep_encoded). */
	if (rc == GILD_OK && codec_value_plain(&v, err) != GILD_OK) {
		gild_value_free(v);
		return err->code;
	}
	if (rc != GILD_OK || gild_value_kind(v) != GILD_LIST)
		return actor_reply(rc, v, conn, out, err);
	if (gild_value_len(v) != 2 ||
	    gild_value_kind(id = gild_value_item(v, 0)) != GILD_INT ||
	    gild_value_kind(cls = gild_value_item(v, 1)) != GILD_STR) {
		gild_value_free(v);
		return error_set(err, GILD_INTERNAL,
		    "the server answered an actor lookup with neither an id "
		    "nor [id, class name]");
	}
	s = gild_value_str(cls, &len);
	if ((*class_name = strndup(s, len)) == NULL) {
		gild_value_free(v);
		return error_set(err, GILD_RESOURCE_EXHAUSTED, "out of memory");
	}
	*out = actor_handle(conn, (uint64_t) gild_value_int(id));
	gild_value_free(v);
	return GILD_OK;
}

int
gild_actor_lookup(gild_client *c, const char *name, int timeout_ms,
    gild_actor_id *out, char **class_name, gild_error *err)
{
	int rc = GILD_NOT_FOUND;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if (class_name != NULL)
		*class_name = NULL;
	/* Ask each server in turn: the name lives on one of them. */
	for (size_t i = 0; i < c->n_conns; i++) {
		codec_buf body = {0};
		gild_value *v = NULL;

		gild_error_clear(err);
		if ((rc = codec_encode_actor_get(&body, name,
		    class_name != NULL, err)) == GILD_OK)
			rc = gild__round_trip_on(c, CALL_SYNC, &body, (int) i,
			    timeout_ms, &v, err);
		codec_buf_fini(&body);
		rc = class_name != NULL
			 ? lookup_reply(rc, v, i, out, class_name, err)
			 : actor_reply(rc, v, i, out, err);
		if (rc != GILD_NOT_FOUND)
			break;
	}
	return rc;
}

int
gild_actor_get(gild_client *c, const char *name, int timeout_ms,
    gild_actor_id *out, gild_error *err)
{
	return gild_actor_lookup(c, name, timeout_ms, out, NULL, err);
}

int
gild_actor_destroy(gild_client *c, gild_actor_id a, int timeout_ms,
    gild_error *err)
{
	codec_buf body = {0};
	gild_value *v = NULL;
	uint64_t sid;
	int conn, rc;

	if (c == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL client");
	if ((conn = actor_conn(c, a, &sid, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	if ((rc = codec_encode_actor_destroy(&body, sid, err)) == GILD_OK)
		rc = gild__round_trip_on(c, CALL_SYNC, &body, conn, timeout_ms, &v,
		    err);
	codec_buf_fini(&body);
	if (rc == GILD_OK && codec_value_plain(&v, err) != GILD_OK)
		rc = err->code;
	else if (rc == GILD_OK && !gild_value_bool(v))
		rc = error_set(err, GILD_NOT_FOUND, "no actor %llu",
		    (unsigned long long) a);
	gild_value_free(v);
	return rc;
}

int
gild_actor_submit(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, gild_call_id *id,
    gild_error *err)
{
	return gild_actor_submit_timeout(c, a, method, args, kwargs, 0, id,
	    err);
}

int
gild_actor_submit_timeout(gild_client *c, gild_actor_id a,
    const char *method, const gild_value *args, const gild_value *kwargs,
    int timeout_ms, gild_call_id *id, gild_error *err)
{
	codec_call_opts o = {
	    .timeout_ms = timeout_ms > 0 ? (uint32_t) timeout_ms : 0};
	codec_buf body = {0};
	uint64_t cid;
	int conn, rc;

	if (c == NULL || id == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	if ((conn = actor_conn(c, a, &o.actor_id, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	if ((rc = codec_encode_call_opts(&body, method, args, kwargs, &o,
	    err)) == GILD_OK &&
	    (rc = gild__start(c, CALL_USER, &body, conn, &cid, NULL, err)) == GILD_OK)
		*id = cid;
	codec_buf_fini(&body);
	return rc;
}

int
gild_actor_stream_open(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, int window,
    int timeout_ms, gild_stream **out, gild_error *err)
{
	uint64_t sid;
	int conn;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((conn = actor_conn(c, a, &sid, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	return gild__stream_open(c, method, args, kwargs, sid, conn, window,
	    timeout_ms, out, err);
}

int
gild_actor_call(gild_client *c, gild_actor_id a, const char *method,
    const gild_value *args, const gild_value *kwargs, int timeout_ms,
    gild_value **out, gild_error *err)
{
	codec_call_opts o = {0};
	codec_buf body = {0};
	int conn, rc;

	if (c == NULL || out == NULL)
		return error_set(err, GILD_INVALID_ARGUMENT, "NULL argument");
	*out = NULL;
	if ((conn = actor_conn(c, a, &o.actor_id, err)) < 0)
		return GILD_INVALID_ARGUMENT;
	o.timeout_ms = gild__deadline_ms(timeout_ms);
	if ((rc = codec_encode_call_opts(&body, method, args, kwargs, &o,
	    err)) == GILD_OK)
		rc = gild__round_trip_on(c, CALL_SYNC, &body, conn,
		    gild__reply_wait_ms(timeout_ms), out, err);
	codec_buf_fini(&body);
	return rc;
}

