/* Cities move through three ages (RFC 5861): fresh (younger than their TTL: served from
 * the cache), stale-while-revalidate (up to stale_while_revalidate past the TTL: served at
 * once, marked stale, while one refresh runs in the background) and expired (requests wait
 * for the refresh, and get the old answer marked stale if it fails and is younger than
 * stale_max_age). At most one refresh per city runs at a time; its waiters all get its
 * result.
 *
 * A city without a usable answer is answered as soon as its listing is in: every listed
 * movie, with the details the shared record cache has, the rest marked pending while the
 * scrape fetches them in the background. That partial answer is made anew (lazily, on the
 * next request) each time a movie lands, so its ETag changes as details fill in; it is
 * never cached as the city's answer: the complete document is.
 *
 * Two kinds of result are kept for less than a full TTL's trust: "no such city" is cached
 * (so a client asking for nonsense costs one upstream request per TTL, not one per
 * request) but never served as stale data, and a scrape that lost movie pages to a block
 * is cached only briefly, and never replaces a complete answer that may still be served. */
#include "answer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cache.h"
#include "config.h"
#include "gzip.h"
#include "log.h"
#include "metrics.h"
#include "movie.h"
#include "scrape.h"

/* How long an answer missing movies because of a block, or of failures that may pass, is
 * trusted. */
#define DEGRADED_TTL 60.0
/* Seconds to wait after an answer refused because the daemon is stopping: a restart is
 * quick. */
#define SHUTDOWN_RETRY_AFTER 1
/* Longest a client may keep a partial answer: it fills in within seconds. */
#define PARTIAL_MAX_AGE 10

/* A cached city: both serializations, each also gzip-compressed, made once per refresh. */
struct city_entry {
    enum api_error error;        /* NONE, or UNKNOWN_CITY for a city the upstream does not know */
    struct blob *fresh_body;
    struct blob *stale_body;     /* NULL for errors: they are never served as stale data */
    struct blob *fresh_gzip;     /* NULL for errors: their bodies go plain */
    struct blob *stale_gzip;
    char fresh_etag[20];
    char stale_etag[20];
    char fresh_gzip_etag[ANSWER_ETAG_SIZE];
    char stale_gzip_etag[ANSWER_ETAG_SIZE];
    double fetched;              /* monotonic time the listing arrived */
    double last_asked;           /* monotonic time a client last asked, 0 never */
    int degraded;                /* movies lost to a block or a passing failure: trusted DEGRADED_TTL at most */
};

struct answer_wait {
    struct refresh *refresh;
    int wait_details;            /* answered by the complete document, not the partial one */
    answer_cb cb;
    void *arg;
    TAILQ_ENTRY(answer_wait) link;
};

/* A scrape under way for a city, and the requests waiting for it. */
struct refresh {
    struct answerer *answerer;
    char *city;
    struct scrape *scrape;       /* until it calls back with SCRAPE_DONE */
    int prefetch;                /* started by the prefetcher: kept when its waiters leave */
    int listed;                  /* the listing is in: partial answers can be made */
    double fetched;              /* monotonic time the listing arrived */
    double last_asked;           /* monotonic time a client last asked, 0 never */
    struct blob *partial;        /* the partial answer as of the last landed movie, or NULL */
    struct blob *partial_gzip;   /* and gzip-compressed, made with it */
    char partial_etag[20];
    char partial_gzip_etag[ANSWER_ETAG_SIZE];
    TAILQ_HEAD(, answer_wait) waiters;
    LIST_ENTRY(refresh) link;
};

struct answerer {
    struct scraper *scraper;
    const struct config *config;
    struct metrics *metrics;
    struct cache *cities;
    LIST_HEAD(, refresh) refreshes;
    size_t waiting;
    struct blob *shutting_down;  /* the answer for what can no longer be scraped */
};

/* Cache destructor for city entries. */
static void city_entry_free(void *value)
{
    struct city_entry *e = value;
    blob_unref(e->fresh_body);
    blob_unref(e->stale_body);
    blob_unref(e->fresh_gzip);
    blob_unref(e->stale_gzip);
    free(e);
}

/* The bytes a blob holds. */
static size_t blob_bytes(const struct blob *b)
{
    return b ? sizeof *b + b->len + 1 : 0;
}

/* The bytes a city entry holds, as charged to the cache. Partial answers are not cache
 * entries: each belongs to a refresh under way and goes when the next movie lands. */
static size_t city_entry_bytes(const struct city_entry *e)
{
    return sizeof *e + blob_bytes(e->fresh_body) + blob_bytes(e->stale_body) +
           blob_bytes(e->fresh_gzip) + blob_bytes(e->stale_gzip);
}

struct blob *answer_gzip(const struct blob *body, const char *etag, char gzip_etag[ANSWER_ETAG_SIZE])
{
    snprintf(gzip_etag, ANSWER_ETAG_SIZE, "%.*s-gz\"", (int)strlen(etag) - 1, etag);
    return gzip_blob(body);
}

struct blob *answer_error_body(enum api_error error, const char *message)
{
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", api_error_code(error), "message",
                            message ? message : api_error_message(error));
    char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
    struct blob *b = blob_new(text, strlen(text));
    free(text);
    json_decref(doc);
    return b;
}

enum city_age answer_classify(double age, double ttl, const struct config *config)
{
    if (age < ttl)
        return CITY_FRESH;
    if (config->stale_while_revalidate > 0 && age < ttl + (double)config->stale_while_revalidate &&
        answer_stale_usable(age, config))
        return CITY_REVALIDATE;
    return CITY_EXPIRED;
}

int answer_stale_usable(double age, const struct config *config)
{
    return age <= (double)config->stale_max_age;
}

/* Whether e holds data that may stand in, marked stale, for a fresher answer. */
static int entry_stale_usable(const struct answerer *a, const struct city_entry *e)
{
    return e != NULL && e->stale_body != NULL &&
           answer_stale_usable(clock_monotonic() - e->fetched, a->config);
}

/* How long e stays fresh, under the configuration in force now (SIGHUP may change it). */
static double entry_ttl(const struct answerer *a, const struct city_entry *e)
{
    double ttl = (double)a->config->listing_ttl;
    return e->degraded && ttl > DEGRADED_TTL ? DEGRADED_TTL : ttl;
}

/* Fills an answer from a cached city, fresh or marked stale. */
static void from_entry(const struct answerer *a, const struct city_entry *e, int stale,
                       struct answer *out)
{
    long age = (long)(clock_monotonic() - e->fetched);
    long left = (long)entry_ttl(a, e) - age;
    int ok = e->error == API_ERROR_NONE;
    out->error = e->error;
    out->body = stale ? e->stale_body : e->fresh_body;
    out->gzip = stale ? e->stale_gzip : e->fresh_gzip;
    out->etag = !ok ? NULL : stale ? e->stale_etag : e->fresh_etag;
    out->gzip_etag = !ok ? NULL : stale ? e->stale_gzip_etag : e->fresh_gzip_etag;
    out->max_age = !ok ? -1 : stale || left < 0 ? 0 : left;
    out->age = age;
    out->retry_after = -1;
}

/* The refresh under way for city, or NULL. */
static struct refresh *refresh_find(struct answerer *a, const char *city)
{
    struct refresh *r;
    LIST_FOREACH(r, &a->refreshes, link)
        if (strcmp(r->city, city) == 0)
            return r;
    return NULL;
}

/* Hands one answer to every waiter of r and frees r. */
static void refresh_end(struct refresh *r, const struct answer *ans)
{
    struct answerer *a = r->answerer;
    LIST_REMOVE(r, link);
    /* Waiters are detached first: a callback may cancel or add waits elsewhere. */
    struct answer_wait *w;
    while ((w = TAILQ_FIRST(&r->waiters)) != NULL) {
        TAILQ_REMOVE(&r->waiters, w, link);
        a->waiting--;
        answer_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(ans, arg);
    }
    blob_unref(r->partial);
    blob_unref(r->partial_gzip);
    free(r->city);
    free(r);
}

/* The partial answer of a listed refresh, made anew when a movie landed since the last. */
static void from_partial(struct refresh *r, struct answer *out)
{
    if (r->partial == NULL) {
        json_t *doc = scrape_document(r->scrape);
        r->partial = movie_document_blob(doc, r->partial_etag);
        r->partial_gzip = answer_gzip(r->partial, r->partial_etag, r->partial_gzip_etag);
        json_decref(doc);
    }
    long age = (long)(clock_monotonic() - r->fetched);
    long left = (long)r->answerer->config->listing_ttl - age;
    *out = (struct answer){.error = API_ERROR_NONE, .body = r->partial, .gzip = r->partial_gzip,
                           .etag = r->partial_etag, .gzip_etag = r->partial_gzip_etag,
                           .max_age = left < 0 ? 0 : left < PARTIAL_MAX_AGE ? left : PARTIAL_MAX_AGE,
                           .age = age, .retry_after = -1};
}

/* The listing of r is in: every waiter not waiting for details gets the partial answer. */
static void refresh_listed(struct refresh *r)
{
    struct answerer *a = r->answerer;
    r->listed = 1;
    struct answer ans;
    from_partial(r, &ans);
    struct answer_wait *w, *next;
    for (w = TAILQ_FIRST(&r->waiters); w != NULL; w = next) {
        next = TAILQ_NEXT(w, link);
        if (w->wait_details)
            continue;
        TAILQ_REMOVE(&r->waiters, w, link);
        a->waiting--;
        answer_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        /* The body is r's: the callback takes its own reference before r can go. */
        cb(&ans, arg);
    }
}

/* Caches a new entry for r's city and answers r's waiters with it. */
static void refresh_store(struct refresh *r, struct city_entry *e)
{
    struct answer ans;
    from_entry(r->answerer, e, 0, &ans);
    /* The answer must outlive e: the cache frees an entry bigger than its byte bound at
     * once. */
    char etag[sizeof e->fresh_etag], gzip_etag[sizeof e->fresh_gzip_etag];
    memcpy(etag, e->fresh_etag, sizeof etag);
    memcpy(gzip_etag, e->fresh_gzip_etag, sizeof gzip_etag);
    ans.body = blob_ref(ans.body);
    if (ans.gzip)
        ans.gzip = blob_ref(ans.gzip);
    if (ans.etag) {
        ans.etag = etag;
        ans.gzip_etag = gzip_etag;
    }
    cache_put(r->answerer->cities, r->city, e, city_entry_bytes(e));
    refresh_end(r, &ans);
    blob_unref(ans.body);
    blob_unref(ans.gzip);
}

/* Answers r's waiters with the old entry marked stale. */
static void refresh_fall_back(struct refresh *r, const struct city_entry *old, const char *why)
{
    struct answerer *a = r->answerer;
    log_warn("refreshing %s failed (%s): serving the answer from %.0f s ago", r->city, why,
             clock_monotonic() - old->fetched);
    struct answer_wait *w;
    TAILQ_FOREACH(w, &r->waiters, link)
        metrics_cache(a->metrics, CACHE_STALE);
    struct answer ans;
    from_entry(a, old, 1, &ans);
    refresh_end(r, &ans);
}

/* A refresh's scrape moved on: partial answers once the listing is in; at the end, cache
 * the new answer, or fall back to the old one. */
static void refresh_event(const struct scrape_result *result, void *arg)
{
    struct refresh *r = arg;
    struct answerer *a = r->answerer;
    if (result->listing_queued >= 0 && !r->listed)
        metrics_listing_wait(a->metrics, result->listing_queued);
    switch (result->event) {
    case SCRAPE_LISTED:
        r->fetched = result->fetched;
        refresh_listed(r);
        return;
    case SCRAPE_PROGRESS:
        blob_unref(r->partial);
        blob_unref(r->partial_gzip);
        r->partial = NULL;
        r->partial_gzip = NULL;
        return;
    case SCRAPE_DONE:
        break;
    }
    r->scrape = NULL;
    metrics_scrape(a->metrics, result->document ? API_ERROR_NONE : result->error->code);
    struct city_entry *old = cache_get(a->cities, r->city);
    double last_asked = old && old->last_asked > r->last_asked ? old->last_asked : r->last_asked;
    if (!entry_stale_usable(a, old))
        old = NULL;
    if (result->document) {
        json_t *doc = result->document;
        if (result->details_refused > 0 && old) {
            json_decref(doc);
            refresh_fall_back(r, old, "the upstream refused some movie pages");
            return;
        }
        struct city_entry *e = xcalloc(1, sizeof *e);
        e->error = API_ERROR_NONE;
        e->fresh_body = movie_document_blob(doc, e->fresh_etag);
        json_object_set_new(doc, "stale", json_true());
        e->stale_body = movie_document_blob(doc, e->stale_etag);
        json_decref(doc);
        e->fresh_gzip = answer_gzip(e->fresh_body, e->fresh_etag, e->fresh_gzip_etag);
        e->stale_gzip = answer_gzip(e->stale_body, e->stale_etag, e->stale_gzip_etag);
        e->fetched = result->fetched;
        e->last_asked = last_asked;
        e->degraded = result->details_refused > 0 || result->details_transient > 0;
        refresh_store(r, e);
        return;
    }
    const struct scrape_error *err = result->error;
    if (old) {
        refresh_fall_back(r, old, api_error_code(err->code));
        return;
    }
    struct blob *body = answer_error_body(err->code, err->message);
    if (err->code == API_ERROR_UNKNOWN_CITY) {
        struct city_entry *e = xcalloc(1, sizeof *e);
        e->error = err->code;
        e->fresh_body = body;
        e->fetched = clock_monotonic();
        refresh_store(r, e);
        return;
    }
    struct answer ans = {.error = err->code, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                         .retry_after = err->retry_after};
    refresh_end(r, &ans);
    blob_unref(body);
}

/* The refresh for city, started if none is under way, else raised to these priorities. */
static struct refresh *refresh_start(struct answerer *a, const char *city,
                                     enum fetch_priority listing, enum fetch_priority details)
{
    struct refresh *r = refresh_find(a, city);
    if (r) {
        scrape_promote(r->scrape, listing, details);
        return r;
    }
    r = xcalloc(1, sizeof *r);
    r->answerer = a;
    r->city = xstrdup(city);
    TAILQ_INIT(&r->waiters);
    LIST_INSERT_HEAD(&a->refreshes, r, link);
    r->scrape = scrape_city(a->scraper, city, listing, details, refresh_event, r);
    return r;
}

/* Whether a client asked for the city within a listing TTL: its movie pages then go
 * before prefetch. */
static int asked_recently(const struct answerer *a, double last_asked)
{
    return last_asked > 0 && clock_monotonic() - last_asked < (double)a->config->listing_ttl;
}

int answerer_prefetch(struct answerer *a, const char *city)
{
    if (refresh_find(a, city) != NULL)
        return 0;
    const struct city_entry *e = cache_get(a->cities, city);
    enum fetch_priority details =
        e && asked_recently(a, e->last_asked) ? FETCH_NORMAL : FETCH_PREFETCH;
    struct refresh *r = refresh_start(a, city, FETCH_PREFETCH, details);
    r->prefetch = 1;
    if (e)
        r->last_asked = e->last_asked;
    metrics_prefetch(a->metrics);
    return 1;
}

double answerer_age(const struct answerer *a, const char *city)
{
    const struct city_entry *e = cache_peek(a->cities, city);
    if (e == NULL || e->error != API_ERROR_NONE)
        return -1;
    return clock_monotonic() - e->fetched;
}

/* The answer for a request that may not wait for a scrape (shutting down). */
static void without_scraping(struct answerer *a, const struct city_entry *e, struct answer *now)
{
    if (entry_stale_usable(a, e)) {
        metrics_cache(a->metrics, CACHE_STALE);
        from_entry(a, e, 1, now);
        return;
    }
    *now = (struct answer){.error = API_ERROR_SHUTTING_DOWN, .body = a->shutting_down, .etag = NULL,
                           .max_age = -1, .age = 0, .retry_after = SHUTDOWN_RETRY_AFTER};
}

struct answer_wait *answer_city(struct answerer *a, const char *city, int flags,
                                struct answer *now, answer_cb cb, void *arg)
{
    int may_scrape = (flags & ANSWER_MAY_SCRAPE) != 0;
    int wait_details = (flags & ANSWER_WAIT_DETAILS) != 0;
    double asked = clock_monotonic();
    struct city_entry *e = cache_get(a->cities, city);
    struct refresh *r = refresh_find(a, city);
    if (e)
        e->last_asked = asked;
    if (r) {
        r->last_asked = asked;
        scrape_promote(r->scrape, FETCH_PREFETCH, FETCH_NORMAL);
    }
    enum city_age age = e ? answer_classify(clock_monotonic() - e->fetched, entry_ttl(a, e), a->config)
                          : CITY_EXPIRED;
    if (age == CITY_REVALIDATE && e->stale_body == NULL)
        age = CITY_EXPIRED;  /* an error is not data to serve while revalidating */
    switch (age) {
    case CITY_FRESH:
        metrics_cache(a->metrics, CACHE_HIT);
        from_entry(a, e, 0, now);
        return NULL;
    case CITY_REVALIDATE:
        metrics_cache(a->metrics, CACHE_STALE);
        if (may_scrape)
            refresh_start(a, city, FETCH_URGENT, FETCH_NORMAL)->last_asked = asked;
        from_entry(a, e, 1, now);
        return NULL;
    case CITY_EXPIRED:
        break;
    }
    if (r && r->listed && (!wait_details || !may_scrape)) {
        metrics_cache(a->metrics, CACHE_PARTIAL);
        from_partial(r, now);
        return NULL;
    }
    if (!may_scrape) {
        without_scraping(a, e, now);
        return NULL;
    }
    metrics_cache(a->metrics, CACHE_MISS);
    r = refresh_start(a, city, FETCH_URGENT, FETCH_NORMAL);
    r->last_asked = asked;
    struct answer_wait *w = xcalloc(1, sizeof *w);
    w->refresh = r;
    w->wait_details = wait_details;
    w->cb = cb;
    w->arg = arg;
    TAILQ_INSERT_TAIL(&r->waiters, w, link);
    a->waiting++;
    return w;
}

void answer_cancel(struct answer_wait *w)
{
    if (w == NULL)
        return;
    struct refresh *r = w->refresh;
    TAILQ_REMOVE(&r->waiters, w, link);
    r->answerer->waiting--;
    free(w);
    /* Nobody waits any more and the upstream has not been asked: the scrape would only
     * hold a place in the queue (and a client sending many cities could fill it). A
     * prefetch stays: it was wanted before anyone asked. */
    if (TAILQ_EMPTY(&r->waiters) && !r->prefetch && scrape_abandon(r->scrape)) {
        LIST_REMOVE(r, link);
        free(r->city);
        free(r);
    }
}

int answer_fallback(struct answer_wait *w, struct answer *out)
{
    struct answerer *a = w->refresh->answerer;
    if (w->refresh->listed) {
        metrics_cache(a->metrics, CACHE_PARTIAL);
        from_partial(w->refresh, out);
        return 1;
    }
    const struct city_entry *e = cache_get(a->cities, w->refresh->city);
    if (!entry_stale_usable(a, e))
        return 0;
    metrics_cache(a->metrics, CACHE_STALE);
    from_entry(a, e, 1, out);
    return 1;
}

void answerer_fail_all(struct answerer *a, enum api_error error, const char *message)
{
    struct blob *body = answer_error_body(error, message);
    struct answer failed = {.error = error, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                            .retry_after = SHUTDOWN_RETRY_AFTER};
    struct refresh *r;
    LIST_FOREACH(r, &a->refreshes, link) {
        struct answer_wait *w;
        while ((w = TAILQ_FIRST(&r->waiters)) != NULL) {
            struct answer stale;
            int have_stale = answer_fallback(w, &stale);
            TAILQ_REMOVE(&r->waiters, w, link);
            a->waiting--;
            answer_cb cb = w->cb;
            void *arg = w->arg;
            free(w);
            cb(have_stale ? &stale : &failed, arg);
        }
    }
    blob_unref(body);
}

struct answerer *answerer_new(struct scraper *scraper, const struct config *config,
                              struct metrics *metrics, struct cache_budget *budget)
{
    struct answerer *a = xcalloc(1, sizeof *a);
    a->scraper = scraper;
    a->config = config;
    a->metrics = metrics;
    a->cities = cache_new(budget, (size_t)config->cache_max_entries, city_entry_free);
    a->shutting_down = answer_error_body(API_ERROR_SHUTTING_DOWN, NULL);
    LIST_INIT(&a->refreshes);
    return a;
}

void answerer_configure(struct answerer *a)
{
    cache_set_max(a->cities, (size_t)a->config->cache_max_entries);
}

void answerer_free(struct answerer *a)
{
    if (a == NULL)
        return;
    struct refresh *r;
    while ((r = LIST_FIRST(&a->refreshes)) != NULL) {
        LIST_REMOVE(r, link);
        struct answer_wait *w;
        while ((w = TAILQ_FIRST(&r->waiters)) != NULL) {
            TAILQ_REMOVE(&r->waiters, w, link);
            free(w);
        }
        blob_unref(r->partial);
        blob_unref(r->partial_gzip);
        free(r->city);
        free(r);
    }
    cache_free(a->cities);
    blob_unref(a->shutting_down);
    free(a);
}

size_t answerer_cached_cities(const struct answerer *a)
{
    return cache_count(a->cities);
}

size_t answerer_cached_bytes(const struct answerer *a)
{
    return cache_bytes(a->cities);
}

size_t answerer_waiting(const struct answerer *a)
{
    return a->waiting;
}
