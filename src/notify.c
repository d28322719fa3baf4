/* notify — systemd service notifications; see include/meshd/notify.h. */
#include "config.h"

#include "meshd/log.h"
#include "meshd/notify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

/* A failed notification is logged, never fatal: the service manager
 * decides what a missing READY or WATCHDOG means. */
static void send_state(const char *state)
{
	int r = sd_notify(0, state);
	if (r < 0)
		log_warn("notify_failed", "state=%s error=%d", state, r);
}

long notify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	long ms = (long)(usec / 2000);
	return ms > 0 ? ms : 1;
}
#else
static void send_state(const char *state)
{
	(void)state;
}

long notify_watchdog_interval_ms(void)
{
	return 0;
}
#endif

void notify_ready(void)
{
	send_state("READY=1");
}

void notify_stopping(void)
{
	send_state("STOPPING=1");
}

void notify_watchdog(void)
{
	send_state("WATCHDOG=1");
}
