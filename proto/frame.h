/* Length-prefixed framing of worker.proto messages on a stream socket:
 * a 4-byte little-endian payload length, then the payload. */
#ifndef GILD_FRAME_H
#define GILD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FRAME_HEADER_LEN 4
/* Largest payload either side accepts; bigger lengths mean a broken peer. */
#define FRAME_MAX_PAYLOAD ((size_t) 1 << 31)

/* Large frames travel through shared memory instead of the socket: the
 * sender copies the payload into a sealed memfd, passes the descriptor on a
 * second socket (the "descriptor channel", SOCK_SEQPACKET, one descriptor
 * per message) and writes only a header with FRAME_SHM set in its length.
 * Pairing is by order: the k-th such header goes with the k-th descriptor,
 * which the sender passes before it writes the header. */
#define FRAME_SHM 0x80000000u
/* Payloads from this size on go through shared memory when a descriptor
 * channel is there: below it a memfd costs more than the socket. */
#define FRAME_SHM_MIN ((size_t) 256 * 1024)

/* Writes the 4-byte header for a payload of len bytes into hdr. */
void frame_header_encode(uint8_t hdr[FRAME_HEADER_LEN], size_t len);

/* Writes the header of a payload of len bytes that is in shared memory. */
void frame_header_encode_shm(uint8_t hdr[FRAME_HEADER_LEN], size_t len);

/* Returns the payload length stored in hdr (with FRAME_SHM, over any
 * sensible maximum: a reader that takes no shared memory rejects it). */
size_t frame_header_decode(const uint8_t hdr[FRAME_HEADER_LEN]);

/* Blocking: writes one frame (header + payload) to fd, retrying on EINTR and
 * short writes. Returns 0, or -errno (-EPIPE when the peer is gone). */
int frame_write(int fd, const void *payload, size_t len);

/* Blocking: reads one frame from fd into a new malloc'd buffer (*out, owned
 * by the caller, free()) of *len bytes. Returns 0; -ECONNRESET on a clean EOF
 * before a header; -EPROTO on EOF inside a frame or a length over max;
 * -ENOMEM; or -errno. */
int frame_read(int fd, uint8_t **out, size_t *len, size_t max);

/* Like frame_write, but a payload of FRAME_SHM_MIN bytes or more goes
 * through a memfd passed on chan (when chan >= 0). The caller serializes
 * frame writes to fd and chan. */
int frame_write_shm(int fd, int chan, const void *payload, size_t len);

/* Like frame_read, but takes a FRAME_SHM header's payload from the next
 * descriptor on chan (blocking): then *out is a read-only mapping. Free
 * what either returns with frame_free. */
int frame_read_shm(int fd, int chan, uint8_t **out, size_t *len, size_t max);

/* A buffered reader of frames on a stream socket, for a reader that wants
 * every frame that has arrived from one read (frame_read_shm reads a
 * header and then its payload). */
#define FRAME_READER_BUF ((size_t) 64 * 1024)
typedef struct frame_reader {
	int fd, chan; /* the socket; the descriptor channel, or -1 */
	size_t max;   /* largest payload taken */
	uint8_t *buf; /* FRAME_READER_BUF bytes: [start, end) are read */
	size_t start, end;
	bool more; /* the last fill filled buf: more may be waiting */
} frame_reader;

/* Sets up r on fd and chan (-1: no shared memory). Returns 0 or -ENOMEM.
 * frame_reader_fini frees what it holds. */
int frame_reader_init(frame_reader *r, int fd, int chan, size_t max);
void frame_reader_fini(frame_reader *r);

/* The next frame, as frame_read_shm gives it, when it has been read into
 * the buffer (or at least its header, for a frame too large for the
 * buffer or one in shared memory: the rest is then read, waiting for it).
 * Returns 0; -EAGAIN when no whole frame is buffered (frame_reader_fill
 * reads more); -EPROTO, -ENOMEM or -errno. */
int frame_reader_next(frame_reader *r, uint8_t **out, size_t *len);

/* One read of what has arrived into the buffer; with nowait, -EAGAIN when
 * nothing has. Returns 0; -ECONNRESET at a clean EOF (nothing buffered),
 * -EPROTO at an EOF inside a frame, or -errno. */
int frame_reader_fill(frame_reader *r, int nowait);

/* Frees a payload from frame_read, frame_read_shm or frame_alloc (NULL is
 * fine). */
void frame_free(uint8_t *payload);

/* A buffer of n bytes to build a payload in: for FRAME_SHM_MIN bytes or
 * more a writable memfd mapping, so that frame_send passes it on without a
 * copy; heap memory otherwise (or when no memfd can be had). NULL when out
 * of memory. Free with frame_send or frame_free. */
uint8_t *frame_alloc(size_t n);

/* realloc for a frame_alloc buffer of len bytes: NULL (buf still valid)
 * when out of memory. A memfd mapping allocated with room to spare grows
 * in place (frame_send sends only the len bytes it is given); one without
 * is copied into a new one. */
uint8_t *frame_grow(uint8_t *buf, size_t len, size_t newlen);

/* Sends buf (len bytes; from frame_alloc, frame_read_shm or malloc) as one
 * frame like frame_write_shm, and frees it. A frame_alloc memfd is sealed
 * and passed as it is. Returns 0 or -errno. */
int frame_send(int fd, int chan, uint8_t *buf, size_t len);

/* A sealed memfd holding the n pieces of iov, or -errno. */
int frame_shm_create(const struct iovec *iov, int n);

/* Passes descriptor mfd on chan; with nonblock, -EAGAIN when the channel is
 * full. Returns 0 or -errno. The caller still owns mfd. */
int frame_shm_send(int chan, int mfd, int nonblock);
/* The same, the message carrying the len bytes of data (1 to 64) with it
 * (the shared-memory side sockets send a handle: server/shm.h). */
int frame_shm_send_data(int chan, int mfd, int nonblock, const void *data,
    size_t len);

/* The next descriptor passed on chan (waits unless nonblock), or -errno
 * (-ECONNRESET when the peer closed the channel). */
int frame_shm_recv(int chan, int nonblock);
/* The same, also taking the message's bytes into data (room for cap): the
 * descriptor and their count in *len, or -EPROTO when the message is not
 * cap bytes or more were sent. */
int frame_shm_recv_data(int chan, int nonblock, void *data, size_t cap,
    size_t *len);

/* frame_shm_send_data and frame_shm_recv_data of a handle: 8 bytes, little
 * endian (what the shared-memory side sockets pass with each memfd). The
 * receive gives -EPROTO for a message that is not one handle. */
int frame_shm_send_handle(int chan, int mfd, int nonblock, uint64_t handle);
int frame_shm_recv_handle(int chan, int nonblock, uint64_t *handle);

/* Maps the first len bytes of a received memfd read-only into *out after
 * checking that it is sealed against shrinking and writing and holds len
 * bytes (so reading it cannot fault, nor see it change). Closes mfd. Returns 0, -EPROTO for a memfd
 * that fails the checks, or -errno. Unmap with frame_shm_unmap. */
int frame_shm_map(int mfd, size_t len, const uint8_t **out);

/* Unmaps what frame_shm_map mapped. */
void frame_shm_unmap(const uint8_t *p, size_t len);

#endif
