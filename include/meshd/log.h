/* log — structured JSON lines on stderr.
 *
 * Each call writes exactly one line with one write(2), so lines from
 * different threads never interleave:
 *
 *   {"ts":"2026-01-01T00:00:00.000Z","level":"info","event":"listen","port":7900}
 *
 * `fields` is a space-separated list of key=conversion pairs, read like
 * printf: "port=%d addr=%s conn=%u".  Conversions: %s (JSON-escaped string,
 * NULL prints null), %d %u %ld %lu %lld %llu %zu, %f (double) — printf's own,
 * so -Wformat checks every call.  Message contents never go into a log line
 * (STYLE.md §9).
 * Any thread may call these.
 */
#ifndef MESHD_LOG_H
#define MESHD_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);
/* Parses "debug", "info", "warn", "error"; false if unknown. */
_Bool log_parse_level(const char *s, enum log_level *out) __attribute__((warn_unused_result));
_Bool log_enabled(enum log_level level);

void log_emit(enum log_level level, const char *event, const char *fields, ...)
	__attribute__((format(printf, 3, 4)));
void log_vemit(enum log_level level, const char *event, const char *fields, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_debug(ev, ...) log_emit(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_emit(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_emit(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_emit(LOG_ERROR, ev, __VA_ARGS__)

/* Start-up failure: log at error level and exit(1).  Main thread, start-up only. */
void die(const char *event, const char *fields, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

/* Formats `ms` since the epoch as ISO-8601 UTC with milliseconds
 * ("2026-01-01T00:00:00.000Z") into buf (at least 25 bytes). */
void log_iso8601(char *buf, long long ms);

#endif
