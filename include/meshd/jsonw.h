/* jsonw — compact JSON text for the broker's hot outputs (pushes, acks,
 * batch rows), written straight into a strbuf.  Building a jansson object
 * and json_dumps()ing it cost about a quarter of a worker's CPU in
 * contrib/meshbench dm-burst.  Only flat objects of strings and booleans;
 * everything else goes through jansson.
 *
 * Strings are escaped as JSON.stringify does (SEMANTICS §D): \" \\ \b \f \n
 * \r \t, other controls below U+0020 as \u00xx, everything else raw.  They
 * must be valid UTF-8 (values from parsed frames, the database or our own
 * ids are); jsonw does not check. */
#ifndef MESHD_JSONW_H
#define MESHD_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include "meshd/strbuf.h"

struct jsonw {
	struct strbuf *b;
	bool more; /* a member was written: the next needs a comma */
};

/* A JSON string literal, quotes included. */
void jsonw_string(struct strbuf *b, const char *s, size_t n);

/* An object: jsonw_begin, members, jsonw_end.  Keys are written as given
 * (they are literals of ours: no escaping). */
void jsonw_begin(struct jsonw *w, struct strbuf *b);
void jsonw_str(struct jsonw *w, const char *key, const char *value); /* NULL → null */
void jsonw_bool(struct jsonw *w, const char *key, bool value);
void jsonw_end(struct jsonw *w);

#endif
