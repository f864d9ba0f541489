/* What the integration suites of tests/apps/features.py share: starting
 * gild serving it, and holding its worker behind a gate file. */
#ifndef GILD_TEST_FEATURES_H
#define GILD_TEST_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

#include "gild.h"
#include "served.h"

#define FEATURES_APP "tests/apps/features.py"

typedef served server;

/* served_start of FEATURES_APP with n workers and extra args (NULL: none). */
int features_start(server *s, int workers, const char *const *extra);

/* Submits features.py's until_file(path, 30): a call that holds its worker
 * until the file path exists. */
gild_call_id features_submit_held(gild_client *c, const char *path);

/* Creates the file path: a gate the calls waiting on it pass. */
void features_open_gate(const char *path);

/* Waits (up to 30 s, a bound only a hang reaches) for the server's status
 * field to be want; returns whether it was. */
bool features_status_reaches(gild_client *c, const char *field,
    int64_t want);

#endif
