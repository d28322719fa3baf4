/* utf8 — strict UTF-8 decoding (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), shared by the audit chain's canonical JSON and
 * the transcript reader of status inference.  Pure functions. */
#ifndef MESHD_UTF8_H
#define MESHD_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length of the one valid sequence at p (n bytes available), with its
 * code point in *cp; 0 if the bytes there are not one. */
size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);
/* Every byte of s[0..n) belongs to a valid sequence. */
bool utf8_valid(const char *s, size_t n);

#endif
