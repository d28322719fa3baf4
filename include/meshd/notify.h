/* notify — telling systemd how the service is doing (sd_notify(3)):
 * READY=1 once the schema is migrated and the port is bound, STOPPING=1
 * when shutdown begins, WATCHDOG=1 at half the WatchdogSec period.
 *
 * libsystemd is optional at configure time (--without-systemd); without it
 * every call here is a no-op and meshd runs the same.  Outside systemd
 * (no NOTIFY_SOCKET) the calls do nothing either.  Main thread.
 */
#ifndef MESHD_NOTIFY_H
#define MESHD_NOTIFY_H

void notify_ready(void);
void notify_stopping(void);
/* How often to send WATCHDOG=1, in ms (half of WATCHDOG_USEC, as
 * sd_watchdog_enabled(3) advises), or 0 when no watchdog is asked for. */
long notify_watchdog_interval_ms(void);
void notify_watchdog(void);

#endif
