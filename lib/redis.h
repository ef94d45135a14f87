/* A Redis client on the one event loop, for sharing state between replicas (lib/fleet.h).
 *
 * hiredis's asynchronous API driven by libevent (hiredis/adapters/libevent.h), never a
 * blocking call: a host name is resolved with evdns, connecting, AUTH and SELECT are
 * asynchronous, and every command has a deadline of our own (hiredis 0.14 has no
 * asynchronous timeouts). Two connections:
 *   - commands: one connection, pipelined (hiredis queues what is sent before the replies
 *     come back, which come back in order);
 *   - subscriptions: a second connection that only SUBSCRIBEs, because under RESP2 a
 *     subscribed connection may send nothing but (P)(UN)SUBSCRIBE, PING and QUIT.
 *
 * The client is up or down. It is up once the command connection has answered its
 * handshake (AUTH, SELECT, PING). When a command passes its deadline or the connection
 * drops, every command still waiting is called back once with an error, the client goes
 * down (logging once per outage, and once when it is back) and reconnects with exponential
 * back-off (100 ms doubling to 10 s). A command issued while down fails at once: its
 * callback runs from the loop, never inside the call that issued it.
 *
 * Keys: every key moviesd writes is "moviesd:v1:<kind>:<name>" (redis_key). */
#ifndef MOVIESD_REDIS_H
#define MOVIESD_REDIS_H

#include <stddef.h>

struct event_base;
struct config;
struct redisReply;      /* hiredis's reply: type, str/len, integer, element/elements */
struct redis;

#define REDIS_KEY_PREFIX "moviesd:v1:"

/* Where Redis is: redis_url parsed, with the password from it or from redis_password_file. */
enum redis_transport { REDIS_NONE, REDIS_TCP, REDIS_UNIX };
struct redis_address {
    enum redis_transport transport;
    char *host;             /* TCP: a name or an address literal (IPv6 without brackets) */
    int port;
    char *path;             /* UNIX: the socket */
    char *user;             /* NULL: AUTH with the password alone */
    char *password;         /* NULL: no AUTH */
    long long db;           /* SELECTed when not 0 */
};

/* Parses redis://[[user]:password@]host[:port][/db] (port 6379 and db 0 by default; user
 * and password may hold %XX escapes) or unix:///absolute/path[?db=N] into out (its strings
 * new; redis_address_free). Fails with -1 and the problem in err (never the password), out
 * zeroed, on another scheme (rediss:// named: no TLS here), a missing or bad host, a port
 * outside 1..65535, a db that is not 0..2147483647, a query, an empty password, control
 * characters, or a socket path longer than a socket address holds. */
int redis_url_parse(const char *url, struct redis_address *out, char *err, size_t errlen);
/* Frees the strings and zeroes a; accepts NULL. */
void redis_address_free(struct redis_address *a);
/* Deep copy (dst uninitialised or freed). */
void redis_address_copy(struct redis_address *dst, const struct redis_address *src);
/* "host:port", "[v6]:port" or the socket path, and " db N" when N is not 0: for logs,
 * never the password. */
void redis_address_text(const struct redis_address *a, char *out, size_t outlen);

/* Reads a password file: a regular file of at most 4096 bytes, its one line (a trailing
 * \n or \r\n dropped) non-empty and free of control characters. Returns 0 with *out new,
 * or -1 with "PATH: reason" in err. Blocking: for startup only. */
int redis_password_read(const char *path, char **out, char *err, size_t errlen);
/* The address the settings name: redis_url parsed and redis_password_file read (a password
 * in both, or a file without a URL, is an error). Returns 0 (transport REDIS_NONE when
 * redis_url is empty), or -1 with "setting: reason" in err. Blocking: for startup only. */
int redis_address_from_config(const struct config *c, struct redis_address *out, char *err,
                              size_t errlen);

/* How a command ended. REPLY: Redis answered with an error reply (reply->str says it).
 * DOWN: not sent, the client was down. CLOSED: the client was freed first. */
enum redis_result {
    REDIS_RESULT_OK,
    REDIS_RESULT_REPLY,
    REDIS_RESULT_TIMEOUT,
    REDIS_RESULT_CONNECTION,
    REDIS_RESULT_DOWN,
    REDIS_RESULT_CLOSED,
    REDIS_RESULT_COUNT
};
/* "ok", "reply", "timeout", "connection", "down", "closed": metric labels. */
const char *redis_result_name(enum redis_result result);

/* A command's one callback. reply is borrowed for the call and set for OK and REPLY; error
 * (borrowed) says what went wrong, NULL for OK. */
typedef void redis_reply_fn(enum redis_result result, const struct redisReply *reply,
                            const char *error, void *arg);
/* A message published on a subscribed channel: data borrowed for the call, len bytes. */
typedef void redis_message_fn(const char *channel, const char *data, size_t len, void *arg);
/* The client went up (1) or down (0). */
typedef void redis_state_fn(int up, void *arg);

/* Round-trip histogram bounds, seconds (the last bucket, +Inf, is implied). */
#define REDIS_ROUND_TRIP_BUCKETS 12
extern const double redis_round_trip_bounds[REDIS_ROUND_TRIP_BUCKETS];

struct redis_stats {
    int up;                                 /* 0 or 1 */
    int subscribed;                         /* the subscription connection is live */
    size_t in_flight;                       /* commands sent, reply awaited */
    /* Replies, by time from issue to reply: per bucket (not cumulative), total, sum. */
    unsigned long long round_trip_buckets[REDIS_ROUND_TRIP_BUCKETS];
    unsigned long long round_trips;
    double round_trip_seconds;
    /* Commands that failed, by result (OK and CLOSED stay 0); the handshake's own are not
     * counted: reconnects and outages tell of those. */
    unsigned long long errors[REDIS_RESULT_COUNT];
    unsigned long long reconnects;          /* connection attempts after an outage began */
    unsigned long long outages;             /* times the client went down (or never came up) */
};

/* A client for addr (copied; transport TCP or UNIX) on base (borrowed), each command's
 * deadline timeout_ms. It starts connecting at once, from the loop. */
struct redis *redis_new(struct event_base *base, const struct redis_address *addr,
                        long timeout_ms);
/* Closes both connections. Every command still waiting is called back with CLOSED before
 * this returns. Not to be called from inside one of the client's callbacks. Accepts NULL. */
void redis_free(struct redis *r);

int redis_up(const struct redis *r);
/* Calls cb on every change of state from now on (one callback; NULL removes it). */
void redis_on_state(struct redis *r, redis_state_fn *cb, void *arg);

/* Sends a command of argc arguments (argv[i] of lens[i] bytes, any bytes; copied before
 * this returns). cb (may be NULL) is called exactly once, from the loop or from a reply,
 * never from inside this call. */
void redis_command_argv(struct redis *r, redis_reply_fn *cb, void *arg, int argc,
                        const char *const *argv, const size_t *lens);
/* The same with hiredis's format: words split at spaces, %s a C string, %b a pointer and a
 * size_t length, %lld a long long. */
void redis_command(struct redis *r, redis_reply_fn *cb, void *arg, const char *format, ...);

/* Delivers messages on channel to cb, on the subscription connection, from now on and
 * across reconnections (one callback per channel; at most 8 channels). */
void redis_subscribe(struct redis *r, const char *channel, redis_message_fn *cb, void *arg);
/* Stops delivering channel's messages to its callback (the connection stays subscribed). */
void redis_unsubscribe(struct redis *r, const char *channel);

/* The counters and gauges for /metrics. */
void redis_stats(const struct redis *r, struct redis_stats *out);

/* "moviesd:v1:<kind>:<name>" (new). */
char *redis_key(const char *kind, const char *name);

#endif
