/* Frames coming in from a worker or the template (see framein.h). */
#include "framein.h"

#include "frame.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/ioctl.h>

/* A frame whose payload came in a memfd on the descriptor channel chan:
 * maps it, hands it to fn, unmaps it. Returns NULL, or why the stream is
 * broken; *more says fn's answer. */
static const char *
shm_frame(int chan, size_t n, framein_fn fn, void *arg, bool *more,
    uint64_t *shm_bytes)
{
	const uint8_t *p;
	int mfd;

	/* The sender passed the descriptor before writing the header, so it
	 * is here by now. */
	if ((mfd = frame_shm_recv(chan, 1)) < 0)
		return "sent a shared-memory frame without its descriptor";
	if (frame_shm_map(mfd, n, &p) != 0)
		return "sent a shared-memory frame that cannot be mapped";
	*shm_bytes += n;
	*more = fn(arg, p, n);
	frame_shm_unmap(p, n);
	return NULL;
}

const char *
framein_read(struct bufferevent *bev, struct bufferevent *const *owner,
    int chan, uint64_t *shm_bytes, size_t max, framein_fn fn, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[FRAME_HEADER_LEN];
	size_t n;

	while (evbuffer_get_length(in) >= FRAME_HEADER_LEN) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		n = frame_header_decode(hdr);
		if ((n & FRAME_SHM) && chan != -1 &&
		    (n & ~(size_t) FRAME_SHM) <= max) {
			bool more = false;
			const char *bad = shm_frame(chan,
			    n & ~(size_t) FRAME_SHM, fn, arg, &more, shm_bytes);
			if (bad != NULL)
				return bad;
			if (!more || *owner != bev)
				return NULL;
			evbuffer_drain(in, FRAME_HEADER_LEN);
			continue;
		}
		if (n > max)
			return "sent an oversized frame";
		if (evbuffer_get_length(in) < FRAME_HEADER_LEN + n) {
			/* Wake up only when the whole frame is here. */
			bufferevent_setwatermark(
			    bev, EV_READ, FRAME_HEADER_LEN + n, 0);
			return NULL;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		/* One contiguous view; copies only if the frame is split. */
		const uint8_t *p =
		    evbuffer_pullup(in, (ev_ssize_t) (FRAME_HEADER_LEN + n));
		if (p == NULL)
			return "out of memory reading a frame";
		/* A frame's callbacks may close this socket (or stop
		 * everything): then leave the rest of the buffer alone.
		 * libevent holds a reference on bev until the read callback
		 * returns. */
		if (!fn(arg, p + FRAME_HEADER_LEN, n) || *owner != bev)
			return NULL;
		evbuffer_drain(in, FRAME_HEADER_LEN + n);
	}
	return NULL;
}

const char *
framein_read_rest(struct bufferevent *bev, struct bufferevent *const *owner,
    int chan, uint64_t *shm_bytes, size_t max, framein_fn fn, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int fd = bufferevent_getfd(bev), queued = 0;
	const char *bad;

	/* What the socket holds now bounds the read: a sender that is gone
	 * writes no more, and a process that still holds the socket (a
	 * child the app forked) cannot keep us reading. */
	if (fd != -1 && ioctl(fd, FIONREAD, &queued) == -1)
		queued = 0;
	/* libevent freezes the end of a bufferevent's input (only its own
	 * reads add there): open it for this one. */
	evbuffer_unfreeze(in, 0);
	while (queued > 0) {
		int got = evbuffer_read(in, fd, queued);
		if (got <= 0)
			break;
		queued -= got;
	}
	evbuffer_freeze(in, 0);
	/* Outside libevent's own callback: hold bev while fn may free it. */
	bufferevent_incref(bev);
	bad = framein_read(bev, owner, chan, shm_bytes, max, fn, arg);
	bufferevent_decref(bev);
	return bad;
}
