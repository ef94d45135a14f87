/* A test program that drives lib/redis.c and lib/fleet.c against a real Redis, for
 * tests/integration/test_redis_*.py: commands on stdin, one per line, events on stdout,
 * one JSON object per line. Every command starts with an id the events that answer it carry:
 *
 *   ID state                               {"up", "subscribed"}
 *   ID stats                               the client's and the fleet's counters
 *   ID cmd ARG...                          a raw command (hex:ABCD for binary arguments)
 *   ID budget SPACING CAP PCAP             one fleet_budget_ask
 *   ID budget_loop SPACING CAP SECONDS     asks again and again for SECONDS, honouring waits:
 *                                          one "grant" event per grant, then "loop_done"
 *   ID trip BACKOFF MAX RETRY | ID check | ID breaker_ok
 *   ID lock NAME TTL | ID renew NAME TTL | ID lost NAME | ID release NAME | ID notify NAME
 *   ID watch NAME HOLDER TTL WAIT          ends with a "watch" event; a takeover keeps the lock
 *   ID cancel_watch WATCHID
 *   ID vset KIND NAME TTL FIELD=HEX...     fleet_value_set
 *   ID vget KIND NAME                      fleet_value_get: fields in hex
 *   ID bench N ARG...                      N round trips of a raw command, one after another
 *   ID bench_pipelined N ARG...            N at once
 *   ID bench_budget N                      N budget asks without limits, one after another
 *   ID quit                                frees everything and exits 0
 * and, unasked, {"event": "up"} / {"event": "down"} when the client changes state. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "envelope.h"
#include "fleet.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#define MAX_WORDS 32

struct held {
    char *name;
    struct fleet_lock *lock;
};

struct watching {
    char *id;
    struct fleet_watch *watch;
    struct driver *d;
    double started;
};

struct request;
LIST_HEAD(request_list, request);

struct driver {
    struct event_base *base;
    struct request_list requests;   /* in flight: freed at quit if the fleet never answers */
    struct redis *redis;
    struct fleet *fleet;
    struct event *input;
    char *buf;
    size_t len, cap;
    struct held locks[64];
    struct watching *watches[64];
    int quitting;
};

/* A request in flight: its id and, for loops and benchmarks, their state. */
struct request {
    LIST_ENTRY(request) link;
    struct driver *d;
    char *id;
    double started;
    /* budget_loop */
    long long spacing, cap;
    double until;
    long grants;
    struct event *timer;
    /* bench */
    long left, total, failed;
    int pipelined;
    int argc;
    char **argv;
    size_t *lens;
};

static struct driver driver;

/* Prints one event: obj (stolen) with "id" and "event" added. */
static void emit(const char *id, const char *event, json_t *obj)
{
    if (obj == NULL)
        obj = json_object();
    if (id != NULL)
        json_object_set_new(obj, "id", json_string(id));
    json_object_set_new(obj, "event", json_string(event));
    char *text = json_dumps(obj, JSON_COMPACT);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(obj);
}

static struct request *request_new(struct driver *d, const char *id)
{
    struct request *q = xcalloc(1, sizeof *q);
    q->d = d;
    q->id = xstrdup(id);
    q->started = clock_monotonic();
    LIST_INSERT_HEAD(&d->requests, q, link);
    return q;
}

static void request_free(struct request *q)
{
    LIST_REMOVE(q, link);
    if (q->timer != NULL)
        event_free(q->timer);
    for (int i = 0; i < q->argc; i++)
        free(q->argv[i]);
    free(q->argv);
    free(q->lens);
    free(q->id);
    free(q);
}

/* Lower-case hex of len bytes (new JSON string). */
static json_t *hex_of(const char *data, size_t len)
{
    char *out = xmalloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)data[i]);
    out[len * 2] = '\0';
    json_t *s = json_string(out);
    free(out);
    return s;
}

/* The value of a hex digit, or -1. */
static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes hex text into new bytes (*len); NULL on bad hex. */
static char *unhex(const char *text, size_t *len)
{
    size_t n = strlen(text);
    if (n % 2 != 0)
        return NULL;
    char *out = xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi * 16 + lo);
    }
    *len = n / 2;
    return out;
}

/* A hiredis reply as JSON. */
static json_t *reply_json(const redisReply *r)
{
    if (r == NULL)
        return json_null();
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);
    case REDIS_REPLY_NIL:
        return json_null();
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++)
            json_array_append_new(a, reply_json(r->element[i]));
        return a;
    }
    default: {
        json_t *s = json_stringn(r->str, r->len);
        return s != NULL ? s : json_pack("{s:o}", "hex", hex_of(r->str, r->len));
    }
    }
}

/* --- client and raw commands -------------------------------------------------------- */

static void on_state(int up, void *arg)
{
    (void)arg;
    emit(NULL, up ? "up" : "down", NULL);
}

static void on_cmd(enum redis_result result, const struct redisReply *reply, const char *error,
                   void *arg)
{
    struct request *q = arg;
    emit(q->id, "reply", json_pack("{s:s,s:o,s:s?,s:f}", "result", redis_result_name(result),
                                   "reply", reply_json((const redisReply *)reply), "error", error,
                                   "seconds", clock_monotonic() - q->started));
    request_free(q);
}

/* Takes words as a command's arguments (hex: decoded) into q. */
static void take_args(struct request *q, int argc, char **words)
{
    q->argc = argc;
    q->argv = xcalloc((size_t)argc + 1, sizeof *q->argv);
    q->lens = xcalloc((size_t)argc + 1, sizeof *q->lens);
    for (int i = 0; i < argc; i++) {
        size_t len;
        char *bytes = strncmp(words[i], "hex:", 4) == 0 ? unhex(words[i] + 4, &len) : NULL;
        if (bytes == NULL) {
            bytes = xstrdup(words[i]);
            len = strlen(bytes);
        }
        q->argv[i] = bytes;
        q->lens[i] = len;
    }
}

static void on_bench(enum redis_result result, const struct redisReply *reply, const char *error,
                     void *arg)
{
    (void)reply;
    (void)error;
    struct request *q = arg;
    q->failed += result != REDIS_RESULT_OK;
    if (--q->left > 0) {
        if (!q->pipelined && result == REDIS_RESULT_OK)   /* serial: the next after this reply */
            redis_command_argv(q->d->redis, on_bench, q, q->argc, (const char *const *)q->argv,
                               q->lens);
        if (q->pipelined || result == REDIS_RESULT_OK)
            return;
    }
    double s = clock_monotonic() - q->started;
    emit(q->id, "bench", json_pack("{s:s,s:I,s:f,s:f}", "result", q->failed ? "failed" : "ok",
                                   "n", (json_int_t)q->total, "seconds", s, "mean_us",
                                   s / (double)q->total * 1e6));
    request_free(q);
}

static void on_bench_budget(enum fleet_budget verdict, long long ms, void *arg)
{
    (void)ms;
    struct request *q = arg;
    if (verdict != FLEET_BUDGET_GRANTED) {
        emit(q->id, "bench", json_pack("{s:s}", "result", "not granted"));
        request_free(q);
        return;
    }
    if (--q->left > 0) {
        fleet_budget_ask(q->d->fleet, 0, 0, 0, on_bench_budget, q);
        return;
    }
    double s = clock_monotonic() - q->started;
    emit(q->id, "bench", json_pack("{s:s,s:I,s:f,s:f}", "result", "ok", "n", (json_int_t)q->total,
                                   "seconds", s, "mean_us", s / (double)q->total * 1e6));
    request_free(q);
}

/* --- budget and breaker ------------------------------------------------------------- */

static const char *budget_word(enum fleet_budget v)
{
    static const char *const words[] = {"granted", "wait", "blocked", "error"};
    return words[v];
}

static void on_budget(enum fleet_budget verdict, long long ms, void *arg)
{
    struct request *q = arg;
    emit(q->id, "budget", json_pack("{s:s,s:I}", "verdict", budget_word(verdict), "ms",
                                    (json_int_t)ms));
    request_free(q);
}

static void loop_ask(struct request *q);

static void on_loop_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_ask(arg);
}

static void on_loop_budget(enum fleet_budget verdict, long long ms, void *arg)
{
    struct request *q = arg;
    long long wait = 0;
    if (verdict == FLEET_BUDGET_GRANTED) {
        q->grants++;
        emit(q->id, "grant", json_pack("{s:I}", "ms", (json_int_t)ms));
    } else if (verdict == FLEET_BUDGET_ERROR) {
        wait = 50;
    } else {
        wait = ms;
    }
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(q->timer, &tv);
}

/* The loop's next ask, or its end. */
static void loop_ask(struct request *q)
{
    if (clock_monotonic() >= q->until) {
        emit(q->id, "loop_done", json_pack("{s:I}", "grants", (json_int_t)q->grants));
        request_free(q);
        return;
    }
    fleet_budget_ask(q->d->fleet, q->spacing, q->cap, 0, on_loop_budget, q);
}

static void on_breaker(enum fleet_status status, long long ms, int opened, void *arg)
{
    struct request *q = arg;
    emit(q->id, "breaker", json_pack("{s:s,s:I,s:b}", "status", status == FLEET_OK ? "ok" : "error",
                                     "ms", (json_int_t)ms, "opened", opened));
    request_free(q);
}

/* --- locks and watches -------------------------------------------------------------- */

static struct held *held_of(struct driver *d, const char *name, int make)
{
    for (int i = 0; i < 64; i++)
        if (d->locks[i].name != NULL && strcmp(d->locks[i].name, name) == 0)
            return &d->locks[i];
    if (!make)
        return NULL;
    for (int i = 0; i < 64; i++)
        if (d->locks[i].name == NULL) {
            d->locks[i].name = xstrdup(name);
            return &d->locks[i];
        }
    return NULL;
}

static void forget_lock(struct held *h)
{
    free(h->name);
    h->name = NULL;
    h->lock = NULL;
}

static void on_lock(enum fleet_lock_result result, struct fleet_lock *lock, const char *holder,
                    void *arg)
{
    struct request *q = arg;
    if (result == FLEET_LOCK_ACQUIRED) {
        held_of(q->d, fleet_lock_name(lock), 1)->lock = lock;
        emit(q->id, "lock", json_pack("{s:s,s:s}", "result", "acquired", "token",
                                      fleet_lock_token(lock)));
    } else if (result == FLEET_LOCK_HELD) {
        emit(q->id, "lock", json_pack("{s:s,s:s}", "result", "held", "holder", holder));
    } else {
        emit(q->id, "lock", json_pack("{s:s}", "result", "error"));
    }
    request_free(q);
}

static void on_status(enum fleet_status status, int yes, void *arg)
{
    struct request *q = arg;
    emit(q->id, "status", json_pack("{s:s,s:b,s:f}", "status", status == FLEET_OK ? "ok" : "error",
                                    "yes", yes, "seconds", clock_monotonic() - q->started));
    request_free(q);
}

static void on_watch(enum fleet_watch_result result, struct fleet_lock *lock, void *arg)
{
    static const char *const words[] = {"done", "takeover", "timeout", "error"};
    struct watching *w = arg;
    json_t *o = json_pack("{s:s,s:f}", "result", words[result], "seconds",
                          clock_monotonic() - w->started);
    if (lock != NULL) {
        held_of(w->d, fleet_lock_name(lock), 1)->lock = lock;
        json_object_set_new(o, "token", json_string(fleet_lock_token(lock)));
    }
    emit(w->id, "watch", o);
    for (int i = 0; i < 64; i++)
        if (w->d->watches[i] == w)
            w->d->watches[i] = NULL;
    free(w->id);
    free(w);
}

/* --- values ------------------------------------------------------------------------- */

static void on_value(enum fleet_value_result result, const struct envelope *value,
                     const char *error, void *arg)
{
    static const char *const words[] = {"found", "missing", "corrupt", "error"};
    struct request *q = arg;
    json_t *o = json_pack("{s:s,s:s?}", "result", words[result], "error", error);
    if (value != NULL) {
        json_t *fields = json_object();
        for (size_t i = 0; i < value->count; i++)
            json_object_set_new(fields, value->fields[i].name,
                                hex_of(value->fields[i].data, value->fields[i].len));
        json_object_set_new(o, "fields", fields);
    }
    emit(q->id, "value", o);
    request_free(q);
}

/* --- commands ----------------------------------------------------------------------- */

static long long number(const char *s)
{
    return strtoll(s, NULL, 10);
}

static void quit(struct driver *d);

/* Runs one input line. */
static void run_line(struct driver *d, char *line)
{
    char *words[MAX_WORDS];
    int n = 0;
    for (char *w = strtok(line, " \t\r"); w != NULL && n < MAX_WORDS; w = strtok(NULL, " \t\r"))
        words[n++] = w;
    if (n < 2)
        return;
    const char *id = words[0], *verb = words[1];
    char **args = words + 2;
    int nargs = n - 2;
    struct request *q = request_new(d, id);
    if (strcmp(verb, "state") == 0) {
        struct redis_stats st;
        redis_stats(d->redis, &st);
        emit(id, "state", json_pack("{s:b,s:b}", "up", st.up, "subscribed", st.subscribed));
        request_free(q);
    } else if (strcmp(verb, "stats") == 0) {
        struct redis_stats st;
        struct fleet_stats fs;
        redis_stats(d->redis, &st);
        fleet_stats(d->fleet, &fs);
        json_t *errors = json_object();
        for (int i = 0; i < REDIS_RESULT_COUNT; i++)
            json_object_set_new(errors, redis_result_name((enum redis_result)i),
                                json_integer((json_int_t)st.errors[i]));
        emit(id, "stats", json_pack("{s:b,s:I,s:I,s:f,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                                    "up", st.up, "in_flight", (json_int_t)st.in_flight,
                                    "round_trips", (json_int_t)st.round_trips, "round_trip_seconds",
                                    st.round_trip_seconds, "errors", errors, "reconnects",
                                    (json_int_t)st.reconnects, "outages", (json_int_t)st.outages,
                                    "locks_acquired", (json_int_t)fs.locks_acquired, "locks_lost",
                                    (json_int_t)fs.locks_lost, "watch_done",
                                    (json_int_t)fs.watches[FLEET_WATCH_DONE], "watch_takeover",
                                    (json_int_t)fs.watches[FLEET_WATCH_TAKEOVER], "breaker_trips",
                                    (json_int_t)fs.breaker_trips, "budget_granted",
                                    (json_int_t)fs.budget[FLEET_BUDGET_GRANTED]));
        request_free(q);
    } else if (strcmp(verb, "cmd") == 0 && nargs >= 1) {
        take_args(q, nargs, args);
        redis_command_argv(d->redis, on_cmd, q, q->argc, (const char *const *)q->argv, q->lens);
    } else if ((strcmp(verb, "bench") == 0 || strcmp(verb, "bench_pipelined") == 0) && nargs >= 2) {
        q->left = q->total = number(args[0]);
        take_args(q, nargs - 1, args + 1);
        if (strcmp(verb, "bench") == 0) {
            redis_command_argv(d->redis, on_bench, q, q->argc, (const char *const *)q->argv,
                               q->lens);
        } else {
            q->pipelined = 1;
            for (long i = 0; i < q->total; i++)
                redis_command_argv(d->redis, on_bench, q, q->argc, (const char *const *)q->argv,
                                   q->lens);
        }
    } else if (strcmp(verb, "bench_budget") == 0 && nargs == 1) {
        q->left = q->total = number(args[0]);
        fleet_budget_ask(d->fleet, 0, 0, 0, on_bench_budget, q);
    } else if (strcmp(verb, "budget") == 0 && nargs == 3) {
        fleet_budget_ask(d->fleet, number(args[0]), number(args[1]), number(args[2]), on_budget, q);
    } else if (strcmp(verb, "budget_loop") == 0 && nargs == 3) {
        q->spacing = number(args[0]);
        q->cap = number(args[1]);
        q->until = clock_monotonic() + (double)number(args[2]);
        q->timer = evtimer_new(d->base, on_loop_timer, q);
        loop_ask(q);
    } else if (strcmp(verb, "trip") == 0 && nargs == 3) {
        fleet_breaker_trip(d->fleet, number(args[0]), number(args[1]), number(args[2]), on_breaker, q);
    } else if (strcmp(verb, "check") == 0) {
        fleet_breaker_check(d->fleet, on_breaker, q);
    } else if (strcmp(verb, "breaker_ok") == 0) {
        fleet_breaker_ok(d->fleet, on_breaker, q);
    } else if (strcmp(verb, "lock") == 0 && nargs == 2) {
        fleet_lock_acquire(d->fleet, args[0], number(args[1]), on_lock, q);
    } else if (strcmp(verb, "renew") == 0 && nargs == 2 && held_of(d, args[0], 0) != NULL) {
        fleet_lock_renew(held_of(d, args[0], 0)->lock, number(args[1]), on_status, q);
    } else if (strcmp(verb, "lost") == 0 && nargs == 1 && held_of(d, args[0], 0) != NULL) {
        emit(id, "lost", json_pack("{s:b}", "lost", fleet_lock_lost(held_of(d, args[0], 0)->lock)));
        request_free(q);
    } else if ((strcmp(verb, "release") == 0 || strcmp(verb, "notify") == 0) && nargs == 1 &&
               held_of(d, args[0], 0) != NULL) {
        struct held *h = held_of(d, args[0], 0);
        if (strcmp(verb, "release") == 0)
            fleet_lock_release(h->lock);
        else
            fleet_notify(h->lock);
        forget_lock(h);
        emit(id, "sent", NULL);
        request_free(q);
    } else if (strcmp(verb, "watch") == 0 && nargs == 4) {
        struct watching *w = xcalloc(1, sizeof *w);
        w->id = xstrdup(id);
        w->d = d;
        w->started = clock_monotonic();
        for (int i = 0; i < 64; i++)
            if (d->watches[i] == NULL) {
                d->watches[i] = w;
                break;
            }
        w->watch = fleet_watch(d->fleet, args[0], args[1], number(args[2]), number(args[3]),
                               on_watch, w);
        request_free(q);
    } else if (strcmp(verb, "cancel_watch") == 0 && nargs == 1) {
        for (int i = 0; i < 64; i++)
            if (d->watches[i] != NULL && strcmp(d->watches[i]->id, args[0]) == 0) {
                fleet_watch_cancel(d->watches[i]->watch);
                free(d->watches[i]->id);
                free(d->watches[i]);
                d->watches[i] = NULL;
            }
        emit(id, "cancelled", NULL);
        request_free(q);
    } else if (strcmp(verb, "vset") == 0 && nargs >= 3) {
        struct envelope_field fields[ENVELOPE_MAX_FIELDS + 1];
        char *bytes[ENVELOPE_MAX_FIELDS + 1];
        int count = 0;
        for (int i = 3; i < nargs && count <= ENVELOPE_MAX_FIELDS; i++) {
            char *eq = strchr(args[i], '=');
            size_t len = 0;
            if (eq == NULL)
                continue;
            *eq = '\0';
            bytes[count] = unhex(eq + 1, &len);
            fields[count] = (struct envelope_field){args[i], bytes[count], len};
            count++;
        }
        if (fleet_value_set(d->fleet, args[0], args[1], fields, (size_t)count, number(args[2]),
                            on_status, q) != 0) {
            emit(id, "status", json_pack("{s:s}", "status", "refused"));
            request_free(q);
        }
        for (int i = 0; i < count; i++)
            free(bytes[i]);
    } else if (strcmp(verb, "vget") == 0 && nargs == 2) {
        if (fleet_value_get(d->fleet, args[0], args[1], on_value, q) != 0) {
            emit(id, "value", json_pack("{s:s}", "result", "refused"));
            request_free(q);
        }
    } else if (strcmp(verb, "quit") == 0) {
        request_free(q);
        quit(d);
    } else {
        emit(id, "bad_command", NULL);
        request_free(q);
    }
}

/* stdin is readable: run the complete lines; at its end, quit. */
static void on_input(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct driver *d = arg;
    if (d->cap - d->len < 4096) {
        d->cap = d->cap * 2 + 8192;
        d->buf = xrealloc(d->buf, d->cap);
    }
    ssize_t n = read(fd, d->buf + d->len, d->cap - d->len - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        quit(d);
        return;
    }
    d->len += (size_t)n;
    char *start = d->buf, *nl;
    while (!d->quitting && (nl = memchr(start, '\n', (size_t)(d->buf + d->len - start))) != NULL) {
        *nl = '\0';
        run_line(d, start);
        start = nl + 1;
    }
    if (d->quitting)
        return;
    d->len -= (size_t)(start - d->buf);
    memmove(d->buf, start, d->len);
}

/* Frees the fleet and the client (calling back what is pending), then ends the loop. */
static void quit(struct driver *d)
{
    if (d->quitting)
        return;
    d->quitting = 1;
    for (int i = 0; i < 64; i++)
        if (d->watches[i] != NULL) {
            free(d->watches[i]->id);
            free(d->watches[i]);
            d->watches[i] = NULL;
        }
    for (int i = 0; i < 64; i++)
        free(d->locks[i].name);
    fleet_free(d->fleet);
    redis_free(d->redis);   /* calls back the raw commands, which free their requests */
    d->fleet = NULL;
    d->redis = NULL;
    while (!LIST_EMPTY(&d->requests))
        request_free(LIST_FIRST(&d->requests));
    event_base_loopbreak(d->base);
}

int main(int argc, char **argv)
{
    struct driver *d = &driver;
    const char *url = NULL;
    long timeout_ms = 250;
    struct fleet_options o = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = (long)number(argv[i + 1]);
        else if (strcmp(argv[i], "--window-ms") == 0)
            o.window_ms = number(argv[i + 1]);
        else if (strcmp(argv[i], "--poll-ms") == 0)
            o.poll_ms = number(argv[i + 1]);
        else if (strcmp(argv[i], "--done-ttl-ms") == 0)
            o.done_ttl_ms = number(argv[i + 1]);
    }
    struct redis_address addr;
    char err[300];
    if (url == NULL || redis_url_parse(url, &addr, err, sizeof err) != 0) {
        fprintf(stderr, "redis_driver: --url: %s\n", url ? err : "missing");
        return 2;
    }
    const char *password_file = getenv("TEST_REDIS_PASSWORD_FILE");
    if (password_file != NULL &&
        redis_password_read(password_file, &addr.password, err, sizeof err) != 0) {
        fprintf(stderr, "redis_driver: %s\n", err);
        return 2;
    }
    log_init(LOG_DEBUG);
    LIST_INIT(&d->requests);
    setvbuf(stdout, NULL, _IOLBF, 0);
    d->base = event_base_new();
    d->redis = redis_new(d->base, &addr, timeout_ms);
    redis_address_free(&addr);
    redis_on_state(d->redis, on_state, d);
    d->fleet = fleet_new(d->base, d->redis, &o);
    fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    d->input = event_new(d->base, STDIN_FILENO, EV_READ | EV_PERSIST, on_input, d);
    event_add(d->input, NULL);
    event_base_dispatch(d->base);
    event_free(d->input);
    free(d->buf);
    event_base_free(d->base);
    return 0;
}
