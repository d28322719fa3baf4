/* claims — what a presence was pushed and not seen acked; see include/meshd/claims.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/claims.h"

static struct claim *at(const struct claims *cl, unsigned i)
{
	return &cl->v[(cl->head + i) % cl->cap];
}

/* Acked entries at the head are dropped, so the head is the oldest live one. */
static void trim(struct claims *cl)
{
	while (cl->n > 0 && !at(cl, 0)->live) {
		cl->head = (cl->head + 1) % cl->cap;
		cl->n--;
	}
}

/* Squeezes acked entries out of a full ring, keeping the order. */
static void compact(struct claims *cl)
{
	unsigned w = 0;
	for (unsigned r = 0; r < cl->n; r++)
		if (at(cl, r)->live)
			*at(cl, w++) = *at(cl, r);
	cl->n = w;
}

static void grow(struct claims *cl)
{
	unsigned cap = cl->cap ? cl->cap * 2 : 8;
	struct claim *v = xcalloc(cap, sizeof(*v));
	for (unsigned i = 0; i < cl->n; i++)
		v[i] = *at(cl, i);
	xfree(cl->v);
	cl->v = v;
	cl->cap = cap;
	cl->head = 0;
}

void claims_add(struct claims *cl, const char *id, int64_t now_ms)
{
	if (!cl->spilled && cl->n == cl->cap && cl->cap > 0)
		compact(cl);
	if (!cl->spilled && cl->n == cl->cap && cl->cap < CLAIMS_TRACKED)
		grow(cl);
	/* Once spilled, later claims spill too: the ring stays older than the spill. */
	if (cl->spilled || cl->n == cl->cap) {
		if (!cl->spilled)
			cl->spill_first_ms = now_ms;
		cl->spilled = true;
		cl->spill_last_ms = now_ms;
		return;
	}
	struct claim *c = at(cl, cl->n++);
	snprintf(c->id, sizeof(c->id), "%s", id ? id : "");
	c->live = true;
	c->at_ms = now_ms;
}

bool claims_ack(struct claims *cl, const char *id)
{
	if (!id || !*id)
		return false;
	for (unsigned i = 0; i < cl->n; i++) {
		struct claim *c = at(cl, i);
		if (c->live && strcmp(c->id, id) == 0) {
			c->live = false;
			trim(cl);
			return true;
		}
	}
	return false;
}

void claims_covered(struct claims *cl, int64_t start_ms, int64_t lease_ms)
{
	while (cl->n > 0 && at(cl, 0)->at_ms + lease_ms < start_ms) {
		at(cl, 0)->live = false;
		trim(cl);
	}
	trim(cl);
	if (cl->spilled && cl->n == 0 && cl->spill_last_ms + lease_ms < start_ms)
		cl->spilled = false;
}

bool claims_oldest(const struct claims *cl, int64_t *at_ms)
{
	if (cl->n > 0) {
		*at_ms = at(cl, 0)->at_ms;
		return true;
	}
	if (cl->spilled) {
		*at_ms = cl->spill_first_ms;
		return true;
	}
	return false;
}

bool claims_due(const struct claims *cl, int64_t now_ms, int64_t lease_ms)
{
	int64_t t;
	return claims_oldest(cl, &t) && t + lease_ms <= now_ms;
}

void claims_free(struct claims *cl)
{
	xfree(cl->v);
	memset(cl, 0, sizeof(*cl));
}
