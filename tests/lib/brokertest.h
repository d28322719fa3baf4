/* brokertest — start and stop the real meshd binary for integration tests.
 *
 * broker_start() runs $MESHD_BIN (set by `make check`; ./src/meshd when
 * unset) on port 0 in a fresh temp dir and waits for the port it writes to
 * MESHD_PORT_FILE.  The broker's stdout and stderr go to b->log_path; after
 * each test, stop it and check broker_log_clean() (STYLE.md §12).
 * A broker never cleaned up dies with the process that started it: SIGKILL
 * from an atexit handler (which prints where its log is kept) or, when that
 * process ends without running atexit handlers (a failed Check test in fork
 * mode _exits), from PR_SET_PDEATHSIG; its /tmp/mbrXXXXXX dir then stays
 * behind with the log.
 * Test code only; call from one thread.
 */
#ifndef MESHD_TEST_BROKERTEST_H
#define MESHD_TEST_BROKERTEST_H

#include <stdbool.h>
#include <sys/types.h>

/* How long broker_start() waits for the port file. */
#define BROKER_START_TIMEOUT_MS 20000

struct broker {
	pid_t pid;              /* 0 once the child has been reaped */
	int port;               /* the port it listens on, from the port file */
	char dir[256];          /* temp dir holding the log and the port file */
	char log_path[300];
	char port_file[300];
	int exit_status;        /* once reaped: exit code, or 128+signal; -1 before */
};

/* Spawns $MESHD_BIN with a copy of this process's environment plus
 * DATABASE_URL=database_url, BROKER_PORT=0, MESHD_PORT_FILE=<dir>/port,
 * MESHD_LOG_LEVEL=debug and (unless already set) ASAN_OPTIONS=
 * detect_leaks=1:abort_on_error=0, then the NULL-terminated extra_env
 * "NAME=value" strings, which override all of these; a bare "NAME" removes
 * the variable.  database_url may be NULL (DATABASE_URL is then left as
 * inherited), extra_env may be NULL.  Waits up to BROKER_START_TIMEOUT_MS for
 * the port file; false (log printed to stderr) if the child exits first or
 * the time runs out.  Either way call broker_cleanup() afterwards. */
bool broker_start(struct broker *b, const char *database_url, const char *const *extra_env)
	__attribute__((warn_unused_result));

/* Sends sig and waits up to timeout_ms for the exit.  Returns the exit code
 * (WEXITSTATUS), 128+signal if killed by a signal, or -1 on timeout (the
 * broker is then SIGKILLed and reaped).  If the broker already exited,
 * returns its status without sending anything. */
int broker_stop(struct broker *b, int sig, int timeout_ms);

/* Waits up to timeout_ms for the broker to exit on its own (e.g. after a
 * start-up error); returns as broker_stop(), -1 if it is still running. */
int broker_wait_exit(struct broker *b, int timeout_ms);

/* True while the child runs (reaps it, recording exit_status, if it died). */
bool broker_alive(struct broker *b);

/* Scans the log for sanitizer reports, UBSan "runtime error:", failed
 * assertions and fatal log lines.  False (offending lines printed) if any. */
bool broker_log_clean(const struct broker *b) __attribute__((warn_unused_result));
bool broker_log_contains(const struct broker *b, const char *needle);
/* Polls the log until it contains needle; false after timeout_ms. */
bool broker_wait_log(const struct broker *b, const char *needle, int timeout_ms)
	__attribute__((warn_unused_result));
/* Copies the log to stderr, for diagnosing a failed test. */
void broker_dump_log(const struct broker *b);

/* SIGKILLs the broker if it still runs and removes the temp dir (kept,
 * with a note on stderr, when MESHD_KEEP_TEST_DIRS is set). */
void broker_cleanup(struct broker *b);

#endif
