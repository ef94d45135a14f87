/* Unit tests of lib/redis.c without a Redis server: URL parsing, the password file, the key
 * helper, and the client's life against a small fake server on the same loop that answers,
 * stalls or hangs up on command, so that every callback can be counted: exactly once, never
 * from inside the call that issued it, CLOSED when the client is freed, one log line per
 * outage. tests/integration/test_redis_*.py runs the client against a real redis-server. */
#include "check.h"
#include "config.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- URLs, passwords, keys -------------------------------------------------------------- */

static void test_url_forms(void)
{
    struct redis_address a;
    char err[300], text[300];
    CHECK_INT(redis_url_parse("redis://127.0.0.1:6380/2", &a, err, sizeof err), 0);
    CHECK_INT(a.transport, REDIS_TCP);
    CHECK_STR(a.host, "127.0.0.1");
    CHECK_INT(a.port, 6380);
    CHECK_INT(a.db, 2);
    CHECK(a.password == NULL && a.user == NULL);
    redis_address_text(&a, text, sizeof text);
    CHECK_STR(text, "127.0.0.1:6380 db 2");
    redis_address_free(&a);

    CHECK_INT(redis_url_parse("redis://redis", &a, err, sizeof err), 0);
    CHECK_STR(a.host, "redis");
    CHECK_INT(a.port, 6379);
    CHECK_INT(a.db, 0);
    redis_address_text(&a, text, sizeof text);
    CHECK_STR(text, "redis:6379");
    redis_address_free(&a);

    CHECK_INT(redis_url_parse("redis://:s3cret@cache.internal:7000/", &a, err, sizeof err), 0);
    CHECK_STR(a.password, "s3cret");
    CHECK(a.user == NULL);
    CHECK_STR(a.host, "cache.internal");
    CHECK_INT(a.db, 0);
    redis_address_text(&a, text, sizeof text);
    CHECK_STR(text, "cache.internal:7000");   /* never the password */
    redis_address_free(&a);

    CHECK_INT(redis_url_parse("redis://moviesd:p%40ss%3Aw%25rd@[::1]:6379/15", &a, err, sizeof err),
              0);
    CHECK_STR(a.user, "moviesd");
    CHECK_STR(a.password, "p@ss:w%rd");
    CHECK_STR(a.host, "::1");
    CHECK_INT(a.db, 15);
    redis_address_text(&a, text, sizeof text);
    CHECK_STR(text, "[::1]:6379 db 15");
    struct redis_address copy;
    redis_address_copy(&copy, &a);
    redis_address_free(&a);
    CHECK_STR(copy.password, "p@ss:w%rd");
    redis_address_free(&copy);
    redis_address_free(&copy);   /* twice is harmless */
    redis_address_free(NULL);

    /* The last '@' ends the user part: a password may hold '@' unescaped. */
    CHECK_INT(redis_url_parse("redis://:a@b@h", &a, err, sizeof err), 0);
    CHECK_STR(a.password, "a@b");
    CHECK_STR(a.host, "h");
    redis_address_free(&a);

    CHECK_INT(redis_url_parse("unix:///run/redis/redis.sock", &a, err, sizeof err), 0);
    CHECK_INT(a.transport, REDIS_UNIX);
    CHECK_STR(a.path, "/run/redis/redis.sock");
    CHECK(a.host == NULL);
    redis_address_text(&a, text, sizeof text);
    CHECK_STR(text, "/run/redis/redis.sock");
    redis_address_free(&a);
    CHECK_INT(redis_url_parse("unix:///tmp/r.sock?db=3", &a, err, sizeof err), 0);
    CHECK_STR(a.path, "/tmp/r.sock");
    CHECK_INT(a.db, 3);
    redis_address_free(&a);
}

static void test_url_errors(void)
{
    struct {
        const char *url, *reason;
    } cases[] = {
        {"", "must start with redis:// or unix://"},
        {"localhost:6379", "must start with redis:// or unix://"},
        {"REDIS://h", "must start with redis:// or unix://"},
        {"rediss://h:6380", "rediss:// (TLS) is not supported: use redis:// on a private network, "
                            "or unix://"},
        {"redis://", "no host after redis://"},
        {"redis://:6379", "no host after redis://"},
        {"redis:///0", "no host after redis://"},
        {"redis://ho st", "'ho st' is not a host name or IPv4 address"},
        {"redis://-h", "'-h' is not a host name or IPv4 address"},
        {"redis://h:", "port '' is not 1..65535"},
        {"redis://h:0", "port '0' is not 1..65535"},
        {"redis://h:65536", "port '65536' is not 1..65535"},
        {"redis://h:+1", "port '+1' is not 1..65535"},
        {"redis://h:6379x", "port '6379x' is not 1..65535"},
        {"redis://h/x", "database 'x' is not a number 0..2147483647"},
        {"redis://h/2147483648", "database '2147483648' is not a number 0..2147483647"},
        {"redis://h/-1", "database '-1' is not a number 0..2147483647"},
        {"redis://h/1/2", "database '1/2' is not a number 0..2147483647"},
        {"redis://h?db=1", "query parameters and fragments ('?', '#') are not supported"},
        {"redis://:pw#x@h", "query parameters and fragments ('?', '#') are not supported"},
        {"redis://[::1", "the IPv6 address has no closing ']'"},
        {"redis://[]:1", "the IPv6 address has no closing ']'"},
        {"redis://[zz::1]:1", "'zz::1' is not an IPv6 address"},
        {"redis://[::1]x", "only ':port' may follow the IPv6 address"},
        {"redis://secret@h", "before '@' give ':password' or 'user:password'"},
        {"redis://:@h", "the password before '@' is empty"},
        {"redis://user:@h", "the password before '@' is empty"},
        {"redis://:p%zz@h", "the password has a bad %XX escape or a control character"},
        {"redis://:p%0a@h", "the password has a bad %XX escape or a control character"},
        {"redis://:p%4@h", "the password has a bad %XX escape or a control character"},
        {"redis://u%0:p@h", "the user name has a bad %XX escape or a control character"},
        {"unix://", "unix:// needs an absolute socket path, as in unix:///run/redis/redis.sock"},
        {"unix://run/r.sock", "unix:// needs an absolute socket path, as in "
                              "unix:///run/redis/redis.sock"},
        {"unix:///r.sock?db=x", "after the socket path only ?db=N (0..2147483647) may follow"},
        {"unix:///r.sock?timeout=1", "after the socket path only ?db=N (0..2147483647) may follow"},
        {"unix:///r\x01.sock", "the socket path holds a control character"},
    };
    struct redis_address a;
    char err[300];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&a, 0x55, sizeof a);
        CHECK_INT(redis_url_parse(cases[i].url, &a, err, sizeof err), -1);
        if (strcmp(err, cases[i].reason) != 0)
            fprintf(stderr, "url %s: %s\n", cases[i].url, err);
        CHECK_STR(err, cases[i].reason);
        CHECK(a.host == NULL && a.password == NULL && a.path == NULL && a.user == NULL);
    }
    /* A path longer than a socket address holds. */
    char url[200] = "unix:///";
    memset(url + 8, 'a', 120);
    url[128] = '\0';
    CHECK_INT(redis_url_parse(url, &a, err, sizeof err), -1);
    CHECK_STR(err, "the socket path is 121 bytes, at most 107");
    /* The reason never shows the password. */
    CHECK_INT(redis_url_parse("redis://:hunter2@h:99", &a, err, sizeof err), 0);
    redis_address_free(&a);
    CHECK_INT(redis_url_parse("redis://:hunter2@h:0", &a, err, sizeof err), -1);
    CHECK(strstr(err, "hunter2") == NULL);
}

/* Writes len bytes to a new file under dir; returns its path (new). */
static char *write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return path;
}

static void test_password_file(void)
{
    char dir[] = "/tmp/moviesd-test-redis-XXXXXX", err[400], *pw = NULL;
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    struct {
        const char *name, *data, *password, *reason;
        size_t len;
    } cases[] = {
        {"plain", "s3cret", "s3cret", NULL, 6},
        {"newline", "s3cret\n", "s3cret", NULL, 7},
        {"crlf", "s3 cret\r\n", "s3 cret", NULL, 9},
        {"empty", "", NULL, "the password is empty", 0},
        {"blank", "\n", NULL, "the password is empty", 1},
        {"lines", "a\nb\n", NULL, "more than one line (the password is the file's one line)", 4},
        {"two_newlines", "a\n\n", NULL, "more than one line (the password is the file's one line)", 3},
        {"control", "a\tb", NULL, "the password holds a control character", 3},
        {"nul", "a\0b", NULL, "the password holds a control character", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_file(dir, cases[i].name, cases[i].data, cases[i].len);
        pw = NULL;
        int r = redis_password_read(path, &pw, err, sizeof err);
        if (cases[i].password != NULL) {
            CHECK_INT(r, 0);
            CHECK_STR(pw, cases[i].password);
        } else {
            char want[400];
            snprintf(want, sizeof want, "%s: %s", path, cases[i].reason);
            CHECK_INT(r, -1);
            CHECK_STR(err, want);
            CHECK(pw == NULL);
        }
        free(pw);
        unlink(path);
        free(path);
    }
    char big[4097];
    memset(big, 'x', sizeof big);
    char *path = write_file(dir, "big", big, 4096);
    CHECK_INT(redis_password_read(path, &pw, err, sizeof err), 0);
    CHECK_INT(strlen(pw), 4096);
    free(pw);
    unlink(path);
    free(path);
    path = write_file(dir, "bigger", big, 4097);
    CHECK_INT(redis_password_read(path, &pw, err, sizeof err), -1);
    CHECK(strstr(err, ": larger than 4096 bytes") != NULL);
    unlink(path);
    free(path);

    path = xasprintf("%s/missing", dir);
    CHECK_INT(redis_password_read(path, &pw, err, sizeof err), -1);
    CHECK(strstr(err, ": No such file or directory") != NULL);
    CHECK_INT(redis_password_read(dir, &pw, err, sizeof err), -1);
    CHECK(strstr(err, ": not a regular file") != NULL);
    /* A FIFO with no writer must not hang the read. */
    CHECK_INT(mkfifo(path, 0600), 0);
    CHECK_INT(redis_password_read(path, &pw, err, sizeof err), -1);
    CHECK(strstr(err, ": not a regular file") != NULL);
    unlink(path);
    free(path);

    /* From the settings: the URL, the file, both (refused), a file without a URL (refused). */
    struct config c;
    struct redis_address a;
    config_init(&c);
    CHECK_INT(redis_address_from_config(&c, &a, err, sizeof err), 0);
    CHECK_INT(a.transport, REDIS_NONE);
    char *pwfile = write_file(dir, "pw", "from-file\n", 10);
    CHECK_INT(config_set(&c, config_find("redis_password_file"), pwfile, "t", err, sizeof err), 0);
    CHECK_INT(redis_address_from_config(&c, &a, err, sizeof err), -1);
    CHECK_STR(err, "redis_password_file: set, but redis_url is empty");
    CHECK_INT(config_set(&c, config_find("redis_url"), "redis://h:1/4", "t", err, sizeof err), 0);
    CHECK_INT(redis_address_from_config(&c, &a, err, sizeof err), 0);
    CHECK_STR(a.password, "from-file");
    CHECK_INT(a.db, 4);
    redis_address_free(&a);
    CHECK_INT(config_set(&c, config_find("redis_url"), "redis://:x@h", "t", err, sizeof err), 0);
    CHECK_INT(redis_address_from_config(&c, &a, err, sizeof err), -1);
    CHECK_STR(err, "redis_password_file: redis_url holds a password too; give it once");
    CHECK(a.password == NULL && a.host == NULL);
    unlink(pwfile);
    CHECK_INT(config_set(&c, config_find("redis_url"), "redis://h", "t", err, sizeof err), 0);
    CHECK_INT(redis_address_from_config(&c, &a, err, sizeof err), -1);
    CHECK(strncmp(err, "redis_password_file: /tmp/", 26) == 0 &&
          strstr(err, "No such file or directory") != NULL);
    free(pwfile);
    config_free(&c);
    rmdir(dir);
}

static void test_keys(void)
{
    char *k = redis_key("answer", "beijing");
    CHECK_STR(k, "moviesd:v1:answer:beijing");
    free(k);
    CHECK_STR(redis_result_name(REDIS_RESULT_OK), "ok");
    CHECK_STR(redis_result_name(REDIS_RESULT_TIMEOUT), "timeout");
    CHECK_STR(redis_result_name(REDIS_RESULT_CONNECTION), "connection");
    CHECK_STR(redis_result_name(REDIS_RESULT_DOWN), "down");
    CHECK_STR(redis_result_name(REDIS_RESULT_COUNT), "unknown");
    for (int i = 1; i < REDIS_ROUND_TRIP_BUCKETS; i++)
        CHECK(redis_round_trip_bounds[i] > redis_round_trip_bounds[i - 1]);
}

/* --- a fake server on the loop ------------------------------------------------------------ */

enum fake_mode { FAKE_ANSWER, FAKE_STALL, FAKE_HANG_UP };

struct fake {
    struct event_base *base;
    evutil_socket_t listener;
    struct event *accept_event;
    int port;
    enum fake_mode mode;
    const char *auth_reply;           /* the reply to AUTH, or NULL for +OK */
    struct bufferevent *conns[16];
    int accepts;
    unsigned long commands, answered;
    char names[64][16];               /* the first commands' names, in order */
};

static void fake_drop(struct fake *f, struct bufferevent *bev)
{
    for (int i = 0; i < 16; i++)
        if (f->conns[i] == bev)
            f->conns[i] = NULL;
    bufferevent_free(bev);
}

/* Parses one complete RESP array of bulk strings at p (n bytes): its size, or 0 if cut. */
static size_t resp_command(const char *p, size_t n, char *name, size_t namelen)
{
    const char *end = p + n, *q = p;
    char *e;
    if (n < 4 || *q != '*')
        return 0;
    long argc = strtol(q + 1, &e, 10);
    if (e + 2 > end || e[0] != '\r')
        return 0;
    q = e + 2;
    name[0] = '\0';
    for (long i = 0; i < argc; i++) {
        if (q >= end || *q != '$')
            return 0;
        long len = strtol(q + 1, &e, 10);
        if (e + 2 > end)
            return 0;
        q = e + 2;
        if (q + len + 2 > end)
            return 0;
        if (i == 0)
            snprintf(name, namelen, "%.*s", (int)len, q);
        q += len + 2;
    }
    return (size_t)(q - p);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t n = evbuffer_get_length(in);
        const char *p = (const char *)evbuffer_pullup(in, -1);
        char name[16];
        size_t used = n ? resp_command(p, n, name, sizeof name) : 0;
        if (used == 0)
            return;
        evbuffer_drain(in, used);
        if (f->commands < 64)
            snprintf(f->names[f->commands], sizeof f->names[0], "%s", name);
        f->commands++;
        if (f->mode == FAKE_HANG_UP) {
            fake_drop(f, bev);
            return;
        }
        if (f->mode == FAKE_STALL)
            continue;
        if (strcmp(name, "PING") == 0)
            bufferevent_write(bev, "+PONG\r\n", 7);
        else if (strcmp(name, "AUTH") == 0 && f->auth_reply != NULL)
            bufferevent_write(bev, f->auth_reply, strlen(f->auth_reply));
        else if (strcmp(name, "AUTH") == 0 || strcmp(name, "SELECT") == 0)
            bufferevent_write(bev, "+OK\r\n", 5);
        else
            evbuffer_add_printf(bufferevent_get_output(bev), ":%lu\r\n", ++f->answered);
    }
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        fake_drop(arg, bev);
}

static void fake_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fake *f = arg;
    evutil_socket_t c = accept(fd, NULL, NULL);
    if (c < 0)
        return;
    evutil_make_socket_nonblocking(c);
    f->accepts++;
    struct bufferevent *bev = bufferevent_socket_new(f->base, c, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, fake_read, NULL, fake_event, f);
    bufferevent_enable(bev, EV_READ);
    for (int i = 0; i < 16; i++)
        if (f->conns[i] == NULL) {
            f->conns[i] = bev;
            break;
        }
}

/* A fake server on a free loopback port; listening unless closed_port (then the port is
 * free and refuses connections). */
static void fake_start(struct fake *f, struct event_base *base, int listening)
{
    memset(f, 0, sizeof *f);
    f->base = base;
    f->listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    int one = 1;
    setsockopt(f->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(f->listener, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(f->listener, (struct sockaddr *)&sin, &len) != 0) {
        perror("bind");
        exit(2);
    }
    f->port = ntohs(sin.sin_port);
    if (!listening) {
        close(f->listener);
        f->listener = -1;
        return;
    }
    listen(f->listener, 16);
    evutil_make_socket_nonblocking(f->listener);
    f->accept_event = event_new(base, f->listener, EV_READ | EV_PERSIST, fake_accept, f);
    event_add(f->accept_event, NULL);
}

static void fake_stop(struct fake *f)
{
    for (int i = 0; i < 16; i++)
        if (f->conns[i] != NULL)
            bufferevent_free(f->conns[i]);
    if (f->accept_event != NULL)
        event_free(f->accept_event);
    if (f->listener >= 0)
        close(f->listener);
}

/* --- the client's life -------------------------------------------------------------------- */

/* What one command's callbacks did. */
struct call {
    int calls;
    enum redis_result result;
    long long integer;
    char error[200];
    int *inside;            /* set while the issuing call runs: a callback must not see it */
    int inside_seen;
};

static void on_call(enum redis_result result, const struct redisReply *reply_, const char *error,
                    void *arg)
{
    struct call *c = arg;
    const redisReply *reply = (const redisReply *)reply_;
    c->calls++;
    c->result = result;
    c->integer = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    snprintf(c->error, sizeof c->error, "%s", error ? error : "");
    if (c->inside != NULL && *c->inside)
        c->inside_seen = 1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until done() or seconds pass; returns done(). */
static int run_until(struct event_base *base, int (*done)(void *), void *arg, double seconds)
{
    double until = clock_monotonic() + seconds;
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 2000};
    event_add(tick, &tv);
    while (!done(arg) && clock_monotonic() < until)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return done(arg);
}

static int is_up(void *arg)
{
    return redis_up(arg);
}

static int is_down(void *arg)
{
    return !redis_up(arg);
}

struct calls {
    struct call *v;
    int n;
};

static int all_called(void *arg)
{
    struct calls *cs = arg;
    for (int i = 0; i < cs->n; i++)
        if (cs->v[i].calls == 0)
            return 0;
    return 1;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

/* stderr goes to a file while a test runs, so that its log lines can be counted. */
static int saved_stderr = -1;
static char log_path[64];

static void capture_log(void)
{
    snprintf(log_path, sizeof log_path, "/tmp/moviesd-test-redis-log-XXXXXX");
    int fd = mkstemp(log_path);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Restores stderr; returns how many captured lines hold needle, and shows them. */
static int captured_lines(const char *needle)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(log_path, "r");
    char line[1024];
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        fputs(line, stderr);
        n += strstr(line, needle) != NULL;
    }
    if (f != NULL)
        fclose(f);
    unlink(log_path);
    return n;
}

static struct redis_address loopback(int port)
{
    struct redis_address a = {.transport = REDIS_TCP, .host = (char *)"127.0.0.1", .port = port};
    return a;
}

/* Nothing listens: commands fail DOWN from the loop, the client retries with back-off and
 * logs the outage once. */
static void test_down(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 0);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 100);
    int inside = 1;
    struct call c = {.inside = &inside};
    redis_command(r, on_call, &c, "GET %s", "k");
    inside = 0;
    CHECK_INT(c.calls, 0);      /* not from inside the call */
    struct calls cs = {&c, 1};
    CHECK(run_until(base, all_called, &cs, 1));
    CHECK_INT(c.calls, 1);
    CHECK_INT(c.inside_seen, 0);
    CHECK_INT(c.result, REDIS_RESULT_DOWN);
    CHECK(strncmp(c.error, "Redis is down (", 15) == 0);
    /* Attempts at 0, 0.1, 0.3, 0.7 s: three reconnects within 0.9 s, one outage, one line. */
    run_until(base, never, NULL, 0.9);
    struct redis_stats st;
    redis_stats(r, &st);
    CHECK_INT(st.up, 0);
    CHECK_INT(st.outages, 1);
    CHECK(st.reconnects >= 2 && st.reconnects <= 3);
    CHECK_INT(st.errors[REDIS_RESULT_DOWN], 1);
    struct call later = {0};
    redis_command(r, on_call, &later, "PING");
    cs.v = &later;
    CHECK(run_until(base, all_called, &cs, 1));
    CHECK(strstr(later.error, "Connection refused") != NULL);
    redis_free(r);
    CHECK_INT(captured_lines("redis: 127.0.0.1:"), 1);
    fake_stop(&f);
    event_base_free(base);
}

/* A callback that issues a command gets its answer on a later turn, not inside itself. */
struct chain {
    struct redis *r;
    int depth, inside, nested_inside;
    struct call second;
};

static void on_chain(enum redis_result result, const struct redisReply *reply, const char *error,
                     void *arg)
{
    (void)result;
    (void)reply;
    (void)error;
    struct chain *ch = arg;
    if (ch->inside)
        ch->nested_inside = 1;
    if (ch->depth++ == 0) {
        ch->inside = 1;
        ch->second.inside = &ch->inside;
        redis_command(ch->r, on_call, &ch->second, "PING");
        ch->inside = 0;
    }
}

static int chain_done(void *arg)
{
    return ((struct chain *)arg)->second.calls > 0;
}

static void test_reentry(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 0);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 100);
    struct chain ch = {.r = r};
    redis_command(r, on_chain, &ch, "PING");
    CHECK(run_until(base, chain_done, &ch, 1));
    CHECK_INT(ch.second.calls, 1);
    CHECK_INT(ch.second.inside_seen, 0);
    CHECK_INT(ch.second.result, REDIS_RESULT_DOWN);
    redis_free(r);
    captured_lines("redis:");
    fake_stop(&f);
    event_base_free(base);
}

/* Up after the handshake; 100 commands at once come back in order, each once. */
static void test_pipelined(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    struct redis_address a = loopback(f.port);
    a.db = 3;
    capture_log();
    struct redis *r = redis_new(base, &a, 1000);
    CHECK_INT(redis_up(r), 0);
    CHECK(run_until(base, is_up, r, 2));
    CHECK_STR(f.names[0], "SELECT");
    CHECK_STR(f.names[1], "PING");
    struct call c[100] = {{0}};
    for (int i = 0; i < 100; i++)
        redis_command(r, on_call, &c[i], "INCR %s", "k");
    struct redis_stats st;
    redis_stats(r, &st);
    CHECK_INT(st.in_flight, 100);
    struct calls cs = {c, 100};
    CHECK(run_until(base, all_called, &cs, 2));
    int in_order = 1, once = 1;
    for (int i = 0; i < 100; i++) {
        in_order &= c[i].result == REDIS_RESULT_OK && c[i].integer == i + 1;
        once &= c[i].calls == 1;
    }
    CHECK(in_order);
    CHECK(once);
    redis_stats(r, &st);
    CHECK_INT(st.in_flight, 0);
    CHECK_INT(st.round_trips, 102);   /* the handshake's SELECT and PING too */
    unsigned long long in_buckets = 0;
    for (int i = 0; i < REDIS_ROUND_TRIP_BUCKETS; i++)
        in_buckets += st.round_trip_buckets[i];
    CHECK(in_buckets <= st.round_trips && in_buckets >= 100);
    CHECK(st.round_trip_seconds > 0);
    /* A binary-safe argument goes out as is. */
    const char *argv[] = {"SET", "k", "a\0b"};
    size_t lens[] = {3, 1, 3};
    struct call bin = {0};
    redis_command_argv(r, on_call, &bin, 3, argv, lens);
    cs = (struct calls){&bin, 1};
    CHECK(run_until(base, all_called, &cs, 2));
    CHECK_INT(bin.result, REDIS_RESULT_OK);
    redis_free(r);
    CHECK_INT(captured_lines("redis: connected to 127.0.0.1:"), 1);
    fake_stop(&f);
    event_base_free(base);
}

/* A stalled server: every pending command times out once, the client goes down, logs once,
 * and is back when the server answers again. */
static void test_timeout(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 150);
    CHECK(run_until(base, is_up, r, 2));
    f.mode = FAKE_STALL;
    struct call c[5] = {{0}};
    double t0 = clock_monotonic();
    for (int i = 0; i < 5; i++)
        redis_command(r, on_call, &c[i], "GET %s", "k");
    struct calls cs = {c, 5};
    CHECK(run_until(base, all_called, &cs, 2));
    double waited = clock_monotonic() - t0;
    CHECK(waited >= 0.14 && waited < 0.6);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(c[i].calls, 1);
        CHECK_INT(c[i].result, REDIS_RESULT_TIMEOUT);
        CHECK_STR(c[i].error, "no reply within 150 ms");
    }
    CHECK_INT(redis_up(r), 0);
    struct redis_stats st;
    redis_stats(r, &st);
    CHECK_INT(st.errors[REDIS_RESULT_TIMEOUT], 5);
    CHECK_INT(st.outages, 1);
    /* Reconnecting to a server that still stalls: the handshake times out, no new line. */
    run_until(base, never, NULL, 0.6);
    CHECK_INT(redis_up(r), 0);
    f.mode = FAKE_ANSWER;
    CHECK(run_until(base, is_up, r, 3));
    CHECK(f.accepts >= 2);
    struct call after = {0};
    redis_command(r, on_call, &after, "INCR %s", "k");
    cs = (struct calls){&after, 1};
    CHECK(run_until(base, all_called, &cs, 2));
    CHECK_INT(after.result, REDIS_RESULT_OK);
    redis_stats(r, &st);
    CHECK_INT(st.outages, 1);
    CHECK(st.reconnects >= 2);
    redis_free(r);
    int lost = captured_lines("redis: 127.0.0.1:");
    CHECK_INT(lost, 2);   /* lost, and answers again */
    fake_stop(&f);
    event_base_free(base);
}

/* The server hangs up with commands pending: each fails CONNECTION once. */
static void test_hang_up(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 2000);
    CHECK(run_until(base, is_up, r, 2));
    f.mode = FAKE_HANG_UP;
    struct call c[3] = {{0}};
    for (int i = 0; i < 3; i++)
        redis_command(r, on_call, &c[i], "GET %s", "k");
    struct calls cs = {c, 3};
    CHECK(run_until(base, all_called, &cs, 2));
    for (int i = 0; i < 3; i++) {
        CHECK_INT(c[i].calls, 1);
        CHECK_INT(c[i].result, REDIS_RESULT_CONNECTION);
    }
    CHECK(run_until(base, is_down, r, 1));
    run_until(base, never, NULL, 0.05);
    for (int i = 0; i < 3; i++)
        CHECK_INT(c[i].calls, 1);
    redis_free(r);
    CHECK_INT(captured_lines("redis: 127.0.0.1:"), 1);   /* lost; the retries add nothing */
    fake_stop(&f);
    event_base_free(base);
}

/* Freeing the client calls back what is pending with CLOSED, before it returns. */
static void test_free_pending(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 2000);
    CHECK(run_until(base, is_up, r, 2));
    f.mode = FAKE_STALL;
    struct call *c = xcalloc(3, sizeof *c);
    for (int i = 0; i < 3; i++)
        redis_command(r, on_call, &c[i], "GET %s", "k");
    run_until(base, never, NULL, 0.05);
    CHECK_INT(c[0].calls, 0);
    redis_free(r);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(c[i].calls, 1);
        CHECK_INT(c[i].result, REDIS_RESULT_CLOSED);
    }
    free(c);   /* nothing may touch it now: ASan would tell */
    run_until(base, never, NULL, 0.05);
    captured_lines("redis:");
    fake_stop(&f);
    event_base_free(base);
}

/* An AUTH refused keeps the client down, logged once with Redis's words. */
static void test_auth_refused(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    f.auth_reply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    struct redis_address a = loopback(f.port);
    a.password = (char *)"nope";
    capture_log();
    struct redis *r = redis_new(base, &a, 500);
    run_until(base, never, NULL, 0.5);
    CHECK_INT(redis_up(r), 0);
    CHECK(f.accepts >= 2);   /* it keeps trying */
    CHECK_STR(f.names[0], "AUTH");
    redis_free(r);
    CHECK_INT(captured_lines("handshake refused: WRONGPASS invalid username-password pair"), 1);
    fake_stop(&f);
    event_base_free(base);
}

/* A state callback hears of every change. */
static void on_state(int up, void *arg)
{
    int *changes = arg;
    changes[up]++;
}

static void test_state_callback(void)
{
    struct event_base *base = event_base_new();
    struct fake f;
    fake_start(&f, base, 1);
    struct redis_address a = loopback(f.port);
    capture_log();
    struct redis *r = redis_new(base, &a, 100);
    int changes[2] = {0, 0};
    redis_on_state(r, on_state, changes);
    CHECK(run_until(base, is_up, r, 2));
    f.mode = FAKE_HANG_UP;
    struct call c = {0};
    redis_command(r, on_call, &c, "PING");
    CHECK(run_until(base, is_down, r, 2));
    f.mode = FAKE_ANSWER;
    CHECK(run_until(base, is_up, r, 2));
    CHECK_INT(changes[1], 2);
    CHECK_INT(changes[0], 1);
    redis_free(r);
    captured_lines("redis:");
    fake_stop(&f);
    event_base_free(base);
}

int main(void)
{
    log_set_level(LOG_INFO);
    test_url_forms();
    test_url_errors();
    test_password_file();
    test_keys();
    test_down();
    test_reentry();
    test_pipelined();
    test_timeout();
    test_hang_up();
    test_free_pending();
    test_auth_refused();
    test_state_callback();
    return check_summary();
}
