/* pipesock: the socket under an nng pipe, shut down (pipesock.h). */
#include "pipesock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* nng's address as a socket address: 0, or -1 for a family we cannot
 * match (inproc, zerotier). */
static int
to_sockaddr(const nng_sockaddr *a, struct sockaddr_storage *out,
    socklen_t *len)
{
	memset(out, 0, sizeof(*out));
	switch (a->s_family) {
	case NNG_AF_INET: {
		struct sockaddr_in *s = (struct sockaddr_in *) out;
		s->sin_family = AF_INET;
		s->sin_port = a->s_in.sa_port;      /* both network order */
		s->sin_addr.s_addr = a->s_in.sa_addr;
		*len = sizeof(*s);
		return 0;
	}
	case NNG_AF_INET6: {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *) out;
		s->sin6_family = AF_INET6;
		s->sin6_port = a->s_in6.sa_port;
		memcpy(&s->sin6_addr, a->s_in6.sa_addr, 16);
		s->sin6_scope_id = a->s_in6.sa_scope;
		*len = sizeof(*s);
		return 0;
	}
	case NNG_AF_IPC: {
		struct sockaddr_un *s = (struct sockaddr_un *) out;
		size_t n = strnlen(a->s_ipc.sa_path, sizeof(a->s_ipc.sa_path));
		if (n >= sizeof(s->sun_path))
			return -1;
		s->sun_family = AF_UNIX;
		memcpy(s->sun_path, a->s_ipc.sa_path, n);
		*len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n +
				    1);
		return 0;
	}
	case NNG_AF_ABSTRACT: {
		struct sockaddr_un *s = (struct sockaddr_un *) out;
		size_t n = a->s_abstract.sa_len;
		if (n + 1 > sizeof(s->sun_path))
			return -1;
		s->sun_family = AF_UNIX;
		memcpy(s->sun_path + 1, a->s_abstract.sa_name, n);
		*len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 +
				    n);
		return 0;
	}
	default:
		return -1;
	}
}

/* Whether the address the kernel gave (got, glen) is want. A unix
 * socket's path compares up to its end, as the kernel may or may not
 * count its NUL. */
static bool
same(const struct sockaddr_storage *want, socklen_t wlen,
    const struct sockaddr_storage *got, socklen_t glen)
{
	if (want->ss_family != got->ss_family)
		return false;
	switch (want->ss_family) {
	case AF_INET: {
		const struct sockaddr_in *a = (const void *) want;
		const struct sockaddr_in *b = (const void *) got;
		return a->sin_port == b->sin_port &&
		       a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *a = (const void *) want;
		const struct sockaddr_in6 *b = (const void *) got;
		return a->sin6_port == b->sin6_port &&
		       memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *a = (const void *) want;
		const struct sockaddr_un *b = (const void *) got;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t la = wlen - off, lb = glen > off ? glen - off : 0;
		if (a->sun_path[0] != '\0') { /* a path: up to its NUL */
			la = strnlen(a->sun_path, la);
			lb = strnlen(b->sun_path, lb);
		}
		return la == lb && memcmp(a->sun_path, b->sun_path, la) == 0;
	}
	default:
		return false;
	}
}

/* Whether fd is a connected socket whose local address is loc and whose
 * peer is rem (TCP), or whose peer process is pid (unix sockets, whose
 * peers have no address). */
static bool
is_it(int fd, const struct sockaddr_storage *loc, socklen_t llen,
    const struct sockaddr_storage *rem, socklen_t rlen, uint64_t pid)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);

	if (getsockname(fd, (struct sockaddr *) &a, &alen) == -1 ||
	    !same(loc, llen, &a, alen))
		return false;
	alen = sizeof(a);
	if (getpeername(fd, (struct sockaddr *) &a, &alen) == -1)
		return false; /* a listener */
	if (loc->ss_family == AF_UNIX) {
		struct ucred cr;
		socklen_t clen = sizeof(cr);
		return pid > 0 &&
		       getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &clen) == 0 &&
		       (uint64_t) cr.pid == pid;
	}
	return same(rem, rlen, &a, alen);
}

int
pipesock_shutdown(nng_pipe p)
{
	nng_sockaddr la, ra;
	struct sockaddr_storage loc, rem;
	socklen_t llen = 0, rlen = 0;
	uint64_t pid = 0;
	int found = -1, n = 0;
	struct dirent *e;
	DIR *d;

	if (nng_pipe_get_addr(p, NNG_OPT_LOCADDR, &la) != 0 ||
	    to_sockaddr(&la, &loc, &llen) != 0)
		return -ENOTSUP;
	if (loc.ss_family == AF_UNIX) {
		if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) != 0)
			return -ENOTSUP;
	} else if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &ra) != 0 ||
		   to_sockaddr(&ra, &rem, &rlen) != 0) {
		return -ENOTSUP;
	}
	/* A process may always read its own /proc entries, dumpable or not. */
	if ((d = opendir("/proc/self/fd")) == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL && n < 2) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || end == e->d_name || fd == dirfd(d))
			continue;
		if (is_it((int) fd, &loc, llen, &rem, rlen, pid)) {
			found = (int) fd;
			n++;
		}
	}
	closedir(d);
	if (n != 1)
		return n == 0 ? -ENOENT : -EBUSY;
	return shutdown(found, SHUT_RDWR) == 0 ? 0 : -errno;
}
