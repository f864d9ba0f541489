/* Length-prefixed framing of worker.proto messages on a stream socket. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

void
frame_header_encode(uint8_t hdr[FRAME_HEADER_LEN], size_t len)
{
	hdr[0] = (uint8_t) len;
	hdr[1] = (uint8_t) (len >> 8);
	hdr[2] = (uint8_t) (len >> 16);
	hdr[3] = (uint8_t) (len >> 24);
}

size_t
frame_header_decode(const uint8_t hdr[FRAME_HEADER_LEN])
{
	return (size_t) hdr[0] | (size_t) hdr[1] << 8 | (size_t) hdr[2] << 16 |
	       (size_t) hdr[3] << 24;
}

int
frame_write(int fd, const void *payload, size_t len)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	struct iovec iov[2];
	int n = 2, i = 0;

	if (len > FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	frame_header_encode(hdr, len);
	iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof(hdr)};
	iov[1] = (struct iovec){.iov_base = (void *) payload, .iov_len = len};
	while (i < n) {
		ssize_t w = writev(fd, iov + i, n - i);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (i < n && (size_t) w >= iov[i].iov_len) {
			w -= (ssize_t) iov[i].iov_len;
			i++;
		}
		if (i < n) {
			iov[i].iov_base = (uint8_t *) iov[i].iov_base + w;
			iov[i].iov_len -= (size_t) w;
		}
	}
	return 0;
}

/* Reads exactly len bytes. Returns 0, 1 on EOF before any byte, -EPROTO on
 * EOF after some bytes, or -errno. */
static int
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return got == 0 ? 1 : -EPROTO;
		got += (size_t) r;
	}
	return 0;
}

int
frame_read(int fd, uint8_t **out, size_t *len, size_t max)
{
	uint8_t hdr[FRAME_HEADER_LEN];
	uint8_t *buf;
	size_t n;
	int rc;

	if ((rc = read_full(fd, hdr, sizeof(hdr))) != 0)
		return rc == 1 ? -ECONNRESET : rc;
	n = frame_header_decode(hdr);
	if (n > max)
		return -EPROTO;
	if ((buf = malloc(n ? n : 1)) == NULL)
		return -ENOMEM;
	if ((rc = read_full(fd, buf, n)) != 0) {
		free(buf);
		return rc == 1 ? -EPROTO : rc;
	}
	*out = buf;
	*len = n;
	return 0;
}
