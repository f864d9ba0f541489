/* app: importing the served app (a .py file or a module name) and the
 * table of functions it exports. */
#ifndef GILD_WORKER_APP_H
#define GILD_WORKER_APP_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "werr.h"

typedef struct app app;

/* What @gild.function(...) declared for an exported function (zeroes when
 * it was not decorated). */
typedef struct app_options {
	uint32_t timeout_ms;
	uint32_t retries;
	uint32_t batch;
	uint32_t batch_wait_us;
	uint32_t concurrency;
	int is_async; /* an async def function: runs on the asyncio loop */
} app_options;

/* Needs the GIL. Imports spec: a path (ends in ".py" or has a '/') is run as
 * a module named after the file's stem, with its directory put first in
 * sys.path; anything else is imported by module name with the current
 * directory put first in sys.path. Exports are the public (no leading '_')
 * callables, classes and lifecycle hooks (__gild_hook__) excluded, whose
 * __module__ is the app module's name.
 * Returns 0 and a new app in *out (caller frees with app_free), or -1 with
 * *err: NOT_FOUND when the file or module does not exist, PYTHON_ERROR
 * (type, message, traceback) when importing it raised. */
int app_load(app **out, const char *spec, werr *err);

/* Needs the GIL (drops Python references). Accepts NULL. */
void app_free(app *a);

/* Returns the exported callable called name (borrowed, valid until
 * app_free), or NULL if there is none. */
PyObject *app_function(const app *a, const char *name);

/* The exported names, sorted (borrowed, valid until app_free). */
size_t app_count(const app *a);
char **app_names(const app *a);
/* Their options, parallel to app_names (borrowed). */
const app_options *app_function_options(const app *a);
/* The options of function name, or NULL. */
const app_options *app_options_of(const app *a, const char *name);
/* @gild.actor classes: by name (borrowed, NULL if none); their sorted names
 * and, parallel to those, their max_restarts and concurrency. */
PyObject *app_actor_class(const app *a, const char *name);
size_t app_actor_count(const app *a);
char **app_actor_names(const app *a);
const uint32_t *app_actor_restarts(const app *a);
const uint32_t *app_actor_concurrency(const app *a);
/* The public methods of the i-th of them (sorted, borrowed; *n of them). */
char *const *app_actor_methods(const app *a, size_t i, size_t *n);
/* Parallel to those methods: each one's @gild.function(batch=N), 0 when it
 * is not batched (borrowed). */
const uint32_t *app_actor_method_batch(const app *a, size_t i);

/* Whether any exported function is an async def. */
int app_has_async(const app *a);

/* The spec app_load was given (borrowed). */
const char *app_spec(const app *a);

#endif
