/* Actors: the table of live @gild.actor instances the front end places on
 * workers, and each one's queue of calls. Pure bookkeeping, like sched.c:
 * the server decides and does the I/O. */
#ifndef GILD_ACTOR_H
#define GILD_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

typedef enum actor_state {
	ACTOR_CREATING,   /* its constructor is queued or running */
	ACTOR_READY,      /* lives on worker `slot` */
	ACTOR_DESTROYING, /* a destroy is queued behind its calls */
	ACTOR_LOST,       /* its worker died and it has no restarts left */
} actor_state;

typedef struct actor {
	uint64_t id;
	char *cls;              /* class name */
	char *name;             /* for ActorGet, or NULL */
	uint32_t owner;         /* pipe that created it */
	bool detached;          /* outlives its owner's connection */
	int slot;               /* worker it lives on (or will) */
	uint64_t slot_gen;      /* that worker's generation when created */
	uint8_t *ctor;          /* its encoded ActorNew, to create it again */
	size_t ctor_len;
	uint32_t max_restarts, restarts;
	actor_state state;
	job *active;            /* its one job in the scheduler, or NULL */
	job *head, *tail;       /* calls waiting for their turn (->next) */
	struct actor *next;
} actor;

typedef struct actor_table {
	actor *all;
	uint64_t next_id;
	size_t count;
} actor_table;

/* A new actor (copies the strings and ctor), in state ACTOR_CREATING, or
 * NULL when out of memory. name may be NULL. */
actor *actor_add(actor_table *t, const char *cls, size_t cls_len,
    const char *name, size_t name_len, uint32_t owner, bool detached,
    const uint8_t *ctor, size_t ctor_len, uint32_t max_restarts);
/* Unlinks and frees a (its jobs are the caller's, ended before). */
void actor_remove(actor_table *t, actor *a);
actor *actor_find(const actor_table *t, uint64_t id);
actor *actor_find_name(const actor_table *t, const char *name, size_t len);
/* Actors placed on `slot` and not lost. */
size_t actor_count_on(const actor_table *t, int slot);

/* The call queue: append j, take the oldest, find and unlink one. */
void actor_push(actor *a, job *j);
job *actor_pop(actor *a);
job *actor_unlink(actor *a, uint32_t pipe, uint64_t request_id);

#endif
