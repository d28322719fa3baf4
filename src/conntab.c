/* conntab — one loop's connections and deferred lists; see include/meshd/conntab.h. */
#include "config.h"

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/metrics.h"
#include "meshd/thread.h"

void conntab_init(struct conntab *t, int id, struct event_base *base, const struct config *cfg,
		  void *owner)
{
	*t = (struct conntab){ .id = id, .base = base, .cfg = cfg, .owner = owner };
	/* An even share: workers hold no common counter (DESIGN.md), and the
	 * acceptor spreads connections evenly over them. */
	if (cfg && cfg->workers > 0)
		t->ws_budget.limit = cfg->ws_partial_budget_bytes / (uint64_t)cfg->workers;
}

void conntab_destroy(struct conntab *t)
{
	xfree(t->slots);
	xfree(t->gens);
	xfree(t->free_slots);
	t->slots = NULL;
	t->gens = t->free_slots = NULL;
	t->nslots = t->nfree = 0;
}

uint32_t conntab_add(struct conntab *t, struct conn *c, uint32_t *gen_out)
{
	MESHD_ASSERT_ON_WORKER(t);
	if (t->nfree == 0) {
		uint32_t old = t->nslots;
		uint32_t grown = old ? old * 2 : 64;
		t->slots = xrealloc(t->slots, grown * sizeof(*t->slots));
		t->gens = xrealloc(t->gens, grown * sizeof(*t->gens));
		t->free_slots = xrealloc(t->free_slots, grown * sizeof(*t->free_slots));
		/* Push new slots so the lowest index is handed out first. */
		for (uint32_t i = grown; i > old; i--) {
			t->slots[i - 1] = NULL;
			t->gens[i - 1] = 0;
			t->free_slots[t->nfree++] = i - 1;
		}
		t->nslots = grown;
	}
	uint32_t slot = t->free_slots[--t->nfree];
	t->slots[slot] = c;
	*gen_out = ++t->gens[slot];
	t->nconns++;
	metrics_gauge_add_label(METRIC_WORKER_CONNECTIONS, t->id, 1);
	return slot;
}

void conntab_remove(struct conntab *t, uint32_t slot)
{
	MESHD_ASSERT_ON_WORKER(t);
	t->slots[slot] = NULL;
	t->free_slots[t->nfree++] = slot;
	t->nconns--;
	metrics_gauge_add_label(METRIC_WORKER_CONNECTIONS, t->id, -1);
}

struct conn *conntab_get(const struct conntab *t, uint32_t slot, uint32_t gen)
{
	MESHD_ASSERT_ON_WORKER(t);
	if (slot >= t->nslots || t->gens[slot] != gen)
		return NULL;
	return t->slots[slot];
}

void conntab_defer_free(struct conntab *t, struct conn *c)
{
	c->next_closing = t->closing;
	t->closing = c;
}

void conntab_defer_migrate(struct conntab *t, struct conn *c)
{
	c->next_migrating = t->migrating;
	t->migrating = c;
}

void conntab_defer_uncork(struct conntab *t, struct conn *c)
{
	if (c->uncork_listed)
		return;
	c->uncork_listed = true;
	c->next_uncork = NULL;
	if (t->uncorking_tail)
		t->uncorking_tail->next_uncork = c;
	else
		t->uncorking = c;
	t->uncorking_tail = c;
}

/* Conns stay allocated until conntab_free_closed(), after this. */
void conntab_uncork_all(struct conntab *t)
{
	/* Taken whole: a connection corked again meanwhile waits for the next. */
	struct conn *c = t->uncorking;
	t->uncorking = t->uncorking_tail = NULL;
	while (c) {
		struct conn *next = c->next_uncork;
		c->next_uncork = NULL;
		conn_uncork(c);
		c = next;
	}
}

struct conn *conntab_take_migrating(struct conntab *t)
{
	while (t->migrating) {
		struct conn *c = t->migrating;
		t->migrating = c->next_migrating;
		c->next_migrating = NULL;
		if (c->state != CONN_CLOSED)
			return c;
		/* closed meanwhile: conntab_free_closed() has it */
	}
	return NULL;
}

void conntab_free_closed(struct conntab *t)
{
	while (t->closing) {
		struct conn *c = t->closing;
		t->closing = c->next_closing;
		conn_free(c);
	}
}

void conntab_shutdown_all(struct conntab *t)
{
	for (uint32_t i = 0; i < t->nslots; i++)
		if (t->slots[i])
			conn_shutdown(t->slots[i]);
}

void conntab_abort_all(struct conntab *t)
{
	for (uint32_t i = 0; i < t->nslots; i++)
		if (t->slots[i])
			conn_abort(t->slots[i]);
}
