/* codes: gild.v1.Code's names and numbers, read from protobuf-c's
 * descriptor of the enum (gild.proto): the one table of them, for libgild's
 * gild_code_name and the server's metrics. */
#ifndef GILD_PROTO_CODES_H
#define GILD_PROTO_CODES_H

#include <stddef.h>

/* At least as many codes as gild.v1.Code has (checked by test_wire). */
#define CODES_MAX 32

/* The name of code as gild.proto spells it ("DEADLINE_EXCEEDED"), or NULL
 * if it is no gild.v1.Code. */
const char *codes_name(int code);
/* How many codes gild.v1.Code has; the i-th of them (0 <= i < count), in
 * the order of their numbers; and the index of code (-1: none). */
size_t codes_count(void);
int codes_at(size_t i);
int codes_index(int code);

#endif
