/* pipesock: ending a client connection through nng's own error path.
 *
 * nng_pipe_close on a connection that is busy (a reply being written to a
 * client that reads nothing, requests streaming in) wedges nng 1.5.2's
 * reaper: no connection is ever freed again (docs/architecture.md). A
 * connection whose socket fails is different: nng's reads and writes on
 * it complete with an error, and nng closes the pipe as it does when a
 * client goes away. So gild ends a connection by shutting down the
 * socket under it, found among its own descriptors by address: for TCP
 * (tcp://, tls+tcp://, ws://, wss://) the local and the peer address; for
 * ipc:// and abstract:// the listener's address and the peer's pid. */
#ifndef GILD_SERVER_PIPESOCK_H
#define GILD_SERVER_PIPESOCK_H

#include <nng/nng.h>

/* Shuts down (SHUT_RDWR) the socket of p. Returns 0; -ENOENT when no
 * socket is p's (it has closed); -EBUSY when more than one could be (a
 * process with two ipc:// connections to gild: neither is touched);
 * -ENOTSUP for a transport without such addresses; or another negative
 * errno. Safe from any thread; costs a scan of the process's
 * descriptors. */
int pipesock_shutdown(nng_pipe p);

#endif
