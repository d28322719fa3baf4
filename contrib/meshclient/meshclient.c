/* meshclient — claudemesh client frames, keys and DM crypto; no I/O.
 * See meshclient.h.  Any thread.
 */
#include "config.h"

#include "meshclient.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* sodium_init() is idempotent and thread-safe; 1 means "already done". */
static bool sodium_ready(void)
{
	return sodium_init() >= 0;
}

/* Exactly 2*n hex digits (any case) into n bytes. */
static bool hex_exact(const char *hex, unsigned char *out, size_t n)
{
	size_t got = 0;

	if (!hex || strlen(hex) != 2 * n)
		return false;
	return sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

/* printf into a malloc'd string. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

/* ------------------------------------------------------------------ keys */

static void identity_hex(struct mc_identity *id)
{
	sodium_bin2hex(id->pk_hex, sizeof(id->pk_hex), id->pk, sizeof(id->pk));
}

bool mc_identity_from_seed(const unsigned char seed[32], struct mc_identity *out)
{
	if (!sodium_ready() || crypto_sign_seed_keypair(out->pk, out->sk, seed) != 0)
		return false;
	identity_hex(out);
	return true;
}

bool mc_identity_random(struct mc_identity *out)
{
	if (!sodium_ready() || crypto_sign_keypair(out->pk, out->sk) != 0)
		return false;
	identity_hex(out);
	return true;
}

static bool sign_raw(const struct mc_identity *id, const void *msg, size_t len,
		     unsigned char sig[crypto_sign_BYTES])
{
	return sodium_ready() && crypto_sign_detached(sig, NULL, msg, len, id->sk) == 0;
}

bool mc_sign_hex(const struct mc_identity *id, const void *msg, size_t len,
		 char out[MC_SIG_HEX_LEN + 1])
{
	unsigned char sig[crypto_sign_BYTES];

	if (!sign_raw(id, msg, len, sig))
		return false;
	sodium_bin2hex(out, MC_SIG_HEX_LEN + 1, sig, sizeof(sig));
	return true;
}

bool mc_verify_hex(const char *pubkey_hex, const char *msg, const char *sig_hex)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];

	if (!sodium_ready() || !msg || !hex_exact(pubkey_hex, pk, sizeof(pk)) ||
	    !hex_exact(sig_hex, sig, sizeof(sig)))
		return false;
	return crypto_sign_verify_detached(sig, (const unsigned char *)msg, strlen(msg), pk) == 0;
}

/* The signature to put in a frame: replace verbatim, else id's signature
 * over msg (one bit flipped if corrupt) written to buf.  NULL on failure. */
static const char *frame_signature(const struct mc_identity *id, const char *msg,
				   const char *replace, bool corrupt, char buf[MC_SIG_HEX_LEN + 1])
{
	unsigned char sig[crypto_sign_BYTES];

	if (replace)
		return replace;
	if (!msg || !sign_raw(id, msg, strlen(msg), sig))
		return NULL;
	if (corrupt)
		sig[0] ^= 0x01;
	sodium_bin2hex(buf, MC_SIG_HEX_LEN + 1, sig, sizeof(sig));
	return buf;
}

/* --------------------------------------------------------------- helpers */

long long mc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mc_random_id(char *out, size_t n)
{
	static const char alphabet[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

	if (n == 0)
		return;
	(void)sodium_ready();   /* randombytes works without it; keep it uniform */
	for (size_t i = 0; i + 1 < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[n - 1] = '\0';
}

char *mc_b64(const void *data, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);

	if (!s)
		return NULL;
	sodium_bin2base64(s, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

bool mc_unb64(const char *b64, unsigned char **out, size_t *len)
{
	size_t n, cap, got = 0;
	unsigned char *buf;

	if (!b64 || !sodium_ready())
		return false;
	n = strlen(b64);
	cap = n / 4 * 3 + 3;
	buf = malloc(cap + 1);
	if (!buf)
		return false;
	if (sodium_base642bin(buf, cap, b64, n, NULL, &got, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(buf);
		return false;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return true;
}

/* ------------------------------------------------------------ encryption */

bool mc_encrypt_dm(const struct mc_identity *sender, const char *recipient_pubkey_hex,
		   const void *plain, size_t len, char **nonce_b64, char **ciphertext_b64)
{
	unsigned char rpk_ed[crypto_sign_PUBLICKEYBYTES], rpk[crypto_box_PUBLICKEYBYTES];
	unsigned char ssk[crypto_box_SECRETKEYBYTES], nonce[crypto_box_NONCEBYTES];
	unsigned char *c;
	char *n64 = NULL, *c64 = NULL;
	bool ok = false;

	if (!sodium_ready() || !hex_exact(recipient_pubkey_hex, rpk_ed, sizeof(rpk_ed)) ||
	    crypto_sign_ed25519_pk_to_curve25519(rpk, rpk_ed) != 0 ||
	    len > SIZE_MAX - crypto_box_MACBYTES)
		return false;
	c = malloc(len + crypto_box_MACBYTES);
	if (!c)
		return false;
	if (crypto_sign_ed25519_sk_to_curve25519(ssk, sender->sk) != 0)
		goto out;
	randombytes_buf(nonce, sizeof(nonce));
	if (crypto_box_easy(c, plain, len, nonce, rpk, ssk) != 0)
		goto out;
	n64 = mc_b64(nonce, sizeof(nonce));
	c64 = mc_b64(c, len + crypto_box_MACBYTES);
	if (!n64 || !c64) {
		free(n64);
		free(c64);
		goto out;
	}
	*nonce_b64 = n64;
	*ciphertext_b64 = c64;
	ok = true;
out:
	sodium_memzero(ssk, sizeof(ssk));
	free(c);
	return ok;
}

bool mc_decrypt_dm(const struct mc_identity *recipient, const char *sender_pubkey_hex,
		   const char *nonce_b64, const char *ciphertext_b64,
		   unsigned char **plain, size_t *len)
{
	unsigned char spk_ed[crypto_sign_PUBLICKEYBYTES], spk[crypto_box_PUBLICKEYBYTES];
	unsigned char rsk[crypto_box_SECRETKEYBYTES];
	unsigned char *nonce = NULL, *c = NULL, *m = NULL;
	size_t nlen, clen;
	bool ok = false;

	if (!sodium_ready() || !hex_exact(sender_pubkey_hex, spk_ed, sizeof(spk_ed)) ||
	    crypto_sign_ed25519_pk_to_curve25519(spk, spk_ed) != 0)
		return false;
	if (!mc_unb64(nonce_b64, &nonce, &nlen))
		return false;
	if (nlen != crypto_box_NONCEBYTES || !mc_unb64(ciphertext_b64, &c, &clen))
		goto out;
	if (clen < crypto_box_MACBYTES)
		goto out;
	m = malloc(clen - crypto_box_MACBYTES + 1);
	if (!m || crypto_sign_ed25519_sk_to_curve25519(rsk, recipient->sk) != 0)
		goto out;
	if (crypto_box_open_easy(m, c, clen, nonce, spk, rsk) != 0)
		goto out;
	m[clen - crypto_box_MACBYTES] = '\0';
	*plain = m;
	*len = clen - crypto_box_MACBYTES;
	m = NULL;
	ok = true;
out:
	sodium_memzero(rsk, sizeof(rsk));
	free(m);
	free(c);
	free(nonce);
	return ok;
}

/* -------------------------------------------------------- frame building */

/* The put_* helpers do nothing once *ok is false, and clear it when jansson
 * refuses (out of memory, invalid UTF-8).  A NULL value omits the key. */
static void put_str(json_t *o, const char *key, const char *v, bool *ok)
{
	if (*ok && v && json_object_set_new(o, key, json_string(v)) != 0)
		*ok = false;
}

static void put_int(json_t *o, const char *key, long long v, bool *ok)
{
	if (*ok && json_object_set_new(o, key, json_integer(v)) != 0)
		*ok = false;
}

/* Steals v (NULL means it could not be built). */
static void put_new(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (!*ok) {
		json_decref(v);
		return;
	}
	if (json_object_set_new(o, key, v) != 0)
		*ok = false;
}

static json_t *new_frame(const char *type, bool *ok)
{
	json_t *o = json_object();

	*ok = o != NULL;
	put_str(o, "type", type, ok);
	return o;
}

/* Dumps and releases o; NULL if anything failed on the way. */
static char *finish(json_t *o, bool ok)
{
	char *s = ok && o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

static json_t *group_json(const struct mc_group *g)
{
	json_t *e = json_object();
	bool ok = e != NULL;

	put_str(e, "name", g->name, &ok);
	put_str(e, "role", g->role, &ok);
	if (!ok) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static json_t *groups_json(const struct mc_group *g)
{
	json_t *a = json_array();

	for (; a && g->name; g++) {
		/* append_new releases the element, NULL included, on failure */
		if (json_array_append_new(a, group_json(g)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The optional fields both hellos share, in upstream order. */
static void put_peer_meta(json_t *f, const char *display_name, const char *session_id,
			  long long pid, const char *cwd, const char *hostname,
			  const char *peer_type, const char *channel, const char *model,
			  const struct mc_group *groups, bool *ok)
{
	put_str(f, "displayName", display_name, ok);
	put_str(f, "sessionId", session_id, ok);
	put_int(f, "pid", pid, ok);
	put_str(f, "cwd", cwd, ok);
	put_str(f, "hostname", hostname, ok);
	put_str(f, "peerType", peer_type, ok);
	put_str(f, "channel", channel, ok);
	put_str(f, "model", model, ok);
	if (groups)
		put_new(f, "groups", groups_json(groups), ok);
}

char *mc_hello(const struct mc_identity *member, const struct mc_hello_opts *o)
{
	char sigbuf[MC_SIG_HEX_LEN + 1];
	const char *pubkey, *sig;
	long long ts;
	char *canon;
	json_t *f;
	bool ok;

	if (!member || !o || !o->mesh_id || !o->member_id)
		return NULL;
	pubkey = o->pubkey ? o->pubkey : member->pk_hex;
	ts = o->timestamp ? o->timestamp : mc_now_ms();
	canon = fmt("%s|%s|%s|%lld", o->mesh_id, o->member_id, pubkey, ts);
	sig = frame_signature(member, canon, o->signature, o->corrupt_signature, sigbuf);
	free(canon);
	if (!sig)
		return NULL;

	f = new_frame("hello", &ok);
	put_str(f, "meshId", o->mesh_id, &ok);
	put_str(f, "memberId", o->member_id, &ok);
	put_str(f, "pubkey", pubkey, &ok);
	put_str(f, "sessionPubkey", o->session_pubkey, &ok);
	put_peer_meta(f, o->display_name, o->session_id, o->pid, o->cwd, o->hostname,
		      o->peer_type, o->channel, o->model, o->groups, &ok);
	put_int(f, "timestamp", ts, &ok);
	put_str(f, "signature", sig, &ok);
	return finish(f, ok);
}

static json_t *attestation_json(const struct mc_identity *parent, const struct mc_identity *session,
				const struct mc_session_hello_opts *o)
{
	char sigbuf[MC_SIG_HEX_LEN + 1];
	long long exp = o->expires_at ? o->expires_at : mc_now_ms() + MC_ATTEST_TTL_MS;
	char *canon = fmt("claudemesh-session-attest|%s|%s|%lld", parent->pk_hex,
			  session->pk_hex, exp);
	const char *sig = frame_signature(parent, canon, o->attestation_signature,
					  o->corrupt_attestation, sigbuf);
	json_t *a;
	bool ok;

	free(canon);
	if (!sig)
		return NULL;
	a = json_object();
	ok = a != NULL;
	put_str(a, "sessionPubkey", session->pk_hex, &ok);
	put_str(a, "parentMemberPubkey", parent->pk_hex, &ok);
	put_int(a, "expiresAt", exp, &ok);
	put_str(a, "signature", sig, &ok);
	if (!ok) {
		json_decref(a);
		return NULL;
	}
	return a;
}

char *mc_session_hello(const struct mc_identity *parent, const struct mc_identity *session,
		       const struct mc_session_hello_opts *o)
{
	char sigbuf[MC_SIG_HEX_LEN + 1];
	const char *sig;
	long long ts;
	char *canon;
	json_t *f;
	bool ok;

	if (!parent || !session || !o || !o->mesh_id)
		return NULL;
	ts = o->timestamp ? o->timestamp : mc_now_ms();
	canon = fmt("claudemesh-session-hello|%s|%s|%s|%lld", o->mesh_id, parent->pk_hex,
		    session->pk_hex, ts);
	sig = frame_signature(session, canon, o->signature, o->corrupt_signature, sigbuf);
	free(canon);
	if (!sig)
		return NULL;

	f = new_frame("session_hello", &ok);
	put_str(f, "meshId", o->mesh_id, &ok);
	put_str(f, "parentMemberId", o->parent_member_id, &ok);
	put_str(f, "parentMemberPubkey", parent->pk_hex, &ok);
	put_str(f, "sessionPubkey", session->pk_hex, &ok);
	if (ok)
		put_new(f, "parentAttestation", attestation_json(parent, session, o), &ok);
	put_peer_meta(f, o->display_name, o->session_id, o->pid, o->cwd, o->hostname,
		      o->peer_type, o->channel, o->model, o->groups, &ok);
	put_int(f, "timestamp", ts, &ok);
	put_str(f, "signature", sig, &ok);
	return finish(f, ok);
}

char *mc_send(const struct mc_send_opts *o)
{
	json_t *f;
	bool ok;

	if (!o)
		return NULL;
	f = new_frame("send", &ok);
	put_str(f, "id", o->id, &ok);
	put_str(f, "client_message_id", o->client_message_id, &ok);
	put_str(f, "request_fingerprint", o->request_fingerprint, &ok);
	put_str(f, "targetSpec", o->target_spec, &ok);
	put_str(f, "priority", o->priority, &ok);
	put_str(f, "nonce", o->nonce, &ok);
	put_str(f, "ciphertext", o->ciphertext, &ok);
	return finish(f, ok);
}

/* A frame of type with up to two optional string fields. */
static char *simple_frame(const char *type, const char *k1, const char *v1,
			  const char *k2, const char *v2)
{
	bool ok;
	json_t *f = new_frame(type, &ok);

	put_str(f, k1, v1, &ok);
	if (k2)
		put_str(f, k2, v2, &ok);
	return finish(f, ok);
}

char *mc_client_ack(const char *client_message_id, const char *broker_message_id)
{
	return simple_frame("client_ack", "clientMessageId", client_message_id,
			    "brokerMessageId", broker_message_id);
}

char *mc_list_peers(const char *req_id)
{
	return simple_frame("list_peers", "_reqId", req_id, NULL, NULL);
}

char *mc_set_status(const char *status)
{
	if (!status)
		return NULL;
	return simple_frame("set_status", "status", status, NULL, NULL);
}

char *mc_set_summary(const char *summary)
{
	return simple_frame("set_summary", "summary", summary, NULL, NULL);
}

char *mc_join_group(const char *name, const char *role)
{
	if (!name)
		return NULL;
	return simple_frame("join_group", "name", name, "role", role);
}

char *mc_leave_group(const char *name)
{
	if (!name)
		return NULL;
	return simple_frame("leave_group", "name", name, NULL, NULL);
}

char *mc_message_status(const char *message_id, const char *req_id)
{
	if (!message_id)
		return NULL;
	return simple_frame("message_status", "messageId", message_id, "_reqId", req_id);
}

/* Deletes the key named by a dotted path; a missing key is not an error. */
static bool drop_path(json_t *root, const char *path)
{
	char *copy = strdup(path), *key, *dot;
	json_t *o = root;

	if (!copy)
		return false;
	key = copy;
	while (o && (dot = strchr(key, '.'))) {
		*dot = '\0';
		o = json_object_get(o, key);
		if (!json_is_object(o))
			o = NULL;
		key = dot + 1;
	}
	if (o)
		json_object_del(o, key);
	free(copy);
	return true;
}

char *mc_patch(const char *frame, const char *merge_json, const char *const *drop)
{
	json_t *root, *merge = NULL;
	bool ok;

	if (!frame)
		return NULL;
	root = json_loads(frame, 0, NULL);
	ok = json_is_object(root);
	if (ok && merge_json) {
		merge = json_loads(merge_json, 0, NULL);
		ok = json_is_object(merge) && json_object_update_recursive(root, merge) == 0;
		json_decref(merge);
	}
	for (; ok && drop && *drop; drop++)
		ok = drop_path(root, *drop);
	return finish(root, ok);
}

/* ---------------------------------------------------------------- parser */

static void bad(struct mc_frame *f, const char *label)
{
	if (!f->bad_field)
		f->bad_field = label;
}

/* A string member: NULL if absent; a wrong type (or absence when need) is
 * recorded as label. */
static const char *get_str(struct mc_frame *f, const char *key, bool need, const char *label)
{
	json_t *v = json_object_get(f->json, key);

	if (!v) {
		if (need)
			bad(f, label);
		return NULL;
	}
	if (!json_is_string(v)) {
		bad(f, label);
		return NULL;
	}
	return json_string_value(v);
}

static bool get_bool(struct mc_frame *f, const char *key, const char *label)
{
	json_t *v = json_object_get(f->json, key);

	if (!json_is_boolean(v))
		bad(f, label);
	return json_is_true(v);
}

/* A member of the given jansson type, or NULL (recorded as label). */
static json_t *get_typed(struct mc_frame *f, const char *key, json_type t, const char *label)
{
	json_t *v = json_object_get(f->json, key);

	if (!v || json_typeof(v) != t) {
		bad(f, label);
		return NULL;
	}
	return v;
}

static void parse_hello_ack(struct mc_frame *f)
{
	f->hello_ack.presence_id = get_str(f, "presenceId", true, "hello_ack.presenceId");
	f->hello_ack.member_display_name =
		get_str(f, "memberDisplayName", true, "hello_ack.memberDisplayName");
}

static void parse_ack(struct mc_frame *f)
{
	f->ack.id = get_str(f, "id", true, "ack.id");
	f->ack.message_id = get_str(f, "messageId", true, "ack.messageId");
	f->ack.queued = get_bool(f, "queued", "ack.queued");
	f->ack.error = get_str(f, "error", false, "ack.error");
	if (f->ack.queued && f->ack.error)
		bad(f, "ack.error");    /* only rejections carry one */
}

static void parse_push(struct mc_frame *f)
{
	struct mc_push *p = &f->push;

	p->message_id = get_str(f, "messageId", true, "push.messageId");
	p->mesh_id = get_str(f, "meshId", true, "push.meshId");
	p->sender_pubkey = get_str(f, "senderPubkey", true, "push.senderPubkey");
	p->priority = get_str(f, "priority", false, "push.priority");
	p->nonce = get_str(f, "nonce", true, "push.nonce");
	p->ciphertext = get_str(f, "ciphertext", true, "push.ciphertext");
	p->created_at = get_str(f, "createdAt", true, "push.createdAt");
	p->client_message_id = get_str(f, "client_message_id", false, "push.client_message_id");
	p->request_fingerprint =
		get_str(f, "request_fingerprint", false, "push.request_fingerprint");
	p->sender_member_pubkey =
		get_str(f, "senderMemberPubkey", false, "push.senderMemberPubkey");
	p->sender_member_id = get_str(f, "senderMemberId", false, "push.senderMemberId");
	p->sender_name = get_str(f, "senderName", false, "push.senderName");
	p->reply_to_id = get_str(f, "replyToId", false, "push.replyToId");
	p->subtype = get_str(f, "subtype", false, "push.subtype");
	p->system = (p->subtype && strcmp(p->subtype, "system") == 0) ||
		    (p->sender_pubkey && strcmp(p->sender_pubkey, "system") == 0);
	if (p->system) {
		p->event = get_str(f, "event", true, "push.event");
		p->event_data = get_typed(f, "eventData", JSON_OBJECT, "push.eventData");
	} else {
		p->event = get_str(f, "event", false, "push.event");
		p->event_data = json_object_get(f->json, "eventData");
	}
}

static void parse_error(struct mc_frame *f)
{
	f->error.code = get_str(f, "code", true, "error.code");
	f->error.message = get_str(f, "message", true, "error.message");
	f->error.id = get_str(f, "id", false, "error.id");
}

static void parse_peers_list(struct mc_frame *f)
{
	f->peers_list.peers = get_typed(f, "peers", JSON_ARRAY, "peers_list.peers");
}

static void parse_message_status(struct mc_frame *f)
{
	struct mc_message_status_result *m = &f->message_status;
	json_t *at = json_object_get(f->json, "deliveredAt");

	m->message_id = get_str(f, "messageId", true, "message_status_result.messageId");
	m->target_spec = get_str(f, "targetSpec", true, "message_status_result.targetSpec");
	m->delivered = get_bool(f, "delivered", "message_status_result.delivered");
	if (json_is_string(at))
		m->delivered_at = json_string_value(at);
	else if (!json_is_null(at))
		bad(f, "message_status_result.deliveredAt");
	m->recipients = get_typed(f, "recipients", JSON_ARRAY, "message_status_result.recipients");
}

static const struct {
	const char *name;
	enum mc_frame_type type;
	void (*parse)(struct mc_frame *f);
} frame_types[] = {
	{ "hello_ack", MC_HELLO_ACK, parse_hello_ack },
	{ "ack", MC_ACK, parse_ack },
	{ "push", MC_PUSH, parse_push },
	{ "error", MC_ERROR, parse_error },
	{ "peers_list", MC_PEERS_LIST, parse_peers_list },
	{ "message_status_result", MC_MESSAGE_STATUS_RESULT, parse_message_status },
};

bool mc_parse(const char *json, size_t len, struct mc_frame *f)
{
	json_t *type;

	memset(f, 0, sizeof(*f));
	if (!json)
		return false;
	f->json = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	type = json_object_get(f->json, "type");    /* NULL unless an object */
	if (!json_is_string(type)) {
		mc_frame_free(f);
		return false;
	}
	f->type_str = json_string_value(type);
	f->req_id = get_str(f, "_reqId", false, "_reqId");
	f->type = MC_OTHER;
	for (size_t i = 0; i < sizeof(frame_types) / sizeof(frame_types[0]); i++) {
		if (strcmp(f->type_str, frame_types[i].name) != 0)
			continue;
		f->type = frame_types[i].type;
		frame_types[i].parse(f);
		break;
	}
	return true;
}

void mc_frame_free(struct mc_frame *f)
{
	json_decref(f->json);
	memset(f, 0, sizeof(*f));
}

const char *mc_frame_type_name(enum mc_frame_type t)
{
	for (size_t i = 0; i < sizeof(frame_types) / sizeof(frame_types[0]); i++)
		if (frame_types[i].type == t)
			return frame_types[i].name;
	return "other";
}
