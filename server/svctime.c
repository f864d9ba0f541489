/* Service-time estimates per function, from the workers' stamps. */
#include "svctime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	uint8_t len; /* of name; 0: the entry is free */
	char name[SVCTIME_NAME_MAX];
	uint32_t us;
} entry;

struct svctime {
	entry slots[SVCTIME_SLOTS]; /* direct-mapped by the name's hash */
};

int
svctime_init(svctime **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return -ENOMEM;
	return 0;
}

void
svctime_fini(svctime *t)
{
	free(t);
}

/* FNV-1a. */
static size_t
slot_of(const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t) name[i]) * 16777619u;
	return h % SVCTIME_SLOTS;
}

static int
same(const entry *e, const char *name, size_t len)
{
	return e->len == len && memcmp(e->name, name, len) == 0;
}

void
svctime_note(svctime *t, const char *name, size_t len, uint32_t us)
{
	entry *e;

	if (len == 0 || len > SVCTIME_NAME_MAX || us == 0)
		return;
	e = &t->slots[slot_of(name, len)];
	if (!same(e, name, len)) {
		/* New here (or replacing another function): start afresh. */
		e->len = (uint8_t) len;
		memcpy(e->name, name, len);
		e->us = us;
	} else if (us >= e->us) {
		e->us = us;
	} else {
		e->us -= (e->us - us + 7) / 8;
	}
}

uint32_t
svctime_get(const svctime *t, const char *name, size_t len)
{
	const entry *e;

	if (len == 0 || len > SVCTIME_NAME_MAX)
		return 0;
	e = &t->slots[slot_of(name, len)];
	return same(e, name, len) ? e->us : 0;
}
