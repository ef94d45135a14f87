/* The systemd side of the process, without libsystemd: the sd_notify datagram protocol,
 * the watchdog interval and socket activation (LISTEN_PID/LISTEN_FDS). */
#ifndef MOVIESD_NOTIFY_H
#define MOVIESD_NOTIFY_H

/* Sends state ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1", newline-separated) to
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). Returns 1 if sent, 0 when not
 * under a supervisor (no NOTIFY_SOCKET), -1 on error. Never blocks. */
int notify_send(const char *state);

/* The watchdog interval in microseconds from WATCHDOG_USEC, when WATCHDOG_PID is unset or
 * names this process; 0 when there is no watchdog. */
long long notify_watchdog_usec(void);

/* The first socket handed over by socket activation (fd 3) when LISTEN_PID names this
 * process and LISTEN_FDS >= 1, with FD_CLOEXEC set; -1 otherwise. Unsets LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES so children do not inherit them. */
int notify_listen_fd(void);

#endif
