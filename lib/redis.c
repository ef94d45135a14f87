/* The client's life, in hiredis 0.14's terms.
 *
 * Each command is a struct command: hiredis holds it as the privdata of its reply callback
 * (in_hiredis) and we list it, in sending order, on `pending`. hiredis calls every callback
 * exactly once: with the reply, or with NULL when the context goes away. Our own callback
 * (the user's) is called exactly once too, but not always from hiredis's: when a command
 * passes its deadline or its connection drops, it moves to `failed` and is called back from
 * the loop by `flush`. A command is freed when both are done with it.
 *
 * Replies come back in sending order, so only the oldest pending command's deadline matters:
 * one timer, re-armed lazily when it fires early. A deadline passed means the connection is
 * stuck (a stopped or overloaded server, a dead peer the kernel has not noticed): the
 * connection is dropped, every command on it fails, and the client reconnects.
 *
 * hiredis frees a context itself after calling onConnect with an error or onDisconnect, so
 * those paths only forget it; everywhere else we free it with redisAsyncFree, which calls
 * the pending callbacks with NULL (already failed by then) and onDisconnect (ignored: the
 * context is no longer ours). Inside a hiredis callback redisAsyncFree is deferred by
 * hiredis until the callback returns, which makes dropping from a reply safe. */
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 10.0
#define MAX_SUBSCRIPTIONS 8
#define PASSWORD_FILE_MAX 4096
#define DB_MAX 2147483647LL

const double redis_round_trip_bounds[REDIS_ROUND_TRIP_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
};

enum place { NOWHERE, PENDING, FAILED };

struct command {
    TAILQ_ENTRY(command) link;
    struct redis *r;
    redis_reply_fn *cb;
    void *arg;
    double sent;                /* clock_monotonic() when issued */
    enum place place;
    int in_hiredis;             /* hiredis will still call on_reply with it */
    int delivered;              /* the user's callback has run */
    int handshake;              /* ours: AUTH, SELECT, PING; not counted as errors */
    enum redis_result result;   /* FAILED: why */
    char *error;
};
TAILQ_HEAD(command_list, command);

struct subscription {
    char *channel;
    redis_message_fn *cb;
    void *arg;
};

/* A name resolution in flight: it outlives the client if the client is freed first, since
 * evdns calls back a cancelled request later, from the loop. */
struct resolving {
    struct redis *r;                        /* NULL once the client is gone */
    struct evdns_base *dns;                 /* owned here once the client is gone */
    struct evdns_getaddrinfo_request *request;
};

struct redis {
    struct event_base *base;
    struct redis_address addr;
    char where[300];                        /* the address, for logs */
    double timeout;                         /* seconds */

    redisAsyncContext *ac;                  /* commands; NULL between attempts */
    char *ip;                               /* the TCP address connected to, resolved */
    unsigned long attempts;                 /* picks among a name's addresses, in turn */
    int up;
    int ever_up;
    int in_outage;                          /* the outage has been logged */
    double down_since;
    char down_reason[256];
    double backoff;
    struct event *reconnect_timer;
    struct evdns_base *dns;                 /* made on the first name to resolve */
    struct resolving *resolving;

    struct command_list pending;            /* sent, in order */
    struct command_list failed;             /* to be called back by flush */
    struct event *deadline_timer;           /* the oldest pending command's deadline */
    struct event *flush;

    redisAsyncContext *sub;                 /* subscriptions; NULL between attempts */
    int sub_live;                           /* every SUBSCRIBE confirmed */
    size_t sub_confirmed;
    int sub_failures;                       /* in a row */
    int sub_outage_logged;
    double sub_backoff;
    struct event *sub_timer;                /* confirmation deadline, or the next attempt */
    struct subscription subs[MAX_SUBSCRIPTIONS];
    size_t nsubs;

    redis_state_fn *on_state;
    void *state_arg;
    struct redis_stats stats;
    int closing;
};

static void connect_now(struct redis *r);
static void connect_subscriber(struct redis *r);
static void drop_subscriber(struct redis *r);

/* --- addresses ------------------------------------------------------------------------ */

const char *redis_result_name(enum redis_result result)
{
    static const char *const names[] = {"ok", "reply", "timeout", "connection", "down", "closed"};
    return (unsigned)result < REDIS_RESULT_COUNT ? names[result] : "unknown";
}

void redis_address_free(struct redis_address *a)
{
    if (a == NULL)
        return;
    free(a->host);
    free(a->path);
    free(a->user);
    free(a->password);
    memset(a, 0, sizeof *a);
}

void redis_address_copy(struct redis_address *dst, const struct redis_address *src)
{
    *dst = *src;
    dst->host = src->host ? xstrdup(src->host) : NULL;
    dst->path = src->path ? xstrdup(src->path) : NULL;
    dst->user = src->user ? xstrdup(src->user) : NULL;
    dst->password = src->password ? xstrdup(src->password) : NULL;
}

void redis_address_text(const struct redis_address *a, char *out, size_t outlen)
{
    char db[32] = "";
    if (a->db != 0)
        snprintf(db, sizeof db, " db %lld", a->db);
    if (a->transport == REDIS_UNIX)
        snprintf(out, outlen, "%s%s", a->path, db);
    else if (a->transport == REDIS_TCP && strchr(a->host, ':') != NULL)
        snprintf(out, outlen, "[%s]:%d%s", a->host, a->port, db);
    else if (a->transport == REDIS_TCP)
        snprintf(out, outlen, "%s:%d%s", a->host, a->port, db);
    else
        snprintf(out, outlen, "no Redis");
}

/* The value of a hex digit, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The len bytes at s with %XX decoded (new), or NULL on a bad escape or a decoded control
 * byte. */
static char *percent_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7F) {
            free(out);
            return NULL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* Parses the decimal of len bytes at s into [min, max]; 0 or -1. */
static int parse_span(const char *s, size_t len, long long min, long long max, long long *out)
{
    char text[24];
    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    return parse_integer(text, min, max, out);
}

/* Parses a unix:// URL's rest: an absolute path, optionally ?db=N. */
static int parse_unix(const char *rest, struct redis_address *out, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    const char *query = strchr(rest, '?');
    size_t len = query ? (size_t)(query - rest) : strlen(rest);
    if (len == 0 || rest[0] != '/') {
        errorf(err, errlen, "unix:// needs an absolute socket path, as in unix:///run/redis/redis.sock");
        return -1;
    }
    if (len >= sizeof sun.sun_path) {
        errorf(err, errlen, "the socket path is %zu bytes, at most %zu", len,
               sizeof sun.sun_path - 1);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)rest[i] < 0x20 || rest[i] == 0x7F) {
            errorf(err, errlen, "the socket path holds a control character");
            return -1;
        }
    if (query != NULL) {
        if (strncmp(query, "?db=", 4) != 0 ||
            parse_span(query + 4, strlen(query + 4), 0, DB_MAX, &out->db) != 0) {
            errorf(err, errlen, "after the socket path only ?db=N (0..%lld) may follow", DB_MAX);
            return -1;
        }
    }
    out->transport = REDIS_UNIX;
    out->path = xstrndup(rest, len);
    return 0;
}

/* Parses "[[user]:password@]" at the start of an authority of len bytes; moves *host past it. */
static int parse_userinfo(const char *auth, size_t len, const char **host,
                          struct redis_address *out, char *err, size_t errlen)
{
    const char *at = NULL;
    for (size_t i = 0; i < len; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at == NULL) {
        *host = auth;
        return 0;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL) {
        errorf(err, errlen, "before '@' give ':password' or 'user:password'");
        return -1;
    }
    if (colon == at - 1) {
        errorf(err, errlen, "the password before '@' is empty");
        return -1;
    }
    if (colon > auth) {
        out->user = percent_decode(auth, (size_t)(colon - auth));
        if (out->user == NULL) {
            errorf(err, errlen, "the user name has a bad %%XX escape or a control character");
            return -1;
        }
    }
    out->password = percent_decode(colon + 1, (size_t)(at - colon - 1));
    if (out->password == NULL) {
        errorf(err, errlen, "the password has a bad %%XX escape or a control character");
        return -1;
    }
    *host = at + 1;
    return 0;
}

/* Parses a redis:// URL's rest: the authority, then an optional /db. */
static int parse_tcp(const char *rest, struct redis_address *out, char *err, size_t errlen)
{
    char shown[80];
    if (strpbrk(rest, "?#") != NULL) {
        errorf(err, errlen, "query parameters and fragments ('?', '#') are not supported");
        return -1;
    }
    size_t auth_len = strcspn(rest, "/");
    const char *host;
    if (parse_userinfo(rest, auth_len, &host, out, err, errlen) != 0)
        return -1;
    const char *auth_end = rest + auth_len, *host_end, *port = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        char literal[64];
        unsigned char addr[16];
        size_t n = close ? (size_t)(close - host - 1) : 0;
        if (close == NULL || n == 0 || n >= sizeof literal) {
            errorf(err, errlen, "the IPv6 address has no closing ']'");
            return -1;
        }
        memcpy(literal, host + 1, n);
        literal[n] = '\0';
        if (inet_pton(AF_INET6, literal, addr) != 1) {
            errorf(err, errlen, "'%s' is not an IPv6 address",
                   log_escape(literal, n, shown, sizeof shown));
            return -1;
        }
        out->host = xstrdup(literal);
        host_end = close + 1;
        if (host_end < auth_end && *host_end != ':') {
            errorf(err, errlen, "only ':port' may follow the IPv6 address");
            return -1;
        }
    } else {
        host_end = host + strcspn(host, ":/");
        if (host_end > auth_end)
            host_end = auth_end;
        size_t n = (size_t)(host_end - host);
        size_t ok = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (n == 0) {
            errorf(err, errlen, "no host after redis://");
            return -1;
        }
        if (ok < n || host[0] == '.' || host[0] == '-' || n > 253) {
            errorf(err, errlen, "'%s' is not a host name or IPv4 address",
                   log_escape(host, n, shown, sizeof shown));
            return -1;
        }
        out->host = xstrndup(host, n);
    }
    out->port = 6379;
    if (host_end < auth_end) {   /* ':' */
        port = host_end + 1;
        long long v;
        if (parse_span(port, (size_t)(auth_end - port), 1, 65535, &v) != 0) {
            errorf(err, errlen, "port '%s' is not 1..65535",
                   log_escape(port, (size_t)(auth_end - port), shown, sizeof shown));
            return -1;
        }
        out->port = (int)v;
    }
    if (*auth_end == '/' && auth_end[1] != '\0') {
        const char *db = auth_end + 1;
        if (parse_span(db, strlen(db), 0, DB_MAX, &out->db) != 0) {
            errorf(err, errlen, "database '%s' is not a number 0..%lld",
                   log_escape(db, strlen(db), shown, sizeof shown), DB_MAX);
            return -1;
        }
    }
    out->transport = REDIS_TCP;
    return 0;
}

int redis_url_parse(const char *url, struct redis_address *out, char *err, size_t errlen)
{
    int r;
    memset(out, 0, sizeof *out);
    if (strncmp(url, "redis://", 8) == 0) {
        r = parse_tcp(url + 8, out, err, errlen);
    } else if (strncmp(url, "unix://", 7) == 0) {
        r = parse_unix(url + 7, out, err, errlen);
    } else if (strncmp(url, "rediss://", 9) == 0) {
        errorf(err, errlen, "rediss:// (TLS) is not supported: use redis:// on a private network, "
                            "or unix://");
        r = -1;
    } else {
        errorf(err, errlen, "must start with redis:// or unix://");
        r = -1;
    }
    if (r != 0)
        redis_address_free(out);
    return r;
}

int redis_password_read(const char *path, char **out, char *err, size_t errlen)
{
    char shown[200], buf[PASSWORD_FILE_MAX + 1];
    log_escape(path, strlen(path), shown, sizeof shown);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        errorf(err, errlen, "%s: %s", shown, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errorf(err, errlen, "%s: not a regular file", shown);
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errorf(err, errlen, "%s: %s", shown, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf) {
            errorf(err, errlen, "%s: larger than %d bytes", shown, PASSWORD_FILE_MAX);
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len == 0) {
        errorf(err, errlen, "%s: the password is empty", shown);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            errorf(err, errlen, "%s: more than one line (the password is the file's one line)",
                   shown);
            return -1;
        }
        if (c < 0x20 || c == 0x7F) {
            errorf(err, errlen, "%s: the password holds a control character", shown);
            return -1;
        }
    }
    *out = xstrndup(buf, len);
    return 0;
}

int redis_address_from_config(const struct config *c, struct redis_address *out, char *err,
                              size_t errlen)
{
    char why[400];
    memset(out, 0, sizeof *out);
    if (c->redis_url[0] == '\0') {
        if (c->redis_password_file[0] != '\0') {
            errorf(err, errlen, "redis_password_file: set, but redis_url is empty");
            return -1;
        }
        return 0;
    }
    if (redis_url_parse(c->redis_url, out, why, sizeof why) != 0) {
        errorf(err, errlen, "redis_url: %s", why);
        return -1;
    }
    if (c->redis_password_file[0] != '\0') {
        if (out->password != NULL) {
            errorf(err, errlen, "redis_password_file: redis_url holds a password too; give it once");
            redis_address_free(out);
            return -1;
        }
        if (redis_password_read(c->redis_password_file, &out->password, why, sizeof why) != 0) {
            errorf(err, errlen, "redis_password_file: %s", why);
            redis_address_free(out);
            return -1;
        }
    }
    return 0;
}

char *redis_key(const char *kind, const char *name)
{
    return xasprintf(REDIS_KEY_PREFIX "%s:%s", kind, name);
}

/* --- commands ------------------------------------------------------------------------- */

/* Arms t to fire after seconds. */
static void arm(struct event *t, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(t, &tv);
}

/* Frees c once its callback has run and hiredis no longer holds it. */
static void release(struct command *c)
{
    if (c->delivered && !c->in_hiredis) {
        free(c->error);
        free(c);
    }
}

/* Runs c's callback, once. */
static void deliver(struct command *c, enum redis_result result, const redisReply *reply,
                    const char *error)
{
    redis_reply_fn *cb = c->cb;
    c->cb = NULL;
    c->delivered = 1;
    if (cb != NULL)
        cb(result, (const struct redisReply *)reply, error, c->arg);
}

/* Queues c to be called back from the loop with result. */
static void fail(struct redis *r, struct command *c, enum redis_result result, const char *why)
{
    if (c->place == PENDING) {
        TAILQ_REMOVE(&r->pending, c, link);
        r->stats.in_flight--;
    }
    c->place = FAILED;
    c->result = result;
    c->error = xstrdup(why);
    TAILQ_INSERT_TAIL(&r->failed, c, link);
    if (result != REDIS_RESULT_CLOSED && !c->handshake)
        r->stats.errors[result]++;
    event_active(r->flush, EV_TIMEOUT, 0);
}

/* Calls back every command of list (emptied), each with its failure. */
static void call_back_failed(struct command_list *list)
{
    struct command *c;
    while ((c = TAILQ_FIRST(list)) != NULL) {
        TAILQ_REMOVE(list, c, link);
        c->place = NOWHERE;
        deliver(c, c->result, NULL, c->error);
        release(c);
    }
}

/* The loop's turn to call back failed commands: those failed so far; any that their
 * callbacks fail in turn wait for the next turn. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    struct command_list batch = TAILQ_HEAD_INITIALIZER(batch);
    TAILQ_CONCAT(&batch, &r->failed, link);
    call_back_failed(&batch);
}

/* Fails every pending command with result. */
static void fail_pending(struct redis *r, enum redis_result result, const char *why)
{
    struct command *c;
    while ((c = TAILQ_FIRST(&r->pending)) != NULL)
        fail(r, c, result, why);
    evtimer_del(r->deadline_timer);
}

/* hiredis's callback of every command: the reply, or NULL when the context goes away. */
static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct command *c = privdata;
    struct redis *r = c->r;
    redisReply *reply = reply_;
    c->in_hiredis = 0;
    if (c->place != PENDING) {
        release(c);
        return;
    }
    if (reply == NULL) {
        /* hiredis is tearing down a connection that dropped: onDisconnect comes next and
         * fails what is pending; a context no longer ours cannot leave it pending. */
        if (ac != r->ac)
            fail(r, c, REDIS_RESULT_CONNECTION, "connection closed");
        return;
    }
    TAILQ_REMOVE(&r->pending, c, link);
    r->stats.in_flight--;
    c->place = NOWHERE;
    double seconds = clock_monotonic() - c->sent;
    size_t b = 0;
    while (b < REDIS_ROUND_TRIP_BUCKETS && seconds > redis_round_trip_bounds[b])
        b++;
    if (b < REDIS_ROUND_TRIP_BUCKETS)
        r->stats.round_trip_buckets[b]++;
    r->stats.round_trips++;
    r->stats.round_trip_seconds += seconds;
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!c->handshake)
            r->stats.errors[REDIS_RESULT_REPLY]++;
        deliver(c, REDIS_RESULT_REPLY, reply, reply->str);
    } else {
        deliver(c, REDIS_RESULT_OK, reply, NULL);
    }
    release(c);
}

/* A new command for cb, not yet placed. */
static struct command *command_new(struct redis *r, redis_reply_fn *cb, void *arg)
{
    struct command *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->sent = clock_monotonic();
    return c;
}

/* Whether c may be sent now (handshake commands may before the client is up); if not, it
 * is failed. */
static int may_send(struct redis *r, struct command *c, int handshake)
{
    if (r->closing) {
        fail(r, c, REDIS_RESULT_CLOSED, "the Redis client is closing");
        return 0;
    }
    if (r->ac == NULL || (!r->up && !handshake)) {
        char why[300];
        snprintf(why, sizeof why, "Redis is down (%s)", r->down_reason[0] ? r->down_reason
                                                                         : "connecting");
        fail(r, c, REDIS_RESULT_DOWN, why);
        return 0;
    }
    return 1;
}

/* Lists c as pending once hiredis took it (status REDIS_OK), or fails it. */
static void sent(struct redis *r, struct command *c, int status)
{
    if (status != REDIS_OK) {
        fail(r, c, REDIS_RESULT_CONNECTION, "hiredis refused the command");
        return;
    }
    c->in_hiredis = 1;
    c->place = PENDING;
    if (TAILQ_EMPTY(&r->pending))
        arm(r->deadline_timer, r->timeout);
    TAILQ_INSERT_TAIL(&r->pending, c, link);
    r->stats.in_flight++;
}

/* Sends argv, during the handshake too when handshake is set. */
static void send_argv(struct redis *r, int handshake, redis_reply_fn *cb, void *arg, int argc,
                      const char *const *argv, const size_t *lens)
{
    struct command *c = command_new(r, cb, arg);
    c->handshake = handshake;
    if (may_send(r, c, handshake))
        sent(r, c, redisAsyncCommandArgv(r->ac, on_reply, c, argc, (const char **)argv, lens));
}

void redis_command_argv(struct redis *r, redis_reply_fn *cb, void *arg, int argc,
                        const char *const *argv, const size_t *lens)
{
    send_argv(r, 0, cb, arg, argc, argv, lens);
}

void redis_command(struct redis *r, redis_reply_fn *cb, void *arg, const char *format, ...)
{
    struct command *c = command_new(r, cb, arg);
    if (!may_send(r, c, 0))
        return;
    va_list ap;
    va_start(ap, format);
    int status = redisvAsyncCommand(r->ac, on_reply, c, format, ap);
    va_end(ap);
    sent(r, c, status);
}

/* --- up and down ---------------------------------------------------------------------- */

/* Calls the state callback, if any. */
static void tell_state(struct redis *r, int up)
{
    if (r->on_state != NULL)
        r->on_state(up, r->state_arg);
}

/* The handshake's last reply came: the client is up. */
static void set_up(struct redis *r)
{
    r->up = 1;
    r->backoff = BACKOFF_FIRST;
    if (!r->ever_up && !r->in_outage)
        log_info("redis: connected to %s", r->where);
    else
        log_info("redis: %s answers again after %.1f s; sharing resumes", r->where,
                 clock_monotonic() - r->down_since);
    r->ever_up = 1;
    r->in_outage = 0;
    r->down_reason[0] = '\0';
    connect_subscriber(r);
    tell_state(r, 1);
}

/* Forgets the command connection (freeing it unless hiredis is about to), fails what was
 * pending on it, goes down and schedules the next attempt. */
static void drop(struct redis *r, enum redis_result result, const char *why, int free_context)
{
    redisAsyncContext *ac = r->ac;
    int was_up = r->up;
    r->ac = NULL;
    r->up = 0;
    snprintf(r->down_reason, sizeof r->down_reason, "%s", why);
    fail_pending(r, result, why);
    if (ac != NULL && free_context)
        redisAsyncFree(ac);
    drop_subscriber(r);
    if (!r->in_outage) {
        r->in_outage = 1;
        r->down_since = clock_monotonic();
        r->stats.outages++;
        log_warn("redis: %s %s (%s); using local state until it answers, reconnecting", r->where,
                 was_up ? "lost" : "unreachable", why);
    }
    arm(r->reconnect_timer, r->backoff);
    r->backoff = r->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : r->backoff * 2;
    if (was_up)
        tell_state(r, 0);
}

/* The oldest pending command's deadline, checked. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    struct command *oldest = TAILQ_FIRST(&r->pending);
    if (oldest == NULL)
        return;
    double left = oldest->sent + r->timeout - clock_monotonic();
    if (left > 0) {
        arm(r->deadline_timer, left);
        return;
    }
    char why[80];
    snprintf(why, sizeof why, "no reply within %.0f ms", r->timeout * 1000);
    drop(r, REDIS_RESULT_TIMEOUT, why, 1);
}

/* A reply to AUTH or SELECT: an error reply ends the attempt. */
static void on_handshake_step(enum redis_result result, const struct redisReply *reply,
                              const char *error, void *arg)
{
    (void)reply;
    struct redis *r = arg;
    if (result == REDIS_RESULT_REPLY) {
        char why[300];
        snprintf(why, sizeof why, "handshake refused: %s", error);
        drop(r, REDIS_RESULT_CONNECTION, why, 1);
    }
}

/* The reply to the handshake's PING: up, unless Redis refused it (loading, NOAUTH...). A
 * failure for another reason was a drop, already handled. */
static void on_handshake_done(enum redis_result result, const struct redisReply *reply,
                              const char *error, void *arg)
{
    (void)reply;
    struct redis *r = arg;
    if (result == REDIS_RESULT_OK)
        set_up(r);
    else
        on_handshake_step(result, reply, error, arg);
}

/* AUTH [user] password, for either connection; returns argc. */
static int auth_argv(const struct redis *r, const char *argv[3], size_t lens[3])
{
    int argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (r->addr.user != NULL) {
        argv[argc] = r->addr.user;
        lens[argc++] = strlen(r->addr.user);
    }
    argv[argc] = r->addr.password;
    lens[argc++] = strlen(r->addr.password);
    return argc;
}

/* Queues AUTH, SELECT and PING: hiredis sends them once connected. */
static void handshake(struct redis *r)
{
    if (r->addr.password != NULL) {
        const char *argv[3];
        size_t lens[3];
        int argc = auth_argv(r, argv, lens);
        send_argv(r, 1, on_handshake_step, r, argc, argv, lens);
    }
    if (r->addr.db != 0) {
        char db[24];
        snprintf(db, sizeof db, "%lld", r->addr.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        send_argv(r, 1, on_handshake_step, r, 2, argv, lens);
    }
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    send_argv(r, 1, on_handshake_done, r, 1, argv, lens);
}

/* hiredis: the connection is made, or failed (then hiredis frees ac after this). */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status != REDIS_OK && ac == r->ac) {
        char why[300];
        snprintf(why, sizeof why, "connect: %s", ac->errstr ? ac->errstr : "failed");
        drop(r, REDIS_RESULT_CONNECTION, why, 0);
    }
}

/* hiredis: the connection ended (hiredis frees ac after this). */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct redis *r = ac->data;
    if (ac == r->ac) {
        char why[300];
        snprintf(why, sizeof why, "%s", ac->errstr && ac->errstr[0] ? ac->errstr
                                                                    : "connection closed");
        drop(r, REDIS_RESULT_CONNECTION, why, 0);
    }
}

/* A new context to the address (ip for TCP), attached to the loop; NULL with why. */
static redisAsyncContext *open_context(struct redis *r, const char *ip, char *why, size_t whylen)
{
    redisAsyncContext *ac = r->addr.transport == REDIS_UNIX ? redisAsyncConnectUnix(r->addr.path)
                                                            : redisAsyncConnect(ip, r->addr.port);
    if (ac == NULL) {
        snprintf(why, whylen, "connect: out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, whylen, "connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (r->addr.transport == REDIS_TCP)
        redisEnableKeepAlive(&ac->c);   /* a peer that vanished is noticed when idle too */
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    return ac;
}

/* Connects the command connection to ip (NULL for a socket path) and starts the handshake. */
static void connect_to(struct redis *r, const char *ip)
{
    char why[300];
    if (ip != NULL) {
        free(r->ip);
        r->ip = xstrdup(ip);
    }
    redisAsyncContext *ac = open_context(r, r->ip, why, sizeof why);
    if (ac == NULL) {
        drop(r, REDIS_RESULT_CONNECTION, why, 0);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    handshake(r);
}

/* evdns: the host name's addresses, or why not. */
static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct resolving *q = arg;
    struct redis *r = q->r;
    char ip[INET6_ADDRSTRLEN] = "";
    /* A name with several addresses: each attempt takes the next, so that one that does
     * not answer (an IPv6 address Redis does not listen on) is not tried forever. */
    size_t n = 0;
    for (struct evutil_addrinfo *a = res; result == 0 && a != NULL; a = a->ai_next)
        n += a->ai_family == AF_INET || a->ai_family == AF_INET6;
    size_t pick = n > 0 && r != NULL ? r->attempts++ % n : 0;
    for (struct evutil_addrinfo *a = res; n > 0 && a != NULL; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        if (pick-- == 0) {
            const void *addr =
                a->ai_family == AF_INET6
                    ? (const void *)&((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr
                    : (const void *)&((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr;
            inet_ntop(a->ai_family, addr, ip, sizeof ip);
            break;
        }
    }
    if (res != NULL)
        evutil_freeaddrinfo(res);
    if (r == NULL) {            /* the client was freed: this was the cancellation */
        evdns_base_free(q->dns, 0);
        free(q);
        return;
    }
    r->resolving = NULL;
    free(q);
    if (ip[0] == '\0') {
        char why[300];
        snprintf(why, sizeof why, "cannot resolve %s: %s", r->addr.host,
                 result == 0 ? "no address" : evutil_gai_strerror(result));
        drop(r, REDIS_RESULT_CONNECTION, why, 0);
        return;
    }
    connect_to(r, ip);
}

/* Starts an attempt: at once for an address or a socket, after resolving a host name. */
static void connect_now(struct redis *r)
{
    unsigned char addr[16];
    if (r->addr.transport == REDIS_UNIX) {
        connect_to(r, NULL);
        return;
    }
    if (inet_pton(AF_INET, r->addr.host, addr) == 1 || inet_pton(AF_INET6, r->addr.host, addr) == 1) {
        connect_to(r, r->addr.host);
        return;
    }
    if (r->dns == NULL)
        r->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (r->dns == NULL) {
        drop(r, REDIS_RESULT_CONNECTION, "cannot set up the resolver (/etc/resolv.conf)", 0);
        return;
    }
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct resolving *q = xcalloc(1, sizeof *q);
    q->r = r;
    r->resolving = q;
    /* Answers from /etc/hosts come back inside this call, and then it returns NULL. */
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(r->dns, r->addr.host, NULL, &hints, on_resolved, q);
    if (req != NULL && r->resolving == q)
        q->request = req;
}

/* The back-off is over: try again. */
static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    if (r->in_outage)
        r->stats.reconnects++;
    connect_now(r);
}

/* --- subscriptions -------------------------------------------------------------------- */

/* Forgets the subscription connection, freeing it unless hiredis is about to, and when the
 * client is up tries again later (logging the first failure of a row). */
static void lose_subscriber(struct redis *r, const char *why, int free_context)
{
    redisAsyncContext *sub = r->sub;
    r->sub = NULL;
    r->sub_live = 0;
    evtimer_del(r->sub_timer);
    if (sub != NULL && free_context)
        redisAsyncFree(sub);
    if (!r->up || r->closing)
        return;
    /* The first failure is often Redis going away, which the command connection is about
     * to report: only a second one in a row is the subscription's own outage. */
    if (++r->sub_failures >= 2 && !r->sub_outage_logged) {
        r->sub_outage_logged = 1;
        log_warn("redis: subscription connection to %s failed (%s); waiters poll until it is back",
                 r->where, why);
    }
    arm(r->sub_timer, r->sub_backoff);
    r->sub_backoff = r->sub_backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : r->sub_backoff * 2;
}

/* Closes the subscription connection with the command connection: no retry, no log. */
static void drop_subscriber(struct redis *r)
{
    redisAsyncContext *sub = r->sub;
    r->sub = NULL;
    r->sub_live = 0;
    evtimer_del(r->sub_timer);
    if (sub != NULL)
        redisAsyncFree(sub);
}

/* The subscription of channel, or NULL. */
static struct subscription *find_subscription(struct redis *r, const char *channel, size_t len)
{
    for (size_t i = 0; i < r->nsubs; i++)
        if (strlen(r->subs[i].channel) == len && memcmp(r->subs[i].channel, channel, len) == 0)
            return &r->subs[i];
    return NULL;
}

/* hiredis: a subscription's confirmation or message (NULL when the context goes away). */
static void on_sub_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct redis *r = privdata;
    redisReply *reply = reply_;
    if (reply == NULL || ac != r->sub)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (++r->sub_confirmed >= r->nsubs && !r->sub_live) {
            r->sub_live = 1;
            r->sub_backoff = BACKOFF_FIRST;
            evtimer_del(r->sub_timer);
            if (r->sub_outage_logged)
                log_info("redis: subscription connection to %s is back", r->where);
            r->sub_outage_logged = 0;
            r->sub_failures = 0;
        }
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        struct subscription *s =
            find_subscription(r, reply->element[1]->str, reply->element[1]->len);
        if (s != NULL && s->cb != NULL)
            s->cb(s->channel, reply->element[2]->str, reply->element[2]->len, s->arg);
    }
}

/* hiredis: the reply to the subscription connection's AUTH. */
static void on_sub_auth(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct redis *r = privdata;
    redisReply *reply = reply_;
    if (reply != NULL && ac == r->sub && reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "AUTH refused: %s", reply->str);
        lose_subscriber(r, why, 1);
    }
}

/* hiredis: the subscription connection is made, or failed (freed by hiredis after this). */
static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status != REDIS_OK && ac == r->sub)
        lose_subscriber(r, ac->errstr ? ac->errstr : "connect failed", 0);
}

/* hiredis: the subscription connection ended (freed by hiredis after this). */
static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct redis *r = ac->data;
    if (ac == r->sub)
        lose_subscriber(r, ac->errstr && ac->errstr[0] ? ac->errstr : "connection closed", 0);
}

/* SUBSCRIBEs one channel on the subscription connection. */
static void send_subscribe(struct redis *r, const char *channel)
{
    const char *argv[2] = {"SUBSCRIBE", channel};
    size_t lens[2] = {9, strlen(channel)};
    redisAsyncCommandArgv(r->sub, on_sub_reply, r, 2, argv, lens);
}

/* Opens the subscription connection, if there is anything to subscribe to: AUTH, then a
 * SUBSCRIBE per channel, confirmed within the command timeout. */
static void connect_subscriber(struct redis *r)
{
    char why[300];
    if (r->nsubs == 0 || r->sub != NULL || !r->up)
        return;
    redisAsyncContext *sub = open_context(r, r->ip, why, sizeof why);
    if (sub == NULL) {
        lose_subscriber(r, why, 0);
        return;
    }
    redisAsyncSetConnectCallback(sub, on_sub_connect);
    redisAsyncSetDisconnectCallback(sub, on_sub_disconnect);
    r->sub = sub;
    r->sub_confirmed = 0;
    if (r->addr.password != NULL) {
        const char *argv[3];
        size_t lens[3];
        int argc = auth_argv(r, argv, lens);
        redisAsyncCommandArgv(sub, on_sub_auth, r, argc, argv, lens);
    }
    for (size_t i = 0; i < r->nsubs; i++)
        send_subscribe(r, r->subs[i].channel);
    arm(r->sub_timer, r->timeout);
}

/* The subscription connection's timer: its SUBSCRIBEs went unconfirmed, or its back-off is
 * over. */
static void on_sub_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    if (r->sub != NULL)
        lose_subscriber(r, "SUBSCRIBE unconfirmed", 1);
    else
        connect_subscriber(r);
}

void redis_subscribe(struct redis *r, const char *channel, redis_message_fn *cb, void *arg)
{
    struct subscription *s = find_subscription(r, channel, strlen(channel));
    if (s == NULL) {
        if (r->nsubs == MAX_SUBSCRIPTIONS) {
            log_error("redis: more than %d channels subscribed; %s ignored", MAX_SUBSCRIPTIONS,
                      channel);
            return;
        }
        s = &r->subs[r->nsubs++];
        s->channel = xstrdup(channel);
        if (r->sub != NULL)
            send_subscribe(r, channel);
        else
            connect_subscriber(r);
    }
    s->cb = cb;
    s->arg = arg;
}

void redis_unsubscribe(struct redis *r, const char *channel)
{
    struct subscription *s = find_subscription(r, channel, strlen(channel));
    if (s != NULL)
        s->cb = NULL;
}

/* --- the client ----------------------------------------------------------------------- */

struct redis *redis_new(struct event_base *base, const struct redis_address *addr,
                        long timeout_ms)
{
    struct redis *r = xcalloc(1, sizeof *r);
    r->base = base;
    redis_address_copy(&r->addr, addr);
    redis_address_text(addr, r->where, sizeof r->where);
    r->timeout = (double)timeout_ms / 1000.0;
    r->backoff = BACKOFF_FIRST;
    r->sub_backoff = BACKOFF_FIRST;
    TAILQ_INIT(&r->pending);
    TAILQ_INIT(&r->failed);
    r->deadline_timer = evtimer_new(base, on_deadline, r);
    r->flush = event_new(base, -1, 0, on_flush, r);
    r->reconnect_timer = evtimer_new(base, on_reconnect, r);
    r->sub_timer = evtimer_new(base, on_sub_timer, r);
    /* The first attempt from the loop too: nothing happens inside this call. */
    arm(r->reconnect_timer, 0);
    return r;
}

void redis_free(struct redis *r)
{
    if (r == NULL)
        return;
    r->closing = 1;
    if (r->resolving != NULL) {
        /* evdns calls the cancelled request back later: it frees the resolver then. */
        struct resolving *q = r->resolving;
        q->r = NULL;
        q->dns = r->dns;
        r->dns = NULL;
        if (q->request != NULL)
            evdns_getaddrinfo_cancel(q->request);
    }
    drop_subscriber(r);
    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        fail_pending(r, REDIS_RESULT_CLOSED, "the Redis client is closing");
        redisAsyncFree(ac);
    }
    while (!TAILQ_EMPTY(&r->failed)) {
        struct command_list batch = TAILQ_HEAD_INITIALIZER(batch);
        TAILQ_CONCAT(&batch, &r->failed, link);
        call_back_failed(&batch);
    }
    event_free(r->deadline_timer);
    event_free(r->flush);
    event_free(r->reconnect_timer);
    event_free(r->sub_timer);
    if (r->dns != NULL)
        evdns_base_free(r->dns, 0);
    for (size_t i = 0; i < r->nsubs; i++)
        free(r->subs[i].channel);
    redis_address_free(&r->addr);
    free(r->ip);
    free(r);
}

int redis_up(const struct redis *r)
{
    return r->up;
}

void redis_on_state(struct redis *r, redis_state_fn *cb, void *arg)
{
    r->on_state = cb;
    r->state_arg = arg;
}

void redis_stats(const struct redis *r, struct redis_stats *out)
{
    *out = r->stats;
    out->up = r->up;
    out->subscribed = r->sub_live;
}
