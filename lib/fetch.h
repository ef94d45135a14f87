/* Fetching pages from the upstream: libcurl's multi-socket API on the one libevent loop,
 * with the politeness a scraper owes the site (per-host connection cap, spacing with jitter,
 * requests per minute, a queue with listings first), retries with backoff, and a breaker
 * that stops all requests to a host that refused us. */
#ifndef MOVIESD_FETCH_H
#define MOVIESD_FETCH_H

#include <stddef.h>

struct event_base;
struct config;
struct metrics;
struct fetcher;
struct fetch_request;
struct fleet;
struct redis;

enum fetch_outcome {
    FETCH_DONE,       /* a response arrived: see status (not a block: those are FETCH_BLOCKED) */
    FETCH_TIMEOUT,    /* no complete answer within upstream_timeout, after retries */
    FETCH_ERROR,      /* connection failure, truncated or undecodable body, after retries; a
                       * URL or redirect off the upstream's origin (never fetched) */
    FETCH_TOO_LARGE,  /* the decoded body passed max_body_size */
    FETCH_BLOCKED,    /* 403/418/429, a redirect to Douban's captcha or login host, or the
                       * breaker is open */
};

struct fetch_response {
    enum fetch_outcome outcome;
    long status;          /* the last HTTP status, 0 if none */
    const char *body;     /* borrowed for the callback's duration; NUL-terminated */
    size_t len;
    long retry_after;     /* seconds to wait before asking again (blocks, Retry-After), -1 if none */
    const char *error;    /* human-readable reason when outcome != FETCH_DONE */
    unsigned long epoch;  /* the breaker's epoch when the request started: see fetch_report_ok */
    double queued;        /* seconds from fetch_start() to the first transfer's start, -1 if none */
};

/* Queue order: listings a client waits for, then movie pages of cities people ask for,
 * then prefetch (which may use at most half of max_requests_per_minute). */
enum fetch_priority { FETCH_PREFETCH, FETCH_NORMAL, FETCH_URGENT, FETCH_PRIORITY_COUNT };

/* Called once per fetch_start() that returned a request, from the loop, never from inside
 * fetch_start() or fetch_cancel(). */
typedef void (*fetch_cb)(const struct fetch_response *response, void *arg);

/* A fetcher for the upstream named in config (which it copies what it needs from). */
struct fetcher *fetcher_new(struct event_base *base, const struct config *config,
                            struct metrics *metrics);
/* Lets transfers go to the origin of url too (a base URL like the upstream's): for an
 * upstream spread over several hosts. 0, or -1 with the reason in err. */
int fetch_allow_origin(struct fetcher *f, const char *url, char *err, size_t errlen);
/* Applies changed limits and timeouts (SIGHUP). */
void fetcher_configure(struct fetcher *f, const struct config *config);
/* hold 1: no request starts until hold 0 (those under way go on; the breaker still fails
 * queued requests). For a consumer that cannot keep up with the pages coming in. */
void fetch_hold(struct fetcher *f, int hold);
/* Cancels everything without calling back. Accepts NULL. With a fleet: fetch_set_fleet(f,
 * NULL, ...) and fleet_free first, since fleet_free drops an outstanding budget ask
 * without calling back, so nothing calls into the fetcher once it is freed. */
void fetcher_free(struct fetcher *f);
/* Shares the budget and the breaker through fleet (borrowed), on redis (borrowed: its
 * state says whether to ask): each start is granted by the fleet while Redis is up; while
 * it is down or an ask fails, the local budget holds with the spacing multiplied by
 * expected_replicas and max_requests_per_minute divided by it. NULL: alone again. */
void fetch_set_fleet(struct fetcher *f, struct fleet *fleet, struct redis *redis,
                     long long expected_replicas);

/* Queues a GET of url. The callback is called exactly once unless fetch_cancel() is called
 * first. Returns the request (borrowed; valid until its callback runs or it is cancelled). */
struct fetch_request *fetch_start(struct fetcher *f, const char *url, enum fetch_priority priority,
                                  fetch_cb cb, void *arg);
/* Abandons a request: its callback will not be called. */
void fetch_cancel(struct fetch_request *r);
/* Whether r is still waiting for its first transfer (nothing sent to the upstream yet). */
int fetch_unsent(const struct fetch_request *r);
/* Moves a request to another queue (to the back of it) if it is queued; a running or
 * waiting request keeps the new priority for its retries. */
void fetch_set_priority(struct fetch_request *r, enum fetch_priority priority);

/* Opens the breaker for the upstream host, as a block seen in a page's content does. */
void fetch_report_block(struct fetcher *f, const char *why);
/* A page fetched in the given epoch was usable: blocks no longer count as repeated (the
 * breaker's backoff stops doubling). Pages from requests sent before the last block do
 * not count: they say nothing about whether the block is over. */
void fetch_report_ok(struct fetcher *f, unsigned long epoch);
/* Seconds until the breaker closes; 0 when requests may go out. */
long fetch_breaker_remaining(const struct fetcher *f);
/* Requests waiting for their turn (in all queues, or in one), and transfers under way. */
size_t fetch_queue_length(const struct fetcher *f);
size_t fetch_queue_length_of(const struct fetcher *f, enum fetch_priority priority);
/* Transfers started in the last 60 s, retries and redirects included. */
size_t fetch_starts_last_minute(struct fetcher *f);
size_t fetch_in_flight(const struct fetcher *f);
/* The loop the fetcher runs on (borrowed). */
struct event_base *fetch_event_base(const struct fetcher *f);
/* The upstream's host name (borrowed). */
const char *fetch_upstream_host(const struct fetcher *f);

#endif
