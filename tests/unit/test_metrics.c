/* Unit tests of lib/metrics.c: the exposition text (build info, per-route histograms, breaker
 * trips, process metrics) and reading this process's figures from /proc. */
#include "check.h"
#include "fleet.h"
#include "metrics.h"
#include "redis.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Fields 3..24 of a stat line with utime 150, stime 50, starttime 1000, vsize 4096000 and
 * rss 250; the command name before them is the caller's. */
#define STAT_TAIL " S 1 1 1 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 1000 4096000 250 " \
                  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"

/* Fields are counted after the last ')', whatever the command name holds. */
static void test_parse_stat(void)
{
    struct metrics_process p;
    char err[160];
    const char *names[] = { "1234 (moviesd)", "1234 (a b) c)", "1234 ()", "1234 ((x) 1 2 3)" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line[512];
        snprintf(line, sizeof line, "%s%s", names[i], STAT_TAIL);
        memset(&p, 0, sizeof p);
        err[0] = '\0';
        CHECK_INT(metrics_parse_stat(line, 100, 4096, 1700000000, &p, err, sizeof err), 0);
        CHECK_STR(err, "");
        CHECK(p.cpu_seconds == 2.0);
        CHECK(p.start_time == 1700000010.0);
        CHECK(p.virtual_bytes == 4096000.0);
        CHECK(p.resident_bytes == 250.0 * 4096);
    }

    const char *bad[] = {
        "",
        "1234 moviesd S 1 1 1 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 1000 4096000 250\n",
        "1234 (moviesd) S 1 1 1 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 1000 4096000\n",
        "1234 (moviesd) S 1 1 1 0 -1 4194560 500 0 0 0 15x 50 0 0 20 0 1 0 1000 4096000 250\n",
        "1234 (moviesd) S 1 1 1 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 1000 4096000 -250\n",
        "1234 (moviesd) S 1 1 1 0 -1 4194560 500 0 0 0 150 +50 0 0 20 0 1 0 1000 4096000 250\n",
        ("1234 (moviesd) S 1 1 1 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 1 0 "
         "99999999999999999999 4096000 250\n"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (metrics_parse_stat(bad[i], 100, 4096, 1700000000, &p, err, sizeof err) == 0)
            fprintf(stderr, "stat line %zu accepted\n", i);
        CHECK_INT(metrics_parse_stat(bad[i], 100, 4096, 1700000000, &p, err, sizeof err), -1);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(metrics_parse_stat("1 (x)" STAT_TAIL, 0, 4096, 1700000000, &p, err, sizeof err), -1);
}

/* The fds /proc/self/fd lists, less the one listing them. */
static long fds_now(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n - 1;
}

/* This process's figures are those of a process that started a moment ago. */
static void test_process_read(void)
{
    struct metrics_process p;
    char err[160] = "";
    CHECK_INT(metrics_process_read(&p, err, sizeof err), 0);
    if (err[0])
        fprintf(stderr, "metrics_process_read: %s\n", err);
    double now = (double)time(NULL);
    CHECK(p.start_time > now - 600 && p.start_time <= now + 2);
    CHECK(p.cpu_seconds >= 0 && p.cpu_seconds < 600);
    CHECK(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
    CHECK(p.open_fds >= 3);
    CHECK_INT(p.open_fds, fds_now());
    struct rlimit rl;
    CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK_INT(p.max_fds, (long)rl.rlim_cur);
    /* An fd more open shows up: the count is of this process's fds, read each time. */
    FILE *f = fopen("/proc/self/stat", "r");
    struct metrics_process q;
    CHECK_INT(metrics_process_read(&q, err, sizeof err), 0);
    CHECK_INT(q.open_fds, p.open_fds + 1);
    fclose(f);
}

/* Whether text holds line as one whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* The text: build info first, one histogram series per route, trips and responses counted. */
static void test_render(void)
{
    struct metrics *m = metrics_new();
    struct metrics_gauges g = {.cache_bytes = {123456, 7890123}};
    metrics_request(m, "movies", 200, 0.002);
    metrics_request(m, "movies", 304, 0.03);
    metrics_request(m, "healthz", 200, 0.0001);
    metrics_breaker_trip(m);
    metrics_breaker_trip(m);
    metrics_breaker_trip(NULL);
    metrics_response_made(m);
    metrics_response_made(m);
    metrics_response_made(m);
    metrics_response_made(NULL);
    char *text = metrics_render(m, &g);
    char line[160];
    snprintf(line, sizeof line, "moviesd_build_info{version=\"%s\",revision=\"%s\"} 1",
             MOVIESD_VERSION, MOVIESD_REVISION);
    CHECK(strncmp(text, "# HELP moviesd_build_info ", 26) == 0);
    CHECK(has_line(text, line));
    CHECK(has_line(text, "# TYPE moviesd_request_duration_seconds histogram"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_bucket{route=\"movies\",le=\"0.001\"} 0"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_bucket{route=\"movies\",le=\"0.005\"} 1"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_bucket{route=\"movies\",le=\"+Inf\"} 2"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_count{route=\"movies\"} 2"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_sum{route=\"movies\"} 0.032000"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_bucket{route=\"healthz\",le=\"0.001\"} 1"));
    CHECK(has_line(text, "moviesd_request_duration_seconds_count{route=\"healthz\"} 1"));
    CHECK(strstr(text, "moviesd_request_duration_seconds_count ") == NULL);
    CHECK(has_line(text, "moviesd_upstream_duration_seconds_count 0"));
    CHECK(has_line(text, "# TYPE moviesd_breaker_trips_total counter"));
    CHECK(has_line(text, "moviesd_breaker_trips_total 2"));
    CHECK(has_line(text, "# TYPE moviesd_responses_made_total counter"));
    CHECK(has_line(text, "moviesd_responses_made_total 3"));
    CHECK(has_line(text, "# TYPE moviesd_cache_bytes gauge"));
    CHECK(has_line(text, "moviesd_cache_bytes{cache=\"cities\"} 123456"));
    CHECK(has_line(text, "moviesd_cache_bytes{cache=\"movies\"} 7890123"));
    CHECK(strstr(text, "process_") == NULL);
    free(text);

    struct metrics_process p = {.cpu_seconds = 1.5, .start_time = 1700000010.25,
                                .resident_bytes = 1024000, .virtual_bytes = 4096000,
                                .open_fds = 12, .max_fds = 1024};
    g.process = &p;
    text = metrics_render(m, &g);
    CHECK(has_line(text, "# TYPE process_cpu_seconds_total counter"));
    CHECK(has_line(text, "process_cpu_seconds_total 1.50"));
    CHECK(has_line(text, "process_start_time_seconds 1700000010.25"));
    CHECK(has_line(text, "process_resident_memory_bytes 1024000"));
    CHECK(has_line(text, "process_virtual_memory_bytes 4096000"));
    CHECK(has_line(text, "process_open_fds 12"));
    CHECK(has_line(text, "process_max_fds 1024"));
    free(text);
    metrics_free(m);
    metrics_free(NULL);
}

/* The Redis and fleet series: only with their stats, which they show as given. */
static void test_render_redis(void)
{
    struct metrics *m = metrics_new();
    struct metrics_gauges g = {0};
    char *text = metrics_render(m, &g);
    CHECK(strstr(text, "moviesd_redis_") == NULL);
    CHECK(strstr(text, "moviesd_fleet_") == NULL);
    free(text);

    struct redis_stats r = {.up = 1, .subscribed = 0, .in_flight = 3, .round_trips = 7,
                            .round_trip_seconds = 0.0042, .reconnects = 5, .outages = 2};
    r.round_trip_buckets[0] = 2;    /* <= 0.0001 */
    r.round_trip_buckets[3] = 4;    /* <= 0.001 */
    r.errors[REDIS_RESULT_TIMEOUT] = 9;
    r.errors[REDIS_RESULT_DOWN] = 11;
    struct fleet_stats f = {.breaker_trips = 1, .locks_acquired = 4, .locks_held = 6,
                            .watch_seconds = 1.25};
    f.budget[FLEET_BUDGET_GRANTED] = 30;
    f.budget[FLEET_BUDGET_BLOCKED] = 2;
    f.watches[FLEET_WATCH_TAKEOVER] = 1;
    f.values[FLEET_VALUE_CORRUPT] = 3;
    g.redis = &r;
    g.fleet = &f;
    text = metrics_render(m, &g);
    CHECK(has_line(text, "moviesd_redis_up 1"));
    CHECK(has_line(text, "moviesd_redis_subscribed 0"));
    CHECK(has_line(text, "moviesd_redis_in_flight 3"));
    CHECK(has_line(text, "# TYPE moviesd_redis_round_trip_seconds histogram"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_bucket{le=\"0.0001\"} 2"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_bucket{le=\"0.0005\"} 2"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_bucket{le=\"0.001\"} 6"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_bucket{le=\"1\"} 6"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_bucket{le=\"+Inf\"} 7"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_count 7"));
    CHECK(has_line(text, "moviesd_redis_round_trip_seconds_sum 0.004200"));
    CHECK(has_line(text, "moviesd_redis_errors_total{kind=\"timeout\"} 9"));
    CHECK(has_line(text, "moviesd_redis_errors_total{kind=\"down\"} 11"));
    CHECK(has_line(text, "moviesd_redis_errors_total{kind=\"reply\"} 0"));
    CHECK(strstr(text, "kind=\"closed\"") == NULL);
    CHECK(has_line(text, "moviesd_redis_outages_total 2"));
    CHECK(has_line(text, "moviesd_redis_reconnects_total 5"));
    CHECK(has_line(text, "moviesd_fleet_budget_total{verdict=\"granted\"} 30"));
    CHECK(has_line(text, "moviesd_fleet_budget_total{verdict=\"blocked\"} 2"));
    CHECK(has_line(text, "moviesd_fleet_budget_total{verdict=\"wait\"} 0"));
    CHECK(has_line(text, "moviesd_fleet_breaker_trips_total 1"));
    CHECK(has_line(text, "moviesd_fleet_locks_total{result=\"held\"} 6"));
    CHECK(has_line(text, "moviesd_fleet_waits_total{result=\"takeover\"} 1"));
    CHECK(has_line(text, "moviesd_fleet_wait_seconds_total 1.250"));
    CHECK(has_line(text, "moviesd_fleet_values_total{result=\"corrupt\"} 3"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    test_parse_stat();
    test_process_read();
    test_render();
    test_render_redis();
    return check_summary();
}
