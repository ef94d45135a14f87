/* moviesd: the process. Options and config, signals, the one event loop, and the
 * commands that share the scraping code (fetch) or probe a running daemon (health). */
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "config.h"
#include "douban.h"
#include "fetch.h"
#include "log.h"
#include "movie.h"
#include "metrics.h"
#include "notify.h"
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
    int status;
};

/* The one scrape of `moviesd fetch` ended. */
static void fetch_command_done(const struct scrape_result *result, void *arg)
{
    struct fetch_outcome_state *st = arg;
    json_t *doc = result->document;
    const struct scrape_error *err = result->error;
    if (doc) {
        char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
        printf("%s\n", text);
        free(text);
        json_decref(doc);
        st->status = 0;
    } else {
        fprintf(stderr, "moviesd: %s: %s\n", err->code, err->message);
        st->status = err->status == 404 ? 3 : 4;
    }
    event_base_loopbreak(st->base);
}

static int run_fetch(const struct config *c, const char *city)
{
    if (city == NULL || !douban_city_valid(city)) {
        fprintf(stderr, "moviesd: fetch needs a CITY of 1 to 32 letters a-z, e.g. beijing\n");
        return 2;
    }
    struct event_base *base = event_base_new();
    struct fetcher *f = fetcher_new(base, c, NULL);
    struct scraper *s = scraper_new(f, c);
    struct fetch_outcome_state st = {base, 4};
    scrape_city(s, city, fetch_command_done, &st);
    event_base_dispatch(base);
    scraper_free(s);
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

struct daemon_state {
    struct server server;
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
        answerer_fail_all(s->answerer, 503, "shutting_down", "the service is restarting; retry shortly");
    }
    if (d->closing_since == 0)
        d->closing_since = now;
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
    notify_send("STOPPING=1");
    notify_status(d);
    http_stop_accepting(s);
    d->drain_started = clock_monotonic();
    drain_tick(-1, 0, d);
}

/* Names the settings a reload changed but cannot apply live. */
static void warn_fixed_settings(const struct config *old, const struct config *fresh)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *st = &config_settings[i];
        if (st->live)
            continue;
        const char *a = (const char *)old + st->offset, *b = (const char *)fresh + st->offset;
        int changed = st->type == SETTING_INTEGER || st->type == SETTING_LOG_LEVEL
                          ? *(const long long *)a != *(const long long *)b
                          : strcmp(*(char *const *)a, *(char *const *)b) != 0;
        if (changed)
            log_warn("reload: %s changed but needs a restart; keeping the old value", st->name);
    }
}

/* SIGHUP: read the configuration again; apply what can change live. */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct daemon_state *d = arg;
    struct server *s = &d->server;
    struct config fresh;
    char err[512];
    if (load_config(d->opts, &fresh, err, sizeof err) != 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        config_free(&fresh);
        return;
    }
    warn_fixed_settings(&s->config, &fresh);
    /* Copy the live settings only; the fixed ones keep their running values. */
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *st = &config_settings[i];
        if (!st->live)
            continue;
        char *dst = (char *)&s->config + st->offset;
        char *src = (char *)&fresh + st->offset;
        if (st->type == SETTING_INTEGER || st->type == SETTING_LOG_LEVEL) {
            *(long long *)dst = *(long long *)src;
        } else {
            free(*(char **)dst);
            *(char **)dst = *(char **)src;
            *(char **)src = NULL;
        }
    }
    config_free(&fresh);
    log_set_level((enum log_level)s->config.log_level);
    fetcher_configure(s->fetcher, &s->config);
    scraper_configure(s->scraper);
    answerer_configure(s->answerer);
    log_info("configuration reloaded");
}

static int run_server(const struct options *opts, struct config *config)
{
    struct daemon_state d = {0};
    struct server *s = &d.server;
    d.opts = opts;
    s->config = *config;
    memset(config, 0, sizeof *config);  /* the server owns the strings now */
    s->base = event_base_new();
    s->metrics = metrics_new();
    s->fetcher = fetcher_new(s->base, &s->config, s->metrics);
    s->scraper = scraper_new(s->fetcher, &s->config);
    s->answerer = answerer_new(s->scraper, &s->config, s->metrics);

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
    answerer_fail_all(s->answerer, 503, "shutting_down", "the service is stopping; retry shortly");
    http_stop(s);
    scraper_free(s->scraper);
    answerer_free(s->answerer);
    fetcher_free(s->fetcher);
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
    }
    struct options opts = {0};
    struct config config;
    char err[512];
    if (parse_options(argc, argv, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "moviesd: %s\n", err);
        free(opts.flags);
        return 2;
    }
    if (load_config(&opts, &config, err, sizeof err) != 0) {
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
        rc = run_server(&opts, &config);
    }
    config_free(&config);
    curl_global_cleanup();
    free(opts.flags);
    return rc;
}
