/* meshtest — claudemesh peers for integration tests; see meshtest.h. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <jansson.h>

#include "meshtest.h"
#include "pgtest.h"

void mt_seed_mesh(const char *url, const char *mesh_id, const char *name)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO public.\"user\"(id,name,email) VALUES ('test-user','t','t@x')"
		 " ON CONFLICT DO NOTHING;"
		 "INSERT INTO mesh.mesh(id,name,slug,owner_user_id) VALUES ('%s','%s','%s-slug','test-user')",
		 mesh_id, name, name);
	ck_assert_msg(pgtest_exec(url, sql), "seed mesh %s", mesh_id);
}

void mt_seed_member(const char *url, const char *mesh_id, const char *member_id,
		    const char *display_name, struct mc_identity *id)
{
	ck_assert(mc_identity_random(id));
	char sql[1024];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO mesh.member(id,mesh_id,peer_pubkey,display_name) VALUES ('%s','%s','%s','%s')",
		 member_id, mesh_id, id->pk_hex, display_name);
	ck_assert_msg(pgtest_exec(url, sql), "seed member %s", member_id);
}

/* The hello_ack goes to *keep when keep is not NULL (the caller frees it). */
static bool await_ack(struct mt_peer *p, struct mc_frame *keep)
{
	struct mc_frame f;
	if (!mt_next(p, &f, 10000))
		return false;
	bool ok = f.type == MC_HELLO_ACK;
	if (ok)
		snprintf(p->presence_id, sizeof(p->presence_id), "%s", f.hello_ack.presence_id);
	else
		fprintf(stderr, "meshtest: expected hello_ack, got %s\n",
			f.json ? json_dumps(f.json, JSON_COMPACT) : "?");
	if (ok && keep)
		*keep = f;
	else
		mc_frame_free(&f);
	return ok;
}

static struct mc_group *groups_of(const char *const *names, struct mc_group *buf, size_t cap)
{
	if (!names)
		return NULL;
	size_t n = 0;
	for (; names[n] && n + 1 < cap; n++)
		buf[n] = (struct mc_group){ names[n], NULL };
	buf[n] = (struct mc_group){ NULL, NULL };
	return buf;
}

static void fill(struct mt_peer *p, const char *mesh_id, const char *member_id, const char *name)
{
	snprintf(p->mesh_id, sizeof(p->mesh_id), "%s", mesh_id);
	snprintf(p->member_id, sizeof(p->member_id), "%s", member_id);
	snprintf(p->name, sizeof(p->name), "%s", name);
}

/* A fresh peer with an open, auto-ponging socket. */
static bool open_peer(struct mt_peer *p, int port, const struct mc_identity *id,
		      const char *mesh_id, const char *member_id, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->id = *id;
	fill(p, mesh_id, member_id, name);
	p->ws = wsc_connect(port, "/ws", 5000);
	if (!p->ws)
		return false;
	wsc_set_auto_pong(p->ws, true);
	return true;
}

/* Sends a hello (freed here) and waits for its hello_ack. */
static bool send_hello(struct mt_peer *p, char *hello, struct mc_frame *keep)
{
	bool ok = hello && wsc_send_text(p->ws, hello, strlen(hello)) && await_ack(p, keep);
	free(hello);
	return ok;
}

bool mt_connect_where(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		      const struct mc_identity *id, const char *name, const char *const *groups,
		      const struct mt_where *where)
{
	return mt_connect_ack(p, port, mesh_id, member_id, id, name, groups, where, NULL);
}

bool mt_connect_ack(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		    const struct mc_identity *id, const char *name, const char *const *groups,
		    const struct mt_where *where, struct mc_frame *ack)
{
	if (!open_peer(p, port, id, mesh_id, member_id, name))
		return false;
	char sid[33];
	mc_random_id(sid, sizeof(sid));
	struct mc_group gbuf[16];
	struct mc_hello_opts o = { .mesh_id = mesh_id, .member_id = member_id, .display_name = name,
				   .session_id = where && where->session_id ? where->session_id : sid,
				   .pid = where ? where->pid : getpid(),
				   .cwd = where && where->cwd ? where->cwd : "/tmp/meshtest",
				   .groups = groups_of(groups, gbuf, 16) };
	return send_hello(p, mc_hello(&p->id, &o), ack);
}

bool mt_connect(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		const struct mc_identity *id, const char *name, const char *const *groups)
{
	return mt_connect_where(p, port, mesh_id, member_id, id, name, groups, NULL);
}

bool mt_connect_session_where(struct mt_peer *p, int port, const char *mesh_id,
			      const char *member_id, const struct mc_identity *parent,
			      const char *name, const char *const *groups,
			      const struct mt_where *where)
{
	return mt_connect_session_ack(p, port, mesh_id, member_id, parent, name, groups, where,
				      NULL);
}

bool mt_connect_session_ack(struct mt_peer *p, int port, const char *mesh_id,
			    const char *member_id, const struct mc_identity *parent,
			    const char *name, const char *const *groups,
			    const struct mt_where *where, struct mc_frame *ack)
{
	if (!open_peer(p, port, parent, mesh_id, member_id, name))
		return false;
	p->is_session = true;
	if (!mc_identity_random(&p->session))
		return false;
	char sid[33];
	mc_random_id(sid, sizeof(sid));
	struct mc_group gbuf[16];
	struct mc_session_hello_opts o = {
		.mesh_id = mesh_id, .parent_member_id = member_id, .display_name = name,
		.session_id = where && where->session_id ? where->session_id : sid,
		.pid = where ? where->pid : getpid(),
		.cwd = where && where->cwd ? where->cwd : "/tmp/meshtest",
		.groups = groups_of(groups, gbuf, 16)
	};
	return send_hello(p, mc_session_hello(&p->id, &p->session, &o), ack);
}

bool mt_connect_session(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
			const struct mc_identity *parent, const char *name,
			const char *const *groups)
{
	return mt_connect_session_where(p, port, mesh_id, member_id, parent, name, groups, NULL);
}

void mt_close(struct mt_peer *p)
{
	if (p->ws)
		wsc_free(p->ws);
	p->ws = NULL;
}

const char *mt_pubkey(const struct mt_peer *p)
{
	return p->is_session ? p->session.pk_hex : p->id.pk_hex;
}

bool mt_send_raw(struct mt_peer *p, const char *json)
{
	return wsc_send_text(p->ws, json, strlen(json));
}

bool mt_next(struct mt_peer *p, struct mc_frame *f, int timeout_ms)
{
	long long deadline = mc_now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - mc_now_ms();
		if (left <= 0)
			return false;
		struct wsc_msg m;
		int kind = wsc_recv(p->ws, &m, (int)left);
		if (kind == WSC_TEXT) {
			bool ok = mc_parse(m.data, m.len, f);
			wsc_msg_free(&m);
			return ok;
		}
		if (kind == WSC_PING || kind == WSC_PONG) {
			wsc_msg_free(&m);
			continue;
		}
		if (kind != WSC_TIMEOUT)
			wsc_msg_free(&m);
		return false;
	}
}

bool mt_wait(struct mt_peer *p, enum mc_frame_type t, struct mc_frame *f, int timeout_ms)
{
	long long deadline = mc_now_ms() + timeout_ms;
	while (mc_now_ms() < deadline) {
		if (!mt_next(p, f, (int)(deadline - mc_now_ms())))
			return false;
		if (f->type == t)
			return true;
		mc_frame_free(f);
	}
	return false;
}

bool mt_wait_push(struct mt_peer *p, struct mc_frame *f, int timeout_ms)
{
	long long deadline = mc_now_ms() + timeout_ms;
	while (mc_now_ms() < deadline) {
		if (!mt_wait(p, MC_PUSH, f, (int)(deadline - mc_now_ms())))
			return false;
		if (!f->push.system)
			return true;
		mc_frame_free(f);
	}
	return false;
}

bool mt_quiet(struct mt_peer *p, int timeout_ms, bool allow_system)
{
	long long deadline = mc_now_ms() + timeout_ms;
	while (mc_now_ms() < deadline) {
		struct mc_frame f;
		if (!mt_next(p, &f, (int)(deadline - mc_now_ms())))
			return true;
		bool system = f.type == MC_PUSH && f.push.system;
		if (!(allow_system && system)) {
			char *t = json_dumps(f.json, JSON_COMPACT);
			fprintf(stderr, "meshtest: %s got unexpected %s\n", p->name, t);
			free(t);
			mc_frame_free(&f);
			return false;
		}
		mc_frame_free(&f);
	}
	return true;
}

static bool send_and_ack(struct mt_peer *from, char *frame, struct mc_frame *ack)
{
	bool ok = frame && mt_send_raw(from, frame) && mt_wait(from, MC_ACK, ack, 10000);
	free(frame);
	return ok;
}

bool mt_dm(struct mt_peer *from, const struct mt_peer *to, const char *text, const char *priority,
	   const char *client_id, struct mc_frame *ack)
{
	char *nonce = NULL, *ct = NULL;
	const struct mc_identity *me = from->is_session ? &from->session : &from->id;
	if (!mc_encrypt_dm(me, mt_pubkey(to), text, strlen(text), &nonce, &ct))
		return false;
	char id[17];
	mc_random_id(id, sizeof(id));
	struct mc_send_opts o = { .id = id, .client_message_id = client_id,
				  .target_spec = mt_pubkey(to), .priority = priority, .nonce = nonce,
				  .ciphertext = ct };
	bool ok = send_and_ack(from, mc_send(&o), ack);
	free(nonce);
	free(ct);
	return ok;
}

bool mt_multicast(struct mt_peer *from, const char *target, const char *text,
		  const char *priority, struct mc_frame *ack)
{
	char *b64 = mc_b64(text, strlen(text));
	char id[17];
	mc_random_id(id, sizeof(id));
	struct mc_send_opts o = { .id = id, .target_spec = target, .priority = priority,
				  .nonce = "", .ciphertext = b64 };
	bool ok = send_and_ack(from, mc_send(&o), ack);
	free(b64);
	return ok;
}

bool mt_open_dm(const struct mt_peer *p, const struct mc_frame *push, char *out, size_t cap)
{
	unsigned char *plain = NULL;
	size_t len = 0;
	const struct mc_identity *me = p->is_session ? &p->session : &p->id;
	if (!mc_decrypt_dm(me, push->push.sender_pubkey, push->push.nonce, push->push.ciphertext,
			   &plain, &len))
		return false;
	snprintf(out, cap, "%.*s", (int)len, (const char *)plain);
	free(plain);
	return true;
}

void mt_seed_members(const char *url, const char *mesh, int n, struct mc_identity *ids)
{
	mt_seed_mesh(url, mesh, mesh);
	for (int i = 0; i < n; i++) {
		char mid[64], name[8];
		snprintf(mid, sizeof(mid), "%s-m%d", mesh, i);
		snprintf(name, sizeof(name), "%c", 'a' + i);
		mt_seed_member(url, mesh, mid, name, &ids[i]);
	}
}

void mt_dm_ok(struct mt_peer *from, const struct mt_peer *to, const char *text,
	      const char *priority)
{
	struct mc_frame ack;
	ck_assert(mt_dm(from, to, text, priority, NULL, &ack));
	ck_assert_msg(ack.ack.queued, "%s", ack.ack.error);
	mc_frame_free(&ack);
}

void mt_expect_dm(struct mt_peer *to, const char *text, const char *priority)
{
	struct mc_frame f;
	ck_assert_msg(mt_wait_push(to, &f, 10000), "no push for %s: %s", to->name, text);
	char got[128];
	ck_assert(mt_open_dm(to, &f, got, sizeof(got)));
	ck_assert_str_eq(got, text);
	if (priority)
		ck_assert_str_eq(f.push.priority, priority);
	mc_frame_free(&f);
}

void mt_send_owned(struct mt_peer *p, char *json)
{
	ck_assert(mt_send_raw(p, json));
	free(json);
}

json_t *mt_peer_entry(struct mt_peer *p, const char *pubkey)
{
	mt_send_owned(p, mc_list_peers("pl"));
	struct mc_frame f;
	ck_assert(mt_wait(p, MC_PEERS_LIST, &f, 10000));
	json_t *found = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(f.peers_list.peers, i, e)
		if (!found && strcmp(json_string_value(json_object_get(e, "pubkey")), pubkey) == 0)
			found = json_incref(e);
	mc_frame_free(&f);
	return found;
}

const char *mt_peer_status(struct mt_peer *p, const char *pubkey)
{
	static char status[16];
	json_t *e = mt_peer_entry(p, pubkey);
	snprintf(status, sizeof(status), "%s", e ? json_string_value(json_object_get(e, "status")) : "");
	json_decref(e);
	return status;
}

void mt_projects_write(const struct mt_projects *p, bool working)
{
	FILE *fp = fopen(p->file, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"%s\"}]}}\n",
		working ? "tool_use" : "text");
	ck_assert_int_eq(fclose(fp), 0);
}

void mt_projects_make(struct mt_projects *p, const char *key, bool working)
{
	snprintf(p->dir, sizeof(p->dir), "/tmp/mprojXXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(p->dir));
	snprintf(p->file, sizeof(p->file), "%s/%s", p->dir, key);
	ck_assert_int_eq(mkdir(p->file, 0755), 0);
	snprintf(p->file, sizeof(p->file), "%s/%s/s.jsonl", p->dir, key);
	mt_projects_write(p, working);
}

void mt_projects_remove(const struct mt_projects *p)
{
	unlink(p->file);
	char sub[512];
	snprintf(sub, sizeof(sub), "%s", p->file);
	*strrchr(sub, '/') = '\0';
	rmdir(sub);
	rmdir(p->dir);
}
