/* Counters and histograms for GET /metrics, rendered in the Prometheus text format.
 * Gauges (queue length, breaker state...) are read from their owners at render time. */
#ifndef MOVIESD_METRICS_H
#define MOVIESD_METRICS_H

#include <stddef.h>

struct metrics;

enum cache_event { CACHE_HIT, CACHE_MISS, CACHE_STALE, CACHE_EVENT_COUNT };

struct metrics_gauges {
    long scrapes_in_flight;
    long upstream_queue_length;
    long upstream_in_flight;
    long breaker_open;          /* 0 or 1 */
    long breaker_remaining;     /* seconds */
    long cached_cities;
    long cached_movies;
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

/* The exposition text (new string, caller frees). */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g);

#endif
