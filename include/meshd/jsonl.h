/* jsonl — status inference from Claude Code transcripts (PROTOCOL.md §7.2,
 * decision D8, SEMANTICS.md §B.12): the project directories a cwd maps to,
 * the newest transcript in them, and whether its last assistant entry uses
 * a tool.
 *
 * These do blocking, bounded file-system I/O (at most JSONL_MAX_DIRENTS
 * directory entries examined and JSONL_TAIL_BYTES bytes read per call) and
 * keep no state.  Any thread may call them.
 */
#ifndef MESHD_JSONL_H
#define MESHD_JSONL_H

#include <stdbool.h>
#include <sys/stat.h>

#include "meshd/shard.h" /* enum peer_status */

/* How much of a transcript is read: its last 8192 bytes (§B.12 TAIL_BYTES). */
#define JSONL_TAIL_BYTES 8192
/* Directory entries examined per inference, over all candidate directories
 * together, so a huge projects directory cannot stall the calling thread. */
#define JSONL_MAX_DIRENTS 4096

/* cwdToProjectKeyCandidates (§B.12): a NULL-terminated array of the
 * candidate project-directory names for cwd, ordered and de-duplicated,
 * never containing an empty string (NULL or "" cwd -> an empty array).
 * Free with jsonl_keys_free() (which frees any NULL-terminated list this module
 * returns). */
char **jsonl_project_keys(const char *cwd) __attribute__((warn_unused_result, returns_nonnull));
void jsonl_keys_free(char **keys);

/* findActiveJsonl (§B.12): in the first candidate directory under
 * projects_dir that holds a file whose name ends with ".jsonl", the one
 * with the newest mtime (full timespec).  Names are sorted (strcmp) before
 * comparing, so among equal mtimes the smallest name wins — deterministic,
 * where the reference keeps whichever readdir listed first.  The keys "."
 * and ".." are never looked up (they would leave projects_dir).  Returns a
 * malloc'd path or NULL. */
char *jsonl_find_active(const char *projects_dir, const char *cwd)
	__attribute__((warn_unused_result));

/* The pieces of jsonl_find_active, for the cache (jsonlcache.h).  The
 * "*.jsonl" names in dir, sorted (strcmp), NULL-terminated; NULL when dir
 * is missing or unreadable.  Each entry read costs one unit of *budget.
 * Free with jsonl_keys_free(). */
char **jsonl_dir_names(const char *dir, unsigned *budget) __attribute__((warn_unused_result));
/* Of those names in dir, the one with the newest mtime (the first, in name
 * order, among equal ones): its path (xfree it), its stat in *st; NULL when
 * none can be stat'ed. */
char *jsonl_newest(const char *dir, char *const *names, struct stat *st)
	__attribute__((warn_unused_result));

/* lastAssistantHasToolUse (§B.12): in the last min(8192, size) bytes of
 * path, the last line containing "\"assistant\"" that parses as a JSON
 * object with type "assistant" and an array message.content decides:
 * true iff an element of it has type "tool_use".  No such line, a
 * non-regular file or any I/O error -> false. */
bool jsonl_last_assistant_has_tool_use(const char *path);

/* inferStatusFromJsonl (§B.12): WORKING if the active transcript's last
 * assistant entry uses a tool, else IDLE (also for a NULL or empty
 * projects_dir, a NULL cwd, or nothing found).  Never DND. */
enum peer_status jsonl_infer(const char *projects_dir, const char *cwd);

#endif
