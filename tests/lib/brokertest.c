#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "brokertest.h"
#include "rmtree.h"

extern char **environ;

#define POLL_STEP_NS (5 * 1000 * 1000)
#define LOG_TAIL_BYTES 8192

static const char *const log_alarms[] = {
	"AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:",
	"\"level\":\"fatal\"", "Assertion",
};

/* Brokers started and not yet cleaned up, per starting process.  A test
 * that fails exits without its teardown; at exit its brokers are killed
 * and their logs kept (the path is printed) for the post-mortem. */
#define LIVE_MAX 32
static struct {
	pid_t owner;
	pid_t pid;
	char dir[256];
} live[LIVE_MAX];
static bool atexit_done;

static void kill_live_at_exit(void)
{
	pid_t me = getpid();

	for (int i = 0; i < LIVE_MAX; i++) {
		if (live[i].owner != me || !live[i].dir[0])
			continue;
		if (live[i].pid > 0) {
			kill(live[i].pid, SIGKILL);
			waitpid(live[i].pid, NULL, 0);
		}
		fprintf(stderr, "brokertest: broker not cleaned up; its log is kept in %s/log\n",
			live[i].dir);
		live[i].dir[0] = '\0';
	}
}

static void live_add(const struct broker *b)
{
	if (!atexit_done) {
		atexit(kill_live_at_exit);
		atexit_done = true;
	}
	for (int i = 0; i < LIVE_MAX; i++) {
		if (!live[i].dir[0] || live[i].owner != getpid()) {
			live[i].owner = getpid();
			live[i].pid = b->pid;
			snprintf(live[i].dir, sizeof(live[i].dir), "%s", b->dir);
			return;
		}
	}
}

/* pid 0: the child was reaped; dir "": cleaned up. */
static void live_update(const struct broker *b, const char *dir)
{
	for (int i = 0; i < LIVE_MAX; i++) {
		if (live[i].owner == getpid() && live[i].dir[0] && strcmp(live[i].dir, dir) == 0) {
			live[i].pid = b->pid;
			if (!b->dir[0])
				live[i].dir[0] = '\0';
		}
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void step(void)
{
	struct timespec ts = { 0, POLL_STEP_NS };

	nanosleep(&ts, NULL);
}

/* ---- environment ------------------------------------------------------ */

struct envlist {
	char **v;               /* NULL-terminated */
	size_t n, cap;
	char **owned;           /* strings we allocated */
	size_t nowned;
};

static bool env_name_eq(const char *entry, const char *name, size_t nlen)
{
	return strncmp(entry, name, nlen) == 0 && entry[nlen] == '=';
}

static bool env_push(struct envlist *e, char *s)
{
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		char **v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return false;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
	return true;
}

/* Applies "NAME=value" (replace or add) or "NAME" (remove). */
static bool env_apply(struct envlist *e, const char *assign)
{
	const char *eq = strchr(assign, '=');
	size_t nlen = eq ? (size_t)(eq - assign) : strlen(assign);
	size_t j = 0;

	if (nlen == 0)
		return false;
	for (size_t i = 0; i < e->n; i++)
		if (!env_name_eq(e->v[i], assign, nlen))
			e->v[j++] = e->v[i];
	e->n = j;
	if (e->v)
		e->v[e->n] = NULL;
	return eq ? env_push(e, (char *)assign) : true;
}

static bool env_setf(struct envlist *e, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	char *s = malloc(len);
	char **o;

	if (!s)
		return false;
	o = realloc(e->owned, (e->nowned + 1) * sizeof(*o));
	if (!o) {
		free(s);
		return false;
	}
	e->owned = o;
	e->owned[e->nowned++] = s;
	snprintf(s, len, "%s=%s", name, value);
	return env_apply(e, s);
}

static void env_free(struct envlist *e)
{
	for (size_t i = 0; i < e->nowned; i++)
		free(e->owned[i]);
	free(e->owned);
	free(e->v);
}

static bool build_env(struct envlist *e, const struct broker *b, const char *database_url,
		      const char *const *extra_env)
{
	memset(e, 0, sizeof(*e));
	for (char **p = environ; *p; p++)
		if (!env_push(e, *p))
			return false;
	if (database_url && !env_setf(e, "DATABASE_URL", database_url))
		return false;
	if (!env_setf(e, "BROKER_PORT", "0") || !env_setf(e, "MESHD_PORT_FILE", b->port_file) ||
	    !env_setf(e, "MESHD_LOG_LEVEL", "debug"))
		return false;
	if (!getenv("ASAN_OPTIONS") &&
	    !env_setf(e, "ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0"))
		return false;
	for (const char *const *x = extra_env; x && *x; x++) {
		if (!env_apply(e, *x)) {
			fprintf(stderr, "brokertest: bad extra_env entry '%s'\n", *x);
			return false;
		}
	}
	return e->v != NULL;
}

/* ---- process ---------------------------------------------------------- */

static const char *broker_bin(void)
{
	const char *bin = getenv("MESHD_BIN");

	return bin && *bin ? bin : "./src/meshd";
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Reaps the child if it has exited; true then. */
static bool reap(struct broker *b, bool block)
{
	int st;
	pid_t r;

	if (b->pid <= 0)
		return true;
	do
		r = waitpid(b->pid, &st, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	if (r < 0) {
		fprintf(stderr, "brokertest: waitpid(%d): %s\n", (int)b->pid, strerror(errno));
		b->exit_status = -1;
	} else {
		b->exit_status = status_code(st);
	}
	b->pid = 0;
	live_update(b, b->dir);
	return true;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_exec(const char *bin, const char *log_path, char **envp, pid_t parent)
{
	char *argv[] = { (char *)bin, NULL };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int fd;

	/* Do not outlive the test process that started us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/* Ignored signals (a test may ignore SIGPIPE) survive exec; reset them. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		_exit(126);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	/* No test socket may leak into the broker: it would keep connections open. */
	if (close_range(3, ~0U, 0) != 0) {
		for (int i = 3; i < 4096; i++)
			close(i);
	}
	execve(bin, argv, envp);
	{
		static const char msg[] = "brokertest: execve of the broker failed\n";
		ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);

		(void)ignored;
	}
	_exit(127);
}

static bool read_port_file(struct broker *b)
{
	char buf[32];
	ssize_t n;
	long port;
	char *end;
	int fd = open(b->port_file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	errno = 0;
	port = strtol(buf, &end, 10);
	while (*end == '\n' || *end == '\r' || *end == ' ')
		end++;
	if (errno || end == buf || *end || port <= 0 || port > 65535)
		return false;
	b->port = (int)port;
	return true;
}

static void print_log_tail(const struct broker *b)
{
	char buf[LOG_TAIL_BYTES + 1];
	int fd = open(b->log_path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "brokertest: no log at %s\n", b->log_path);
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0, SEEK_SET);
	n = read(fd, buf, LOG_TAIL_BYTES);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	fprintf(stderr, "---- broker log %s%s ----\n%s%s---- end of broker log ----\n", b->log_path,
		size > LOG_TAIL_BYTES ? " (tail)" : "", buf,
		n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}

bool broker_start(struct broker *b, const char *database_url, const char *const *extra_env)
{
	const char *bin = broker_bin();
	struct envlist env;
	long long deadline;
	pid_t parent = getpid();

	memset(b, 0, sizeof(*b));
	b->exit_status = -1;
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "brokertest: cannot execute %s (set MESHD_BIN): %s\n", bin,
			strerror(errno));
		return false;
	}
	snprintf(b->dir, sizeof(b->dir), "/tmp/mbrXXXXXX");
	if (!mkdtemp(b->dir)) {
		fprintf(stderr, "brokertest: mkdtemp: %s\n", strerror(errno));
		b->dir[0] = '\0';
		return false;
	}
	snprintf(b->log_path, sizeof(b->log_path), "%s/log", b->dir);
	snprintf(b->port_file, sizeof(b->port_file), "%s/port", b->dir);
	if (!build_env(&env, b, database_url, extra_env)) {
		fprintf(stderr, "brokertest: cannot build the environment\n");
		env_free(&env);
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	b->pid = fork();
	if (b->pid < 0) {
		fprintf(stderr, "brokertest: fork: %s\n", strerror(errno));
		b->pid = 0;
		env_free(&env);
		return false;
	}
	if (b->pid == 0)
		child_exec(bin, b->log_path, env.v, parent);
	env_free(&env);
	live_add(b);

	deadline = now_ms() + BROKER_START_TIMEOUT_MS;
	for (;;) {
		if (read_port_file(b))
			return true;
		if (reap(b, false)) {
			fprintf(stderr, "brokertest: %s exited with status %d before listening\n", bin,
				b->exit_status);
			print_log_tail(b);
			return false;
		}
		if (now_ms() >= deadline) {
			fprintf(stderr, "brokertest: %s wrote no port to %s within %d ms\n", bin,
				b->port_file, BROKER_START_TIMEOUT_MS);
			print_log_tail(b);
			return false;
		}
		step();
	}
}

int broker_wait_exit(struct broker *b, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		if (reap(b, false))
			return b->exit_status;
		if (now_ms() >= deadline)
			return -1;
		step();
	}
}

int broker_stop(struct broker *b, int sig, int timeout_ms)
{
	int rc;

	if (b->pid <= 0)
		return b->exit_status;
	if (kill(b->pid, sig) != 0 && errno != ESRCH)
		fprintf(stderr, "brokertest: kill(%d, %d): %s\n", (int)b->pid, sig, strerror(errno));
	rc = broker_wait_exit(b, timeout_ms);
	if (rc == -1 && b->pid > 0) {
		fprintf(stderr, "brokertest: broker %d did not exit within %d ms of signal %d; killing it\n",
			(int)b->pid, timeout_ms, sig);
		kill(b->pid, SIGKILL);
		reap(b, true);
		return -1;
	}
	return rc;
}

bool broker_alive(struct broker *b)
{
	return !reap(b, false);
}

/* The whole log, NUL-terminated; NULL (printed) if unreadable. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf(stderr, "brokertest: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

bool broker_log_clean(const struct broker *b)
{
	size_t len, bad = 0;
	char *log = slurp(b->log_path, &len);
	char *line, *next;

	if (!log)
		return false;
	for (line = log; line < log + len; line = next) {
		char *nl = memchr(line, '\n', (size_t)(log + len - line));

		next = nl ? nl + 1 : log + len;
		if (nl)
			*nl = '\0';
		for (size_t i = 0; i < sizeof(log_alarms) / sizeof(log_alarms[0]); i++) {
			if (strstr(line, log_alarms[i])) {
				if (bad++ == 0)
					fprintf(stderr, "brokertest: problems in %s:\n", b->log_path);
				if (bad <= 60)
					fprintf(stderr, "  %s\n", line);
				break;
			}
		}
	}
	if (bad > 60)
		fprintf(stderr, "  ... %zu more\n", bad - 60);
	free(log);
	return bad == 0;
}

bool broker_log_contains(const struct broker *b, const char *needle)
{
	size_t len;
	char *log = slurp(b->log_path, &len);
	bool found;

	if (!log)
		return false;
	found = memmem(log, len, needle, strlen(needle)) != NULL;
	free(log);
	return found;
}

bool broker_wait_log(const struct broker *b, const char *needle, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		if (broker_log_contains(b, needle))
			return true;
		if (now_ms() >= deadline) {
			fprintf(stderr, "brokertest: '%s' did not appear in %s within %d ms\n", needle,
				b->log_path, timeout_ms);
			return false;
		}
		step();
	}
}

void broker_dump_log(const struct broker *b)
{
	size_t len;
	char *log = slurp(b->log_path, &len);

	if (!log)
		return;
	fprintf(stderr, "---- broker log %s ----\n", b->log_path);
	fwrite(log, 1, len, stderr);
	fprintf(stderr, "%s---- end of broker log ----\n", len && log[len - 1] != '\n' ? "\n" : "");
	free(log);
}

void broker_cleanup(struct broker *b)
{
	char dir[sizeof(b->dir)];

	if (b->pid > 0) {
		kill(b->pid, SIGKILL);
		reap(b, true);
	}
	if (!b->dir[0])
		return;
	if (getenv("MESHD_KEEP_TEST_DIRS"))
		fprintf(stderr, "brokertest: keeping %s\n", b->dir);
	else
		rmtree(b->dir);
	memcpy(dir, b->dir, sizeof(dir));
	b->dir[0] = '\0';
	live_update(b, dir);
}
