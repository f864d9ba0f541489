/* Actors: the table and each actor's call queue. */
#include "actor.h"

#include <stdlib.h>
#include <string.h>

actor *
actor_add(actor_table *t, const char *cls, size_t cls_len, const char *name,
    size_t name_len, uint32_t owner, bool detached, const uint8_t *ctor,
    size_t ctor_len, uint32_t max_restarts)
{
	actor *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->cls = strndup(cls, cls_len);
	a->name = name != NULL ? strndup(name, name_len) : NULL;
	a->ctor = malloc(ctor_len ? ctor_len : 1);
	if (a->cls == NULL || (name != NULL && a->name == NULL) ||
	    a->ctor == NULL) {
		free(a->cls);
		free(a->name);
		free(a->ctor);
		free(a);
		return NULL;
	}
	memcpy(a->ctor, ctor, ctor_len);
	a->ctor_len = ctor_len;
	a->id = ++t->next_id;
	a->owner = owner;
	a->detached = detached;
	a->max_restarts = max_restarts;
	a->state = ACTOR_CREATING;
	a->slot = -1;
	a->next = t->all;
	t->all = a;
	t->count++;
	return a;
}

void
actor_remove(actor_table *t, actor *a)
{
	for (actor **pp = &t->all; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			t->count--;
			break;
		}
	}
	free(a->cls);
	free(a->name);
	free(a->ctor);
	free(a);
}

actor *
actor_find(const actor_table *t, uint64_t id)
{
	for (actor *a = t->all; a != NULL; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

actor *
actor_find_name(const actor_table *t, const char *name, size_t len)
{
	for (actor *a = t->all; a != NULL; a = a->next)
		if (a->name != NULL && strlen(a->name) == len &&
		    memcmp(a->name, name, len) == 0)
			return a;
	return NULL;
}

size_t
actor_count_on(const actor_table *t, int slot)
{
	size_t n = 0;

	for (const actor *a = t->all; a != NULL; a = a->next)
		n += a->slot == slot && a->state != ACTOR_LOST;
	return n;
}

void
actor_push(actor *a, job *j)
{
	j->next = NULL;
	j->prev = a->tail;
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
}

job *
actor_pop(actor *a)
{
	job *j = a->head;

	if (j == NULL)
		return NULL;
	a->head = j->next;
	if (a->head)
		a->head->prev = NULL;
	else
		a->tail = NULL;
	j->next = j->prev = NULL;
	return j;
}

job *
actor_unlink(actor *a, uint32_t pipe, uint64_t request_id)
{
	for (job *j = a->head; j != NULL; j = j->next) {
		if (j->pipe != pipe || j->request_id != request_id)
			continue;
		if (j->prev)
			j->prev->next = j->next;
		else
			a->head = j->next;
		if (j->next)
			j->next->prev = j->prev;
		else
			a->tail = j->prev;
		j->next = j->prev = NULL;
		return j;
	}
	return NULL;
}
