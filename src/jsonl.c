/* jsonl — status from Claude Code transcripts; see include/meshd/jsonl.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/jsonl.h"
#include "meshd/utf8.h"

/* ---- project keys (cwdToProjectKeyCandidates) ----------------------- */

#define MAX_KEYS 8 /* four rules, plus a "-" variant of each */

/* A copy of s with every byte in `set` replaced by '-'. */
static char *replace_set(const char *s, const char *set)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		if (strchr(set, *p))
			*p = '-';
	return r;
}

/* Appends k (taking it) unless it is empty or already present. */
static void keys_push(char **keys, size_t *n, char *k)
{
	if (!*k)
		goto drop;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(keys[i], k) == 0)
			goto drop;
	keys[(*n)++] = k;
	return;
drop:
	xfree(k);
}

char **jsonl_project_keys(const char *cwd)
{
	char **keys = xcalloc(MAX_KEYS + 1, sizeof(*keys));
	size_t n = 0;

	if (!cwd)
		return keys;
	keys_push(keys, &n, replace_set(cwd, "\\/:"));
	keys_push(keys, &n, replace_set(cwd, "/"));
	keys_push(keys, &n, replace_set(cwd, "\\/"));
	const char *nodrive = cwd;
	if (((cwd[0] >= 'A' && cwd[0] <= 'Z') || (cwd[0] >= 'a' && cwd[0] <= 'z')) &&
	    cwd[1] == ':')
		nodrive = cwd + 2;
	keys_push(keys, &n, replace_set(nodrive, "\\/"));

	size_t snapshot = n;
	for (size_t i = 0; i < snapshot; i++) {
		if (keys[i][0] == '-')
			continue;
		size_t len = strlen(keys[i]);
		char *k = xmalloc(len + 2);
		k[0] = '-';
		memcpy(k + 1, keys[i], len + 1);
		keys_push(keys, &n, k);
	}
	return keys;
}

void jsonl_keys_free(char **keys)
{
	if (!keys)
		return;
	for (char **k = keys; *k; k++)
		xfree(*k);
	xfree(keys);
}

/* ---- findActiveJsonl ------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = xmalloc(a + b + 2);
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static bool ends_with_jsonl(const char *name)
{
	size_t n = strlen(name);
	return n >= 6 && memcmp(name + n - 6, ".jsonl", 6) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool mtime_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

char **jsonl_dir_names(const char *dir, unsigned *budget)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = xmalloc(sizeof(*names));
	size_t n = 0, cap = 1;
	struct dirent *de;
	while (*budget > 0 && (de = readdir(d)) != NULL) {
		(*budget)--;
		if (!ends_with_jsonl(de->d_name))
			continue;
		if (n + 1 == cap) {
			cap *= 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	names[n] = NULL;
	closedir(d);
	/* readdir order is unspecified: sort, so that equal mtimes resolve
	 * to the smallest name every time. */
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	return names;
}

char *jsonl_newest(const char *dir, char *const *names, struct stat *st_out)
{
	char *best = NULL;
	for (size_t i = 0; names && names[i]; i++) {
		char *path = path_join(dir, names[i]);
		struct stat st;
		/* Vanished or unreadable: skipped.  Strictly newer replaces. */
		if (stat(path, &st) == 0 && (!best || mtime_after(&st.st_mtim, &st_out->st_mtim))) {
			xfree(best);
			best = path;
			*st_out = st;
			continue;
		}
		xfree(path);
	}
	return best;
}

/* The newest "*.jsonl" entry of dir (full path), or NULL when dir is
 * missing, unreadable or has none. */
static char *newest_jsonl_in(const char *dir, unsigned *budget)
{
	char **names = jsonl_dir_names(dir, budget);
	struct stat st;
	char *path = jsonl_newest(dir, names, &st);
	jsonl_keys_free(names);
	return path;
}

char *jsonl_find_active(const char *projects_dir, const char *cwd)
{
	if (!projects_dir || !*projects_dir || !cwd)
		return NULL;
	/* One budget for the whole call, over every candidate directory. */
	unsigned budget = JSONL_MAX_DIRENTS;
	char **keys = jsonl_project_keys(cwd);
	char *found = NULL;
	for (char **k = keys; *k && !found && budget > 0; k++) {
		/* Keys never contain '/', so only these two could leave
		 * projects_dir (the reference's path.join would follow them). */
		if (strcmp(*k, ".") == 0 || strcmp(*k, "..") == 0)
			continue;
		char *dir = path_join(projects_dir, *k);
		found = newest_jsonl_in(dir, &budget);
		xfree(dir);
	}
	jsonl_keys_free(keys);
	return found;
}

/* ---- lastAssistantHasToolUse ---------------------------------------- */

/* What JavaScript's String.prototype.trim() removes: WhiteSpace and
 * LineTerminator (ECMA-262 §12.2, §12.3). */
static bool js_space(uint32_t cp)
{
	switch (cp) {
	case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20:
	case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f:
	case 0x205f: case 0x3000: case 0xfeff:
		return true;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

static void js_trim(const unsigned char *b, size_t *start, size_t *end)
{
	uint32_t cp;
	size_t len;

	while (*start < *end && (len = utf8_decode(b + *start, *end - *start, &cp)) &&
	       js_space(cp))
		*start += len;
	while (*end > *start) {
		size_t j = *end - 1;
		while (j > *start && *end - j < 4 && (b[j] & 0xc0) == 0x80)
			j--;
		len = utf8_decode(b + j, *end - j, &cp);
		if (len != *end - j || !js_space(cp))
			break;
		*end = j;
	}
}

static bool hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

/* Makes a line that JSON.parse accepts acceptable to jansson too, without
 * changing any ASCII string (so not the "type" values that decide):
 * bytes that are not valid UTF-8 become U+FFFD (Node decodes the tail with
 * replacement), and unpaired \uD800-\uDFFF escapes — which JSON.parse
 * takes and modern JSON.stringify writes — become \uFFFD.  out must hold
 * 3 * n bytes; returns the length written. */
static size_t json_line_for_jansson(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_decode(in + i, n - i, &cp);
		if (len == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
		}
	}

	for (size_t i = 0; i + 1 < o; i++) {
		if (out[i] != '\\')
			continue;
		if (out[i + 1] != 'u' || i + 6 > o) {
			i++; /* some other escape: skip the escaped byte */
			continue;
		}
		unsigned u, lo;
		if (!hex4(out + i + 2, &u)) {
			i++;
			continue;
		}
		if (u >= 0xd800 && u <= 0xdbff && i + 12 <= o && out[i + 6] == '\\' &&
		    out[i + 7] == 'u' && hex4(out + i + 8, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
			i += 11; /* a proper pair */
			continue;
		}
		if (u >= 0xd800 && u <= 0xdfff)
			memcpy(out + i + 2, "fffd", 4);
		i += 5;
	}
	return o;
}

static bool json_str_is(const json_t *v, const char *lit)
{
	size_t n = strlen(lit);
	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), lit, n) == 0;
}

/* The decision for one trimmed line: 1 tool_use, 0 no tool_use, -1 the
 * line does not qualify (keep walking back). */
static int assistant_line_verdict(const unsigned char *line, size_t n, unsigned char *scratch)
{
	size_t len = json_line_for_jansson(line, n, scratch);
	/* Integers as reals: JSON.parse takes any number, jansson would
	 * reject an integer beyond int64. */
	json_t *root = json_loadb((const char *)scratch, len,
				  JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
	if (!root)
		return -1;

	int verdict = -1;
	json_t *content = json_object_get(json_object_get(root, "message"), "content");
	if (json_str_is(json_object_get(root, "type"), "assistant") && json_is_array(content)) {
		size_t i;
		json_t *el;
		verdict = 0;
		json_array_foreach(content, i, el) {
			/* `c.type` on a null element throws in the reference,
			 * which then skips the whole line. */
			if (json_is_null(el)) {
				verdict = -1;
				break;
			}
			if (json_str_is(json_object_get(el, "type"), "tool_use")) {
				verdict = 1;
				break;
			}
		}
	}
	json_decref(root);
	return verdict;
}

/* Reads the last min(size, JSONL_TAIL_BYTES) bytes of a regular
 * file into buf; the count read, or -1. */
static ssize_t read_tail(const char *path, unsigned char *buf)
{
	/* O_NONBLOCK: a FIFO named *.jsonl must not block the caller; it is
	 * rejected by the S_ISREG check below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	off_t want = st.st_size < JSONL_TAIL_BYTES ? st.st_size : JSONL_TAIL_BYTES;
	off_t off = st.st_size - want;
	size_t got = 0;
	while (got < (size_t)want) {
		ssize_t r = pread(fd, buf + got, (size_t)want - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return -1;
		}
		if (r == 0)
			break; /* truncated meanwhile: use what was read */
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)got;
}

bool jsonl_last_assistant_has_tool_use(const char *path)
{
	static const char needle[] = "\"assistant\"";
	unsigned char buf[JSONL_TAIL_BYTES];

	if (!path)
		return false;
	ssize_t got = read_tail(path, buf);
	if (got <= 0)
		return false;

	unsigned char *scratch = xmalloc(3 * (size_t)got);
	bool result = false;
	size_t end = (size_t)got;
	for (;;) {
		unsigned char *nl = memrchr(buf, '\n', end);
		size_t start = nl ? (size_t)(nl - buf) + 1 : 0;
		size_t s = start, e = end;
		js_trim(buf, &s, &e);
		if (e > s && memmem(buf + s, e - s, needle, sizeof(needle) - 1)) {
			int v = assistant_line_verdict(buf + s, e - s, scratch);
			if (v >= 0) {
				result = v == 1;
				break;
			}
		}
		if (!nl)
			break;
		end = start - 1;
	}
	xfree(scratch);
	return result;
}

enum peer_status jsonl_infer(const char *projects_dir, const char *cwd)
{
	char *path = jsonl_find_active(projects_dir, cwd);
	if (!path)
		return STATUS_IDLE;
	bool working = jsonl_last_assistant_has_tool_use(path);
	xfree(path);
	return working ? STATUS_WORKING : STATUS_IDLE;
}
