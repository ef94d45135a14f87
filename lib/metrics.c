/* Fixed label sets keep this simple: routes and upstream outcomes are a handful of static
 * strings, statuses a few dozen values, so counters live in small arrays searched linearly. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct histogram {
    unsigned long long counts[NBUCKETS]; /* cumulative at render time, per bucket here */
    unsigned long long count;
    double sum;
};

struct request_counter {
    const char *route;
    int status;
    unsigned long long count;
};

static const char *const upstream_outcomes[] = {"ok", "not_found", "blocked", "error", "timeout"};
#define NOUTCOMES (sizeof upstream_outcomes / sizeof upstream_outcomes[0])

struct metrics {
    struct request_counter *requests;
    size_t nrequests, cap;
    struct histogram request_seconds;
    unsigned long long upstream[NOUTCOMES];
    struct histogram upstream_seconds;
    unsigned long long cache[CACHE_EVENT_COUNT];
};

/* Adds one observation. */
static void observe(struct histogram *h, double seconds)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (seconds <= buckets[i]) {
            h->counts[i]++;
            break;
        }
    h->count++;
    h->sum += seconds;
}

/* The index of an upstream outcome label, or NOUTCOMES. */
static size_t outcome_index(const char *outcome)
{
    size_t i = 0;
    while (i < NOUTCOMES && strcmp(upstream_outcomes[i], outcome) != 0)
        i++;
    return i;
}

struct metrics *metrics_new(void)
{
    return xcalloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    free(m->requests);
    free(m);
}

void metrics_request(struct metrics *m, const char *route, int status, double seconds)
{
    observe(&m->request_seconds, seconds);
    for (size_t i = 0; i < m->nrequests; i++)
        if (m->requests[i].status == status && strcmp(m->requests[i].route, route) == 0) {
            m->requests[i].count++;
            return;
        }
    if (m->nrequests == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->requests = xrealloc(m->requests, m->cap * sizeof *m->requests);
    }
    m->requests[m->nrequests++] = (struct request_counter){route, status, 1};
}

void metrics_upstream(struct metrics *m, const char *outcome, double seconds)
{
    if (m == NULL)
        return;
    observe(&m->upstream_seconds, seconds);
    size_t i = outcome_index(outcome);
    if (i < NOUTCOMES)
        m->upstream[i]++;
}

void metrics_upstream_reclassify(struct metrics *m, const char *from, const char *to)
{
    size_t a = outcome_index(from), b = outcome_index(to);
    if (m == NULL || a == NOUTCOMES || b == NOUTCOMES || m->upstream[a] == 0)
        return;
    m->upstream[a]--;
    m->upstream[b]++;
}

void metrics_cache(struct metrics *m, enum cache_event e)
{
    if (m != NULL)
        m->cache[e]++;
}

/* Appends printf output to a growing buffer. */
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap *= 2;
        *buf = xrealloc(*buf, *cap);
    }
}

/* Writes one histogram with its cumulative buckets. */
static void render_histogram(char **buf, size_t *len, size_t *cap, const char *name,
                             const char *help, const struct histogram *h)
{
    append(buf, len, cap, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cumulative += h->counts[i];
        append(buf, len, cap, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], cumulative);
    }
    append(buf, len, cap, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
           h->count, name, h->sum, name, h->count);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g)
{
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    append(&buf, &len, &cap, "# HELP moviesd_requests_total API requests by route and status.\n"
                             "# TYPE moviesd_requests_total counter\n");
    for (size_t i = 0; i < m->nrequests; i++)
        append(&buf, &len, &cap, "moviesd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
               m->requests[i].route, m->requests[i].status, m->requests[i].count);
    render_histogram(&buf, &len, &cap, "moviesd_request_duration_seconds",
                     "Time from a request's arrival to its answer.", &m->request_seconds);
    append(&buf, &len, &cap, "# HELP moviesd_upstream_requests_total Upstream transfers by outcome.\n"
                             "# TYPE moviesd_upstream_requests_total counter\n");
    for (size_t i = 0; i < NOUTCOMES; i++)
        append(&buf, &len, &cap, "moviesd_upstream_requests_total{outcome=\"%s\"} %llu\n",
               upstream_outcomes[i], m->upstream[i]);
    render_histogram(&buf, &len, &cap, "moviesd_upstream_duration_seconds",
                     "Duration of upstream transfers.", &m->upstream_seconds);
    static const char *const cache_names[] = {"hit", "miss", "stale"};
    append(&buf, &len, &cap, "# HELP moviesd_cache_total City answers by cache outcome.\n"
                             "# TYPE moviesd_cache_total counter\n");
    for (size_t i = 0; i < CACHE_EVENT_COUNT; i++)
        append(&buf, &len, &cap, "moviesd_cache_total{result=\"%s\"} %llu\n", cache_names[i], m->cache[i]);
    append(&buf, &len, &cap,
           "# HELP moviesd_scrapes_in_flight City scrapes under way.\n"
           "# TYPE moviesd_scrapes_in_flight gauge\nmoviesd_scrapes_in_flight %ld\n"
           "# HELP moviesd_upstream_queue_length Upstream requests waiting for their turn.\n"
           "# TYPE moviesd_upstream_queue_length gauge\nmoviesd_upstream_queue_length %ld\n"
           "# HELP moviesd_upstream_in_flight Upstream transfers under way.\n"
           "# TYPE moviesd_upstream_in_flight gauge\nmoviesd_upstream_in_flight %ld\n"
           "# HELP moviesd_breaker_open 1 while the upstream is not asked because it refused us.\n"
           "# TYPE moviesd_breaker_open gauge\nmoviesd_breaker_open %ld\n"
           "# HELP moviesd_breaker_remaining_seconds Time until the breaker closes.\n"
           "# TYPE moviesd_breaker_remaining_seconds gauge\nmoviesd_breaker_remaining_seconds %ld\n"
           "# HELP moviesd_cached_cities Cities in the cache.\n"
           "# TYPE moviesd_cached_cities gauge\nmoviesd_cached_cities %ld\n"
           "# HELP moviesd_cached_movies Movie records in the cache.\n"
           "# TYPE moviesd_cached_movies gauge\nmoviesd_cached_movies %ld\n",
           g->scrapes_in_flight, g->upstream_queue_length, g->upstream_in_flight, g->breaker_open,
           g->breaker_remaining, g->cached_cities, g->cached_movies);
    return buf;
}
