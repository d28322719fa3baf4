/* meshctl — an operator's tool for a self-hosted meshd: meshes, invites and
 * members in the reference schema, written as the reference's web app
 * writes them, so a database shared with it keeps working.
 *
 *   meshctl mesh create NAME [--slug S] [--key-file PATH] [--owner-user ID]
 *   meshctl mesh list
 *   meshctl invite create MESH --key-file PATH [--role member|admin]
 *           [--max-uses N] [--expires 7d|24h|90m|3600s] [--v2] [--broker-url URL]
 *   meshctl invite list MESH | invite revoke ID
 *   meshctl member list MESH | member revoke ID
 *
 * Settings: DATABASE_URL (required), MESHD_PUBLIC_URL (the broker URL put
 * in v1 links; default ws://localhost:7900/ws).  Exit status: 0 done, 1 an
 * operational error (database, key file, not found), 2 a usage error.
 * Nothing secret is printed: the owner's secret key goes to a 0600 file
 * only (never to the database), and the mesh root key stays in the
 * database (a v1 link carries it, as the reference's links do).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "meshd/id.h"
#include "meshd/invite.h"

enum { EXIT_OPERATIONAL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
	"usage: meshctl COMMAND [ARGS]\n"
	"\n"
	"  mesh create NAME [--slug S] [--key-file PATH] [--owner-user ID]\n"
	"      create a mesh with a fresh owner keypair and root key; the owner\n"
	"      secret key is written to PATH (default ./<slug>.owner.key, mode 0600)\n"
	"  mesh list\n"
	"  invite create MESH --key-file PATH [--role member|admin] [--max-uses N]\n"
	"      [--expires 7d|24h|90m|3600s] [--v2] [--broker-url URL]\n"
	"      print an ic://join/<token> link (v1) or a claim code (--v2)\n"
	"  invite list MESH\n"
	"  invite revoke ID\n"
	"  member list MESH\n"
	"  member revoke ID\n"
	"\n"
	"MESH is a mesh id or slug.  DATABASE_URL names the database;\n"
	"MESHD_PUBLIC_URL the broker URL v1 links carry (ws://localhost:7900/ws).\n"
	"Exit status: 0 done, 1 operational error, 2 usage error.\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("meshctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n(meshctl --help for usage)\n", stderr);
	va_end(ap);
	return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("meshctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_OPERATIONAL;
}

static PGconn *db;

/* Runs sql with n text parameters; NULL (reported) on error. */
static PGresult *query(const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fprintf(stderr, "meshctl: database: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

/* The mesh named by id or slug: its id, slug, owner pubkey, root key and
 * owner user, or NULL (reported). */
static PGresult *find_mesh(const char *name)
{
	const char *p[] = { name };
	PGresult *r = query("SELECT id, slug, owner_pubkey, root_key, owner_user_id FROM mesh.mesh"
			    " WHERE (id = $1 OR slug = $1) AND archived_at IS NULL"
			    " ORDER BY (id = $1) DESC LIMIT 1", 1, p);
	if (r && PQntuples(r) == 0) {
		fprintf(stderr, "meshctl: no mesh %s\n", name);
		PQclear(r);
		return NULL;
	}
	return r;
}

static void print_rows(PGresult *r)
{
	for (int i = 0; i < PQntuples(r); i++)
		for (int k = 0; k < PQnfields(r); k++)
			printf("%s%s", PQgetisnull(r, i, k) ? "-" : PQgetvalue(r, i, k),
			       k + 1 < PQnfields(r) ? "\t" : "\n");
}

/* ---- keys ------------------------------------------------------------------ */

static int write_key_file(const char *path, const unsigned char sk[crypto_sign_SECRETKEYBYTES])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return fail("%s: %s%s", path, strerror(errno),
			    errno == EEXIST ? " (refusing to overwrite a key)" : "");
	char hex[2 * crypto_sign_SECRETKEYBYTES + 2];
	sodium_bin2hex(hex, sizeof(hex), sk, crypto_sign_SECRETKEYBYTES);
	strcat(hex, "\n");
	ssize_t n = write(fd, hex, strlen(hex));
	sodium_memzero(hex, sizeof(hex));
	if (n != (ssize_t)(2 * crypto_sign_SECRETKEYBYTES + 1) || close(fd) != 0)
		return fail("%s: cannot write the key", path);
	return 0;
}

static int read_key_file(const char *path, unsigned char sk[crypto_sign_SECRETKEYBYTES])
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail("%s: %s", path, strerror(errno));
	char hex[2 * crypto_sign_SECRETKEYBYTES + 8] = "";
	bool ok = fgets(hex, sizeof(hex), f) != NULL;
	fclose(f);
	size_t n = 0;
	hex[strcspn(hex, "\r\n")] = '\0';
	ok = ok && sodium_hex2bin(sk, crypto_sign_SECRETKEYBYTES, hex, strlen(hex), NULL, &n, NULL) == 0 &&
	     n == crypto_sign_SECRETKEYBYTES;
	sodium_memzero(hex, sizeof(hex));
	return ok ? 0 : fail("%s: not an owner key file (128 hex characters)", path);
}

/* ---- mesh ------------------------------------------------------------------ */

static void slugify(const char *name, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *p = name; *p && n + 1 < cap; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[n++] = c;
		else if (n > 0 && out[n - 1] != '-')
			out[n++] = '-';
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	out[n] = '\0';
}

static int mesh_create(int argc, char **argv)
{
	static const struct option opts[] = { { "slug", required_argument, NULL, 's' },
					       { "key-file", required_argument, NULL, 'k' },
					       { "owner-user", required_argument, NULL, 'u' },
					       { NULL, 0, NULL, 0 } };
	const char *slug_opt = NULL, *key_file = NULL, *owner = "meshctl";
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 's')
			slug_opt = optarg;
		else if (o == 'k')
			key_file = optarg;
		else if (o == 'u')
			owner = optarg;
		else
			return usage("mesh create: unknown option");
	}
	if (optind + 1 != argc || !*argv[optind])
		return usage("mesh create takes one NAME");
	const char *name = argv[optind];
	char slug[64], path[128];
	slugify(slug_opt ? slug_opt : name, slug, sizeof(slug));
	if (!*slug)
		return usage("mesh create: NAME or --slug must contain a letter or digit");
	if (!key_file) {
		snprintf(path, sizeof(path), "%s.owner.key", slug);
		key_file = path;
	}
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], root[32];
	crypto_sign_keypair(pk, sk);
	randombytes_buf(root, sizeof(root));
	char pk_hex[65], id[ID_LEN + 1];
	sodium_bin2hex(pk_hex, sizeof(pk_hex), pk, sizeof(pk));
	char *root_b64 = b64url_encode(root, sizeof(root));
	id_new(id);
	/* The key file first: a mesh whose owner key was lost could mint nothing. */
	int rc = write_key_file(key_file, sk);
	sodium_memzero(sk, sizeof(sk));
	if (rc != 0) {
		free(root_b64);
		return rc;
	}
	const char *p[] = { id, name, slug, owner, pk_hex, root_b64 };
	PGresult *r = query("WITH u AS (INSERT INTO public.\"user\" (id, name, email)"
			    " SELECT $4, $4, $4 || '@meshctl.invalid' WHERE $4 = 'meshctl'"
			    " ON CONFLICT DO NOTHING)"
			    " INSERT INTO mesh.mesh (id, name, slug, owner_user_id, owner_pubkey, root_key)"
			    " VALUES ($1, $2, $3, $4, $5, $6)", 6, p);
	free(root_b64);
	if (!r) {
		unlink(key_file);
		return EXIT_OPERATIONAL;
	}
	PQclear(r);
	printf("%s\t%s\t%s\n", id, slug, pk_hex);
	fprintf(stderr, "meshctl: owner secret key written to %s (keep it: invites are signed with it)\n",
		key_file);
	return 0;
}

static int mesh_list(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage("mesh list takes no arguments");
	PGresult *r = query("SELECT ms.id, ms.slug, ms.name, coalesce(ms.owner_pubkey, '-'),"
			    " (SELECT count(*) FROM mesh.member m WHERE m.mesh_id = ms.id"
			    " AND m.revoked_at IS NULL)"
			    " FROM mesh.mesh ms WHERE ms.archived_at IS NULL ORDER BY ms.created_at", 0, NULL);
	if (!r)
		return EXIT_OPERATIONAL;
	print_rows(r);
	PQclear(r);
	return 0;
}

/* ---- invite ---------------------------------------------------------------- */

/* "7d", "24h", "90m", "3600s" or plain seconds; 0 when invalid. */
static long long parse_duration(const char *s)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || n <= 0 || end == s)
		return 0;
	long long unit = 1;
	if (*end == 'd')
		unit = 86400;
	else if (*end == 'h')
		unit = 3600;
	else if (*end == 'm')
		unit = 60;
	else if (*end != 's' && *end != '\0')
		return 0;
	if (*end && end[1])
		return 0;
	if (n > 3650LL * 86400 / unit)
		return 0;
	return n * unit;
}

static int invite_create(int argc, char **argv)
{
	static const struct option opts[] = { { "key-file", required_argument, NULL, 'k' },
					       { "role", required_argument, NULL, 'r' },
					       { "max-uses", required_argument, NULL, 'n' },
					       { "expires", required_argument, NULL, 'e' },
					       { "broker-url", required_argument, NULL, 'b' },
					       { "v2", no_argument, NULL, '2' },
					       { NULL, 0, NULL, 0 } };
	const char *key_file = NULL, *role = "member", *broker = getenv("MESHD_PUBLIC_URL");
	long long ttl = 7 * 86400, max_uses = 1;
	bool v2 = false;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'k': key_file = optarg; break;
		case 'r': role = optarg; break;
		case 'n':
			max_uses = strtoll(optarg, &end, 10);
			if (*end || max_uses < 1 || max_uses > 1000000)
				return usage("--max-uses must be 1 to 1000000");
			break;
		case 'e':
			if (!(ttl = parse_duration(optarg)))
				return usage("--expires takes 7d, 24h, 90m, 3600s or seconds");
			break;
		case 'b': broker = optarg; break;
		case '2': v2 = true; break;
		default: return usage("invite create: unknown option");
		}
	}
	if (optind + 1 != argc)
		return usage("invite create takes one MESH");
	if (strcmp(role, "member") != 0 && strcmp(role, "admin") != 0)
		return usage("--role is member or admin");
	if (!key_file)
		return usage("invite create needs --key-file (the owner key mesh create wrote)");
	if (!broker || !*broker)
		broker = "ws://localhost:7900/ws";
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	if (read_key_file(key_file, sk) != 0)
		return EXIT_OPERATIONAL;
	char pk_hex[65];
	sodium_bin2hex(pk_hex, sizeof(pk_hex), sk + crypto_sign_SEEDBYTES, crypto_sign_PUBLICKEYBYTES);
	PGresult *m = find_mesh(argv[optind]);
	if (!m) {
		sodium_memzero(sk, sizeof(sk));
		return EXIT_OPERATIONAL;
	}
	int rc = 0;
	const char *mesh_id = PQgetvalue(m, 0, 0), *slug = PQgetvalue(m, 0, 1);
	if (PQgetisnull(m, 0, 2) || strcmp(PQgetvalue(m, 0, 2), pk_hex) != 0 || PQgetisnull(m, 0, 3)) {
		rc = fail("%s: the key in %s is not this mesh's owner key", argv[optind], key_file);
		goto out;
	}
	long long expires = (long long)time(NULL) + ttl;
	char id[ID_LEN + 1], code[13], token_id[ID_LEN + 1], sig[129], exp_text[32], uses[24];
	id_new(id);
	id_new(token_id);
	snprintf(exp_text, sizeof(exp_text), "%lld", expires);
	snprintf(uses, sizeof(uses), "%lld", max_uses);
	char *token = NULL, *capability = NULL;
	if (v2) {
		char code_src[ID_LEN + 1];
		id_new(code_src);
		snprintf(code, sizeof(code), "%.12s", code_src); /* 12 base62 characters */
		char *canonical = invite_v2_canonical(mesh_id, id, expires, role, pk_hex);
		invite_sign(canonical, sk, sig);
		capability = invite_v2_capability(canonical, sig);
		free(canonical);
		token = strdup(token_id); /* unique and unused: a v2 row is found by its code */
	} else {
		json_t *p = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "v", 1, "mesh_id",
				      mesh_id, "mesh_slug", slug, "broker_url", broker, "expires_at",
				      (json_int_t)expires, "mesh_root_key", PQgetvalue(m, 0, 3), "role",
				      role, "owner_pubkey", pk_hex);
		char *canonical = invite_v1_canonical(p);
		invite_sign(canonical, sk, sig);
		free(canonical);
		json_object_set_new(p, "signature", json_string(sig));
		token = invite_v1_token(p);
		json_decref(p);
	}
	const char *params[] = { id, mesh_id, token, uses, role, exp_text, PQgetvalue(m, 0, 4),
				 v2 ? code : NULL, v2 ? "2" : "1", capability };
	PGresult *r = query("INSERT INTO mesh.invite (id, mesh_id, token, max_uses, role, expires_at,"
			    " created_by, code, version, capability_v2)"
			    " VALUES ($1, $2, $3, $4::int, $5::mesh.role,"
			    " to_timestamp($6::bigint) AT TIME ZONE 'UTC', $7, $8, $9::int, $10)",
			    10, params);
	if (!r) {
		rc = EXIT_OPERATIONAL;
	} else {
		PQclear(r);
		if (v2)
			printf("%s\n", code);
		else
			printf("ic://join/%s\n", token);
		fprintf(stderr, "meshctl: invite %s, %s, %lld use%s, expires %s (unix)\n", id, role,
			max_uses, max_uses == 1 ? "" : "s", exp_text);
	}
	free(token);
	free(capability);
out:
	sodium_memzero(sk, sizeof(sk));
	PQclear(m);
	return rc;
}

static int list_of_mesh(int argc, char **argv, const char *what, const char *sql)
{
	if (argc != 2)
		return usage("%s list takes one MESH", what);
	PGresult *m = find_mesh(argv[1]);
	if (!m)
		return EXIT_OPERATIONAL;
	const char *p[] = { PQgetvalue(m, 0, 0) };
	PGresult *r = query(sql, 1, p);
	PQclear(m);
	if (!r)
		return EXIT_OPERATIONAL;
	print_rows(r);
	PQclear(r);
	return 0;
}

static int revoke_row(int argc, char **argv, const char *what, const char *sql)
{
	if (argc != 2)
		return usage("%s revoke takes one ID", what);
	const char *p[] = { argv[1] };
	PGresult *r = query(sql, 1, p);
	if (!r)
		return EXIT_OPERATIONAL;
	bool hit = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (!hit)
		return fail("no live %s %s", what, argv[1]);
	return 0;
}

static int invite_cmd(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "create") == 0)
		return invite_create(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return list_of_mesh(argc, argv, "invite",
				    "SELECT id, version, role, used_count || '/' || max_uses,"
				    " to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
				    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
				    " WHEN expires_at < now() AT TIME ZONE 'UTC' THEN 'expired'"
				    " WHEN used_count >= max_uses THEN 'used' ELSE 'open' END,"
				    " coalesce(code, '-')"
				    " FROM mesh.invite WHERE mesh_id = $1 ORDER BY created_at");
	if (argc >= 1 && strcmp(argv[0], "revoke") == 0)
		return revoke_row(argc, argv, "invite", "UPDATE mesh.invite SET revoked_at = now()"
				  " WHERE id = $1 AND revoked_at IS NULL");
	return usage("invite: create, list or revoke");
}

static int member_cmd(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return list_of_mesh(argc, argv, "member",
				    "SELECT id, display_name, role, peer_pubkey,"
				    " CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END"
				    " FROM mesh.member WHERE mesh_id = $1 ORDER BY joined_at");
	if (argc >= 1 && strcmp(argv[0], "revoke") == 0)
		return revoke_row(argc, argv, "member", "UPDATE mesh.member SET revoked_at = now()"
				  " WHERE id = $1 AND revoked_at IS NULL");
	return usage("member: list or revoke");
}

static int mesh_cmd(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "create") == 0)
		return mesh_create(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return mesh_list(argc, argv);
	return usage("mesh: create or list");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage("a command is needed");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("meshctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	int (*cmd)(int, char **) = strcmp(argv[1], "mesh") == 0 ? mesh_cmd
				 : strcmp(argv[1], "invite") == 0 ? invite_cmd
				 : strcmp(argv[1], "member") == 0 ? member_cmd : NULL;
	if (!cmd)
		return usage("unknown command %s", argv[1]);
	const char *url = getenv("DATABASE_URL");
	if (!url || !*url)
		return fail("DATABASE_URL is not set (a postgres:// URL of the broker's database)");
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise");
	const char *keys[] = { "dbname", "options", "application_name", NULL };
	const char *vals[] = { url, "-c TimeZone=UTC", "meshctl", NULL };
	db = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(db) != CONNECTION_OK) {
		int rc = fail("database: %s", PQerrorMessage(db));
		PQfinish(db);
		return rc;
	}
	int rc = cmd(argc - 2, argv + 2);
	PQfinish(db);
	return rc;
}
