/* strbuf — a growable, always NUL-terminated string builder.  Not
 * thread-safe; any thread may own one. */
#ifndef MESHD_STRBUF_H
#define MESHD_STRBUF_H

#include <stddef.h>

/* The owner frees p (xfree) when done. */
struct strbuf {
	char *p;    /* NULL until the first append; then NUL-terminated */
	size_t len;
	size_t cap;
};

void strbuf_add(struct strbuf *b, const void *s, size_t n);
void strbuf_adds(struct strbuf *b, const char *s);
void strbuf_addc(struct strbuf *b, char c);

#endif
