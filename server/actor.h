/* Actors: the table of live @gild.actor instances the front end places on
 * workers, each one's queue of calls, and the front end's handling of
 * them (on its loop: see front.h): the ActorNew, ActorGet and ActorDestroy
 * requests, their calls in order (up to K at once for
 * @gild.actor(concurrency=K)), their restarts when a worker dies,
 * their end when their owner's connection closes. */
#ifndef GILD_ACTOR_H
#define GILD_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "gild.pb-c.h"
#include "listener.h"
#include "parse.h"
#include "sched.h"

/* The front end's own (front.h). */
typedef struct server server;
typedef struct sjob sjob;

typedef enum actor_state {
	ACTOR_CREATING,   /* its constructor is queued or running */
	ACTOR_READY,      /* lives on worker `slot` */
	ACTOR_DESTROYING, /* a destroy is queued behind its calls */
	ACTOR_LOST,       /* its worker died and it has no restarts left */
} actor_state;

/* An actor: opaque outside actor.c, which alone changes one. */
typedef struct actor actor;

typedef struct actor_table {
	actor *all;
	size_t count;
	size_t waiting;    /* calls in their queues (counted in --max-queue) */
	size_t ctor_bytes; /* their constructor requests' (--max-actor-bytes) */
} actor_table;

/* A new actor (copies the strings and ctor), in state ACTOR_CREATING, with
 * a random id, or NULL when out of memory. name may be NULL. Up to
 * `concurrency` of its calls run at once (taken as 1 to
 * GILD_ACTOR_CONCURRENCY_MAX). */
actor *actor_add(actor_table *t, const char *cls, size_t cls_len,
    const char *name, size_t name_len, uint32_t owner, bool detached,
    const uint8_t *ctor, size_t ctor_len, uint32_t max_restarts,
    uint32_t concurrency);
/* Unlinks and frees a (its jobs are the caller's, ended before). */
void actor_remove(actor_table *t, actor *a);
actor *actor_find(const actor_table *t, uint64_t id);
/* a's id, as its clients name it. */
uint64_t actor_id(const actor *a);
/* The name of a's @gild.actor class (borrowed from a). */
const char *actor_class(const actor *a);
actor *actor_find_name(const actor_table *t, const char *name, size_t len);
/* Actors placed on `slot` and not lost. */
size_t actor_count_on(const actor_table *t, int slot);
/* Actors of t that connection pipe made (detached ones too): O(actors). */
size_t actor_count_owned(const actor_table *t, uint32_t pipe);

/* The call queue: append j, take the oldest, find and unlink one. */
void actor_push(actor *a, job *j);
job *actor_pop(actor *a);
job *actor_unlink(actor *a, uint32_t pipe, uint64_t request_id);

/* ---- on the front end's loop ---- */

/* Requests: ActorNew (takes msg; the reply is the id once the constructor
 * ran), ActorGet (the id of the actor of that name; [id, class name] with
 * with_class) and ActorDestroy (true
 * once destroyed after the calls queued for it, false if there is none). */
void actor_request_new(server *srv, listener_req *req, nng_msg *msg,
    const parsed_request *pr);
void actor_request_get(server *srv, listener_req *req,
    const parsed_request *pr);
void actor_request_destroy(server *srv, listener_req *req,
    const parsed_request *pr);
/* The actor a Call names (pr->actor_id), or NULL after answering the
 * request with NOT_FOUND: also for another connection's private actor
 * (neither named nor detached), which ActorDestroy does not find either. */
actor *actor_for_call(server *srv, listener_req *req,
    const parsed_request *pr);
/* Queues call j for a: its calls start in arrival order, one at a time
 * (or up to its class's @gild.actor(concurrency=K) at once). */
void actor_call(server *srv, actor *a, job *j);
/* Destroys a after the calls queued for it; to (NULL: the server's own
 * destroy, when its owner left) gets true once it is gone. */
void actor_destroy(server *srv, actor *a, listener_req *to,
    uint64_t request_id, uint32_t pipe);
/* The worker's answer to an actor's creation or destruction (fields: the
 * result or error of its FromWorker), replied to its client if answer
 * (its call's state machine says whether); frees sj. */
void actor_job_result(server *srv, sjob *sj, int slot, const uint8_t *fields,
    size_t len, bool answer);
/* Job j of a (its call, creation or destruction) is freed: when it was
 * the one a had in the scheduler, a's next call may go (on the next
 * actor_kick_all). */
void actor_job_freed(server *srv, actor *a, const job *j);
/* From pump: each actor whose job ended sends its next one. */
void actor_kick_all(server *srv);
/* Worker `slot` died: its actors are created again elsewhere while they
 * have restarts left, else lost (their waiting calls get NOT_FOUND). */
void actor_slot_lost(server *srv, int slot);
/* Connection `pipe` closed: its calls waiting for an actor's turn are
 * cancelled (returns how many), the actors it owns destroyed unless
 * detached. */
size_t actor_pipe_gone(server *srv, uint32_t pipe);
/* The client's constructor job of a (ActorNew) ended before it ran (its
 * client cancelled it or disconnected): a, never created, goes with its
 * name. */
void actor_ctor_dropped(server *srv, actor *a);
/* The server stops: every call waiting for an actor's turn fails. */
void actor_fail_all_waiting(server *srv, Gild__V1__Code code,
    const char *why);
/* At exit: frees every actor and the jobs they hold. */
void actor_free_all(server *srv);
/* Calls waiting in actors' queues (not yet in the scheduler), and the one
 * a client sent as request_id on pipe (NULL if none). */
size_t actor_waiting(const server *srv);
job *actor_waiting_find(const server *srv, uint32_t pipe,
    uint64_t request_id);

#endif
