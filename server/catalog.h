/* catalog: what the app exports, as the workers' Hellos say: its
 * functions with their @gild.function options, its @gild.actor classes,
 * its Python. Each distinct table is kept once, shared by every worker
 * whose first Hello carried it, for as long as one of them lives, so that
 * during a reload the old workers' calls keep the old code's options
 * (a function that became batched is not sent as a batch to old code, nor
 * the reverse). The newest table is what new requests are checked against.
 * Pure bookkeeping: no I/O. */
#ifndef GILD_SERVER_CATALOG_H
#define GILD_SERVER_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct catalog catalog;
typedef struct catalog_table catalog_table;

/* What the app declared with @gild.function for one function; zeroes when
 * nothing, or not known. */
typedef struct catalog_options {
	uint32_t timeout_ms;    /* 0: none */
	uint32_t retries;
	uint32_t batch;         /* 0 or 1: not batched */
	uint32_t batch_wait_us;
	uint32_t concurrency;   /* 0 or 1: one call at a time */
} catalog_options;

/* What the app declared with @gild.actor for one class. */
typedef struct catalog_actor_options {
	uint32_t max_restarts;
	uint32_t concurrency;   /* calls of one instance at once, 1 to
				   GILD_ACTOR_CONCURRENCY_MAX */
} catalog_actor_options;

/* Returns 0 and a new catalog in *out (free with catalog_free), or
 * -ENOMEM. */
int catalog_new(catalog **out);
void catalog_free(catalog *c);

/* Takes the table of a gild.worker.v1.Hello (from the template or a
 * worker): the newest table from now on. One equal to the newest (its pid
 * aside) is that table, shared. Returns it, held once for the caller (let
 * go with catalog_release), with the Hello's pid in *pid; NULL when the
 * Hello is malformed or memory ran out. */
catalog_table *catalog_take(catalog *c, const uint8_t *hello, size_t len,
    int32_t *pid);
/* Lets go of t (NULL: nothing); the last holder frees it, unless it is the
 * newest. */
void catalog_release(catalog *c, catalog_table *t);

/* The newest table, or NULL before the first Hello. */
const catalog_table *catalog_newest(const catalog *c);

/* Of table t (NULL: none yet, zeroes and NULLs): its functions (sorted,
 * borrowed; *n their count), whether it exports function `name` (len
 * bytes), the options of that function,
 * whether it has @gild.actor class `name` (and its options), its
 * Python version and whether that Python runs with the GIL. */
const char *const *catalog_functions(const catalog_table *t, size_t *n);
bool catalog_has_function(const catalog_table *t, const char *name,
    size_t len);
catalog_options catalog_function_options(const catalog_table *t,
    const char *name, size_t len);
bool catalog_actor_class(const catalog_table *t, const char *name, size_t len,
    catalog_actor_options *out);
/* "cls.name" when @gild.actor class cls has public method name (len
 * bytes), as the Hello listed them (borrowed from t), else NULL. */
const char *catalog_method(const catalog_table *t, const char *cls,
    const char *name, size_t len);
/* The batch size @gild.function(batch=N) declares for public method name
 * (len bytes) of class cls, at most GILD_FUNCTION_BATCH_MAX; 0 when it is
 * not batched (or no such method). */
uint32_t catalog_method_batch(const catalog_table *t, const char *cls,
    const char *name, size_t len);
const char *catalog_python_version(const catalog_table *t);
bool catalog_gil_enabled(const catalog_table *t);

/* How many tables are kept (for tests: old ones go with their workers). */
size_t catalog_count(const catalog *c);

#endif
