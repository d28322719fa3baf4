/* stats — latency samples, the machine, JSON lines, gnuplot.  Any thread
 * (each object belongs to its caller).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "meshbench.h"

/* --------------------------------------------------------------- samples */

void mb_samples_add(struct mb_samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return;     /* a lost sample beats a crash; n stays honest */
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	s->sorted = false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t mb_samples_pct(struct mb_samples *s, double p)
{
	size_t rank;

	if (!s->n)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
		s->sorted = true;
	}
	/* nearest rank: the smallest value with at least p % of samples <= it */
	rank = (size_t)((p / 100.0) * (double)s->n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

double mb_samples_mean(const struct mb_samples *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	return s->n ? sum / (double)s->n : 0;
}

void mb_samples_free(struct mb_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

json_t *mb_samples_json(struct mb_samples *s)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}",
			 "n", (json_int_t)s->n,
			 "p50", ms(mb_samples_pct(s, 50)),
			 "p95", ms(mb_samples_pct(s, 95)),
			 "p99", ms(mb_samples_pct(s, 99)),
			 "p999", ms(mb_samples_pct(s, 99.9)),
			 "max", ms(mb_samples_pct(s, 100)),
			 "mean", mb_samples_mean(s) / 1e6);
}

void mb_samples_header(void)
{
	printf("  %-26s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "n", "p50", "p95", "p99",
	       "p99.9", "max");
}

void mb_samples_row(struct mb_samples *s, const char *label)
{
	if (!s->n) {
		printf("  %-26s %9s\n", label, "0");
		return;
	}
	printf("  %-26s %9zu %9.3f %9.3f %9.3f %9.3f %9.3f\n", label, s->n,
	       ms(mb_samples_pct(s, 50)), ms(mb_samples_pct(s, 95)), ms(mb_samples_pct(s, 99)),
	       ms(mb_samples_pct(s, 99.9)), ms(mb_samples_pct(s, 100)));
}

/* --------------------------------------------------------------- machine */

static void cpu_model(char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && c) {
			c++;
			while (*c == ' ' || *c == '\t')
				c++;
			c[strcspn(c, "\n")] = '\0';
			snprintf(out, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

static unsigned long long mem_total_kb(void)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

json_t *mb_machine_json(void)
{
	char model[256];
	struct utsname u;

	cpu_model(model, sizeof(model));
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	return json_pack("{s:i, s:s, s:I, s:s, s:s}",
			 "nproc", (int)sysconf(_SC_NPROCESSORS_ONLN),
			 "cpu_model", model,
			 "mem_total_kb", (json_int_t)mem_total_kb(),
			 "kernel", u.release,
			 "hostname", u.nodename);
}

const char *mb_machine_line(void)
{
	static char line[512];
	char model[256];
	struct utsname u;

	cpu_model(model, sizeof(model));
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	snprintf(line, sizeof(line), "%d CPU (%s), %.1f GiB RAM, Linux %s",
		 (int)sysconf(_SC_NPROCESSORS_ONLN), model,
		 (double)mem_total_kb() / (1024.0 * 1024.0), u.release);
	return line;
}

bool mb_json_append(const char *path, json_t *obj)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	char *line;
	FILE *f;
	bool ok;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(obj, "time", json_string(ts));
	json_object_set_new(obj, "machine", mb_machine_json());
	line = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (!line)
		return false;
	f = fopen(path, "a");
	if (!f) {
		fprintf(stderr, "meshbench: %s: %s\n", path, strerror(errno));
		free(line);
		return false;
	}
	ok = fprintf(f, "%s\n", line) > 0;
	ok = fclose(f) == 0 && ok;
	free(line);
	return ok;
}

/* ----------------------------------------------------------------- plot */

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		return false;
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (n && access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

void mb_plot(const char *path, const char *title, struct mb_samples *const *series,
	     const char *const *names, size_t n)
{
	char dat[4096];
	FILE *f, *g;

	if (!on_path("gnuplot")) {
		fprintf(stderr, "meshbench: gnuplot is not on PATH: no plot written to %s"
			" (Debian: apt-get install gnuplot-nox)\n", path);
		return;
	}
	snprintf(dat, sizeof(dat), "%s.dat", path);
	f = fopen(dat, "w");
	if (!f) {
		fprintf(stderr, "meshbench: %s: %s\n", dat, strerror(errno));
		return;
	}
	/* one block per non-empty series: latency (ms), cumulative fraction;
	 * at most ~2000 points each (every sample for small sets) */
	for (size_t i = 0; i < n; i++) {
		struct mb_samples *s = series[i];
		size_t step;

		if (!s->n)
			continue;
		(void)mb_samples_pct(s, 50);    /* sorts */
		step = s->n > 2000 ? s->n / 2000 : 1;
		fprintf(f, "# %s\n", names[i]);
		for (size_t k = 0; k < s->n; k += step)
			fprintf(f, "%.6f %.6f\n", ms(s->v[k] ? s->v[k] : 1),
				(double)(k + 1) / (double)s->n);
		fprintf(f, "%.6f 1.0\n\n\n", ms(s->v[s->n - 1] ? s->v[s->n - 1] : 1));
	}
	fclose(f);
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "meshbench: cannot run gnuplot\n");
		return;
	}
	fprintf(g, "set terminal svg size 900,560 dynamic\nset output '%s'\n"
		"set title '%s' noenhanced\nset logscale x\nset xlabel 'latency (ms)'\n"
		"set ylabel 'fraction of messages'\nset key bottom right noenhanced\n"
		"set grid\nset yrange [0:1]\nplot ", path, title);
	for (size_t i = 0, k = 0; i < n; i++) {
		if (!series[i]->n)
			continue;
		fprintf(g, "%s'%s' index %zu using 1:2 with lines title '%s'", k ? ", " : "",
			dat, k, names[i]);
		k++;
	}
	fprintf(g, "\n");
	if (pclose(g) != 0)
		fprintf(stderr, "meshbench: gnuplot failed\n");
	else
		fprintf(stderr, "meshbench: latency CDF written to %s\n", path);
}
