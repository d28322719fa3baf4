/* config — settings from the environment and flags; see include/meshd/config.h. */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/log.h"

/* How a value is read, and which type its field has. */
enum kind {
	K_INT,		/* int, decimal digits within [min, max] */
	K_SIZE,		/* size_t, decimal digits within [min, max] */
	K_FLAG1,	/* bool, true only for exactly "1" (the reference's process.env checks) */
	K_STR,		/* char *, any value, "" included */
	K_STR_NONEMPTY,	/* char *, anything but "" */
	K_PGURL,	/* char *, must start with postgres:// or postgresql:// */
	K_LOGLEVEL,	/* enum log_level, as log_parse_level reads it */
};

/* Defaults that depend on the machine, computed at load time. */
enum dyn { DYN_NONE = 0, DYN_CPUS, DYN_HOME_PROJECTS };

#define MAX_WORKERS 256

struct setting {
	const char *env;
	enum kind kind;
	const char *def;	/* parsed like any value; NULL = unset (or see dyn) */
	enum dyn dyn;
	long long min, max;	/* integer kinds only */
	bool secret;		/* never echo the value: a database URL can carry a password */
	const char *metavar;	/* what --help shows after '='; NULL = from the kind */
	const char *help;
	size_t offset;
};

/* offsetof, plus a compile-time check that the field has the type the kind
 * will write through: a mismatch fails _Generic instead of corrupting memory. */
#define FIELD(f, T) \
	(offsetof(struct config, f) + 0 * sizeof(_Generic(((struct config *)0)->f, T: 1)))
#define INT_(f)  .kind = K_INT, .offset = FIELD(f, int)
#define SIZE_(f) .kind = K_SIZE, .offset = FIELD(f, size_t)
#define POS .min = 1, .max = INT_MAX
#define NONNEG .min = 0, .max = INT_MAX

static const struct setting settings[] = {
	{ .env = "BROKER_PORT", INT_(port), .def = "7900", .min = 0, .max = 65535,
	  .help = "TCP port for HTTP and WebSocket; 0 binds any free port (see --meshd-port-file)" },
	{ .env = "BROKER_HOST", .kind = K_STR_NONEMPTY, .offset = FIELD(host, char *),
	  .def = "0.0.0.0", .metavar = "ADDR", .help = "address to listen on" },
	{ .env = "MESHD_PORT_FILE", .kind = K_STR_NONEMPTY, .offset = FIELD(port_file, char *),
	  .metavar = "PATH",
	  .help = "after binding, write the port number to this file (via a temporary file and rename)" },
	{ .env = "DATABASE_URL", .kind = K_PGURL, .offset = FIELD(database_url, char *),
	  .secret = true, .help = "PostgreSQL connection URL, postgres:// or postgresql:// (required)" },
	{ .env = "BROKER_SKIP_MIGRATE", .kind = K_FLAG1, .offset = FIELD(skip_migrate, bool),
	  .help = "exactly 1 skips the database migrations at start-up" },
	{ .env = "EXPECTED_MIGRATION", .kind = K_STR, .offset = FIELD(expected_migration, char *),
	  .help = "accepted for compatibility but unsupported: meshd has no drizzle migration table" },
	{ .env = "DB_PING_INTERVAL_SECONDS", INT_(db_ping_interval_seconds), .def = "30", POS,
	  .help = "database health ping period while the database is up" },
	{ .env = "STATUS_TTL_SECONDS", INT_(status_ttl_seconds), .def = "60", POS,
	  .help = "\"working\" falls back to \"idle\" after this long without an update" },
	{ .env = "HOOK_FRESH_WINDOW_SECONDS", INT_(hook_fresh_window_seconds), .def = "30", POS,
	  .help = "how long a hook-sourced status counts as fresh" },
	{ .env = "MAX_CONNECTIONS_PER_MESH", INT_(max_connections_per_mesh), .def = "100", POS,
	  .help = "online and in-grace presences allowed per mesh" },
	{ .env = "MAX_MESSAGE_BYTES", SIZE_(max_message_bytes), .def = "65536", POS,
	  .help = "largest send payload and HTTP request body" },
	{ .env = "HOOK_RATE_LIMIT_PER_MIN", INT_(hook_rate_limit_per_min), .def = "30", POS,
	  .help = "hook status token bucket: capacity and refill per minute" },
	{ .env = "BROKER_INVITE_V2_ENABLED", .kind = K_FLAG1, .offset = FIELD(invite_v2_enabled, bool),
	  .help = "exactly 1 enables the invite v2 claim endpoint (otherwise it answers 501)" },
	{ .env = "GIT_SHA", .kind = K_STR, .offset = FIELD(git_sha, char *),
	  .help = "gitSha reported by /health (unset: git rev-parse, else \"unknown\")" },
	{ .env = "BROKER_WORKERS", INT_(workers), .dyn = DYN_CPUS, .min = 1, .max = MAX_WORKERS,
	  .help = "worker threads" },
	{ .env = "SEND_RATE_BURST", INT_(send_rate_burst), .def = "10", NONNEG,
	  .help = "send token bucket capacity per member; 0 = unlimited" },
	{ .env = "SEND_RATE_LIMIT_PER_MIN", INT_(send_rate_limit_per_min), .def = "60", NONNEG,
	  .help = "send token bucket refill per minute per member; 0 = unlimited" },
	{ .env = "LEASE_GRACE_SECONDS", INT_(lease_grace_seconds), .def = "90", POS,
	  .help = "how long a closed connection's presence waits for a reattach" },
	{ .env = "CLAIM_LEASE_SECONDS", INT_(claim_lease_seconds), .def = "30", POS,
	  .help = "delivery claim lease on a queued message" },
	{ .env = "REDELIVERY_MAX_ATTEMPTS", INT_(redelivery_max_attempts), .def = "5", NONNEG,
	  .help = "timer redeliveries of an un-acked push, to a connection that has sent a"
		  " client_ack: after the lease, then at doubling intervals; 0 = only on the"
		  " reference's triggers (connections that never ack get only those)" },
	{ .env = "HELLO_DEADLINE_SECONDS", INT_(hello_deadline_seconds), .def = "30", POS,
	  .help = "time allowed between the upgrade and the hello (then close 1008)" },
	{ .env = "PING_INTERVAL_SECONDS", INT_(ping_interval_seconds), .def = "30", POS,
	  .help = "WebSocket ping period" },
	{ .env = "PONG_TIMEOUT_SECONDS", INT_(pong_timeout_seconds), .def = "75", POS,
	  .help = "a connection whose last pong is older than this is terminated" },
	{ .env = "PRESENCE_STALE_SECONDS", INT_(presence_stale_seconds), .def = "90", POS,
	  .help = "a presence row whose last_ping_at is older than this is marked"
		  " disconnected, whichever meshd wrote it (checked every third of it);"
		  " at least twice PING_INTERVAL_SECONDS, since a heartbeat is a pong" },
	{ .env = "TTL_SWEEP_INTERVAL_SECONDS", INT_(ttl_sweep_interval_seconds), .def = "15", POS,
	  .help = "period of the status TTL and expired-claim sweeps" },
	{ .env = "PENDING_STATUS_TTL_SECONDS", INT_(pending_status_ttl_seconds), .def = "10", POS,
	  .help = "lifetime of a hook status that arrived before its presence" },
	{ .env = "CLAUDE_PROJECTS_DIR", .kind = K_STR, .offset = FIELD(claude_projects_dir, char *),
	  .dyn = DYN_HOME_PROJECTS, .metavar = "DIR",
	  .help = "Claude Code transcripts read by JSONL status inference; empty = none" },
	{ .env = "WS_MAX_MESSAGE_BYTES", SIZE_(ws_max_message_bytes), .def = "16777216", POS,
	  .help = "largest WebSocket message; a larger one closes the connection with 1009" },
	{ .env = "WS_HELLO_MAX_MESSAGE_BYTES", SIZE_(ws_hello_max_message_bytes), .def = "65536", POS,
	  .help = "largest WebSocket message before the handshake is done (a hello needs a few"
		  " hundred bytes); a larger one closes the connection with 1009" },
	{ .env = "WS_PARTIAL_BUDGET_BYTES", SIZE_(ws_partial_budget_bytes), .def = "268435456", NONNEG,
	  .help = "bytes of unfinished WebSocket messages and HTTP bodies the broker holds at"
		  " once, shared evenly by the workers; the message that crosses its worker's"
		  " share closes its connection with 1009 message_budget, the body gets 503;"
		  " 0 = no bound" },
	{ .env = "CONN_MAX_OUTPUT_BYTES", SIZE_(conn_max_output_bytes), .def = "8388608", POS,
	  .help = "bound on one connection's unsent output" },
	{ .env = "QUEUE_DEPTH_INTERVAL_SECONDS", INT_(queue_depth_interval_seconds), .def = "30", POS,
	  .help = "broker_queue_depth refresh period" },
	{ .env = "DB_MAX_PENDING_JOBS", INT_(db_max_pending_jobs), .def = "100000", POS,
	  .help = "rows of writes held while the database is down; past this, new ones fail at once" },
	{ .env = "DB_MAX_PENDING_BYTES", SIZE_(db_max_pending_bytes), .def = "268435456", POS,
	  .help = "bytes of writes held while the database is down (their parameters and the"
		  " ciphertexts a batch keeps for its pushes); past this, new ones fail at once" },
	{ .env = "SHUTDOWN_TIMEOUT_SECONDS", INT_(shutdown_timeout_seconds), .def = "5", POS,
	  .help = "how long shutdown waits for work in flight" },
	{ .env = "MESHD_LOG_LEVEL", .kind = K_LOGLEVEL, .offset = FIELD(log_level, enum log_level),
	  .def = "info", .help = "least severe level logged: debug, info, warn or error" },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Longest flag name, "--" included, plus NUL. */
#define FLAG_MAX 64

static void fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void flag_name(const struct setting *e, char *buf, size_t n)
{
	size_t i = 0;

	buf[i++] = '-';
	buf[i++] = '-';
	for (const char *p = e->env; *p && i + 1 < n; p++)
		buf[i++] = *p == '_' ? '-' : (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	buf[i] = '\0';
}

/* Matches `name` (without "--", `len` bytes, not NUL-terminated) against
 * the flag derived from each variable name. */
static const struct setting *find_flag(const char *name, size_t len)
{
	char buf[FLAG_MAX];

	for (size_t i = 0; i < NSETTINGS; i++) {
		flag_name(&settings[i], buf, sizeof(buf));
		if (strlen(buf + 2) == len && memcmp(buf + 2, name, len) == 0)
			return &settings[i];
	}
	return NULL;
}

/* Quotes user input for an error line: at most 64 bytes shown, and control
 * characters, quotes and non-ASCII escaped, so the message stays one
 * printable line whatever the value holds. */
static void quote(const char *v, char *buf, size_t n)
{
	size_t o = 0, shown = 0;

	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)v; *p; p++, shown++) {
		if (shown == 64 || o + 8 >= n) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)*p;
		} else if (*p < 0x20 || *p >= 0x7f) {
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
		} else {
			buf[o++] = (char)*p;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

enum num { NUM_OK, NUM_SYNTAX, NUM_LOW, NUM_HIGH };

/* Decimal digits only: strtoll would accept a sign and leading spaces,
 * which the strict start-up check must refuse.  Leading zeros are
 * fine ("007" is 7, as Number() reads it). */
static enum num parse_num(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;
	bool big = false;

	if (*s == '\0')
		return NUM_SYNTAX;
	for (const char *p = s; *p; p++) {
		int d = *p - '0';

		if (d < 0 || d > 9)
			return NUM_SYNTAX;
		/* Stop accumulating past max rather than overflow, but keep
		 * scanning so "99999999999x" is still a syntax error. */
		if (big)
			continue;
		if (v > (max - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	if (big)
		return NUM_HIGH;
	if (v < min)
		return NUM_LOW;
	*out = v;
	return NUM_OK;
}

static void describe_int(const struct setting *e, enum num why, char *buf, size_t n)
{
	const char *what;

	if (e->max != INT_MAX || e->min > 1) {
		snprintf(buf, n, "an integer from %lld to %lld", e->min, e->max);
		return;
	}
	what = e->min == 1 ? "a positive integer" : "a non-negative integer";
	if (why == NUM_HIGH)
		snprintf(buf, n, "%s no greater than %d", what, INT_MAX);
	else
		snprintf(buf, n, "%s", what);
}

static void *field(struct config *c, const struct setting *e)
{
	return (char *)c + e->offset;
}

static void set_string(struct config *c, const struct setting *e, const char *v)
{
	char **p = field(c, e);

	xfree(*p);
	*p = xstrdup(v);
}

/* Stores value `v` of setting `e`; `who` names where it came from (the
 * variable or the flag) for the error line. */
static bool apply(struct config *c, const struct setting *e, const char *who, const char *v,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

static bool apply(struct config *c, const struct setting *e, const char *who, const char *v,
		  char *err, size_t errlen)
{
	char q[64 * 4 + 8];
	char what[96];
	long long n = 0;
	enum num r;
	enum log_level level;

	quote(v, q, sizeof(q));
	switch (e->kind) {
	case K_INT:
	case K_SIZE:
		r = parse_num(v, e->min, e->max, &n);
		if (r != NUM_OK) {
			describe_int(e, r, what, sizeof(what));
			fail(err, errlen, "meshd: invalid %s=%s: expected %s", who, q, what);
			return false;
		}
		if (e->kind == K_INT)
			*(int *)field(c, e) = (int)n;
		else
			*(size_t *)field(c, e) = (size_t)n;
		return true;
	case K_FLAG1:
		*(bool *)field(c, e) = strcmp(v, "1") == 0;
		return true;
	case K_STR:
		set_string(c, e, v);
		return true;
	case K_STR_NONEMPTY:
		if (*v == '\0') {
			fail(err, errlen, "meshd: invalid %s=\"\": expected a non-empty value", who);
			return false;
		}
		set_string(c, e, v);
		return true;
	case K_PGURL:
		if (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0) {
			fail(err, errlen,
			     "meshd: invalid %s: expected a URL starting with postgres:// or postgresql://",
			     who);
			return false;
		}
		set_string(c, e, v);
		return true;
	case K_LOGLEVEL:
		if (!log_parse_level(v, &level)) {
			fail(err, errlen, "meshd: invalid %s=%s: expected debug, info, warn or error",
			     who, q);
			return false;
		}
		*(enum log_level *)field(c, e) = level;
		return true;
	}
	return false;
}

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* The default of a DYN_ setting, as a string for apply(); caller frees. */
static char *dynamic_default(enum dyn d)
{
	char buf[16];
	const char *home;
	size_t len;
	char *s;

	switch (d) {
	case DYN_CPUS:
		snprintf(buf, sizeof(buf), "%d", online_cpus());
		return xstrdup(buf);
	case DYN_HOME_PROJECTS:
		/* No HOME, no directory: JSONL inference then finds nothing
		 * and infers idle, as on a broker far from its peers (D8). */
		home = getenv("HOME");
		if (home == NULL || *home == '\0')
			return xstrdup("");
		len = strlen(home);
		while (len > 1 && home[len - 1] == '/')
			len--;
		if (len == 1 && home[0] == '/')
			len = 0;
		s = xmalloc(len + sizeof("/.claude/projects"));
		memcpy(s, home, len);
		memcpy(s + len, "/.claude/projects", sizeof("/.claude/projects"));
		return s;
	case DYN_NONE:
		break;
	}
	return NULL;
}

static void apply_defaults(struct config *c)
{
	char err[256];

	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *e = &settings[i];
		char *dyn = dynamic_default(e->dyn);
		const char *v = dyn ? dyn : e->def;

		/* Defaults are constants of this file (or clamped, for the
		 * CPU count); one failing to parse is a bug here, not input. */
		if (v != NULL && !apply(c, e, e->env, v, err, sizeof(err))) {
			fprintf(stderr, "%s (built-in default)\n", err);
			abort();
		}
		xfree(dyn);
	}
}

static void print_version(FILE *out)
{
	fprintf(out, "meshd %s\n", PACKAGE_VERSION);
}

void config_print_help(FILE *out)
{
	char flag[FLAG_MAX];

	fprintf(out,
		"Usage: meshd [OPTION]...\n"
		"The claudemesh broker.  Each setting is read from its environment variable;\n"
		"the flag overrides it.  Integers are plain decimal digits.\n\n");
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *e = &settings[i];
		const char *mv = e->metavar;

		flag_name(e, flag, sizeof(flag));
		if (mv == NULL) {
			switch (e->kind) {
			case K_INT:
			case K_SIZE: mv = "N"; break;
			case K_PGURL: mv = "URL"; break;
			case K_LOGLEVEL: mv = "LEVEL"; break;
			default: mv = "VALUE"; break;
			}
		}
		if (e->kind == K_FLAG1)
			fprintf(out, "  %s[=1]", flag);
		else
			fprintf(out, "  %s=%s", flag, mv);
		fprintf(out, "  (%s, default ", e->env);
		if (e->dyn == DYN_CPUS)
			fprintf(out, "online CPUs, here %d, at most %d", online_cpus(), MAX_WORKERS);
		else if (e->dyn == DYN_HOME_PROJECTS)
			fprintf(out, "$HOME/.claude/projects, empty if HOME is unset");
		else if (e->def != NULL)
			fprintf(out, "%s", e->def);
		else
			fputs(e->kind == K_FLAG1 ? "off" : "unset", out);
		fprintf(out, ")\n      %s\n", e->help);
	}
	fprintf(out,
		"  -h, --help     print this help and exit\n"
		"  -V, --version  print the version and exit\n");
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *e = &settings[i];

		if (e->kind == K_STR || e->kind == K_STR_NONEMPTY || e->kind == K_PGURL) {
			char **p = field(c, e);

			xfree(*p);
			*p = NULL;
		}
	}
}

/* Reads argv into from_flag[] (last occurrence wins) without parsing the
 * values yet, so that a flag can replace its variable before the variable
 * is judged. */
static enum config_status scan_argv(int argc, char **argv, const char **from_flag, FILE *out,
				    char *err, size_t errlen)
{
	char q[64 * 4 + 8];
	bool options_done = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options_done || a[0] != '-' || a[1] == '\0') {
			quote(a, q, sizeof(q));
			fail(err, errlen, "meshd: unexpected argument %s", q);
			return CONFIG_INVALID;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			config_print_help(out);
			return CONFIG_EXIT;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			print_version(out);
			return CONFIG_EXIT;
		}

		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct setting *e = a[1] == '-' ? find_flag(name, len) : NULL;

		if (e == NULL && eq != NULL && a[1] == '-' &&
		    ((len == 4 && memcmp(name, "help", 4) == 0) ||
		     (len == 7 && memcmp(name, "version", 7) == 0))) {
			fail(err, errlen, "meshd: option --%.*s takes no value", (int)len, name);
			return CONFIG_INVALID;
		}
		if (e == NULL) {
			/* Name only: what follows '=' may be a password. */
			char *opt = xstrndup(a, eq ? (size_t)(eq - a) : strlen(a));

			quote(opt, q, sizeof(q));
			xfree(opt);
			fail(err, errlen, "meshd: unknown option %s", q);
			return CONFIG_INVALID;
		}
		if (eq != NULL)
			from_flag[e - settings] = eq + 1;
		else if (e->kind == K_FLAG1)
			from_flag[e - settings] = "1";
		else if (i + 1 < argc)
			from_flag[e - settings] = argv[++i];
		else {
			fail(err, errlen, "meshd: option %s requires a value", a);
			return CONFIG_INVALID;
		}
	}
	return CONFIG_OK;
}

enum config_status config_load(struct config *c, int argc, char **argv, FILE *out, char *err,
			       size_t errlen)
{
	const char *from_flag[NSETTINGS] = { 0 };
	char flag[FLAG_MAX];
	enum config_status st;

	memset(c, 0, sizeof(*c));
	if (errlen > 0)
		err[0] = '\0';

	st = scan_argv(argc, argv, from_flag, out, err, errlen);
	if (st != CONFIG_OK)
		return st;

	apply_defaults(c);
	for (size_t i = 0; i < NSETTINGS; i++) {
		const char *v = getenv(settings[i].env);

		if (from_flag[i] == NULL && v != NULL &&
		    !apply(c, &settings[i], settings[i].env, v, err, errlen))
			goto invalid;
	}
	for (size_t i = 0; i < NSETTINGS; i++) {
		if (from_flag[i] == NULL)
			continue;
		flag_name(&settings[i], flag, sizeof(flag));
		if (!apply(c, &settings[i], flag, from_flag[i], err, errlen))
			goto invalid;
	}
	/* Heartbeats are written once per pong: a window shorter than two ping
	 * intervals would sweep live presences, this process's included. */
	if ((long long)c->presence_stale_seconds < 2LL * c->ping_interval_seconds) {
		fail(err, errlen, "meshd: invalid PRESENCE_STALE_SECONDS=%d: expected at least"
		     " twice PING_INTERVAL_SECONDS (%d)", c->presence_stale_seconds,
		     c->ping_interval_seconds);
		goto invalid;
	}
	return CONFIG_OK;

invalid:
	config_free(c);
	return CONFIG_INVALID;
}
