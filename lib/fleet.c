/* Each primitive is one round trip: a Lua script (EVAL) or one command, atomic on the server,
 * so that replicas racing for the same budget, breaker or lock see one order of events.
 * Scripts read the time with TIME (Redis's clock, the same for every replica) and never the
 * caller's. They are sent whole every time (EVAL, not EVALSHA): measured on loopback with
 * the budget script (1.1 KB), a round trip takes 65 us with EVAL and 60 us with EVALSHA (a
 * PING 53 us), and pipelined the server spends 12-17 us against 8 us on each. At the few
 * calls per second a fleet makes that is nothing, and EVAL needs no script cache kept in
 * step: no NOSCRIPT to handle after every Redis restart or SCRIPT FLUSH.
 *
 * Lifetimes. Every command in flight holds a reference on the fleet (refs), so fleet_free
 * only marks it dead while any is out: their callbacks then run nobody's code and the last
 * one frees it. Locks are referenced the same way by their renewals; watches by their check
 * in flight (checking). */
#include "fleet.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#define CHANNEL REDIS_KEY_PREFIX "channel:flights"
#define TOKEN_LEN 32
/* The most words of one EVAL: EVAL, script, numkeys, then keys and arguments. */
#define MAX_ARGS 12

/* KEYS: starts, next, breaker, prefetch starts. ARGV: spacing, per-minute cap, prefetch
 * cap, window (ms), this start's member. Returns {0, now} granted, {1, ms} wait, {2, ms}
 * breaker open. The spacing is a key that expires when it is over: its PTTL is the wait. */
static const char budget_lua[] =
    "local open = redis.call('PTTL', KEYS[3])\n"
    "if open > 0 then return {2, open} end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local spacing, cap, pcap, window = tonumber(ARGV[1]), tonumber(ARGV[2]),\n"
    "    tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local wait = redis.call('PTTL', KEYS[2])\n"
    "if wait < 0 then wait = 0 end\n"
    "local function full(key, limit)\n"
    "  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "  local n = redis.call('ZCARD', key)\n"
    "  if limit <= 0 or n < limit then return 0 end\n"
    "  local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')\n"
    "  return math.max(1, tonumber(oldest[2]) + window - now + 1)\n"
    "end\n"
    "wait = math.max(wait, full(KEYS[1], cap))\n"
    "if pcap > 0 then wait = math.max(wait, full(KEYS[4], pcap)) end\n"
    "if wait > 0 then return {1, wait} end\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[1], window)\n"
    "if pcap > 0 then\n"
    "  redis.call('ZADD', KEYS[4], now, ARGV[5])\n"
    "  redis.call('PEXPIRE', KEYS[4], window)\n"
    "end\n"
    "if spacing > 0 then redis.call('SET', KEYS[2], '1', 'PX', spacing) end\n"
    "return {0, now}\n";

/* KEYS: open, level. ARGV: backoff, max, retry-after (ms). Returns {opened, pause ms}. */
static const char trip_lua[] =
    "local left = redis.call('PTTL', KEYS[1])\n"
    "if left > 0 then return {0, left} end\n"
    "local backoff, max = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local level = tonumber(redis.call('GET', KEYS[2]))\n"
    "if level then backoff = level * 2 end\n"
    "backoff = math.min(backoff, max)\n"
    "redis.call('SET', KEYS[2], backoff, 'PX', 2 * max)\n"
    "local pause = math.max(backoff, tonumber(ARGV[3]))\n"
    "redis.call('SET', KEYS[1], pause, 'PX', pause)\n"
    "return {1, pause}\n";

/* KEYS: open, level. Forgets the level unless the breaker is open; returns {0, open ms}. */
static const char breaker_ok_lua[] =
    "local left = redis.call('PTTL', KEYS[1])\n"
    "if left > 0 then return {0, left} end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return {0, 0}\n";

/* KEYS: lock. ARGV: token, ttl. Returns {1, token} taken, or {0, holder}. */
static const char acquire_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ARGV[1]} end\n"
    "return {0, redis.call('GET', KEYS[1])}\n";

/* KEYS: lock. ARGV: token, ttl. Returns 1 if still ours (and extended), else 0. */
static const char renew_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

/* KEYS: lock, done. ARGV: token, done ttl (0: given up, not done), channel, name. Marks the
 * flight done (or not), deletes the lock if ours, tells the waiters. Returns 1 if it was
 * ours. */
static const char finish_lua[] =
    "local mine = redis.call('GET', KEYS[1]) == ARGV[1]\n"
    "local done = tonumber(ARGV[2]) > 0\n"
    "if done then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end\n"
    "if mine then redis.call('DEL', KEYS[1]) end\n"
    "redis.call('PUBLISH', ARGV[3], (done and 'd ' or 'a ') .. ARGV[1] .. ' ' .. ARGV[4])\n"
    "return mine and 1 or 0\n";

/* KEYS: lock, done. ARGV: holder, a new token, ttl. Returns {0} still running, {1} done,
 * {2, token} taken over by the caller, {3, holder} someone else's now. */
static const char check_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then return {0} end\n"
    "if redis.call('GET', KEYS[2]) == ARGV[1] then return {1} end\n"
    "if cur then return {3, cur} end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "return {2, ARGV[2]}\n";

static const char *const reserved_kinds[] = {"budget", "breaker", "lock", "done", "channel", NULL};

struct fleet_lock {
    TAILQ_ENTRY(fleet_lock) link;
    struct fleet *f;
    char *name, *key, *done_key;
    char token[TOKEN_LEN + 1];
    long long ttl_ms;
    struct event *renew_timer;
    int lost;
    int released;       /* given back to the fleet: freed when refs reach 0 */
    int refs;           /* commands in flight that will touch it */
};

struct fleet_watch {
    TAILQ_ENTRY(fleet_watch) link;
    struct fleet *f;
    char *name, *key, *done_key;
    char *holder;
    char candidate[TOKEN_LEN + 1];  /* the token a takeover by this check would use */
    long long ttl_ms;
    double started;
    struct event *poll_timer, *deadline_timer;
    int checking;       /* a check is in flight (it holds the watch) */
    int recheck;        /* a message asked for another check during it */
    int finished;       /* called back or cancelled */
    int woken;          /* a done message for it is being delivered */
    fleet_watch_fn *cb;
    void *arg;
};

struct fleet {
    struct event_base *base;
    struct redis *redis;
    long long window_ms, poll_ms, done_ttl_ms;
    char id[17];                    /* this process's part of tokens and members */
    unsigned long long counter;
    char *k_starts, *k_prefetch, *k_next, *k_open, *k_level;
    TAILQ_HEAD(, fleet_watch) watches;
    TAILQ_HEAD(, fleet_lock) locks;
    size_t refs;                    /* commands in flight */
    int dead;
    struct fleet_stats stats;
};

/* One command in flight and whom to tell. */
struct op {
    struct fleet *f;
    struct fleet_lock *lock;        /* referenced, or NULL */
    union {
        fleet_budget_fn *budget;
        fleet_breaker_fn *breaker;
        fleet_lock_fn *lock;
        fleet_status_fn *status;
        fleet_value_fn *value;
    } cb;
    void *arg;
    char *name;
    long long ttl_ms;
    char token[TOKEN_LEN + 1];
};

/* --- plumbing ------------------------------------------------------------------------- */

static void fleet_destroy(struct fleet *f)
{
    free(f->k_starts);
    free(f->k_prefetch);
    free(f->k_next);
    free(f->k_open);
    free(f->k_level);
    free(f);
}

/* Drops a reference; a dead fleet goes with its last one. */
static void fleet_unref(struct fleet *f)
{
    if (--f->refs == 0 && f->dead)
        fleet_destroy(f);
}

static void lock_free(struct fleet_lock *l)
{
    event_free(l->renew_timer);
    free(l->name);
    free(l->key);
    free(l->done_key);
    free(l);
}

/* Drops a reference; a released lock goes with its last one. */
static void lock_unref(struct fleet_lock *l)
{
    if (l != NULL && --l->refs == 0 && l->released)
        lock_free(l);
}

static struct op *op_new(struct fleet *f, struct fleet_lock *lock, void *arg)
{
    struct op *op = xcalloc(1, sizeof *op);
    op->f = f;
    op->arg = arg;
    op->lock = lock;
    if (lock != NULL)
        lock->refs++;
    f->refs++;
    return op;
}

/* Frees op and its references. */
static void op_free(struct op *op)
{
    struct fleet *f = op->f;
    lock_unref(op->lock);
    free(op->name);
    free(op);
    fleet_unref(f);
}

/* A new token: this process's id and a counter, 32 hex digits. */
static void new_token(struct fleet *f, char out[TOKEN_LEN + 1])
{
    snprintf(out, TOKEN_LEN + 1, "%s%016llx", f->id, ++f->counter);
}

/* Sends EVAL script with keys and args (C strings). */
static void eval(struct fleet *f, const char *script, int nkeys, const char *const *keys,
                 int nargs, const char *const *args, redis_reply_fn *cb, void *arg)
{
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char numkeys[8];
    int argc = 0;
    if (nkeys < 0 || nargs < 0 || 3 + nkeys + nargs > MAX_ARGS) {
        log_error("redis: a script with %d keys and %d arguments exceeds MAX_ARGS", nkeys, nargs);
        abort();    /* a programming error, caught by any test of the script */
    }
    snprintf(numkeys, sizeof numkeys, "%d", nkeys);
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = numkeys;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redis_command_argv(f->redis, cb, arg, argc, argv, lens);
}

/* The integer at index i of an array reply, into *out; 0 or -1. */
static int reply_integer(const redisReply *reply, size_t i, long long *out)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements <= i ||
        reply->element[i]->type != REDIS_REPLY_INTEGER)
        return -1;
    *out = reply->element[i]->integer;
    return 0;
}

/* The string at index i of an array reply (borrowed), or NULL. */
static const char *reply_string(const redisReply *reply, size_t i)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements <= i ||
        reply->element[i]->type != REDIS_REPLY_STRING)
        return NULL;
    return reply->element[i]->str;
}

/* --- budget --------------------------------------------------------------------------- */

static void on_budget(enum redis_result result, const struct redisReply *reply_,
                      const char *error, void *arg)
{
    (void)error;
    struct op *op = arg;
    const redisReply *reply = (const redisReply *)reply_;
    long long code, ms;
    enum fleet_budget verdict = FLEET_BUDGET_ERROR;
    if (result == REDIS_RESULT_OK && reply_integer(reply, 0, &code) == 0 &&
        reply_integer(reply, 1, &ms) == 0 && code >= 0 && code <= 2)
        verdict = code == 0 ? FLEET_BUDGET_GRANTED : code == 1 ? FLEET_BUDGET_WAIT
                                                               : FLEET_BUDGET_BLOCKED;
    else
        ms = 0;
    if (!op->f->dead) {
        op->f->stats.budget[verdict]++;
        op->cb.budget(verdict, ms, op->arg);
    }
    op_free(op);
}

void fleet_budget_ask(struct fleet *f, long long spacing_ms, long long per_minute,
                      long long prefetch_per_minute, fleet_budget_fn *cb, void *arg)
{
    struct op *op = op_new(f, NULL, arg);
    op->cb.budget = cb;
    char spacing[24], cap[24], pcap[24], window[24], member[TOKEN_LEN + 1];
    snprintf(spacing, sizeof spacing, "%lld", spacing_ms > 0 ? spacing_ms : 0);
    snprintf(cap, sizeof cap, "%lld", per_minute > 0 ? per_minute : 0);
    snprintf(pcap, sizeof pcap, "%lld", prefetch_per_minute > 0 ? prefetch_per_minute : 0);
    snprintf(window, sizeof window, "%lld", f->window_ms);
    new_token(f, member);
    const char *keys[] = {f->k_starts, f->k_next, f->k_open, f->k_prefetch};
    const char *args[] = {spacing, cap, pcap, window, member};
    eval(f, budget_lua, 4, keys, 5, args, on_budget, op);
}

/* --- breaker -------------------------------------------------------------------------- */

static void on_breaker(enum redis_result result, const struct redisReply *reply_,
                       const char *error, void *arg)
{
    (void)error;
    struct op *op = arg;
    const redisReply *reply = (const redisReply *)reply_;
    long long opened = 0, ms = 0;
    enum fleet_status status = FLEET_ERROR;
    if (result == REDIS_RESULT_OK) {
        if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {   /* PTTL */
            ms = reply->integer > 0 ? reply->integer : 0;
            status = FLEET_OK;
        } else if (reply_integer(reply, 0, &opened) == 0 && reply_integer(reply, 1, &ms) == 0) {
            status = FLEET_OK;
        }
    }
    if (status != FLEET_OK)
        opened = ms = 0;
    if (!op->f->dead) {
        if (opened)
            op->f->stats.breaker_trips++;
        if (op->cb.breaker != NULL)
            op->cb.breaker(status, ms, (int)opened, op->arg);
    }
    op_free(op);
}

void fleet_breaker_trip(struct fleet *f, long long backoff_s, long long max_s,
                        long long retry_after_s, fleet_breaker_fn *cb, void *arg)
{
    struct op *op = op_new(f, NULL, arg);
    op->cb.breaker = cb;
    char backoff[24], max[24], retry[24];
    snprintf(backoff, sizeof backoff, "%lld", backoff_s > 0 ? backoff_s * 1000 : 1);
    snprintf(max, sizeof max, "%lld", max_s > 0 ? max_s * 1000 : 1);
    snprintf(retry, sizeof retry, "%lld", retry_after_s > 0 ? retry_after_s * 1000 : 0);
    const char *keys[] = {f->k_open, f->k_level};
    const char *args[] = {backoff, max, retry};
    eval(f, trip_lua, 2, keys, 3, args, on_breaker, op);
}

void fleet_breaker_check(struct fleet *f, fleet_breaker_fn *cb, void *arg)
{
    struct op *op = op_new(f, NULL, arg);
    op->cb.breaker = cb;
    const char *argv[] = {"PTTL", f->k_open};
    size_t lens[] = {4, strlen(f->k_open)};
    redis_command_argv(f->redis, on_breaker, op, 2, argv, lens);
}

void fleet_breaker_ok(struct fleet *f, fleet_breaker_fn *cb, void *arg)
{
    struct op *op = op_new(f, NULL, arg);
    op->cb.breaker = cb;
    const char *keys[] = {f->k_open, f->k_level};
    eval(f, breaker_ok_lua, 2, keys, 0, NULL, on_breaker, op);
}

/* --- locks ---------------------------------------------------------------------------- */

static void renew_now(struct fleet_lock *l, fleet_status_fn *cb, void *arg);

/* Arms t to fire after ms. */
static void arm_ms(struct event *t, long long ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(t, &tv);
}

/* The lock's renewal is due. */
static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    renew_now(arg, NULL, NULL);
}

/* A lock f holds as token (new, listed, renewing itself). */
static struct fleet_lock *lock_new(struct fleet *f, const char *name, const char *token,
                                   long long ttl_ms)
{
    struct fleet_lock *l = xcalloc(1, sizeof *l);
    l->f = f;
    l->name = xstrdup(name);
    l->key = redis_key("lock", name);
    l->done_key = redis_key("done", name);
    snprintf(l->token, sizeof l->token, "%s", token);
    l->ttl_ms = ttl_ms;
    l->renew_timer = evtimer_new(f->base, on_renew_timer, l);
    arm_ms(l->renew_timer, ttl_ms / 3 > 0 ? ttl_ms / 3 : 1);
    TAILQ_INSERT_TAIL(&f->locks, l, link);
    f->stats.locks_acquired++;
    return l;
}

/* Gives l back: no more renewals; freed once nothing in flight refers to it. */
static void lock_release_memory(struct fleet_lock *l)
{
    TAILQ_REMOVE(&l->f->locks, l, link);
    evtimer_del(l->renew_timer);
    l->released = 1;
    if (l->refs == 0)
        lock_free(l);
}

static void on_acquire(enum redis_result result, const struct redisReply *reply_,
                       const char *error, void *arg)
{
    (void)error;
    struct op *op = arg;
    struct fleet *f = op->f;
    const redisReply *reply = (const redisReply *)reply_;
    long long code;
    if (f->dead) {
        /* Nobody will hold it: give it back at once rather than let it expire. */
        if (result == REDIS_RESULT_OK && reply_integer(reply, 0, &code) == 0 && code == 1) {
            struct fleet_lock *l = lock_new(f, op->name, op->token, op->ttl_ms);
            fleet_lock_release(l);
        }
    } else if (result != REDIS_RESULT_OK || reply_integer(reply, 0, &code) != 0) {
        op->cb.lock(FLEET_LOCK_ERROR, NULL, NULL, op->arg);
    } else if (code == 1) {
        op->cb.lock(FLEET_LOCK_ACQUIRED, lock_new(f, op->name, op->token, op->ttl_ms), NULL,
                    op->arg);
    } else {
        const char *holder = reply_string(reply, 1);
        f->stats.locks_held++;
        op->cb.lock(FLEET_LOCK_HELD, NULL, holder != NULL ? holder : "", op->arg);
    }
    op_free(op);
}

void fleet_lock_acquire(struct fleet *f, const char *name, long long ttl_ms, fleet_lock_fn *cb,
                        void *arg)
{
    struct op *op = op_new(f, NULL, arg);
    op->cb.lock = cb;
    op->name = xstrdup(name);
    op->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
    new_token(f, op->token);
    char *key = redis_key("lock", name);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", op->ttl_ms);
    const char *keys[] = {key};
    const char *args[] = {op->token, ttl};
    eval(f, acquire_lua, 1, keys, 2, args, on_acquire, op);
    free(key);
}

static void on_renew(enum redis_result result, const struct redisReply *reply_,
                     const char *error, void *arg)
{
    (void)error;
    struct op *op = arg;
    struct fleet_lock *l = op->lock;
    const redisReply *reply = (const redisReply *)reply_;
    int ok = result == REDIS_RESULT_OK && reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    int mine = ok && reply->integer == 1;
    if (!op->f->dead && !l->released) {
        if (ok && !mine) {
            if (!l->lost)
                op->f->stats.locks_lost++;
            l->lost = 1;
            log_warn("fleet: lock %s expired or taken while held: another replica may be "
                     "doing the same work", l->name);
        } else if (!l->lost) {
            /* Renewed, or Redis failed: either way try again at the next interval. */
            arm_ms(l->renew_timer, l->ttl_ms / 3 > 0 ? l->ttl_ms / 3 : 1);
        }
    }
    if (!op->f->dead && op->cb.status != NULL)
        op->cb.status(ok ? FLEET_OK : FLEET_ERROR, mine, op->arg);
    op_free(op);
}

/* Sends a renewal of l for its ttl. */
static void renew_now(struct fleet_lock *l, fleet_status_fn *cb, void *arg)
{
    struct op *op = op_new(l->f, l, arg);
    op->cb.status = cb;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", l->ttl_ms);
    const char *keys[] = {l->key};
    const char *args[] = {l->token, ttl};
    eval(l->f, renew_lua, 1, keys, 2, args, on_renew, op);
}

void fleet_lock_renew(struct fleet_lock *lock, long long ttl_ms, fleet_status_fn *cb, void *arg)
{
    lock->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
    evtimer_del(lock->renew_timer);
    renew_now(lock, cb, arg);
}

int fleet_lock_lost(const struct fleet_lock *lock)
{
    return lock->lost;
}

const char *fleet_lock_token(const struct fleet_lock *lock)
{
    return lock->token;
}

const char *fleet_lock_name(const struct fleet_lock *lock)
{
    return lock->name;
}

/* The reply to a finish: nothing to tell anyone. */
static void on_finish(enum redis_result result, const struct redisReply *reply,
                      const char *error, void *arg)
{
    (void)result;
    (void)reply;
    (void)error;
    op_free(arg);
}

/* Ends the flight of name held as token: done (the marker set) or given up. */
static void finish_flight(struct fleet *f, const char *name, const char *token, int done)
{
    struct op *op = op_new(f, NULL, NULL);
    char *key = redis_key("lock", name), *done_key = redis_key("done", name);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", done ? f->done_ttl_ms : 0);
    const char *keys[] = {key, done_key};
    const char *args[] = {token, ttl, CHANNEL, name};
    eval(f, finish_lua, 2, keys, 4, args, on_finish, op);
    free(key);
    free(done_key);
}

void fleet_lock_release(struct fleet_lock *lock)
{
    finish_flight(lock->f, lock->name, lock->token, 0);
    lock_release_memory(lock);
}

void fleet_notify(struct fleet_lock *lock)
{
    finish_flight(lock->f, lock->name, lock->token, 1);
    lock_release_memory(lock);
}

/* --- watches -------------------------------------------------------------------------- */

static void watch_free(struct fleet_watch *w)
{
    event_free(w->poll_timer);
    event_free(w->deadline_timer);
    free(w->name);
    free(w->key);
    free(w->done_key);
    free(w->holder);
    free(w);
}

/* Ends w: unlisted, timers stopped, counted, called back; freed unless a check holds it. */
static void watch_finish(struct fleet_watch *w, enum fleet_watch_result result,
                         struct fleet_lock *lock)
{
    struct fleet *f = w->f;
    TAILQ_REMOVE(&f->watches, w, link);
    w->finished = 1;
    evtimer_del(w->poll_timer);
    evtimer_del(w->deadline_timer);
    f->stats.watches[result]++;
    f->stats.watch_seconds += clock_monotonic() - w->started;
    fleet_watch_fn *cb = w->cb;
    void *arg = w->arg;
    if (!w->checking)
        watch_free(w);
    cb(result, lock, arg);
}

static void watch_check(struct fleet_watch *w);

static void on_check(enum redis_result result, const struct redisReply *reply_,
                     const char *error, void *arg)
{
    (void)error;
    struct fleet_watch *w = arg;
    struct fleet *f = w->f;
    const redisReply *reply = (const redisReply *)reply_;
    long long code = -1;
    const char *token = NULL;
    if (result == REDIS_RESULT_OK && reply_integer(reply, 0, &code) == 0 && (code == 2 || code == 3))
        token = reply_string(reply, 1);
    w->checking = 0;
    if (w->finished) {
        if (code == 2 && token != NULL)
            finish_flight(f, w->name, w->candidate, 0);   /* taken for nobody: give it back */
        watch_free(w);
    } else if (result != REDIS_RESULT_OK || code < 0 || code > 3 || (code >= 2 && token == NULL)) {
        watch_finish(w, FLEET_WATCH_ERROR, NULL);
    } else if (code == 1) {
        watch_finish(w, FLEET_WATCH_DONE, NULL);
    } else if (code == 2) {
        watch_finish(w, FLEET_WATCH_TAKEOVER, lock_new(f, w->name, w->candidate, w->ttl_ms));
    } else {
        if (code == 3) {
            free(w->holder);
            w->holder = xstrdup(token);
        }
        if (w->recheck) {
            w->recheck = 0;
            watch_check(w);
        } else {
            arm_ms(w->poll_timer, f->poll_ms);
        }
    }
    fleet_unref(f);
}

/* Asks Redis how w's flight is doing (once at a time). */
static void watch_check(struct fleet_watch *w)
{
    struct fleet *f = w->f;
    if (w->checking) {
        w->recheck = 1;
        return;
    }
    w->checking = 1;
    f->refs++;
    new_token(f, w->candidate);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", w->ttl_ms);
    const char *keys[] = {w->key, w->done_key};
    const char *args[] = {w->holder, w->candidate, ttl};
    eval(f, check_lua, 2, keys, 3, args, on_check, w);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_check(arg);
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_finish(arg, FLEET_WATCH_TIMEOUT, NULL);
}

struct fleet_watch *fleet_watch(struct fleet *f, const char *name, const char *holder,
                                long long ttl_ms, long long wait_ms, fleet_watch_fn *cb,
                                void *arg)
{
    struct fleet_watch *w = xcalloc(1, sizeof *w);
    w->f = f;
    w->name = xstrdup(name);
    w->key = redis_key("lock", name);
    w->done_key = redis_key("done", name);
    w->holder = xstrdup(holder);
    w->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
    w->started = clock_monotonic();
    w->cb = cb;
    w->arg = arg;
    w->poll_timer = evtimer_new(f->base, on_poll, w);
    w->deadline_timer = evtimer_new(f->base, on_wait_over, w);
    arm_ms(w->deadline_timer, wait_ms);
    TAILQ_INSERT_TAIL(&f->watches, w, link);
    /* At once: the flight may have ended before its message could find this watch. */
    watch_check(w);
    return w;
}

void fleet_watch_cancel(struct fleet_watch *w)
{
    if (w == NULL || w->finished)
        return;
    TAILQ_REMOVE(&w->f->watches, w, link);
    w->finished = 1;
    if (!w->checking)
        watch_free(w);
}

/* Whether w waits for the flight of the len bytes name held by token. */
static int watch_matches(const struct fleet_watch *w, const char *token, size_t token_len,
                         const char *name, size_t name_len)
{
    return strlen(w->holder) == token_len && memcmp(w->holder, token, token_len) == 0 &&
           strlen(w->name) == name_len && memcmp(w->name, name, name_len) == 0;
}

/* A flight ended: "d TOKEN NAME" (done) wakes its waiters, "a TOKEN NAME" (given up) makes
 * them check at once, so one takes over. */
static void on_flight_message(const char *channel, const char *data, size_t len, void *arg)
{
    (void)channel;
    struct fleet *f = arg;
    if (len < 4 || (data[0] != 'd' && data[0] != 'a') || data[1] != ' ')
        return;
    const char *token = data + 2;
    const char *space = memchr(token, ' ', len - 2);
    if (space == NULL)
        return;
    size_t token_len = (size_t)(space - token);
    const char *name = space + 1;
    size_t name_len = len - (size_t)(name - data);
    struct fleet_watch *w, *next;
    for (w = TAILQ_FIRST(&f->watches); w != NULL; w = next) {
        next = TAILQ_NEXT(w, link);
        if (!watch_matches(w, token, token_len, name, name_len))
            continue;
        if (data[0] == 'a')
            watch_check(w);
        else
            w->woken = 1;
    }
    /* Callbacks may cancel or add watches: find the next woken one from the start each time. */
    for (;;) {
        TAILQ_FOREACH(w, &f->watches, link)
            if (w->woken)
                break;
        if (w == NULL)
            break;
        watch_finish(w, FLEET_WATCH_DONE, NULL);
    }
}

/* --- shared values -------------------------------------------------------------------- */

/* Whether kind is one of the fleet's own. */
static int kind_reserved(const char *kind)
{
    for (size_t i = 0; reserved_kinds[i] != NULL; i++)
        if (strcmp(kind, reserved_kinds[i]) == 0)
            return 1;
    return 0;
}

static void on_value(enum redis_result result, const struct redisReply *reply_,
                     const char *error, void *arg)
{
    struct op *op = arg;
    const redisReply *reply = (const redisReply *)reply_;
    struct envelope e;
    char why[200];
    enum fleet_value_result outcome;
    if (result != REDIS_RESULT_OK) {
        outcome = FLEET_VALUE_ERROR;
        snprintf(why, sizeof why, "%s", error);
    } else if (reply->type == REDIS_REPLY_NIL) {
        outcome = FLEET_VALUE_MISSING;
        snprintf(why, sizeof why, "no such key");
    } else if (reply->type != REDIS_REPLY_STRING) {
        outcome = FLEET_VALUE_CORRUPT;
        snprintf(why, sizeof why, "not a string");
    } else if (envelope_parse(reply->str, reply->len, &e, why, sizeof why) != 0) {
        outcome = FLEET_VALUE_CORRUPT;
    } else {
        outcome = FLEET_VALUE_FOUND;
    }
    if (!op->f->dead) {
        op->f->stats.values[outcome]++;
        if (outcome == FLEET_VALUE_CORRUPT)
            log_warn("fleet: %s: %s; ignored", op->name, why);
        op->cb.value(outcome, outcome == FLEET_VALUE_FOUND ? &e : NULL,
                     outcome == FLEET_VALUE_FOUND ? NULL : why, op->arg);
    }
    op_free(op);
}

int fleet_value_get(struct fleet *f, const char *kind, const char *name, fleet_value_fn *cb,
                    void *arg)
{
    if (kind_reserved(kind))
        return -1;
    struct op *op = op_new(f, NULL, arg);
    op->cb.value = cb;
    op->name = redis_key(kind, name);
    const char *argv[] = {"GET", op->name};
    size_t lens[] = {3, strlen(op->name)};
    redis_command_argv(f->redis, on_value, op, 2, argv, lens);
    return 0;
}

static void on_value_set(enum redis_result result, const struct redisReply *reply,
                         const char *error, void *arg)
{
    (void)reply;
    (void)error;
    struct op *op = arg;
    if (!op->f->dead && op->cb.status != NULL)
        op->cb.status(result == REDIS_RESULT_OK ? FLEET_OK : FLEET_ERROR,
                      result == REDIS_RESULT_OK, op->arg);
    op_free(op);
}

int fleet_value_set(struct fleet *f, const char *kind, const char *name,
                    const struct envelope_field *fields, size_t count, long long ttl_ms,
                    fleet_status_fn *cb, void *arg)
{
    char *packed, why[200], ttl[24];
    size_t len;
    if (kind_reserved(kind) || envelope_pack(fields, count, &packed, &len, why, sizeof why) != 0)
        return -1;
    struct op *op = op_new(f, NULL, arg);
    op->cb.status = cb;
    char *key = redis_key(kind, name);
    snprintf(ttl, sizeof ttl, "%lld", ttl_ms > 0 ? ttl_ms : 1);
    const char *argv[] = {"SET", key, packed, "PX", ttl};
    size_t lens[] = {3, strlen(key), len, 2, strlen(ttl)};
    redis_command_argv(f->redis, on_value_set, op, 5, argv, lens);
    free(key);
    free(packed);
    return 0;
}

/* --- the fleet ------------------------------------------------------------------------ */

/* 64 random bits for this process's tokens (the clock and pid when the kernel has none). */
static void random_id(char out[17])
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((unsigned long long)ts.tv_nsec << 32) ^ (unsigned long long)ts.tv_sec ^
            ((unsigned long long)getpid() << 48);
    }
    snprintf(out, 17, "%016llx", v);
}

struct fleet *fleet_new(struct event_base *base, struct redis *r, const struct fleet_options *o)
{
    struct fleet *f = xcalloc(1, sizeof *f);
    f->base = base;
    f->redis = r;
    f->window_ms = o != NULL && o->window_ms > 0 ? o->window_ms : 60000;
    f->poll_ms = o != NULL && o->poll_ms > 0 ? o->poll_ms : 500;
    f->done_ttl_ms = o != NULL && o->done_ttl_ms > 0 ? o->done_ttl_ms : 30000;
    random_id(f->id);
    f->k_starts = redis_key("budget", "starts");
    f->k_prefetch = redis_key("budget", "prefetch");
    f->k_next = redis_key("budget", "next");
    f->k_open = redis_key("breaker", "open");
    f->k_level = redis_key("breaker", "level");
    TAILQ_INIT(&f->watches);
    TAILQ_INIT(&f->locks);
    redis_subscribe(r, CHANNEL, on_flight_message, f);
    return f;
}

void fleet_free(struct fleet *f)
{
    if (f == NULL)
        return;
    redis_unsubscribe(f->redis, CHANNEL);
    struct fleet_watch *w;
    while ((w = TAILQ_FIRST(&f->watches)) != NULL)
        fleet_watch_cancel(w);
    /* Given back rather than left to expire, so that another replica takes over at once
     * (if the loop still runs to send it). */
    struct fleet_lock *l;
    while ((l = TAILQ_FIRST(&f->locks)) != NULL)
        fleet_lock_release(l);
    f->dead = 1;
    if (f->refs == 0)
        fleet_destroy(f);
}

void fleet_stats(const struct fleet *f, struct fleet_stats *out)
{
    *out = f->stats;
}
