/* A scrape holds the listing's items and one slot per item for its movie record (or the
 * reason it has none). Movie pages are fetched through "flights": one per movie id in
 * flight, awaited by every scrape that needs that movie, so two cities sharing movies
 * never fetch a page twice. A flight outlives its scrapes: its record still goes into the
 * cache for the next scrape. */
#include "scrape.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "douban.h"
#include "fetch.h"
#include "log.h"
#include "movie.h"
#include "util.h"

/* Movie records kept per cached city: a city lists a few dozen movies, mostly shared. */
#define MOVIES_PER_CITY 64

struct slot {
    json_t *detail;              /* movie_detail_json(), or NULL */
    struct detail_error error;   /* when detail is NULL and done */
    int done;
};

struct scrape {
    struct scraper *scraper;
    char *city;
    scrape_cb cb;
    void *arg;
    struct fetch_request *listing_fetch;
    struct listing listing;
    struct slot *slots;
    size_t pending;
    time_t fetched_at;
    double fetched;              /* monotonic twin of fetched_at */
    LIST_ENTRY(scrape) link;
};

struct waiter {
    struct scrape *scrape;
    size_t index;
};

struct flight {
    struct scraper *scraper;
    char *id;
    struct fetch_request *fetch;
    struct waiter *waiters;
    size_t n, cap;
    LIST_ENTRY(flight) link;
};

/* A cached movie record and when it stops being fresh. */
struct record {
    json_t *detail;
    double expires;
};

struct scraper {
    struct fetcher *fetcher;
    const struct config *config;
    struct cache *records;
    LIST_HEAD(, scrape) scrapes;
    LIST_HEAD(, flight) flights;
    size_t active;
};

/* Cache destructor for records. */
static void record_free(void *value)
{
    struct record *r = value;
    json_decref(r->detail);
    free(r);
}

/* Fills an error for the API. */
static void set_error(struct scrape_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(struct scrape_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    e->retry_after = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* Frees a scrape's own memory; the caller has unlinked it from flights. */
static void scrape_destroy(struct scrape *sc)
{
    if (sc->slots)
        for (size_t i = 0; i < sc->listing.n; i++)
            json_decref(sc->slots[i].detail);
    free(sc->slots);
    listing_free(&sc->listing);
    free(sc->city);
    free(sc);
}

/* Ends a scrape with an error. */
static void scrape_fail(struct scrape *sc, const struct scrape_error *e)
{
    struct scraper *s = sc->scraper;
    LIST_REMOVE(sc, link);
    s->active--;
    log_info("scrape of %s failed: %s (%s)", sc->city, e->code, e->message);
    scrape_cb cb = sc->cb;
    void *arg = sc->arg;
    scrape_destroy(sc);
    struct scrape_result result = {.document = NULL, .error = e, .fetched = 0, .details_refused = 0};
    cb(&result, arg);
}

/* The ISO-8601 UTC form of t. */
static void format_time(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Ends a scrape whose every slot is done: builds the city's document. */
static void scrape_finish(struct scrape *sc)
{
    struct scraper *s = sc->scraper;
    json_t *movies = json_array();
    size_t failed = 0, refused = 0;
    for (size_t i = 0; i < sc->listing.n; i++) {
        struct slot *slot = &sc->slots[i];
        if (slot->detail == NULL) {
            failed++;
            refused += strcmp(slot->error.code, "upstream_blocked") == 0;
        }
        json_array_append_new(movies, movie_json(&sc->listing.items[i], slot->detail,
                                                 slot->detail ? NULL : &slot->error, sc->fetched_at));
    }
    char fetched[21];
    format_time(sc->fetched_at, fetched);
    char *source = scrape_listing_url(s->config, sc->city);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:b, s:o}", "city", sc->city, "source", source,
                            "fetched_at", fetched, "count", (json_int_t)sc->listing.n, "stale", 0,
                            "movies", movies);
    free(source);
    LIST_REMOVE(sc, link);
    s->active--;
    log_info("scraped %s: %zu movies, %zu without details", sc->city, sc->listing.n, failed);
    scrape_cb cb = sc->cb;
    void *arg = sc->arg;
    struct scrape_result result = {.document = doc, .error = NULL, .fetched = sc->fetched,
                                   .details_refused = refused};
    scrape_destroy(sc);
    cb(&result, arg);
}

/* Fills a waiting scrape's slot; finishes the scrape when it was the last one. */
static void slot_done(struct scrape *sc, size_t index, json_t *detail, const struct detail_error *error)
{
    struct slot *slot = &sc->slots[index];
    slot->done = 1;
    if (detail)
        slot->detail = json_incref(detail);
    else
        slot->error = *error;
    if (--sc->pending == 0)
        scrape_finish(sc);
}

/* Turns a movie page's fetch result into a record or a detail error. */
static json_t *read_detail(struct scraper *s, const char *id, const struct fetch_response *r,
                           struct detail_error *err)
{
    err->status = r->status > 0 ? r->status : -1;
    switch (r->outcome) {
    case FETCH_TIMEOUT:
        err->code = "upstream_timeout";
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return NULL;
    case FETCH_ERROR:
    case FETCH_TOO_LARGE:
        err->code = "upstream_error";
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return NULL;
    case FETCH_BLOCKED:
        err->code = "upstream_blocked";
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return NULL;
    case FETCH_DONE:
        break;
    }
    if (r->status == 404) {
        err->code = "not_found";
        snprintf(err->message, sizeof err->message, "the movie page does not exist");
        return NULL;
    }
    if (r->status < 200 || r->status >= 300) {
        err->code = "upstream_error";
        snprintf(err->message, sizeof err->message, "the movie page answered HTTP %ld", r->status);
        return NULL;
    }
    struct movie_detail d;
    movie_detail_init(&d);
    char why[160] = "";
    enum douban_verdict v = douban_parse_detail(r->body, r->len, &d, why, sizeof why);
    json_t *detail = NULL;
    switch (v) {
    case DOUBAN_OK:
        detail = movie_detail_json(&d);
        fetch_report_ok(s->fetcher, r->epoch);
        break;
    case DOUBAN_NOT_FOUND:
        err->code = "not_found";
        break;
    case DOUBAN_BLOCKED:
        err->code = "upstream_blocked";
        fetch_report_block(s->fetcher, "a movie page says our requests look abnormal");
        break;
    case DOUBAN_CHANGED:
        err->code = "upstream_changed";
        break;
    case DOUBAN_MALFORMED:
        err->code = "upstream_error";
        break;
    }
    if (detail == NULL) {
        snprintf(err->message, sizeof err->message, "%s", why[0] ? why : douban_verdict_name(v));
        log_warn("movie %s: %s", id, err->message);
    }
    movie_detail_free(&d);
    return detail;
}

/* A movie page arrived (or failed): record it and wake every scrape waiting for it. */
static void flight_done(const struct fetch_response *r, void *arg)
{
    struct flight *fl = arg;
    struct scraper *s = fl->scraper;
    struct detail_error err = {.code = NULL, .status = -1, .message = ""};
    json_t *detail = read_detail(s, fl->id, r, &err);
    if (detail) {
        struct record *rec = xmalloc(sizeof *rec);
        rec->detail = json_incref(detail);
        rec->expires = clock_monotonic() + (double)s->config->detail_ttl;
        cache_put(s->records, fl->id, rec);
    }
    LIST_REMOVE(fl, link);
    /* A finishing scrape calls back into code that may start new scrapes; the flight is
     * already out of the list so none of them joins it. */
    for (size_t i = 0; i < fl->n; i++)
        slot_done(fl->waiters[i].scrape, fl->waiters[i].index, detail, &err);
    json_decref(detail);
    free(fl->waiters);
    free(fl->id);
    free(fl);
}

/* Adds a waiting slot to a flight. */
static void flight_join(struct flight *fl, struct scrape *sc, size_t index)
{
    if (fl->n == fl->cap) {
        fl->cap = fl->cap ? fl->cap * 2 : 4;
        fl->waiters = xrealloc(fl->waiters, fl->cap * sizeof *fl->waiters);
    }
    fl->waiters[fl->n].scrape = sc;
    fl->waiters[fl->n].index = index;
    fl->n++;
}

/* The in-flight fetch of movie id, or NULL. */
static struct flight *flight_find(struct scraper *s, const char *id)
{
    struct flight *fl;
    LIST_FOREACH(fl, &s->flights, link)
        if (strcmp(fl->id, id) == 0)
            return fl;
    return NULL;
}

/* Gives every item its record: from the cache when fresh, else from a flight. */
static void request_details(struct scrape *sc)
{
    struct scraper *s = sc->scraper;
    double now = clock_monotonic();
    sc->slots = xcalloc(sc->listing.n ? sc->listing.n : 1, sizeof *sc->slots);
    sc->pending = sc->listing.n;
    /* Slots are filled synchronously from the cache below; the count must not reach zero
     * (and finish the scrape) before every item has been looked at. */
    sc->pending++;
    for (size_t i = 0; i < sc->listing.n; i++) {
        const char *id = sc->listing.items[i].id;
        struct record *rec = cache_get(s->records, id);
        if (rec && rec->expires > now) {
            sc->slots[i].detail = json_incref(rec->detail);
            sc->slots[i].done = 1;
            sc->pending--;
            continue;
        }
        struct flight *fl = flight_find(s, id);
        if (fl == NULL) {
            fl = xcalloc(1, sizeof *fl);
            fl->scraper = s;
            fl->id = xstrdup(id);
            char *url = xasprintf("%s/subject/%s/", s->config->upstream, id);
            fl->fetch = fetch_start(s->fetcher, url, FETCH_NORMAL, flight_done, fl);
            free(url);
            LIST_INSERT_HEAD(&s->flights, fl, link);
        }
        flight_join(fl, sc, i);
    }
    if (--sc->pending == 0)
        scrape_finish(sc);
}

/* The listing arrived (or failed). */
static void listing_done(const struct fetch_response *r, void *arg)
{
    struct scrape *sc = arg;
    struct scraper *s = sc->scraper;
    struct scrape_error e;
    sc->listing_fetch = NULL;
    switch (r->outcome) {
    case FETCH_TIMEOUT:
        set_error(&e, 504, "upstream_timeout", "the upstream did not answer in time: %s", r->error);
        scrape_fail(sc, &e);
        return;
    case FETCH_ERROR:
    case FETCH_TOO_LARGE:
        set_error(&e, 502, "upstream_error", "fetching the listing failed: %s", r->error);
        scrape_fail(sc, &e);
        return;
    case FETCH_BLOCKED:
        set_error(&e, 503, "upstream_blocked", "the upstream is refusing our requests: %s", r->error);
        e.retry_after = r->retry_after;
        scrape_fail(sc, &e);
        return;
    case FETCH_DONE:
        break;
    }
    if (r->status == 404) {
        set_error(&e, 404, "unknown_city", "the upstream knows no city '%s'", sc->city);
        scrape_fail(sc, &e);
        return;
    }
    if (r->status < 200 || r->status >= 300) {
        set_error(&e, 502, "upstream_error", "the listing answered HTTP %ld", r->status);
        e.retry_after = r->retry_after;
        scrape_fail(sc, &e);
        return;
    }
    sc->fetched_at = time(NULL);
    sc->fetched = clock_monotonic();
    char why[200] = "";
    enum douban_verdict v = douban_parse_listing(r->body, r->len, fetch_upstream_host(s->fetcher),
                                                 &sc->listing, why, sizeof why);
    switch (v) {
    case DOUBAN_OK:
        fetch_report_ok(s->fetcher, r->epoch);
        request_details(sc);
        return;
    case DOUBAN_NOT_FOUND:
        set_error(&e, 404, "unknown_city", "the upstream knows no city '%s'", sc->city);
        break;
    case DOUBAN_BLOCKED:
        fetch_report_block(s->fetcher, "the listing says our requests look abnormal");
        set_error(&e, 503, "upstream_blocked", "the upstream is refusing our requests: %s", why);
        e.retry_after = fetch_breaker_remaining(s->fetcher);
        if (e.retry_after <= 0)
            e.retry_after = 60;
        break;
    case DOUBAN_CHANGED:
        set_error(&e, 502, "upstream_changed", "the listing page has changed: %s", why);
        break;
    case DOUBAN_MALFORMED:
        set_error(&e, 502, "upstream_error", "the listing page is unusable: %s", why);
        break;
    }
    scrape_fail(sc, &e);
}

char *scrape_listing_url(const struct config *config, const char *city)
{
    return xasprintf("%s/cinema/later/%s/", config->upstream, city);
}

struct scraper *scraper_new(struct fetcher *fetcher, const struct config *config)
{
    struct scraper *s = xcalloc(1, sizeof *s);
    s->fetcher = fetcher;
    s->config = config;
    s->records = cache_new((size_t)config->cache_max_entries * MOVIES_PER_CITY, record_free);
    LIST_INIT(&s->scrapes);
    LIST_INIT(&s->flights);
    return s;
}

void scraper_configure(struct scraper *s)
{
    cache_set_max(s->records, (size_t)s->config->cache_max_entries * MOVIES_PER_CITY);
}

void scraper_free(struct scraper *s)
{
    if (s == NULL)
        return;
    struct flight *fl;
    while ((fl = LIST_FIRST(&s->flights)) != NULL) {
        LIST_REMOVE(fl, link);
        fetch_cancel(fl->fetch);
        free(fl->waiters);
        free(fl->id);
        free(fl);
    }
    struct scrape *sc;
    while ((sc = LIST_FIRST(&s->scrapes)) != NULL) {
        LIST_REMOVE(sc, link);
        fetch_cancel(sc->listing_fetch);
        scrape_destroy(sc);
    }
    cache_free(s->records);
    free(s);
}

struct scrape *scrape_city(struct scraper *s, const char *city, scrape_cb cb, void *arg)
{
    struct scrape *sc = xcalloc(1, sizeof *sc);
    sc->scraper = s;
    sc->city = xstrdup(city);
    sc->cb = cb;
    sc->arg = arg;
    LIST_INSERT_HEAD(&s->scrapes, sc, link);
    s->active++;
    char *url = scrape_listing_url(s->config, city);
    sc->listing_fetch = fetch_start(s->fetcher, url, FETCH_URGENT, listing_done, sc);
    free(url);
    return sc;
}

int scrape_abandon(struct scrape *sc)
{
    if (sc->listing_fetch == NULL || !fetch_unsent(sc->listing_fetch))
        return 0;
    fetch_cancel(sc->listing_fetch);
    LIST_REMOVE(sc, link);
    sc->scraper->active--;
    log_debug("scrape of %s abandoned before its listing was requested", sc->city);
    scrape_destroy(sc);
    return 1;
}

size_t scraper_active(const struct scraper *s)
{
    return s->active;
}

size_t scraper_cached_movies(const struct scraper *s)
{
    return cache_count(s->records);
}
