/* dm — dm-burst (closed loop, a window of un-acked sends per peer) and
 * dm-rate (open loop on a fixed grid, latency from the scheduled time),
 * optionally with a side load beside it (the hook scenario).
 * Thread: main.
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

struct dm_msg {
	uint64_t t_send;        /* what the plaintext carries (scheduled for dm-rate) */
	uint32_t from, to;
	uint16_t pushes;
	uint8_t ack;            /* 0 none, 1 queued, 2 error */
};

struct dm {
	struct mb_run run;
	bool open_loop;         /* dm-rate */
	unsigned per_peer;      /* dm-burst: M */
	unsigned window;
	unsigned rate;          /* dm-rate: messages per second */
	size_t total;
	struct dm_msg *msgs;
	size_t next;            /* next sequence number */
	size_t send_failed;     /* dm-rate: the sender was gone */
	size_t acked_ok, acked_err, rate_limited, delivered, duplicates, misrouted;
	size_t decrypt_failed, foreign, other_errors, late_acks, lost_peers;
	struct mb_samples send_ack, send_push, send_lag;
	uint64_t t0, t_done, t_last_sched;
	/* the measured phase's results */
	uint64_t t_connect, wall;
	double cpu, settle;
	long long rl_before, rl_after, pending;
	struct mb_dbstat db0, db1;
	struct event *tick, *linger;
	bool lingering;         /* done: the linger timer runs */
	const struct mb_side_ops *side_ops;     /* NULL: dm alone */
	void *side;
	char first_ack_error[200];
};

static bool dm_send(struct dm *d, struct mb_peer *p, uint64_t t_carried)
{
	struct mb_run *r = &d->run;
	const struct mb_opts *o = r->o;
	uint32_t to = mb_rng_below(&r->rng, (uint32_t)r->npeers - 1);
	size_t seq = d->next;
	char plain[4096], id[24], cmid[48];
	char *nonce = NULL, *ct = NULL;
	size_t len;
	bool ok;

	if (to >= p->idx)
		to++;
	len = mb_make_plain(plain, sizeof(plain), "mb1", seq, t_carried, p->idx, o->payload);
	if (!mb_seal(r->crypto, p->idx, to, plain, len, &nonce, &ct))
		return false;
	snprintf(id, sizeof(id), "%zu", seq);
	snprintf(cmid, sizeof(cmid), "mb-%s-%zu", r->run_id, seq);
	d->msgs[seq] = (struct dm_msg){ .t_send = t_carried, .from = p->idx, .to = to };
	ok = mb_peer_send(p, mc_send(&(struct mc_send_opts){
		.id = id, .client_message_id = cmid, .target_spec = r->mesh.m[to].key.pk_hex,
		.priority = o->priority, .nonce = nonce, .ciphertext = ct,
	}));
	free(nonce);
	free(ct);
	if (!ok)
		return false;
	d->next++;
	p->sent++;
	p->inflight++;
	return true;
}

/* t_done is when the DMs were all in; the run ends (after the linger)
 * once the side load, if any, has finished too. */
static void dm_check_done(struct dm *d, uint64_t t)
{
	struct timeval tv = mb_tv_ms(d->run.o->linger_ms);

	if (!d->t_done) {
		if (d->next < d->total || d->acked_ok + d->acked_err < d->total ||
		    d->delivered < d->acked_ok)
			return;
		d->t_done = t;
	}
	if (d->lingering || (d->side_ops && !d->side_ops->finished(d->side)))
		return;
	d->lingering = true;
	/* keep listening a little for duplicates, then stop */
	evtimer_add(d->linger, &tv);
}

void mb_dm_side_finished(struct mb_run *r)
{
	struct dm *d = r->scenario;

	if (d->t0)
		dm_check_done(d, mb_now_ns());
}

static void dm_burst_next(struct dm *d, struct mb_peer *p)
{
	while (p->state == PEER_READY && p->sent < d->per_peer && p->inflight < d->window)
		if (!dm_send(d, p, mb_now_ns()))
			break;
}

static void dm_ack(struct dm *d, struct mb_peer *p, struct mc_frame *f, uint64_t rx)
{
	char *end;
	unsigned long long seq = f->ack.id ? strtoull(f->ack.id, &end, 10) : 0;
	struct dm_msg *m;

	if (!f->ack.id || *end || seq >= d->next || d->msgs[seq].from != p->idx ||
	    d->msgs[seq].ack) {
		d->late_acks++;
		return;
	}
	m = &d->msgs[seq];
	p->inflight--;
	p->acked++;
	if (!f->ack.queued || f->ack.error) {
		m->ack = 2;
		d->acked_err++;
		if (f->ack.error && strstr(f->ack.error, "rate_limit")) {
			if (!d->rate_limited++)
				fprintf(stderr, "\nmeshbench: !!! the broker answers rate_limit: start it"
					" with SEND_RATE_LIMIT_PER_MIN=0 (%s)\n\n", f->ack.error);
		}
		if (!d->first_ack_error[0])
			snprintf(d->first_ack_error, sizeof(d->first_ack_error), "%s",
				 f->ack.error ? f->ack.error : "queued:false");
	} else {
		m->ack = 1;
		d->acked_ok++;
		mb_samples_add(&d->send_ack, rx > m->t_send ? rx - m->t_send : 0);
	}
	if (!d->open_loop)
		dm_burst_next(d, p);
	dm_check_done(d, rx);
}

static void dm_push(struct dm *d, struct mb_peer *p, struct mc_frame *f, uint64_t rx)
{
	struct mb_run *r = &d->run;
	long from = f->push.sender_pubkey && strlen(f->push.sender_pubkey) == MC_PK_HEX_LEN ?
		    mb_mesh_find(&r->mesh, f->push.sender_pubkey) : -1;
	unsigned char *plain = NULL;
	uint64_t seq, t;
	uint32_t pfrom;
	size_t len;
	struct dm_msg *m;

	if (from < 0 || !f->push.nonce || !f->push.ciphertext) {
		d->foreign++;
		return;
	}
	if (!mb_open(r->crypto, p->idx, (uint32_t)from, f->push.nonce, f->push.ciphertext,
		     &plain, &len)) {
		d->decrypt_failed++;
		return;
	}
	if (!mb_parse_plain((const char *)plain, "mb1", &seq, &t, &pfrom) || seq >= d->next ||
	    pfrom != (uint32_t)from || d->msgs[seq].to != p->idx || d->msgs[seq].from != pfrom) {
		d->misrouted++;
		free(plain);
		return;
	}
	free(plain);
	if (r->o->client_ack && f->push.message_id)
		(void)mb_peer_send(p, mc_client_ack(f->push.client_message_id ?
						    f->push.client_message_id : f->push.message_id,
						    f->push.message_id));
	m = &d->msgs[seq];
	if (m->pushes++) {
		d->duplicates++;
		return;
	}
	d->delivered++;
	mb_samples_add(&d->send_push, rx > t ? rx - t : 0);
	dm_check_done(d, rx);
}

static void dm_frame(struct mb_peer *p, struct mc_frame *f, uint64_t rx)
{
	struct dm *d = p->run->scenario;

	switch (f->type) {
	case MC_ACK:
		dm_ack(d, p, f, rx);
		break;
	case MC_PUSH:
		dm_push(d, p, f, rx);
		break;
	case MC_ERROR:
		if (!d->other_errors++)
			fprintf(stderr, "meshbench: broker error frame: %s: %s\n",
				f->error.code ? f->error.code : "?",
				f->error.message ? f->error.message : "");
		break;
	default:
		break;
	}
}

static void dm_gone(struct mb_peer *p, const char *why)
{
	struct dm *d = p->run->scenario;

	if (d->t0 && !d->run.done && d->lost_peers++ < 3)
		fprintf(stderr, "meshbench: peer %u lost its connection: %s%s\n", p->idx, why,
			d->lost_peers == 3 ? " (further ones not shown)" : "");
}

static const struct mb_peer_ops dm_ops = {
	.frame = dm_frame,
	.gone = dm_gone,
};

/* dm-rate: send everything whose grid time has come, then sleep until the
 * next grid point.  Latency counts from the grid time, so falling behind
 * shows up in the numbers (no coordinated omission). */
static void rate_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dm *d = arg;
	struct mb_run *r = &d->run;
	uint64_t now = mb_now_ns();
	double rate = d->rate ? d->rate : 1;

	while (d->next < d->total) {
		uint64_t sched = d->t0 + (uint64_t)((double)d->next * 1e9 / rate);
		struct mb_peer *p = &r->peers[d->next % r->npeers];

		if (sched > now) {
			uint64_t wait = sched - now;
			struct timeval tv = { (time_t)(wait / MB_NS_PER_S),
					      (suseconds_t)(wait % MB_NS_PER_S / 1000) };

			evtimer_add(d->tick, &tv);
			return;
		}
		mb_samples_add(&d->send_lag, now - sched);
		if (p->state != PEER_READY || !dm_send(d, p, sched)) {
			/* the grid slot is used up either way */
			d->msgs[d->next] = (struct dm_msg){ .t_send = sched, .from = p->idx,
							    .to = UINT32_MAX, .ack = 2 };
			d->next++;
			d->send_failed++;
			d->acked_err++;
		}
		now = mb_now_ns();
	}
	d->t_last_sched = now;
	dm_check_done(d, now);
}

/* The measured phase: start sending, run to completion (or the bound), then
 * wait for the broker to mark every row delivered (every push was
 * client_acked), connections open, at most --settle seconds. */
static void dm_measure(struct dm *d)
{
	struct mb_run *r = &d->run;
	const struct mb_opts *o = r->o;
	uint64_t t_s;

	r->want_ready = 0;
	(void)mb_dbstat_read(o->db_url, &d->db0);
	d->cpu = mb_cpu_self(RUSAGE_SELF);
	d->t0 = mb_now_ns();
	if (d->side_ops)
		d->side_ops->start(d->side, d->t0);
	if (d->open_loop) {
		rate_tick(-1, 0, d);
	} else {
		for (size_t i = 0; i < r->npeers; i++)
			dm_burst_next(d, &r->peers[i]);
	}
	dm_check_done(d, d->t0);
	mb_run_loop(r, d->open_loop ? o->timeout_s + (double)d->total / d->rate : o->timeout_s);
	d->wall = (d->t_done ? d->t_done : mb_now_ns()) - d->t0;
	d->cpu = mb_cpu_self(RUSAGE_SELF) - d->cpu;
	t_s = mb_now_ns();
	for (;;) {
		d->pending = mb_queue_pending(o->db_url, &r->mesh);
		d->settle = mb_secs(mb_now_ns() - t_s);
		if (d->pending <= 0 || d->settle >= o->settle_s || !o->client_ack || !r->ready)
			break;
		r->done = false;
		mb_run_loop(r, 0.2);
	}
	mb_proc_stop(&r->proc);
	(void)mb_dbstat_read(o->db_url, &d->db1);
	d->rl_after = mb_rate_limit_check(o, "after the run");
	if (d->side_ops)
		d->side_ops->stop(d->side);
}

static size_t dm_lost(const struct dm *d)
{
	return d->acked_ok > d->delivered ? d->acked_ok - d->delivered : 0;
}

static double dm_rate_of(const struct dm *d)
{
	return d->wall ? (double)d->delivered / mb_secs(d->wall) : 0.0;
}

static void dm_print(struct dm *d, const char *name)
{
	struct mb_run *r = &d->run;

	mb_print_title(name);
	printf("  broker should run with SEND_RATE_LIMIT_PER_MIN=0; rate_limit rejections"
	       " in /metrics: %lld before, %lld after\n", d->rl_before, d->rl_after);
	printf("  %s: sent %zu of %zu, acked %zu (errors %zu, rate_limit %zu), delivered %zu"
	       " (%.2f %%), duplicates %zu, lost %zu, misrouted %zu, undecryptable %zu\n",
	       d->t_done ? "completed" : r->timed_out ? "TIMED OUT" : "INCOMPLETE",
	       d->next - d->send_failed, d->total, d->acked_ok, d->acked_err, d->rate_limited,
	       d->delivered, d->total ? 100.0 * (double)d->delivered / (double)d->total : 0,
	       d->duplicates, dm_lost(d), d->misrouted, d->decrypt_failed);
	if (d->first_ack_error[0])
		printf("  first error ack: %s\n", d->first_ack_error);
	printf("  wall %.3f s, %.0f msg/s delivered (connect %.2f s)\n", mb_secs(d->wall),
	       dm_rate_of(d), mb_secs(d->t_connect));
	mb_samples_header();
	mb_samples_row(&d->send_ack, d->open_loop ? "scheduled->ack" : "send->ack");
	mb_samples_row(&d->send_push, d->open_loop ? "scheduled->push" : "send->push");
	if (d->open_loop)
		mb_samples_row(&d->send_lag, "scheduled->sent (loadgen)");
	mb_samples_row(&r->hello_lat, "connect->hello_ack");
	if (d->side_ops)
		d->side_ops->print(d->side);
	mb_proc_print(&r->proc);
	printf("  queue rows still undelivered (client_ack not applied) %.1f s after the end:"
	       " %lld\n", d->settle, d->pending);
	mb_dbstat_print(&d->db0, &d->db1, (double)d->delivered);
	mb_print_loadgen(r, d->cpu);
}

static json_t *dm_json(struct dm *d, const char *name, json_t *params, bool completed)
{
	struct mb_run *r = &d->run;
	json_t *res = json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I,"
				" s:I, s:I, s:f, s:f, s:f, s:o, s:o}",
				"completed", completed, "timed_out", !d->t_done,
				"total", (json_int_t)d->total,
				"sent", (json_int_t)(d->next - d->send_failed),
				"acked", (json_int_t)d->acked_ok,
				"ack_errors", (json_int_t)d->acked_err,
				"rate_limited", (json_int_t)d->rate_limited,
				"delivered", (json_int_t)d->delivered,
				"delivered_pct", d->total ? 100.0 * (double)d->delivered /
							    (double)d->total : 0.0,
				"duplicates", (json_int_t)d->duplicates,
				"lost", (json_int_t)dm_lost(d),
				"misrouted", (json_int_t)d->misrouted,
				"undecryptable", (json_int_t)d->decrypt_failed,
				"wall_s", mb_secs(d->wall),
				"msgs_per_s", dm_rate_of(d),
				"connect_s", mb_secs(d->t_connect),
				"send_ack_ms", mb_samples_json(&d->send_ack),
				"send_push_ms", mb_samples_json(&d->send_push));

	if (d->open_loop)
		json_object_set_new(res, "send_lag_ms", mb_samples_json(&d->send_lag));
	json_object_set_new(res, "undelivered_rows_after", json_integer(d->pending));
	json_object_set_new(res, "settle_s", json_real(d->settle));
	json_object_set_new(res, "db", mb_dbstat_json(&d->db0, &d->db1, (double)d->delivered));
	json_object_set_new(res, "rate_limit_metric_before", json_integer(d->rl_before));
	json_object_set_new(res, "rate_limit_metric_after", json_integer(d->rl_after));
	if (d->side_ops)
		d->side_ops->json(d->side, res);
	return json_pack("{s:s, s:O, s:o, s:o, s:o, s:s}", "scenario", name, "params", params,
			 "results", res, "broker", mb_proc_json(&r->proc),
			 "loadgen", mb_loadgen_json(r, d->cpu), "mesh_id", r->mesh.id);
}

static int dm_run(const struct mb_opts *o, struct dm *d, unsigned peers, const char *name,
		  json_t *params, json_t **out)
{
	struct mb_run *r = &d->run;
	struct event_base *base = mb_base_new();
	bool completed;
	int status = 2;

	if (!base)
		return 2;
	if (peers < 2) {
		fprintf(stderr, "meshbench: %s needs at least 2 peers\n", name);
		event_base_free(base);
		return 2;
	}
	d->pending = -1;
	d->rl_before = mb_rate_limit_check(o, "before the run");
	if (!mb_run_init(r, o, base, peers, &dm_ops, d))
		goto out;
	d->msgs = calloc(d->total ? d->total : 1, sizeof(*d->msgs));
	d->linger = evtimer_new(base, mb_stop_cb, r);
	d->tick = evtimer_new(base, rate_tick, d);
	if (!d->msgs || !d->linger || !d->tick)
		goto out;
	(void)event_priority_set(d->linger, 0);
	(void)event_priority_set(d->tick, 0);      /* the grid comes before reading */
	mb_proc_start(&r->proc, base, o->broker_pid, o->db_pid);
	if (!mb_connect_all(r, o->timeout_s, MB_CONNECT_INFLIGHT, &d->t_connect)) {
		status = 1;
		goto out;
	}
	if (d->side_ops && !d->side_ops->prepare(d->side, r))
		goto out;
	if (!o->quiet)
		fprintf(stderr, "meshbench: %u peers connected in %.2f s; %s starts\n", peers,
			mb_secs(d->t_connect), name);
	dm_measure(d);
	completed = d->t_done && d->delivered == d->total &&
		    (!d->side_ops || d->side_ops->ok(d->side));
	status = completed ? 0 : 1;
	dm_print(d, name);
	*out = dm_json(d, name, params, completed);
	if (o->plot_path) {
		struct mb_samples *series[] = { &d->send_ack, &d->send_push };
		const char *names[] = { "send->ack", "send->push" };

		mb_plot(o->plot_path, name, series, names, 2);
	}
out:
	if (d->side_ops)
		d->side_ops->release(d->side);
	if (d->linger)
		event_free(d->linger);
	if (d->tick)
		event_free(d->tick);
	if (r->proc.timer)
		mb_proc_stop(&r->proc);
	mb_run_free(r);
	free(d->msgs);
	mb_samples_free(&d->send_ack);
	mb_samples_free(&d->send_push);
	mb_samples_free(&d->send_lag);
	event_base_free(base);
	return status;
}

int mb_dm_burst(const struct mb_opts *o, unsigned peers, unsigned per_peer, json_t **out)
{
	struct dm d = { .per_peer = per_peer, .window = o->window ? o->window : 1 };
	json_t *params = mb_params_common(o);
	int st;

	d.total = (size_t)peers * per_peer;
	json_object_set_new(params, "peers", json_integer(peers));
	json_object_set_new(params, "per_peer", json_integer(per_peer));
	json_object_set_new(params, "window", json_integer(d.window));
	json_object_set_new(params, "payload", json_integer(o->payload));
	json_object_set_new(params, "priority", json_string(o->priority));
	st = dm_run(o, &d, peers, "dm-burst", params, out);
	json_decref(params);
	return st;
}

int mb_dm_rate_side(const struct mb_opts *o, unsigned peers, unsigned rate, double seconds,
		    const char *name, json_t *params, const struct mb_side_ops *ops, void *side,
		    json_t **out)
{
	struct dm d = { .open_loop = true, .side_ops = ops, .side = side };

	if (!rate || seconds <= 0) {
		fprintf(stderr, "meshbench: %s needs a DM rate > 0 and T > 0\n", name);
		return 2;
	}
	d.total = (size_t)((double)rate * seconds);
	d.rate = rate;
	json_object_set_new(params, "peers", json_integer(peers));
	json_object_set_new(params, "rate", json_integer(rate));
	json_object_set_new(params, "seconds", json_real(seconds));
	json_object_set_new(params, "payload", json_integer(o->payload));
	json_object_set_new(params, "priority", json_string(o->priority));
	return dm_run(o, &d, peers, name, params, out);
}

int mb_dm_rate(const struct mb_opts *o, unsigned peers, unsigned rate, double seconds,
	       json_t **out)
{
	json_t *params = mb_params_common(o);
	int st = mb_dm_rate_side(o, peers, rate, seconds, "dm-rate", params, NULL, NULL, out);

	json_decref(params);
	return st;
}
