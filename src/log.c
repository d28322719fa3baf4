/* log — structured JSON lines; see include/meshd/log.h. */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meshd/log.h"

#define LINE_MAX_BYTES 4096

static atomic_int min_level = LOG_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level min)
{
	atomic_store(&min_level, (int)min);
}

bool log_parse_level(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

void log_iso8601(char *buf, long long ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, 21, "%Y-%m-%dT%H:%M:%S", &tm);
	unsigned frac = (unsigned)(ms % 1000);
	buf[n++] = '.';
	buf[n++] = (char)('0' + frac / 100);
	buf[n++] = (char)('0' + frac / 10 % 10);
	buf[n++] = (char)('0' + frac % 10);
	buf[n++] = 'Z';
	buf[n] = '\0';
}

/* A bounded line buffer: appends past the end are dropped, and the line is
 * marked truncated, so one oversized value can never overflow or split it. */
struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
	bool truncated;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 3 - l->len; /* keep space for "}\n" */
	if (n > room) {
		n = room;
		l->truncated = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_json_string(struct line *l, const char *s)
{
	if (!s) {
		put(l, "null", 4);
		return;
	}
	put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			put(l, esc, 2);
		} else if (*p < 0x20) {
			putf(l, "\\u%04x", *p);
		} else {
			put(l, (const char *)p, 1);
		}
	}
	put(l, "\"", 1);
}

/* Emits one "key":value pair per key=%conv token of `fields`. */
static void put_fields(struct line *l, const char *fields, va_list ap)
{
	const char *p = fields;
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq || eq[1] != '%')
			break;
		put(l, ",", 1);
		put(l, "\"", 1);
		put(l, p, (size_t)(eq - p));
		put(l, "\":", 2);
		const char *c = eq + 2;
		if (strncmp(c, "s", 1) == 0) {
			put_json_string(l, va_arg(ap, const char *));
			c += 1;
		} else if (strncmp(c, "d", 1) == 0) {
			putf(l, "%d", va_arg(ap, int));
			c += 1;
		} else if (strncmp(c, "u", 1) == 0) {
			putf(l, "%u", va_arg(ap, unsigned));
			c += 1;
		} else if (strncmp(c, "lld", 3) == 0) {
			putf(l, "%lld", va_arg(ap, long long));
			c += 3;
		} else if (strncmp(c, "llu", 3) == 0) {
			putf(l, "%llu", va_arg(ap, unsigned long long));
			c += 3;
		} else if (strncmp(c, "ld", 2) == 0) {
			putf(l, "%ld", va_arg(ap, long));
			c += 2;
		} else if (strncmp(c, "lu", 2) == 0) {
			putf(l, "%lu", va_arg(ap, unsigned long));
			c += 2;
		} else if (strncmp(c, "zu", 2) == 0) {
			putf(l, "%zu", va_arg(ap, size_t));
			c += 2;
		} else if (strncmp(c, "f", 1) == 0) {
			putf(l, "%.6g", va_arg(ap, double));
			c += 1;
		} else {
			put(l, "null", 4); /* unknown conversion: a bug, keep the line valid JSON */
			break;
		}
		p = c;
	}
}

void log_vemit(enum log_level level, const char *event, const char *fields, va_list ap)
{
	if (!log_enabled(level))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char iso[32];
	log_iso8601(iso, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);

	struct line l = { .len = 0, .truncated = false };
	put(&l, "{\"ts\":\"", 7);
	put(&l, iso, strlen(iso));
	put(&l, "\",\"level\":\"", 11);
	put(&l, level_names[level], strlen(level_names[level]));
	put(&l, "\",\"event\":", 10);
	put_json_string(&l, event);
	put_fields(&l, fields, ap);
	if (l.truncated) {
		/* Cut mid-value: close what we can so the line is still one object. */
		l.len = sizeof(l.buf) - 40;
		static const char tail[] = "\",\"truncated\":true";
		memcpy(l.buf + l.len, tail, sizeof(tail) - 1);
		l.len += sizeof(tail) - 1;
	}
	l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	ssize_t w = write(STDERR_FILENO, l.buf, l.len);
	(void)w; /* nothing sensible to do if stderr is gone */
}

void log_emit(enum log_level level, const char *event, const char *fields, ...)
{
	va_list ap;
	va_start(ap, fields);
	log_vemit(level, event, fields, ap);
	va_end(ap);
}

void die(const char *event, const char *fields, ...)
{
	va_list ap;
	va_start(ap, fields);
	log_vemit(LOG_ERROR, event, fields, ap);
	va_end(ap);
	exit(1);
}
