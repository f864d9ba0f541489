/* Tests of proto/fields.h and proto/gild_limits.h: every field number the
 * C code uses by hand is the one protobuf-c's descriptors give that field,
 * and the limits that gild.h repeats are the same. */
#include "fields.h"
#include "gild.h"
#include "gild_limits.h"

#include <CUnit/Basic.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <string.h>
#include "test_main.h"

/* One row per name of fields.h, made from the same list (GILD_FIELDS), so
 * that no name can be left out of the test. */
static const struct field_row {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	const char *field;
	unsigned number;
} rows[] = {
#define GILD_FIELD_ROW(name, desc, field, number)                            \
	{#name, &desc, #field, name},
    GILD_FIELDS(GILD_FIELD_ROW)
#undef GILD_FIELD_ROW
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void
test_numbers_match_descriptors(void)
{
	CU_ASSERT(NROWS > 0);
	for (size_t i = 0; i < NROWS; i++) {
		const struct field_row *r = &rows[i];
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field_by_name(
			r->desc, r->field);

		if (fd == NULL) {
			printf("\n  %s: %s has no field '%s'\n", r->name,
			    r->desc->name, r->field);
			CU_FAIL("a field of fields.h is not in the .proto");
		} else if (fd->id != r->number) {
			printf("\n  %s is %u, but %s.%s is field %u\n", r->name,
			    r->number, r->desc->name, r->field, fd->id);
			CU_FAIL("a field number of fields.h is wrong");
		}
	}
}

/* Each (message, field) has one name, so a reader finds every use of it. */
static void
test_one_name_per_field(void)
{
	for (size_t i = 0; i < NROWS; i++)
		for (size_t j = i + 1; j < NROWS; j++)
			if (rows[i].desc == rows[j].desc &&
			    strcmp(rows[i].field, rows[j].field) == 0) {
				printf("\n  %s and %s both name %s.%s\n",
				    rows[i].name, rows[j].name,
				    rows[i].desc->name, rows[i].field);
				CU_FAIL("two names for one field");
			}
}

/* The limits that client-lib/gild.h, installed without gild's other
 * headers, writes again. (client-lib/internal.h also checks them when
 * libgild is compiled.) */
static void
test_public_limits(void)
{
	CU_ASSERT_EQUAL(GILD_MAX_BATCH, GILD_BATCH_REQUESTS_MAX);
	CU_ASSERT_EQUAL(GILD_STREAM_MAX_WINDOW, GILD_STREAM_WINDOW_MAX);
	CU_ASSERT_EQUAL(GILD_MAX_TRACESTATE, GILD_TRACESTATE_MAX);
	CU_ASSERT(GILD_STREAM_WINDOW_DEFAULT >= 1 &&
		  GILD_STREAM_WINDOW_DEFAULT <= GILD_STREAM_WINDOW_MAX);
	CU_ASSERT(GILD_FUNCTION_BATCH_MAX >= 1);
	CU_ASSERT_EQUAL(GILD_FUNCTION_BATCH_MAX, GILD_BATCH_REQUESTS_MAX);
	CU_ASSERT(GILD_ACTOR_ID_BITS > 0 && GILD_ACTOR_ID_BITS < 64);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("fields", NULL, NULL);
	CU_add_test(s, "numbers match protobuf-c's descriptors",
	    test_numbers_match_descriptors);
	CU_add_test(s, "one name per field", test_one_name_per_field);
	CU_add_test(s, "gild.h's limits are gild_limits.h's",
	    test_public_limits);
	return test_run_all();
}
