/* alloc — every allocation of meshd goes through here.
 *
 * Release builds link jemalloc, which replaces malloc itself; sanitizer builds
 * use libc malloc so ASan/TSan see every allocation.  The x* wrappers never
 * return NULL: running out of memory in a broker is not a recoverable
 * per-request error, so they log and abort (the way Redis's zmalloc does).
 * Any thread may call them.
 */
#ifndef MESHD_ALLOC_H
#define MESHD_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
void xfree(void *p);

/* Name of the allocator linked in ("jemalloc" or "libc"), for logs. */
const char *alloc_name(void);

#endif
