/* Integration: the handshake against the real broker (PROTOCOL.md §5, §7.8–7.10, §10, §12).
 *
 * Every rejection row of §5.3 (both tables) is driven through a real socket:
 * the exact error frame bytes, then the close code and reason, then nothing
 * (no hello_ack), and broker_connections_rejected_total moving by exactly one
 * on exactly one label.  The success side covers the hello_ack shapes, the
 * presence broadcasts, session-id dedup, reattach and eviction.
 *
 * Each test starts its own broker (the environment varies per test).  No
 * fixed sleeps: tests wait on frames, or poll /metrics with a deadline. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "meshtest.h"

static struct broker B;
static bool running;

/* ------------------------------------------------------------ broker */

static void start(const char *const *more)
{
	const char *env[16] = { "BROKER_WORKERS=4", NULL };
	size_t n = 1;
	for (size_t i = 0; more && more[i] && n < 15; i++)
		env[n++] = more[i];
	env[n] = NULL;
	itest_broker_start(&B, env);
	running = true;
	ck_assert(itest_wait_status(B.port, "/health", 200, 15000));
}

static void start_default(void)
{
	start(NULL);
}

static void teardown(void)
{
	if (running) {
		running = false;
		itest_broker_stop(&B);
	}
}

/* ------------------------------------------------------------ seeding */

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t)n < sizeof(buf));
	ck_assert_msg(pgtest_exec(itest_db_url(), buf), "sql: %s", buf);
}

/* A mesh with an explicit name and slug (mt_seed_mesh derives the slug). */
static void seed_mesh_row(const char *id, const char *name, const char *slug, bool archived)
{
	sql("INSERT INTO public.\"user\"(id,name,email) VALUES ('test-user','t','t@x')"
	    " ON CONFLICT DO NOTHING;"
	    "INSERT INTO mesh.mesh(id,name,slug,owner_user_id,archived_at)"
	    " VALUES ('%s','%s','%s','test-user',%s)",
	    id, name, slug, archived ? "now()" : "NULL");
}

/* A member row for a key we already hold. */
static void seed_member_key(const char *mesh, const char *member_id, const char *name,
			    const char *pk_hex, bool revoked)
{
	sql("INSERT INTO mesh.member(id,mesh_id,peer_pubkey,display_name,revoked_at)"
	    " VALUES ('%s','%s','%s','%s',%s)",
	    member_id, mesh, pk_hex, name, revoked ? "now()" : "NULL");
}

static void random_identity(struct mc_identity *id)
{
	ck_assert(mc_identity_random(id));
}

static void upper_hex(const char *in, char *out, size_t cap)
{
	snprintf(out, cap, "%s", in);
	for (char *p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	ck_assert_str_ne(in, out); /* a random key has letters */
}

/* ------------------------------------------------------------ metrics */

static long long metric0(const char *sample)
{
	long long v = itest_metric(B.port, sample);
	return v < 0 ? 0 : v;
}

static long long rejected(const char *label)
{
	char s[160];
	snprintf(s, sizeof(s), "broker_connections_rejected_total{reason=\"%s\"}", label);
	return metric0(s);
}

/* The sum over every label of broker_connections_rejected_total. */
static long long rejected_sum(void)
{
	static const char prefix[] = "broker_connections_rejected_total";
	struct http_response r;
	long long sum = 0;
	itest_get(B.port, "/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	for (const char *line = r.body; line && *line;) {
		const char *end = strchr(line, '\n');
		if (strncmp(line, prefix, sizeof(prefix) - 1) == 0) {
			const char *sp = strchr(line, ' ');
			ck_assert_ptr_nonnull(sp);
			sum += strtoll(sp + 1, NULL, 10);
		}
		line = end ? end + 1 : NULL;
	}
	httpc_response_free(&r);
	return sum;
}

static long long active(void)
{
	return itest_metric(B.port, "broker_connections_active");
}

/* Polls an observable gauge with a deadline. */
static bool wait_active(long long want, int timeout_ms)
{
	long long deadline = mc_now_ms() + timeout_ms;
	for (;;) {
		if (active() == want)
			return true;
		if (mc_now_ms() >= deadline)
			return false;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL); /* polling an observable state, with a deadline */
	}
}

/* ------------------------------------------------------------ sockets */

static struct wsc *ws_open(void)
{
	struct wsc *w = wsc_connect(B.port, "/ws", 5000);
	ck_assert_ptr_nonnull(w);
	wsc_set_auto_pong(w, true);
	return w;
}

/* The next message that is not a ping or pong. */
static int recv_msg(struct wsc *w, struct wsc_msg *m, int timeout_ms)
{
	long long deadline = mc_now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - mc_now_ms();
		int t = wsc_recv(w, m, left > 0 ? (int)left : 0);
		if (t != WSC_PING && t != WSC_PONG)
			return t;
		wsc_msg_free(m);
	}
}

static void json_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	ck_assert(!*s);
	out[o] = '\0';
}

/* The socket must now see a close frame (code, reason) and then EOF, with
 * no text frame before or after. */
static void expect_close(struct wsc *w, int code, const char *reason)
{
	struct wsc_msg m;
	int t = recv_msg(w, &m, 10000);
	ck_assert_msg(t == WSC_CLOSE, "expected close %d %s, got %s %s", code, reason,
		      wsc_type_name(t), t == WSC_TEXT ? m.data : "");
	ck_assert_int_eq(m.close_code, code);
	ck_assert_str_eq(m.close_reason, reason);
	wsc_msg_free(&m);
	t = recv_msg(w, &m, 10000);
	ck_assert_msg(t == WSC_EOF, "after the close: %s %s", wsc_type_name(t),
		      t == WSC_TEXT ? m.data : "");
	wsc_msg_free(&m);
}

/* §5.3: one error frame with exactly these bytes (no id, no _reqId), then
 * close K/R, then EOF: no hello_ack ever.  The rejection counter moves by
 * one, on `label` and nowhere else. */
static void expect_rejected(const char *frame, const char *code, const char *message,
			    int close_code, const char *reason, const char *label)
{
	ck_assert_ptr_nonnull(frame);
	long long before = rejected(label), before_sum = rejected_sum();
	struct wsc *w = ws_open();
	ck_assert(wsc_send_text(w, frame, strlen(frame)));

	char esc[512], want[768];
	json_escape(message, esc, sizeof(esc));
	snprintf(want, sizeof(want), "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}", code,
		 esc);
	struct wsc_msg m;
	int t = recv_msg(w, &m, 10000);
	ck_assert_msg(t == WSC_TEXT, "[%s] expected the error frame, got %s", label,
		      wsc_type_name(t));
	ck_assert_msg(strcmp(m.data, want) == 0, "[%s]\n got: %s\nwant: %s", label, m.data, want);
	wsc_msg_free(&m);
	expect_close(w, close_code, reason);
	wsc_free(w);

	ck_assert_msg(rejected(label) == before + 1, "[%s] metric %lld -> %lld", label, before,
		      rejected(label));
	ck_assert_int_eq(rejected_sum(), before_sum + 1);
}

static void reject_member(const char *frame, const char *code, const char *message,
			  const char *label)
{
	expect_rejected(frame, code, message, 1008, code, label);
}

/* Sends `frame` on a new socket; the first frame back must be hello_ack.
 * Returns its raw text (malloc'd) and records the presence id in p. */
static char *hello_ok(struct mt_peer *p, const char *frame)
{
	ck_assert_ptr_nonnull(frame);
	p->ws = ws_open();
	ck_assert(wsc_send_text(p->ws, frame, strlen(frame)));
	struct wsc_msg m;
	int t = recv_msg(p->ws, &m, 10000);
	ck_assert_msg(t == WSC_TEXT, "%s: expected hello_ack, got %s", p->name, wsc_type_name(t));
	struct mc_frame f;
	ck_assert(mc_parse(m.data, m.len, &f));
	ck_assert_msg(f.type == MC_HELLO_ACK, "%s: expected hello_ack, got %s", p->name, m.data);
	ck_assert_ptr_null(f.bad_field);
	snprintf(p->presence_id, sizeof(p->presence_id), "%s", f.hello_ack.presence_id);
	mc_frame_free(&f);
	char *raw = strdup(m.data);
	ck_assert_ptr_nonnull(raw);
	wsc_msg_free(&m);
	return raw;
}

static void peer_init(struct mt_peer *p, const char *mesh, const char *member_id,
		      const struct mc_identity *id, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->id = *id;
	snprintf(p->mesh_id, sizeof(p->mesh_id), "%s", mesh);
	snprintf(p->member_id, sizeof(p->member_id), "%s", member_id);
	snprintf(p->name, sizeof(p->name), "%s", name ? name : member_id);
}

static struct mc_hello_opts hopts(const char *mesh, const char *member_id)
{
	return (struct mc_hello_opts){ .mesh_id = mesh, .member_id = member_id,
				       .session_id = "hs-session", .pid = 4242, .cwd = "/tmp/hs" };
}

static struct mc_session_hello_opts sopts(const char *mesh, const char *member_id)
{
	return (struct mc_session_hello_opts){ .mesh_id = mesh, .parent_member_id = member_id,
					       .session_id = "hs-session", .pid = 5151,
					       .cwd = "/tmp/hs" };
}

/* A member hello that must be acked.  sid NULL: random; name NULL: no
 * displayName; spk NULL: no sessionPubkey.  Returns the raw ack (malloc'd). */
static char *member_hello(struct mt_peer *p, const char *mesh, const char *member_id,
			  const struct mc_identity *id, const char *name, const char *sid,
			  const char *spk, const struct mc_group *groups)
{
	char rsid[33];
	if (!sid) {
		mc_random_id(rsid, sizeof(rsid));
		sid = rsid;
	}
	peer_init(p, mesh, member_id, id, name);
	struct mc_hello_opts o = hopts(mesh, member_id);
	o.display_name = name;
	o.session_id = sid;
	o.session_pubkey = spk;
	o.groups = groups;
	o.pid = getpid();
	char *f = mc_hello(id, &o);
	char *raw = hello_ok(p, f);
	free(f);
	return raw;
}

static void member_peer(struct mt_peer *p, const char *mesh, const char *member_id,
			const struct mc_identity *id, const char *name, const char *sid,
			const char *spk, const struct mc_group *groups)
{
	free(member_hello(p, mesh, member_id, id, name, sid, spk, groups));
}

/* A session_hello with the session key in p->session (filled by the caller
 * or random when zero).  Returns the raw ack (malloc'd). */
static char *session_hello(struct mt_peer *p, const char *mesh, const char *member_id,
			   const struct mc_identity *parent, const char *name, const char *sid)
{
	struct mc_identity keep = p->session;
	bool have = p->session.pk_hex[0] != '\0';
	peer_init(p, mesh, member_id, parent, name);
	p->is_session = true;
	if (have)
		p->session = keep;
	else
		random_identity(&p->session);
	char rsid[33];
	if (!sid) {
		mc_random_id(rsid, sizeof(rsid));
		sid = rsid;
	}
	struct mc_session_hello_opts o = sopts(mesh, member_id);
	o.display_name = name;
	o.session_id = sid;
	o.pid = getpid();
	char *f = mc_session_hello(parent, &p->session, &o);
	char *raw = hello_ok(p, f);
	free(f);
	return raw;
}

/* Closes with the WebSocket close handshake and waits for the server's
 * TCP close: by then the broker has run its close path (§7.7). */
static void close_gracefully(struct mt_peer *p)
{
	struct wsc_msg m;
	ck_assert(wsc_send_close(p->ws, 1000, "bye"));
	int t = recv_msg(p->ws, &m, 10000);
	ck_assert_msg(t == WSC_CLOSE, "%s: expected the close echo, got %s %s", p->name,
		      wsc_type_name(t), t == WSC_TEXT ? m.data : "");
	ck_assert_int_eq(m.close_code, 1000);
	wsc_msg_free(&m);
	t = recv_msg(p->ws, &m, 10000);
	ck_assert_msg(t == WSC_EOF, "%s: after the close: %s", p->name, wsc_type_name(t));
	wsc_msg_free(&m);
	mt_close(p);
}

/* ------------------------------------------------------------ frame shape */

static void assert_keys(json_t *o, const char *const *keys, const char *what)
{
	size_t i = 0;
	for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it), i++) {
		ck_assert_msg(keys[i], "%s: unexpected key %s", what, json_object_iter_key(it));
		ck_assert_msg(strcmp(json_object_iter_key(it), keys[i]) == 0,
			      "%s: key %zu is %s, want %s", what, i, json_object_iter_key(it),
			      keys[i]);
	}
	ck_assert_msg(!keys[i], "%s: missing key %s", what, keys[i]);
}

static bool is_base62(const char *s, size_t n)
{
	if (!s || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_uuid4(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static bool is_iso_ms(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!s || strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return false;
	return true;
}

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* The very next frame p receives is the system push `event` with exactly
 * this eventData (compact text, key order included). */
static void expect_system(struct mt_peer *p, const char *event, const char *event_data)
{
	static const char *const keys[] = { "type", "subtype", "event", "eventData", "messageId",
					    "meshId", "senderPubkey", "priority", "nonce",
					    "ciphertext", "createdAt", NULL };
	struct mc_frame f;
	ck_assert_msg(mt_next(p, &f, 10000), "%s: no %s push", p->name, event);
	char *text = dump(f.json);
	ck_assert_msg(f.type == MC_PUSH && f.push.system, "%s: expected system %s, got %s",
		      p->name, event, text);
	assert_keys(f.json, keys, "system push");
	ck_assert_str_eq(f.push.subtype, "system");
	ck_assert_msg(strcmp(f.push.event, event) == 0, "%s: got %s, want %s", p->name, text,
		      event);
	ck_assert_str_eq(f.push.sender_pubkey, "system");
	ck_assert_str_eq(f.push.priority, "low");
	ck_assert_str_eq(f.push.nonce, "");
	ck_assert_str_eq(f.push.ciphertext, "");
	ck_assert_str_eq(f.push.mesh_id, p->mesh_id);
	ck_assert_msg(is_uuid4(f.push.message_id), "messageId %s", f.push.message_id);
	ck_assert_msg(is_iso_ms(f.push.created_at), "createdAt %s", f.push.created_at);
	char *data = dump(f.push.event_data);
	ck_assert_msg(strcmp(data, event_data) == 0, "%s: %s eventData\n got: %s\nwant: %s",
		      p->name, event, data, event_data);
	free(data);
	free(text);
	mc_frame_free(&f);
}

static void expect_joined(struct mt_peer *p, const char *name, const char *pubkey,
			  const char *groups)
{
	char want[512];
	snprintf(want, sizeof(want), "{\"name\":\"%s\",\"pubkey\":\"%s\",\"groups\":%s}", name,
		 pubkey, groups);
	expect_system(p, "peer_joined", want);
}

static void expect_left(struct mt_peer *p, const char *name, const char *pubkey)
{
	char want[512];
	snprintf(want, sizeof(want), "{\"name\":\"%s\",\"pubkey\":\"%s\"}", name, pubkey);
	expect_system(p, "peer_left", want);
}

#define ALL_TRUE_POLICY \
	"{\"selfEditable\":{\"displayName\":true,\"roleTag\":true,\"groups\":true,\"messageMode\":true}}"

/* Checks an ack's keys in order, its presenceId, and returns it parsed. */
static json_t *ack_json(const char *raw, const char *const *keys)
{
	json_error_t err;
	json_t *j = json_loads(raw, 0, &err);
	ck_assert_msg(j, "ack does not parse: %s", raw);
	assert_keys(j, keys, raw);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "hello_ack");
	ck_assert_msg(is_base62(json_string_value(json_object_get(j, "presenceId")), 32),
		      "presenceId in %s", raw);
	return j;
}

/* The whole ack, byte for byte; meshPolicy (a jsonb value the broker reads
 * back from PostgreSQL) is compared by value and spliced in as sent. */
static void expect_ack_bytes(const char *raw, json_t *ack, const char *display_name,
			     const char *profile, bool policy, bool services)
{
	char want[1024], pol[256] = "";
	if (policy) {
		json_t *mp = json_object_get(ack, "meshPolicy");
		json_t *all = json_loads(ALL_TRUE_POLICY, 0, NULL);
		ck_assert_msg(json_equal(mp, all), "meshPolicy in %s", raw);
		json_decref(all);
		char *t = dump(mp);
		snprintf(pol, sizeof(pol), ",\"meshPolicy\":%s", t);
		free(t);
	}
	snprintf(want, sizeof(want),
		 "{\"type\":\"hello_ack\",\"presenceId\":\"%s\",\"memberDisplayName\":\"%s\"%s%s%s%s}",
		 json_string_value(json_object_get(ack, "presenceId")), display_name,
		 profile ? ",\"memberProfile\":" : "", profile ? profile : "", pol,
		 services ? ",\"services\":[]" : "");
	ck_assert_msg(strcmp(raw, want) == 0, "ack\n got: %s\nwant: %s", raw, want);
}

#define PROFILE_DEFAULT "{\"roleTag\":null,\"groups\":[],\"messageMode\":\"push\"}"
#define MSG_SPK "sessionPubkey must be 64 lowercase hex chars"
#define MSG_PPK "parentMemberPubkey must be 64 lowercase hex chars"
#define MSG_MISMATCH "parentAttestation does not bind the claimed session+parent pubkeys"

static const char *const member_ack_keys[] = { "type", "presenceId", "memberDisplayName",
					       "memberProfile", "meshPolicy", "services", NULL };
static const char *const session_ack_keys[] = { "type", "presenceId", "memberDisplayName",
						"memberProfile", "meshPolicy", NULL };

/* ================================================================ hello */

START_TEST(hello_bad_session_pubkey)
{
	struct mc_identity a, s;
	char up[80], sid[80];
	start_default();
	mt_seed_mesh(itest_db_url(), "mBsp", "mBsp");
	mt_seed_member(itest_db_url(), "mBsp", "mBsp-m0", "a", &a);
	random_identity(&s);
	upper_hex(s.pk_hex, up, sizeof(up));

	struct mc_hello_opts o = hopts("mBsp", "mBsp-m0");
	o.session_pubkey = up;
	char *f = mc_hello(&a, &o);
	reject_member(f, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(f);

	snprintf(sid, sizeof(sid), "%.63s", s.pk_hex); /* 63 characters */
	o.session_pubkey = sid;
	f = mc_hello(&a, &o);
	reject_member(f, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(f);

	/* Precedence: #1 beats a bad signature (#5) and a stale timestamp (#3). */
	o.session_pubkey = up;
	o.corrupt_signature = true;
	f = mc_hello(&a, &o);
	reject_member(f, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(f);
	o.corrupt_signature = false;
	o.timestamp = mc_now_ms() - 3600 * 1000;
	f = mc_hello(&a, &o);
	reject_member(f, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(f);

	/* "" and null mean none. */
	struct mt_peer p;
	o = hopts("mBsp", "mBsp-m0");
	o.session_pubkey = "";
	o.session_id = "bsp-1";
	peer_init(&p, "mBsp", "mBsp-m0", &a, "a");
	f = mc_hello(&a, &o);
	free(hello_ok(&p, f));
	free(f);
	mt_close(&p);
	o.session_pubkey = NULL;
	o.session_id = "bsp-2";
	f = mc_hello(&a, &o);
	char *g = mc_patch(f, "{\"sessionPubkey\":null}", NULL);
	free(hello_ok(&p, g));
	free(g);
	free(f);
	mt_close(&p);
}
END_TEST

START_TEST(hello_capacity)
{
	static const char *const env[] = { "MAX_CONNECTIONS_PER_MESH=1", NULL };
	struct mc_identity a, b, c;
	start(env);
	mt_seed_mesh(itest_db_url(), "mCap", "mCap");
	mt_seed_member(itest_db_url(), "mCap", "mCap-m0", "a", &a);
	mt_seed_member(itest_db_url(), "mCap", "mCap-m1", "b", &b);

	struct mt_peer pa, pa2, pc;
	member_peer(&pa, "mCap", "mCap-m0", &a, "a", "cap-a", NULL, NULL);
	char first[64];
	snprintf(first, sizeof(first), "%s", pa.presence_id);

	/* A second member: refused. */
	struct mc_hello_opts o = hopts("mCap", "mCap-m1");
	char *f = mc_hello(&b, &o);
	reject_member(f, "capacity", "mesh at connection capacity", "capacity");
	free(f);
	/* A new session of the first member would add a presence too. */
	struct mc_identity s;
	random_identity(&s);
	struct mc_session_hello_opts so = sopts("mCap", "mCap-m0");
	f = mc_session_hello(&a, &s, &so);
	reject_member(f, "capacity", "mesh at connection capacity", "capacity");
	free(f);

	/* Q7: a reattach adds nothing, so a full mesh takes it back. */
	close_gracefully(&pa);
	member_peer(&pa2, "mCap", "mCap-m0", &a, "a", "cap-a", NULL, NULL);
	ck_assert_str_eq(pa2.presence_id, first);

	/* The limit is per mesh. */
	mt_seed_mesh(itest_db_url(), "mCap2", "mCap2");
	mt_seed_member(itest_db_url(), "mCap2", "mCap2-m0", "c", &c);
	member_peer(&pc, "mCap2", "mCap2-m0", &c, "c", NULL, NULL, NULL);
	ck_assert_int_eq(rejected("capacity"), 2);
	mt_close(&pa2);
	mt_close(&pc);
}
END_TEST

/* The §12 hello vector, verbatim: correctly signed by the seed-0x01 member
 * of a seeded mesh, so only its 2026-01-01 timestamp is wrong. */
static const char vector_hello[] =
	"{\"type\":\"hello\",\"meshId\":\"B2VSzwbq1pgBvrOxDIucib5u6rkYchCt\","
	"\"memberId\":\"0YHiR976xIM8QwdBYbpHER6Rh2afWiIP\","
	"\"pubkey\":\"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\","
	"\"sessionPubkey\":\"8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394\","
	"\"displayName\":\"Mou\",\"sessionId\":\"daemon-4242\",\"pid\":4242,"
	"\"cwd\":\"/home/mou/project\",\"hostname\":\"mou-laptop\",\"peerType\":\"ai\","
	"\"channel\":\"claudemesh-daemon\",\"model\":\"opus-4\","
	"\"groups\":[{\"name\":\"backend\",\"role\":\"lead\"}],\"timestamp\":1767225600000,"
	"\"signature\":\"cc154ce78b8a453c6741462db9eece1bc39aae1e1021a80d2d4925d9665c12e4"
	"b36e3f45fd22dad7530f687e10711da68ce939579725db52875371d8abe24f0e\"}";

START_TEST(hello_timestamp_skew_vector)
{
	static const char mesh[] = "B2VSzwbq1pgBvrOxDIucib5u6rkYchCt";
	static const char member[] = "0YHiR976xIM8QwdBYbpHER6Rh2afWiIP";
	static const char pk[] = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
	unsigned char seed[32];
	struct mc_identity id;
	memset(seed, 0x01, sizeof(seed));
	ck_assert(mc_identity_from_seed(seed, &id));
	ck_assert_str_eq(id.pk_hex, pk);
	/* The vector's signature is the one our client makes. */
	struct mc_hello_opts vo = hopts(mesh, member);
	vo.timestamp = 1767225600000LL;
	char *mine = mc_hello(&id, &vo);
	struct mc_frame mf, vf;
	ck_assert(mc_parse(mine, strlen(mine), &mf));
	ck_assert(mc_parse(vector_hello, strlen(vector_hello), &vf));
	ck_assert_str_eq(json_string_value(json_object_get(mf.json, "signature")),
			 json_string_value(json_object_get(vf.json, "signature")));
	mc_frame_free(&mf);
	mc_frame_free(&vf);
	free(mine);

	start_default();
	seed_mesh_row(mesh, "Vector mesh", "vector", false);
	seed_member_key(mesh, member, "Mou", pk, false);
	reject_member(vector_hello, "timestamp_skew", "hello rejected: timestamp_skew",
		      "timestamp_skew");

	/* Off by more than 60 s either way, or not a number. */
	struct mc_hello_opts o = hopts(mesh, member);
	o.timestamp = mc_now_ms() - 61000;
	char *f = mc_hello(&id, &o);
	reject_member(f, "timestamp_skew", "hello rejected: timestamp_skew", "timestamp_skew");
	free(f);
	o.timestamp = mc_now_ms() + 61000;
	f = mc_hello(&id, &o);
	reject_member(f, "timestamp_skew", "hello rejected: timestamp_skew", "timestamp_skew");
	free(f);
	o.timestamp = 0;
	f = mc_hello(&id, &o);
	char patch[96];
	json_error_t err;
	json_t *j = json_loads(f, 0, &err);
	snprintf(patch, sizeof(patch), "{\"timestamp\":\"%lld\"}",
		 (long long)json_integer_value(json_object_get(j, "timestamp")));
	json_decref(j);
	char *g = mc_patch(f, patch, NULL);
	reject_member(g, "timestamp_skew", "hello rejected: timestamp_skew", "timestamp_skew");
	free(g);
	free(f);

	/* Control: the same member with a fresh timestamp is admitted. */
	struct mt_peer p;
	member_peer(&p, mesh, member, &id, "Mou", "daemon-4242", NULL, NULL);
	mt_close(&p);
}
END_TEST

START_TEST(hello_malformed)
{
	struct mc_identity a;
	char short_pk[80];
	start_default();
	mt_seed_mesh(itest_db_url(), "mMal", "mMal");
	mt_seed_member(itest_db_url(), "mMal", "mMal-m0", "a", &a);

	struct mc_hello_opts o = hopts("mMal", "mMal-m0");
	o.signature = "abc";
	char *f = mc_hello(&a, &o);
	reject_member(f, "malformed", "hello rejected: malformed", "malformed");
	free(f);

	o = hopts("mMal", "mMal-m0");
	snprintf(short_pk, sizeof(short_pk), "%.63s", a.pk_hex);
	o.pubkey = short_pk;
	f = mc_hello(&a, &o);
	reject_member(f, "malformed", "hello rejected: malformed", "malformed");
	free(f);

	/* Precedence: a stale timestamp (#3) beats a malformed signature (#4). */
	o = hopts("mMal", "mMal-m0");
	o.signature = "abc";
	o.timestamp = mc_now_ms() - 3600 * 1000;
	f = mc_hello(&a, &o);
	reject_member(f, "timestamp_skew", "hello rejected: timestamp_skew", "timestamp_skew");
	free(f);
}
END_TEST

START_TEST(hello_bad_signature)
{
	struct mc_identity a, x;
	start_default();
	mt_seed_mesh(itest_db_url(), "mSig", "mSig");
	mt_seed_member(itest_db_url(), "mSig", "mSig-m0", "a", &a);
	random_identity(&x);

	struct mc_hello_opts o = hopts("mSig", "mSig-m0");
	o.corrupt_signature = true;
	char *f = mc_hello(&a, &o);
	reject_member(f, "bad_signature", "hello rejected: bad_signature", "bad_signature");
	free(f);

	/* Well-formed, but made by another key. */
	o = hopts("mSig", "mSig-m0");
	o.pubkey = a.pk_hex;
	f = mc_hello(&x, &o);
	reject_member(f, "bad_signature", "hello rejected: bad_signature", "bad_signature");
	free(f);

	/* Precedence: the signature (#5) is checked before membership (#7). */
	o = hopts("mSig", "mSig-m0");
	o.corrupt_signature = true;
	f = mc_hello(&x, &o);
	reject_member(f, "bad_signature", "hello rejected: bad_signature", "bad_signature");
	free(f);
}
END_TEST

START_TEST(hello_revoked)
{
	struct mc_identity r, k;
	start_default();
	seed_mesh_row("mRev", "Alpha Team", "alpha", false);
	random_identity(&r);
	seed_member_key("mRev", "mRev-r", "r", r.pk_hex, true);

	struct mc_hello_opts o = hopts("mRev", "mRev-r");
	char *f = mc_hello(&r, &o);
	expect_rejected(f, "revoked",
			"You've been removed from \"Alpha Team\". Contact the mesh owner to rejoin.",
			4002, "banned", "revoked");
	free(f);

	/* A revoked row does not shadow an active row for the same key. */
	random_identity(&k);
	seed_member_key("mRev", "mRev-k-old", "k", k.pk_hex, true);
	seed_member_key("mRev", "mRev-k", "k", k.pk_hex, false);
	struct mt_peer p;
	member_peer(&p, "mRev", "mRev-k", &k, "k", NULL, NULL, NULL);
	mt_close(&p);
}
END_TEST

START_TEST(hello_revoked_label_fallback)
{
	struct mc_identity r1, r2;
	start_default();
	/* name '' → the slug; name and slug '' → the mesh id. */
	seed_mesh_row("mRevSlug", "", "the-slug", false);
	seed_mesh_row("mRevBare", "", "", false);
	random_identity(&r1);
	random_identity(&r2);
	seed_member_key("mRevSlug", "mRevSlug-r", "r", r1.pk_hex, true);
	seed_member_key("mRevBare", "mRevBare-r", "r", r2.pk_hex, true);

	struct mc_hello_opts o = hopts("mRevSlug", "mRevSlug-r");
	char *f = mc_hello(&r1, &o);
	expect_rejected(f, "revoked",
			"You've been removed from \"the-slug\". Contact the mesh owner to rejoin.",
			4002, "banned", "revoked");
	free(f);
	o = hopts("mRevBare", "mRevBare-r");
	f = mc_hello(&r2, &o);
	expect_rejected(f, "revoked",
			"You've been removed from \"mRevBare\". Contact the mesh owner to rejoin.",
			4002, "banned", "revoked");
	free(f);
}
END_TEST

START_TEST(hello_unauthorized)
{
	struct mc_identity a, x;
	char up[80];
	start_default();
	mt_seed_mesh(itest_db_url(), "mUna", "mUna");
	mt_seed_member(itest_db_url(), "mUna", "mUna-m0", "a", &a);
	random_identity(&x);

	/* A key that is not a member. */
	struct mc_hello_opts o = hopts("mUna", "mUna-m0");
	char *f = mc_hello(&x, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);
	/* A mesh that does not exist. */
	o = hopts("noSuchMesh", "mUna-m0");
	f = mc_hello(&a, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);
	/* §1: the signature check ignores case, the member lookup does not. */
	o = hopts("mUna", "mUna-m0");
	upper_hex(a.pk_hex, up, sizeof(up));
	o.pubkey = up;
	f = mc_hello(&a, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);
}
END_TEST

START_TEST(hello_member_id_mismatch)
{
	struct mc_identity a, b;
	start_default();
	mt_seed_mesh(itest_db_url(), "mQ5", "mQ5");
	mt_seed_member(itest_db_url(), "mQ5", "mQ5-m0", "a", &a);
	mt_seed_member(itest_db_url(), "mQ5", "mQ5-m1", "b", &b);

	/* Q5: a correctly signed hello naming another member's id, or none. */
	struct mc_hello_opts o = hopts("mQ5", "mQ5-m1");
	char *f = mc_hello(&a, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);
	o = hopts("mQ5", "nobody");
	f = mc_hello(&a, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);

	struct mt_peer p;
	member_peer(&p, "mQ5", "mQ5-m0", &a, "a", NULL, NULL, NULL);
	mt_close(&p);
}
END_TEST

START_TEST(hello_archived_mesh)
{
	struct mc_identity a, s;
	start_default();
	seed_mesh_row("mArch", "Archived", "archived", true);
	random_identity(&a);
	seed_member_key("mArch", "mArch-m0", "a", a.pk_hex, false);

	/* Q6: an archived mesh is refused as if the key were unknown. */
	struct mc_hello_opts o = hopts("mArch", "mArch-m0");
	char *f = mc_hello(&a, &o);
	reject_member(f, "unauthorized", "pubkey not found in mesh", "unauthorized");
	free(f);
	random_identity(&s);
	struct mc_session_hello_opts so = sopts("mArch", "mArch-m0");
	f = mc_session_hello(&a, &s, &so);
	reject_member(f, "unauthorized", "parent pubkey not found in mesh", "unauthorized");
	free(f);
}
END_TEST

START_TEST(hello_missing_fields)
{
	static const char *const drops[][2] = { { "pid", NULL }, { "cwd", NULL },
						{ "sessionId", NULL } };
	struct mc_identity a;
	start_default();
	mt_seed_mesh(itest_db_url(), "mQ11", "mQ11");
	mt_seed_member(itest_db_url(), "mQ11", "mQ11-m0", "a", &a);

	/* Q11: a hello the presence cannot be built from is malformed, not silent. */
	struct mc_hello_opts o = hopts("mQ11", "mQ11-m0");
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
		char *f = mc_hello(&a, &o);
		char *g = mc_patch(f, NULL, drops[i]);
		reject_member(g, "malformed", "hello rejected: malformed", "malformed");
		free(g);
		free(f);
	}
}
END_TEST

/* ======================================================== session_hello */

/* Seeds mesh `mesh` with member <mesh>-m0 "a"; a random session key. */
static void session_setup(const char *mesh, struct mc_identity *a, struct mc_identity *s)
{
	start_default();
	mt_seed_mesh(itest_db_url(), mesh, mesh);
	char mid[64];
	snprintf(mid, sizeof(mid), "%s-m0", mesh);
	mt_seed_member(itest_db_url(), mesh, mid, "a", a);
	random_identity(s);
}

START_TEST(session_bad_session_pubkey)
{
	struct mc_identity a, s;
	char up[80], patch[256];
	static const char *const drop[] = { "sessionPubkey", NULL };
	session_setup("mSbs", &a, &s);
	struct mc_session_hello_opts o = sopts("mSbs", "mSbs-m0");
	char *f = mc_session_hello(&a, &s, &o);

	upper_hex(s.pk_hex, up, sizeof(up));
	snprintf(patch, sizeof(patch), "{\"sessionPubkey\":\"%s\"}", up);
	char *g = mc_patch(f, patch, NULL);
	reject_member(g, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(g);
	g = mc_patch(f, NULL, drop);
	reject_member(g, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(g);
	/* Precedence: #1 beats a bad parent pubkey (#2). */
	char upp[80];
	upper_hex(a.pk_hex, upp, sizeof(upp));
	snprintf(patch, sizeof(patch), "{\"sessionPubkey\":\"%s\",\"parentMemberPubkey\":\"%s\"}",
		 up, upp);
	g = mc_patch(f, patch, NULL);
	reject_member(g, "bad_session_pubkey", MSG_SPK, "bad_session_pubkey");
	free(g);
	free(f);
}
END_TEST

START_TEST(session_bad_parent_pubkey)
{
	struct mc_identity a, s, x;
	char up[80], patch[256];
	static const char *const drop[] = { "parentMemberPubkey", NULL };
	session_setup("mSbp", &a, &s);
	struct mc_session_hello_opts o = sopts("mSbp", "mSbp-m0");
	char *f = mc_session_hello(&a, &s, &o);

	upper_hex(a.pk_hex, up, sizeof(up));
	snprintf(patch, sizeof(patch), "{\"parentMemberPubkey\":\"%s\"}", up);
	char *g = mc_patch(f, patch, NULL);
	reject_member(g, "bad_parent_pubkey", MSG_PPK, "bad_parent_pubkey");
	free(g);
	g = mc_patch(f, NULL, drop);
	reject_member(g, "bad_parent_pubkey", MSG_PPK, "bad_parent_pubkey");
	free(g);
	/* Precedence: #2 beats an attestation mismatch (#3). */
	random_identity(&x);
	snprintf(patch, sizeof(patch),
		 "{\"parentMemberPubkey\":\"%s\",\"parentAttestation\":{\"sessionPubkey\":\"%s\"}}",
		 up, x.pk_hex);
	g = mc_patch(f, patch, NULL);
	reject_member(g, "bad_parent_pubkey", MSG_PPK, "bad_parent_pubkey");
	free(g);
	free(f);
}
END_TEST

START_TEST(session_attestation_mismatch)
{
	struct mc_identity a, s, x;
	char patch[256];
	static const char *const drop[] = { "parentAttestation", NULL };
	session_setup("mSam", &a, &s);
	random_identity(&x);
	struct mc_session_hello_opts o = sopts("mSam", "mSam-m0");
	char *f = mc_session_hello(&a, &s, &o);

	snprintf(patch, sizeof(patch), "{\"parentAttestation\":{\"sessionPubkey\":\"%s\"}}",
		 x.pk_hex);
	char *g = mc_patch(f, patch, NULL);
	reject_member(g, "attestation_mismatch", MSG_MISMATCH, "attestation_mismatch");
	free(g);
	snprintf(patch, sizeof(patch), "{\"parentAttestation\":{\"parentMemberPubkey\":\"%s\"}}",
		 x.pk_hex);
	g = mc_patch(f, patch, NULL);
	reject_member(g, "attestation_mismatch", MSG_MISMATCH, "attestation_mismatch");
	free(g);
	g = mc_patch(f, NULL, drop);
	reject_member(g, "attestation_mismatch", MSG_MISMATCH, "attestation_mismatch");
	free(g);
	g = mc_patch(f, "{\"parentAttestation\":\"x\"}", NULL);
	reject_member(g, "attestation_mismatch", MSG_MISMATCH, "attestation_mismatch");
	free(g);
	free(f);

	/* Precedence: #3 beats an expired attestation (#5b). */
	o.expires_at = mc_now_ms() - 1000;
	f = mc_session_hello(&a, &s, &o);
	snprintf(patch, sizeof(patch), "{\"parentAttestation\":{\"sessionPubkey\":\"%s\"}}",
		 x.pk_hex);
	g = mc_patch(f, patch, NULL);
	reject_member(g, "attestation_mismatch", MSG_MISMATCH, "attestation_mismatch");
	free(g);
	free(f);
}
END_TEST

START_TEST(session_attestation_malformed)
{
	struct mc_identity a, s;
	char patch[128];
	static const char *const drop[] = { "parentAttestation.expiresAt", NULL };
	session_setup("mSmf", &a, &s);
	struct mc_session_hello_opts o = sopts("mSmf", "mSmf-m0");
	long long exp = mc_now_ms() + 3600 * 1000;
	o.expires_at = exp;
	char *f = mc_session_hello(&a, &s, &o);

	/* #5a: expiresAt is not a number. */
	snprintf(patch, sizeof(patch), "{\"parentAttestation\":{\"expiresAt\":\"%lld\"}}", exp);
	char *g = mc_patch(f, patch, NULL);
	reject_member(g, "malformed", "attestation rejected: malformed", "attestation_malformed");
	free(g);
	g = mc_patch(f, NULL, drop);
	reject_member(g, "malformed", "attestation rejected: malformed", "attestation_malformed");
	free(g);
	free(f);

	/* #5d: the attestation signature is not 128 hex. */
	o.attestation_signature = "abc";
	f = mc_session_hello(&a, &s, &o);
	reject_member(f, "malformed", "attestation rejected: malformed", "attestation_malformed");
	free(f);
}
END_TEST

START_TEST(session_attestation_expired)
{
	struct mc_identity a, s;
	session_setup("mSex", &a, &s);
	struct mc_session_hello_opts o = sopts("mSex", "mSex-m0");
	o.expires_at = mc_now_ms() - 1000;
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "expired", "attestation rejected: expired", "attestation_expired");
	free(f);

	/* Precedence: #5b beats a stale session timestamp and a bad session signature (#6). */
	o.timestamp = mc_now_ms() - 3600 * 1000;
	o.corrupt_signature = true;
	f = mc_session_hello(&a, &s, &o);
	reject_member(f, "expired", "attestation rejected: expired", "attestation_expired");
	free(f);
}
END_TEST

START_TEST(session_attestation_ttl_too_long)
{
	struct mc_identity a, s;
	session_setup("mSttl", &a, &s);
	struct mc_session_hello_opts o = sopts("mSttl", "mSttl-m0");
	o.expires_at = mc_now_ms() + 24LL * 3600 * 1000 + 120000;
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "ttl_too_long", "attestation rejected: ttl_too_long",
		      "attestation_ttl_too_long");
	free(f);

	/* Control: just under 24 h is fine. */
	struct mt_peer p;
	peer_init(&p, "mSttl", "mSttl-m0", &a, "a");
	o = sopts("mSttl", "mSttl-m0");
	o.expires_at = mc_now_ms() + 24LL * 3600 * 1000 - 120000;
	f = mc_session_hello(&a, &s, &o);
	free(hello_ok(&p, f));
	free(f);
	mt_close(&p);
}
END_TEST

START_TEST(session_attestation_bad_signature)
{
	struct mc_identity a, s, x;
	char sig[MC_SIG_HEX_LEN + 1], canon[256];
	session_setup("mSabs", &a, &s);
	struct mc_session_hello_opts o = sopts("mSabs", "mSabs-m0");
	o.corrupt_attestation = true;
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "bad_signature", "attestation rejected: bad_signature",
		      "attestation_bad_signature");
	free(f);

	/* The right attestation string, signed by a key that is not the parent's. */
	random_identity(&x);
	long long exp = mc_now_ms() + 3600 * 1000;
	snprintf(canon, sizeof(canon), "claudemesh-session-attest|%s|%s|%lld", a.pk_hex, s.pk_hex,
		 exp);
	ck_assert(mc_sign_hex(&x, canon, strlen(canon), sig));
	o = sopts("mSabs", "mSabs-m0");
	o.expires_at = exp;
	o.attestation_signature = sig;
	f = mc_session_hello(&a, &s, &o);
	reject_member(f, "bad_signature", "attestation rejected: bad_signature",
		      "attestation_bad_signature");
	free(f);
}
END_TEST

START_TEST(session_timestamp_skew)
{
	struct mc_identity a, s;
	session_setup("mSts", &a, &s);
	struct mc_session_hello_opts o = sopts("mSts", "mSts-m0");
	o.timestamp = mc_now_ms() - 120000;
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "timestamp_skew", "session_hello rejected: timestamp_skew",
		      "session_timestamp_skew");
	free(f);

	o = sopts("mSts", "mSts-m0");
	f = mc_session_hello(&a, &s, &o);
	char *g = mc_patch(f, "{\"timestamp\":\"now\"}", NULL);
	reject_member(g, "timestamp_skew", "session_hello rejected: timestamp_skew",
		      "session_timestamp_skew");
	free(g);
	free(f);

	/* Precedence: #6a beats a malformed session signature (#6b). */
	o.timestamp = mc_now_ms() + 120000;
	o.signature = "abc";
	f = mc_session_hello(&a, &s, &o);
	reject_member(f, "timestamp_skew", "session_hello rejected: timestamp_skew",
		      "session_timestamp_skew");
	free(f);
}
END_TEST

START_TEST(session_malformed)
{
	struct mc_identity a, s;
	static const char *const drop[] = { "pid", NULL };
	session_setup("mSsm", &a, &s);
	struct mc_session_hello_opts o = sopts("mSsm", "mSsm-m0");
	o.signature = "abc";
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "malformed", "session_hello rejected: malformed", "session_malformed");
	free(f);

	/* Q11: a session_hello without pid. */
	o = sopts("mSsm", "mSsm-m0");
	f = mc_session_hello(&a, &s, &o);
	char *g = mc_patch(f, NULL, drop);
	reject_member(g, "malformed", "session_hello rejected: malformed", "session_malformed");
	free(g);
	free(f);
}
END_TEST

START_TEST(session_bad_signature)
{
	struct mc_identity a, s, x, xs;
	session_setup("mSsb", &a, &s);
	struct mc_session_hello_opts o = sopts("mSsb", "mSsb-m0");
	o.corrupt_signature = true;
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "bad_signature", "session_hello rejected: bad_signature",
		      "session_bad_signature");
	free(f);

	/* Precedence: #6c comes before membership (#8): a non-member parent. */
	random_identity(&x);
	random_identity(&xs);
	o = sopts("mSsb", "mSsb-m0");
	o.corrupt_signature = true;
	f = mc_session_hello(&x, &xs, &o);
	reject_member(f, "bad_signature", "session_hello rejected: bad_signature",
		      "session_bad_signature");
	free(f);
}
END_TEST

START_TEST(session_revoked)
{
	struct mc_identity r, s;
	start_default();
	seed_mesh_row("mSrv", "Beta Crew", "beta", false);
	random_identity(&r);
	random_identity(&s);
	seed_member_key("mSrv", "mSrv-r", "r", r.pk_hex, true);
	struct mc_session_hello_opts o = sopts("mSrv", "mSrv-r");
	char *f = mc_session_hello(&r, &s, &o);
	expect_rejected(f, "revoked",
			"You've been removed from \"Beta Crew\". Contact the mesh owner to rejoin.",
			4002, "banned", "revoked");
	free(f);
}
END_TEST

START_TEST(session_unauthorized)
{
	struct mc_identity a, s, x;
	session_setup("mSun", &a, &s);
	random_identity(&x);
	/* Every proof is valid, but the parent is not a member. */
	struct mc_session_hello_opts o = sopts("mSun", "mSun-m0");
	o.parent_member_id = NULL;
	char *f = mc_session_hello(&x, &s, &o);
	reject_member(f, "unauthorized", "parent pubkey not found in mesh", "unauthorized");
	free(f);
	/* Nor in a mesh that does not exist. */
	o = sopts("noSuchMesh", NULL);
	f = mc_session_hello(&a, &s, &o);
	reject_member(f, "unauthorized", "parent pubkey not found in mesh", "unauthorized");
	free(f);
}
END_TEST

START_TEST(session_parent_member_id_mismatch)
{
	struct mc_identity a, b, s;
	session_setup("mSpm", &a, &s);
	mt_seed_member(itest_db_url(), "mSpm", "mSpm-m1", "b", &b);
	struct mc_session_hello_opts o = sopts("mSpm", "mSpm-m1");
	char *f = mc_session_hello(&a, &s, &o);
	reject_member(f, "parent_member_id_mismatch",
		      "parentMemberId does not match parentMemberPubkey",
		      "parent_member_id_mismatch");
	free(f);

	/* Absent or "" (falsy): not checked. */
	struct mt_peer p;
	peer_init(&p, "mSpm", "mSpm-m0", &a, "a");
	o = sopts("mSpm", NULL);
	o.session_id = "spm-1";
	f = mc_session_hello(&a, &s, &o);
	free(hello_ok(&p, f));
	free(f);
	mt_close(&p);
	struct mc_identity s2;
	random_identity(&s2);
	o = sopts("mSpm", "");
	o.session_id = "spm-2";
	f = mc_session_hello(&a, &s2, &o);
	free(hello_ok(&p, f));
	free(f);
	mt_close(&p);
}
END_TEST

/* ============================================================== success */

START_TEST(hello_ack_member_shape)
{
	struct mc_identity a, b, c, d;
	start_default();
	seed_mesh_row("mAck", "Ack", "ack", false);
	random_identity(&a);
	random_identity(&b);
	random_identity(&c);
	seed_member_key("mAck", "mAck-a", "alice", a.pk_hex, false);
	seed_member_key("mAck", "mAck-b", "bob", b.pk_hex, false);
	sql("UPDATE mesh.member SET role_tag='reviewer', message_mode='inbox',"
	    " default_groups='[{\"name\":\"backend\",\"role\":\"lead\"},{\"name\":\"ops\"}]'"
	    " WHERE id='mAck-b'");
	seed_member_key("mAck", "mAck-c", "carol", c.pk_hex, false);
	sql("UPDATE mesh.member SET message_mode=NULL WHERE id='mAck-c'");

	/* No displayName: the member's name; the schema's default policy. */
	struct mt_peer pa, pb, pc, pd;
	char *raw = member_hello(&pa, "mAck", "mAck-a", &a, NULL, NULL, NULL, NULL);
	json_t *ack = ack_json(raw, member_ack_keys);
	expect_ack_bytes(raw, ack, "alice", PROFILE_DEFAULT, true, true);
	json_decref(ack);
	free(raw);

	/* The member's profile columns, and the hello's displayName. */
	raw = member_hello(&pb, "mAck", "mAck-b", &b, "Bobby", NULL, NULL, NULL);
	ack = ack_json(raw, member_ack_keys);
	expect_ack_bytes(raw, ack, "Bobby",
			 "{\"roleTag\":\"reviewer\",\"groups\":[{\"name\":\"backend\",\"role\":\"lead\"},"
			 "{\"name\":\"ops\"}],\"messageMode\":\"inbox\"}",
			 true, true);
	ck_assert_str_ne(pa.presence_id, pb.presence_id);
	json_decref(ack);
	free(raw);

	/* message_mode NULL reads as "push". */
	raw = member_hello(&pc, "mAck", "mAck-c", &c, NULL, NULL, NULL, NULL);
	ack = ack_json(raw, member_ack_keys);
	expect_ack_bytes(raw, ack, "carol", PROFILE_DEFAULT, true, true);
	json_decref(ack);
	free(raw);

	/* A mesh whose self_editable is NULL: no meshPolicy. */
	static const char *const no_policy_keys[] = { "type", "presenceId", "memberDisplayName",
						      "memberProfile", "services", NULL };
	seed_mesh_row("mAckNp", "NoPolicy", "nopolicy", false);
	sql("UPDATE mesh.mesh SET self_editable=NULL WHERE id='mAckNp'");
	random_identity(&d);
	seed_member_key("mAckNp", "mAckNp-d", "dave", d.pk_hex, false);
	raw = member_hello(&pd, "mAckNp", "mAckNp-d", &d, NULL, NULL, NULL, NULL);
	ack = ack_json(raw, no_policy_keys);
	expect_ack_bytes(raw, ack, "dave", PROFILE_DEFAULT, false, true);
	json_decref(ack);
	free(raw);

	mt_close(&pa);
	mt_close(&pb);
	mt_close(&pc);
	mt_close(&pd);
}
END_TEST

START_TEST(hello_ack_session_shape)
{
	struct mc_identity a;
	start_default();
	seed_mesh_row("mSack", "Sack", "sack", false);
	random_identity(&a);
	seed_member_key("mSack", "mSack-a", "alice", a.pk_hex, false);

	struct mt_peer s1 = { 0 }, s2 = { 0 };
	char *raw = session_hello(&s1, "mSack", "mSack-a", &a, "sess-one", NULL);
	json_t *ack = ack_json(raw, session_ack_keys);
	expect_ack_bytes(raw, ack, "sess-one", PROFILE_DEFAULT, true, false);
	json_decref(ack);
	free(raw);

	raw = session_hello(&s2, "mSack", "mSack-a", &a, NULL, NULL);
	ack = ack_json(raw, session_ack_keys);
	expect_ack_bytes(raw, ack, "alice", PROFILE_DEFAULT, true, false);
	ck_assert_str_ne(s1.presence_id, s2.presence_id);
	json_decref(ack);
	free(raw);
	mt_close(&s1);
	mt_close(&s2);
}
END_TEST

START_TEST(peer_joined_fields)
{
	struct mc_identity a, b, c, x;
	start_default();
	seed_mesh_row("mPj", "Pj", "pj", false);
	random_identity(&a);
	random_identity(&b);
	random_identity(&c);
	random_identity(&x);
	seed_member_key("mPj", "mPj-a", "alice", a.pk_hex, false);
	seed_member_key("mPj", "mPj-b", "bob", b.pk_hex, false);
	seed_member_key("mPj", "mPj-c", "carol", c.pk_hex, false);

	struct mt_peer pa, pb, pc, ps = { 0 };
	member_peer(&pa, "mPj", "mPj-a", &a, NULL, NULL, NULL, NULL);
	/* Another member: A hears of B with B's name, member key and groups. */
	static const struct mc_group g[] = { { "backend", "lead" }, { NULL, NULL } };
	member_peer(&pb, "mPj", "mPj-b", &b, "Bob", NULL, NULL, g);
	expect_joined(&pa, "Bob", b.pk_hex, "[{\"name\":\"backend\",\"role\":\"lead\"}]");

	/* A member hello with a sessionPubkey announces that key; the member's
	 * name and default groups stand in.  B's first frame is this one: it
	 * was not told about itself. */
	member_peer(&pc, "mPj", "mPj-c", &c, NULL, NULL, x.pk_hex, NULL);
	expect_joined(&pa, "carol", x.pk_hex, "[]");
	expect_joined(&pb, "carol", x.pk_hex, "[]");

	/* A session: everyone else hears, its own member included. */
	free(session_hello(&ps, "mPj", "mPj-a", &a, "alice-s", NULL));
	expect_joined(&pa, "alice-s", ps.session.pk_hex, "[]");
	expect_joined(&pb, "alice-s", ps.session.pk_hex, "[]");
	expect_joined(&pc, "alice-s", ps.session.pk_hex, "[]");
	ck_assert_int_eq(active(), 4);

	mt_close(&pa);
	mt_close(&pb);
	mt_close(&pc);
	mt_close(&ps);
}
END_TEST

START_TEST(same_member_hello_not_announced)
{
	struct mc_identity a, b;
	start_default();
	seed_mesh_row("mSm", "Sm", "sm", false);
	random_identity(&a);
	random_identity(&b);
	seed_member_key("mSm", "mSm-a", "alice", a.pk_hex, false);
	seed_member_key("mSm", "mSm-b", "bob", b.pk_hex, false);

	struct mt_peer pa, pa2, pb, ps = { 0 };
	member_peer(&pa, "mSm", "mSm-a", &a, NULL, "sm-a1", NULL, NULL);
	member_peer(&pb, "mSm", "mSm-b", &b, NULL, NULL, NULL, NULL);
	expect_joined(&pa, "bob", b.pk_hex, "[]");

	/* A second member hello of alice: bob hears of it, alice's first
	 * connection does not (§7.10 member-hello rule). */
	member_peer(&pa2, "mSm", "mSm-a", &a, NULL, "sm-a2", NULL, NULL);
	expect_joined(&pb, "alice", a.pk_hex, "[]");

	/* A session_hello of alice: her connections hear of it too.  This is
	 * pa's first frame since bob's join, so pa2 was not announced to it. */
	free(session_hello(&ps, "mSm", "mSm-a", &a, NULL, NULL));
	expect_joined(&pa, "alice", ps.session.pk_hex, "[]");
	expect_joined(&pa2, "alice", ps.session.pk_hex, "[]");
	expect_joined(&pb, "alice", ps.session.pk_hex, "[]");

	mt_close(&pa);
	mt_close(&pa2);
	mt_close(&pb);
	mt_close(&ps);
}
END_TEST

START_TEST(session_id_dedup)
{
	static const char *const env[] = { "LEASE_GRACE_SECONDS=1", NULL };
	struct mc_identity a, b, c;
	start(env);
	seed_mesh_row("mDd", "Dd", "dd", false);
	random_identity(&a);
	random_identity(&b);
	random_identity(&c);
	seed_member_key("mDd", "mDd-a", "alice", a.pk_hex, false);
	seed_member_key("mDd", "mDd-b", "bob", b.pk_hex, false);
	seed_member_key("mDd", "mDd-c", "carol", c.pk_hex, false);

	/* alice also holds a session connection (another sessionId), so the
	 * replaced presence is not her last one (see the next test). */
	struct mt_peer pc, pa, ps = { 0 }, pa2, pb;
	member_peer(&pc, "mDd", "mDd-c", &c, NULL, NULL, NULL, NULL);
	member_peer(&pa, "mDd", "mDd-a", &a, NULL, "fixed-sid", NULL, NULL);
	expect_joined(&pc, "alice", a.pk_hex, "[]");
	free(session_hello(&ps, "mDd", "mDd-a", &a, NULL, "other-sid"));
	expect_joined(&pc, "alice", ps.session.pk_hex, "[]");
	expect_joined(&pa, "alice", ps.session.pk_hex, "[]");
	ck_assert_int_eq(active(), 3);

	/* The same member, the same sessionId, the first one still online:
	 * it is replaced (§7.9), a new presence comes. */
	member_peer(&pa2, "mDd", "mDd-a", &a, NULL, "fixed-sid", NULL, NULL);
	ck_assert_str_ne(pa2.presence_id, pa.presence_id);
	expect_close(pa.ws, 1000, "session_replaced");
	mt_close(&pa);
	ck_assert_int_eq(active(), 3);
	expect_joined(&pc, "alice", a.pk_hex, "[]");

	/* Q8: another member reusing that sessionId replaces nothing. */
	member_peer(&pb, "mDd", "mDd-b", &b, NULL, "fixed-sid", NULL, NULL);
	expect_joined(&pc, "bob", b.pk_hex, "[]");
	expect_joined(&pa2, "bob", b.pk_hex, "[]");
	expect_joined(&ps, "bob", b.pk_hex, "[]");
	ck_assert_int_eq(active(), 4);

	/* bob leaves; after the 1 s grace the others hear peer_left for him,
	 * and nothing before it: the replaced presence never produced one. */
	mt_close(&pb);
	expect_left(&pc, "bob", b.pk_hex);
	expect_left(&pa2, "bob", b.pk_hex);
	expect_left(&ps, "bob", b.pk_hex);
	ck_assert(wait_active(3, 5000));

	mt_close(&pa2);
	mt_close(&ps);
	mt_close(&pc);
}
END_TEST

/* The replaced presence is the member's only one and the mesh's only one:
 * the dedup must not free what the new presence is about to use. */
START_TEST(session_id_dedup_last_presence)
{
	struct mc_identity a;
	start_default();
	seed_mesh_row("mDl", "Dl", "dl", false);
	random_identity(&a);
	seed_member_key("mDl", "mDl-a", "alice", a.pk_hex, false);

	struct mt_peer pa, pa2;
	member_peer(&pa, "mDl", "mDl-a", &a, NULL, "fixed-sid", NULL, NULL);
	member_peer(&pa2, "mDl", "mDl-a", &a, NULL, "fixed-sid", NULL, NULL);
	ck_assert_str_ne(pa2.presence_id, pa.presence_id);
	expect_close(pa.ws, 1000, "session_replaced");
	mt_close(&pa);
	ck_assert_int_eq(active(), 1);
	mt_close(&pa2);
}
END_TEST

START_TEST(reattach_keeps_presence)
{
	struct mc_identity a, b, c;
	start_default();
	seed_mesh_row("mRa", "Ra", "ra", false);
	random_identity(&a);
	random_identity(&b);
	random_identity(&c);
	seed_member_key("mRa", "mRa-a", "alice", a.pk_hex, false);
	seed_member_key("mRa", "mRa-b", "bob", b.pk_hex, false);
	seed_member_key("mRa", "mRa-c", "carol", c.pk_hex, false);

	struct mt_peer pb, pa, pa2, ps = { 0 }, ps2 = { 0 }, pc;
	member_peer(&pb, "mRa", "mRa-b", &b, NULL, NULL, NULL, NULL);
	member_peer(&pa, "mRa", "mRa-a", &a, NULL, "ra-daemon", NULL, NULL);
	expect_joined(&pb, "alice", a.pk_hex, "[]");
	free(session_hello(&ps, "mRa", "mRa-a", &a, "alice-s", "ra-s1"));
	expect_joined(&pb, "alice-s", ps.session.pk_hex, "[]");
	expect_joined(&pa, "alice-s", ps.session.pk_hex, "[]");
	ck_assert_int_eq(active(), 3);

	/* The member connection drops and comes back within the grace with
	 * the same sessionId and no sessionPubkey: the same presence. */
	char first[64];
	snprintf(first, sizeof(first), "%s", pa.presence_id);
	close_gracefully(&pa);
	char *raw = member_hello(&pa2, "mRa", "mRa-a", &a, NULL, "ra-daemon", NULL, NULL);
	ck_assert_str_eq(pa2.presence_id, first);
	json_t *ack = ack_json(raw, member_ack_keys); /* services, no restored */
	expect_ack_bytes(raw, ack, "alice", PROFILE_DEFAULT, true, true);
	json_decref(ack);
	free(raw);

	/* A session_hello with a live session's key takes that presence over
	 * and closes the old socket; its ack has no memberProfile. */
	static const char *const session_reattach_keys[] = { "type", "presenceId",
							     "memberDisplayName", "meshPolicy",
							     NULL };
	ps2.session = ps.session;
	raw = session_hello(&ps2, "mRa", "mRa-a", &a, "alice-s2", "ra-s2");
	ck_assert_str_eq(ps2.presence_id, ps.presence_id);
	ack = ack_json(raw, session_reattach_keys);
	expect_ack_bytes(raw, ack, "alice-s2", NULL, true, false);
	json_decref(ack);
	free(raw);
	expect_close(ps.ws, 1000, "session_replaced");
	mt_close(&ps);
	ck_assert_int_eq(active(), 3);

	/* Nobody heard of either reattach: the next thing bob and alice's
	 * member connection hear is carol joining. */
	member_peer(&pc, "mRa", "mRa-c", &c, NULL, NULL, NULL, NULL);
	expect_joined(&pb, "carol", c.pk_hex, "[]");
	expect_joined(&pa2, "carol", c.pk_hex, "[]");
	expect_joined(&ps2, "carol", c.pk_hex, "[]");
	ck_assert_int_eq(active(), 4);

	mt_close(&pb);
	mt_close(&pa2);
	mt_close(&ps2);
	mt_close(&pc);
}
END_TEST

START_TEST(eviction_peer_left_and_gauge)
{
	static const char *const env[] = { "LEASE_GRACE_SECONDS=1", NULL };
	struct mc_identity a, b, x;
	start(env);
	seed_mesh_row("mEv", "Ev", "ev", false);
	random_identity(&a);
	random_identity(&b);
	random_identity(&x);
	seed_member_key("mEv", "mEv-a", "alice", a.pk_hex, false);
	seed_member_key("mEv", "mEv-b", "bob", b.pk_hex, false);
	ck_assert_int_eq(active(), 0);

	struct mt_peer pa, pb;
	member_peer(&pa, "mEv", "mEv-a", &a, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(active(), 1);
	member_peer(&pb, "mEv", "mEv-b", &b, "Bob", NULL, x.pk_hex, NULL);
	expect_joined(&pa, "Bob", x.pk_hex, "[]");
	ck_assert_int_eq(active(), 2);

	/* bob's socket drops: peer_left reaches alice after the grace, with
	 * bob's session key; the lease counts until then. */
	long long t0 = mc_now_ms();
	mt_close(&pb);
	expect_left(&pa, "Bob", x.pk_hex);
	long long took = mc_now_ms() - t0;
	ck_assert_msg(took >= 800 && took < 5000, "peer_left after %lld ms", took);
	ck_assert(wait_active(1, 5000));

	mt_close(&pa);
	ck_assert(wait_active(0, 5000));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("handshake");
	TCase *tc = tcase_create("handshake");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, hello_bad_session_pubkey);
	tcase_add_test(tc, hello_capacity);
	tcase_add_test(tc, hello_timestamp_skew_vector);
	tcase_add_test(tc, hello_malformed);
	tcase_add_test(tc, hello_bad_signature);
	tcase_add_test(tc, hello_revoked);
	tcase_add_test(tc, hello_revoked_label_fallback);
	tcase_add_test(tc, hello_unauthorized);
	tcase_add_test(tc, hello_member_id_mismatch);
	tcase_add_test(tc, hello_archived_mesh);
	tcase_add_test(tc, hello_missing_fields);
	tcase_add_test(tc, session_bad_session_pubkey);
	tcase_add_test(tc, session_bad_parent_pubkey);
	tcase_add_test(tc, session_attestation_mismatch);
	tcase_add_test(tc, session_attestation_malformed);
	tcase_add_test(tc, session_attestation_expired);
	tcase_add_test(tc, session_attestation_ttl_too_long);
	tcase_add_test(tc, session_attestation_bad_signature);
	tcase_add_test(tc, session_timestamp_skew);
	tcase_add_test(tc, session_malformed);
	tcase_add_test(tc, session_bad_signature);
	tcase_add_test(tc, session_revoked);
	tcase_add_test(tc, session_unauthorized);
	tcase_add_test(tc, session_parent_member_id_mismatch);
	tcase_add_test(tc, hello_ack_member_shape);
	tcase_add_test(tc, hello_ack_session_shape);
	tcase_add_test(tc, peer_joined_fields);
	tcase_add_test(tc, same_member_hello_not_announced);
	tcase_add_test(tc, session_id_dedup);
	tcase_add_test(tc, session_id_dedup_last_presence);
	tcase_add_test(tc, reattach_keeps_presence);
	tcase_add_test(tc, eviction_peer_left_and_gauge);
	suite_add_tcase(s, tc);
	return check_run(s);
}
