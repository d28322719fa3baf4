/* fuzz_audit — libFuzzer harness for the audit chain's canonical JSON
 * (audit_canonical_json() in src/audit.c).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        -I/usr/include/postgresql \
 *        tests/fuzz/fuzz_audit.c src/audit.c src/jscompat.c src/jsonw.c src/utf8.c \
 *        src/strbuf.c src/alloc.c src/log.c \
 *        -ljansson -lsodium -lpq -o /tmp/fuzz_audit
 * Run:   /tmp/fuzz_audit tests/fuzz/corpus/audit
 *
 * The input is one JSON document, parsed as dispatch.c parses a frame
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL).  Besides memory safety it checks:
 *   - whatever jansson parsed is canonicalised (audit.h: NULL only for
 *     invalid UTF-8 or excess depth, which jansson's parser never yields);
 *   - the canonical text is valid UTF-8 and valid JSON, and canonicalising
 *     its parse again gives the same bytes (idempotent), whether the
 *     re-parse reads integers as integers or as reals (the verifier reads
 *     jsonb text with JSON_DECODE_INT_AS_REAL);
 *   - the input read with JSON_DECODE_INT_AS_REAL has the same canonical
 *     form (integers print as the double JavaScript would hold);
 *   - audit_hash() of it is 64 lowercase hex characters.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

static void require(int cond)
{
	if (!cond)
		abort();
}

/* Canonicalises the parse of text (flags) and requires it to be c. */
static void same_canonical(const char *text, size_t len, size_t flags, const char *c, bool must_parse)
{
	json_t *v = json_loadb(text, len, flags, NULL);
	if (!v) {
		require(!must_parse);
		return;
	}
	char *c2 = audit_canonical_json(v);
	require(c2 != NULL && strcmp(c2, c) == 0);
	xfree(c2);
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		require(sodium_init() >= 0);
		init = true;
	}

	json_t *v = json_loadb((const char *)data, size, FLAGS, NULL);
	if (!v)
		return 0;
	char *c = audit_canonical_json(v);
	require(c != NULL);
	size_t n = strlen(c);
	require(n > 0 && utf8_valid(c, n));

	/* Idempotent, however the canonical text is read back. */
	same_canonical(c, n, FLAGS | JSON_DECODE_INT_AS_REAL, c, true);
	same_canonical(c, n, FLAGS, c, false); /* may hold an integer beyond int64 */
	/* The input with integers as reals renders the same. */
	same_canonical((const char *)data, size, FLAGS | JSON_DECODE_INT_AS_REAL, c, true);

	char hex[AUDIT_HASH_HEX_LEN + 1];
	audit_hash("genesis", "m1", "peer_joined", NULL, c, "2026-04-15T12:00:00.000Z", hex);
	require(strlen(hex) == AUDIT_HASH_HEX_LEN);
	for (size_t i = 0; i < AUDIT_HASH_HEX_LEN; i++)
		require((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));

	xfree(c);
	json_decref(v);
	return 0;
}
