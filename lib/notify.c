/* The systemd side of the process, spoken directly: the protocol is a datagram of
 * "KEY=VALUE" lines to an AF_UNIX socket plus a few environment variables, small enough
 * that linking libsystemd (and its dependencies, in the container too) buys nothing. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

/* The first fd of socket activation, fixed by the protocol (SD_LISTEN_FDS_START). */
#define LISTEN_FDS_START 3

/* Reads a pid from the environment variable name; 0 when unset, -1 when it is not a pid. */
static long long env_pid(const char *name)
{
    const char *s = getenv(name);
    long long pid;

    if (s == NULL)
        return 0;
    if (parse_integer(s, 1, INT_MAX, &pid) < 0)
        return -1;
    return pid;
}

/* Fills addr from a NOTIFY_SOCKET value; returns the address length, or -1 when the value
 * is neither an absolute path nor '@'-abstract, or does not fit sun_path. */
static int notify_address(const char *where, struct sockaddr_un *addr)
{
    size_t len = strlen(where);

    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (where[0] == '@') {
        /* Abstract names are counted bytes, not strings: the length must exclude any NUL
         * after the name or the kernel looks up a different (padded) name. */
        if (len < 2 || len > sizeof addr->sun_path)
            return -1;
        addr->sun_path[0] = '\0';
        memcpy(addr->sun_path + 1, where + 1, len - 1);
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    if (where[0] != '/' || len >= sizeof addr->sun_path)
        return -1;
    memcpy(addr->sun_path, where, len + 1);
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

/* Sends one notification datagram to $NOTIFY_SOCKET. */
int notify_send(const char *state)
{
    const char *where = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    size_t len;
    ssize_t n;
    int addrlen, fd, saved;

    if (where == NULL || where[0] == '\0')
        return 0;
    if (state == NULL || (len = strlen(state)) == 0)
        return -1;
    addrlen = notify_address(where, &addr);
    if (addrlen < 0)
        return -1;
    /* A fresh unbound socket per message: notifications are rare (startup, status changes,
     * watchdog pings every few seconds), and keeping no fd means nothing leaks into children
     * and nothing goes stale if the manager re-creates its socket. */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* MSG_DONTWAIT: a manager that is slow to read must never stall the event loop; a lost
     * ping is retried at the next interval. MSG_NOSIGNAL: no SIGPIPE if the peer is gone. */
    do {
        n = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&addr,
                   (socklen_t)addrlen);
    } while (n < 0 && errno == EINTR);
    saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 1 : -1;
}

/* Reads the watchdog interval meant for this process. */
long long notify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    long long pid = env_pid("WATCHDOG_PID");
    long long v;

    /* WATCHDOG_PID names the process systemd watches; a child that inherited the variables
     * (or a wrapper's child) must not ping on the main process's behalf. */
    if (pid < 0 || (pid > 0 && pid != (long long)getpid()))
        return 0;
    if (usec == NULL || parse_integer(usec, 1, LLONG_MAX, &v) < 0)
        return 0;
    return v;
}

/* Takes the first socket of socket activation, if it was meant for this process. */
int notify_listen_fd(void)
{
    long long pid = env_pid("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    long long n = 0;
    int result = -1;
    struct stat st;

    /* LISTEN_PID guards against the variables leaking to a process they were not meant for
     * (a child of ours, or a wrapper that forked), which would then grab a foreign fd 3. */
    if (pid > 0 && pid == (long long)getpid() && fds != NULL &&
        parse_integer(fds, 1, INT_MAX - LISTEN_FDS_START, &n) == 0 &&
        fstat(LISTEN_FDS_START, &st) == 0 && S_ISSOCK(st.st_mode)) {
        result = LISTEN_FDS_START;
        /* The manager hands the fds over without FD_CLOEXEC; set it on all of them so that
         * any program we start never holds the listening socket open after we exit. */
        for (long long i = 0; i < n; i++) {
            int fd = LISTEN_FDS_START + (int)i;
            int flags = fcntl(fd, F_GETFD);
            if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
                if (fd == LISTEN_FDS_START)
                    result = -1;
            }
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return result;
}
