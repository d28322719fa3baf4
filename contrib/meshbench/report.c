/* report — a results file (JSON lines) summarised against issue 6's
 * targets and issue 12's hook target.  Thread: main.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshbench.h"

#define REPORT_RUNS 32

/* The DM figures of a dm-rate or hook run, for the comparison at the end. */
struct dm_figures {
	size_t line;            /* order in the file */
	double peers, rate, seconds, p50, p99, p999;
};

struct report {
	double ceiling, burst_rate;
	bool burst_target;      /* burst_rate is from the target's size */
	struct dm_figures plain[REPORT_RUNS], hooked[REPORT_RUNS];
	size_t nplain, nhooked, lines;
};

static double num(json_t *o, const char *path)
{
	char buf[256], *save = NULL, *k;
	json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	return json_is_number(v) ? json_number_value(v) : -1;
}

static const char *verdict(bool applies, bool met)
{
	return !applies ? "n/a (other size)" : met ? "met" : "MISSED";
}

static void report_dm_burst(json_t *j, struct report *rp)
{
	bool at = num(j, "params.peers") == 100 && num(j, "params.per_peer") == 1000 &&
		  num(j, "params.window") == 1;
	bool met = num(j, "results.delivered_pct") == 100 &&
		   num(j, "results.duplicates") == 0 &&
		   num(j, "results.wall_s") <= 10 &&
		   num(j, "results.send_push_ms.p99") <= 2000 &&
		   num(j, "broker.peak_rss_mb") >= 0 &&
		   num(j, "broker.peak_rss_mb") <= 150;

	printf("dm-burst %g %g (W=%g): delivered %.2f %%, dup %g, wall %.2f s, %.0f msg/s,"
	       " send->ack p99 %.1f ms, send->push p50 %.1f p99 %.1f max %.1f ms,"
	       " broker peak RSS %.1f MB, CPU %.1f s\n"
	       "  target (100 %%, 0 dup, wall <= 10 s, p99 push <= 2 s, RSS <= 150 MB): %s\n",
	       num(j, "params.peers"), num(j, "params.per_peer"), num(j, "params.window"),
	       num(j, "results.delivered_pct"), num(j, "results.duplicates"),
	       num(j, "results.wall_s"), num(j, "results.msgs_per_s"),
	       num(j, "results.send_ack_ms.p99"), num(j, "results.send_push_ms.p50"),
	       num(j, "results.send_push_ms.p99"), num(j, "results.send_push_ms.max"),
	       num(j, "broker.peak_rss_mb"), num(j, "broker.cpu_s"), verdict(at, met));
	if (at || rp->burst_rate < 0) {
		rp->burst_rate = num(j, "results.msgs_per_s");
		rp->burst_target = at;
	}
}

static void keep_figures(json_t *j, struct dm_figures *v, size_t *n, size_t line)
{
	if (*n == REPORT_RUNS)
		return;
	v[(*n)++] = (struct dm_figures){
		line, num(j, "params.peers"), num(j, "params.rate"), num(j, "params.seconds"),
		num(j, "results.send_push_ms.p50"), num(j, "results.send_push_ms.p99"),
		num(j, "results.send_push_ms.p999"),
	};
}

static void report_dm_rate(json_t *j, struct report *rp)
{
	bool at = num(j, "params.peers") == 100 && num(j, "params.rate") == 5000 &&
		  num(j, "params.seconds") == 20;
	bool met = num(j, "results.delivered_pct") == 100 &&
		   num(j, "results.send_push_ms.p99") <= 20 &&
		   num(j, "results.send_push_ms.p999") <= 50;

	printf("dm-rate %g %g %g: delivered %.2f %%, scheduled->push p50 %.2f p99 %.2f"
	       " p99.9 %.2f max %.2f ms, broker CPU %.1f s, peak RSS %.1f MB\n"
	       "  target (p99 <= 20 ms, p99.9 <= 50 ms): %s\n",
	       num(j, "params.peers"), num(j, "params.rate"), num(j, "params.seconds"),
	       num(j, "results.delivered_pct"), num(j, "results.send_push_ms.p50"),
	       num(j, "results.send_push_ms.p99"), num(j, "results.send_push_ms.p999"),
	       num(j, "results.send_push_ms.max"), num(j, "broker.cpu_s"),
	       num(j, "broker.peak_rss_mb"), verdict(at, met));
	keep_figures(j, rp->plain, &rp->nplain, rp->lines);
}

/* Issue 12: 1 000 hook posts/s with hook p99 <= 5 ms; the DM figures are
 * compared with a plain dm-rate of the same P D T at the end. */
static void report_hook(json_t *j, struct report *rp)
{
	bool at = num(j, "params.hook_rate") == 1000;
	bool all = json_is_true(json_object_get(json_object_get(j, "results"), "completed")) &&
		   num(j, "results.hook.ok") == num(j, "results.hook.total");
	bool met = all && num(j, "results.hook_p99_ms") >= 0 &&
		   num(j, "results.hook_p99_ms") <= 5;

	printf("hook %g/s %g s beside dm-rate %g %g: hook sent->answer p50 %.3f p99 %.3f ms"
	       " (n %g, ok %g, non-200 %g, pending %g), scheduled->answer p99 %.3f ms;"
	       " DM delivered %.2f %%, scheduled->push p50 %.2f p99 %.2f p99.9 %.2f ms,"
	       " broker CPU %.1f s\n"
	       "  target (hook p99 <= 5 ms, every answer ok): %s\n",
	       num(j, "params.hook_rate"), num(j, "params.seconds"), num(j, "params.peers"),
	       num(j, "params.rate"), num(j, "results.hook_p50_ms"),
	       num(j, "results.hook_p99_ms"), num(j, "results.hook_n"),
	       num(j, "results.hook.ok"), num(j, "results.hook.non200"),
	       num(j, "results.hook.pending"), num(j, "results.hook_sched_ms.p99"),
	       num(j, "results.delivered_pct"), num(j, "results.send_push_ms.p50"),
	       num(j, "results.send_push_ms.p99"), num(j, "results.send_push_ms.p999"),
	       num(j, "broker.cpu_s"), verdict(at, met));
	keep_figures(j, rp->hooked, &rp->nhooked, rp->lines);
}

static bool same_load(const struct dm_figures *a, const struct dm_figures *b)
{
	return a->peers == b->peers && a->rate == b->rate && a->seconds == b->seconds;
}

/* q is a better partner for h than p: before h and later than p (or p
 * is after h), or both after h and q earlier. */
static bool closer(const struct dm_figures *q, const struct dm_figures *p,
		   const struct dm_figures *h)
{
	if (q->line < h->line)
		return p->line > h->line || q->line > p->line;
	return p->line > h->line && q->line < p->line;
}

/* Each hook run against the plain dm-rate of the same P D T just before it
 * (else the first after it), with the spread of every such plain run: the
 * noise the difference is to be read against. */
static void report_hook_vs_plain(const struct report *rp)
{
	for (size_t i = 0; i < rp->nhooked; i++) {
		const struct dm_figures *h = &rp->hooked[i], *p = NULL;
		double lo = -1, hi = -1;
		size_t n = 0;

		for (size_t k = 0; k < rp->nplain; k++) {
			const struct dm_figures *q = &rp->plain[k];

			if (!same_load(q, h))
				continue;
			if (!p || closer(q, p, h))
				p = q;
			lo = n == 0 || q->p99 < lo ? q->p99 : lo;
			hi = n == 0 || q->p99 > hi ? q->p99 : hi;
			n++;
		}
		if (!p) {
			printf("hook beside dm-rate %g %g %g: no plain dm-rate %g %g %g in this file"
			       " to compare the DM latency with\n", h->peers, h->rate, h->seconds,
			       h->peers, h->rate, h->seconds);
			continue;
		}
		printf("DM scheduled->push, dm-rate %g %g %g without / with hooks: p50 %.2f / %.2f,"
		       " p99 %.2f / %.2f (%+.2f), p99.9 %.2f / %.2f ms\n"
		       "  target (DM p99 within noise of the run without hooks): compare with the"
		       " spread of repeated plain runs\n",
		       h->peers, h->rate, h->seconds, p->p50, h->p50, p->p99, h->p99,
		       h->p99 - p->p99, p->p999, h->p999);
		if (n > 1)
			printf("  the %zu plain runs' p99: %.2f to %.2f ms\n", n, lo, hi);
	}
}

static void report_broadcast(json_t *j)
{
	bool at = num(j, "params.peers") == 5000 && num(j, "params.count") == 100 &&
		  num(j, "params.interval_ms") == 50;
	bool met = num(j, "results.missing_deliveries") == 0 &&
		   num(j, "results.fanout_ms.p99") <= 100;

	printf("broadcast %g %g (client_ack %s): complete %g, missing %g, fan-out p50 %.1f"
	       " p99 %.1f max %.1f ms, per recipient p99 %.1f ms, send->ack p99 %.1f ms,"
	       " broker peak RSS %.1f MB\n"
	       "  target (p99 fan-out <= 100 ms): %s\n",
	       num(j, "params.peers"), num(j, "params.count"),
	       json_is_false(json_object_get(json_object_get(j, "params"),
					     "client_ack")) ? "off" : "on",
	       num(j, "results.complete_fanouts"), num(j, "results.missing_deliveries"),
	       num(j, "results.fanout_ms.p50"), num(j, "results.fanout_ms.p99"),
	       num(j, "results.fanout_ms.max"), num(j, "results.per_recipient_ms.p99"),
	       num(j, "results.send_ack_ms.p99"), num(j, "broker.peak_rss_mb"),
	       verdict(at, met));
}

static void report_join_storm(json_t *j)
{
	bool at = num(j, "params.peers") == 2000;
	bool met = json_is_true(json_object_get(json_object_get(j, "results"),
						"completed")) &&
		   num(j, "results.wall_s") <= 15;

	printf("join-storm %g: all acked %.2f s, all peer_joined %.2f s, events %.0f of %.0f,"
	       " hello p99 %.1f ms, broker peak RSS %.1f MB, CPU %.1f s\n"
	       "  target (<= 15 s): %s\n",
	       num(j, "params.peers"), num(j, "results.all_acked_s"),
	       num(j, "results.wall_s"), num(j, "results.peer_joined_events"),
	       num(j, "results.expected_events"), num(j, "results.hello_ms.p99"),
	       num(j, "broker.peak_rss_mb"), num(j, "broker.cpu_s"), verdict(at, met));
}

static void report_idle(json_t *j)
{
	bool at = num(j, "params.conns") == 15000 &&
		  !json_is_false(json_object_get(json_object_get(j, "params"), "hello"));
	bool met = num(j, "results.connected") == 15000 &&
		   num(j, "results.rss_per_conn_kib") >= 0 &&
		   num(j, "results.rss_per_conn_kib") <= 10;

	printf("idle %g%s: connected %g, broker RSS %.1f -> %.1f MB = %.2f KiB/connection\n"
	       "  target (<= 10 KiB): %s\n",
	       num(j, "params.conns"),
	       json_is_false(json_object_get(json_object_get(j, "params"), "hello")) ?
	       " (no hello)" : "", num(j, "results.connected"),
	       num(j, "results.rss_before_mb"), num(j, "results.rss_after_mb"),
	       num(j, "results.rss_per_conn_kib"), verdict(at, met));
}

static void report_ceiling(json_t *j, struct report *rp)
{
	rp->ceiling = num(j, "results.ceiling_msgs_per_s");
	printf("ceiling: WebSocket echo %.0f msg/s (p99 %.2f ms), PostgreSQL %.0f rows/s"
	       " (batch %g); the slower: %.0f msg/s\n",
	       num(j, "results.echo.msgs_per_s"), num(j, "results.echo.send_echo_ms.p99"),
	       num(j, "results.pg.best_rows_per_s"), num(j, "results.pg.best_batch"),
	       rp->ceiling);
}

int mb_report(const char *path)
{
	FILE *f = fopen(path, "r");
	struct report rp = { .ceiling = -1, .burst_rate = -1 };
	char *line = NULL;
	size_t cap = 0;

	if (!f) {
		perror(path);
		return 2;
	}
	while (getline(&line, &cap, f) > 0) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);
		const char *sc = json_string_value(json_object_get(j, "scenario"));

		rp.lines++;

		if (!sc) {
			json_decref(j);
			continue;
		}
		if (strcmp(sc, "dm-burst") == 0)
			report_dm_burst(j, &rp);
		else if (strcmp(sc, "dm-rate") == 0)
			report_dm_rate(j, &rp);
		else if (strcmp(sc, "hook") == 0)
			report_hook(j, &rp);
		else if (strcmp(sc, "broadcast") == 0)
			report_broadcast(j);
		else if (strcmp(sc, "join-storm") == 0)
			report_join_storm(j);
		else if (strcmp(sc, "idle") == 0)
			report_idle(j);
		else if (strcmp(sc, "ceiling") == 0)
			report_ceiling(j, &rp);
		json_decref(j);
	}
	free(line);
	fclose(f);
	report_hook_vs_plain(&rp);
	if (rp.ceiling > 0 && rp.burst_rate >= 0)
		printf("dm-burst throughput = %.1f %% of the ceiling (target >= 30 %%): %s\n",
		       100.0 * rp.burst_rate / rp.ceiling,
		       verdict(rp.burst_target, rp.burst_rate / rp.ceiling >= 0.3));
	return 0;
}
