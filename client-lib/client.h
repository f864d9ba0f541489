/* libgild internal: client calls gild.h does not export, for gildctl (which
 * links the static library). */
#ifndef GILD_CLIENT_CLIENT_H
#define GILD_CLIENT_CLIENT_H

#include "gild.h"

/* gild_ping that also returns the server's version: on GILD_OK, *version
 * (when version is not NULL) is a new malloc'd string owned by the caller. */
int client_ping(gild_client *c, int timeout_ms, char **version,
    gild_error *err);

#endif
