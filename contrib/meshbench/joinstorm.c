/* joinstorm — P peers hello at once; until every hello_ack and every
 * peer_joined is in.  Thread: main.
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

/* Definition.  The broker registers presences one at a time (whatever the
 * race of the hellos) and sends peer_joined(X) to every connection already
 * registered when X is.  So for each unordered pair {X, Y} exactly one of the
 * two learns about the other: the earlier-registered one sees the later's
 * peer_joined.  The storm is complete when every peer has its hello_ack and
 * every one of the P(P-1)/2 pairs is covered; the expected event total is
 * exactly P(P-1)/2.  A pair seen from both sides is a double (reported), a
 * pair seen from neither side is missing.  The receiver's own hello_ack must
 * come before any push on its connection (PROTOCOL.md §5.4). */
struct js {
	struct mb_run run;
	uint8_t *seen;          /* P × P bits: [receiver][joiner] */
	uint64_t pairs, covered, doubles, events, before_ack, foreign, self_events;
	uint64_t inversions;    /* Y saw X joining although X's ack reached us first */
	uint64_t t0, t_acked, t_done, t_done_user;
	uint64_t wall, acked;   /* from t0 */
	double cpu;
};

static bool js_bit(const struct js *j, size_t a, size_t b)
{
	size_t bit = a * j->run.npeers + b;

	return j->seen[bit / 8] & (1u << (bit % 8));
}

static void js_check(struct js *j, uint64_t t)
{
	if (!j->t_done && j->run.ready == j->run.npeers && j->covered == j->pairs) {
		j->t_done = t;
		j->t_done_user = mb_now_ns();
		mb_run_stop(&j->run);
	}
}

static void js_ready(struct mb_peer *p)
{
	struct js *j = p->run->scenario;

	if (p->run->ready == p->run->npeers)
		j->t_acked = p->t_ack_ns;
	js_check(j, p->t_ack_ns);
}

static void js_system(struct mb_peer *p, const char *event, size_t elen, const char *pk,
		      uint64_t rx)
{
	struct js *j = p->run->scenario;
	long x;
	size_t bit;

	if (elen != 11 || memcmp(event, "peer_joined", 11) != 0)
		return;
	j->events++;
	if (p->state != PEER_READY)
		j->before_ack++;
	x = pk ? mb_mesh_find(&j->run.mesh, pk) : -1;
	if (x < 0) {
		j->foreign++;
		return;
	}
	if ((uint32_t)x == p->idx) {
		j->self_events++;
		return;
	}
	bit = (size_t)p->idx * j->run.npeers + (size_t)x;
	if (j->seen[bit / 8] & (1u << (bit % 8))) {
		j->doubles++;   /* the same event twice */
		return;
	}
	j->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (js_bit(j, (size_t)x, p->idx))
		j->doubles++;
	else
		j->covered++;
	if (j->run.peers[x].ack_order && p->ack_order &&
	    j->run.peers[x].ack_order < p->ack_order)
		j->inversions++;
	js_check(j, rx);
}

static const struct mb_peer_ops js_ops = {
	.ready = js_ready,
	.system = js_system,
};

static double js_processed(const struct js *j)
{
	return j->t_done_user ? mb_secs(j->t_done_user - j->t0) : 0.0;
}

static void js_print(struct js *j, bool completed)
{
	struct mb_run *r = &j->run;

	mb_print_title("join-storm");
	printf("  %s: %zu peers, hello_acks %zu (refused %zu%s), peer_joined events %llu of"
	       " %llu expected; pairs covered %llu, missing %llu, seen both ways %llu\n",
	       completed ? "completed" : r->timed_out ? "TIMED OUT" : "INCOMPLETE", r->npeers,
	       r->ready, r->hello_errors, r->capacity_errors ? ", capacity!" : "",
	       (unsigned long long)j->events, (unsigned long long)j->pairs,
	       (unsigned long long)j->covered, (unsigned long long)(j->pairs - j->covered),
	       (unsigned long long)j->doubles);
	printf("  pushes before own hello_ack %llu, self events %llu, unknown pubkeys %llu,"
	       " order differs from client-side ack order %llu\n",
	       (unsigned long long)j->before_ack, (unsigned long long)j->self_events,
	       (unsigned long long)j->foreign, (unsigned long long)j->inversions);
	if (r->first_error[0])
		printf("  first error: %s\n", r->first_error);
	printf("  all hello_acks after %.3f s; all acked + all peer_joined seen after %.3f s"
	       " (received; meshbench had processed them after %.3f s)\n", mb_secs(j->acked),
	       mb_secs(j->wall), js_processed(j));
	mb_samples_header();
	mb_samples_row(&r->hello_lat, "connect->hello_ack");
	mb_proc_print(&r->proc);
	mb_print_loadgen(r, j->cpu);
}

static json_t *js_json(struct js *j, bool completed)
{
	struct mb_run *r = &j->run;
	json_t *params = mb_params_common(r->o), *res;

	json_object_set_new(params, "peers", json_integer((json_int_t)r->npeers));
	res = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o}",
			"completed", completed, "acked", (json_int_t)r->ready,
			"refused", (json_int_t)r->hello_errors,
			"peer_joined_events", (json_int_t)j->events,
			"expected_events", (json_int_t)j->pairs,
			"pairs_covered", (json_int_t)j->covered,
			"pairs_both_ways", (json_int_t)j->doubles,
			"pushes_before_ack", (json_int_t)j->before_ack,
			"ack_order_differences", (json_int_t)j->inversions,
			"all_acked_s", mb_secs(j->acked), "wall_s", mb_secs(j->wall),
			"processed_s", js_processed(j),
			"hello_ms", mb_samples_json(&r->hello_lat));
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:s}", "scenario", "join-storm",
			 "params", params, "results", res, "broker", mb_proc_json(&r->proc),
			 "loadgen", mb_loadgen_json(r, j->cpu), "mesh_id", r->mesh.id);
}

int mb_join_storm(const struct mb_opts *o, unsigned peers, json_t **out)
{
	struct js j = { 0 };
	struct mb_run *r = &j.run;
	struct event_base *base = mb_base_new();
	bool completed;
	int status = 2;

	if (!base)
		return 2;
	if (peers < 2) {
		fprintf(stderr, "meshbench: join-storm needs P >= 2\n");
		event_base_free(base);
		return 2;
	}
	if (!mb_run_init(r, o, base, peers, &js_ops, &j))
		goto out;
	j.pairs = (uint64_t)peers * (peers - 1) / 2;
	j.seen = calloc(((size_t)peers * peers + 7) / 8, 1);
	if (!j.seen)
		goto out;
	mb_proc_start(&r->proc, base, o->broker_pid, o->db_pid);
	j.cpu = mb_cpu_self(RUSAGE_SELF);
	j.t0 = mb_now_ns();
	mb_run_connect(r, 0, peers, 0);         /* everyone at once */
	mb_run_loop(r, o->timeout_s);
	j.wall = (j.t_done ? j.t_done : mb_now_ns()) - j.t0;
	j.acked = j.t_acked ? j.t_acked - j.t0 : 0;
	j.cpu = mb_cpu_self(RUSAGE_SELF) - j.cpu;
	mb_proc_stop(&r->proc);
	completed = j.t_done != 0;
	status = completed ? 0 : 1;
	js_print(&j, completed);
	*out = js_json(&j, completed);
	if (o->plot_path) {
		struct mb_samples *series[] = { &r->hello_lat };
		const char *names[] = { "connect->hello_ack" };

		mb_plot(o->plot_path, "join-storm", series, names, 1);
	}
out:
	if (r->proc.timer)
		mb_proc_stop(&r->proc);
	mb_run_free(r);
	free(j.seen);
	event_base_free(base);
	return status;
}
