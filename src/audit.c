/* audit — the per-mesh audit hash chain; see include/meshd/audit.h. */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/jscompat.h"
#include "meshd/jsonw.h"
#include "meshd/utf8.h"
#include "meshd/strbuf.h"
#include "meshd/log.h"

/* Integers up to this magnitude print as themselves; beyond it JavaScript
 * would hold the nearest double, so they print as that double. */
#define JS_MAX_SAFE_INTEGER 9007199254740992LL

/* JSON.stringify of a string (jsonw_string), for valid UTF-8 only. */
static bool put_string(struct strbuf *b, const char *str, size_t n)
{
	if (!utf8_valid(str, n))
		return false;
	jsonw_string(b, str, n);
	return true;
}

/* JSON.stringify of a number: JavaScript's String(number), null when not finite. */
static void put_double(struct strbuf *b, double d)
{
	char text[JS_NUMBER_MAX];
	if (!isfinite(d)) {
		strbuf_adds(b, "null");
		return;
	}
	strbuf_add(b, text, js_number_to_string(d, text));
}

static void put_integer(struct strbuf *b, json_int_t i)
{
	char buf[32];

	if (i < -JS_MAX_SAFE_INTEGER || i > JS_MAX_SAFE_INTEGER) {
		put_double(b, (double)i);
		return;
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)i);
	strbuf_adds(b, buf);
}

/* Next UTF-16 code unit of a (valid UTF-8) key; -1 at its end. */
struct u16_iter {
	const unsigned char *s;
	size_t n, i;
	uint32_t low;   /* pending low surrogate, 0 if none */
};

static int32_t u16_next(struct u16_iter *it)
{
	uint32_t cp;

	if (it->low) {
		cp = it->low;
		it->low = 0;
		return (int32_t)cp;
	}
	size_t len = it->i < it->n ? utf8_decode(it->s + it->i, it->n - it->i, &cp) : 0;
	if (!len)
		return -1;
	it->i += len;
	if (cp < 0x10000)
		return (int32_t)cp;
	cp -= 0x10000;
	it->low = 0xdc00 + (cp & 0x3ff);
	return (int32_t)(0xd800 + (cp >> 10));
}

struct key {
	const char *s;
	size_t n;
	json_t *v;
};

/* JavaScript's default sort: by UTF-16 code units, a prefix first. */
static int key_cmp(const void *pa, const void *pb)
{
	const struct key *a = pa, *b = pb;
	struct u16_iter ia = { (const unsigned char *)a->s, a->n, 0, 0 };
	struct u16_iter ib = { (const unsigned char *)b->s, b->n, 0, 0 };

	for (;;) {
		int32_t ua = u16_next(&ia), ub = u16_next(&ib);
		if (ua != ub)
			return ua < ub ? -1 : 1;
		if (ua < 0)
			return 0;
	}
}

static bool put_value(struct strbuf *b, const json_t *v, int depth);

static bool put_object(struct strbuf *b, const json_t *v, int depth)
{
	size_t count = json_object_size(v), i = 0;
	struct key *keys = count ? xcalloc(count, sizeof(*keys)) : NULL;
	bool ok = true;
	const char *k;
	size_t klen;
	json_t *val;

	/* json_object_keylen_foreach wants a non-const object; it does not
	 * modify it. */
	json_object_keylen_foreach((json_t *)v, k, klen, val) {
		if (!utf8_valid(k, klen)) {
			ok = false;
			break;
		}
		keys[i++] = (struct key){ k, klen, val };
	}
	if (ok) {
		if (i > 1)
			qsort(keys, i, sizeof(*keys), key_cmp);
		strbuf_addc(b, '{');
		for (size_t j = 0; ok && j < i; j++) {
			if (j)
				strbuf_addc(b, ',');
			ok = put_string(b, keys[j].s, keys[j].n);
			strbuf_addc(b, ':');
			ok = ok && put_value(b, keys[j].v, depth + 1);
		}
		strbuf_addc(b, '}');
	}
	xfree(keys);
	return ok;
}

static bool put_value(struct strbuf *b, const json_t *v, int depth)
{
	if (depth > AUDIT_MAX_DEPTH)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return put_object(b, v, depth);
	case JSON_ARRAY:
		strbuf_addc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				strbuf_addc(b, ',');
			if (!put_value(b, json_array_get(v, i), depth + 1))
				return false;
		}
		strbuf_addc(b, ']');
		return true;
	case JSON_STRING:
		return put_string(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		put_integer(b, json_integer_value(v));
		return true;
	case JSON_REAL:
		put_double(b, json_real_value(v));
		return true;
	case JSON_TRUE:
		strbuf_adds(b, "true");
		return true;
	case JSON_FALSE:
		strbuf_adds(b, "false");
		return true;
	case JSON_NULL:
		strbuf_adds(b, "null");
		return true;
	}
	return false;
}

char *audit_canonical_json(const json_t *v)
{
	struct strbuf b = { NULL, 0, 0 };

	if (!v)
		return NULL;
	if (!put_value(&b, v, 1)) {
		xfree(b.p);
		return NULL;
	}
	return b.p;
}

static void hash_field(crypto_hash_sha256_state *st, const char *s, bool last)
{
	crypto_hash_sha256_update(st, (const unsigned char *)s, strlen(s));
	if (!last)
		crypto_hash_sha256_update(st, (const unsigned char *)"|", 1);
}

void audit_hash(const char *prev_hash, const char *mesh_id, const char *event_type,
		const char *actor_member_id, const char *canonical_payload,
		const char *created_at_iso, char out_hex[AUDIT_HASH_HEX_LEN + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	hash_field(&st, prev_hash, false);
	hash_field(&st, mesh_id, false);
	hash_field(&st, event_type, false);
	hash_field(&st, actor_member_id ? actor_member_id : "null", false);
	hash_field(&st, canonical_payload, false);
	hash_field(&st, created_at_iso, true);
	crypto_hash_sha256_final(&st, digest);
	sodium_bin2hex(out_hex, AUDIT_HASH_HEX_LEN + 1, digest, sizeof(digest));
}

int64_t audit_lock_key(const char *mesh_id)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	uint64_t k = 0;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)"audit:", 6);
	crypto_hash_sha256_update(&st, (const unsigned char *)mesh_id, strlen(mesh_id));
	crypto_hash_sha256_final(&st, digest);
	for (int i = 0; i < 8; i++)
		k = (k << 8) | digest[i];
	return (int64_t)(k & 0x7fffffffffffffffULL);
}

/* Recomputes one stored row's hash (columns of AUDIT_SQL_VERIFY_ROWS).
 * jsonb rewrote the payload text, so it is parsed and rendered canonically
 * again; numbers are read as doubles, the way JavaScript reads them. */
static bool row_hash_ok(const PGresult *res, int row)
{
	char hex[AUDIT_HASH_HEX_LEN + 1];
	const char *actor = PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5);
	json_t *payload = json_loads(PQgetvalue(res, row, 6), JSON_DECODE_INT_AS_REAL, NULL);
	char *canon = audit_canonical_json(payload);

	json_decref(payload);
	if (!canon)
		return false;
	audit_hash(PQgetvalue(res, row, 1), PQgetvalue(res, row, 3), PQgetvalue(res, row, 4),
		   actor, canon, PQgetvalue(res, row, 7), hex);
	xfree(canon);
	return strcmp(hex, PQgetvalue(res, row, 2)) == 0;
}

bool audit_verify_chain(PGconn *pg, const char *mesh_id, long long *entries,
			long long *broken_at)
{
	const char *params[1] = { mesh_id };
	PGresult *res = PQexecParams(pg, AUDIT_SQL_VERIFY_ROWS, 1, NULL, params, NULL, NULL, 0);
	bool valid = true;

	*entries = -1;
	*broken_at = -1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warn("audit_verify_failed", "mesh=%s error=%s", mesh_id,
			 PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	int rows = PQntuples(res);
	*entries = rows;
	for (int i = 0; i < rows; i++) {
		const char *expected_prev = i == 0 ? "genesis" : PQgetvalue(res, i - 1, 2);
		if (strcmp(PQgetvalue(res, i, 1), expected_prev) != 0 || !row_hash_ok(res, i)) {
			*broken_at = strtoll(PQgetvalue(res, i, 0), NULL, 10);
			valid = false;
			break;
		}
	}
	PQclear(res);
	return valid;
}

json_t *audit_entry(const char *mesh_id, const char *event_type, const char *actor_member_id,
		    const char *actor_display_name, const json_t *payload, int64_t created_ms)
{
	char *canonical = audit_canonical_json(payload);
	if (!canonical) {
		log_warn("audit_payload_invalid", "mesh=%s event=%s", mesh_id, event_type);
		return NULL;
	}
	char iso[32];
	log_iso8601(iso, created_ms);
	json_t *e = json_object();
	json_object_set_new(e, "lock", json_integer(audit_lock_key(mesh_id)));
	json_object_set_new(e, "mesh", json_string(mesh_id));
	json_object_set_new(e, "event", json_string(event_type));
	json_object_set_new(e, "actor", actor_member_id ? json_string(actor_member_id) : json_null());
	json_object_set_new(e, "name",
			    actor_display_name ? json_string(actor_display_name) : json_null());
	json_object_set_new(e, "payload", json_string(canonical));
	json_object_set_new(e, "created", json_string(iso));
	xfree(canonical);
	return e;
}
