/* fuzz_jsonl — libFuzzer harness for the transcript reader of status
 * inference (src/jsonl.c): jsonl_last_assistant_has_tool_use() on a file
 * holding the input, and jsonl_project_keys() on the input as a cwd.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        -I/usr/include/postgresql \
 *        tests/fuzz/fuzz_jsonl.c src/jsonl.c src/utf8.c src/alloc.c src/log.c \
 *        -ljansson -o /tmp/fuzz_jsonl
 * Run:   /tmp/fuzz_jsonl tests/fuzz/corpus/jsonl
 *
 * The reader is not incremental: it reads the tail of a file and walks its
 * lines from the end.  So the split property is about files: the input is
 * cut at a line boundary (the first newline at or after a point the
 * input's first byte picks) into P and F, with whole = P "\n" F; within the
 * 8 KiB tail, the whole's verdict is F's when F's is true, and is always
 * F's or P's (the last qualifying line decides, and the lines of the whole
 * are P's then F's).  A file larger than the tail has the verdict of its
 * last JSONL_TAIL_BYTES bytes.  The transcript files live in a private
 * directory under /dev/shm (or $TMPDIR, /tmp), removed at exit.
 *
 * jsonl_project_keys() of the input as a cwd (up to its first NUL): at
 * most eight keys, none empty, none repeated, none holding '/', and no
 * key longer than the cwd plus one.
 *
 * jsonlcache.c is not fuzzed: it only remembers directory listings and
 * stat()s, and its one parser is this one.
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meshd/alloc.h"
#include "meshd/jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		abort();
}

static char dir[256], path[300];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void init_once(void)
{
	static bool done;
	if (done)
		return;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/fuzz_jsonl.XXXXXX", base ? base : "/tmp");
	require(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/t.jsonl", dir);
	atexit(cleanup);
	done = true;
}

/* The verdict on a transcript holding a[0..na) b[0..nb). */
static bool verdict(const void *a, size_t na, const void *b, size_t nb)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	require(fd >= 0);
	require(write(fd, a, na) == (ssize_t)na);
	require(write(fd, b, nb) == (ssize_t)nb);
	close(fd);
	return jsonl_last_assistant_has_tool_use(path);
}

static void check_keys(const char *cwd)
{
	char **keys = jsonl_project_keys(cwd);
	size_t n = 0, len = strlen(cwd);

	for (; keys[n]; n++) {
		require(n < 8);
		require(*keys[n] && strlen(keys[n]) <= len + 1 && !strchr(keys[n], '/'));
		for (size_t j = 0; j < n; j++)
			require(strcmp(keys[j], keys[n]) != 0);
	}
	jsonl_keys_free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();

	char *cwd = xstrndup((const char *)data, size);
	check_keys(cwd);
	xfree(cwd);

	bool whole = verdict(data, size, "", 0);
	if (size > JSONL_TAIL_BYTES) {
		require(whole == verdict(data + size - JSONL_TAIL_BYTES, JSONL_TAIL_BYTES, "", 0));
		return 0;
	}
	if (size < 2)
		return 0;
	/* Cut at the first newline at or after the picked point. */
	size_t from = 1 + data[0] % (size - 1);
	const uint8_t *nl = memchr(data + from, '\n', size - from);
	if (!nl)
		return 0;
	size_t cut = (size_t)(nl - data);
	bool p = verdict(data, cut, "", 0);
	bool f = verdict(nl + 1, size - cut - 1, "", 0);
	if (f)
		require(whole);
	require(whole == f || whole == p);
	if (whole)
		require(p || f);
	return 0;
}
