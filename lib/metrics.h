/* Counters and histograms for GET /metrics, rendered in the Prometheus text format.
 * Gauges (queue length, breaker state...) are read from their owners at render time. */
#ifndef MOVIESD_METRICS_H
#define MOVIESD_METRICS_H

#include <stddef.h>

#include "error.h"

struct metrics;
struct redis_stats;
struct fleet_stats;

/* PARTIAL: answered from the listing while movie pages are awaited. */
enum cache_event { CACHE_HIT, CACHE_MISS, CACHE_STALE, CACHE_PARTIAL, CACHE_EVENT_COUNT };

/* This process as Prometheus client libraries describe one (process_* metrics). */
struct metrics_process {
    double cpu_seconds;         /* user and system time */
    double start_time;          /* seconds since the epoch */
    double resident_bytes;
    double virtual_bytes;
    long open_fds;
    long max_fds;               /* the soft limit */
};

struct metrics_gauges {
    const struct metrics_process *process;  /* borrowed; NULL when /proc could not be read */
    long scrapes_in_flight;
    long upstream_queue_length;
    long upstream_in_flight;
    long breaker_open;          /* 0 or 1 */
    long breaker_remaining;     /* seconds */
    long cached_cities;
    long cached_movies;
    long cache_bytes[2];        /* charged to cache_max_bytes: cities, movies */
    long upstream_queued[3];            /* by enum fetch_priority: prefetch, details, listing */
    long upstream_starts_last_minute;
    long details_pending;
    long parse_threads, parse_queued;   /* the parse pool's workers and waiting pages */
    /* The shared Redis's client and the fleet over it (borrowed; NULL without Redis, and
     * then no moviesd_redis_* or moviesd_fleet_* series are written). */
    const struct redis_stats *redis;
    const struct fleet_stats *fleet;
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);   /* accepts NULL */

/* One API request: route is a static label ("movies", "healthz", ..., "other"). */
void metrics_request(struct metrics *m, const char *route, int status, double seconds);
/* One upstream transfer: outcome is "ok", "not_found", "blocked", "error" or "timeout". */
void metrics_upstream(struct metrics *m, const char *outcome, double seconds);
/* Moves one upstream transfer from outcome from to outcome to: a 200 page that turns out to
 * be a block page is counted "ok" when it arrives and "blocked" once read. */
void metrics_upstream_reclassify(struct metrics *m, const char *from, const char *to);
void metrics_cache(struct metrics *m, enum cache_event e);
/* The breaker opened. Accepts NULL. */
void metrics_breaker_trip(struct metrics *m);
/* An upstream request started under the local budget because the fleet's was out of reach
 * (Redis down, slow or refusing). Accepts NULL. */
void metrics_fleet_fallback(struct metrics *m);
void metrics_prefetch(struct metrics *m);                       /* one prefetch refresh started */
void metrics_listing_wait(struct metrics *m, double seconds);   /* a listing's time in the queue */
void metrics_response_made(struct metrics *m);                  /* one HTTP response object built */

/* Fills p from /proc/self. Returns 0, or -1 with the reason in err. */
int metrics_process_read(struct metrics_process *p, char *err, size_t errlen);
/* Fills p's CPU, start time and memory from text, the line of /proc/<pid>/stat; boot_time
 * is /proc/stat's btime. Returns 0, or -1 with the reason in err. */
int metrics_parse_stat(const char *text, long ticks_per_second, long page_size, long long boot_time,
                       struct metrics_process *p, char *err, size_t errlen);

/* The exposition text (new string, caller frees). */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g);

/* One finished city scrape: API_ERROR_NONE ("ok") or the error it ended with. */
void metrics_scrape(struct metrics *m, enum api_error outcome);

#endif
