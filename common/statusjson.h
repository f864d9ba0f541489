/* A server's Status as JSON: the one shape both the HTTP side port's
 * /status and `gildctl status` print, built with jansson straight from the
 * protobuf-c message. */
#ifndef GILD_STATUSJSON_H
#define GILD_STATUSJSON_H

#include <jansson.h>

#include "gild.pb-c.h"

/* A new JSON object (owned by the caller) holding every field of st, or
 * NULL when out of memory. Text that is not UTF-8 (an app path, say) is
 * written with each invalid byte as U+FFFD. */
json_t *statusjson_object(const Gild__V1__Status *st);

/* The text of a JSON value as gild prints it: `indent` spaces per level
 * (0: one line, with ", " and ": " as Python's json.dumps writes them),
 * keys in the order they were set, floats with 17 significant digits
 * (read back exactly). malloc'd (owned by the caller), without a
 * trailing newline; NULL when out of memory. */
char *statusjson_dump(const json_t *v, int indent);

#endif
