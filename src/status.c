/* status — names, the §7.1 write rule and the §B.8 gate
 * (SEMANTICS.md §B.2, §B.3, §B.8).  See include/meshd/status.h. */
#include "config.h"

#include <string.h>

#include "meshd/status.h"

/* ---- names ---------------------------------------------------------- */

const char *status_name(enum peer_status s)
{
	switch (s) {
	case STATUS_WORKING:
		return "working";
	case STATUS_DND:
		return "dnd";
	case STATUS_IDLE:
	default:
		return "idle";
	}
}

bool status_parse(const char *s, enum peer_status *out)
{
	if (!s)
		return false;
	if (strcmp(s, "idle") == 0)
		*out = STATUS_IDLE;
	else if (strcmp(s, "working") == 0)
		*out = STATUS_WORKING;
	else if (strcmp(s, "dnd") == 0)
		*out = STATUS_DND;
	else
		return false;
	return true;
}

const char *status_source_name(enum status_source src)
{
	switch (src) {
	case SOURCE_HOOK:
		return "hook";
	case SOURCE_MANUAL:
		return "manual";
	case SOURCE_JSONL:
	default:
		return "jsonl";
	}
}

/* ---- write rule and gate ------------------------------------------- */

/* sourceRank: hook 3, manual 2, anything else 1. */
static int source_rank(enum status_source src)
{
	switch (src) {
	case SOURCE_HOOK:
		return 3;
	case SOURCE_MANUAL:
		return 2;
	default:
		return 1;
	}
}

bool status_is_fresh(const struct status_state *st, int64_t now_ms, int64_t fresh_window_ms)
{
	/* Ordered so that the subtraction cannot overflow for sane clocks:
	 * a future timestamp is rejected before computing the age. */
	if (st->updated_ms > now_ms)
		return false;
	return now_ms - st->updated_ms <= fresh_window_ms;
}

bool status_is_hook_fresh(const struct status_state *st, int64_t now_ms,
			  int64_t fresh_window_ms)
{
	return st->source == SOURCE_HOOK && status_is_fresh(st, now_ms, fresh_window_ms);
}

void status_write(struct status_state *st, enum peer_status status, enum status_source source,
		  int64_t now_ms, int64_t fresh_window_ms)
{
	if (st->status != status) {
		st->status = status;
		st->source = source;
	} else if (source_rank(source) >= source_rank(st->source)) {
		st->source = source;
	} else if (status_is_fresh(st, now_ms, fresh_window_ms)) {
		/* A stronger, fresh source keeps its attribution. */
	} else {
		st->source = source; /* honest downgrade of a stale attribution */
	}
	st->updated_ms = now_ms;
}

unsigned status_deliverable(enum peer_status s)
{
	if (s == STATUS_IDLE)
		return PRIO_NOW | PRIO_NEXT | PRIO_LOW;
	return PRIO_NOW;
}
