/* conntab — the connections of one event loop, and what waits for the end
 * of its iteration.
 *
 * The table gives every connection a slot; slot and generation make the id
 * {slot, gen} that database jobs and other threads may hold: it goes stale
 * when the slot is reused, so a late reply finds nothing instead of the
 * wrong connection (STYLE.md §4).
 *
 * Three deferred lists keep the loop's "one iteration, then flush" shape
 * (STYLE.md §5–6, Redis's beforeSleep): frames corked during the iteration
 * are sent, connections moving to another worker are handed over, and
 * released connections are freed, in that order, after it — when nothing up
 * the stack holds a connection any more.
 *
 * Worker thread, the table's own, for every function here.
 */
#ifndef MESHD_CONNTAB_H
#define MESHD_CONNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/ws.h"

struct config;
struct conn;
struct event_base;

struct conntab {
	int id;                    /* the worker's (logs, ownership assertions) */
	struct event_base *base;
	const struct config *cfg;
	void *owner;               /* the layer above's per-worker state (conn_owner) */

	struct conn **slots;
	uint32_t *gens;
	uint32_t nslots;
	uint32_t *free_slots;
	uint32_t nfree;
	size_t nconns;
	/* This worker's share of WS_PARTIAL_BUDGET_BYTES. */
	struct ws_budget ws_budget;

	struct conn *closing;      /* freed after the current loop iteration */
	struct conn *migrating;    /* handed to their owner after the iteration */
	struct conn *uncorking;    /* corked this iteration, in the order they corked */
	struct conn *uncorking_tail;
};

void conntab_init(struct conntab *t, int id, struct event_base *base, const struct config *cfg,
		  void *owner);
/* Frees the table itself: its connections are freed (conntab_abort_all,
 * conntab_free_closed) first. */
void conntab_destroy(struct conntab *t);

uint32_t conntab_add(struct conntab *t, struct conn *c, uint32_t *gen_out);
void conntab_remove(struct conntab *t, uint32_t slot);
/* The connection with that id, or NULL (closed, or its slot reused). */
struct conn *conntab_get(const struct conntab *t, uint32_t slot, uint32_t gen);
static inline size_t conntab_count(const struct conntab *t)
{
	return t->nconns;
}

/* Queue c for after this loop iteration (each at most once per list). */
void conntab_defer_free(struct conntab *t, struct conn *c);
void conntab_defer_migrate(struct conntab *t, struct conn *c);
void conntab_defer_uncork(struct conntab *t, struct conn *c);

/* After the loop iteration, in this order: */
/* Sends every cork in the order the connections first corked in the
 * iteration, so frames reach the kernel in the order they were made across
 * sockets too: a send's ack before the push it caused (PROTOCOL.md §6.1
 * step 6, observable by a client that reads both sockets). */
void conntab_uncork_all(struct conntab *t);
/* The next connection to hand over (still open, still in the table), or NULL. */
struct conn *conntab_take_migrating(struct conntab *t);
void conntab_free_closed(struct conntab *t);

/* conn_shutdown() / conn_abort() on every connection of the table. */
void conntab_shutdown_all(struct conntab *t);
void conntab_abort_all(struct conntab *t);

#endif
