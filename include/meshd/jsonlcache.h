/* jsonlcache — jsonl_infer() without re-reading what has not changed, so a
 * drain or a send on a worker costs a few stat() calls instead of a
 * directory scan and a transcript read per candidate recipient (issue 12).
 *
 * The answer is exactly jsonl_infer()'s, from what it remembers per cwd:
 *   - whether each candidate project directory existed (one that did not
 *     cannot appear without changing the projects directory's mtime);
 *   - each existing candidate's "*.jsonl" names, valid while its mtime is;
 *   - the verdict of the newest transcript, valid while its path, mtime
 *     and size are.
 * A timestamp less than JSONLCACHE_RACY_MS old is never trusted (a change
 * within the same clock tick would not move it), so a directory or file
 * being written is simply read again, as it would be without the cache.
 * At most max_cwds entries; past that the cache starts afresh.
 *
 * One cache per shard: its owner thread only.
 */
#ifndef MESHD_JSONLCACHE_H
#define MESHD_JSONLCACHE_H

#include <stddef.h>

#include "meshd/shard.h" /* enum peer_status */

#define JSONLCACHE_RACY_MS 2000

struct jsonl_cache;

struct jsonl_cache_counts {
	unsigned long dir_reads;   /* directories listed */
	unsigned long file_reads;  /* transcripts read */
};

struct jsonl_cache *jsonl_cache_new(size_t max_cwds) __attribute__((returns_nonnull));
void jsonl_cache_free(struct jsonl_cache *c);

/* jsonl_infer(projects_dir, cwd), remembered. */
enum peer_status jsonl_cache_infer(struct jsonl_cache *c, const char *projects_dir,
				   const char *cwd);

/* What it had to read so far (tests, and the closing note's evidence). */
struct jsonl_cache_counts jsonl_cache_counts(const struct jsonl_cache *c);

#endif
