/* pending — hook statuses waiting for their presence; see include/meshd/pending.h. */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/pending.h"

struct entry {
	long long pid;
	char *cwd;
	enum peer_status status;
	int64_t at_ms;
};

/* Oldest first: entries are appended as they come, so the array is in
 * arrival order and expiry only ever removes a prefix. */
struct pending {
	pthread_mutex_t lock;
	struct entry *v;
	size_t n, max;
	int64_t ttl_ms;
};

struct pending *pending_new(size_t max, int64_t ttl_ms)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->v = xcalloc(max ? max : 1, sizeof(*p->v));
	p->max = max ? max : 1;
	p->ttl_ms = ttl_ms;
	return p;
}

void pending_free(struct pending *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		xfree(p->v[i].cwd);
	xfree(p->v);
	pthread_mutex_destroy(&p->lock);
	xfree(p);
}

/* Removes the first k entries; p->lock held. */
static void drop_prefix_locked(struct pending *p, size_t k)
{
	for (size_t i = 0; i < k; i++)
		xfree(p->v[i].cwd);
	memmove(p->v, p->v + k, (p->n - k) * sizeof(*p->v));
	p->n -= k;
}

static void expire_locked(struct pending *p, int64_t now_ms)
{
	size_t k = 0;
	while (k < p->n && now_ms - p->v[k].at_ms > p->ttl_ms)
		k++;
	drop_prefix_locked(p, k);
}

void pending_put(struct pending *p, long long pid, const char *cwd, enum peer_status status,
		 int64_t now_ms)
{
	pthread_mutex_lock(&p->lock);
	expire_locked(p, now_ms);
	if (p->n == p->max)
		drop_prefix_locked(p, 1);
	p->v[p->n++] = (struct entry){ pid, xstrdup(cwd), status, now_ms };
	pthread_mutex_unlock(&p->lock);
}

bool pending_take(struct pending *p, long long pid, const char *cwd, int64_t now_ms,
		  enum peer_status *out)
{
	bool found = false;
	pthread_mutex_lock(&p->lock);
	expire_locked(p, now_ms);
	size_t o = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct entry *e = &p->v[i];
		if (e->pid == pid && strcmp(e->cwd, cwd) == 0) {
			*out = e->status; /* a later one overwrites: the newest wins */
			found = true;
			xfree(e->cwd);
			continue;
		}
		p->v[o++] = *e;
	}
	p->n = o;
	pthread_mutex_unlock(&p->lock);
	return found;
}

size_t pending_size(struct pending *p)
{
	pthread_mutex_lock(&p->lock);
	size_t n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}
