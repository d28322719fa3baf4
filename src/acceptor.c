/* acceptor — accept4() and hand-off; see include/meshd/acceptor.h. */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/event.h>

#include "meshd/acceptor.h"
#include "meshd/alloc.h"
#include "meshd/inbox.h"
#include "meshd/log.h"
#include "meshd/server.h"
#include "meshd/thread.h"
#include "meshd/worker.h"

/* How long accepting pauses when the process is out of descriptors. */
#define EMFILE_PAUSE_MS 100

struct acceptor {
	struct server *srv;
	int fd;
	pthread_t thread;
	struct event_base *base;
	struct inbox inbox;
	struct event *inbox_ev;
	struct event *listen_ev;
	struct event *resume_ev;
	unsigned next_worker;
};

int acceptor_listen(const char *host, int port, int *bound_port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		log_error("listen_failed", "host=%s port=%d error=%s", host, port, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
			log_error("listen_failed", "host=%s port=%d error=%s", host, port,
				  strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, cap, "%s:%d", ip, port);
}

static void pause_accepting(struct acceptor *a)
{
	event_del(a->listen_ev);
	struct timeval tv = { 0, EMFILE_PAUSE_MS * 1000 };
	evtimer_add(a->resume_ev, &tv);
	log_warn("accept_paused", "error=%s", strerror(errno));
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct acceptor *a = arg;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accepting(a);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept_failed", "error=%s", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct msg_new_conn *m = xcalloc(1, sizeof(*m));
		m->hdr.type = MSG_NEW_CONN;
		m->fd = fd;
		format_addr(&ss, m->addr, sizeof(m->addr));
		struct server *s = a->srv;
		worker_post(&s->workers[a->next_worker++ % (unsigned)s->nworkers], &m->hdr);
	}
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acceptor *a = arg;
	event_add(a->listen_ev, NULL);
}

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acceptor *a = arg;
	struct msg *m = inbox_take_all(&a->inbox);
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_STOP)
			event_base_loopbreak(a->base);
		xfree(m);
		m = next;
	}
}

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	thread_set_role(THREAD_ACCEPTOR, 0);
	thread_set_name("meshd-accept");
	pthread_barrier_wait(&a->srv->start_barrier);
	event_base_dispatch(a->base);
	return NULL;
}

struct acceptor *acceptor_new(struct server *srv, int listen_fd)
{
	struct acceptor *a = xcalloc(1, sizeof(*a));
	a->srv = srv;
	a->fd = listen_fd;
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	a->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!a->base || !inbox_init(&a->inbox))
		die("acceptor_init_failed", "reason=%s", "event base or inbox");
	a->inbox_ev = event_new(a->base, inbox_fd(&a->inbox), EV_READ | EV_PERSIST, inbox_cb, a);
	a->listen_ev = event_new(a->base, listen_fd, EV_READ | EV_PERSIST, accept_cb, a);
	a->resume_ev = evtimer_new(a->base, resume_cb, a);
	event_add(a->inbox_ev, NULL);
	event_add(a->listen_ev, NULL);
	return a;
}

bool acceptor_start(struct acceptor *a)
{
	return pthread_create(&a->thread, NULL, acceptor_main, a) == 0;
}

void acceptor_stop(struct acceptor *a)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	m->type = MSG_STOP;
	inbox_push(&a->inbox, m);
	pthread_join(a->thread, NULL);
	close(a->fd);
	a->fd = -1;
}

void acceptor_free(struct acceptor *a)
{
	if (!a)
		return;
	struct msg *m = inbox_take_all(&a->inbox);
	while (m) {
		struct msg *next = m->next;
		xfree(m);
		m = next;
	}
	event_free(a->inbox_ev);
	event_free(a->listen_ev);
	event_free(a->resume_ev);
	event_base_free(a->base);
	inbox_destroy(&a->inbox);
	if (a->fd >= 0)
		close(a->fd);
	xfree(a);
}
