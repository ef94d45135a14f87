/* Unit tests for lib/notify.c: notifications reach a datagram socket bound by the test (a
 * path and an abstract name), the watchdog and socket-activation variables are honoured
 * only when they name this process, and junk is refused. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "notify.h"

/* Binds a datagram socket at addr; returns the fd or -1. */
static int bind_dgram(const struct sockaddr_un *addr, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (const struct sockaddr *)addr, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Receives one datagram into buf (NUL-terminated) within a second; returns its length or -1,
 * so a lost message fails the test instead of hanging it. */
static ssize_t recv_one(int fd, char *buf, size_t size)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;

    if (poll(&p, 1, 1000) != 1)
        return -1;
    n = recv(fd, buf, size - 1, MSG_DONTWAIT);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Formats the pid into a decimal string for the environment. */
static void set_pid_env(const char *name, pid_t pid)
{
    char s[32];
    snprintf(s, sizeof s, "%ld", (long)pid);
    setenv(name, s, 1);
}

/* Messages sent to a filesystem socket arrive intact, one datagram each. */
static void test_send_path(void)
{
    char dir[] = "/tmp/test_notify.XXXXXX";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char buf[512];
    int fd;

    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/notify", dir);
    fd = bind_dgram(&addr, sizeof addr);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", addr.sun_path, 1);

    CHECK_INT(notify_send("READY=1"), 1);
    CHECK_INT(recv_one(fd, buf, sizeof buf), 7);
    CHECK_STR(buf, "READY=1");

    CHECK_INT(notify_send("STATUS=serving 3 cities\nWATCHDOG=1"), 1);
    CHECK(recv_one(fd, buf, sizeof buf) > 0);
    CHECK_STR(buf, "STATUS=serving 3 cities\nWATCHDOG=1");

    /* An empty message says nothing and is refused rather than sent. */
    CHECK_INT(notify_send(""), -1);

    close(fd);
    unlink(addr.sun_path);
    /* Nobody listens any more: an error, not a hang. */
    CHECK_INT(notify_send("STOPPING=1"), -1);
    rmdir(dir);
    unsetenv("NOTIFY_SOCKET");
}

/* '@' selects the abstract namespace, whose names are counted bytes without a NUL. */
static void test_send_abstract(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char name[64], env[80], buf[512];
    int fd, n;

    n = snprintf(name, sizeof name, "moviesd-test-notify-%ld", (long)getpid());
    addr.sun_path[0] = '\0';
    memcpy(addr.sun_path + 1, name, (size_t)n);
    fd = bind_dgram(&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n));
    CHECK(fd >= 0);
    snprintf(env, sizeof env, "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);

    CHECK_INT(notify_send("READY=1\nSTATUS=ready"), 1);
    CHECK(recv_one(fd, buf, sizeof buf) > 0);
    CHECK_STR(buf, "READY=1\nSTATUS=ready");

    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

/* Without a supervisor nothing is sent and that is not an error; bad addresses are. */
static void test_send_unsupervised(void)
{
    char longpath[200];

    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK_INT(notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    CHECK_INT(notify_send("READY=1"), -1);
    setenv("NOTIFY_SOCKET", "@", 1);
    CHECK_INT(notify_send("READY=1"), -1);
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    CHECK_INT(notify_send("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}

/* WATCHDOG_USEC counts only for the process WATCHDOG_PID names, and only when well formed. */
static void test_watchdog(void)
{
    pid_t child;

    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CHECK_INT(notify_watchdog_usec(), 0);

    setenv("WATCHDOG_USEC", "1000000", 1);
    CHECK_INT(notify_watchdog_usec(), 1000000);
    set_pid_env("WATCHDOG_PID", getpid());
    CHECK_INT(notify_watchdog_usec(), 1000000);

    /* A live process that is not us: the watchdog belongs to it. */
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    CHECK(child > 0);
    set_pid_env("WATCHDOG_PID", child);
    CHECK_INT(notify_watchdog_usec(), 0);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }

    const char *bad_pids[] = {"", "abc", "-1", "0", "12x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_pids / sizeof bad_pids[0]; i++) {
        setenv("WATCHDOG_PID", bad_pids[i], 1);
        CHECK_INT(notify_watchdog_usec(), 0);
    }
    unsetenv("WATCHDOG_PID");

    const char *bad_usecs[] = {"", "0", "-1000000", "+5", "1e6", "1000000 ", "abc",
                               "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_usecs / sizeof bad_usecs[0]; i++) {
        setenv("WATCHDOG_USEC", bad_usecs[i], 1);
        CHECK_INT(notify_watchdog_usec(), 0);
    }
    unsetenv("WATCHDOG_USEC");
}

/* Sets the activation variables for pid with n fds. */
static void set_listen_env(pid_t pid, const char *fds)
{
    set_pid_env("LISTEN_PID", pid);
    setenv("LISTEN_FDS", fds, 1);
    setenv("LISTEN_FDNAMES", "moviesd.socket", 1);
}

/* True when none of the activation variables is left in the environment. */
static int listen_env_gone(void)
{
    return getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL &&
           getenv("LISTEN_FDNAMES") == NULL;
}

/* fd 3 is taken when LISTEN_PID is ours, refused otherwise, and the variables never survive. */
static void test_listen_fd(void)
{
    /* Keep whatever the runner left on fd 3 and put it back afterwards. */
    int saved = fcntl(3, F_DUPFD_CLOEXEC, 10);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int pipefd[2];

    CHECK(s >= 0);
    /* Handed over without FD_CLOEXEC, as a manager does (dup2 clears it on the copy). */
    if (s != 3) {
        CHECK_INT(dup2(s, 3), 3);
        close(s);
    }

    set_listen_env(getpid(), "1");
    CHECK_INT(notify_listen_fd(), 3);
    CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
    CHECK(listen_env_gone());

    /* Called again with nothing in the environment. */
    CHECK_INT(notify_listen_fd(), -1);

    /* Meant for another process (our parent): not ours to take. */
    set_listen_env(getppid(), "1");
    CHECK_INT(notify_listen_fd(), -1);
    CHECK(listen_env_gone());

    const char *bad_fds[] = {"0", "", "-1", "x", "1x"};
    for (size_t i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++) {
        set_listen_env(getpid(), bad_fds[i]);
        CHECK_INT(notify_listen_fd(), -1);
        CHECK(listen_env_gone());
    }
    setenv("LISTEN_PID", "junk", 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK_INT(notify_listen_fd(), -1);
    CHECK(listen_env_gone());

    /* Something that is not a socket on fd 3 is refused. */
    if (pipe(pipefd) == 0) {
        dup2(pipefd[0], 3);
        close(pipefd[0]);
        close(pipefd[1]);
        set_listen_env(getpid(), "1");
        CHECK_INT(notify_listen_fd(), -1);
    }

    close(3);
    if (saved >= 0) {
        dup2(saved, 3);
        close(saved);
    }
}

int main(void)
{
    test_send_path();
    test_send_abstract();
    test_send_unsupervised();
    test_watchdog();
    test_listen_fd();
    return check_summary();
}
