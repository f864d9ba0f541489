/* The tensor dtypes gild knows (gild.v1.Tensor.dtype), shared by the
 * worker's and the Python client's numpy conversions so both agree. A
 * header of static definitions: each user gets its own small copy. */
#ifndef GILD_DTYPE_H
#define GILD_DTYPE_H

#include <stddef.h>
#include <string.h>

/* One dtype: its gild name, numpy kind and itemsize, the numpy dtype string
 * (explicitly little-endian) and the memoryview format (NULL where
 * memoryview.cast cannot express it). */
struct dtype_info {
	const char *name;
	char kind;
	size_t itemsize;
	const char *np;
	const char *fmt;
};

static const struct dtype_info dtypes[] = {
    {"bool", 'b', 1, "|b1", "?"},
    {"int8", 'i', 1, "|i1", "b"},
    {"int16", 'i', 2, "<i2", "h"},
    {"int32", 'i', 4, "<i4", "i"},
    {"int64", 'i', 8, "<i8", "q"},
    {"uint8", 'u', 1, "|u1", "B"},
    {"uint16", 'u', 2, "<u2", "H"},
    {"uint32", 'u', 4, "<u4", "I"},
    {"uint64", 'u', 8, "<u8", "Q"},
    {"float16", 'f', 2, "<f2", NULL},
    {"float32", 'f', 4, "<f4", "f"},
    {"float64", 'f', 8, "<f8", "d"},
    {"complex64", 'c', 8, "<c8", NULL},
    {"complex128", 'c', 16, "<c16", NULL},
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

/* The dtype called name (NULL: none, or name NULL). */
static inline const struct dtype_info *
dtype_by_name(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_DTYPES; i++)
		if (strcmp(dtypes[i].name, name) == 0)
			return &dtypes[i];
	return NULL;
}

/* The dtype of numpy kind ('b', 'i', 'u', 'f', 'c') and itemsize, or NULL. */
static inline const struct dtype_info *
dtype_by_kind(char kind, size_t itemsize)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (dtypes[i].kind == kind && dtypes[i].itemsize == itemsize)
			return &dtypes[i];
	return NULL;
}

#endif
