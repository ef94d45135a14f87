/* Cities move through three ages (RFC 5861): fresh (younger than their TTL: served from
 * the cache), stale-while-revalidate (up to stale_while_revalidate past the TTL: served at
 * once, marked stale, while one refresh runs in the background) and expired (requests wait
 * for the refresh, and get the old answer marked stale if it fails and is younger than
 * stale_max_age). At most one refresh per city runs at a time; its waiters all get its
 * result.
 *
 * Two kinds of result are kept for less than a full TTL's trust: "no such city" is cached
 * (so a client asking for nonsense costs one upstream request per TTL, not one per
 * request) but never served as stale data, and a scrape that lost movie pages to a block
 * is cached only briefly, and never replaces a complete answer that may still be served. */
#include "answer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cache.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "movie.h"
#include "scrape.h"

/* How long an answer missing movies because of a block is trusted. */
#define DEGRADED_TTL 60.0

/* A cached city: both serializations made once per refresh. */
struct city_entry {
    int status;                  /* 200, or 404 for a city the upstream does not know */
    struct blob *fresh_body;
    struct blob *stale_body;     /* NULL for errors: they are never served as stale data */
    char fresh_etag[20];
    char stale_etag[20];
    double fetched;              /* monotonic time the listing arrived */
    int degraded;                /* movies lost to a block: trusted DEGRADED_TTL at most */
};

struct answer_wait {
    struct refresh *refresh;
    answer_cb cb;
    void *arg;
    TAILQ_ENTRY(answer_wait) link;
};

/* A scrape under way for a city, and the requests waiting for it. */
struct refresh {
    struct answerer *answerer;
    char *city;
    struct scrape *scrape;       /* until it calls back */
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
    free(e);
}

struct blob *answer_error_body(const char *code, const char *message)
{
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
    struct blob *b = blob_new(text, strlen(text));
    free(text);
    json_decref(doc);
    return b;
}

/* Serializes doc into a blob and its quoted ETag. */
static struct blob *serialize(json_t *doc, char etag[20])
{
    char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
    size_t len = strlen(text);
    char hex[17];
    hash_hex(text, len, hex);
    snprintf(etag, 20, "\"%s\"", hex);
    struct blob *b = blob_new(text, len);
    free(text);
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
    out->status = e->status;
    out->body = stale ? e->stale_body : e->fresh_body;
    out->etag = e->status != 200 ? NULL : stale ? e->stale_etag : e->fresh_etag;
    out->max_age = e->status != 200 ? -1 : stale || left < 0 ? 0 : left;
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
    free(r->city);
    free(r);
}

/* Caches a new entry for r's city and answers r's waiters with it. */
static void refresh_store(struct refresh *r, struct city_entry *e)
{
    cache_put(r->answerer->cities, r->city, e);
    struct answer ans;
    from_entry(r->answerer, e, 0, &ans);
    refresh_end(r, &ans);
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

/* A refresh's scrape ended: cache the new answer, or fall back to the old one. */
static void refresh_done(const struct scrape_result *result, void *arg)
{
    struct refresh *r = arg;
    struct answerer *a = r->answerer;
    struct city_entry *old = cache_get(a->cities, r->city);
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
        e->status = 200;
        e->fresh_body = serialize(doc, e->fresh_etag);
        json_object_set_new(doc, "stale", json_true());
        e->stale_body = serialize(doc, e->stale_etag);
        json_decref(doc);
        e->fetched = result->fetched;
        e->degraded = result->details_refused > 0;
        refresh_store(r, e);
        return;
    }
    const struct scrape_error *err = result->error;
    if (old) {
        refresh_fall_back(r, old, err->code);
        return;
    }
    struct blob *body = answer_error_body(err->code, err->message);
    if (strcmp(err->code, "unknown_city") == 0) {
        struct city_entry *e = xcalloc(1, sizeof *e);
        e->status = err->status;
        e->fresh_body = body;
        e->fetched = clock_monotonic();
        refresh_store(r, e);
        return;
    }
    struct answer ans = {.status = err->status, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                         .retry_after = err->retry_after};
    refresh_end(r, &ans);
    blob_unref(body);
}

/* The refresh for city, started if none is under way. */
static struct refresh *refresh_start(struct answerer *a, const char *city)
{
    struct refresh *r = refresh_find(a, city);
    if (r)
        return r;
    r = xcalloc(1, sizeof *r);
    r->answerer = a;
    r->city = xstrdup(city);
    TAILQ_INIT(&r->waiters);
    LIST_INSERT_HEAD(&a->refreshes, r, link);
    r->scrape = scrape_city(a->scraper, city, refresh_done, r);
    return r;
}

/* The answer for a request that may not wait for a scrape (shutting down). */
static void without_scraping(struct answerer *a, const struct city_entry *e, struct answer *now)
{
    if (entry_stale_usable(a, e)) {
        metrics_cache(a->metrics, CACHE_STALE);
        from_entry(a, e, 1, now);
        return;
    }
    *now = (struct answer){.status = 503, .body = a->shutting_down, .etag = NULL, .max_age = -1,
                           .age = 0, .retry_after = 1};
}

struct answer_wait *answer_city(struct answerer *a, const char *city, int may_scrape,
                                struct answer *now, answer_cb cb, void *arg)
{
    struct city_entry *e = cache_get(a->cities, city);
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
            refresh_start(a, city);
        from_entry(a, e, 1, now);
        return NULL;
    case CITY_EXPIRED:
        break;
    }
    if (!may_scrape) {
        without_scraping(a, e, now);
        return NULL;
    }
    metrics_cache(a->metrics, CACHE_MISS);
    struct refresh *r = refresh_start(a, city);
    struct answer_wait *w = xcalloc(1, sizeof *w);
    w->refresh = r;
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
     * hold a place in the queue (and a client sending many cities could fill it). */
    if (TAILQ_EMPTY(&r->waiters) && scrape_abandon(r->scrape)) {
        LIST_REMOVE(r, link);
        free(r->city);
        free(r);
    }
}

int answer_fallback(struct answer_wait *w, struct answer *out)
{
    struct answerer *a = w->refresh->answerer;
    const struct city_entry *e = cache_get(a->cities, w->refresh->city);
    if (!entry_stale_usable(a, e))
        return 0;
    metrics_cache(a->metrics, CACHE_STALE);
    from_entry(a, e, 1, out);
    return 1;
}

void answerer_fail_all(struct answerer *a, int status, const char *code, const char *message)
{
    struct blob *body = answer_error_body(code, message);
    struct answer error = {.status = status, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                           .retry_after = -1};
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
            cb(have_stale ? &stale : &error, arg);
        }
    }
    blob_unref(body);
}

struct answerer *answerer_new(struct scraper *scraper, const struct config *config,
                              struct metrics *metrics)
{
    struct answerer *a = xcalloc(1, sizeof *a);
    a->scraper = scraper;
    a->config = config;
    a->metrics = metrics;
    a->cities = cache_new((size_t)config->cache_max_entries, city_entry_free);
    a->shutting_down = answer_error_body("shutting_down", "the service is stopping; retry shortly");
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

size_t answerer_waiting(const struct answerer *a)
{
    return a->waiting;
}
