/* broadcast — one sender, K '*' broadcasts, fan-out latency to the last
 * recipient.  Thread: main.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "meshbench.h"

struct bc_msg {
	uint64_t t_send;
	uint32_t got;
	uint64_t max_lat;
	bool acked;
};

struct bc {
	struct mb_run run;
	unsigned count;
	struct bc_msg *msgs;
	unsigned next;
	uint8_t *seen;          /* peers × count bits */
	size_t acked, ack_errors, complete, duplicates, foreign, self_pushes, rate_limited;
	struct mb_samples fanout, per_recipient, send_ack;
	struct event *tick, *linger;
	uint64_t t0, t_done, t_connect, wall;
	size_t missing;
	double cpu;
	char first_ack_error[200];
};

static void bc_check_done(struct bc *b, uint64_t t)
{
	struct timeval tv = mb_tv_ms(b->run.o->linger_ms);

	if (b->t_done || b->next < b->count || b->acked + b->ack_errors < b->count ||
	    b->complete < b->count)
		return;
	b->t_done = t;
	evtimer_add(b->linger, &tv);
}

static bool bc_send(struct bc *b)
{
	struct mb_run *r = &b->run;
	struct mb_peer *p = &r->peers[0];
	unsigned char nonce[24];
	char plain[4096], id[24], *n64, *c64;
	uint64_t now = mb_now_ns();
	size_t len = mb_make_plain(plain, sizeof(plain), "mb1b", b->next, now, 0, r->o->payload);
	bool ok;

	/* multicast payloads are plain base64 text; the nonce is unused */
	randombytes_buf(nonce, sizeof(nonce));
	n64 = mc_b64(nonce, sizeof(nonce));
	c64 = mc_b64(plain, len);
	snprintf(id, sizeof(id), "%u", b->next);
	b->msgs[b->next].t_send = now;
	ok = n64 && c64 && mb_peer_send(p, mc_send(&(struct mc_send_opts){
		.id = id, .target_spec = "*", .priority = r->o->priority,
		.nonce = n64, .ciphertext = c64,
	}));
	free(n64);
	free(c64);
	if (ok)
		b->next++;
	return ok;
}

static void bc_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bc *b = arg;
	struct timeval tv = mb_tv_ms(b->run.o->interval_ms);

	if (b->next >= b->count)
		return;
	if (!bc_send(b)) {
		fprintf(stderr, "meshbench: the broadcast sender is gone\n");
		mb_run_stop(&b->run);
		return;
	}
	if (b->run.o->interval_ms && b->next < b->count)
		evtimer_add(b->tick, &tv);
}

/* Recipient p got broadcast text plain (client_ack ids as a daemon sends). */
static void bc_got(struct bc *b, struct mb_peer *p, const char *plain, const char *cmid,
		   const char *mid, uint64_t rx)
{
	struct mb_run *r = &b->run;
	uint64_t k, t, lat;
	uint32_t from;
	size_t bit;

	if (p->idx == 0) {
		b->self_pushes++;
		return;
	}
	if (!mb_parse_plain(plain, "mb1b", &k, &t, &from) || k >= b->next) {
		b->foreign++;
		return;
	}
	if (r->o->client_ack && mid)
		(void)mb_peer_send(p, mc_client_ack(cmid, mid));
	bit = (size_t)p->idx * b->count + k;
	if (b->seen[bit / 8] & (1u << (bit % 8))) {
		b->duplicates++;
		return;
	}
	b->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
	lat = rx > t ? rx - t : 0;
	mb_samples_add(&b->per_recipient, lat);
	if (lat > b->msgs[k].max_lat)
		b->msgs[k].max_lat = lat;
	if (++b->msgs[k].got == r->npeers - 1) {
		b->complete++;
		mb_samples_add(&b->fanout, b->msgs[k].max_lat);
		bc_check_done(b, rx);
	}
}

static void bc_frame(struct mb_peer *p, struct mc_frame *f, uint64_t rx)
{
	struct bc *b = p->run->scenario;
	struct mb_run *r = &b->run;

	if (f->type == MC_ACK && p->idx == 0) {
		char *end;
		unsigned long k = f->ack.id ? strtoul(f->ack.id, &end, 10) : ULONG_MAX;

		if (!f->ack.id || *end || k >= b->next || b->msgs[k].acked)
			return;
		b->msgs[k].acked = true;
		if (!f->ack.queued || f->ack.error) {
			b->ack_errors++;
			if (f->ack.error && strstr(f->ack.error, "rate_limit") && !b->rate_limited++)
				fprintf(stderr, "\nmeshbench: !!! the broker answers rate_limit: start"
					" it with SEND_RATE_LIMIT_PER_MIN=0\n\n");
			if (!b->first_ack_error[0])
				snprintf(b->first_ack_error, sizeof(b->first_ack_error), "%s",
					 f->ack.error ? f->ack.error : "queued:false");
			b->complete++;  /* nothing will come for it */
		} else {
			b->acked++;
			mb_samples_add(&b->send_ack, rx - b->msgs[k].t_send);
		}
		if (!r->o->interval_ms)
			bc_tick(-1, 0, b);
		bc_check_done(b, rx);
		return;
	}
	if (f->type != MC_PUSH || !f->push.ciphertext)
		return;
	{
		unsigned char *plain = NULL;
		size_t len;

		if (!mc_unb64(f->push.ciphertext, &plain, &len))
			return;
		bc_got(b, p, (const char *)plain,
		       f->push.client_message_id ? f->push.client_message_id : f->push.message_id,
		       f->push.message_id, rx);
		free(plain);
	}
}

/* The fast path for multicast pushes (5 000 per broadcast would otherwise
 * make the load generator's jansson the bottleneck): ciphertext and
 * messageId straight from the bytes; anything unexpected goes the slow way. */
static bool bc_raw(struct mb_peer *p, const char *data, size_t len, uint64_t rx)
{
	static const char head[] = "{\"type\":\"push\"", ctk[] = "\"ciphertext\":\"",
			  mik[] = "\"messageId\":\"";
	struct bc *b = p->run->scenario;
	const char *c, *ce, *m, *me;
	unsigned char plain[4096];
	char mid[80];
	size_t plen = 0;

	if (len < sizeof(head) || memcmp(data, head, sizeof(head) - 1) != 0 ||
	    !(c = memmem(data, len, ctk, sizeof(ctk) - 1)) ||
	    !(m = memmem(data, len, mik, sizeof(mik) - 1)))
		return false;
	c += sizeof(ctk) - 1;
	m += sizeof(mik) - 1;
	ce = memchr(c, '"', len - (size_t)(c - data));
	me = memchr(m, '"', len - (size_t)(m - data));
	if (!ce || !me || ce == c || (size_t)(me - m) >= sizeof(mid) ||
	    sodium_base642bin(plain, sizeof(plain) - 1, c, (size_t)(ce - c), NULL, &plen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	plain[plen] = '\0';
	memcpy(mid, m, (size_t)(me - m));
	mid[me - m] = '\0';
	bc_got(b, p, (const char *)plain, mid, mid, rx);
	return true;
}

static const struct mb_peer_ops bc_ops = {
	.frame = bc_frame,
	.raw = bc_raw,
};

/* The connect phase's peer_joined storm may still be in flight to the peers
 * that joined first: let it drain (no frame for 0.2 s) so it is not measured. */
static void bc_drain(struct mb_run *r)
{
	uint64_t seen = r->frames_in, give_up = mb_now_ns() + (uint64_t)(r->o->timeout_s * 1e9);

	while (mb_now_ns() < give_up) {
		r->done = false;
		mb_run_loop(r, 0.2);
		if (r->frames_in == seen)
			break;
		seen = r->frames_in;
	}
	r->done = false;
}

static void bc_measure(struct bc *b)
{
	struct mb_run *r = &b->run;
	const struct mb_opts *o = r->o;

	bc_drain(r);
	r->want_ready = 0;
	b->cpu = mb_cpu_self(RUSAGE_SELF);
	mb_proc_mark(&r->proc);         /* CPU: count the broadcast phase only */
	b->t0 = mb_now_ns();
	bc_tick(-1, 0, b);
	mb_run_loop(r, o->timeout_s + (double)b->count * o->interval_ms / 1000.0);
	b->wall = (b->t_done ? b->t_done : mb_now_ns()) - b->t0;
	b->cpu = mb_cpu_self(RUSAGE_SELF) - b->cpu;
	mb_proc_stop(&r->proc);
	for (unsigned k = 0; k < b->next; k++)
		b->missing += (size_t)(r->npeers - 1) - b->msgs[k].got;
	b->missing += (size_t)(b->count - b->next) * (r->npeers - 1);
}

static void bc_print(struct bc *b)
{
	struct mb_run *r = &b->run;
	const struct mb_opts *o = r->o;

	mb_print_title("broadcast");
	printf("  %s: %zu peers, %u broadcasts (one every %u ms%s), acked %zu (errors %zu),"
	       " complete fan-outs %zu, missing deliveries %zu, duplicates %zu\n",
	       b->t_done ? "completed" : r->timed_out ? "TIMED OUT" : "INCOMPLETE", r->npeers,
	       b->count, o->interval_ms, o->interval_ms ? "" : ": on ack", b->acked,
	       b->ack_errors, b->fanout.n, b->missing, b->duplicates);
	if (b->first_ack_error[0])
		printf("  first error ack: %s\n", b->first_ack_error);
	printf("  wall %.3f s, %.0f pushes/s (connect %.2f s)\n", mb_secs(b->wall),
	       b->wall ? (double)b->per_recipient.n / mb_secs(b->wall) : 0,
	       mb_secs(b->t_connect));
	mb_samples_header();
	mb_samples_row(&b->send_ack, "send->ack");
	mb_samples_row(&b->fanout, "fan-out (last recipient)");
	mb_samples_row(&b->per_recipient, "send->push (each)");
	mb_samples_row(&r->hello_lat, "connect->hello_ack");
	mb_proc_print(&r->proc);
	printf("  (broker CPU counts the broadcast phase only; peak RSS includes the connects)\n");
	mb_print_loadgen(r, b->cpu);
}

static json_t *bc_json(struct bc *b, bool completed)
{
	struct mb_run *r = &b->run;
	const struct mb_opts *o = r->o;
	json_t *params = mb_params_common(o), *res;

	json_object_set_new(params, "peers", json_integer((json_int_t)r->npeers));
	json_object_set_new(params, "count", json_integer(b->count));
	json_object_set_new(params, "interval_ms", json_integer(o->interval_ms));
	json_object_set_new(params, "payload", json_integer(o->payload));
	res = json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:o, s:o}",
			"completed", completed, "timed_out", !b->t_done,
			"acked", (json_int_t)b->acked, "ack_errors", (json_int_t)b->ack_errors,
			"complete_fanouts", (json_int_t)b->fanout.n,
			"missing_deliveries", (json_int_t)b->missing,
			"duplicates", (json_int_t)b->duplicates,
			"wall_s", mb_secs(b->wall), "connect_s", mb_secs(b->t_connect),
			"send_ack_ms", mb_samples_json(&b->send_ack),
			"fanout_ms", mb_samples_json(&b->fanout),
			"per_recipient_ms", mb_samples_json(&b->per_recipient));
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:s}", "scenario", "broadcast",
			 "params", params, "results", res, "broker", mb_proc_json(&r->proc),
			 "loadgen", mb_loadgen_json(r, b->cpu), "mesh_id", r->mesh.id);
}

int mb_broadcast(const struct mb_opts *o, unsigned peers, unsigned count, json_t **out)
{
	struct bc b = { .count = count };
	struct mb_run *r = &b.run;
	struct event_base *base = mb_base_new();
	bool completed;
	int status = 2;

	if (!base)
		return 2;
	if (peers < 2 || !count) {
		fprintf(stderr, "meshbench: broadcast needs P >= 2 and K >= 1\n");
		event_base_free(base);
		return 2;
	}
	(void)mb_rate_limit_check(o, "before the run");
	if (!mb_run_init(r, o, base, peers, &bc_ops, &b))
		goto out;
	b.msgs = calloc(count, sizeof(*b.msgs));
	b.seen = calloc(((size_t)peers * count + 7) / 8, 1);
	b.tick = evtimer_new(base, bc_tick, &b);
	b.linger = evtimer_new(base, mb_stop_cb, r);
	if (!b.msgs || !b.seen || !b.tick || !b.linger)
		goto out;
	(void)event_priority_set(b.tick, 0);
	(void)event_priority_set(b.linger, 0);
	mb_proc_start(&r->proc, base, o->broker_pid, o->db_pid);
	if (!mb_connect_all(r, o->timeout_s, MB_CONNECT_INFLIGHT, &b.t_connect)) {
		status = 1;
		goto out;
	}
	if (!o->quiet)
		fprintf(stderr, "meshbench: %u peers connected in %.2f s; broadcast starts\n",
			peers, mb_secs(b.t_connect));
	bc_measure(&b);
	completed = b.t_done && !b.missing && !b.ack_errors;
	status = completed ? 0 : 1;
	bc_print(&b);
	*out = bc_json(&b, completed);
	if (o->plot_path) {
		struct mb_samples *series[] = { &b.fanout, &b.per_recipient, &b.send_ack };
		const char *names[] = { "fan-out (last recipient)", "send->push (each)",
					"send->ack" };

		mb_plot(o->plot_path, "broadcast", series, names, 3);
	}
out:
	if (b.tick)
		event_free(b.tick);
	if (b.linger)
		event_free(b.linger);
	if (r->proc.timer)
		mb_proc_stop(&r->proc);
	mb_run_free(r);
	free(b.msgs);
	free(b.seen);
	mb_samples_free(&b.fanout);
	mb_samples_free(&b.per_recipient);
	mb_samples_free(&b.send_ack);
	event_base_free(base);
	return status;
}
