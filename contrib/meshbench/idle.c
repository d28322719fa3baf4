/* idle — C idle peers held by forked children; broker RSS per connection.
 * Thread: main (the children: their own main thread).
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

/* Parent: seeds, forks children that hold up to o->per_child connections
 * each (a process may open 20 000 files here), and measures the broker.
 * A child reports "<ready> <failed>\n" on its pipe once all its peers are
 * settled, then holds them (wslay answers the broker's pings) until its
 * control pipe closes. */

struct idle_child {
	pid_t pid;
	int rep, ctl;           /* parent's ends */
	size_t lo, hi, ready, failed;
	bool reported;
	struct event *ev;
	char buf[128];
	size_t blen;
};

struct idle {
	const struct mb_opts *o;
	struct mb_mesh mesh;
	struct idle_child *kids;
	size_t conns, per, nkids;
	struct event_base *base;
	struct mb_proc proc;
	size_t ready, failed, still;
	uint64_t rss_before, rss_ready, rss_after, t_ready;       /* RSS in kB */
	double cpu_kids;
};

struct idle_child_run {
	struct mb_run run;
	size_t want;
	int rep;
	bool reported;
};

static void child_report(struct idle_child_run *c)
{
	char line[64];
	int n;

	if (c->reported)
		return;
	c->reported = true;
	n = snprintf(line, sizeof(line), "%zu %zu\n", c->run.ready, c->run.gone);
	if (write(c->rep, line, (size_t)n) != n)
		_exit(3);
}

static void child_settled(struct mb_peer *p)
{
	struct idle_child_run *c = p->run->scenario;

	if (c->run.ready + c->run.gone >= c->want)
		child_report(c);
}

static void child_gone(struct mb_peer *p, const char *why)
{
	child_settled(p);
}

static const struct mb_peer_ops idle_ops = {
	.ready = child_settled,
	.gone = child_gone,
};

static void child_ctl(evutil_socket_t fd, short what, void *arg)
{
	mb_run_stop(arg);
}

static void child_timeout(evutil_socket_t fd, short what, void *arg)
{
	child_report(arg);      /* set-up took too long: report what we have */
}

static void child_main(const struct mb_opts *o, const struct mb_mesh *mesh, size_t total,
		       size_t lo, size_t hi, int rep, int ctl)
{
	struct idle_child_run c = { .want = hi - lo, .rep = rep };
	struct event_base *base = mb_base_new();
	struct timeval tv = { (time_t)o->timeout_s, 0 };
	struct event *ev, *tm;

	if (!base)
		_exit(2);
	c.run.mesh = *mesh;     /* borrowed: the parent owns (and frees) it */
	if (!mb_run_init(&c.run, o, base, total, &idle_ops, &c))
		_exit(2);
	c.run.per_src = total > 20000 ? 20000 : 0;
	ev = event_new(base, ctl, EV_READ, child_ctl, &c.run);
	tm = evtimer_new(base, child_timeout, &c);
	if (!ev || !tm)
		_exit(2);
	event_add(ev, NULL);
	evtimer_add(tm, &tv);
	mb_run_connect(&c.run, lo, hi, MB_CONNECT_INFLIGHT);
	/* hold until the parent closes the control pipe (bounded anyway) */
	mb_run_loop(&c.run, o->timeout_s + o->hold_s + 600);
	child_report(&c);
	{
		/* how many are still connected at the end of the hold */
		char line[32];
		int n = snprintf(line, sizeof(line), "F %zu\n", c.run.ready);

		if (write(rep, line, (size_t)n) != n)
			_exit(3);
	}
	event_free(ev);
	event_free(tm);
	mb_run_free(&c.run);    /* RST: no TIME_WAIT left on our ports */
	event_base_free(base);
	_exit(0);
}

static void parent_rep(evutil_socket_t fd, short what, void *arg)
{
	struct idle_child *k = arg;
	ssize_t n = read(fd, k->buf + k->blen, sizeof(k->buf) - 1 - k->blen);

	if (n <= 0) {
		if (!k->reported) {
			k->reported = true;
			k->failed = k->hi - k->lo;
		}
		event_del(k->ev);
		return;
	}
	k->blen += (size_t)n;
	k->buf[k->blen] = '\0';
	if (strchr(k->buf, '\n') && !k->reported) {
		unsigned long long a = 0, b = 0;

		if (sscanf(k->buf, "%llu %llu", &a, &b) == 2) {
			k->ready = (size_t)a;
			k->failed = (size_t)b;
		}
		k->reported = true;
	}
}

/* Forks the children (the parent keeps each one's report and control ends). */
static bool idle_spawn(struct idle *st)
{
	fflush(NULL);
	for (size_t i = 0; i < st->nkids; i++) {
		struct idle_child *k = &st->kids[i];
		int rp[2], cp[2];

		k->lo = i * st->per;
		k->hi = k->lo + st->per < st->conns ? k->lo + st->per : st->conns;
		if (pipe(rp) != 0 || pipe(cp) != 0) {
			perror("meshbench: pipe");
			return false;
		}
		k->pid = fork();
		if (k->pid < 0) {
			perror("meshbench: fork");
			return false;
		}
		if (k->pid == 0) {
			close(rp[0]);
			close(cp[1]);
			for (size_t q = 0; q < i; q++) {
				close(st->kids[q].rep);
				close(st->kids[q].ctl);
			}
			child_main(st->o, &st->mesh, st->conns, k->lo, k->hi, rp[1], cp[0]);
		}
		close(rp[1]);
		close(cp[0]);
		k->rep = rp[0];
		k->ctl = cp[1];
		k->ev = event_new(st->base, k->rep, EV_READ | EV_PERSIST, parent_rep, k);
		if (!k->ev)
			return false;
		event_add(k->ev, NULL);
	}
	return true;
}

/* Until every child reported (or the bound), then the hold. */
static void idle_wait(struct idle *st)
{
	const struct mb_opts *o = st->o;
	uint64_t t0 = mb_now_ns(), deadline = t0 + (uint64_t)((o->timeout_s + 5) * 1e9);
	struct timeval slice = { 0, 100000 };
	struct timeval hold = { (time_t)o->hold_s,
				(suseconds_t)((o->hold_s - (double)(time_t)o->hold_s) * 1e6) };

	for (;;) {
		size_t done = 0;

		for (size_t i = 0; i < st->nkids; i++)
			done += st->kids[i].reported;
		if (done == st->nkids || mb_now_ns() > deadline)
			break;
		event_base_loopexit(st->base, &slice);
		event_base_dispatch(st->base);
	}
	for (size_t i = 0; i < st->nkids; i++) {
		st->ready += st->kids[i].ready;
		st->failed += st->kids[i].reported ? st->kids[i].failed :
			      st->kids[i].hi - st->kids[i].lo;
	}
	st->t_ready = mb_now_ns() - t0;
	mb_proc_sample(&st->proc);
	st->rss_ready = st->proc.rss_kb;
	if (!o->quiet)
		fprintf(stderr, "meshbench: %zu of %zu connections hello'd in %.2f s; holding"
			" %.1f s\n", st->ready, st->conns, mb_secs(st->t_ready), o->hold_s);
	event_base_loopexit(st->base, &hold);
	event_base_dispatch(st->base);
	mb_proc_stop(&st->proc);
	st->rss_after = st->proc.rss_kb;
}

/* Tells the children to go, waits for them, reads their last lines. */
static void idle_reap(struct idle *st)
{
	for (size_t i = 0; i < st->nkids; i++) {
		close(st->kids[i].ctl);
		st->kids[i].ctl = -1;
	}
	for (size_t i = 0; i < st->nkids; i++) {
		struct idle_child *k = &st->kids[i];
		char *f;
		int ws;

		if (k->pid > 0)
			while (waitpid(k->pid, &ws, 0) < 0 && errno == EINTR)
				;
		k->pid = 0;
		/* the child's last line: "F <still connected>" */
		for (;;) {
			ssize_t n = read(k->rep, k->buf + k->blen, sizeof(k->buf) - 1 - k->blen);

			if (n <= 0)
				break;
			k->blen += (size_t)n;
		}
		k->buf[k->blen] = '\0';
		f = strstr(k->buf, "F ");
		if (f)
			st->still += strtoull(f + 2, NULL, 10);
	}
	st->cpu_kids = mb_cpu_self(RUSAGE_CHILDREN);
}

static double idle_per_conn_kib(const struct idle *st)
{
	if (!st->ready || !st->proc.ok)
		return 0;
	return ((double)st->rss_after - (double)st->rss_before) / (double)st->ready;
}

static void idle_print(const struct idle *st, bool completed)
{
	const struct mb_opts *o = st->o;

	mb_print_title("idle");
	printf("  %s: %zu of %zu connections %s (failed %zu) by %zu processes in %.2f s,"
	       " held %.1f s; %zu mesh(es) of up to %zu peers\n",
	       completed ? "completed" : "INCOMPLETE", st->ready, st->conns,
	       o->no_hello ? "upgraded (no hello)" : "hello'd", st->failed, st->nkids,
	       mb_secs(st->t_ready), o->hold_s, st->mesh.nmeshes,
	       st->mesh.per_mesh ? st->mesh.per_mesh : st->conns);
	if (st->proc.ok)
		printf("  broker RSS before %.1f MB; all connected %.1f MB; after the hold %.1f MB"
		       " (peak %.1f MB): %.2f KiB per connection\n", (double)st->rss_before / 1024.0,
		       (double)st->rss_ready / 1024.0, (double)st->rss_after / 1024.0,
		       (double)st->proc.hwm_kb / 1024.0, idle_per_conn_kib(st));
	printf("  still connected at the end of the hold: %zu (dropped by the broker: %zu)\n",
	       st->still, st->ready > st->still ? st->ready - st->still : 0);
	mb_proc_print(&st->proc);
	printf("  loadgen: CPU %.2f s in the children\n", st->cpu_kids);
}

static json_t *idle_json(const struct idle *st, bool completed)
{
	const struct mb_opts *o = st->o;
	json_t *params = mb_params_common(o), *res;

	json_object_set_new(params, "conns", json_integer((json_int_t)st->conns));
	json_object_set_new(params, "per_child", json_integer((json_int_t)st->per));
	json_object_set_new(params, "hold_s", json_real(o->hold_s));
	json_object_set_new(params, "mesh_size", json_integer(o->mesh_size));
	json_object_set_new(params, "hello", json_boolean(!o->no_hello));
	json_object_set_new(params, "meshes", json_integer((json_int_t)st->mesh.nmeshes));
	res = json_pack("{s:b, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}",
			"completed", completed, "connected", (json_int_t)st->ready,
			"failed", (json_int_t)st->failed, "processes", (json_int_t)st->nkids,
			"still_connected", (json_int_t)st->still,
			"connect_s", mb_secs(st->t_ready),
			"rss_before_mb", (double)st->rss_before / 1024.0,
			"rss_connected_mb", (double)st->rss_ready / 1024.0,
			"rss_after_mb", (double)st->rss_after / 1024.0,
			"rss_per_conn_kib", idle_per_conn_kib(st));
	return json_pack("{s:s, s:o, s:o, s:o, s:{s:f}, s:s}", "scenario", "idle",
			 "params", params, "results", res, "broker", mb_proc_json(&st->proc),
			 "loadgen", "cpu_s", st->cpu_kids, "mesh_id", st->mesh.id);
}

int mb_idle(const struct mb_opts *o, unsigned conns, json_t **out)
{
	struct idle st = { .o = o, .conns = conns, .per = o->per_child ? o->per_child : 9000 };
	char err[512];
	bool completed;
	int status = 2;

	if (!conns) {
		fprintf(stderr, "meshbench: idle needs C >= 1\n");
		return 2;
	}
	if (!mb_mesh_seed(o->db_url, conns, o->mesh_size, &st.mesh, err, sizeof(err))) {
		fprintf(stderr, "meshbench: seeding failed: %s\n", err);
		return 2;
	}
	if (!o->quiet)
		fprintf(stderr, "meshbench: seeded %zu mesh(es) (first %s) with %u members\n",
			st.mesh.nmeshes, st.mesh.id, conns);
	st.nkids = (conns + st.per - 1) / st.per;
	st.kids = calloc(st.nkids, sizeof(*st.kids));
	st.base = mb_base_new();
	if (!st.kids || !st.base)
		goto out;
	/* the broker before any of our connections */
	mb_proc_start(&st.proc, st.base, o->broker_pid, o->db_pid);
	st.rss_before = st.proc.rss_kb_start;
	if (!idle_spawn(&st))
		goto out;
	idle_wait(&st);
	idle_reap(&st);
	completed = st.ready == conns;
	status = completed ? 0 : 1;
	idle_print(&st, completed);
	*out = idle_json(&st, completed);
out:
	if (st.proc.timer)
		mb_proc_stop(&st.proc);
	for (size_t i = 0; st.kids && i < st.nkids; i++) {
		if (st.kids[i].ev)
			event_free(st.kids[i].ev);
		if (st.kids[i].ctl > 0)
			close(st.kids[i].ctl);
		if (st.kids[i].rep > 0)
			close(st.kids[i].rep);
		if (st.kids[i].pid > 0) {
			kill(st.kids[i].pid, SIGTERM);
			waitpid(st.kids[i].pid, NULL, 0);
		}
	}
	free(st.kids);
	if (st.base)
		event_base_free(st.base);
	if (o->cleanup && !mb_mesh_delete(o->db_url, &st.mesh))
		fprintf(stderr, "meshbench: could not delete mesh %s\n", st.mesh.id);
	mb_mesh_free(&st.mesh);
	return status;
}
