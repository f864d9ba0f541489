/* Actors: the table of live @gild.actor instances, each one's queue of
 * calls, and what the front end does with them: create them on the least
 * loaded worker, send their calls in order, up to the class's concurrency
 * at once (consecutive calls of a batched method as one batch), create
 * them again when their worker dies (max_restarts), destroy them. */
#include "actor.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fields.h"
#include "front.h"
#include "gild_limits.h"
#include "job.h"
#include "log.h"
#include "parse.h"
#include "reply.h"
#include "wire.h"

struct actor {
	uint64_t id;            /* random, unguessable (actor_add) */
	char *cls;              /* class name */
	char *name;             /* for ActorGet, or NULL */
	uint32_t owner;         /* pipe that created it: the only one that
				   reaches it by id, unless it is named or
				   detached */
	bool detached;          /* outlives its owner's connection */
	int slot;               /* worker it lives on (or will) */
	uint64_t slot_gen;      /* that worker's generation when created */
	uint8_t *ctor;          /* its encoded ActorNew, to create it again */
	size_t ctor_len;
	uint32_t max_restarts, restarts;
	actor_state state;
	/* Its jobs in the scheduler (queued or running), oldest first:
	 * at most `concurrency` calls, or its creation or destruction alone,
	 * or one batch of a batched method alone (as many calls as that
	 * batch: `cap` grows to hold them). */
	job **active;
	uint32_t nactive, cap, concurrency;
	job *head, *tail;       /* calls waiting for their turn (->next) */
	actor_table *table;     /* the one it is in */
	struct actor *next;
};

/* ---- the table --------------------------------------------------------- */

uint64_t
actor_id(const actor *a)
{
	return a->id;
}

const char *
actor_class(const actor *a)
{
	return a->cls;
}

/* A new actor id: random, so that no client can guess another's (ids are
 * GILD_ACTOR_ID_BITS wide: libgild keeps the connection in the bits above),
 * never 0, never one in use. */
static uint64_t
new_id(const actor_table *t)
{
	uint64_t id = 0;

	while (id == 0 || actor_find(t, id) != NULL) {
		if (getrandom(&id, sizeof(id), 0) != (ssize_t) sizeof(id))
			id = (uint64_t) random() << 31 ^ (uint64_t) random() ^
			     (uint64_t) t->count << 40;
		id &= (UINT64_C(1) << GILD_ACTOR_ID_BITS) - 1;
	}
	return id;
}

actor *
actor_add(actor_table *t, const char *cls, size_t cls_len, const char *name,
    size_t name_len, uint32_t owner, bool detached, const uint8_t *ctor,
    size_t ctor_len, uint32_t max_restarts, uint32_t concurrency)
{
	actor *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (concurrency < 1)
		concurrency = 1;
	if (concurrency > GILD_ACTOR_CONCURRENCY_MAX)
		concurrency = GILD_ACTOR_CONCURRENCY_MAX;
	a->cls = strndup(cls, cls_len);
	a->name = name != NULL ? strndup(name, name_len) : NULL;
	a->ctor = malloc(ctor_len ? ctor_len : 1);
	a->active = calloc(concurrency, sizeof(*a->active));
	if (a->cls == NULL || (name != NULL && a->name == NULL) ||
	    a->ctor == NULL || a->active == NULL) {
		free(a->cls);
		free(a->name);
		free(a->ctor);
		free(a->active);
		free(a);
		return NULL;
	}
	a->concurrency = a->cap = concurrency;
	memcpy(a->ctor, ctor, ctor_len);
	a->ctor_len = ctor_len;
	a->id = new_id(t);
	a->owner = owner;
	a->detached = detached;
	a->max_restarts = max_restarts;
	a->state = ACTOR_CREATING;
	a->slot = -1;
	a->table = t;
	a->next = t->all;
	t->all = a;
	t->count++;
	t->ctor_bytes += ctor_len;
	return a;
}

void
actor_remove(actor_table *t, actor *a)
{
	for (actor **pp = &t->all; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			t->count--;
			t->ctor_bytes -= a->ctor_len;
			break;
		}
	}
	free(a->cls);
	free(a->name);
	free(a->ctor);
	free(a->active);
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
	a->table->waiting++;
}

/* Puts j back at the head of a's queue (it goes first). */
static void
actor_push_front(actor *a, job *j)
{
	j->prev = NULL;
	j->next = a->head;
	if (a->head)
		a->head->prev = j;
	else
		a->tail = j;
	a->head = j;
	a->table->waiting++;
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
	a->table->waiting--;
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
		a->table->waiting--;
		return j;
	}
	return NULL;
}

size_t
actor_count_owned(const actor_table *t, uint32_t pipe)
{
	size_t n = 0;

	for (const actor *a = t->all; a != NULL; a = a->next)
		n += a->owner == pipe;
	return n;
}

/* ---- on the front end's loop ------------------------------------------- */

/* Calls waiting in actors' queues (not yet in the scheduler). */
size_t
actor_waiting(const server *srv)
{
	return srv->actors.waiting;
}

/* The call from (pipe, request_id) waiting in an actor's queue, or NULL. */
job *
actor_waiting_find(const server *srv, uint32_t pipe, uint64_t request_id)
{
	for (const actor *a = srv->actors.all; a != NULL; a = a->next)
		for (job *j = a->head; j != NULL; j = j->next)
			if (j->pipe == pipe && j->request_id == request_id &&
			    !sjob_of(j)->call.internal)
				return j;
	return NULL;
}

/* Where a new actor goes: the ready worker with the fewest actors and
 * running calls; any worker with the fewest actors if none is ready. */
static int
actor_place(server *srv)
{
	int best = -1, n = supervisor_count(srv->sup);
	size_t best_load = 0;

	for (int pass = 0; pass < 2 && best < 0; pass++) {
		for (int i = 0; i < n; i++) {
			sup_worker_info info;
			size_t load;
			supervisor_info(srv->sup, i, &info);
			if (pass == 0 && strcmp(info.state, "ready") != 0)
				continue;
			load = actor_count_on(&srv->actors, i) +
			       (size_t) sched_slot_running(srv->sch, i);
			if (best < 0 || load < best_load) {
				best = i;
				best_load = load;
			}
		}
	}
	return best < 0 ? 0 : best;
}

/* Whether j runs alone, between a's other jobs: its creation or
 * destruction, or a call in a batch (a group, actor_submit). */
static bool
runs_alone(job *j)
{
	return sjob_of(j)->kind == JK_ACTOR_NEW ||
	       sjob_of(j)->kind == JK_ACTOR_DESTROY || j->group != 0;
}

/* Whether a may send j to the scheduler now: nothing of a's is there, or
 * both j and what is there are calls and fewer than its concurrency. A
 * call that would start a batch (batched) runs alone. */
static bool
has_room(const actor *a, job *j, bool batched)
{
	return a->nactive == 0 ||
	       (a->nactive < a->concurrency && !runs_alone(a->active[0]) &&
		   !runs_alone(j) && !batched);
}

/* The batch size of j's method when j is a plain call (not a stream) of a
 * method of a's class declared @gild.function(batch=N), as the code of
 * the worker a lives on says; 0 otherwise. */
static uint32_t
method_batch(server *srv, const actor *a, job *j)
{
	const sjob *sj = sjob_of(j);

	if (sj->kind != JK_CALL || sj->st != NULL)
		return 0;
	return supervisor_method_batch_on(srv->sup, a->slot, a->cls,
	    j->function, j->function_len);
}

/* Whether j, a call of a batched method whose batch is n, joins the batch
 * a has in the scheduler: a's jobs there are one group of that method,
 * none sent yet (pump sends a group whole), fewer than n. */
static bool
joins_group(const actor *a, const job *j, uint32_t n)
{
	const job *g = a->nactive > 0 ? a->active[0] : NULL;

	return g != NULL && g->group != 0 && g->state == JOB_QUEUED &&
	       a->nactive < n && g->function_len == j->function_len &&
	       memcmp(g->function, j->function, j->function_len) == 0;
}

/* Makes a->active hold at least n jobs. Returns false when out of
 * memory. */
static bool
active_reserve(actor *a, uint32_t n)
{
	uint32_t cap = n > 2 * a->cap ? n : 2 * a->cap;
	job **p;

	if (n <= a->cap)
		return true;
	if ((p = realloc(a->active, cap * sizeof(*p))) == NULL)
		return false;
	a->active = p;
	a->cap = cap;
	return true;
}

/* Hands an actor's job to the scheduler, pinned to its worker (calls of
 * a class with a concurrency share it up to that many). batch: for a
 * call of a batched method, its batch size (0: not batched); it starts a
 * group of its own (group 0) or joins group `group`, whose calls the
 * worker gets in one batch. a->active has room for j. Returns false when
 * the queue was full (j failed and freed). */
static bool
actor_submit(server *srv, actor *a, job *j, uint32_t batch, uint64_t group)
{
	a->active[a->nactive++] = j;
	j->pinned = a->slot + 1;
	j->batch = batch;
	j->group = batch == 0 ? 0 : group != 0 ? group : j->id;
	j->concurrency = runs_alone(j) ? 0 : a->concurrency;
	if (sched_submit(srv->sch, j) == 0) {
		job_step(srv, sjob_of(j), CE_QUEUED, 0, NULL);
		return true;
	}
	srv->limit_hits[LIMIT_QUEUE]++;
	job_fail(srv, j, GILD__V1__CODE__RESOURCE_EXHAUSTED,
	    "queue full: %zu calls are waiting (--max-queue)",
	    sched_queued(srv->sch));
	return false;
}

/* A job of the server's own for actor a (its re-creation, or its end when
 * its owner left), or NULL when out of memory. */
static sjob *
actor_internal_job(server *srv, actor *a, int kind)
{
	sjob *sj = calloc(1, sizeof(*sj));
	nng_msg *m = NULL;

	if (sj == NULL || nng_msg_alloc(&m, 0) != 0 ||
	    (kind == JK_ACTOR_NEW &&
		nng_msg_append(m, a->ctor, a->ctor_len) != 0)) {
		nng_msg_free(m);
		free(sj);
		return NULL;
	}
	sj->srv = srv;
	sj->act = a;
	sj->kind = kind;
	call_init(&sj->call, CALL_WAITING, true, false, 0);
	sj->j.id = ++srv->next_job_id;
	sj->j.pipe = 0; /* no client's: its owner's leaving does not touch it */
	sj->j.req = m;
	sj->j.call = nng_msg_body(m);
	sj->j.call_len = nng_msg_len(m);
	sj->j.function = a->cls;
	sj->j.function_len = strlen(a->cls);
	clock_gettime(CLOCK_MONOTONIC, &sj->arrived);
	return sj;
}

/* Fails every call waiting for a. */
static void
actor_fail_waiting(server *srv, actor *a, Gild__V1__Code code, const char *why)
{
	job *j;

	while ((j = actor_pop(a)) != NULL)
		job_fail(srv, j, code, "%s", why);
}

/* a's instance is gone with its worker: create it again while it has
 * restarts left, else mark it lost and fail what waits for it. */
static void
actor_lost(server *srv, actor *a, const char *why)
{
	char msg[300];
	sjob *sj;

	/* Its next calls queued for the dead worker wait for the new
	 * instance instead, first, in their order; those running there end
	 * with their worker. */
	for (uint32_t i = a->nactive; i-- > 0;) {
		job *j = a->active[i];
		if (j->state != JOB_QUEUED)
			continue;
		sched_remove_queued(srv->sch, j);
		j->state = JOB_NEW;
		j->group = 0; /* sent again as the new worker's code says */
		memmove(&a->active[i], &a->active[i + 1],
		    (a->nactive - i - 1) * sizeof(*a->active));
		a->nactive--;
		actor_push_front(a, j);
		job_step(srv, sjob_of(j), CE_HELD, 0, NULL);
	}
	if (a->state == ACTOR_DESTROYING) {
		if (a->nactive == 0) {
			/* Its destroy job is in the queue: answer it. */
			for (job *j; (j = actor_pop(a)) != NULL;) {
				sjob *q = sjob_of(j);
				if (q->kind == JK_ACTOR_DESTROY &&
				    call_fail(&q->call).answer)
					reply_bool(srv->lst, j->reply_to,
					    j->request_id, true);
				else if (q->kind != JK_ACTOR_DESTROY)
					job_fail(srv, j,
					    GILD__V1__CODE__NOT_FOUND,
					    "the actor was destroyed");
				if (q->kind == JK_ACTOR_DESTROY)
					job_free(j);
			}
			actor_remove(&srv->actors, a);
		}
		return;
	}
	if (a->restarts < a->max_restarts &&
	    (sj = actor_internal_job(srv, a, JK_ACTOR_NEW)) != NULL) {
		a->restarts++;
		a->state = ACTOR_CREATING;
		a->slot = actor_place(srv);
		log_warn("actor %" PRIu64 " (%s) lost (%s): creating it again "
			 "on worker %d, restart %" PRIu32 " of %" PRIu32,
		    a->id, a->cls, why, a->slot, a->restarts, a->max_restarts);
		if (a->nactive == 0)
			actor_submit(srv, a, &sj->j, 0, 0);
		else
			/* Its creation goes first once the running calls end
			 * (rare: see actor_kick). */
			actor_push_front(a, &sj->j);
		return;
	}
	a->state = ACTOR_LOST;
	snprintf(msg, sizeof(msg),
	    "actor %" PRIu64 " (%s) lost: %s, and it has no restarts left "
	    "(max_restarts=%" PRIu32 ")",
	    a->id, a->cls, why, a->max_restarts);
	log_warn("%s", msg);
	actor_fail_waiting(srv, a, GILD__V1__CODE__NOT_FOUND, msg);
}

/* Sends a's next waiting jobs, in order, while it has room for them
 * (has_room). Consecutive calls of a batched method go as one batch, up
 * to its size: those waiting now, and those that come while that batch
 * is still queued (it never waits for them). */
void
actor_kick(server *srv, actor *a)
{
	if ((a->state == ACTOR_READY || a->state == ACTOR_DESTROYING) &&
	    a->slot_gen != srv->slot_gen[a->slot]) {
		/* Its worker was replaced (recycled, reloaded) since: once
		 * what it sent there has ended, it is lost there. */
		uint64_t id = a->id;
		if (a->nactive > 0)
			return;
		actor_lost(srv, a, "its worker was replaced");
		if ((a = actor_find(&srv->actors, id)) == NULL)
			return;
	}
	if (a->state == ACTOR_LOST)
		return;
	while (a->head != NULL) {
		uint32_t n = method_batch(srv, a, a->head);
		uint64_t group = 0;

		if (n > 0 && joins_group(a, a->head, n))
			group = a->active[0]->group;
		else if (!has_room(a, a->head, n > 0))
			break;
		/* Out of memory: it goes once a's jobs there have ended (with
		 * none there, a->active holds one). */
		if (!active_reserve(a, a->nactive + 1))
			break;
		if (!actor_submit(srv, a, actor_pop(a), n, group))
			break; /* the queue is full: the next turn tries again */
	}
}

/* The end of an actor's creation or destruction: fields is the worker's
 * result (created, destroyed) or error (its constructor raised), tag
 * included. */
void
actor_job_result(server *srv, sjob *sj, int slot, const uint8_t *fields,
    size_t len, bool answer)
{
	actor *a = sj->act;
	wire_field f;
	bool ok = wire_find(fields, len, GILD_WF_FROM_WORKER_RESULT, &f) == 1;
	bool internal = sj->call.internal;
	int kind = sj->kind;

	if (!answer)
		(void) 0; /* nobody waits, or its client has its answer */
	else if (ok)
		(kind == JK_ACTOR_NEW ? reply_int(srv->lst, sj->j.reply_to,
					    sj->j.request_id, (int64_t) a->id)
				      : reply_bool(srv->lst, sj->j.reply_to,
					    sj->j.request_id, true));
	else if (!reply_forward(srv->lst, sj->j.reply_to, sj->j.request_id,
		     fields, len)) /* its error */
		reply_error(srv->lst, sj->j.reply_to, sj->j.request_id,
		    GILD__V1__CODE__INTERNAL, "server out of memory");
	job_free(&sj->j);
	if (kind == JK_ACTOR_NEW && ok) {
		if (a->state == ACTOR_CREATING)
			a->state = ACTOR_READY;
		a->slot_gen = srv->slot_gen[slot];
	} else if (kind == JK_ACTOR_NEW && internal) {
		/* Its constructor raised when it was created again. */
		a->state = ACTOR_LOST;
		actor_fail_waiting(srv, a, GILD__V1__CODE__NOT_FOUND,
		    "the actor was lost: creating it again failed");
	} else {
		/* Destroyed, or never created (its constructor raised). */
		actor_fail_waiting(srv, a, GILD__V1__CODE__NOT_FOUND,
		    kind == JK_ACTOR_DESTROY
			? "the actor was destroyed"
			: "the actor could not be created: its constructor "
			  "failed");
		actor_remove(&srv->actors, a);
	}
}

void
actor_job_freed(server *srv, actor *a, const job *j)
{
	for (uint32_t i = 0; i < a->nactive; i++) {
		if (a->active[i] != j)
			continue;
		memmove(&a->active[i], &a->active[i + 1],
		    (a->nactive - i - 1) * sizeof(*a->active));
		a->nactive--;
		srv->actors_dirty = true; /* pump sends its next call */
		return;
	}
}

/* pump: each actor whose job ended sends its next call. */
void
actor_kick_all(server *srv)
{
	if (!srv->actors_dirty)
		return;
	srv->actors_dirty = false;
	for (actor *a = srv->actors.all, *next; a != NULL; a = next) {
		next = a->next;
		actor_kick(srv, a);
	}
}

void
actor_call(server *srv, actor *a, job *j)
{
	actor_push(a, j);
	actor_kick(srv, a);
}

void
actor_slot_lost(server *srv, int slot)
{
	for (actor *a = srv->actors.all, *anext; a != NULL; a = anext) {
		anext = a->next;
		if (a->slot == slot && a->state != ACTOR_LOST &&
		    srv->state != SRV_STOPPING)
			actor_lost(srv, a, "its worker died");
	}
}

size_t
actor_pipe_gone(server *srv, uint32_t pipe)
{
	size_t dropped = 0;

	for (actor *a = srv->actors.all, *anext; a != NULL; a = anext) {
		anext = a->next;
		for (job *j = a->head, *next; j != NULL; j = next) {
			next = j->next;
			if (j->pipe == pipe && !sjob_of(j)->call.internal &&
			    job_step(srv, sjob_of(j), CE_GONE, 0, NULL)
				    .action == CA_DROP)
				dropped++;
		}
		if (a->owner == pipe && !a->detached &&
		    a->state != ACTOR_DESTROYING)
			actor_destroy(srv, a, NULL, 0, 0);
	}
	return dropped;
}

void
actor_ctor_dropped(server *srv, actor *a)
{
	if (a->state != ACTOR_CREATING || a->nactive > 0)
		return;
	actor_fail_waiting(srv, a, GILD__V1__CODE__NOT_FOUND,
	    "the actor was not created: its client cancelled or disconnected "
	    "before its constructor ran");
	actor_remove(&srv->actors, a);
}

void
actor_fail_all_waiting(server *srv, Gild__V1__Code code, const char *why)
{
	for (actor *a = srv->actors.all; a != NULL; a = a->next)
		actor_fail_waiting(srv, a, code, why);
}

void
actor_free_all(server *srv)
{
	while (srv->actors.all != NULL) {
		actor *a = srv->actors.all;
		for (job *j; (j = actor_pop(a)) != NULL;)
			job_free(j);
		a->nactive = 0;
		actor_remove(&srv->actors, a);
	}
}

/* ---- requests ---------------------------------------------------------- */

/* The actor `id` as connection `pipe` may see it: its own, a named one
 * (anyone may find it by name), or a detached one (its id outlives the
 * connection that made it); NULL for another connection's private actor,
 * exactly as for one that does not exist. */
static actor *
reachable(const server *srv, uint64_t id, uint32_t pipe)
{
	actor *a = actor_find(&srv->actors, id);

	return a != NULL && (a->owner == pipe || a->name != NULL || a->detached)
		   ? a
		   : NULL;
}

actor *
actor_for_call(server *srv, listener_req *req, const parsed_request *pr)
{
	actor *act = reachable(srv, pr->actor_id, listener_req_pipe(req));

	if (act == NULL || act->state == ACTOR_LOST ||
	    act->state == ACTOR_DESTROYING) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__NOT_FOUND,
		    "actor %" PRIu64 " %s", pr->actor_id,
		    act == NULL ? "does not exist (it was destroyed, "
				  "or never created)"
		    : act->state == ACTOR_LOST
			? "lost: its worker died and it has no "
			  "restarts left"
			: "is being destroyed");
		return NULL;
	}
	return act;
}

/* ActorNew: creates an instance on the least-loaded worker; the reply is
 * its id once the constructor has run. Takes msg. */
void
actor_request_new(server *srv, listener_req *req, nng_msg *msg,
    const parsed_request *pr)
{
	catalog_actor_options ao = {0};
	size_t nfn;
	bool known;
	actor *a;
	sjob *sj;

	supervisor_functions(srv->sup, &nfn);
	known = supervisor_actor_class(srv->sup, pr->actor_class,
	    pr->actor_class_len, &ao);
	if (nfn > 0 && !known) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__NOT_FOUND,
		    "no @gild.actor class '%.*s' in app '%s'",
		    (int) (pr->actor_class_len > 200 ? 200 : pr->actor_class_len),
		    pr->actor_class, srv->opts->app);
		goto done;
	}
	if (pr->actor_name != NULL &&
	    actor_find_name(&srv->actors, pr->actor_name, pr->actor_name_len)) {
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__ALREADY_EXISTS,
		    "an actor named '%.*s' exists already",
		    (int) (pr->actor_name_len > 200 ? 200 : pr->actor_name_len),
		    pr->actor_name);
		goto done;
	}
	if (actor_count_owned(&srv->actors, listener_req_pipe(req)) >=
	    srv->opts->max_conn_actors) {
		srv->limit_hits[LIMIT_CONN_ACTORS]++;
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "this connection has made %zu actors already "
		    "(--max-conn-actors)", srv->opts->max_conn_actors);
		goto done;
	}
	if (srv->actors.count >= srv->opts->max_actors ||
	    srv->actors.ctor_bytes + pr->len > srv->opts->max_actor_bytes) {
		bool many = srv->actors.count >= srv->opts->max_actors;
		srv->limit_hits[many ? LIMIT_ACTORS : LIMIT_ACTOR_BYTES]++;
		reply_error(srv->lst, req, pr->id,
		    GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    many ? "%zu actors exist already (--max-actors %zu)"
			 : "the actors hold %zu bytes of constructor "
			   "arguments already (--max-actor-bytes %zu)",
		    many ? srv->actors.count : srv->actors.ctor_bytes,
		    many ? srv->opts->max_actors : srv->opts->max_actor_bytes);
		goto done;
	}
	if ((sj = calloc(1, sizeof(*sj))) == NULL ||
	    (a = actor_add(&srv->actors, pr->actor_class, pr->actor_class_len,
		 pr->actor_name, pr->actor_name_len, listener_req_pipe(req),
		 pr->detached, pr->data, pr->len, ao.max_restarts,
		 ao.concurrency)) == NULL) {
		free(sj);
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__RESOURCE_EXHAUSTED,
		    "server out of memory");
		goto done;
	}
	a->slot = actor_place(srv);
	sj->srv = srv;
	sj->act = a;
	sj->kind = JK_ACTOR_NEW;
	call_init(&sj->call, CALL_QUEUED, false, false, 0);
	sj->j.id = ++srv->next_job_id;
	sj->j.request_id = pr->id;
	sj->j.pipe = listener_req_pipe(req);
	sj->j.req = msg;
	sj->j.reply_to = req;
	sj->j.call = pr->data; /* the ActorNew, for the worker */
	sj->j.call_len = pr->len;
	sj->j.function = a->cls;
	sj->j.function_len = strlen(a->cls);
	clock_gettime(CLOCK_MONOTONIC, &sj->arrived);
	srv->calls_total++;
	actor_submit(srv, a, &sj->j, 0, 0);
	return;
done:
	nng_msg_free(msg);
}

void
actor_request_get(server *srv, listener_req *req, const parsed_request *pr)
{
	actor *a = pr->actor_name != NULL
		       ? actor_find_name(&srv->actors, pr->actor_name,
			     pr->actor_name_len)
		       : NULL;

	if (a == NULL || a->state == ACTOR_LOST || a->state == ACTOR_DESTROYING)
		reply_error(srv->lst, req, pr->id, GILD__V1__CODE__NOT_FOUND,
		    "no actor named '%.*s'%s",
		    (int) (pr->actor_name_len > 200 ? 200 : pr->actor_name_len),
		    pr->actor_name ? pr->actor_name : "",
		    a != NULL && a->state == ACTOR_LOST ? " (it was lost)" : "");
	else if (pr->with_class)
		reply_int_str(srv->lst, req, pr->id, (int64_t) a->id, a->cls);
	else
		reply_int(srv->lst, req, pr->id, (int64_t) a->id);
}

/* Destroys a after the calls queued for it; to (may be NULL: the server's
 * own, when its owner left) gets true once it is gone. */
void
actor_destroy(server *srv, actor *a, listener_req *to, uint64_t request_id,
    uint32_t pipe)
{
	sjob *sj;

	if (a->state == ACTOR_LOST) {
		actor_fail_waiting(srv, a, GILD__V1__CODE__NOT_FOUND,
		    "the actor was destroyed");
		if (a->nactive == 0)
			actor_remove(&srv->actors, a);
		else
			a->state = ACTOR_DESTROYING;
		if (to != NULL)
			reply_bool(srv->lst, to, request_id, true);
		return;
	}
	if ((sj = actor_internal_job(srv, a, JK_ACTOR_DESTROY)) == NULL) {
		if (to != NULL)
			reply_error(srv->lst, to, request_id,
			    GILD__V1__CODE__RESOURCE_EXHAUSTED,
			    "server out of memory");
		return;
	}
	if (to != NULL) {
		sj->call.internal = false; /* its client waits */
		sj->j.reply_to = to;
		sj->j.request_id = request_id;
		sj->j.pipe = pipe;
	}
	a->state = ACTOR_DESTROYING;
	actor_push(a, &sj->j);
	actor_kick(srv, a);
}

void
actor_request_destroy(server *srv, listener_req *req, const parsed_request *pr)
{
	actor *a = reachable(srv, pr->actor_id, listener_req_pipe(req));

	if (a == NULL || a->state == ACTOR_DESTROYING)
		reply_bool(srv->lst, req, pr->id, a != NULL);
	else
		actor_destroy(srv, a, req, pr->id, listener_req_pipe(req));
}
