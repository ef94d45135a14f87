/* moviesd: the process. Options and config, signals, the one event loop, and the
 * commands that share the scraping code (fetch) or probe a running daemon (health). */
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "cache.h"
#include "cities.h"
#include "config.h"
#include "posters.h"
#include "douban.h"
#include "error.h"
#include "fetch.h"
#include "log.h"
#include "movie.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"
#include "prefetch.h"
#include "fleet.h"
#include "redis.h"
#include "scrape.h"
#include "server.h"
#include "util.h"

extern char **environ;

/* What the command line asked for, kept so a reload can apply the flags again. */
struct options {
    const char *config_path;
    const char **flags;        /* setting flags as given: name, value, name, value... */
    size_t nflags;
    const char *command;       /* NULL (serve), "fetch", "health" */
    const char *city;
    int check_config;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: moviesd [--config FILE] [--SETTING VALUE ...]      serve the API\n"
            "       moviesd fetch CITY [--SETTING VALUE ...]           scrape once, print the JSON\n"
            "       moviesd health [--SETTING VALUE ...]               probe a running daemon's /healthz\n"
            "       moviesd --check-config [--config FILE] [...]       validate and print the settings\n"
            "       moviesd --help | --version\n"
            "\n"
            "Answers GET /movies?city=<slug> with the movies coming soon to that city's cinemas,\n"
            "scraped from Douban. Settings come from flags, then MOVIESD_<KEY> environment\n"
            "variables, then the config file (--config or MOVIESD_CONFIG), then defaults.\n"
            "\n"
            "Settings:\n");
    config_print_help(out);
}

/* Parses argv into opts. Returns 0, or -1 with a message in err. */
static int parse_options(int argc, char **argv, struct options *opts, char *err, size_t errlen)
{
    opts->flags = xcalloc((size_t)argc * 2 + 1, sizeof *opts->flags);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] != '-') {
            if (opts->command == NULL && (strcmp(arg, "fetch") == 0 || strcmp(arg, "health") == 0)) {
                opts->command = arg;
                continue;
            }
            if (opts->command && strcmp(opts->command, "fetch") == 0 && opts->city == NULL) {
                opts->city = arg;
                continue;
            }
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        char flag[64];
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (n >= sizeof flag) {
            snprintf(err, errlen, "unknown option '%.64s' (see --help)", arg);
            return -1;
        }
        memcpy(flag, name, n);
        flag[n] = '\0';
        if (strcmp(flag, "check-config") == 0 && !eq) {
            opts->check_config = 1;
            continue;
        }
        int is_config = strcmp(flag, "config") == 0;
        const struct setting *s = is_config ? NULL : config_find_flag(flag);
        if (!is_config && s == NULL) {
            snprintf(err, errlen, "unknown option '--%s' (see --help)", flag);
            return -1;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL) {
            snprintf(err, errlen, "option '--%s' needs a value", flag);
            return -1;
        }
        if (is_config) {
            opts->config_path = value;
        } else {
            opts->flags[opts->nflags++] = s->name;
            opts->flags[opts->nflags++] = value;
        }
    }
    return 0;
}

/* Builds the effective configuration: defaults < file < environment < flags. */
static int load_config(const struct options *opts, struct config *c, char *err, size_t errlen)
{
    config_init(c);
    const char *path = opts->config_path ? opts->config_path : getenv("MOVIESD_CONFIG");
    if (path && *path && config_load_file(c, path, err, errlen) != 0)
        return -1;
    if (config_load_env(c, environ, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < opts->nflags; i += 2) {
        const struct setting *s = config_find(opts->flags[i]);
        char source[80];
        snprintf(source, sizeof source, "--%s", opts->flags[i]);
        for (char *p = source; *p; p++)
            if (*p == '_')
                *p = '-';
        if (config_set(c, s, opts->flags[i + 1], source, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* --- moviesd fetch CITY ----------------------------------------------------------- */

struct fetch_outcome_state {
    struct event_base *base;
    const char *city;
    int progress;    /* stderr is a terminal: show the movie pages as they come */
    int shown;       /* a progress line is on screen */
    int status;
};

/* The one scrape of `moviesd fetch` moved on, or ended. */
static void fetch_command_done(const struct scrape_result *result, void *arg)
{
    struct fetch_outcome_state *st = arg;
    if (st->progress && result->movies > 0) {
        fprintf(stderr, "\r%s: %zu/%zu movie pages", st->city, result->movies - result->pending,
                result->movies);
        st->shown = 1;
    }
    if (result->event != SCRAPE_DONE)
        return;
    if (st->shown)
        fputc('\n', stderr);
    json_t *doc = result->document;
    const struct scrape_error *err = result->error;
    if (doc) {
        char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
        printf("%s\n", text);
        free(text);
        json_decref(doc);
        st->status = 0;
    } else {
        fprintf(stderr, "moviesd: %s: %s\n", api_error_code(err->code), err->message);
        st->status = err->code == API_ERROR_UNKNOWN_CITY ? 3 : 4;
    }
    event_base_loopbreak(st->base);
}

static int run_fetch(const struct config *c, const char *city)
{
    if (city == NULL || !douban_city_valid(city)) {
        fprintf(stderr, "moviesd: fetch needs a CITY of 1 to 32 letters a-z, e.g. beijing, or a "
                        "city's id of 1 to 32 digits\n");
        return 2;
    }
    /* As the API does: no request for a slug Douban would answer with another city's page. */
    if (c->cities == CITIES_KNOWN && city_find(city) == NULL) {
        fprintf(stderr, "moviesd: %s: no city '%s' in the city table (GET /cities lists them; "
                        "--cities any asks Douban all the same)\n",
                api_error_code(API_ERROR_UNKNOWN_CITY), city);
        return 3;
    }
    struct event_base *base = event_base_new();
    struct fetcher *f = fetcher_new(base, c, NULL);
    struct cache_budget *budget = cache_budget_new((size_t)c->cache_max_bytes);
    struct pool *pool = pool_new(base, config_parse_threads(c));
    if (pool == NULL)
        return 1;
    struct scraper *s = scraper_new(f, c, budget, pool);
    struct fetch_outcome_state st = {base, city, isatty(STDERR_FILENO), 0, 4};
    /* One person waits for all of it: every request at the front of the queue. */
    scrape_city(s, KIND_LATER, city, FETCH_URGENT, FETCH_URGENT, fetch_command_done, &st);
    event_base_dispatch(base);
    scraper_free(s);
    pool_free(pool);
    cache_budget_free(budget);
    fetcher_free(f);
    event_base_free(base);
    return st.status;
}

/* --- moviesd health ----------------------------------------------------------------- */

/* Discards the probe's body. */
static size_t discard_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* Probes http://<listen>/healthz (a wildcard address is probed on loopback). */
static int run_health(const struct config *c)
{
    char host[300];
    snprintf(host, sizeof host, "%s", c->listen);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return 1;
    *colon = '\0';
    const char *port = colon + 1;
    const char *h = host;
    if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "") == 0)
        h = "127.0.0.1";
    else if (strcmp(h, "[::]") == 0)
        h = "[::1]";
    char *url = xasprintf("http://%s:%s/healthz", h, port);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    int ok = rc == CURLE_OK && status == 200;
    if (!ok)
        fprintf(stderr, "moviesd: %s: %s\n", url, rc != CURLE_OK ? curl_easy_strerror(rc) : "not healthy");
    free(url);
    return ok ? 0 : 1;
}

/* --- serving -------------------------------------------------------------------------- */

/* Where the poster proxy learns a listed movie's poster URL. */
static char *poster_lookup(void *arg, const char *id)
{
    return scraper_poster_url(arg, id);
}

struct daemon_state {
    struct server server;
    struct prefetcher *prefetcher;
    struct cache_budget *cache_budget;  /* the city and movie caches' bytes together */
    const struct options *opts;
    struct event *sigterm, *sigint, *sighup;
    struct event *watchdog;
    struct event *drain_check;
    double drain_started;
    double closing_since;          /* every wait answered: connections get a moment to flush */
};

/* Tells the supervisor how things are (no-op outside systemd). */
static void notify_status(const struct daemon_state *d)
{
    char status[160];
    snprintf(status, sizeof status, "STATUS=%s; %zu cities cached, %zu scrapes under way",
             d->server.draining ? "stopping" : "serving", answerer_cached_cities(d->server.answerer),
             scraper_active(d->server.scraper));
    notify_send(status);
}

/* Half the watchdog interval: a stuck loop stops pinging and gets restarted. */
static void watchdog_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notify_send("WATCHDOG=1");
    notify_status(arg);
}

/* While draining: end the loop once in-flight work is done or drain_timeout passes. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon_state *d = arg;
    struct server *s = &d->server;
    double now = clock_monotonic();
    /* Only scrapes someone waits for hold the exit; background refreshes are dropped. */
    if (answerer_waiting(s->answerer) > 0 && now - d->drain_started < (double)s->config.drain_timeout) {
        struct timeval tv = {0, 50000};
        evtimer_add(d->drain_check, &tv);
        return;
    }
    if (answerer_waiting(s->answerer) > 0) {
        log_warn("drain timeout: answering %zu waiting requests with stale data or 503",
                 answerer_waiting(s->answerer));
        answerer_fail_all(s->answerer, API_ERROR_SHUTTING_DOWN, "the service is restarting; retry shortly");
    }
    if (d->closing_since == 0) {
        d->closing_since = now;
        /* A poster fetch is not worth holding the exit for. */
        posters_fail_all(s->posters, API_ERROR_SHUTTING_DOWN, NULL);
    }
    /* Answers are queued; give connections a moment to take them (Connection: close ends
     * them as soon as they do). */
    if ((http_waiting(s) > 0 || http_connections(s) > 0) && now - d->closing_since < 2.0) {
        struct timeval tv = {0, 20000};
        evtimer_add(d->drain_check, &tv);
        return;
    }
    event_base_loopbreak(s->base);
}

/* SIGTERM/SIGINT: stop accepting, drain, exit 0. A second one exits at once. */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon_state *d = arg;
    struct server *s = &d->server;
    if (s->draining) {
        log_warn("second signal %d: exiting now", (int)sig);
        _exit(1);
    }
    log_info("signal %d: draining (up to %lld s for %zu scrapes under way)", (int)sig,
             s->config.drain_timeout, scraper_active(s->scraper));
    s->draining = 1;
    prefetcher_stop(d->prefetcher);
    notify_send("STOPPING=1");
    notify_status(d);
    http_stop_accepting(s);
    d->drain_started = clock_monotonic();
    drain_tick(-1, 0, d);
}

/* SIGHUP: read the configuration again; apply what can change live. */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct daemon_state *d = arg;
    struct server *s = &d->server;
    struct config fresh;
    char err[512], kept[256];
    if (load_config(d->opts, &fresh, err, sizeof err) != 0 ||
        config_apply_live(&s->config, &fresh, kept, sizeof kept, err, sizeof err) != 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        config_free(&fresh);
        return;
    }
    config_free(&fresh);
    if (kept[0] != '\0')
        log_warn("reload: changed settings that only a restart applies keep their running "
                 "values: %s", kept);
    log_set_level((enum log_level)s->config.log_level);
    fetcher_configure(s->fetcher, &s->config);
    cache_budget_set_max(d->cache_budget, (size_t)s->config.cache_max_bytes);
    answerer_configure(s->answerer);
    prefetcher_configure(d->prefetcher);
    http_configure(s);
    log_info("configuration reloaded");
}

/* Descriptors the daemon holds besides its connections: stdio, the loop's epoll and signal
 * pipes, MHD's epoll and listener, curl's share and resolver, the watchdog and notify
 * sockets, with room to spare. */
#define SPARE_FDS 64

/* Raises the soft limit on open files to what the settings can use (one descriptor per API
 * and per upstream connection, and the spares), as far as the hard limit allows: many
 * runtimes start services at 1024, which max_connections' default alone fills. */
static void raise_fd_limit(const struct config *c)
{
    rlim_t need = (rlim_t)(c->max_connections + c->max_upstream_connections + SPARE_FDS);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit raised = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
    }
    if (rl.rlim_cur < need)
        log_warn("the open-file limit (%llu) is below what max_connections %lld and "
                 "max_upstream_connections %lld need (%llu): raise it (LimitNOFILE=, ulimit -n)",
                 (unsigned long long)rl.rlim_cur, c->max_connections, c->max_upstream_connections,
                 (unsigned long long)need);
}

static int run_server(const struct options *opts, struct config *config,
                      const struct redis_address *redis_address)
{
    raise_fd_limit(config);
    struct daemon_state d = {0};
    struct server *s = &d.server;
    d.opts = opts;
    s->config = *config;
    memset(config, 0, sizeof *config);  /* the server owns the strings now */
    s->base = event_base_new();
    s->metrics = metrics_new();
    s->fetcher = fetcher_new(s->base, &s->config, s->metrics);
    if (redis_address->transport != REDIS_NONE) {
        s->redis = redis_new(s->base, redis_address, (long)s->config.redis_timeout_ms);
        s->fleet = fleet_new(s->base, s->redis, NULL);
        fetch_set_fleet(s->fetcher, s->fleet, s->redis, s->config.expected_replicas);
    }
    d.cache_budget = cache_budget_new((size_t)s->config.cache_max_bytes);
    s->pool = pool_new(s->base, config_parse_threads(&s->config));
    if (s->pool == NULL)
        return 1;
    s->scraper = scraper_new(s->fetcher, &s->config, d.cache_budget, s->pool);
    s->answerer = answerer_new(s->scraper, &s->config, s->metrics, d.cache_budget);
    char why[512];
    s->posters = posters_new(s->base, &s->config, s->pool, poster_lookup, s->scraper, why, sizeof why);
    if (s->posters == NULL) {
        log_error("%s", why);
        return 1;
    }
    if (s->fleet != NULL) {
        scraper_set_fleet(s->scraper, s->fleet);
        answerer_set_fleet(s->answerer, s->fleet, s->base);
    }

    signal(SIGPIPE, SIG_IGN);  /* a client that hangs up must not kill the process */
    d.sigterm = evsignal_new(s->base, SIGTERM, on_stop_signal, &d);
    d.sigint = evsignal_new(s->base, SIGINT, on_stop_signal, &d);
    d.sighup = evsignal_new(s->base, SIGHUP, on_reload, &d);
    event_add(d.sigterm, NULL);
    event_add(d.sigint, NULL);
    event_add(d.sighup, NULL);
    d.drain_check = evtimer_new(s->base, drain_tick, &d);

    int activated = notify_listen_fd();
    char bound[128], err[512];
    int rc = 1;
    if (http_start(s, activated, bound, sizeof bound, err, sizeof err) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("moviesd %s listening on %s%s (upstream %s)", MOVIESD_VERSION, bound,
             activated >= 0 ? " (socket activation)" : "", s->config.upstream);
    d.prefetcher = prefetcher_new(s->base, s->answerer, &s->config);

    long long watchdog_usec = notify_watchdog_usec();
    if (watchdog_usec > 0) {
        d.watchdog = event_new(s->base, -1, EV_PERSIST, watchdog_ping, &d);
        long long half = watchdog_usec / 2;
        struct timeval tv = {(time_t)(half / 1000000), (suseconds_t)(half % 1000000)};
        event_add(d.watchdog, &tv);
    }
    notify_send("READY=1");
    notify_status(&d);

    event_base_dispatch(s->base);
    rc = 0;
    log_info("stopped");
out:
    /* Nobody may stay suspended when MHD stops; then scrapes go before the answerer,
     * whose refreshes they point at. */
    answerer_fail_all(s->answerer, API_ERROR_SHUTTING_DOWN, NULL);
    posters_fail_all(s->posters, API_ERROR_SHUTTING_DOWN, NULL);
    http_stop(s);
    prefetcher_free(d.prefetcher);
    /* The fleet goes before everything that it calls back: fleet_free drops the fetcher's
     * budget ask and the scraper's and answerer's reads, waits and locks without calling
     * back (giving the locks back, so another replica takes over at once); the client
     * last, after the fleet that borrows it. */
    if (s->fleet != NULL)
        fetch_set_fleet(s->fetcher, NULL, NULL, 1);
    fleet_free(s->fleet);
    posters_free(s->posters);   /* before the pool, which runs its file jobs */
    scraper_free(s->scraper);
    pool_free(s->pool);
    answerer_free(s->answerer);
    cache_budget_free(d.cache_budget);
    fetcher_free(s->fetcher);
    redis_free(s->redis);
    metrics_free(s->metrics);
    if (d.watchdog)
        event_free(d.watchdog);
    event_free(d.drain_check);
    event_free(d.sigterm);
    event_free(d.sigint);
    event_free(d.sighup);
    event_base_free(s->base);
    config_free(&s->config);
    return rc;
}

int main(int argc, char **argv)
{
    /* jansson seeds its hash function on the first object made; the parse workers make
     * objects too, so the seed is chosen here, before any thread starts. */
    json_object_seed(0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("moviesd %s\n", MOVIESD_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--settings-markdown") == 0) {
            config_print_markdown(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--errors-markdown") == 0) {
            api_error_print_markdown(stdout);
            return 0;
        }
    }
    struct options opts = {0};
    struct config config;
    char err[512];
    if (parse_options(argc, argv, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "moviesd: %s\n", err);
        free(opts.flags);
        return 2;
    }
    /* The Redis password file is read here, once: one that cannot be read is a bad setting. */
    struct redis_address redis_address = {0};
    if (load_config(&opts, &config, err, sizeof err) != 0 ||
        redis_address_from_config(&config, &redis_address, err, sizeof err) != 0) {
        fprintf(stderr, "moviesd: %s\n", err);
        config_free(&config);
        free(opts.flags);
        return 2;
    }
    log_init((enum log_level)config.log_level);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (opts.check_config) {
        config_print(&config, stdout);
        rc = 0;
    } else if (opts.command && strcmp(opts.command, "fetch") == 0) {
        rc = run_fetch(&config, opts.city);
    } else if (opts.command && strcmp(opts.command, "health") == 0) {
        rc = run_health(&config);
    } else {
        rc = run_server(&opts, &config, &redis_address);
    }
    redis_address_free(&redis_address);
    config_free(&config);
    curl_global_cleanup();
    free(opts.flags);
    return rc;
}
