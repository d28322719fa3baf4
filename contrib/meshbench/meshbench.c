/* meshbench — command line and the results report.  See README.md.
 * Thread: main.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "meshbench.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: meshbench [options] SCENARIO ARGS...\n"
"\n"
"scenarios:\n"
"  dm-burst P M      P peers each send M DMs to random peers, W un-acked at a time\n"
"  dm-rate P R T     open loop: R DMs/s in total for T s over P peers\n"
"  hook R T [P D]    R POST /hook/set-status per second for T s (status idle, round\n"
"                    robin over the peers) beside dm-rate P D T (100 peers, 1000/s)\n"
"  broadcast P K     one of P peers sends K '*' broadcasts; fan-out latency\n"
"  join-storm P      P peers hello at once; until all acked + all peer_joined seen\n"
"  idle C            C idle peers; broker RSS per connection\n"
"  ceiling [P M]     WebSocket echo (P clients x M messages, default 100 x 1000)\n"
"                    and PostgreSQL pipelined inserts on this machine\n"
"  report FILE       summary of a results file (JSON lines) against the targets\n"
"\n"
"options:\n"
"  --db URL          database the broker uses (default $DATABASE_URL); required\n"
"  --host H          broker address (127.0.0.1)      --port N   broker port (7900)\n"
"  --broker-pid PID  sample /proc/PID (RSS, CPU, fds) every 100 ms\n"
"  --db-pid PID      PostgreSQL's postmaster: report its and its children's CPU\n"
"  --json FILE       append one JSON line per scenario\n"
"  --plot FILE.svg   latency CDF (needs gnuplot)\n"
"  --seed N          workload PRNG seed (default: from the clock; printed)\n"
"  --window W        dm-burst/ceiling: un-acked sends per peer (1)\n"
"  --timeout S       bound of each phase in seconds (120)\n"
"  --payload N       DM plaintext bytes (128)\n"
"  --priority P      now | next | low (next)\n"
"  --interval MS     broadcast: one every MS ms; 0 = the next on ack (50)\n"
"  --no-client-ack   do not client_ack pushes (the daemon does)\n"
"  --full-crypto     mc_encrypt_dm/mc_decrypt_dm for every DM (no per-pair key cache)\n"
"  --user-rx-clock   receive time = when meshbench reads (default: kernel timestamp)\n"
"  --full-parse      parse system pushes with jansson too (no fast path)\n"
"  --hold S          idle: seconds the peers stay connected (15: past jemalloc's\n"
"                    10 s decay, so RSS is what the broker keeps)\n"
"  --no-hello        idle: WebSocket upgrade only, no hello (the broker closes such\n"
"                    sockets after HELLO_DEADLINE_SECONDS, 30 s)\n"
"  --per-child N     idle: connections per forked process (9000)\n"
"  --mesh-size N     idle: peers per mesh, 0 = one mesh for all (100: the default\n"
"                    MAX_CONNECTIONS_PER_MESH, and no O(C^2) peer_joined storm)\n"
"  --linger MS       after completion, listen MS ms more for duplicates (300)\n"
"  --settle S        dm: then wait up to S s for every queue row to be delivered (30)\n"
"  --hook-conns N    hook: keep-alive HTTP connections, one request in flight each (4)\n"
"  --pg-seconds S    ceiling: seconds per insert batch size (2)\n"
"  --cleanup         delete the seeded mesh afterwards (cascades)\n"
"  --quiet           less progress on stderr\n"
"\n"
"The broker must run with SEND_RATE_LIMIT_PER_MIN=0, and with\n"
"MAX_CONNECTIONS_PER_MESH >= P for scenarios with more than 100 peers; hook with a\n"
"HOOK_RATE_LIMIT_PER_MIN above R*T/P, each peer's posts (run uses 1000000).\n"
"Exit status: 0 completed, 1 timed out or lost messages, 2 usage or set-up error.\n");
}

/* -------------------------------------------------------------------- main */

static bool parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return false;
	v = strtoul(s, &end, 10);
	if (*end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	*out = strtod(s, &end);
	return !*end && *out >= 0;
}

enum {
	OPT_DB = 256, OPT_HOST, OPT_PORT, OPT_PID, OPT_JSON, OPT_PLOT, OPT_SEED, OPT_WINDOW,
	OPT_TIMEOUT, OPT_PAYLOAD, OPT_PRIORITY, OPT_INTERVAL, OPT_NO_ACK, OPT_FULL_CRYPTO,
	OPT_USER_RX, OPT_FULL_PARSE, OPT_HOLD, OPT_PER_CHILD, OPT_LINGER, OPT_PG_SECONDS,
	OPT_CLEANUP, OPT_QUIET, OPT_MESH_SIZE, OPT_DB_PID, OPT_SETTLE, OPT_NO_HELLO,
	OPT_HOOK_CONNS,
};

static const struct option long_opts[] = {
	{ "db", required_argument, NULL, OPT_DB },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "broker-pid", required_argument, NULL, OPT_PID },
	{ "db-pid", required_argument, NULL, OPT_DB_PID },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "payload", required_argument, NULL, OPT_PAYLOAD },
	{ "priority", required_argument, NULL, OPT_PRIORITY },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "no-client-ack", no_argument, NULL, OPT_NO_ACK },
	{ "full-crypto", no_argument, NULL, OPT_FULL_CRYPTO },
	{ "user-rx-clock", no_argument, NULL, OPT_USER_RX },
	{ "full-parse", no_argument, NULL, OPT_FULL_PARSE },
	{ "hold", required_argument, NULL, OPT_HOLD },
	{ "per-child", required_argument, NULL, OPT_PER_CHILD },
	{ "linger", required_argument, NULL, OPT_LINGER },
	{ "pg-seconds", required_argument, NULL, OPT_PG_SECONDS },
	{ "cleanup", no_argument, NULL, OPT_CLEANUP },
	{ "no-hello", no_argument, NULL, OPT_NO_HELLO },
	{ "settle", required_argument, NULL, OPT_SETTLE },
	{ "mesh-size", required_argument, NULL, OPT_MESH_SIZE },
	{ "hook-conns", required_argument, NULL, OPT_HOOK_CONNS },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static bool bad(const char *what)
{
	fprintf(stderr, "meshbench: bad value for %s (see --help)\n", what);
	return false;
}

static bool parse_opts(int argc, char **argv, struct mb_opts *o)
{
	unsigned u;
	double d;
	int c;

	while ((c = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB: o->db_url = optarg; break;
		case OPT_HOST: o->host = optarg; break;
		case OPT_PORT:
			if (!parse_uint(optarg, 65535, &u) || !u)
				return bad("--port");
			o->port = (int)u;
			break;
		case OPT_PID:
			if (!parse_uint(optarg, 0x7fffffff, &u) || !u)
				return bad("--broker-pid");
			o->broker_pid = (pid_t)u;
			break;
		case OPT_DB_PID:
			if (!parse_uint(optarg, 0x7fffffff, &u) || !u)
				return bad("--db-pid");
			o->db_pid = (pid_t)u;
			break;
		case OPT_JSON: o->json_path = optarg; break;
		case OPT_PLOT: o->plot_path = optarg; break;
		case OPT_SEED: {
			char *end;

			o->seed = strtoull(optarg, &end, 10);
			if (!*optarg || *end)
				return bad("--seed");
			break;
		}
		case OPT_WINDOW:
			if (!parse_uint(optarg, 100000, &o->window) || !o->window)
				return bad("--window");
			break;
		case OPT_TIMEOUT:
			if (!parse_double(optarg, &o->timeout_s) || o->timeout_s <= 0)
				return bad("--timeout");
			break;
		case OPT_PAYLOAD:
			if (!parse_uint(optarg, 3000, &o->payload))
				return bad("--payload (at most 3000)");
			break;
		case OPT_PRIORITY:
			if (strcmp(optarg, "now") && strcmp(optarg, "next") && strcmp(optarg, "low"))
				return bad("--priority");
			o->priority = optarg;
			break;
		case OPT_INTERVAL:
			if (!parse_uint(optarg, 3600000, &o->interval_ms))
				return bad("--interval");
			break;
		case OPT_NO_ACK: o->client_ack = false; break;
		case OPT_FULL_CRYPTO: o->full_crypto = true; break;
		case OPT_USER_RX: o->user_rx_clock = true; break;
		case OPT_FULL_PARSE: o->full_parse = true; break;
		case OPT_HOLD:
			if (!parse_double(optarg, &o->hold_s))
				return bad("--hold");
			break;
		case OPT_PER_CHILD:
			if (!parse_uint(optarg, 19000, &o->per_child) || !o->per_child)
				return bad("--per-child (1..19000)");
			break;
		case OPT_LINGER:
			if (!parse_uint(optarg, 600000, &o->linger_ms))
				return bad("--linger");
			break;
		case OPT_PG_SECONDS:
			if (!parse_double(optarg, &d) || d <= 0)
				return bad("--pg-seconds");
			o->pg_seconds = d;
			break;
		case OPT_CLEANUP: o->cleanup = true; break;
		case OPT_NO_HELLO: o->no_hello = true; break;
		case OPT_SETTLE:
			if (!parse_double(optarg, &o->settle_s))
				return bad("--settle");
			break;
		case OPT_MESH_SIZE:
			if (!parse_uint(optarg, 10000000, &o->mesh_size))
				return bad("--mesh-size");
			break;
		case OPT_HOOK_CONNS:
			if (!parse_uint(optarg, 64, &o->hook_conns) || !o->hook_conns)
				return bad("--hook-conns (1..64)");
			break;
		case OPT_QUIET: o->quiet = true; break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	return true;
}

/* The positional numbers of a scenario: exactly n of them (n_opt optional);
 * with t, the one at t_at is seconds and may be fractional (T). */
static bool args(int argc, char **argv, int n, int n_opt, unsigned *v, double *t, int t_at)
{
	if (argc < n || argc > n + n_opt)
		return false;
	for (int i = 0; i < argc; i++) {
		if (t && i == t_at) {
			if (!parse_double(argv[i], t) || *t <= 0)
				return false;
			continue;
		}
		if (!parse_uint(argv[i], 10000000, &v[i]))
			return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct mb_opts o = {
		.host = "127.0.0.1", .port = 7900, .window = 1, .timeout_s = 120,
		.payload = 128, .priority = "next", .interval_ms = 50, .client_ack = true,
		.hold_s = 15, .per_child = 9000, .mesh_size = 100, .linger_ms = 300, .pg_seconds = 2,
		.settle_s = 30, .hook_conns = 4,
	};
	unsigned v[4] = { 0, 0, 0, 0 };
	double t = 0;
	json_t *out = NULL;
	const char *sc;
	bool seeded = false;
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--seed") == 0)
			seeded = true;
	if (!parse_opts(argc, argv, &o))
		return 2;
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	sc = argv[0];
	argc--;
	argv++;
	if (strcmp(sc, "report") == 0) {
		if (argc != 1) {
			usage(stderr);
			return 2;
		}
		return mb_report(argv[0]);
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "meshbench: libsodium failed to initialise\n");
		return 2;
	}
	if (!seeded)
		o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!o.db_url)
		o.db_url = getenv("DATABASE_URL");
	if (!o.db_url || !*o.db_url) {
		fprintf(stderr, "meshbench: --db URL (or DATABASE_URL) is required: meshbench seeds"
			" its mesh and members with SQL\n");
		return 2;
	}
	if (!mb_crypto_selftest(NULL)) {
		fprintf(stderr, "meshbench: crypto self-test failed (precomputed keys disagree with"
			" meshclient)\n");
		return 2;
	}
	fprintf(stderr, "meshbench: %s; seed %llu. The broker must run with"
		" SEND_RATE_LIMIT_PER_MIN=0 (every other setting at its default, except"
		" MAX_CONNECTIONS_PER_MESH >= peers%s).\n", sc, (unsigned long long)o.seed,
		strcmp(sc, "hook") == 0 ? " and HOOK_RATE_LIMIT_PER_MIN above any peer's posts" : "");

	if (strcmp(sc, "dm-burst") == 0 && args(argc, argv, 2, 0, v, NULL, 0))
		st = mb_dm_burst(&o, v[0], v[1], &out);
	else if (strcmp(sc, "dm-rate") == 0 && args(argc, argv, 3, 0, v, &t, 2))
		st = mb_dm_rate(&o, v[0], v[1], t, &out);
	else if (strcmp(sc, "hook") == 0 && argc != 3 && args(argc, argv, 2, 2, v, &t, 1))
		st = mb_hook(&o, v[0], t, argc > 2 ? v[2] : 100, argc > 2 ? v[3] : 1000, &out);
	else if (strcmp(sc, "broadcast") == 0 && args(argc, argv, 2, 0, v, NULL, 0))
		st = mb_broadcast(&o, v[0], v[1], &out);
	else if (strcmp(sc, "join-storm") == 0 && args(argc, argv, 1, 0, v, NULL, 0))
		st = mb_join_storm(&o, v[0], &out);
	else if (strcmp(sc, "idle") == 0 && args(argc, argv, 1, 0, v, NULL, 0))
		st = mb_idle(&o, v[0], &out);
	else if (strcmp(sc, "ceiling") == 0 && (argc == 0 || args(argc, argv, 2, 0, v, NULL, 0)))
		st = mb_ceiling(&o, argc ? v[0] : 100, argc ? v[1] : 1000, &out);
	else {
		usage(stderr);
		return 2;
	}
	if (out) {
		json_object_set_new(out, "exit_status", json_integer(st));
		if (o.json_path && !mb_json_append(o.json_path, out) && st == 0)
			st = 2;
		json_decref(out);
	}
	return st;
}
