/* endpoint — the HTTP routes of PROTOCOL.md §2.2 and §3: exact method, exact
 * raw request-target.  Worker thread, owner of the connection.
 */
#ifndef MESHD_ENDPOINT_H
#define MESHD_ENDPOINT_H

struct conn;
struct http_request;

/* Answers one complete, non-upgrade request (its body, if any, is skipped
 * by the caller). */
void endpoint_handle(struct conn *c, const struct http_request *req);

#endif
