/* statusjson: a Status message as a JSON object (see statusjson.h). */
#include "statusjson.h"

#include <stdlib.h>
#include <string.h>

/* s as a JSON string. jansson takes only UTF-8: when s is not, a copy with
 * each byte that does not start a whole UTF-8 sequence replaced by U+FFFD
 * is used. */
static json_t *
text(const char *s)
{
	json_t *j;
	size_t n, o = 0;
	char *fixed;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return j;
	n = strlen(s);
	if ((fixed = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char) s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3
		    : c >= 0xc0 ? 2 : 0;
		json_t *one = len > 1 && i + len <= n ?
		    json_stringn(s + i, len) : NULL;

		if (len == 1 || one != NULL) {
			memcpy(fixed + o, s + i, len);
			o += len;
			i += len;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
		json_decref(one);
	}
	j = json_stringn(fixed, o);
	free(fixed);
	return j;
}

/* Sets obj[key] = val, taking val (NULL: out of memory). 0 or -1. */
static int
set(json_t *obj, const char *key, json_t *val)
{
	return json_object_set_new(obj, key, val);
}

static json_t *
count(uint64_t v)
{
	return json_integer((json_int_t) v);
}

static json_t *
worker(const Gild__V1__WorkerStatus *w)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= set(o, "slot", count(w->slot));
	rc |= set(o, "pid", json_integer(w->pid));
	rc |= set(o, "state", text(w->state));
	rc |= set(o, "jobs_done", count(w->jobs_done));
	rc |= set(o, "restarts", count(w->restarts));
	rc |= set(o, "recycles", count(w->recycles));
	rc |= set(o, "waiting", count(w->waiting));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
statusjson_object(const Gild__V1__Status *st)
{
	json_t *o = json_object(), *fns = json_array(), *ws = json_array();
	json_t *times = json_object();
	int rc = 0;

	if (o == NULL || fns == NULL || ws == NULL || times == NULL)
		goto fail;
	for (size_t i = 0; i < st->n_functions; i++)
		rc |= json_array_append_new(fns, text(st->functions[i]));
	for (size_t i = 0; i < st->n_workers; i++)
		rc |= json_array_append_new(ws, worker(st->workers[i]));
	for (size_t i = 0; i < st->n_service_times; i++) {
		const Gild__V1__ServiceTime *t = st->service_times[i];
		json_t *name = text(t->function);

		rc |= name == NULL ? -1 : set(times, json_string_value(name),
		    count(t->us));
		json_decref(name);
	}
	rc |= set(o, "server_version", text(st->server_version));
	rc |= set(o, "app", text(st->app));
	rc |= set(o, "runtime", text(st->runtime));
	rc |= set(o, "functions", fns);
	rc |= set(o, "workers", ws);
	rc |= set(o, "queued", count(st->queued));
	rc |= set(o, "in_flight", count(st->in_flight));
	rc |= set(o, "calls_total", count(st->calls_total));
	rc |= set(o, "uptime_s", json_real(st->uptime_s));
	rc |= set(o, "python_version", text(st->python_version));
	rc |= set(o, "state", text(st->state));
	rc |= set(o, "threads", count(st->threads));
	rc |= set(o, "gil_enabled", json_boolean(st->gil_enabled));
	rc |= set(o, "shm_bytes", count(st->shm_bytes));
	rc |= set(o, "shm_requests", count(st->shm_requests));
	rc |= set(o, "shm_replies", count(st->shm_replies));
	rc |= set(o, "shm_refused", count(st->shm_refused));
	rc |= set(o, "shm_over_budget", count(st->shm_over_budget));
	rc |= set(o, "service_us", times);
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
fail:
	json_decref(o);
	json_decref(fns);
	json_decref(ws);
	json_decref(times);
	return NULL;
}

char *
statusjson_dump(const json_t *v, int indent)
{
	size_t flags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(17);

	if (indent > 0)
		flags |= JSON_INDENT(indent > 31 ? 31 : indent);
	return json_dumps(v, flags);
}
