/* Fixed label sets keep this simple: routes and upstream outcomes are a handful of static
 * strings, statuses a few dozen values, so counters live in small arrays searched linearly. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fleet.h"
#include "redis.h"
#include "util.h"

#ifndef MOVIESD_REVISION
#define MOVIESD_REVISION "unknown"
#endif

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                 0};
/* A listing waits its turn in a queue spaced seconds apart: minutes, not milliseconds. */
static const double wait_buckets[] = {0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 0};
#define MAX_BUCKETS 16

struct histogram {
    const double *bounds;                   /* ascending, ended by 0 */
    unsigned long long counts[MAX_BUCKETS]; /* cumulative at render time, per bucket here */
    unsigned long long count;
    double sum;
};

struct request_counter {
    const char *route;
    int status;
    unsigned long long count;
};

struct route_histogram {
    const char *route;
    struct histogram seconds;
};

static const char *const upstream_outcomes[] = {"ok", "not_found", "blocked", "error", "timeout"};
#define NOUTCOMES (sizeof upstream_outcomes / sizeof upstream_outcomes[0])

struct metrics {
    struct request_counter *requests;
    size_t nrequests, cap;
    struct route_histogram *request_seconds;
    size_t nroutes, routes_cap;
    unsigned long long upstream[NOUTCOMES];
    struct histogram upstream_seconds;
    unsigned long long cache[CACHE_EVENT_COUNT];
    unsigned long long scrapes[API_ERROR_COUNT];
    unsigned long long breaker_trips;
    unsigned long long fleet_fallbacks;
    unsigned long long prefetches;
    unsigned long long responses_made;
    struct histogram listing_wait;
};

static void render_scrapes(char **buf, size_t *len, size_t *cap, const struct metrics *m);
static void render_redis(char **buf, size_t *len, size_t *cap, const struct redis_stats *r);
static void render_fleet(char **buf, size_t *len, size_t *cap, const struct fleet_stats *f);

/* Adds one observation. */
static void observe(struct histogram *h, double seconds)
{
    if (h->bounds == NULL)
        h->bounds = buckets;
    for (size_t i = 0; h->bounds[i] > 0; i++)
        if (seconds <= h->bounds[i]) {
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
    free(m->request_seconds);
    free(m);
}

/* The request-duration histogram of a route, added on its first request. */
static struct histogram *route_seconds(struct metrics *m, const char *route)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (strcmp(m->request_seconds[i].route, route) == 0)
            return &m->request_seconds[i].seconds;
    if (m->nroutes == m->routes_cap) {
        m->routes_cap = m->routes_cap ? m->routes_cap * 2 : 8;
        m->request_seconds = xrealloc(m->request_seconds, m->routes_cap * sizeof *m->request_seconds);
    }
    struct route_histogram *r = &m->request_seconds[m->nroutes++];
    memset(r, 0, sizeof *r);
    r->route = route;
    return &r->seconds;
}

void metrics_request(struct metrics *m, const char *route, int status, double seconds)
{
    observe(route_seconds(m, route), seconds);
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

void metrics_breaker_trip(struct metrics *m)
{
    if (m != NULL)
        m->breaker_trips++;
}

void metrics_fleet_fallback(struct metrics *m)
{
    if (m != NULL)
        m->fleet_fallbacks++;
}

void metrics_prefetch(struct metrics *m)
{
    if (m != NULL)
        m->prefetches++;
}

void metrics_response_made(struct metrics *m)
{
    if (m != NULL)
        m->responses_made++;
}

void metrics_listing_wait(struct metrics *m, double seconds)
{
    if (m == NULL)
        return;
    m->listing_wait.bounds = wait_buckets;
    observe(&m->listing_wait, seconds);
}

/* Reads one stat field into out: a non-negative decimal of at most 20 digits. */
static int stat_field(const char *start, size_t len, long long *out)
{
    char token[24];
    if (len >= sizeof token)
        return -1;
    memcpy(token, start, len);
    token[len] = '\0';
    return parse_integer(token, 0, LLONG_MAX, out);
}

int metrics_parse_stat(const char *text, long ticks_per_second, long page_size, long long boot_time,
                       struct metrics_process *p, char *err, size_t errlen)
{
    /* proc(5): "pid (comm) state ppid ...". comm may hold spaces and parentheses, so the
     * numbered fields are counted from after the last ')', where field 3 starts. */
    enum { UTIME = 14, STIME = 15, STARTTIME = 22, VSIZE = 23, RSS = 24 };
    long long utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
    if (ticks_per_second <= 0 || page_size <= 0) {
        errorf(err, errlen, "stat: clock ticks %ld or page size %ld unknown", ticks_per_second, page_size);
        return -1;
    }
    const char *q = strrchr(text, ')');
    if (q == NULL) {
        errorf(err, errlen, "stat: no ')' after the command name");
        return -1;
    }
    q++;
    int field = 2;
    while (field < RSS) {
        while (*q == ' ')
            q++;
        const char *start = q;
        while (*q != '\0' && *q != ' ' && *q != '\n')
            q++;
        if (q == start) {
            errorf(err, errlen, "stat: %d fields, %d expected", field, (int)RSS);
            return -1;
        }
        field++;
        long long *target = field == UTIME ? &utime : field == STIME ? &stime
                          : field == STARTTIME ? &starttime : field == VSIZE ? &vsize
                          : field == RSS ? &rss : NULL;
        if (target != NULL && stat_field(start, (size_t)(q - start), target) != 0) {
            errorf(err, errlen, "stat: field %d is not a number", field);
            return -1;
        }
    }
    p->cpu_seconds = (double)(utime + stime) / (double)ticks_per_second;
    p->start_time = (double)boot_time + (double)starttime / (double)ticks_per_second;
    p->virtual_bytes = (double)vsize;
    p->resident_bytes = (double)rss * (double)page_size;
    return 0;
}

/* /proc/stat's btime: when the system booted, in seconds since the epoch. It never changes,
 * so it is read once, not on every scrape of /metrics (/proc/stat has a line per CPU). */
static int read_boot_time(long long *out, char *err, size_t errlen)
{
    static long long boot_time = -1;
    if (boot_time >= 0) {
        *out = boot_time;
        return 0;
    }
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        errorf(err, errlen, "/proc/stat: %s", strerror(errno));
        return -1;
    }
    char line[256];
    int found = -1;
    while (found != 0 && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "btime ", 6) == 0) {
            line[strcspn(line, "\n")] = '\0';
            found = parse_integer(line + 6, 0, LLONG_MAX, out);
        }
    fclose(f);
    if (found != 0)
        errorf(err, errlen, "/proc/stat: no usable btime line");
    else
        boot_time = *out;
    return found;
}

/* The file descriptors open in this process, not counting the one that lists them. */
static int count_open_fds(long *out, char *err, size_t errlen)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        errorf(err, errlen, "/proc/self/fd: %s", strerror(errno));
        return -1;
    }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long fd;
        if (parse_integer(e->d_name, 0, INT_MAX, &fd) == 0 && fd != dirfd(d))
            n++;
    }
    closedir(d);
    *out = n;
    return 0;
}

int metrics_process_read(struct metrics_process *p, char *err, size_t errlen)
{
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        errorf(err, errlen, "/proc/self/stat: %s", strerror(errno));
        return -1;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    long long boot_time;
    if (read_boot_time(&boot_time, err, errlen) != 0 ||
        metrics_parse_stat(text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time, p, err,
                           errlen) != 0 ||
        count_open_fds(&p->open_fds, err, errlen) != 0)
        return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        errorf(err, errlen, "getrlimit: %s", strerror(errno));
        return -1;
    }
    p->max_fds = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX
                                                                                 : (long)rl.rlim_cur;
    return 0;
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

/* Writes one histogram's samples with cumulative buckets; labels is "" or `name="value"`. */
static void render_histogram(char **buf, size_t *len, size_t *cap, const char *name,
                             const char *labels, const struct histogram *h)
{
    const char *sep = labels[0] ? "," : "";
    const double *bounds = h->bounds ? h->bounds : buckets;
    unsigned long long cumulative = 0;
    for (size_t i = 0; bounds[i] > 0; i++) {
        cumulative += h->counts[i];
        append(buf, len, cap, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
               cumulative);
    }
    append(buf, len, cap, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, h->count);
    if (labels[0])
        append(buf, len, cap, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name,
               labels, h->count);
    else
        append(buf, len, cap, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, h->count);
}

/* Appends s as a label value: backslash, quote and newline escaped as the format asks. */
static void append_label_value(char **buf, size_t *len, size_t *cap, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            append(buf, len, cap, "\\%c", *s);
        else if (*s == '\n')
            append(buf, len, cap, "\\n");
        else
            append(buf, len, cap, "%c", *s);
    }
}

/* The process_* metrics, named and explained as Prometheus client libraries do. */
static void render_process(char **buf, size_t *len, size_t *cap, const struct metrics_process *p)
{
    append(buf, len, cap,
           "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
           "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
           "# HELP process_open_fds Number of open file descriptors.\n"
           "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
           "# HELP process_max_fds Maximum number of open file descriptors.\n"
           "# TYPE process_max_fds gauge\nprocess_max_fds %ld\n"
           "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
           "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
           "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
           "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
           "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
           p->cpu_seconds, p->open_fds, p->max_fds, p->virtual_bytes, p->resident_bytes,
           p->start_time);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g)
{
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    append(&buf, &len, &cap, "# HELP moviesd_build_info The running build's version and source revision.\n"
                             "# TYPE moviesd_build_info gauge\nmoviesd_build_info{version=\"");
    append_label_value(&buf, &len, &cap, MOVIESD_VERSION);
    append(&buf, &len, &cap, "\",revision=\"");
    append_label_value(&buf, &len, &cap, MOVIESD_REVISION);
    append(&buf, &len, &cap, "\"} 1\n");
    if (g->process != NULL)
        render_process(&buf, &len, &cap, g->process);
    append(&buf, &len, &cap, "# HELP moviesd_requests_total API requests by route and status.\n"
                             "# TYPE moviesd_requests_total counter\n");
    for (size_t i = 0; i < m->nrequests; i++)
        append(&buf, &len, &cap, "moviesd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
               m->requests[i].route, m->requests[i].status, m->requests[i].count);
    append(&buf, &len, &cap, "# HELP moviesd_request_duration_seconds Time from a request's arrival "
                             "to its answer, by route.\n"
                             "# TYPE moviesd_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nroutes; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", m->request_seconds[i].route);
        render_histogram(&buf, &len, &cap, "moviesd_request_duration_seconds", labels,
                         &m->request_seconds[i].seconds);
    }
    append(&buf, &len, &cap, "# HELP moviesd_upstream_requests_total Upstream transfers by outcome.\n"
                             "# TYPE moviesd_upstream_requests_total counter\n");
    for (size_t i = 0; i < NOUTCOMES; i++)
        append(&buf, &len, &cap, "moviesd_upstream_requests_total{outcome=\"%s\"} %llu\n",
               upstream_outcomes[i], m->upstream[i]);
    append(&buf, &len, &cap, "# HELP moviesd_upstream_duration_seconds Duration of upstream transfers.\n"
                             "# TYPE moviesd_upstream_duration_seconds histogram\n");
    render_histogram(&buf, &len, &cap, "moviesd_upstream_duration_seconds", "", &m->upstream_seconds);
    static const char *const cache_names[] = {"hit", "miss", "stale", "partial"};
    append(&buf, &len, &cap, "# HELP moviesd_cache_total City answers by cache outcome.\n"
                             "# TYPE moviesd_cache_total counter\n");
    for (size_t i = 0; i < CACHE_EVENT_COUNT; i++)
        append(&buf, &len, &cap, "moviesd_cache_total{result=\"%s\"} %llu\n", cache_names[i], m->cache[i]);
    append(&buf, &len, &cap, "# HELP moviesd_breaker_trips_total Times the breaker opened because the "
                             "upstream refused us.\n# TYPE moviesd_breaker_trips_total counter\n"
                             "moviesd_breaker_trips_total %llu\n", m->breaker_trips);
    render_scrapes(&buf, &len, &cap, m);
    append(&buf, &len, &cap, "# HELP moviesd_prefetch_refreshes_total City refreshes the prefetcher "
                             "started.\n# TYPE moviesd_prefetch_refreshes_total counter\n"
                             "moviesd_prefetch_refreshes_total %llu\n", m->prefetches);
    append(&buf, &len, &cap, "# HELP moviesd_responses_made_total HTTP response objects built: a "
                             "cached answer's is built once a second per encoding and status and "
                             "sent to every request that gets it.\n"
                             "# TYPE moviesd_responses_made_total counter\n"
                             "moviesd_responses_made_total %llu\n", m->responses_made);
    append(&buf, &len, &cap, "# HELP moviesd_listing_queue_wait_seconds Time a listing waited for "
                             "its turn in the polite queue.\n"
                             "# TYPE moviesd_listing_queue_wait_seconds histogram\n");
    struct histogram wait = m->listing_wait;
    wait.bounds = wait_buckets;
    render_histogram(&buf, &len, &cap, "moviesd_listing_queue_wait_seconds", "", &wait);
    static const char *const priority_names[] = {"prefetch", "details", "listing"};
    append(&buf, &len, &cap, "# HELP moviesd_upstream_queued Upstream requests waiting, by queue: "
                             "listings clients wait for, movie pages of cities people ask for, "
                             "prefetch.\n# TYPE moviesd_upstream_queued gauge\n");
    for (size_t i = 0; i < 3; i++)
        append(&buf, &len, &cap, "moviesd_upstream_queued{queue=\"%s\"} %ld\n", priority_names[i],
               g->upstream_queued[i]);
    append(&buf, &len, &cap,
           "# HELP moviesd_upstream_starts_last_minute Upstream requests started in the last 60 s, "
           "retries included.\n# TYPE moviesd_upstream_starts_last_minute gauge\n"
           "moviesd_upstream_starts_last_minute %ld\n"
           "# HELP moviesd_details_pending Movie pages awaited by city scrapes.\n"
           "# TYPE moviesd_details_pending gauge\nmoviesd_details_pending %ld\n"
           "# HELP moviesd_parse_threads Worker threads parsing pages off the event loop.\n"
           "# TYPE moviesd_parse_threads gauge\nmoviesd_parse_threads %ld\n"
           "# HELP moviesd_parse_queued Fetched pages waiting for a parse worker.\n"
           "# TYPE moviesd_parse_queued gauge\nmoviesd_parse_queued %ld\n",
           g->upstream_starts_last_minute, g->details_pending, g->parse_threads, g->parse_queued);
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
    append(&buf, &len, &cap,
           "# HELP moviesd_cache_bytes Bytes held by each cache, as charged against "
           "cache_max_bytes, which bounds their sum.\n"
           "# TYPE moviesd_cache_bytes gauge\n"
           "moviesd_cache_bytes{cache=\"cities\"} %ld\nmoviesd_cache_bytes{cache=\"movies\"} %ld\n",
           g->cache_bytes[0], g->cache_bytes[1]);
    if (g->redis != NULL)
        render_redis(&buf, &len, &cap, g->redis);
    if (g->fleet != NULL)
        render_fleet(&buf, &len, &cap, g->fleet);
    if (g->fleet != NULL)
        append(&buf, &len, &cap,
               "# HELP moviesd_fleet_budget_fallbacks_total Upstream requests started under the "
               "local budget (1/expected_replicas of the limits) because the fleet's was out of "
               "reach.\n# TYPE moviesd_fleet_budget_fallbacks_total counter\n"
               "moviesd_fleet_budget_fallbacks_total %llu\n", m->fleet_fallbacks);
    return buf;
}

/* The Redis client's series: state, round trips, failures by kind, reconnections. */
static void render_redis(char **buf, size_t *len, size_t *cap, const struct redis_stats *r)
{
    append(buf, len, cap,
           "# HELP moviesd_redis_up 1 while the shared Redis answers; 0 while replicas fall back "
           "to local state.\n# TYPE moviesd_redis_up gauge\nmoviesd_redis_up %d\n"
           "# HELP moviesd_redis_subscribed 1 while the connection that hears of finished "
           "flights is live (waiters poll without it).\n"
           "# TYPE moviesd_redis_subscribed gauge\nmoviesd_redis_subscribed %d\n"
           "# HELP moviesd_redis_in_flight Redis commands sent, reply awaited.\n"
           "# TYPE moviesd_redis_in_flight gauge\nmoviesd_redis_in_flight %zu\n"
           "# HELP moviesd_redis_round_trip_seconds Time from sending a Redis command to its "
           "reply.\n# TYPE moviesd_redis_round_trip_seconds histogram\n",
           r->up, r->subscribed, r->in_flight);
    double bounds[REDIS_ROUND_TRIP_BUCKETS + 1];
    struct histogram h = {.bounds = bounds, .count = r->round_trips, .sum = r->round_trip_seconds};
    for (size_t i = 0; i < REDIS_ROUND_TRIP_BUCKETS; i++) {
        bounds[i] = redis_round_trip_bounds[i];
        h.counts[i] = r->round_trip_buckets[i];
    }
    bounds[REDIS_ROUND_TRIP_BUCKETS] = 0;
    render_histogram(buf, len, cap, "moviesd_redis_round_trip_seconds", "", &h);
    append(buf, len, cap, "# HELP moviesd_redis_errors_total Redis commands that failed: an "
                          "error reply, no reply in time, the connection lost, or not sent "
                          "because Redis was down.\n# TYPE moviesd_redis_errors_total counter\n");
    static const enum redis_result kinds[] = {REDIS_RESULT_REPLY, REDIS_RESULT_TIMEOUT,
                                              REDIS_RESULT_CONNECTION, REDIS_RESULT_DOWN};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        append(buf, len, cap, "moviesd_redis_errors_total{kind=\"%s\"} %llu\n",
               redis_result_name(kinds[i]), r->errors[kinds[i]]);
    append(buf, len, cap,
           "# HELP moviesd_redis_outages_total Times Redis stopped answering.\n"
           "# TYPE moviesd_redis_outages_total counter\nmoviesd_redis_outages_total %llu\n"
           "# HELP moviesd_redis_reconnects_total Connection attempts made during outages.\n"
           "# TYPE moviesd_redis_reconnects_total counter\nmoviesd_redis_reconnects_total %llu\n",
           r->outages, r->reconnects);
}

/* The fleet's series: budget answers, breaker trips, locks, waits, shared values. */
static void render_fleet(char **buf, size_t *len, size_t *cap, const struct fleet_stats *f)
{
    static const char *const verdicts[] = {"granted", "wait", "blocked", "error"};
    static const char *const waits[] = {"done", "takeover", "timeout", "error"};
    static const char *const values[] = {"found", "missing", "corrupt", "error"};
    append(buf, len, cap, "# HELP moviesd_fleet_budget_total Upstream request starts asked of "
                          "the fleet's shared budget, by answer.\n"
                          "# TYPE moviesd_fleet_budget_total counter\n");
    for (size_t i = 0; i < FLEET_BUDGET_COUNT; i++)
        append(buf, len, cap, "moviesd_fleet_budget_total{verdict=\"%s\"} %llu\n", verdicts[i],
               f->budget[i]);
    append(buf, len, cap,
           "# HELP moviesd_fleet_breaker_trips_total Times this replica opened the fleet's "
           "shared breaker.\n# TYPE moviesd_fleet_breaker_trips_total counter\n"
           "moviesd_fleet_breaker_trips_total %llu\n"
           "# HELP moviesd_fleet_locks_total Single-flight locks: taken (takeovers included), "
           "found held by another replica, lost while held.\n"
           "# TYPE moviesd_fleet_locks_total counter\n"
           "moviesd_fleet_locks_total{result=\"acquired\"} %llu\n"
           "moviesd_fleet_locks_total{result=\"held\"} %llu\n"
           "moviesd_fleet_locks_total{result=\"lost\"} %llu\n"
           "# HELP moviesd_fleet_waits_total Waits for another replica's flight, by how they "
           "ended.\n# TYPE moviesd_fleet_waits_total counter\n",
           f->breaker_trips, f->locks_acquired, f->locks_held, f->locks_lost);
    for (size_t i = 0; i < FLEET_WATCH_COUNT; i++)
        append(buf, len, cap, "moviesd_fleet_waits_total{result=\"%s\"} %llu\n", waits[i],
               f->watches[i]);
    append(buf, len, cap,
           "# HELP moviesd_fleet_wait_seconds_total Time spent waiting for other replicas' "
           "flights.\n# TYPE moviesd_fleet_wait_seconds_total counter\n"
           "moviesd_fleet_wait_seconds_total %.3f\n"
           "# HELP moviesd_fleet_values_total Shared values read from Redis, by result.\n"
           "# TYPE moviesd_fleet_values_total counter\n",
           f->watch_seconds);
    for (size_t i = 0; i < FLEET_VALUE_COUNT; i++)
        append(buf, len, cap, "moviesd_fleet_values_total{result=\"%s\"} %llu\n", values[i],
               f->values[i]);
}

/* Counts one finished city scrape under its outcome. */
void metrics_scrape(struct metrics *m, enum api_error outcome)
{
    if (m != NULL && (unsigned)outcome < API_ERROR_COUNT)
        m->scrapes[outcome]++;
}

/* Writes the scrape counters: one series per outcome a scrape can have, zeros included. */
static void render_scrapes(char **buf, size_t *len, size_t *cap, const struct metrics *m)
{
    append(buf, len, cap, "# HELP moviesd_scrapes_total Finished city scrapes by outcome: ok or "
                          "the API error code.\n# TYPE moviesd_scrapes_total counter\n");
    for (int e = 0; e < API_ERROR_COUNT; e++)
        if (api_error_info((enum api_error)e)->scrape)
            append(buf, len, cap, "moviesd_scrapes_total{outcome=\"%s\"} %llu\n",
                   api_error_code((enum api_error)e), m->scrapes[e]);
}
