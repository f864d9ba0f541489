/* Frames coming in from a worker or the template: length-prefixed
 * worker.proto messages on a libevent bufferevent, the large ones as memfds
 * on a descriptor channel beside it (proto/frame.h), handed one by one to
 * a callback; and, when the sender has died, the rest of what it wrote. */
#ifndef GILD_FRAMEIN_H
#define GILD_FRAMEIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;

/* Handles one frame's payload (valid during the call only); returns false
 * to stop reading (the sender was put down, or its socket closed). */
typedef bool (*framein_fn)(void *arg, const uint8_t *p, size_t n);

/* Hands each whole frame waiting in bev's input to fn, in order, while fn
 * returns true and *owner still holds bev (a callback may free it: then
 * bev is not touched again). A frame with FRAME_SHM takes its payload
 * from the next descriptor on chan (-1: such frames are refused), counted
 * in *shm_bytes. Waits for a partial frame by setting bev's read
 * watermark. Returns NULL, or why the stream is broken (an oversized
 * frame, a shared-memory frame without a usable descriptor). */
const char *framein_read(struct bufferevent *bev,
    struct bufferevent *const *owner, int chan, uint64_t *shm_bytes, size_t max,
    framein_fn fn, void *arg);

/* For a sender that is gone (its process died, or its end of the socket
 * is closed): reads into bev's input, without blocking, the bytes its
 * socket holds now (no more: everything a dead sender wrote is there by
 * then), and hands every whole frame to fn as framein_read does. A partial
 * frame at the end is what a sender killed while writing leaves; it is
 * not an error. Returns NULL or why the stream is broken. */
const char *framein_read_rest(struct bufferevent *bev,
    struct bufferevent *const *owner, int chan, uint64_t *shm_bytes, size_t max,
    framein_fn fn, void *arg);

#endif
