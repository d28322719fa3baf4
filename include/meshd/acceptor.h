/* acceptor — the thread that owns the listening socket.
 *
 * It accept4()s connections (non-blocking, close-on-exec, TCP_NODELAY) and
 * hands each fd to a worker, round robin, as MSG_NEW_CONN; it never touches
 * an fd again.  When the process runs out of descriptors (EMFILE/ENFILE) it
 * pauses accepting for a moment instead of spinning on a readable socket.
 */
#ifndef MESHD_ACCEPTOR_H
#define MESHD_ACCEPTOR_H

#include <stdbool.h>

struct server;
struct acceptor;

/* Main thread: binds and listens on host:port (port 0 = any).  Returns the
 * listening fd, or -1 (logged). */
int acceptor_listen(const char *host, int port, int *bound_port) __attribute__((warn_unused_result));

/* Main thread, start-up. */
struct acceptor *acceptor_new(struct server *srv, int listen_fd);
bool acceptor_start(struct acceptor *a) __attribute__((warn_unused_result));
/* Main thread: stops accepting, closes the listening socket, joins the thread. */
void acceptor_stop(struct acceptor *a);
void acceptor_free(struct acceptor *a);

#endif
