/* hello — stateless handshake checks; see include/meshd/hello.h. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/hello.h"
#include "meshd/jscompat.h"
#include "meshd/limits.h"
#include "meshd/metrics.h"
#include "meshd/strbuf.h"

#define ROW(name, code, message, metric) { name, code, message, 1008, code, metric }

static const struct hello_rejection rows[HR__COUNT] = {
	[HR_BAD_SESSION_PUBKEY] = ROW("bad_session_pubkey", "bad_session_pubkey",
		"sessionPubkey must be 64 lowercase hex chars", REJECT_BAD_SESSION_PUBKEY),
	[HR_CAPACITY] = ROW("capacity", "capacity", "mesh at connection capacity", REJECT_CAPACITY),
	[HR_TIMESTAMP_SKEW] = ROW("timestamp_skew", "timestamp_skew",
		"hello rejected: timestamp_skew", REJECT_TIMESTAMP_SKEW),
	[HR_MALFORMED] = ROW("malformed", "malformed", "hello rejected: malformed", REJECT_MALFORMED),
	[HR_BAD_SIGNATURE] = ROW("bad_signature", "bad_signature",
		"hello rejected: bad_signature", REJECT_BAD_SIGNATURE),
	[HR_REVOKED] = { "revoked", "revoked",
		"You've been removed from \"%s\". Contact the mesh owner to rejoin.",
		4002, "banned", REJECT_REVOKED },
	[HR_UNAUTHORIZED] = ROW("unauthorized", "unauthorized", "pubkey not found in mesh",
		REJECT_UNAUTHORIZED),
	[HR_BAD_PARENT_PUBKEY] = ROW("bad_parent_pubkey", "bad_parent_pubkey",
		"parentMemberPubkey must be 64 lowercase hex chars", REJECT_BAD_PARENT_PUBKEY),
	[HR_ATTESTATION_MISMATCH] = ROW("attestation_mismatch", "attestation_mismatch",
		"parentAttestation does not bind the claimed session+parent pubkeys",
		REJECT_ATTESTATION_MISMATCH),
	[HR_ATT_MALFORMED] = ROW("attestation_malformed", "malformed",
		"attestation rejected: malformed", REJECT_ATTESTATION_MALFORMED),
	[HR_ATT_EXPIRED] = ROW("attestation_expired", "expired",
		"attestation rejected: expired", REJECT_ATTESTATION_EXPIRED),
	[HR_ATT_TTL_TOO_LONG] = ROW("attestation_ttl_too_long", "ttl_too_long",
		"attestation rejected: ttl_too_long", REJECT_ATTESTATION_TTL_TOO_LONG),
	[HR_ATT_BAD_SIGNATURE] = ROW("attestation_bad_signature", "bad_signature",
		"attestation rejected: bad_signature", REJECT_ATTESTATION_BAD_SIGNATURE),
	[HR_SESSION_TIMESTAMP_SKEW] = ROW("session_timestamp_skew", "timestamp_skew",
		"session_hello rejected: timestamp_skew", REJECT_SESSION_TIMESTAMP_SKEW),
	[HR_SESSION_MALFORMED] = ROW("session_malformed", "malformed",
		"session_hello rejected: malformed", REJECT_SESSION_MALFORMED),
	[HR_SESSION_BAD_SIGNATURE] = ROW("session_bad_signature", "bad_signature",
		"session_hello rejected: bad_signature", REJECT_SESSION_BAD_SIGNATURE),
	[HR_PARENT_UNAUTHORIZED] = ROW("parent_unauthorized", "unauthorized",
		"parent pubkey not found in mesh", REJECT_UNAUTHORIZED),
	[HR_PARENT_MEMBER_ID_MISMATCH] = ROW("parent_member_id_mismatch",
		"parent_member_id_mismatch", "parentMemberId does not match parentMemberPubkey",
		REJECT_PARENT_MEMBER_ID_MISMATCH),
	[HR_MISSING_FIELDS] = ROW("missing_fields", "malformed", "hello rejected: malformed",
		REJECT_MALFORMED),
	[HR_SESSION_MISSING_FIELDS] = ROW("session_missing_fields", "malformed",
		"session_hello rejected: malformed", REJECT_SESSION_MALFORMED),
	[HR_MEMBER_ID_MISMATCH] = ROW("member_id_mismatch", "unauthorized",
		"pubkey not found in mesh", REJECT_UNAUTHORIZED),
	[HR_MESH_ARCHIVED] = ROW("mesh_archived", "unauthorized", "pubkey not found in mesh",
		REJECT_UNAUTHORIZED),
	[HR_PARENT_MESH_ARCHIVED] = ROW("parent_mesh_archived", "unauthorized",
		"parent pubkey not found in mesh", REJECT_UNAUTHORIZED),
};

const struct hello_rejection *hello_rejection(enum hello_reject r)
{
	if (r <= HELLO_OK || r >= HR__COUNT)
		return NULL;
	return &rows[r];
}

size_t hello_format_message(enum hello_reject r, const char *label, char *out, size_t cap)
{
	const struct hello_rejection *row = hello_rejection(r);
	const char *msg = row ? row->message : "";
	const char *hole = strstr(msg, "%s");
	int n;

	if (hole)
		n = snprintf(out, cap, "%.*s%s%s", (int)(hole - msg), msg, label ? label : "",
			     hole + 2);
	else
		n = snprintf(out, cap, "%s", msg);
	return n < 0 ? 0 : (size_t)n;
}

/* ---- growable byte buffer for canonical strings (bounded by the frame) ---- */


static void sb_number(struct strbuf *b, double v)
{
	char t[JS_NUMBER_MAX];
	strbuf_add(b, t, js_number_to_string(v, t));
}

/* ---- JavaScript number and value rendering ---- */

/* A JSON number as JavaScript holds it: false unless a number. */
static bool number_of(const json_t *v, double *out)
{
	if (json_is_integer(v))
		*out = (double)json_integer_value(v);
	else if (json_is_real(v))
		*out = json_real_value(v);
	else
		return false;
	return isfinite(*out);
}

static bool js_truthy(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	if (json_is_number(v))
		return json_number_value(v) != 0; /* jansson holds no NaN */
	return true; /* true, objects and arrays */
}

/* `${v}` in a template string.  Arrays render as Array.prototype.join(",")
 * with null elements empty; depth is bounded by jansson's parser. */
static void sb_js_value(struct strbuf *b, const json_t *v)
{
	if (!v) {
		strbuf_adds(b, "undefined");
	} else if (json_is_string(v)) {
		strbuf_add(b, json_string_value(v), json_string_length(v));
	} else if (json_is_number(v)) {
		sb_number(b, json_number_value(v));
	} else if (json_is_true(v)) {
		strbuf_adds(b, "true");
	} else if (json_is_false(v)) {
		strbuf_adds(b, "false");
	} else if (json_is_null(v)) {
		strbuf_adds(b, "null");
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *e = json_array_get(v, i);
			if (i)
				strbuf_adds(b, ",");
			if (!json_is_null(e))
				sb_js_value(b, e);
		}
	} else {
		strbuf_adds(b, "[object Object]");
	}
}

/* ---- field helpers ---- */

static bool is_hex(const char *s, size_t n, bool lower_only)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (!lower_only && c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* obj[key] when it is a string of exactly n hex characters, else NULL. */
static const char *hex_field(const json_t *obj, const char *key, size_t n, bool lower_only)
{
	const char *s = js_field(obj, key);
	return s && is_hex(s, n, lower_only) ? s : NULL;
}

static bool int32_of(const json_t *v, int32_t *out)
{
	double d;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < INT32_MIN || i > INT32_MAX)
			return false;
		*out = (int32_t)i;
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!isfinite(d) || d != floor(d) || d < INT32_MIN || d > INT32_MAX)
		return false;
	*out = (int32_t)d;
	return true;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static bool skew_ok(const json_t *v, double now, double *ts)
{
	return number_of(v, ts) && fabs(now - *ts) <= HELLO_SKEW_MS;
}

/* ---- Ed25519 ---- */

/* Shapes already checked: pubkey 64 hex, signature 128 hex, either case. */
static bool verify_raw(const char *msg, size_t len, const char *sig_hex, const char *pk_hex)
{
	unsigned char sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
	size_t n = 0;

	if (sodium_hex2bin(pk, sizeof(pk), pk_hex, 2 * sizeof(pk), NULL, &n, NULL) != 0 ||
	    n != sizeof(pk))
		return false;
	if (sodium_hex2bin(sig, sizeof(sig), sig_hex, 2 * sizeof(sig), NULL, &n, NULL) != 0 ||
	    n != sizeof(sig))
		return false;
	return crypto_sign_verify_detached(sig, (const unsigned char *)msg, len, pk) == 0;
}

bool hello_verify(const char *canonical, const char *signature_hex, const char *pubkey_hex)
{
	if (!canonical || !signature_hex || !pubkey_hex || !is_hex(pubkey_hex, 64, false) ||
	    !is_hex(signature_hex, 128, false))
		return false;
	return verify_raw(canonical, strlen(canonical), signature_hex, pubkey_hex);
}

/* ---- canonical strings ---- */

char *hello_canonical_member(const char *mesh_id, const char *member_id, const char *pubkey,
			     double timestamp)
{
	struct strbuf b = { 0 };
	strbuf_adds(&b, mesh_id);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, member_id);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, pubkey);
	strbuf_adds(&b, "|");
	sb_number(&b, timestamp);
	return b.p;
}

char *hello_canonical_attestation(const char *parent_pubkey, const char *session_pubkey,
				  double expires_at)
{
	struct strbuf b = { 0 };
	strbuf_adds(&b, "claudemesh-session-attest|");
	strbuf_adds(&b, parent_pubkey);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, session_pubkey);
	strbuf_adds(&b, "|");
	sb_number(&b, expires_at);
	return b.p;
}

char *hello_canonical_session(const char *mesh_id, const char *parent_pubkey,
			      const char *session_pubkey, double timestamp)
{
	struct strbuf b = { 0 };
	strbuf_adds(&b, "claudemesh-session-hello|");
	strbuf_adds(&b, mesh_id);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, parent_pubkey);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, session_pubkey);
	strbuf_adds(&b, "|");
	sb_number(&b, timestamp);
	return b.p;
}

/* ---- the checks ---- */

/* Q11: the fields the presence needs; false if one is missing or invalid. */
static bool required_fields(const json_t *msg, struct hello *h)
{
	const char *mesh_id = js_field(msg, "meshId");
	const char *session_id = js_field(msg, "sessionId");
	const char *cwd = js_field(msg, "cwd");
	const char *member_id = js_field(msg, "memberId");

	if (!mesh_id || !session_id || !cwd || !int32_of(json_object_get(msg, "pid"), &h->pid))
		return false;
	if (h->kind == HELLO_MEMBER && !member_id)
		return false;
	h->mesh_id = xstrdup(mesh_id);
	h->session_id = xstrdup(session_id);
	h->cwd = xstrdup(cwd);
	if (h->kind == HELLO_MEMBER)
		h->member_id = xstrdup(member_id);
	return true;
}

static void parse_groups(const json_t *msg, struct hello *h)
{
	const json_t *g = json_object_get(msg, "groups");
	size_t n = json_array_size(g);

	if (!json_is_array(g))
		return;
	h->groups_present = h->kind == HELLO_SESSION || n > 0;
	h->groups = xcalloc(n ? n : 1, sizeof(*h->groups));
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(g, i);
		const char *name = js_field(e, "name");
		const char *role = js_field(e, "role");
		if (!json_is_object(e) || !name)
			continue;
		/* The bounds of join_group (limits.h): a hello has no answer
		 * for one group, so one out of bounds is left out. */
		if (!limit_group_ok(name, role) || h->ngroups == GROUPS_MAX) {
			metrics_inc_label(METRIC_LIMIT_REFUSALS,
					  h->ngroups == GROUPS_MAX ? LIMIT_GROUPS : LIMIT_GROUP);
			continue;
		}
		h->groups[h->ngroups].name = xstrdup(name);
		h->groups[h->ngroups].role = role && *role ? xstrdup(role) : NULL;
		h->ngroups++;
	}
}

/* What both kinds carry besides the keys (after every check passed). */
static void parse_optional(const json_t *msg, struct hello *h)
{
	const char *display_name = js_field(msg, "displayName");

	h->display_name = display_name && *display_name ? xstrdup(display_name) : NULL;
	h->hostname = dup_or_null(js_field(msg, "hostname"));
	h->peer_type = dup_or_null(js_field(msg, "peerType"));
	h->channel = dup_or_null(js_field(msg, "channel"));
	h->model = dup_or_null(js_field(msg, "model"));
	parse_groups(msg, h);
}

/* PROTOCOL.md §5.3, hello steps 1, 3, 4, 5, then Q11 (step 2 is the caller's). */
static enum hello_reject check_member(const json_t *msg, double now, struct hello *h)
{
	const json_t *spk_v = json_object_get(msg, "sessionPubkey");
	const char *spk = NULL, *pubkey, *sig;
	struct strbuf b = { 0 };
	double ts;
	bool ok;

	if (js_truthy(spk_v)) {
		spk = js_string(spk_v);
		if (!spk || !is_hex(spk, 64, true))
			return HR_BAD_SESSION_PUBKEY;
	}
	if (!skew_ok(json_object_get(msg, "timestamp"), now, &ts))
		return HR_TIMESTAMP_SKEW;
	pubkey = hex_field(msg, "pubkey", 64, false);
	sig = hex_field(msg, "signature", 128, false);
	if (!pubkey || !sig)
		return HR_MALFORMED;

	sb_js_value(&b, json_object_get(msg, "meshId"));
	strbuf_adds(&b, "|");
	sb_js_value(&b, json_object_get(msg, "memberId"));
	strbuf_adds(&b, "|");
	strbuf_adds(&b, pubkey);
	strbuf_adds(&b, "|");
	sb_number(&b, ts);
	ok = verify_raw(b.p, b.len, sig, pubkey);
	xfree(b.p);
	if (!ok)
		return HR_BAD_SIGNATURE;

	if (!required_fields(msg, h))
		return HR_MISSING_FIELDS;
	h->pubkey = xstrdup(pubkey);
	h->session_pubkey = dup_or_null(spk);
	h->timestamp = ts;
	return HELLO_OK;
}

/* PROTOCOL.md §5.3, session_hello steps 1–3, 5a–e, 6a–c, then Q11. */
static enum hello_reject check_session(const json_t *msg, double now, struct hello *h)
{
	const char *spk, *ppk, *a_spk, *a_ppk, *asig, *sig;
	const json_t *att, *pmid;
	struct strbuf b = { 0 };
	double expires, ts;
	char *canon;
	bool ok;

	spk = hex_field(msg, "sessionPubkey", 64, true);
	if (!spk)
		return HR_BAD_SESSION_PUBKEY;
	ppk = hex_field(msg, "parentMemberPubkey", 64, true);
	if (!ppk)
		return HR_BAD_PARENT_PUBKEY;
	att = json_object_get(msg, "parentAttestation");
	a_spk = js_field(att, "sessionPubkey");
	a_ppk = js_field(att, "parentMemberPubkey");
	if (!json_is_object(att) || !a_spk || !a_ppk || strcmp(a_spk, spk) != 0 ||
	    strcmp(a_ppk, ppk) != 0)
		return HR_ATTESTATION_MISMATCH;

	if (!number_of(json_object_get(att, "expiresAt"), &expires))
		return HR_ATT_MALFORMED;
	if (expires <= now)
		return HR_ATT_EXPIRED;
	if (expires > now + HELLO_ATTESTATION_MAX_TTL_MS)
		return HR_ATT_TTL_TOO_LONG;
	asig = hex_field(att, "signature", 128, false);
	if (!asig)
		return HR_ATT_MALFORMED;
	canon = hello_canonical_attestation(ppk, spk, expires);
	ok = verify_raw(canon, strlen(canon), asig, ppk);
	xfree(canon);
	if (!ok)
		return HR_ATT_BAD_SIGNATURE;

	if (!skew_ok(json_object_get(msg, "timestamp"), now, &ts))
		return HR_SESSION_TIMESTAMP_SKEW;
	sig = hex_field(msg, "signature", 128, false);
	if (!sig)
		return HR_SESSION_MALFORMED;
	strbuf_adds(&b, "claudemesh-session-hello|");
	sb_js_value(&b, json_object_get(msg, "meshId"));
	strbuf_adds(&b, "|");
	strbuf_adds(&b, ppk);
	strbuf_adds(&b, "|");
	strbuf_adds(&b, spk);
	strbuf_adds(&b, "|");
	sb_number(&b, ts);
	ok = verify_raw(b.p, b.len, sig, spk);
	xfree(b.p);
	if (!ok)
		return HR_SESSION_BAD_SIGNATURE;

	if (!required_fields(msg, h))
		return HR_SESSION_MISSING_FIELDS;
	pmid = json_object_get(msg, "parentMemberId");
	h->member_id_truthy = js_truthy(pmid);
	if (js_string(pmid) && *js_string(pmid))
		h->member_id = xstrdup(js_string(pmid));
	h->pubkey = xstrdup(ppk);
	h->session_pubkey = xstrdup(spk);
	h->timestamp = ts;
	h->expires_at = expires;
	return HELLO_OK;
}

enum hello_reject hello_check(const json_t *msg, enum hello_kind kind, int64_t now_ms,
			      struct hello *h)
{
	enum hello_reject r;

	memset(h, 0, sizeof(*h));
	h->kind = kind;
	if (kind == HELLO_SESSION)
		r = check_session(msg, (double)now_ms, h);
	else
		r = check_member(msg, (double)now_ms, h);
	if (r != HELLO_OK) {
		hello_free(h);
		h->kind = kind;
		return r;
	}
	parse_optional(msg, h);
	return HELLO_OK;
}

void hello_free(struct hello *h)
{
	if (!h)
		return;
	xfree(h->mesh_id);
	xfree(h->member_id);
	xfree(h->pubkey);
	xfree(h->session_pubkey);
	xfree(h->session_id);
	xfree(h->cwd);
	xfree(h->display_name);
	xfree(h->hostname);
	xfree(h->peer_type);
	xfree(h->channel);
	xfree(h->model);
	for (size_t i = 0; i < h->ngroups; i++) {
		xfree(h->groups[i].name);
		xfree(h->groups[i].role);
	}
	xfree(h->groups);
	memset(h, 0, sizeof(*h));
}

bool hello_member_id_matches(const struct hello *h, const char *resolved_member_id)
{
	if (!h || !resolved_member_id)
		return false;
	if (h->kind == HELLO_SESSION && !h->member_id_truthy)
		return true;
	return h->member_id && strcmp(h->member_id, resolved_member_id) == 0;
}
