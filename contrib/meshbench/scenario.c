/* scenario — what the scenarios share: the event base, set-up (connect
 * every peer, wait for the hello_acks), the plaintext format, report
 * helpers.  Thread: main (idle's children: their own main thread).
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

double mb_cpu_self(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct event_base *mb_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	if (!cfg)
		return NULL;
	/* timerfd: dm-rate's 0.2 ms grid needs better than epoll's 1 ms */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	/* 0: handshakes and timers, 1: reads of open connections (wsconn.c) */
	if (b && event_base_priority_init(b, 2) != 0) {
		event_base_free(b);
		return NULL;
	}
	return b;
}

struct timeval mb_tv_ms(unsigned ms)
{
	return (struct timeval){ (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
}

double mb_secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

json_t *mb_params_common(const struct mb_opts *o)
{
	return json_pack("{s:s, s:i, s:I, s:s, s:s, s:b}",
			 "host", o->host, "port", o->port, "seed", (json_int_t)o->seed,
			 "crypto", o->full_crypto ? "full" : "precomputed",
			 "rx_clock", o->user_rx_clock ? "user" : "kernel",
			 "client_ack", o->client_ack);
}

json_t *mb_loadgen_json(struct mb_run *r, double cpu)
{
	return json_pack("{s:f, s:I, s:I, s:I, s:I, s:o, s:o}",
			 "cpu_s", cpu,
			 "frames_in", (json_int_t)r->frames_in,
			 "frames_out", (json_int_t)r->frames_out,
			 "system_pushes_in", (json_int_t)r->system_in,
			 "parse_errors", (json_int_t)r->parse_errors,
			 "rx_lag_ms", mb_samples_json(&r->rx_lag),
			 "hello_ms", mb_samples_json(&r->hello_lat));
}

void mb_print_title(const char *title)
{
	printf("\n== meshbench %s\n", title);
	printf("  machine: %s\n", mb_machine_line());
}

void mb_print_loadgen(struct mb_run *r, double cpu)
{
	printf("  loadgen: CPU %.2f s, frames in %llu (system %llu) out %llu;"
	       " read lag p99 %.3f ms max %.3f ms\n", cpu,
	       (unsigned long long)r->frames_in, (unsigned long long)r->system_in,
	       (unsigned long long)r->frames_out,
	       (double)mb_samples_pct(&r->rx_lag, 99) / 1e6,
	       (double)mb_samples_pct(&r->rx_lag, 100) / 1e6);
}

/* Connects all peers of r (bounded burst) and waits for their hello_acks. */
bool mb_connect_all(struct mb_run *r, double timeout_s, size_t inflight, uint64_t *took)
{
	uint64_t t0 = mb_now_ns();

	mb_run_connect(r, 0, r->npeers, inflight);
	r->done = false;
	r->want_ready = r->npeers;
	mb_run_loop(r, timeout_s);
	*took = mb_now_ns() - t0;
	if (r->ready < r->npeers) {
		fprintf(stderr, "meshbench: only %zu of %zu peers got a hello_ack%s%s\n",
			r->ready, r->npeers, r->first_error[0] ? ": " : "", r->first_error);
		if (r->capacity_errors)
			fprintf(stderr, "meshbench: !!! %zu hellos refused for capacity: start the"
				" broker with MAX_CONNECTIONS_PER_MESH >= %zu\n",
				r->capacity_errors, r->npeers);
		return false;
	}
	r->done = false;
	return true;
}

/* Plaintext of a DM or broadcast: tag, sequence, send time, sender, then
 * padding to the requested size. */
size_t mb_make_plain(char *buf, size_t cap, const char *tag, uint64_t seq, uint64_t t_ns,
		     uint32_t from, unsigned payload)
{
	int n = snprintf(buf, cap, "%s %llu %llu %u ", tag, (unsigned long long)seq,
			 (unsigned long long)t_ns, from);
	size_t len = (size_t)n;

	if (n < 0)
		return 0;
	while (len < payload && len + 1 < cap)
		buf[len++] = 'x';
	buf[len] = '\0';
	return len;
}

bool mb_parse_plain(const char *p, const char *tag, uint64_t *seq, uint64_t *t_ns,
		    uint32_t *from)
{
	unsigned long long s, t;
	unsigned f;
	size_t tl = strlen(tag);

	if (strncmp(p, tag, tl) != 0 || p[tl] != ' ' ||
	    sscanf(p + tl, " %llu %llu %u", &s, &t, &f) != 3)
		return false;
	*seq = s;
	*t_ns = t;
	*from = f;
	return true;
}

void mb_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	mb_run_stop(arg);
}
