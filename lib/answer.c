/* Cities move through three ages (RFC 5861): fresh (younger than listing_ttl: served from
 * the cache), stale-while-revalidate (up to stale_while_revalidate past the TTL: served at
 * once, marked stale, while one refresh runs in the background) and old (requests wait for
 * the refresh, and get the old answer marked stale if it fails and is younger than
 * stale_max_age). At most one refresh per city runs at a time; its waiters all get its
 * result. */
#include "answer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cache.h"
#include "config.h"
#include "log.h"
#include "movie.h"
#include "metrics.h"
#include "scrape.h"

/* A cached city: both serializations made once per refresh. */
struct city_entry {
    struct blob *fresh_body;
    struct blob *stale_body;
    char fresh_etag[20];
    char stale_etag[20];
    double fetched;              /* monotonic */
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

/* Fills an answer from a cached city, fresh or marked stale. */
static void from_entry(const struct answerer *a, const struct city_entry *e, int stale,
                       struct answer *out)
{
    long age = (long)(clock_monotonic() - e->fetched);
    long left = (long)a->config->listing_ttl - age;
    out->status = 200;
    out->body = stale ? e->stale_body : e->fresh_body;
    out->etag = stale ? e->stale_etag : e->fresh_etag;
    out->max_age = stale || left < 0 ? 0 : left;
    out->age = age;
    out->retry_after = -1;
}

enum city_age answer_classify(double age, const struct config *config)
{
    double ttl = (double)config->listing_ttl;
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

/* A refresh's scrape ended: cache the new answer, or fall back to the old one. */
static void refresh_done(json_t *doc, const struct scrape_error *err, void *arg)
{
    struct refresh *r = arg;
    struct answerer *a = r->answerer;
    struct answer ans;
    if (doc) {
        struct city_entry *e = xcalloc(1, sizeof *e);
        e->fresh_body = serialize(doc, e->fresh_etag);
        json_object_set_new(doc, "stale", json_true());
        e->stale_body = serialize(doc, e->stale_etag);
        e->fetched = clock_monotonic();
        json_decref(doc);
        cache_put(a->cities, r->city, e);
        from_entry(a, e, 0, &ans);
        refresh_end(r, &ans);
        return;
    }
    struct city_entry *old = cache_get(a->cities, r->city);
    if (old && answer_stale_usable(clock_monotonic() - old->fetched, a->config)) {
        log_warn("refreshing %s failed (%s): serving the answer from %.0f s ago", r->city,
                 err->code, clock_monotonic() - old->fetched);
        /* Counted per waiter: each of them gets a stale answer. */
        struct answer_wait *w;
        TAILQ_FOREACH(w, &r->waiters, link)
            metrics_cache(a->metrics, CACHE_STALE);
        from_entry(a, old, 1, &ans);
        refresh_end(r, &ans);
        return;
    }
    struct blob *body = answer_error_body(err->code, err->message);
    ans.status = err->status;
    ans.body = body;
    ans.etag = NULL;
    ans.max_age = -1;
    ans.age = 0;
    ans.retry_after = err->retry_after;
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
    scrape_city(a->scraper, city, refresh_done, r);
    return r;
}

struct answer_wait *answer_city(struct answerer *a, const char *city, struct answer *now,
                                answer_cb cb, void *arg)
{
    struct city_entry *e = cache_get(a->cities, city);
    switch (e ? answer_classify(clock_monotonic() - e->fetched, a->config) : CITY_EXPIRED) {
    case CITY_FRESH:
        metrics_cache(a->metrics, CACHE_HIT);
        from_entry(a, e, 0, now);
        return NULL;
    case CITY_REVALIDATE:
        metrics_cache(a->metrics, CACHE_STALE);
        refresh_start(a, city);
        from_entry(a, e, 1, now);
        return NULL;
    case CITY_EXPIRED:
        break;
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
    TAILQ_REMOVE(&w->refresh->waiters, w, link);
    w->refresh->answerer->waiting--;
    free(w);
}

void answerer_fail_all(struct answerer *a, int status, const char *code, const char *message)
{
    struct blob *body = answer_error_body(code, message);
    struct answer ans = {.status = status, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                         .retry_after = -1};
    struct refresh *r;
    LIST_FOREACH(r, &a->refreshes, link) {
        struct answer_wait *w;
        while ((w = TAILQ_FIRST(&r->waiters)) != NULL) {
            TAILQ_REMOVE(&r->waiters, w, link);
            a->waiting--;
            answer_cb cb = w->cb;
            void *arg = w->arg;
            free(w);
            cb(&ans, arg);
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
