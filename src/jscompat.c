/* jscompat — JavaScript's own answers; see include/meshd/jscompat.h. */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/jscompat.h"

/* Digits of a double's shortest round-trip decimal form: 17 at most. */
#define DBL_MAX_DIGITS 17

/* Parses "%.*e" output ("d.ddde+xx" or "de-xx") into digits and exponent. */
static int parse_e(const char *s, char *digits, int *exp10)
{
	int k = 0;

	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			digits[k++] = *s;
	*exp10 = (int)strtol(s + 1, NULL, 10);
	return k;
}

static bool round_trips(const char *digits, int k, int exp10, double d)
{
	char buf[DBL_MAX_DIGITS + 16];
	int o = 0;

	buf[o++] = digits[0];
	if (k > 1) {
		buf[o++] = '.';
		memcpy(buf + o, digits + 1, (size_t)k - 1);
		o += k - 1;
	}
	snprintf(buf + o, sizeof(buf) - (size_t)o, "e%d", exp10);
	return strtod(buf, NULL) == d;
}

/* Adds dir (+1 or -1) in the last place of the k-digit decimal
 * digits × 10^exp10 (scientific: one digit before the point). */
static void step_last_digit(char *digits, int *k, int *exp10, int dir)
{
	int i = *k - 1;

	if (dir > 0) {
		while (i >= 0 && digits[i] == '9')
			digits[i--] = '0';
		if (i >= 0) {
			digits[i]++;
		} else {
			/* 9.99 -> 10.00: one more digit before the point */
			digits[0] = '1';
			memset(digits + 1, '0', (size_t)*k - 1);
			(*exp10)++;
		}
		return;
	}
	while (i >= 0 && digits[i] == '0')
		digits[i--] = '9';
	digits[i]--;   /* i >= 0: a nonzero finite value has a nonzero digit */
	if (digits[0] == '0') {
		/* 1.00 -> 0.99 = 9.9e-1: drop the leading zero */
		memmove(digits, digits + 1, (size_t)*k - 1);
		(*k)--;
		(*exp10)--;
	}
}

/* Shortest decimal digits that read back as d (> 0, finite), the closest
 * to d among those: d = 0.digits × 10^(*n).  Tries each length with the
 * correctly rounded candidate, then its neighbour on the other side of d
 * (which can round-trip when d is a power of two). */
static int shortest_digits(double d, char *digits, int *n)
{
	char buf[DBL_MAX_DIGITS + 16];
	int k = 0, exp10 = 0;

	for (int p = 1; p <= DBL_MAX_DIGITS; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
		k = parse_e(buf, digits, &exp10);
		double r = strtod(buf, NULL);
		if (r == d)
			break;
		step_last_digit(digits, &k, &exp10, r < d ? 1 : -1);
		if (round_trips(digits, k, exp10, d))
			break;
		if (p == DBL_MAX_DIGITS) {   /* unreachable: 17 digits always do */
			k = parse_e(buf, digits, &exp10);
			break;
		}
	}
	while (k > 1 && digits[k - 1] == '0')
		k--;
	*n = exp10 + 1;
	return k;
}

static size_t put(char *out, size_t o, const char *s, size_t n)
{
	memcpy(out + o, s, n);
	return o + n;
}

static size_t put_zeros(char *out, size_t o, int count)
{
	for (int i = 0; i < count; i++)
		out[o++] = '0';
	return o;
}

size_t js_number_to_string(double v, char out[JS_NUMBER_MAX])
{
	char digits[DBL_MAX_DIGITS + 2];
	size_t o = 0;
	int k, n;

	if (isnan(v))
		return (size_t)snprintf(out, JS_NUMBER_MAX, "NaN");
	if (isinf(v))
		return (size_t)snprintf(out, JS_NUMBER_MAX, "%s", v > 0 ? "Infinity" : "-Infinity");
	if (v == 0)
		return (size_t)snprintf(out, JS_NUMBER_MAX, "0"); /* -0 too */
	if (v < 0) {
		out[o++] = '-';
		v = -v;
	}
	k = shortest_digits(v, digits, &n); /* v = 0.d1d2…dk × 10^n */
	if (k <= n && n <= 21) {
		o = put(out, o, digits, (size_t)k);
		o = put_zeros(out, o, n - k);
	} else if (0 < n && n <= 21) {
		o = put(out, o, digits, (size_t)n);
		out[o++] = '.';
		o = put(out, o, digits + n, (size_t)(k - n));
	} else if (-6 < n && n <= 0) {
		o = put(out, o, "0.", 2);
		o = put_zeros(out, o, -n);
		o = put(out, o, digits, (size_t)k);
	} else {
		out[o++] = digits[0];
		if (k > 1) {
			out[o++] = '.';
			o = put(out, o, digits + 1, (size_t)(k - 1));
		}
		o += (size_t)snprintf(out + o, JS_NUMBER_MAX - o, "e%c%d", n - 1 < 0 ? '-' : '+',
				      abs(n - 1));
	}
	out[o] = '\0';
	return o;
}

size_t js_utf16_length(const char *utf8)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)utf8; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			n += (*p >= 0xF0) ? 2 : 1;
	}
	return n;
}

const char *js_string(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

const char *js_field(const json_t *obj, const char *key)
{
	return js_string(json_object_get(obj, key));
}

const char *js_field_truthy(const json_t *obj, const char *key)
{
	const char *v = js_field(obj, key);
	return v && *v ? v : NULL;
}
