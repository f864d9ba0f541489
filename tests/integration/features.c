/* What the suites of tests/apps/features.py share (features.h). */
#include "features.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

int
features_start(server *s, int workers, const char *const *extra)
{
	return served_start(s, FEATURES_APP, workers, extra);
}

gild_call_id
features_submit_held(gild_client *c, const char *path)
{
	gild_value *args = gild_list();
	gild_call_id id = 0;

	gild_list_append(args, gild_cstr(path));
	gild_list_append(args, gild_int(30));
	CU_ASSERT_EQUAL(gild_submit(c, "until_file", args, NULL, &id, NULL),
	    GILD_OK);
	gild_value_free(args);
	return id;
}

void
features_open_gate(const char *path)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL(f);
	if (f != NULL)
		fclose(f);
}

bool
features_status_reaches(gild_client *c, const char *field, int64_t want)
{
	for (double end = now_s() + 30; now_s() < end; usleep(5000))
		if (served_status_int(c, field, false) == want)
			return true;
	return served_status_int(c, field, false) == want;
}
