/* proc — the broker seen from outside: /proc/<pid> (RSS, CPU per thread,
 * fds), the database's CPU, and GET /metrics.  Thread: the caller's.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "meshbench.h"

static long clk_tck(void)
{
	static long t;

	if (!t)
		t = sysconf(_SC_CLK_TCK);
	return t > 0 ? t : 100;
}

static bool read_status(pid_t pid, uint64_t *hwm, uint64_t *rss)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "VmHWM: %llu", &v) == 1)
			*hwm = v;
		else if (sscanf(line, "VmRSS: %llu", &v) == 1)
			*rss = v;
	}
	fclose(f);
	return true;
}

/* utime + stime of pid in seconds, and its parent's pid. */
static bool read_stat(pid_t pid, double *cpu, pid_t *ppid)
{
	char path[64], buf[2048];
	unsigned long long ut, st;
	const char *p;
	int pp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');      /* comm may hold spaces and parentheses */
	if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &pp, &ut, &st) != 3)
		return false;
	*cpu = (double)(ut + st) / (double)clk_tck();
	if (ppid)
		*ppid = (pid_t)pp;
	return true;
}

static bool read_cpu(pid_t pid, double *cpu)
{
	return read_stat(pid, cpu, NULL);
}

/* CPU seconds of root and its direct children (PostgreSQL's backends). */
static double tree_cpu(pid_t root)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	double sum = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		double c;
		pid_t pp;

		if (*end || pid <= 0 || !read_stat((pid_t)pid, &c, &pp))
			continue;
		if ((pid_t)pid == root || pp == root)
			sum += c;
	}
	closedir(d);
	return sum;
}

static unsigned count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* CPU of each thread of p->pid: into cpu0 (start) or cpu1 (end). */
static void read_threads(struct mb_proc *p, bool end)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char *x;
		long tid = strtol(e->d_name, &x, 10);
		char tp[96], comm[20] = "?";
		struct mb_thread *t = NULL;
		double cpu;
		FILE *f;

		if (*x || tid <= 0)
			continue;
		snprintf(tp, sizeof(tp), "/proc/%d/task/%ld/stat", (int)p->pid, tid);
		{
			/* read_stat wants a pid; a tid's stat lives under task/ */
			char buf[2048];
			unsigned long long ut, st;
			const char *q;
			size_t n;

			f = fopen(tp, "r");
			if (!f)
				continue;
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			q = strrchr(buf, ')');
			if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
					 &ut, &st) != 2)
				continue;
			cpu = (double)(ut + st) / (double)clk_tck();
		}
		snprintf(tp, sizeof(tp), "/proc/%d/task/%ld/comm", (int)p->pid, tid);
		f = fopen(tp, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		for (unsigned i = 0; i < p->nthreads; i++)
			if (p->threads[i].tid == (pid_t)tid)
				t = &p->threads[i];
		if (!t) {
			if (p->nthreads == sizeof(p->threads) / sizeof(p->threads[0]))
				continue;
			t = &p->threads[p->nthreads++];
			t->tid = (pid_t)tid;
			t->cpu0 = end ? 0 : cpu;
		}
		snprintf(t->comm, sizeof(t->comm), "%s", comm);
		if (end)
			t->cpu1 = cpu;
		else
			t->cpu0 = cpu;
	}
	closedir(d);
}

void mb_proc_sample(struct mb_proc *p)
{
	uint64_t hwm = 0, rss = 0;
	double cpu;
	unsigned fds;

	if (!p->ok || p->exited)
		return;
	/* a zombie's status has no Vm lines: keep the last real figures */
	if (!read_status(p->pid, &hwm, &rss) || !rss) {
		p->exited = true;
		return;
	}
	p->hwm_kb = hwm;
	p->rss_kb = rss;
	if (rss > p->rss_kb_max)
		p->rss_kb_max = rss;
	if (read_cpu(p->pid, &cpu))
		p->cpu = cpu;
	fds = count_fds(p->pid);
	if (fds) {
		p->fds = fds;
		if (fds > p->fds_max)
			p->fds_max = fds;
	}
}

static void proc_tick(evutil_socket_t fd, short what, void *arg)
{
	mb_proc_sample(arg);
}

void mb_proc_start(struct mb_proc *p, struct event_base *base, pid_t pid, pid_t db_pid)
{
	static const struct timeval every = { 0, 100000 };

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->db_pid = db_pid;
	if (db_pid > 0)
		p->db_cpu = p->db_cpu_start = tree_cpu(db_pid);
	if (pid <= 0)
		return;
	p->ok = read_status(pid, &p->hwm_kb_start, &p->rss_kb_start) &&
		read_cpu(pid, &p->cpu_start);
	if (!p->ok) {
		fprintf(stderr, "meshbench: cannot read /proc/%d: broker figures omitted\n", (int)pid);
		return;
	}
	p->fds_start = count_fds(pid);
	read_threads(p, false);
	mb_proc_sample(p);
	p->timer = event_new(base, -1, EV_PERSIST, proc_tick, p);
	if (p->timer) {
		(void)event_priority_set(p->timer, 0);
		event_add(p->timer, &every);
	}
}

void mb_proc_mark(struct mb_proc *p)
{
	mb_proc_sample(p);
	p->cpu_start = p->cpu;
	read_threads(p, false);
	if (p->db_pid > 0)
		p->db_cpu = p->db_cpu_start = tree_cpu(p->db_pid);
}

void mb_proc_stop(struct mb_proc *p)
{
	mb_proc_sample(p);
	if (p->ok && !p->exited)
		read_threads(p, true);
	if (p->db_pid > 0)
		p->db_cpu = tree_cpu(p->db_pid);
	if (p->timer)
		event_free(p->timer);
	p->timer = NULL;
}

json_t *mb_proc_json(const struct mb_proc *p)
{
	json_t *j;

	if (!p->ok)
		return json_null();
	j = json_pack("{s:i, s:b, s:f, s:f, s:f, s:f, s:f, s:i, s:i}",
			 "pid", (json_int_t)p->pid, "exited", p->exited,
			 "peak_rss_mb", (double)p->hwm_kb / 1024.0,
			 "rss_start_mb", (double)p->rss_kb_start / 1024.0,
			 "rss_end_mb", (double)p->rss_kb / 1024.0,
			 "rss_max_sampled_mb", (double)p->rss_kb_max / 1024.0,
			 "cpu_s", p->cpu - p->cpu_start,
			 "fds_start", (json_int_t)p->fds_start,
			 "fds_max", (json_int_t)p->fds_max);
	if (j && p->db_pid > 0)
		json_object_set_new(j, "db_cpu_s", json_real(p->db_cpu > p->db_cpu_start ?
							      p->db_cpu - p->db_cpu_start : 0));
	if (j && p->nthreads) {
		json_t *t = json_object();

		/* by thread name (several threads may share one) */
		for (unsigned i = 0; i < p->nthreads; i++) {
			double d = p->threads[i].cpu1 > p->threads[i].cpu0 ?
				   p->threads[i].cpu1 - p->threads[i].cpu0 : 0;
			json_t *v = json_object_get(t, p->threads[i].comm);

			json_object_set_new(t, p->threads[i].comm,
					    json_real(d + (v ? json_real_value(v) : 0)));
		}
		json_object_set_new(j, "threads_cpu_s", t);
	}
	return j;
}

void mb_proc_print(const struct mb_proc *p)
{
	if (!p->ok) {
		printf("  broker: (no --broker-pid: RSS, CPU and fds not measured)\n");
		return;
	}
	if (p->exited)
		printf("  !!! the broker (pid %d) exited during the run\n", (int)p->pid);
	printf("  broker pid %d: peak RSS %.1f MB (VmHWM; start %.1f, end %.1f), CPU %.2f s,"
	       " open fds max %u (start %u)\n", (int)p->pid, (double)p->hwm_kb / 1024.0,
	       (double)p->rss_kb_start / 1024.0, (double)p->rss_kb / 1024.0,
	       p->cpu - p->cpu_start, p->fds_max, p->fds_start);
	if (p->nthreads) {
		printf("  broker threads' CPU (s):");
		for (unsigned i = 0; i < p->nthreads; i++) {
			double d = p->threads[i].cpu1 > p->threads[i].cpu0 ?
				   p->threads[i].cpu1 - p->threads[i].cpu0 : 0;

			if (d >= 0.01)
				printf(" %s %.2f", p->threads[i].comm, d);
		}
		printf("\n");
	}
	if (p->db_pid > 0)
		printf("  database (postmaster %d and its live children): CPU %.2f s\n", (int)p->db_pid,
		       p->db_cpu > p->db_cpu_start ? p->db_cpu - p->db_cpu_start : 0);
}

/* ---------------------------------------------------------------- metrics */

long long mb_metric(const struct mb_opts *o, const char *prefix)
{
	struct sockaddr_in dst;
	char host[300], req[512], *buf = NULL, *body, *line;
	size_t len = 0, cap = 0;
	struct timeval tv = { 2, 0 };
	long long v = -1;
	int fd;

	if (!mb_resolve(o, &dst, host, sizeof(host)))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		 host);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 ||
	    send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		goto out;
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb;

			if (cap > (4u << 20))
				break;
			nb = realloc(buf, cap + 65536);
			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (!buf)
		goto out;
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (!body || strncmp(buf, "HTTP/1.1 200", 12) != 0)
		goto out;
	for (line = body + 4; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		size_t pl = strlen(prefix);

		if (strncmp(line, prefix, pl) == 0 && line[pl] == ' ') {
			v = strtoll(line + pl + 1, NULL, 10);
			break;
		}
	}
	if (v < 0 && strstr(body, "# TYPE"))
		v = 0;  /* the endpoint answered; the line is just not there yet */
out:
	free(buf);
	close(fd);
	return v;
}

long long mb_rate_limit_check(const struct mb_opts *o, const char *when)
{
	long long n = mb_metric(o, "broker_messages_rejected_total{reason=\"rate_limit\"}");

	if (n > 0)
		fprintf(stderr,
			"\nmeshbench: !!! /metrics %s shows %lld sends rejected by the rate limit:\n"
			"meshbench: !!! the broker must run with SEND_RATE_LIMIT_PER_MIN=0 for these"
			" numbers to mean anything\n\n", when, n);
	return n;
}
