/* Length-prefixed framing of worker.proto messages on a stream socket:
 * a 4-byte little-endian payload length, then the payload. */
#ifndef GILD_FRAME_H
#define GILD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 4
/* Largest payload either side accepts; bigger lengths mean a broken peer. */
#define FRAME_MAX_PAYLOAD ((size_t) 1 << 31)

/* Writes the 4-byte header for a payload of len bytes into hdr. */
void frame_header_encode(uint8_t hdr[FRAME_HEADER_LEN], size_t len);

/* Returns the payload length stored in hdr. */
size_t frame_header_decode(const uint8_t hdr[FRAME_HEADER_LEN]);

/* Blocking: writes one frame (header + payload) to fd, retrying on EINTR and
 * short writes. Returns 0, or -errno (-EPIPE when the peer is gone). */
int frame_write(int fd, const void *payload, size_t len);

/* Blocking: reads one frame from fd into a new malloc'd buffer (*out, owned
 * by the caller, free()) of *len bytes. Returns 0; -ECONNRESET on a clean EOF
 * before a header; -EPROTO on EOF inside a frame or a length over max;
 * -ENOMEM; or -errno. */
int frame_read(int fd, uint8_t **out, size_t *len, size_t max);

#endif
