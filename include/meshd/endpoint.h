/* endpoint — the HTTP routes of PROTOCOL.md §2.2 and §3: exact method, exact
 * raw request-target.  Worker thread, owner of the connection.
 */
#ifndef MESHD_ENDPOINT_H
#define MESHD_ENDPOINT_H

#include <stddef.h>

struct conn;
struct http_request;

/* Answers one complete, non-upgrade request with its body (conn.h's
 * ops->http_request: NULL when none or not read). */
void endpoint_handle(struct conn *c, const struct http_request *req, const char *body,
		     size_t body_len);

#endif
