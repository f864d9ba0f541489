/* catalog: what the app exports, per distinct Hello (catalog.h). */
#include "catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gild_limits.h"
#include "worker.pb-c.h"

struct catalog_table {
	uint8_t *key;      /* its Hello without the pid, packed: to compare */
	size_t key_len;
	char **functions;
	catalog_options *options; /* [nfunctions] */
	size_t nfunctions;
	char **classes;
	catalog_actor_options *class_options; /* [nclasses] */
	size_t nclasses;
	char **methods;     /* "Class.method", every class's public ones */
	uint32_t *method_batch; /* [nmethods]: @gild.function(batch=N) of
				   each, 0: not batched */
	size_t nmethods;
	char *python_version;
	bool gil_enabled;
	int holders;       /* workers (and takers) holding it */
	catalog_table *next;
};

struct catalog {
	catalog_table *all;
	catalog_table *newest;
	size_t count;
};

int
catalog_new(catalog **out)
{
	return (*out = calloc(1, sizeof(**out))) != NULL ? 0 : -ENOMEM;
}

static void
table_free(catalog_table *t)
{
	for (size_t i = 0; i < t->nfunctions; i++)
		free(t->functions[i]);
	for (size_t i = 0; i < t->nclasses; i++)
		free(t->classes[i]);
	for (size_t i = 0; i < t->nmethods; i++)
		free(t->methods[i]);
	free(t->methods);
	free(t->method_batch);
	free(t->functions);
	free(t->options);
	free(t->classes);
	free(t->class_options);
	free(t->python_version);
	free(t->key);
	free(t);
}

/* Unlinks and frees t if nothing holds it and it is not the newest. */
static void
maybe_free(catalog *c, catalog_table *t)
{
	if (t->holders > 0 || t == c->newest)
		return;
	for (catalog_table **pp = &c->all; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			c->count--;
			break;
		}
	}
	table_free(t);
}

void
catalog_free(catalog *c)
{
	if (c == NULL)
		return;
	while (c->all != NULL) {
		catalog_table *t = c->all;
		c->all = t->next;
		table_free(t);
	}
	free(c);
}

/* The batch size a method's options declare, within the protocol's bound
 * (0: not batched). */
static uint32_t
method_batch(const Gild__Worker__V1__FunctionOptions *o)
{
	return o->batch > GILD_FUNCTION_BATCH_MAX ? GILD_FUNCTION_BATCH_MAX
						  : o->batch;
}

/* A table of Hello h (its key: key_len bytes, taken), or NULL. */
static catalog_table *
table_of(const Gild__Worker__V1__Hello *h, uint8_t *key, size_t key_len)
{
	catalog_table *t = calloc(1, sizeof(*t));
	size_t nf = h->n_functions, nc = h->n_actor_classes, nm = 0;

	if (t == NULL) {
		free(key);
		return NULL;
	}
	t->key = key;
	t->key_len = key_len;
	t->functions = calloc(nf + 1, sizeof(*t->functions));
	t->options = calloc(nf + 1, sizeof(*t->options));
	t->classes = calloc(nc + 1, sizeof(*t->classes));
	t->class_options = calloc(nc + 1, sizeof(*t->class_options));
	for (size_t i = 0; i < nc; i++)
		nm += h->actor_classes[i]->n_methods;
	t->methods = calloc(nm + 1, sizeof(*t->methods));
	t->method_batch = calloc(nm + 1, sizeof(*t->method_batch));
	t->python_version = strdup(h->python_version);
	if (t->functions == NULL || t->options == NULL || t->classes == NULL ||
	    t->class_options == NULL || t->methods == NULL ||
	    t->method_batch == NULL || t->python_version == NULL)
		goto fail;
	for (; t->nfunctions < nf; t->nfunctions++) {
		size_t i = t->nfunctions;
		if ((t->functions[i] = strdup(h->functions[i])) == NULL)
			goto fail;
		for (size_t k = 0; k < h->n_options; k++) {
			const Gild__Worker__V1__FunctionOptions *o =
			    h->options[k];
			if (strcmp(o->name, h->functions[i]) != 0)
				continue;
			t->options[i] = (catalog_options){
			    .timeout_ms = o->timeout_ms,
			    .retries = o->retries,
			    .batch = o->batch,
			    .batch_wait_us = o->batch_wait_us,
			    .concurrency = o->concurrency};
		}
	}
	for (; t->nclasses < nc; t->nclasses++) {
		size_t i = t->nclasses;
		uint32_t conc;

		if ((t->classes[i] = strdup(h->actor_classes[i]->name)) == NULL)
			goto fail;
		t->class_options[i].max_restarts =
		    h->actor_classes[i]->max_restarts;
		/* 0 (a worker that does not say) is one at a time. */
		conc = h->actor_classes[i]->concurrency;
		t->class_options[i].concurrency =
		    conc < 1 ? 1
		    : conc > GILD_ACTOR_CONCURRENCY_MAX
			? GILD_ACTOR_CONCURRENCY_MAX
			: conc;
		for (size_t k = 0; k < h->actor_classes[i]->n_methods; k++) {
			const Gild__Worker__V1__ActorClass *ac =
			    h->actor_classes[i];
			const char *m = ac->methods[k];
			size_t len = strlen(t->classes[i]) + 1 + strlen(m) + 1;
			char *s = malloc(len);

			if (s == NULL)
				goto fail;
			snprintf(s, len, "%s.%s", t->classes[i], m);
			for (size_t o = 0; o < ac->n_method_options; o++)
				if (strcmp(ac->method_options[o]->name, m) == 0)
					t->method_batch[t->nmethods] =
					    method_batch(ac->method_options[o]);
			t->methods[t->nmethods++] = s;
		}
	}
	t->gil_enabled = h->gil_enabled;
	return t;
fail:
	table_free(t);
	return NULL;
}

catalog_table *
catalog_take(catalog *c, const uint8_t *hello, size_t len, int32_t *pid)
{
	Gild__Worker__V1__Hello *h;
	catalog_table *t = NULL;
	uint8_t *key;
	size_t key_len;

	if ((h = gild__worker__v1__hello__unpack(NULL, len, hello)) == NULL)
		return NULL;
	*pid = h->pid;
	h->pid = 0; /* the table is the same whichever worker sent it */
	key_len = gild__worker__v1__hello__get_packed_size(h);
	if ((key = malloc(key_len ? key_len : 1)) == NULL)
		goto done;
	gild__worker__v1__hello__pack(h, key);
	if (c->newest != NULL && c->newest->key_len == key_len &&
	    memcmp(c->newest->key, key, key_len) == 0) {
		free(key);
		t = c->newest;
	} else if ((t = table_of(h, key, key_len)) != NULL) {
		catalog_table *old = c->newest;
		t->next = c->all;
		c->all = t;
		c->count++;
		c->newest = t;
		if (old != NULL)
			maybe_free(c, old);
	}
	if (t != NULL)
		t->holders++;
done:
	gild__worker__v1__hello__free_unpacked(h, NULL);
	return t;
}

void
catalog_release(catalog *c, catalog_table *t)
{
	if (t == NULL)
		return;
	t->holders--;
	maybe_free(c, t);
}

const catalog_table *
catalog_newest(const catalog *c)
{
	return c->newest;
}

const char *const *
catalog_functions(const catalog_table *t, size_t *n)
{
	*n = t != NULL ? t->nfunctions : 0;
	return t != NULL ? (const char *const *) t->functions : NULL;
}

/* The index of function `name` (len bytes) in t, or -1. */
static long
find_function(const catalog_table *t, const char *name, size_t len)
{
	for (size_t i = 0; t != NULL && i < t->nfunctions; i++)
		if (strlen(t->functions[i]) == len &&
		    memcmp(t->functions[i], name, len) == 0)
			return (long) i;
	return -1;
}

bool
catalog_has_function(const catalog_table *t, const char *name, size_t len)
{
	return find_function(t, name, len) >= 0;
}

catalog_options
catalog_function_options(const catalog_table *t, const char *name,
    size_t len)
{
	long i = find_function(t, name, len);

	return i >= 0 ? t->options[i] : (catalog_options){0};
}

bool
catalog_actor_class(const catalog_table *t, const char *name, size_t len,
    catalog_actor_options *out)
{
	for (size_t i = 0; t != NULL && i < t->nclasses; i++) {
		if (strlen(t->classes[i]) == len &&
		    memcmp(t->classes[i], name, len) == 0) {
			*out = t->class_options[i];
			return true;
		}
	}
	return false;
}

/* The index of public method name (len bytes) of class cls in t, or -1. */
static long
find_method(const catalog_table *t, const char *cls, const char *name,
    size_t len)
{
	size_t clen = strlen(cls);

	for (size_t i = 0; t != NULL && i < t->nmethods; i++) {
		const char *m = t->methods[i];

		if (strncmp(m, cls, clen) == 0 && m[clen] == '.' &&
		    strlen(m + clen + 1) == len &&
		    memcmp(m + clen + 1, name, len) == 0)
			return (long) i;
	}
	return -1;
}

const char *
catalog_method(const catalog_table *t, const char *cls, const char *name,
    size_t len)
{
	long i = find_method(t, cls, name, len);

	return i >= 0 ? t->methods[i] : NULL;
}

uint32_t
catalog_method_batch(const catalog_table *t, const char *cls,
    const char *name, size_t len)
{
	long i = find_method(t, cls, name, len);

	return i >= 0 ? t->method_batch[i] : 0;
}

const char *
catalog_python_version(const catalog_table *t)
{
	return t != NULL ? t->python_version : NULL;
}

bool
catalog_gil_enabled(const catalog_table *t)
{
	return t != NULL && t->gil_enabled;
}

size_t
catalog_count(const catalog *c)
{
	return c->count;
}
