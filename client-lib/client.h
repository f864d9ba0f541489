/* libgild internal: client calls gild.h does not export, for gildctl (which
 * links the static library). */
#ifndef GILD_CLIENT_CLIENT_H
#define GILD_CLIENT_CLIENT_H

#include "gild.h"
#include "gild.pb-c.h"

/* gild_ping that also returns the server's version: on GILD_OK, *version
 * (when version is not NULL) is a new malloc'd string owned by the caller. */
int client_ping(gild_client *c, int timeout_ms, char **version,
    gild_error *err);

/* gild_status's request, its answer as the Status message (*out, freed
 * with gild__v1__status__free_unpacked): `gildctl status` prints it with
 * common/statusjson.c, as the server's /status does. */
int client_status_message(gild_client *c, int timeout_ms,
    Gild__V1__Status **out, gild_error *err);

#endif
