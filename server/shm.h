/* shm: shared memory for local clients (gild serve --shm). A Unix
 * SOCK_SEQPACKET socket beside the first ipc:// listener (its path +
 * ".shm") over which a client on that listener hands the server sealed
 * memfds holding whole Requests, and the server hands it memfds holding
 * large Replies. Each side connection is tied to one nng connection (pipe)
 * by a random key the server gave that pipe in a Pong, so no client can
 * name another's memfd. Loop thread only. See docs/protocol.md#shared-memory. */
#ifndef GILD_SERVER_SHM_H
#define GILD_SERVER_SHM_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <nng/nng.h>

/* Memfds a side connection may hold, handed over and not yet used: more
 * close it (with them). Their bytes may be at most max_held_bytes
 * (shm_init). */
#define SHM_MAX_HELD 16
/* Key length: 128 random bits. */
#define SHM_KEY_LEN 16
/* Side connections open at once (tied or not); more are closed at once.
 * Of them, at most SHM_MAX_UNTIED have not presented a key yet: a new one
 * closes the oldest of those. */
#define SHM_MAX_SIDES 1024
#define SHM_MAX_UNTIED 64

typedef struct shm shm;

/* Listens on path (an existing file there is replaced). max_message: the
 * largest request taken from a memfd; a side connection holds at most
 * max_held_bytes of memfds. Returns 0, or -1 with err filled. */
int shm_init(shm **out, struct event_base *base, const char *path,
    size_t max_message, size_t max_held_bytes, char *err, size_t errlen);
/* Closes everything and removes the socket file. Accepts NULL. */
void shm_fini(shm *s);

/* The side socket's path (to offer), owned by s. */
const char *shm_path(const shm *s);

/* Whether pipe is a local (ipc://) connection that may be offered shared
 * memory. */
bool shm_may_offer(const shm *s, uint32_t pipe);

/* A new key for pipe (any earlier one is dropped, with its side
 * connection) into key. Returns 0 or -ENOMEM. */
int shm_offer(shm *s, uint32_t pipe, uint8_t key[SHM_KEY_LEN]);

/* pipe is gone: its key, side connection and the memfds it held go. */
void shm_pipe_gone(shm *s, uint32_t pipe);

/* The Request that pipe's memfd `handle` holds, len bytes, copied into a
 * new nng message (*out, the caller's). The memfd must have been handed
 * over on pipe's side connection, be a memfd sealed against writing and
 * shrinking, and hold len bytes (at most max_message). Returns 0, or a
 * gild.v1.Code (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) with why filled.
 * The memfd is used up either way. */
int shm_take(shm *s, uint32_t pipe, uint64_t handle, uint64_t len,
    nng_msg **out, char *why, size_t whylen);

/* A Reply for pipe: when pipe has a side connection and *msg is
 * FRAME_SHM_MIN bytes or more, it goes into a sealed memfd passed on that
 * connection, and *msg is replaced by a small Reply referring to it (the
 * old one freed). Otherwise (or when the memfd cannot be made or the side
 * connection is full) *msg is left as it is. */
void shm_reply(shm *s, uint32_t pipe, nng_msg **msg);

/* Counters for /status and /metrics. */
typedef struct shm_counts {
	uint64_t taken, taken_bytes;   /* requests served from memfds */
	uint64_t refused;              /* memfds refused (INVALID_ARGUMENT) */
	uint64_t replies, reply_bytes; /* replies handed over as memfds */
	uint64_t over_budget;          /* side connections closed over budget */
	size_t sides, held;            /* open now; memfds held now */
} shm_counts;
void shm_get_counts(const shm *s, shm_counts *out);

#endif
