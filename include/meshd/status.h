/* status — the pure parts of the presence status engine: names, the
 * source-precedence write rule (PROTOCOL.md §7.1, SEMANTICS.md §B.2–§B.3),
 * the priority delivery gate (§B.8) and JSONL inference from Claude Code
 * transcripts (PROTOCOL.md §7.2, decision D8, SEMANTICS.md §B.12).
 *
 * Nothing here keeps state: the caller owns the struct status_state (the
 * presence's fields) and the clock.  The JSONL functions do blocking,
 * bounded file-system I/O (at most STATUS_JSONL_MAX_DIRENTS directory
 * entries examined and STATUS_JSONL_TAIL_BYTES bytes read per call); every
 * other function is pure.  Any thread may call any of them.
 */
#ifndef MESHD_STATUS_H
#define MESHD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/shard.h" /* enum peer_status, enum status_source */

/* Message priorities as a bitmask, for status_deliverable(). */
enum { PRIO_NOW = 1, PRIO_NEXT = 2, PRIO_LOW = 4 };

/* How much of a transcript is read: its last 8192 bytes (§B.12 TAIL_BYTES). */
#define STATUS_JSONL_TAIL_BYTES 8192
/* Directory entries examined per inference, over all candidate directories
 * together, so a huge projects directory cannot stall the calling thread. */
#define STATUS_JSONL_MAX_DIRENTS 4096

/* "idle", "working", "dnd" ("idle" for an out-of-range value). */
const char *status_name(enum peer_status s);
/* Exactly "idle", "working" or "dnd" (case-sensitive); false otherwise,
 * *out untouched. */
bool status_parse(const char *s, enum peer_status *out) __attribute__((warn_unused_result));
/* "jsonl", "manual", "hook" ("jsonl" for an out-of-range value: rank 1). */
const char *status_source_name(enum status_source src);

/* A presence's status triple. */
struct status_state {
	enum peer_status status;
	enum status_source source;
	int64_t updated_ms;          /* wall clock, ms since the epoch */
};

/* Fresh: 0 <= now_ms - updated_ms <= fresh_window_ms (inclusive; a future
 * timestamp is not fresh).  Same window for every source (§B.2). */
bool status_is_fresh(const struct status_state *st, int64_t now_ms, int64_t fresh_window_ms);
/* isHookFresh: source is hook and status_is_fresh(). */
bool status_is_hook_fresh(const struct status_state *st, int64_t now_ms,
			  int64_t fresh_window_ms);

/* writeStatus (§7.1 / §B.3), applied to *st; exactly one of:
 *   status differs             -> status, source, updated = now
 *   rank(source) >= rank(old)  -> source, updated = now
 *   old entry fresh            -> updated = now (keeps the stronger source)
 *   otherwise (stale)          -> source, updated = now (honest downgrade)
 * No DND guard: callers apply "only set_status leaves dnd" themselves. */
void status_write(struct status_state *st, enum peer_status status, enum status_source source,
		  int64_t now_ms, int64_t fresh_window_ms);

/* deliverablePriorities (§B.8): idle -> NOW|NEXT|LOW; working, dnd and
 * anything else -> NOW. */
unsigned status_deliverable(enum peer_status s);

/* cwdToProjectKeyCandidates (§B.12): a NULL-terminated array of the
 * candidate project-directory names for cwd, ordered and de-duplicated,
 * never containing an empty string (NULL or "" cwd -> an empty array).
 * Free with status_keys_free(). */
char **status_project_keys(const char *cwd) __attribute__((warn_unused_result, returns_nonnull));
void status_keys_free(char **keys);

/* findActiveJsonl (§B.12): in the first candidate directory under
 * projects_dir that holds a file whose name ends with ".jsonl", the one
 * with the newest mtime (full timespec).  Names are sorted (strcmp) before
 * comparing, so among equal mtimes the smallest name wins — deterministic,
 * where the reference keeps whichever readdir listed first.  The keys "."
 * and ".." are never looked up (they would leave projects_dir).  Returns a
 * malloc'd path or NULL. */
char *status_find_active_jsonl(const char *projects_dir, const char *cwd)
	__attribute__((warn_unused_result));

/* lastAssistantHasToolUse (§B.12): in the last min(8192, size) bytes of
 * path, the last line containing "\"assistant\"" that parses as a JSON
 * object with type "assistant" and an array message.content decides:
 * true iff an element of it has type "tool_use".  No such line, a
 * non-regular file or any I/O error -> false. */
bool status_last_assistant_has_tool_use(const char *path);

/* inferStatusFromJsonl (§B.12): WORKING if the active transcript's last
 * assistant entry uses a tool, else IDLE (also for a NULL or empty
 * projects_dir, a NULL cwd, or nothing found).  Never DND. */
enum peer_status status_infer_jsonl(const char *projects_dir, const char *cwd);

#endif
