/* Replicas of moviesd behaving as one scraper: the primitives they share through Redis
 * (lib/redis.h), each one atomic on the server (a Lua script or one command):
 *
 *   budget    a request start granted by Redis, so N replicas together keep one daemon's
 *             spacing and per-minute cap, counted on Redis's own clock;
 *   breaker   a block seen by one replica pauses all, the pause doubling fleet-wide;
 *   locks     single-flight: one owner per name (SET NX PX with a random token, renewed
 *             while held), the others wait for it to finish (fleet_watch) and take over
 *             when its lock expires (the owner died);
 *   values    shared values with a TTL, each an envelope (lib/envelope.h), refused when
 *             corrupt.
 *
 * Keys (all with TTLs, so nothing grows without bound):
 *   moviesd:v1:budget:starts    sorted set of the window's starts (score: Redis time, ms)
 *   moviesd:v1:budget:prefetch  the same, prefetches only
 *   moviesd:v1:budget:next      exists while the spacing after the last start runs
 *   moviesd:v1:breaker:open     exists while the breaker is open (value: the pause, ms)
 *   moviesd:v1:breaker:level    the last pause, for doubling (expires after 2x the longest)
 *   moviesd:v1:lock:<name>      the owner's token
 *   moviesd:v1:done:<name>      the token of the flight that finished last
 *   moviesd:v1:<kind>:<name>    shared values (kinds other than those above)
 * and the channel moviesd:v1:channel:flights ("d TOKEN NAME" done, "a TOKEN NAME" given up).
 *
 * Every operation calls its callback exactly once (never from inside the call) unless the
 * fleet is freed first. When Redis is down or slow, callbacks get an error result at once
 * or within redis_timeout_ms: the caller falls back to its local state. */
#ifndef MOVIESD_FLEET_H
#define MOVIESD_FLEET_H

#include <stddef.h>

struct event_base;
struct redis;
struct envelope;
struct envelope_field;
struct fleet;
struct fleet_lock;
struct fleet_watch;

struct fleet_options {
    long long window_ms;        /* the per-minute cap's window; 0: 60000 (tests shorten it) */
    long long poll_ms;          /* how often a waiter re-checks a flight; 0: 500 */
    long long done_ttl_ms;      /* how long a finished flight stays marked; 0: 30000 */
};

/* A fleet over r (borrowed; free the fleet first) on base; o may be NULL for the defaults.
 * It subscribes to the flights channel. */
struct fleet *fleet_new(struct event_base *base, struct redis *r, const struct fleet_options *o);
/* Cancels everything without calling back, and frees every watch and every lock still
 * held (giving the locks back, as fleet_lock_release does). Accepts NULL. */
void fleet_free(struct fleet *f);

enum fleet_status { FLEET_OK, FLEET_ERROR };

/* --- budget --------------------------------------------------------------------------- */

enum fleet_budget {
    FLEET_BUDGET_GRANTED,   /* start now: ms is Redis's clock at the grant (ms since the epoch) */
    FLEET_BUDGET_WAIT,      /* the spacing or a cap: ask again in ms */
    FLEET_BUDGET_BLOCKED,   /* the shared breaker is open for ms more */
    FLEET_BUDGET_ERROR,     /* Redis is down or slow: use the local budget */
    FLEET_BUDGET_COUNT
};
typedef void fleet_budget_fn(enum fleet_budget verdict, long long ms, void *arg);

/* Asks for one upstream request start. Granted when the breaker is closed, the spacing
 * left by the last start (anyone's) is over, fewer than per_minute starts lie in the window
 * and, for a prefetch (prefetch_per_minute > 0), fewer than prefetch_per_minute prefetches
 * do. A grant records the start and leaves spacing_ms before the next one (pass it with
 * any jitter already added). 0 turns a limit off. */
void fleet_budget_ask(struct fleet *f, long long spacing_ms, long long per_minute,
                      long long prefetch_per_minute, fleet_budget_fn *cb, void *arg);

/* --- breaker -------------------------------------------------------------------------- */

/* remaining_ms: the pause in force (0: closed). opened: this call opened the breaker. */
typedef void fleet_breaker_fn(enum fleet_status status, long long remaining_ms, int opened,
                              void *arg);

/* Opens the shared breaker for backoff_s, doubled from the last pause when blocks repeat
 * without fleet_breaker_ok in between, at most max_s, or for retry_after_s if longer (0 for
 * none). A trip while it is open changes nothing: those are the answers to requests sent
 * before it opened. */
void fleet_breaker_trip(struct fleet *f, long long backoff_s, long long max_s,
                        long long retry_after_s, fleet_breaker_fn *cb, void *arg);
/* How long the shared breaker stays open (cb may be NULL). */
void fleet_breaker_check(struct fleet *f, fleet_breaker_fn *cb, void *arg);
/* A page came through since the breaker closed: the next block starts from backoff_s again.
 * Ignored while the breaker is open. cb may be NULL. */
void fleet_breaker_ok(struct fleet *f, fleet_breaker_fn *cb, void *arg);

/* --- locks and flights ---------------------------------------------------------------- */

enum fleet_lock_result { FLEET_LOCK_ACQUIRED, FLEET_LOCK_HELD, FLEET_LOCK_ERROR };
/* ACQUIRED: lock is new and the caller's until fleet_notify or fleet_lock_release. HELD:
 * holder (borrowed for the call) is the owner's token, for fleet_watch. */
typedef void fleet_lock_fn(enum fleet_lock_result result, struct fleet_lock *lock,
                           const char *holder, void *arg);
/* yes: the lock is still the caller's (after a renewal). */
typedef void fleet_status_fn(enum fleet_status status, int yes, void *arg);

/* Takes the lock of name for ttl_ms unless someone holds it. A lock renews itself every
 * ttl_ms / 3 while held, so it outlives its owner by at most ttl_ms. */
void fleet_lock_acquire(struct fleet *f, const char *name, long long ttl_ms, fleet_lock_fn *cb,
                        void *arg);
/* Extends the lock to ttl_ms from now if it is still the caller's (cb may be NULL); from
 * then on it renews itself for ttl_ms. */
void fleet_lock_renew(struct fleet_lock *lock, long long ttl_ms, fleet_status_fn *cb, void *arg);
/* Whether a renewal found the lock expired or someone else's: another replica may be doing
 * the same work. */
int fleet_lock_lost(const struct fleet_lock *lock);
const char *fleet_lock_token(const struct fleet_lock *lock);  /* borrowed */
const char *fleet_lock_name(const struct fleet_lock *lock);   /* borrowed */
/* Gives the lock up without finishing: it is deleted if still ours, and waiters are told
 * at once, so one of them takes over. Frees lock. */
void fleet_lock_release(struct fleet_lock *lock);
/* The work is done: marks the flight finished (waiters see FLEET_WATCH_DONE, by message or
 * by their next poll), deletes the lock if still ours. Frees lock. Store the result first. */
void fleet_notify(struct fleet_lock *lock);

enum fleet_watch_result {
    FLEET_WATCH_DONE,       /* the flight finished: read its result */
    FLEET_WATCH_TAKEOVER,   /* its owner vanished: lock is the caller's now, do the work */
    FLEET_WATCH_TIMEOUT,    /* wait_ms passed */
    FLEET_WATCH_ERROR,      /* Redis is down or slow */
    FLEET_WATCH_COUNT
};
typedef void fleet_watch_fn(enum fleet_watch_result result, struct fleet_lock *lock, void *arg);

/* Waits up to wait_ms for the flight of name that holder owns: woken by the owner's message,
 * and re-checking every poll_ms so that a lost message costs at most one poll. When the
 * lock is gone without the flight marked done, the waiter takes the lock (for ttl_ms); when
 * another waiter took it first, it waits for that one. Returns the watch, valid until its
 * callback runs or it is cancelled. */
struct fleet_watch *fleet_watch(struct fleet *f, const char *name, const char *holder,
                                long long ttl_ms, long long wait_ms, fleet_watch_fn *cb,
                                void *arg);
/* Stops a watch; its callback is not called. */
void fleet_watch_cancel(struct fleet_watch *w);

/* --- shared values -------------------------------------------------------------------- */

enum fleet_value_result {
    FLEET_VALUE_FOUND,
    FLEET_VALUE_MISSING,
    FLEET_VALUE_CORRUPT,    /* not an envelope this build reads: error says why */
    FLEET_VALUE_ERROR,      /* Redis is down, slow, or refused */
    FLEET_VALUE_COUNT
};
/* value (FOUND) is borrowed for the call, its fields too. */
typedef void fleet_value_fn(enum fleet_value_result result, const struct envelope *value,
                            const char *error, void *arg);

/* Reads moviesd:v1:<kind>:<name>. Returns 0, or -1 (cb never called) when kind is one of
 * the fleet's own (budget, breaker, lock, done, channel). */
int fleet_value_get(struct fleet *f, const char *kind, const char *name, fleet_value_fn *cb,
                    void *arg);
/* Stores count fields as an envelope under moviesd:v1:<kind>:<name> for ttl_ms (cb may be
 * NULL). Returns 0, or -1 (cb never called) for a reserved kind or fields envelope_pack
 * refuses. */
int fleet_value_set(struct fleet *f, const char *kind, const char *name,
                    const struct envelope_field *fields, size_t count, long long ttl_ms,
                    fleet_status_fn *cb, void *arg);

/* --- metrics -------------------------------------------------------------------------- */

struct fleet_stats {
    unsigned long long budget[FLEET_BUDGET_COUNT];          /* answers, by verdict */
    unsigned long long breaker_trips;                       /* trips that opened it */
    unsigned long long locks_acquired, locks_held, locks_lost;
    unsigned long long watches[FLEET_WATCH_COUNT];          /* waits, by how they ended */
    double watch_seconds;                                   /* time spent in those waits */
    unsigned long long values[FLEET_VALUE_COUNT];           /* reads, by result */
};
void fleet_stats(const struct fleet *f, struct fleet_stats *out);

#endif
