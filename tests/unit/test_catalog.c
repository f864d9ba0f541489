/* Tests of server/catalog.c: the app's tables as the workers' Hellos say,
 * one per distinct Hello, kept while a worker holds it. */
#include "server/catalog.h"

#include "gild_limits.h"
#include "worker.pb-c.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include "test_main.h"

/* A packed Hello from pid exporting f (batched when batch > 1) and g, and
 * actor class Counter with public methods get and incr (and, with batch >
 * 1, a concurrency past GILD_ACTOR_CONCURRENCY_MAX and incr batched past
 * GILD_FUNCTION_BATCH_MAX); *len its size (free() it). */
static uint8_t *
hello(int32_t pid, uint32_t batch, size_t *len)
{
	Gild__Worker__V1__Hello h = GILD__WORKER__V1__HELLO__INIT;
	Gild__Worker__V1__FunctionOptions o =
	    GILD__WORKER__V1__FUNCTION_OPTIONS__INIT;
	Gild__Worker__V1__FunctionOptions *op = &o;
	Gild__Worker__V1__ActorClass a = GILD__WORKER__V1__ACTOR_CLASS__INIT;
	Gild__Worker__V1__ActorClass *ap = &a;
	Gild__Worker__V1__FunctionOptions mo =
	    GILD__WORKER__V1__FUNCTION_OPTIONS__INIT;
	Gild__Worker__V1__FunctionOptions *mop = &mo;
	char *fns[] = {"f", "g"}, *methods[] = {"get", "incr"};
	uint8_t *buf;

	h.pid = pid;
	h.n_functions = 2;
	h.functions = fns;
	h.python_version = "3.11.2";
	o.name = "f";
	o.batch = batch;
	o.timeout_ms = 1500;
	h.n_options = 1;
	h.options = &op;
	a.name = "Counter";
	a.max_restarts = 3;
	a.concurrency = batch > 1 ? 100000 : 0;
	a.n_methods = 2;
	a.methods = methods;
	mo.name = "incr";
	mo.batch = GILD_FUNCTION_BATCH_MAX + 1;
	a.n_method_options = batch > 1;
	a.method_options = &mop;
	h.n_actor_classes = 1;
	h.actor_classes = &ap;
	*len = gild__worker__v1__hello__get_packed_size(&h);
	buf = malloc(*len);
	gild__worker__v1__hello__pack(&h, buf);
	return buf;
}

/* Two workers of one app share its table; a reload's new table is the
 * newest while the old workers keep theirs, which goes with the last of
 * them; what each says is what its Hello said. */
static void
test_tables(void)
{
	catalog *c;
	catalog_table *old1, *old2, *fresh, *again;
	uint8_t *h1, *h2, *h3;
	size_t l1, l2, l3, n;
	int32_t pid = 0;
	catalog_actor_options ao = {0};

	CU_ASSERT_EQUAL_FATAL(catalog_new(&c), 0);
	CU_ASSERT_PTR_NULL(catalog_newest(c));
	CU_ASSERT_PTR_NULL(catalog_functions(NULL, &n));
	CU_ASSERT_EQUAL(n, 0);
	h1 = hello(101, 0, &l1);
	h2 = hello(102, 0, &l2); /* the same app, another worker */
	h3 = hello(103, 8, &l3); /* reloaded: f is batched now */

	CU_ASSERT_PTR_NOT_NULL_FATAL(old1 = catalog_take(c, h1, l1, &pid));
	CU_ASSERT_EQUAL(pid, 101);
	CU_ASSERT_PTR_EQUAL(old2 = catalog_take(c, h2, l2, &pid), old1);
	CU_ASSERT_EQUAL(pid, 102);
	CU_ASSERT_EQUAL(catalog_count(c), 1);
	CU_ASSERT_EQUAL(catalog_function_options(old1, "f", 1).batch, 0);
	CU_ASSERT_EQUAL(catalog_function_options(old1, "f", 1).timeout_ms,
	    1500);
	CU_ASSERT_EQUAL(catalog_function_options(old1, "g", 1).timeout_ms, 0);
	CU_ASSERT_EQUAL(catalog_function_options(old1, "ff", 1).timeout_ms,
	    1500); /* len counts, not the NUL */
	CU_ASSERT_EQUAL(catalog_function_options(old1, "h", 1).timeout_ms, 0);
	CU_ASSERT_TRUE(catalog_has_function(old1, "g", 1));
	CU_ASSERT_FALSE(catalog_has_function(old1, "h", 1));
	CU_ASSERT_FALSE(catalog_has_function(old1, "gg", 2));
	CU_ASSERT_FALSE(catalog_has_function(NULL, "g", 1));
	CU_ASSERT_TRUE(catalog_actor_class(old1, "Counter", 7, &ao));
	CU_ASSERT_EQUAL(ao.max_restarts, 3);
	CU_ASSERT_EQUAL(ao.concurrency, 1); /* the Hello said none */
	CU_ASSERT_FALSE(catalog_actor_class(old1, "Count", 5, &ao));
	/* Methods: only those the Hello listed, of that class, whole. */
	CU_ASSERT_STRING_EQUAL(catalog_method(old1, "Counter", "incr", 4),
	    "Counter.incr");
	CU_ASSERT_STRING_EQUAL(catalog_method(old1, "Counter", "getx", 3),
	    "Counter.get"); /* len counts, not the NUL */
	CU_ASSERT_PTR_NULL(catalog_method(old1, "Counter", "ge", 2));
	CU_ASSERT_PTR_NULL(catalog_method(old1, "Counter", "get\0x", 5));
	CU_ASSERT_PTR_NULL(catalog_method(old1, "Count", "get", 3));
	CU_ASSERT_PTR_NULL(catalog_method(old1, "Counter.get", "", 0));
	CU_ASSERT_PTR_NULL(catalog_method(NULL, "Counter", "get", 3));
	CU_ASSERT_EQUAL(catalog_method_batch(old1, "Counter", "incr", 4), 0);
	CU_ASSERT_STRING_EQUAL(catalog_python_version(old1), "3.11.2");
	CU_ASSERT_EQUAL(catalog_functions(old1, &n)[1][0], 'g');
	CU_ASSERT_EQUAL(n, 2);

	/* The reload: a new table, the newest; the old one stays. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(fresh = catalog_take(c, h3, l3, &pid));
	CU_ASSERT_PTR_NOT_EQUAL(fresh, old1);
	CU_ASSERT_PTR_EQUAL(catalog_newest(c), fresh);
	CU_ASSERT_EQUAL(catalog_count(c), 2);
	CU_ASSERT_EQUAL(catalog_function_options(fresh, "f", 1).batch, 8);
	CU_ASSERT_EQUAL(catalog_function_options(old2, "f", 1).batch, 0);
	CU_ASSERT_TRUE(catalog_actor_class(fresh, "Counter", 7, &ao));
	CU_ASSERT_EQUAL(ao.concurrency, GILD_ACTOR_CONCURRENCY_MAX);
	/* A batched method: its batch, within the protocol's bound. */
	CU_ASSERT_EQUAL(catalog_method_batch(fresh, "Counter", "incr", 4),
	    GILD_FUNCTION_BATCH_MAX);
	CU_ASSERT_EQUAL(catalog_method_batch(fresh, "Counter", "get", 3), 0);
	CU_ASSERT_EQUAL(catalog_method_batch(fresh, "Counter", "inc", 3), 0);
	CU_ASSERT_EQUAL(catalog_method_batch(fresh, "Count", "incr", 4), 0);
	CU_ASSERT_EQUAL(catalog_method_batch(NULL, "Counter", "incr", 4), 0);
	CU_ASSERT_EQUAL(catalog_method_batch(old2, "Counter", "incr", 4), 0);
	/* The old workers go: their table with the last of them. */
	catalog_release(c, old1);
	CU_ASSERT_EQUAL(catalog_count(c), 2);
	catalog_release(c, old2);
	CU_ASSERT_EQUAL(catalog_count(c), 1);
	/* Released by all, the newest stays for new requests. */
	catalog_release(c, fresh);
	CU_ASSERT_EQUAL(catalog_count(c), 1);
	CU_ASSERT_PTR_EQUAL(again = catalog_take(c, h3, l3, &pid), fresh);
	catalog_release(c, again);
	catalog_release(c, NULL);

	/* Malformed: nothing taken. */
	CU_ASSERT_PTR_NULL(catalog_take(c, (const uint8_t *) "\x12\x09x", 3,
	    &pid));
	CU_ASSERT_EQUAL(catalog_count(c), 1);
	free(h1);
	free(h2);
	free(h3);
	catalog_free(c);
	catalog_free(NULL);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("catalog", NULL, NULL);
	CU_add_test(s, "one table per distinct Hello, kept while held",
	    test_tables);
	return test_run_all();
}
