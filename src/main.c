/* main — start-up, signals and shutdown of the meshd process (DESIGN.md §1). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/migrate.h"
#include "meshd/notify.h"
#include "meshd/server.h"

/* Publishes the bound port for whoever started us (tests use port 0): written
 * to a temp file and renamed, so a reader never sees a partial number. */
static void write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		die("port_file_failed", "path=%s error=%s", path, strerror(errno));
}

static const char *pick_git_sha(const struct config *cfg)
{
	if (cfg->git_sha)
		return cfg->git_sha;
	return MESHD_GIT_SHA; /* `git rev-parse --short HEAD` at configure time, or "unknown" */
}

/* The migrations just reached the database, but /health says "down"
 * until the db thread's own connections are up (a few ms).  READY waits
 * for them, so that a unit ordered after meshd finds /health 200; if they
 * are not up in timeout_ms the broker is ready anyway (it serves, and
 * reports the database down), rather than fail its start. */
static void await_database(int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms && metrics_get(METRIC_DB_HEALTHY, 0) != 1;
	     waited += 10)
		usleep(10 * 1000);
}

/* Waits for SIGTERM or SIGINT; with a systemd watchdog, pets it between.
 * The main thread only waits here, so WATCHDOG=1 says the process is
 * scheduled and its signal handling alive, not that every worker is. */
static int wait_for_signal(const sigset_t *sigs)
{
	long period = notify_watchdog_interval_ms();
	if (period == 0) {
		int sig = 0;
		while (sigwait(sigs, &sig) != 0)
			;
		return sig;
	}
	struct timespec ts = { .tv_sec = period / 1000, .tv_nsec = (period % 1000) * 1000000L };
	for (;;) {
		notify_watchdog();
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0)
			return sig;
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	char err[512];
	switch (config_load(&cfg, argc, argv, stdout, err, sizeof(err))) {
	case CONFIG_OK:
		break;
	case CONFIG_EXIT:
		config_free(&cfg);
		return 0;
	case CONFIG_INVALID:
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);
	if (!cfg.database_url) {
		fprintf(stderr, "meshd: DATABASE_URL is required (or --database-url)\n");
		config_free(&cfg);
		return 1;
	}

	/* Signals are taken synchronously by main (sigwait); every thread
	 * inherits this mask, so none of them is interrupted by one. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (sodium_init() < 0)
		die("startup_failed", "reason=%s", "libsodium");
	json_object_seed(0); /* seed jansson's hash once, before any thread uses it */

	if (!cfg.skip_migrate) {
		int applied = migrate_run(cfg.database_url);
		if (applied < 0)
			die("startup_failed", "reason=%s", "migrations");
	}

	struct server srv;
	metrics_set_build_info(PACKAGE_VERSION, pick_git_sha(&cfg));
	server_init(&srv, &cfg, pick_git_sha(&cfg));
	server_start(&srv);
	if (cfg.port_file)
		write_port_file(cfg.port_file, srv.port);
	log_info("listening", "host=%s port=%d workers=%d allocator=%s version=%s", cfg.host,
		 srv.port, srv.nworkers, alloc_name(), PACKAGE_VERSION);

	await_database(10000);
	notify_ready(); /* migrated, bound, serving */

	int sig = wait_for_signal(&sigs);
	notify_stopping();
	log_info("shutdown_begin", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	bool in_time = server_shutdown(&srv);
	server_free(&srv);
	config_free(&cfg);
	return in_time ? 0 : 1;
}
