/* fuzz_utf8 — libFuzzer harness for the strict UTF-8 decoder (src/utf8.c).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        tests/fuzz/fuzz_utf8.c src/utf8.c -o /tmp/fuzz_utf8
 * Run:   /tmp/fuzz_utf8 tests/fuzz/corpus/utf8
 *
 * Besides memory safety it checks the decoder against an independent
 * reference written here from the table of well-formed byte sequences
 * (RFC 3629 §4, Unicode Table 3-7) — byte ranges, no arithmetic:
 *   - utf8_valid() gives the reference's verdict on the whole input;
 *   - utf8_decode() at every offset gives the reference's length and code
 *     point, and the code point re-encodes to exactly the bytes decoded;
 *   - the validator is not incremental, so the split check is what a
 *     caller concatenating two pieces relies on: valid(a) && valid(b)
 *     implies valid(a b), and when valid(a b) and the cut (picked by the
 *     input's first byte) falls on a sequence boundary, both pieces are
 *     valid.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		abort();
}

static bool in(uint8_t b, uint8_t lo, uint8_t hi)
{
	return b >= lo && b <= hi;
}

/* Length of the well-formed sequence at p (n > 0 bytes), with its code
 * point; 0 if ill-formed.  Table 3-7 row by row. */
static size_t ref_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t b0 = p[0];
	uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
	size_t len;

	if (b0 <= 0x7f) {
		*cp = b0;
		return 1;
	} else if (in(b0, 0xc2, 0xdf)) {
		len = 2;
	} else if (b0 == 0xe0) {
		len = 3, lo = 0xa0;
	} else if (in(b0, 0xe1, 0xec) || in(b0, 0xee, 0xef)) {
		len = 3;
	} else if (b0 == 0xed) {
		len = 3, hi = 0x9f;
	} else if (b0 == 0xf0) {
		len = 4, lo = 0x90;
	} else if (in(b0, 0xf1, 0xf3)) {
		len = 4;
	} else if (b0 == 0xf4) {
		len = 4, hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || !in(p[1], lo, hi))
		return 0;
	for (size_t i = 2; i < len; i++)
		if (!in(p[i], 0x80, 0xbf))
			return 0;
	/* The code point: payload bits of the lead byte, six per trailer. */
	uint32_t v = b0 & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
	for (size_t i = 1; i < len; i++)
		v = (v << 6) | (p[i] & 0x3f);
	*cp = v;
	return len;
}

static bool ref_valid(const uint8_t *p, size_t n)
{
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t len = ref_decode(p + i, n - i, &cp);
		if (!len)
			return false;
		i += len;
	}
	return true;
}

static size_t encode(uint32_t cp, uint8_t out[4])
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	bool whole = utf8_valid(s, size);
	bool boundary_ok = true; /* the cut falls on a reference sequence boundary */
	size_t cut = size ? data[0] % (size + 1) : 0;

	require(whole == ref_valid(data, size));

	for (size_t i = 0; i < size; i++) {
		uint32_t cp = 0xffffffff, rcp = 0;
		size_t len = utf8_decode(data + i, size - i, &cp);
		size_t rlen = ref_decode(data + i, size - i, &rcp);
		require(len == rlen);
		if (len) {
			uint8_t enc[4];
			require(cp == rcp);
			require(cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff));
			require(encode(cp, enc) == len && memcmp(enc, data + i, len) == 0);
		}
	}
	/* Walk the reference boundaries of the whole input up to the cut. */
	if (whole) {
		size_t i = 0;
		uint32_t cp;
		while (i < cut)
			i += ref_decode(data + i, size - i, &cp);
		boundary_ok = i == cut;
	}

	bool a = utf8_valid(s, cut), b = utf8_valid(s + cut, size - cut);
	if (a && b)
		require(whole);
	if (whole && boundary_ok)
		require(a && b);
	if (whole && !boundary_ok)
		require(!a && !b);
	return 0;
}
