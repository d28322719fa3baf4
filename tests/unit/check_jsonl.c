/* Unit tests: §B.12 JSONL inference (src/jsonl.c) — project keys, the
 * transcript reader against a private temp directory, and its cache
 * (src/jsonlcache.c), which must answer as the reader does. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meshd/alloc.h"
#include "meshd/jsonl.h"
#include "meshd/jsonlcache.h"

/* ---- project keys --------------------------------------------------- */

static void check_keys(const char *cwd, const char *const *want)
{
	char **got = jsonl_project_keys(cwd);
	size_t i = 0;
	for (; want[i]; i++) {
		ck_assert_msg(got[i] != NULL, "cwd %s: key %zu missing (want %s)", cwd, i, want[i]);
		ck_assert_str_eq(got[i], want[i]);
	}
	ck_assert_msg(got[i] == NULL, "cwd %s: extra key %s", cwd, got[i]);
	jsonl_keys_free(got);
}

#define KEYS(cwd, ...) check_keys(cwd, (const char *const[]){ __VA_ARGS__, NULL })

START_TEST(project_keys)
{
	KEYS("/Users/agutierrez/Desktop/foo", "-Users-agutierrez-Desktop-foo");
	KEYS("/home/alice/project", "-home-alice-project");
	KEYS("H:\\Claude", "H--Claude", "H:\\Claude", "H:-Claude", "-Claude", "-H--Claude",
	     "-H:\\Claude", "-H:-Claude");
	KEYS("C:\\Users\\Alice", "C--Users-Alice", "C:\\Users\\Alice", "C:-Users-Alice",
	     "-Users-Alice", "-C--Users-Alice", "-C:\\Users\\Alice", "-C:-Users-Alice");
	KEYS("C:/Users/x", "C--Users-x", "C:-Users-x", "-Users-x", "-C--Users-x", "-C:-Users-x");
	KEYS("project/foo", "project-foo", "-project-foo");
	KEYS("relative", "relative", "-relative");
	KEYS("/a:b/c", "-a-b-c", "-a:b-c");
	KEYS("/", "-");

	char **k = jsonl_project_keys("C:\\Users\\Alice\\dev\\myapp");
	ck_assert_str_eq(k[0], "C--Users-Alice-dev-myapp");
	jsonl_keys_free(k);

	k = jsonl_project_keys("");
	ck_assert_ptr_null(k[0]);
	jsonl_keys_free(k);
	k = jsonl_project_keys(NULL);
	ck_assert_ptr_null(k[0]);
	jsonl_keys_free(k);
	/* A drive prefix only: rule 4 gives "", which is never added. */
	KEYS("C:", "C-", "C:", "-C-", "-C:");
}
END_TEST

/* ---- JSONL inference ------------------------------------------------ */

static char tmp_root[64]; /* made by the unchecked fixture, in the parent */

static void tmp_setup(void)
{
	strcpy(tmp_root, "/tmp/check_jsonl.XXXXXX");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		abort();
	}
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_teardown(void)
{
	if (tmp_root[0] && nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		perror("nftw cleanup");
}

/* Fresh projects dir for one test: <tmp_root>/<name>/projects (made). */
static char *projects_for(const char *name)
{
	char *p = xmalloc(strlen(tmp_root) + strlen(name) + 16);
	sprintf(p, "%s/%s", tmp_root, name);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	strcat(p, "/projects");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	return p;
}

/* mkdir <projects>/<key>; returns that path. */
static char *project_dir(const char *projects, const char *key)
{
	char *p = xmalloc(strlen(projects) + strlen(key) + 2);
	sprintf(p, "%s/%s", projects, key);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	return p;
}

static void set_mtime(const char *path, time_t sec)
{
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Writes content to dir/name with mtime `sec` (0: leave it); returns the path. */
static char *put(const char *dir, const char *name, const char *content, time_t sec)
{
	char *p = xmalloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	if (sec)
		set_mtime(p, sec);
	return p;
}

#define A_TOOL "{\"type\":\"assistant\",\"message\":{\"role\":\"assistant\",\"content\":" \
	"[{\"type\":\"text\",\"text\":\"running\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\"}]}}\n"
#define A_TEXT "{\"type\":\"assistant\",\"message\":{\"role\":\"assistant\",\"content\":" \
	"[{\"type\":\"text\",\"text\":\"done\"}]}}\n"
#define U_RESULT "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":" \
	"[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"ok\"}]}}\n"
#define CWD "/home/alice/project"
#define KEY "-home-alice-project"

/* Writes one transcript and returns the inference for it. */
static enum peer_status infer_one(const char *test, const char *content)
{
	char *projects = projects_for(test);
	char *dir = project_dir(projects, KEY);
	xfree(put(dir, "s.jsonl", content, 0));
	enum peer_status s = jsonl_infer(projects, CWD);
	xfree(dir);
	xfree(projects);
	return s;
}

START_TEST(infer_newest_file_decides)
{
	char *projects = projects_for("newest");
	char *dir = project_dir(projects, KEY);
	char *a = put(dir, "a.jsonl", A_TEXT, 1000);
	char *b = put(dir, "b.jsonl", A_TOOL, 2000);
	xfree(put(dir, "notes.txt", A_TOOL, 3000)); /* not *.jsonl: ignored */

	char *found = jsonl_find_active(projects, CWD);
	ck_assert_str_eq(found, b);
	xfree(found);
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_WORKING);

	/* Swap the mtimes: the text-only transcript is now the active one. */
	set_mtime(a, 3000);
	found = jsonl_find_active(projects, CWD);
	ck_assert_str_eq(found, a);
	xfree(found);
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_IDLE);

	/* Equal mtimes: the smallest name wins (names are sorted). */
	set_mtime(b, 3000);
	found = jsonl_find_active(projects, CWD);
	ck_assert_str_eq(found, a);
	xfree(found);

	xfree(a);
	xfree(b);
	xfree(dir);
	xfree(projects);
}
END_TEST

START_TEST(infer_last_assistant_line_decides)
{
	ck_assert_int_eq(infer_one("tool", A_TOOL), STATUS_WORKING);
	ck_assert_int_eq(infer_one("text", A_TEXT), STATUS_IDLE);
	/* Followed by user / tool_result lines: still the last assistant. */
	ck_assert_int_eq(infer_one("tool_then_user", A_TEXT A_TOOL U_RESULT U_RESULT "\n"),
			 STATUS_WORKING);
	ck_assert_int_eq(infer_one("text_then_user", A_TOOL A_TEXT U_RESULT), STATUS_IDLE);
	/* No trailing newline, CRLF line ends, blank lines. */
	ck_assert_int_eq(infer_one("noeol", A_TEXT "{\"type\":\"assistant\",\"message\":"
				   "{\"content\":[{\"type\":\"tool_use\"}]}}"),
			 STATUS_WORKING);
	ck_assert_int_eq(infer_one("crlf", "{\"type\":\"assistant\",\"message\":"
				   "{\"content\":[{\"type\":\"tool_use\"}]}}\r\n\r\n  \n"),
			 STATUS_WORKING);
	/* Lines that mention "assistant" but do not qualify are skipped:
	 * wrong type, content not an array, not JSON, no message. */
	ck_assert_int_eq(infer_one("skips", A_TOOL
				   "{\"type\":\"user\",\"role\":\"assistant\",\"message\":{\"content\":[]}}\n"
				   "{\"type\":\"assistant\",\"message\":{\"content\":\"text\"}}\n"
				   "{\"type\":\"assistant\",\"message\":{\"content\":[\n"
				   "{\"type\":\"assistant\",\"message\":null}\n"
				   "[\"assistant\"]\n"),
			 STATUS_WORKING);
	/* An empty content array qualifies: idle. */
	ck_assert_int_eq(infer_one("empty_content", A_TOOL
				   "{\"type\":\"assistant\",\"message\":{\"content\":[]}}\n"),
			 STATUS_IDLE);
	/* Empty file; a file without any assistant line. */
	ck_assert_int_eq(infer_one("empty", ""), STATUS_IDLE);
	ck_assert_int_eq(infer_one("user_only", U_RESULT U_RESULT), STATUS_IDLE);
}
END_TEST

/* What the reference's JSON.parse and trim() accept, so must we. */
START_TEST(infer_node_compatible_parsing)
{
	/* `c.type` on a null element throws there: the line is skipped. */
	ck_assert_int_eq(infer_one("null_elem", A_TOOL
				   "{\"type\":\"assistant\",\"message\":{\"content\":[null]}}\n"),
			 STATUS_WORKING);
	ck_assert_int_eq(infer_one("null_elem2", A_TEXT
				   "{\"type\":\"assistant\",\"message\":{\"content\":"
				   "[{\"type\":\"tool_use\"},null]}}\n"),
			 STATUS_WORKING);
	/* Non-object elements are fine (no tool_use among them). */
	ck_assert_int_eq(infer_one("prim_elem", A_TOOL
				   "{\"type\":\"assistant\",\"message\":{\"content\":[1,\"x\",[]]}}\n"),
			 STATUS_IDLE);
	/* A lone surrogate escape (modern JSON.stringify writes these). */
	ck_assert_int_eq(infer_one("surrogate", A_TEXT
				   "{\"type\":\"assistant\",\"message\":{\"content\":"
				   "[{\"type\":\"text\",\"text\":\"\\ud83d \\\\ud800 \\ude00\"},"
				   "{\"type\":\"tool_use\"}]}}\n"),
			 STATUS_WORKING);
	/* Invalid UTF-8 inside a string (Node decodes with U+FFFD). */
	ck_assert_int_eq(infer_one("bad_utf8", A_TEXT
				   "{\"type\":\"assistant\",\"message\":{\"content\":"
				   "[{\"type\":\"text\",\"text\":\"\xff\xc0\xaf\xed\xa0\x80\"},"
				   "{\"type\":\"tool_use\"}]}}\n"),
			 STATUS_WORKING);
	/* Integers beyond int64, \u0000 in a string, Unicode spaces trimmed. */
	ck_assert_int_eq(infer_one("wide", A_TEXT
				   "\xc2\xa0\xef\xbb\xbf{\"n\":123456789012345678901234567890,"
				   "\"z\":\"a\\u0000b\",\"type\":\"assistant\",\"message\":"
				   "{\"content\":[{\"type\":\"tool_use\"}]}}\xe2\x80\xa8\xe3\x80\x80\n"),
			 STATUS_WORKING);
	/* The decisive strings must match exactly. */
	ck_assert_int_eq(infer_one("nul_type", A_TOOL
				   "{\"type\":\"assistant\",\"message\":{\"content\":"
				   "[{\"type\":\"tool_use\\u0000\"}]}}\n"),
			 STATUS_IDLE);
}
END_TEST

START_TEST(infer_tail_is_bounded)
{
	size_t pad = 9000;
	const char *head = "{\"type\":\"assistant\",\"message\":{\"content\":"
			   "[{\"type\":\"tool_use\",\"input\":\"";
	const char *tail = "\"}]}}\n";
	char *big = xmalloc(strlen(head) + pad + strlen(tail) + sizeof(A_TOOL));
	strcpy(big, head);
	memset(big + strlen(head), 'x', pad);
	strcpy(big + strlen(head) + pad, tail);
	ck_assert_uint_gt(strlen(big), JSONL_TAIL_BYTES);

	/* Alone: only its truncated end is read, which does not parse. */
	ck_assert_int_eq(infer_one("big_alone", big), STATUS_IDLE);
	/* Followed by a complete short line: that one decides. */
	strcat(big, A_TOOL);
	ck_assert_int_eq(infer_one("big_then_tool", big), STATUS_WORKING);
	xfree(big);
}
END_TEST

START_TEST(infer_nothing_found)
{
	char *projects = projects_for("nothing");

	/* Missing / unset projects dir. */
	char *missing = xmalloc(strlen(projects) + 16);
	sprintf(missing, "%s/absent", projects);
	ck_assert_int_eq(jsonl_infer(missing, CWD), STATUS_IDLE);
	ck_assert_ptr_null(jsonl_find_active(missing, CWD));
	ck_assert_int_eq(jsonl_infer(NULL, CWD), STATUS_IDLE);
	ck_assert_int_eq(jsonl_infer("", CWD), STATUS_IDLE);
	ck_assert_int_eq(jsonl_infer(projects, NULL), STATUS_IDLE);
	ck_assert_int_eq(jsonl_infer(projects, ""), STATUS_IDLE);
	xfree(missing);

	/* No project dir for the cwd. */
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_IDLE);
	/* Project dir without a *.jsonl file. */
	char *dir = project_dir(projects, KEY);
	xfree(put(dir, "notes.txt", A_TOOL, 0));
	xfree(put(dir, "s.jsonl.bak", A_TOOL, 0));
	xfree(put(dir, "sjsonl", A_TOOL, 0));
	ck_assert_ptr_null(jsonl_find_active(projects, CWD));
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_IDLE);

	/* Nonexistent transcript path. */
	char *gone = xmalloc(strlen(dir) + 16);
	sprintf(gone, "%s/gone.jsonl", dir);
	ck_assert(!jsonl_last_assistant_has_tool_use(gone));
	ck_assert(!jsonl_last_assistant_has_tool_use(NULL));
	xfree(gone);

	/* "." and ".." keys never read projects_dir or its parent. */
	xfree(put(projects, "top.jsonl", A_TOOL, 0));
	ck_assert_ptr_null(jsonl_find_active(projects, "."));
	ck_assert_ptr_null(jsonl_find_active(projects, ".."));

	xfree(dir);
	xfree(projects);
}
END_TEST

/* Candidate order: a first-choice dir without a transcript falls through
 * to the next candidate. */
START_TEST(infer_falls_through_candidates)
{
	char *projects = projects_for("fallthrough");
	char *first = project_dir(projects, "C--Users-Alice");
	char *second = project_dir(projects, "C:\\Users\\Alice");
	char *third = project_dir(projects, "-Users-Alice");
	xfree(put(third, "t.jsonl", A_TEXT, 0));
	char *want = put(second, "s.jsonl", A_TOOL, 0);

	char *found = jsonl_find_active(projects, "C:\\Users\\Alice");
	ck_assert_str_eq(found, want);
	xfree(found);
	ck_assert_int_eq(jsonl_infer(projects, "C:\\Users\\Alice"), STATUS_WORKING);

	xfree(want);
	xfree(first);
	xfree(second);
	xfree(third);
	xfree(projects);
}
END_TEST

/* Entries that are not regular files: a FIFO must not block, a directory
 * named *.jsonl can be chosen (as in the reference) but reads as idle. */
START_TEST(infer_special_files)
{
	char *projects = projects_for("special");
	char *dir = project_dir(projects, KEY);
	char *fifo = xmalloc(strlen(dir) + 16);
	sprintf(fifo, "%s/p.jsonl", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	set_mtime(fifo, 5000);
	xfree(put(dir, "a.jsonl", A_TOOL, 1000));
	ck_assert(!jsonl_last_assistant_has_tool_use(fifo));
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_IDLE);

	char *sub = xmalloc(strlen(dir) + 16);
	sprintf(sub, "%s/z.jsonl", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	set_mtime(sub, 9000);
	ck_assert(!jsonl_last_assistant_has_tool_use(sub));
	ck_assert_int_eq(jsonl_infer(projects, CWD), STATUS_IDLE);

	xfree(sub);
	xfree(fifo);
	xfree(dir);
	xfree(projects);
}
END_TEST

/* The directory-entry budget covers the whole call: a crowded first
 * candidate exhausts it, and the second candidate is never listed. */
START_TEST(infer_dirent_budget)
{
	char *projects = projects_for("budget");
	char *first = project_dir(projects, "C--Users-Alice");
	char *second = project_dir(projects, "C:\\Users\\Alice");
	xfree(put(second, "s.jsonl", A_TOOL, 0));
	char *p = xmalloc(strlen(first) + 32);
	for (int i = 0; i < JSONL_MAX_DIRENTS; i++) {
		sprintf(p, "%s/f%05d", first, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	xfree(p);
	ck_assert_ptr_null(jsonl_find_active(projects, "C:\\Users\\Alice"));
	ck_assert_int_eq(jsonl_infer(projects, "C:\\Users\\Alice"), STATUS_IDLE);
	xfree(first);
	xfree(second);
	xfree(projects);
}
END_TEST

/* ---- the cache (src/jsonlcache.c) ----------------------------------- */

static void same_as_uncached(struct jsonl_cache *c, const char *projects, const char *cwd)
{
	ck_assert_int_eq(jsonl_cache_infer(c, projects, cwd), jsonl_infer(projects, cwd));
}

START_TEST(cache_answers_as_jsonl_infer_and_reads_only_what_changed)
{
	char *projects = projects_for("cache");
	time_t t = time(NULL);
	struct jsonl_cache *c = jsonl_cache_new(16);
	/* No candidate directory yet. */
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_IDLE);
	char *dir = project_dir(projects, KEY);
	char *f = put(dir, "a.jsonl", A_TOOL, t - 60);
	set_mtime(dir, t - 50);
	set_mtime(projects, t - 50);
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_WORKING);
	struct jsonl_cache_counts n = jsonl_cache_counts(c);
	ck_assert_uint_eq(n.file_reads, 1);

	/* Nothing changed: nothing is read again. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_WORKING);
	ck_assert_uint_eq(jsonl_cache_counts(c).dir_reads, n.dir_reads);
	ck_assert_uint_eq(jsonl_cache_counts(c).file_reads, n.file_reads);

	/* The transcript moves on (a new mtime): read again, the directory not. */
	xfree(put(dir, "a.jsonl", A_TEXT, t - 40));
	same_as_uncached(c, projects, CWD);
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_IDLE);
	ck_assert_uint_eq(jsonl_cache_counts(c).dir_reads, n.dir_reads);
	ck_assert_uint_eq(jsonl_cache_counts(c).file_reads, n.file_reads + 1);

	/* A newer transcript appears: the directory is listed again. */
	xfree(put(dir, "b.jsonl", A_TOOL, t - 30));
	set_mtime(dir, t - 30);
	same_as_uncached(c, projects, CWD);
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_WORKING);
	ck_assert_uint_gt(jsonl_cache_counts(c).dir_reads, n.dir_reads);

	/* One being written now (a fresh mtime) is never trusted: read each time. */
	xfree(put(dir, "b.jsonl", A_TEXT, 0));
	unsigned long reads = jsonl_cache_counts(c).file_reads;
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_IDLE);
	ck_assert_int_eq(jsonl_cache_infer(c, projects, CWD), STATUS_IDLE);
	ck_assert_uint_eq(jsonl_cache_counts(c).file_reads, reads + 2);

	/* Gone, and no projects dir at all. */
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(jsonl_cache_infer(c, "/nonexistent/projects", CWD), STATUS_IDLE);
	ck_assert_int_eq(jsonl_cache_infer(c, NULL, CWD), STATUS_IDLE);
	ck_assert_int_eq(jsonl_cache_infer(c, projects, NULL), STATUS_IDLE);
	jsonl_cache_free(c);
	xfree(f);
	xfree(dir);
	xfree(projects);
}
END_TEST

START_TEST(cache_sees_an_earlier_candidate_appear_and_stays_bounded)
{
	char *projects = projects_for("cache2");
	time_t t = time(NULL);
	struct jsonl_cache *c = jsonl_cache_new(2);
	/* The second candidate of a Windows path has a transcript… */
	char *second = project_dir(projects, "C:-Users-Alice");
	xfree(put(second, "s.jsonl", A_TEXT, t - 60));
	set_mtime(second, t - 60);
	set_mtime(projects, t - 60);
	same_as_uncached(c, projects, "C:\\Users\\Alice");
	/* …then the first one gets one, which takes precedence. */
	char **keys = jsonl_project_keys("C:\\Users\\Alice");
	char *first = project_dir(projects, keys[0]);
	jsonl_keys_free(keys);
	if (strcmp(first, second) != 0) {
		xfree(put(first, "f.jsonl", A_TOOL, t - 10));
		same_as_uncached(c, projects, "C:\\Users\\Alice");
	}
	/* More cwds than it holds: it starts afresh, answers stay right. */
	for (int i = 0; i < 10; i++) {
		char cwd[32];
		snprintf(cwd, sizeof(cwd), "/w/%d", i);
		same_as_uncached(c, projects, cwd);
	}
	same_as_uncached(c, projects, "C:\\Users\\Alice");
	jsonl_cache_free(c);
	xfree(first);
	xfree(second);
	xfree(projects);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsonl");

	TCase *keys = tcase_create("keys");
	tcase_add_test(keys, project_keys);
	suite_add_tcase(s, keys);

	TCase *jsonl = tcase_create("jsonl");
	tcase_add_unchecked_fixture(jsonl, tmp_setup, tmp_teardown);
	tcase_set_timeout(jsonl, 60);
	tcase_add_test(jsonl, infer_newest_file_decides);
	tcase_add_test(jsonl, infer_last_assistant_line_decides);
	tcase_add_test(jsonl, infer_node_compatible_parsing);
	tcase_add_test(jsonl, infer_tail_is_bounded);
	tcase_add_test(jsonl, infer_nothing_found);
	tcase_add_test(jsonl, infer_falls_through_candidates);
	tcase_add_test(jsonl, infer_special_files);
	tcase_add_test(jsonl, infer_dirent_budget);
	tcase_add_test(jsonl, cache_answers_as_jsonl_infer_and_reads_only_what_changed);
	tcase_add_test(jsonl, cache_sees_an_earlier_candidate_appear_and_stays_bounded);
	suite_add_tcase(s, jsonl);

	return check_run(s);
}
