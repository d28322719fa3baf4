/* jscompat — what meshd must compute exactly as JavaScript does, because the
 * reference broker (TypeScript) and its clients compute it so: the text of
 * String(number) in canonical strings that are signed (hello, §5.1) or
 * hashed (audit, §D), and the length of a string as .length counts it (the
 * send size limit, §6.1; message_status's error text, §6.9).
 *
 * Pure functions; any thread.
 */
#ifndef MESHD_JSCOMPAT_H
#define MESHD_JSCOMPAT_H

#include <stddef.h>

#include <jansson.h>

/* Longest String(number) of a double ("-1.2345678901234567e-308"), plus the NUL. */
#define JS_NUMBER_MAX 32

/* ECMA-262 Number::toString (radix 10): the shortest digits that read back
 * as v, the closest to v among those, in fixed notation for
 * 1e-6 <= |v| < 1e21 and exponent notation otherwise ("1767225600000",
 * "1.5", "1e+21", "5e-7"; -0 → "0"; "NaN", "Infinity", "-Infinity").
 * Writes a NUL-terminated string, returns its length. */
size_t js_number_to_string(double v, char out[JS_NUMBER_MAX]);

/* String.prototype.length of UTF-8 text: its UTF-16 code units (a code
 * point above U+FFFF counts 2). */
size_t js_utf16_length(const char *utf8);

/* A string from the wire, as JavaScript's === would compare it: the value
 * of v when v is a string without an embedded NUL, else NULL.  jansson keeps
 * "\u0000" (JSON_ALLOW_NUL) and json_string_value() would silently cut the
 * string there, so "hello\u0000x" would read as "hello".  meshd treats a
 * field holding a NUL as a field of the wrong type: absent, or invalid where
 * the field is required (the handler says which). */
const char *js_string(const json_t *v);

/* js_string() of obj[key]; NULL when obj is not an object. */
const char *js_field(const json_t *obj, const char *key);

/* js_field() when JavaScript would find it truthy: a non-empty string. */
const char *js_field_truthy(const json_t *obj, const char *key);

#endif
