/* A scrape holds the listing's items and one slot per item for its movie record (or the
 * reason it has none). Movie pages are fetched through "flights": one per movie id in
 * flight, awaited by every scrape that needs that movie, so two cities sharing movies
 * never fetch a page twice. A flight's priority is the highest of the scrapes awaiting it.
 * A flight outlives its scrapes: its record still goes into the cache for the next scrape.
 * Scrapes go on whether or not anyone still waits for them: every movie page fetched fills
 * the shared record cache. A movie page that failed for a reason that passes (a timeout, a
 * connection error, a 5xx) is asked again in the background, detail_retry_delay seconds
 * later and doubling, up to detail_retries times (after the fetcher's own quick retries,
 * these wait long enough for a short outage to end); meanwhile the movie shows as failed
 * and the city's document as not complete.
 *
 * With a fleet (scraper_set_fleet), records have a second level in Redis and flights are
 * the fleet's: a movie missing here is first read from Redis; failing that its flight's
 * lock is taken and the page fetched, the record shared when it lands; a replica that
 * finds the lock taken waits for the owner's record, and takes over if the owner dies.
 * Without Redis, every step falls back to this process alone. */
#include "scrape.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "cache.h"
#include "cities.h"
#include "config.h"
#include "douban.h"
#include "envelope.h"
#include "fetch.h"
#include "fleet.h"
#include "log.h"
#include "movie.h"
#include "pool.h"
#include "util.h"

/* What jansson spends on one JSON value beyond its text: the node, an object's slot for it
 * and malloc's overhead (measured on records of real and fake movie pages: 97 to 131). */
#define JSON_VALUE_OVERHEAD 120
/* Pages waiting for each parse worker before the fetcher holds new requests: enough to keep
 * the workers busy between two arrivals, few enough to bound the bodies held. */
#define PARSE_BACKLOG_PER_THREAD 4
/* A movie page's fleet lock: renewed every third of this while its owner waits for and
 * fetches the page, so a dead owner's movie is taken over within it. */
#define MOVIE_LOCK_TTL_MS 6000
/* How long one wait for another replica's movie page lasts before looking again. */
#define MOVIE_WATCH_MS 60000

struct slot {
    json_t *detail;              /* movie_detail_json(), or NULL */
    struct detail_error error;   /* when detail is NULL and the slot is done */
    struct flight *flight;       /* while the movie page is awaited */
    int retries;                 /* background retries made so far */
    int transient;               /* the failure may pass (a timeout, a 5xx...) */
    double retry_at;             /* monotonic time of the next retry, 0 if none is due */
};

struct scrape {
    struct scraper *scraper;
    enum kind kind;
    char *city;
    scrape_cb cb;
    void *arg;
    struct fetch_request *listing_fetch;
    struct pool_job *listing_parse;
    enum fetch_priority listing_priority, details_priority;
    struct listing listing;
    struct slot *slots;
    size_t *wish_order;          /* item indices, most wished-for first */
    double listing_queued;
    size_t pending;              /* slots awaiting a flight */
    size_t retrying;             /* failed slots waiting for a background retry */
    struct event *retry_timer;
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
    struct fleet_lock *lock;      /* the movie's fleet lock while this replica fetches it */
    int owner_done;               /* the fleet said another replica finished it */
    struct fetch_request *fetch;  /* until the page is in */
    struct pool_job *parse;       /* while the page is parsed */
    enum fetch_priority priority;
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
    struct pool *pool;
    size_t parsing;              /* pages handed to the pool and not back yet */
    const struct config *config;
    struct cache *records;
    struct fleet *fleet;         /* or NULL: this process alone */
    LIST_HEAD(, scrape) scrapes;
    LIST_HEAD(, flight) flights;
    size_t active, flights_count;
};

/* Values in a JSON tree, the tree itself included. */
static size_t json_values(json_t *json)
{
    size_t n = 1, i;
    const char *key;
    json_t *v;
    if (json_is_object(json))
        json_object_foreach(json, key, v)
            n += json_values(v);
    else if (json_is_array(json))
        json_array_foreach(json, i, v)
            n += json_values(v);
    return n;
}

/* The bytes a record holds, as charged to the cache: its JSON text's length plus
 * jansson's overhead per value, within some 20% of what the heap spends on it. */
static size_t record_bytes(const struct record *r)
{
    return sizeof *r + json_dumpb(r->detail, NULL, 0, MOVIE_JSON_FLAGS) +
           json_values(r->detail) * JSON_VALUE_OVERHEAD;
}

/* Cache destructor for records. */
static void record_free(void *value)
{
    struct record *r = value;
    json_decref(r->detail);
    free(r);
}

/* Fills a scrape's error. */
static void set_error(struct scrape_error *e, enum api_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(struct scrape_error *e, enum api_error code, const char *fmt, ...)
{
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
    free(sc->wish_order);
    if (sc->retry_timer)
        event_free(sc->retry_timer);
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
    /* An unknown city is an answer; anything else is the upstream failing us. */
    log_at(e->code == API_ERROR_UNKNOWN_CITY ? LOG_INFO : LOG_WARN, "scrape of %s%s failed: %s (%s)",
           sc->city, sc->kind == KIND_LATER ? "" : " (now playing)", api_error_code(e->code),
           e->message);
    scrape_cb cb = sc->cb;
    void *arg = sc->arg;
    scrape_destroy(sc);
    struct scrape_result result = {.event = SCRAPE_DONE, .error = e, .listing_queued = -1};
    cb(&result, arg);
}

/* The ISO-8601 UTC form of t. */
static void format_time(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *scrape_document(const struct scrape *sc)
{
    struct scraper *s = sc->scraper;
    json_t *movies = json_array();
    size_t pending = 0;
    for (size_t i = 0; i < sc->listing.n; i++) {
        const struct slot *slot = &sc->slots[i];
        const struct detail_error *error = NULL;
        if (slot->flight)
            pending++;
        else if (slot->detail == NULL)
            error = &slot->error;
        json_array_append_new(movies, movie_json(&sc->listing.items[i], slot->detail, error,
                                                 sc->fetched_at));
    }
    char fetched[21];
    format_time(sc->fetched_at, fetched);
    char *source = scrape_listing_url(s->config, sc->kind, sc->city);
    int complete = pending == 0 && sc->retrying == 0;
    const struct city *known = city_find(sc->city);
    json_t *doc = json_pack("{s:s, s:o, s:s, s:s, s:I, s:b, s:I, s:b, s:o}", "city", sc->city,
                            "city_name", known ? json_string(known->name) : json_null(),
                            "source", source, "fetched_at", fetched,
                            "count", (json_int_t)sc->listing.n, "complete", complete,
                            "pending", (json_int_t)pending, "stale", 0, "movies", movies);
    free(source);
    return doc;
}

/* The result of an event, counts filled in. */
static struct scrape_result result_of(const struct scrape *sc, enum scrape_event event)
{
    return (struct scrape_result){.event = event, .fetched = sc->fetched,
                                  .movies = sc->listing.n, .pending = sc->pending,
                                  .listing_queued = -1};
}

/* Ends a scrape whose every slot is done: builds the city's document. */
static void scrape_finish(struct scrape *sc)
{
    struct scraper *s = sc->scraper;
    size_t failed = 0, refused = 0, transient = 0;
    for (size_t i = 0; i < sc->listing.n; i++) {
        struct slot *slot = &sc->slots[i];
        if (slot->detail == NULL) {
            failed++;
            refused += slot->error.code == API_ERROR_UPSTREAM_BLOCKED;
            transient += slot->transient;
        }
    }
    json_t *doc = scrape_document(sc);
    LIST_REMOVE(sc, link);
    s->active--;
    log_info("scraped %s%s: %zu movies, %zu without details", sc->city,
             sc->kind == KIND_LATER ? "" : " (now playing)", sc->listing.n, failed);
    scrape_cb cb = sc->cb;
    void *arg = sc->arg;
    struct scrape_result result = result_of(sc, SCRAPE_DONE);
    result.document = doc;
    result.details_refused = refused;
    result.details_transient = transient;
    scrape_destroy(sc);
    cb(&result, arg);
}

static void retry_due(evutil_socket_t fd, short what, void *arg);

/* One slot fewer awaits a flight: the scrape ends when none awaits one or a retry, else
 * its callback hears of the progress. */
static void one_less_pending(struct scrape *sc)
{
    if (--sc->pending == 0 && sc->retrying == 0) {
        scrape_finish(sc);
        return;
    }
    struct scrape_result result = result_of(sc, SCRAPE_PROGRESS);
    sc->cb(&result, sc->arg);
}

/* Arms the scrape's retry timer for the earliest retry due. */
static void arm_retries(struct scrape *sc)
{
    double next = 0;
    for (size_t i = 0; i < sc->listing.n; i++)
        if (sc->slots[i].retry_at > 0 && (next == 0 || sc->slots[i].retry_at < next))
            next = sc->slots[i].retry_at;
    if (next == 0)
        return;
    if (sc->retry_timer == NULL)
        sc->retry_timer = evtimer_new(fetch_event_base(sc->scraper->fetcher), retry_due, sc);
    double wait = next - clock_monotonic();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    evtimer_add(sc->retry_timer, &tv);
}

/* Fills a waiting scrape's slot; finishes the scrape when it was the last one. transient:
 * the failure may pass, so the page is asked again later while retries are left. */
static void slot_done(struct scrape *sc, size_t index, json_t *detail, const struct detail_error *error,
                      int transient)
{
    struct slot *slot = &sc->slots[index];
    slot->flight = NULL;
    if (detail) {
        slot->detail = json_incref(detail);
    } else {
        slot->error = *error;
        slot->transient = transient;
        const struct config *c = sc->scraper->config;
        if (transient && slot->retries < c->detail_retries) {
            slot->retry_at = clock_monotonic() +
                             (double)c->detail_retry_delay * (double)(1 << slot->retries);
            slot->retries++;
            sc->retrying++;
            arm_retries(sc);
        }
    }
    one_less_pending(sc);
}

/* A page handed to the parse pool: its body copied out of the fetch, and what a worker
 * made of it. The worker reads and writes the job alone; owner (the scrape or the flight)
 * is used once the job is back on the loop. */
struct parse_job {
    void *owner;
    char *body;
    size_t len;
    unsigned long epoch;         /* the fetch's breaker epoch, for fetch_report_ok */
    long status;
    char *upstream_host, *city;  /* listings: what douban_parse_listing checks links against */
    enum kind kind;              /* listings: which page it is */
    enum douban_verdict verdict;
    char why[200];
    struct listing listing;      /* a listing's items */
    json_t *detail;              /* a movie page's record */
};

static struct parse_job *parse_job_new(void *owner, const struct fetch_response *r)
{
    struct parse_job *job = xcalloc(1, sizeof *job);
    job->owner = owner;
    job->body = xmalloc(r->len + 1);
    memcpy(job->body, r->body, r->len);
    job->body[r->len] = '\0';
    job->len = r->len;
    job->epoch = r->epoch;
    job->status = r->status;
    return job;
}

/* The pool's discard function, and the end of every job. */
static void parse_job_free(void *arg)
{
    struct parse_job *job = arg;
    free(job->body);
    free(job->upstream_host);
    free(job->city);
    listing_free(&job->listing);
    json_decref(job->detail);
    free(job);
}

/* The pages handed to the pool at which the fetcher holds. */
static size_t parse_backlog(const struct scraper *s)
{
    int threads = pool_threads(s->pool);
    return PARSE_BACKLOG_PER_THREAD * (size_t)(threads > 0 ? threads : 1);
}

/* Hands a page to the pool. Past the backlog the fetcher holds new requests: pages come in
 * faster than workers parse them (without spacing, at many connections), and each waits
 * with its whole body (314 pages, 40 MB, for 50 cities of 126 KB pages at 64 connections). */
static struct pool_job *parse_submit(struct scraper *s, pool_fn work, pool_fn done,
                                     struct parse_job *job, enum pool_position position)
{
    s->parsing++;
    if (s->parsing >= parse_backlog(s))
        fetch_hold(s->fetcher, 1);
    return pool_submit(s->pool, work, done, parse_job_free, job, position);
}

/* A page is back from the pool: below the backlog the fetcher may start requests again. */
static void parse_returned(struct scraper *s)
{
    s->parsing--;
    if (s->parsing < parse_backlog(s))
        fetch_hold(s->fetcher, 0);
}

/* On a worker: a movie page into its record. */
static void parse_detail(void *arg)
{
    struct parse_job *job = arg;
    struct movie_detail d;
    movie_detail_init(&d);
    job->verdict = douban_parse_detail(job->body, job->len, &d, job->why, sizeof job->why);
    if (job->verdict == DOUBAN_OK)
        job->detail = movie_detail_json(&d);
    movie_detail_free(&d);
}

/* On a worker: a listing into its items. */
static void parse_listing(void *arg)
{
    struct parse_job *job = arg;
    if (job->kind == KIND_NOWPLAYING)
        job->verdict = douban_parse_nowplaying(job->body, job->len, job->city, &job->listing,
                                               job->why, sizeof job->why);
    else
        job->verdict = douban_parse_listing(job->body, job->len, job->upstream_host, job->city,
                                            &job->listing, job->why, sizeof job->why);
}

/* Whether a movie page's fetch result is a page to parse; if not, fills err. */
static int detail_fetched(const struct fetch_response *r, struct detail_error *err)
{
    err->status = r->status > 0 ? r->status : -1;
    switch (r->outcome) {
    case FETCH_TIMEOUT:
        err->code = API_ERROR_UPSTREAM_TIMEOUT;
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return 0;
    case FETCH_ERROR:
    case FETCH_TOO_LARGE:
        err->code = API_ERROR_UPSTREAM_ERROR;
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return 0;
    case FETCH_BLOCKED:
        err->code = API_ERROR_UPSTREAM_BLOCKED;
        snprintf(err->message, sizeof err->message, "%s", r->error);
        return 0;
    case FETCH_DONE:
        break;
    }
    if (r->status == 404) {
        err->code = API_ERROR_NOT_FOUND;
        snprintf(err->message, sizeof err->message, "the movie page does not exist");
        return 0;
    }
    if (r->status < 200 || r->status >= 300) {
        err->code = API_ERROR_UPSTREAM_ERROR;
        snprintf(err->message, sizeof err->message, "the movie page answered HTTP %ld", r->status);
        return 0;
    }
    return 1;
}

/* Shares a record this replica fetched, with its expiry as wall-clock time. */
static void share_record(struct scraper *s, const char *id, const json_t *detail)
{
    char *text = json_dumps(detail, MOVIE_JSON_FLAGS);
    char expires[24];
    long long ttl_ms = s->config->detail_ttl * 1000;
    snprintf(expires, sizeof expires, "%lld", (long long)(clock_wall() * 1000.0) + ttl_ms);
    struct envelope_field f[] = {{"expires_ms", expires, strlen(expires)},
                                 {"detail", text, strlen(text)}};
    fleet_value_set(s->fleet, "movie", id, f, 2, ttl_ms, NULL, NULL);
    free(text);
}

/* A shared record (new reference) and its monotonic expiry, or NULL with why filled. */
static json_t *record_of_shared(const struct envelope *v, double *expires, char *why,
                                size_t whylen)
{
    long long expires_ms;
    if (envelope_integer(v, "expires_ms", 0, 1LL << 53, &expires_ms, why, whylen) != 0)
        return NULL;
    const struct envelope_field *text = envelope_find(v, "detail");
    json_error_t jerr;
    json_t *detail = text ? json_loadb(text->data, text->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(detail) || json_object_get(detail, "title") == NULL) {
        errorf(why, whylen, "its detail is not a movie record");
        json_decref(detail);
        return NULL;
    }
    *expires = clock_monotonic() + ((double)expires_ms / 1000.0 - clock_wall());
    return detail;
}

/* Records a movie's record (or its error) and wakes every scrape waiting for it. expires:
 * the record's monotonic expiry, or 0 for detail_ttl from now. */
static void flight_land_until(struct flight *fl, json_t *detail, const struct detail_error *err,
                              int transient, double expires)
{
    struct scraper *s = fl->scraper;
    if (fl->lock != NULL) {
        /* A failure is not shared: a waiter elsewhere then fetches the page itself. */
        if (detail)
            share_record(s, fl->id, detail);
        fleet_notify(fl->lock);
        fl->lock = NULL;
    }
    if (detail) {
        struct record *rec = xmalloc(sizeof *rec);
        rec->detail = json_incref(detail);
        rec->expires = expires > 0 ? expires : clock_monotonic() + (double)s->config->detail_ttl;
        cache_put(s->records, fl->id, rec, record_bytes(rec));
    }
    LIST_REMOVE(fl, link);
    s->flights_count--;
    /* A finishing scrape calls back into code that may start new scrapes; the flight is
     * already out of the list so none of them joins it. */
    for (size_t i = 0; i < fl->n; i++)
        slot_done(fl->waiters[i].scrape, fl->waiters[i].index, detail, err, transient);
    free(fl->waiters);
    free(fl->id);
    free(fl);
}

static void flight_land(struct flight *fl, json_t *detail, const struct detail_error *err,
                        int transient)
{
    flight_land_until(fl, detail, err, transient, 0);
}

/* A movie page is parsed: its verdict decides the record or the error. */
static void detail_parsed(void *arg)
{
    struct parse_job *job = arg;
    struct flight *fl = job->owner;
    struct scraper *s = fl->scraper;
    if (fl->parse) {   /* NULL for a page parsed at once */
        fl->parse = NULL;
        parse_returned(s);
    }
    struct detail_error err = {.code = API_ERROR_NONE, .status = job->status, .message = ""};
    switch (job->verdict) {
    case DOUBAN_OK:
        fetch_report_ok(s->fetcher, job->epoch);
        break;
    case DOUBAN_NOT_FOUND:
        err.code = API_ERROR_NOT_FOUND;
        break;
    case DOUBAN_BLOCKED:
        err.code = API_ERROR_UPSTREAM_BLOCKED;
        fetch_report_block(s->fetcher, "a movie page says our requests look abnormal");
        break;
    case DOUBAN_CHANGED:
        err.code = API_ERROR_UPSTREAM_CHANGED;
        break;
    case DOUBAN_MALFORMED:
        err.code = API_ERROR_UPSTREAM_ERROR;
        break;
    }
    if (job->detail == NULL) {
        snprintf(err.message, sizeof err.message, "%s",
                 job->why[0] ? job->why : douban_verdict_name(job->verdict));
        log_warn("movie %s: %s", fl->id, err.message);
    }
    /* A page that came back 2xx failed for good: nothing to wait out. */
    flight_land(fl, job->detail, &err, 0);
    parse_job_free(job);
}

/* A movie page arrived (or failed): parse it off the loop, or land its error. */
static void flight_done(const struct fetch_response *r, void *arg)
{
    struct flight *fl = arg;
    fl->fetch = NULL;
    struct detail_error err = {.code = API_ERROR_NONE, .status = -1, .message = ""};
    if (detail_fetched(r, &err)) {
        struct parse_job *job = parse_job_new(fl, r);
        if (douban_may_be_refusal(r->body, r->len)) {
            /* Parsed before the fetcher can start another request: a block opens the
             * breaker now. Such pages are small. */
            parse_detail(job);
            detail_parsed(job);
            return;
        }
        fl->parse = parse_submit(fl->scraper, parse_detail, detail_parsed, job, POOL_BACK);
        return;
    }
    /* A redirect the fetcher refused carries its 3xx: that is no outage to wait out. */
    int transient = r->outcome == FETCH_TIMEOUT || (r->outcome == FETCH_ERROR && r->status == 0) ||
                    ((r->outcome == FETCH_DONE || r->outcome == FETCH_ERROR) && r->status >= 500);
    flight_land(fl, NULL, &err, transient);
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
    sc->slots[index].flight = fl;
    if (sc->details_priority > fl->priority) {
        fl->priority = sc->details_priority;
        if (fl->fetch)
            fetch_set_priority(fl->fetch, fl->priority);
    }
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

/* Fetches the flight's movie page here. */
static void flight_fetch(struct flight *fl)
{
    struct scraper *s = fl->scraper;
    char *url = xasprintf("%s/subject/%s/", s->config->upstream, fl->id);
    fl->fetch = fetch_start(s->fetcher, url, fl->priority, flight_done, fl);
    free(url);
}

static void flight_lookup(struct flight *fl);

static const char *movie_lock_name(const char *id, char out[64])
{
    snprintf(out, 64, "movie:%s", id);
    return out;
}

static void on_movie_watch(enum fleet_watch_result result, struct fleet_lock *lock, void *arg)
{
    struct flight *fl = arg;
    switch (result) {
    case FLEET_WATCH_DONE:
        fl->owner_done = 1;
        flight_lookup(fl);
        return;
    case FLEET_WATCH_TIMEOUT:
        flight_lookup(fl);
        return;
    case FLEET_WATCH_TAKEOVER:
        log_info("taking over movie %s: the replica fetching it is gone", fl->id);
        fl->lock = lock;
        flight_fetch(fl);
        return;
    case FLEET_WATCH_ERROR:
    case FLEET_WATCH_COUNT:
        flight_fetch(fl);
        return;
    }
}

static void on_movie_lock(enum fleet_lock_result result, struct fleet_lock *lock,
                          const char *holder, void *arg)
{
    struct flight *fl = arg;
    char name[64];
    switch (result) {
    case FLEET_LOCK_ACQUIRED:
        fl->lock = lock;
        flight_fetch(fl);
        return;
    case FLEET_LOCK_HELD:
        fleet_watch(fl->scraper->fleet, movie_lock_name(fl->id, name), holder, MOVIE_LOCK_TTL_MS,
                    MOVIE_WATCH_MS, on_movie_watch, fl);
        return;
    case FLEET_LOCK_ERROR:
        flight_fetch(fl);
        return;
    }
}

static void on_movie_value(enum fleet_value_result result, const struct envelope *v,
                           const char *error, void *arg)
{
    struct flight *fl = arg;
    char why[160], name[64];
    double expires = 0;
    json_t *detail = NULL;
    if (result == FLEET_VALUE_FOUND) {
        detail = record_of_shared(v, &expires, why, sizeof why);
        if (detail == NULL)
            log_warn("the shared record of movie %s is unreadable (%s): fetching it", fl->id, why);
    } else if (result == FLEET_VALUE_CORRUPT) {
        log_warn("the shared record of movie %s is unreadable (%s): fetching it", fl->id,
                 error ? error : "corrupt");
    }
    if (detail != NULL && expires > clock_monotonic()) {
        struct detail_error none = {.code = API_ERROR_NONE, .status = -1, .message = ""};
        flight_land_until(fl, detail, &none, 0, expires);
        json_decref(detail);
        return;
    }
    json_decref(detail);
    /* Redis is out of reach, or the owner finished without a record (its page failed). */
    if (result == FLEET_VALUE_ERROR || fl->owner_done) {
        flight_fetch(fl);
        return;
    }
    fleet_lock_acquire(fl->scraper->fleet, movie_lock_name(fl->id, name), MOVIE_LOCK_TTL_MS,
                       on_movie_lock, fl);
}

/* Reads the movie's shared record: another replica may have fetched its page. */
static void flight_lookup(struct flight *fl)
{
    fleet_value_get(fl->scraper->fleet, "movie", fl->id, on_movie_value, fl);
}

/* Orders item indices by descending wish count, listing order breaking ties. */
static const struct listing *sorting;
static int by_wish(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    long long wi = sorting->items[i].wish_count, wj = sorting->items[j].wish_count;
    if (wi != wj)
        return wi > wj ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Gives slot i its record from the cache when fresh (returns 1), else joins or starts the
 * flight of its movie page (returns 0, the slot counted pending). */
static int await_movie(struct scrape *sc, size_t i)
{
    struct scraper *s = sc->scraper;
    const char *id = sc->listing.items[i].id;
    struct record *rec = cache_get(s->records, id);
    if (rec && rec->expires > clock_monotonic()) {
        sc->slots[i].detail = json_incref(rec->detail);
        return 1;
    }
    struct flight *fl = flight_find(s, id);
    if (fl == NULL) {
        fl = xcalloc(1, sizeof *fl);
        fl->scraper = s;
        fl->id = xstrdup(id);
        fl->priority = sc->details_priority;
        LIST_INSERT_HEAD(&s->flights, fl, link);
        s->flights_count++;
        if (s->fleet != NULL)
            flight_lookup(fl);
        else
            flight_fetch(fl);
    }
    sc->pending++;
    flight_join(fl, sc, i);
    return 0;
}

/* Background retries whose time has come: each failed movie asked again (or taken from the
 * cache, if another city fetched it meanwhile). */
static void retry_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct scrape *sc = arg;
    double now = clock_monotonic();
    /* Pending is held up while slots change, so the scrape cannot finish halfway. */
    sc->pending++;
    for (size_t k = 0; k < sc->listing.n; k++) {
        size_t i = sc->wish_order[k];
        struct slot *slot = &sc->slots[i];
        if (slot->retry_at == 0 || slot->retry_at > now)
            continue;
        slot->retry_at = 0;
        sc->retrying--;
        log_info("movie %s: asking again (background attempt %d of %lld)",
                 sc->listing.items[i].id, slot->retries, sc->scraper->config->detail_retries);
        await_movie(sc, i);
    }
    arm_retries(sc);
    one_less_pending(sc);
}

/* Gives every item its record: from the cache when fresh, else from a flight, the most
 * wished-for movies queued first so a page shown early fills its popular movies first. */
static void request_details(struct scrape *sc)
{
    sc->slots = xcalloc(sc->listing.n ? sc->listing.n : 1, sizeof *sc->slots);
    sc->wish_order = xcalloc(sc->listing.n ? sc->listing.n : 1, sizeof *sc->wish_order);
    for (size_t i = 0; i < sc->listing.n; i++)
        sc->wish_order[i] = i;
    sorting = &sc->listing;  /* the loop is one thread */
    qsort(sc->wish_order, sc->listing.n, sizeof *sc->wish_order, by_wish);
    sorting = NULL;
    /* Slots are filled synchronously from the cache below; the count must not reach zero
     * (and finish the scrape) before every item has been looked at. */
    sc->pending = 1;
    for (size_t k = 0; k < sc->listing.n; k++)
        await_movie(sc, sc->wish_order[k]);
    if (--sc->pending == 0) {
        scrape_finish(sc);
        return;
    }
    struct scrape_result result = result_of(sc, SCRAPE_LISTED);
    result.listing_queued = sc->listing_queued;
    sc->cb(&result, sc->arg);
}

/* The listing is parsed: its items are the scrape's, or the scrape fails. */
static void listing_parsed(void *arg)
{
    struct parse_job *job = arg;
    struct scrape *sc = job->owner;
    struct scraper *s = sc->scraper;
    struct scrape_error e;
    if (sc->listing_parse) {   /* NULL for a page parsed at once */
        sc->listing_parse = NULL;
        parse_returned(s);
    }
    sc->listing = job->listing;
    job->listing = (struct listing){0};
    enum douban_verdict v = job->verdict;
    const char *why = job->why;
    switch (v) {
    case DOUBAN_OK:
        fetch_report_ok(s->fetcher, job->epoch);
        parse_job_free(job);
        request_details(sc);
        return;
    case DOUBAN_NOT_FOUND:
        set_error(&e, API_ERROR_UNKNOWN_CITY, "the upstream knows no city '%s'", sc->city);
        break;
    case DOUBAN_BLOCKED:
        fetch_report_block(s->fetcher, "the listing says our requests look abnormal");
        set_error(&e, API_ERROR_UPSTREAM_BLOCKED, "the upstream is refusing our requests: %s", why);
        e.retry_after = fetch_breaker_remaining(s->fetcher);
        if (e.retry_after <= 0)
            e.retry_after = 60;
        break;
    case DOUBAN_CHANGED:
        set_error(&e, API_ERROR_UPSTREAM_CHANGED, "the listing page has changed: %s", why);
        break;
    case DOUBAN_MALFORMED:
        set_error(&e, API_ERROR_UPSTREAM_ERROR, "the listing page is unusable: %s", why);
        break;
    }
    parse_job_free(job);
    scrape_fail(sc, &e);
}

/* The listing arrived (or failed). */
static void listing_done(const struct fetch_response *r, void *arg)
{
    struct scrape *sc = arg;
    struct scraper *s = sc->scraper;
    struct scrape_error e;
    sc->listing_fetch = NULL;
    sc->listing_queued = r->queued;
    switch (r->outcome) {
    case FETCH_TIMEOUT:
        set_error(&e, API_ERROR_UPSTREAM_TIMEOUT, "the upstream did not answer in time: %s", r->error);
        scrape_fail(sc, &e);
        return;
    case FETCH_ERROR:
    case FETCH_TOO_LARGE:
        set_error(&e, API_ERROR_UPSTREAM_ERROR, "fetching the listing failed: %s", r->error);
        scrape_fail(sc, &e);
        return;
    case FETCH_BLOCKED:
        set_error(&e, API_ERROR_UPSTREAM_BLOCKED, "the upstream is refusing our requests: %s", r->error);
        e.retry_after = r->retry_after;
        scrape_fail(sc, &e);
        return;
    case FETCH_DONE:
        break;
    }
    if (r->status == 404) {
        set_error(&e, API_ERROR_UNKNOWN_CITY, "the upstream knows no city '%s'", sc->city);
        scrape_fail(sc, &e);
        return;
    }
    if (r->status < 200 || r->status >= 300) {
        set_error(&e, API_ERROR_UPSTREAM_ERROR, "the listing answered HTTP %ld", r->status);
        scrape_fail(sc, &e);
        return;
    }
    sc->fetched_at = time(NULL);
    sc->fetched = clock_monotonic();
    struct parse_job *job = parse_job_new(sc, r);
    job->upstream_host = xstrdup(fetch_upstream_host(s->fetcher));
    job->city = xstrdup(sc->city);
    job->kind = sc->kind;
    if (douban_may_be_refusal(r->body, r->len)) {
        /* As for movie pages: a block opens the breaker before the next request. */
        parse_listing(job);
        listing_parsed(job);
        return;
    }
    /* A client usually waits for a listing: it goes before the movie pages. */
    sc->listing_parse = parse_submit(s, parse_listing, listing_parsed, job, POOL_FRONT);
}

char *scrape_listing_url(const struct config *config, enum kind kind, const char *city)
{
    return xasprintf("%s/cinema/%s/%s/", config->upstream, kind_name(kind), city);
}

struct scraper *scraper_new(struct fetcher *fetcher, const struct config *config,
                            struct cache_budget *budget, struct pool *pool)
{
    struct scraper *s = xcalloc(1, sizeof *s);
    s->fetcher = fetcher;
    s->config = config;
    s->pool = pool;
    /* No count bound: the budget's bytes bound the records. */
    s->records = cache_new(budget, SIZE_MAX, record_free);
    LIST_INIT(&s->scrapes);
    LIST_INIT(&s->flights);
    return s;
}

void scraper_free(struct scraper *s)
{
    if (s == NULL)
        return;
    struct flight *fl;
    while ((fl = LIST_FIRST(&s->flights)) != NULL) {
        LIST_REMOVE(fl, link);
        fetch_cancel(fl->fetch);
        if (fl->parse)
            pool_cancel(fl->parse);
        free(fl->waiters);
        free(fl->id);
        free(fl);
    }
    struct scrape *sc;
    while ((sc = LIST_FIRST(&s->scrapes)) != NULL) {
        LIST_REMOVE(sc, link);
        fetch_cancel(sc->listing_fetch);
        if (sc->listing_parse)
            pool_cancel(sc->listing_parse);
        scrape_destroy(sc);
    }
    cache_free(s->records);
    free(s);
}

void scraper_set_fleet(struct scraper *s, struct fleet *fleet)
{
    s->fleet = fleet;
}

struct scrape *scrape_city(struct scraper *s, enum kind kind, const char *city,
                           enum fetch_priority listing, enum fetch_priority details, scrape_cb cb,
                           void *arg)
{
    struct scrape *sc = xcalloc(1, sizeof *sc);
    sc->scraper = s;
    sc->kind = kind;
    sc->city = xstrdup(city);
    sc->cb = cb;
    sc->arg = arg;
    sc->listing_priority = listing;
    sc->details_priority = details;
    sc->listing_queued = -1;
    LIST_INSERT_HEAD(&s->scrapes, sc, link);
    s->active++;
    char *url = scrape_listing_url(s->config, kind, city);
    sc->listing_fetch = fetch_start(s->fetcher, url, listing, listing_done, sc);
    free(url);
    return sc;
}

void scrape_promote(struct scrape *sc, enum fetch_priority listing, enum fetch_priority details)
{
    if (listing > sc->listing_priority) {
        sc->listing_priority = listing;
        if (sc->listing_fetch)
            fetch_set_priority(sc->listing_fetch, listing);
    }
    if (details <= sc->details_priority)
        return;
    sc->details_priority = details;
    if (sc->slots == NULL)
        return;
    for (size_t k = 0; k < sc->listing.n; k++) {
        struct flight *fl = sc->slots[sc->wish_order[k]].flight;
        if (fl && fl->priority < details) {
            fl->priority = details;
            if (fl->fetch)
                fetch_set_priority(fl->fetch, details);
        }
    }
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

size_t scraper_cached_bytes(const struct scraper *s)
{
    return cache_bytes(s->records);
}

size_t scraper_pending_details(const struct scraper *s)
{
    return s->flights_count;
}

char *scraper_poster_url(const struct scraper *s, const char *id)
{
    /* The movie page's poster, even from a record past its TTL: an image's URL does not
     * go stale with the record. */
    const struct record *rec = cache_peek(s->records, id);
    const char *poster = rec ? json_string_value(json_object_get(rec->detail, "poster")) : NULL;
    if (poster != NULL)
        return xstrdup(poster);
    /* Else the listing's thumbnail, while a scrape that listed the movie is under way. */
    const struct scrape *sc;
    LIST_FOREACH(sc, &s->scrapes, link)
        for (size_t i = 0; i < sc->listing.n; i++)
            if (strcmp(sc->listing.items[i].id, id) == 0 && sc->listing.items[i].thumbnail)
                return xstrdup(sc->listing.items[i].thumbnail);
    return NULL;
}
