/* jsonw — compact JSON writer; see include/meshd/jsonw.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "meshd/jsonw.h"

/* Bytes that need an escape: controls, '"' and '\\'. */
static bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

void jsonw_string(struct strbuf *b, const char *s, size_t n)
{
	strbuf_addc(b, '"');
	size_t run = 0; /* start of the bytes copied as they are */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!needs_escape(c))
			continue;
		strbuf_add(b, s + run, i - run);
		run = i + 1;
		char esc[8];
		switch (c) {
		case '"': strbuf_add(b, "\\\"", 2); break;
		case '\\': strbuf_add(b, "\\\\", 2); break;
		case '\b': strbuf_add(b, "\\b", 2); break;
		case '\f': strbuf_add(b, "\\f", 2); break;
		case '\n': strbuf_add(b, "\\n", 2); break;
		case '\r': strbuf_add(b, "\\r", 2); break;
		case '\t': strbuf_add(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
			strbuf_add(b, esc, 6);
		}
	}
	strbuf_add(b, s + run, n - run);
	strbuf_addc(b, '"');
}

void jsonw_begin(struct jsonw *w, struct strbuf *b)
{
	w->b = b;
	w->more = false;
	strbuf_addc(b, '{');
}

static void key(struct jsonw *w, const char *k)
{
	if (w->more)
		strbuf_addc(w->b, ',');
	w->more = true;
	strbuf_addc(w->b, '"');
	strbuf_adds(w->b, k);
	strbuf_add(w->b, "\":", 2);
}

void jsonw_str(struct jsonw *w, const char *k, const char *value)
{
	key(w, k);
	if (value)
		jsonw_string(w->b, value, strlen(value));
	else
		strbuf_add(w->b, "null", 4);
}

void jsonw_bool(struct jsonw *w, const char *k, bool value)
{
	key(w, k);
	if (value)
		strbuf_add(w->b, "true", 4);
	else
		strbuf_add(w->b, "false", 5);
}

void jsonw_end(struct jsonw *w)
{
	strbuf_addc(w->b, '}');
}
