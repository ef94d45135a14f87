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
 * is cached only briefly, and never replaces a complete answer that may still be served.
 *
 * With a fleet (answerer_set_fleet), the city cache has a second level in Redis and the
 * single-flight is the fleet's: a refresh first reads the city's shared answer (another
 * replica may have fetched it); failing that it takes the city's lock and scrapes, sharing
 * the partial answer as movies land and the final one at the end; a replica that finds the
 * lock taken waits for its owner's result (answering its own listing-first requests from
 * the owner's shared partial answer), and takes over when the owner dies. Answers are
 * shared as the bytes the owner made, ETags included, so every replica sends the same
 * document. When Redis is out of reach every step falls back to this process alone. */
#include "answer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "envelope.h"
#include "fleet.h"
#include "gzip.h"
#include "kind.h"
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

/* The fleet's city locks: renewed every third of this while the owner scrapes, so a dead
 * owner's city is taken over within it. */
#define CITY_LOCK_TTL_MS 6000
/* How long a waiter trusts one wait for an owner before looking again. */
#define CITY_WATCH_MS 60000
/* A waiter reads the owner's partial answer this often until it has one, then this often. */
#define PARTIAL_POLL_MS 100
#define PARTIAL_REFRESH_MS 1000
/* The owner shares its partial answer at most this often as movies land. */
#define PARTIAL_SHARE_S 0.5
/* How long a shared partial answer lives: a little beyond its owner's lock. */
#define PARTIAL_SHARE_TTL_MS (2 * CITY_LOCK_TTL_MS)
/* How long a failed refresh's error is shared: its waiters get it instead of asking the
 * upstream again, and the next refresh after it tries anew. */
#define ERROR_SHARE_TTL_MS 5000

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
    long retry_after;            /* a shared failure's (never cached): seconds, or -1 */
};

struct answer_wait {
    struct refresh *refresh;
    int wait_details;            /* answered by the complete document, not the partial one */
    answer_cb cb;
    void *arg;
    TAILQ_ENTRY(answer_wait) link;
};

/* A follower of a listed refresh (answer_follow): told of every movie that lands. */
struct answer_follow {
    struct refresh *refresh;
    answer_follow_cb cb;
    void *arg;
    TAILQ_ENTRY(answer_follow) link;
};

/* Where a refresh is: without a fleet it only scrapes. */
enum refresh_phase {
    PHASE_LOOKUP,    /* reading the city's shared answer */
    PHASE_LOCK,      /* asking for the city's lock */
    PHASE_WATCH,     /* another replica holds it: waiting for its result */
    PHASE_SCRAPE,    /* scraping, for the fleet when lock is set */
};

/* A scrape under way for a city, and the requests waiting for it. */
struct refresh {
    struct answerer *answerer;
    char *city;
    enum refresh_phase phase;
    enum fetch_priority listing_priority, details_priority;
    struct scrape *scrape;       /* until it calls back with SCRAPE_DONE */
    struct fleet_lock *lock;     /* the city's fleet lock while this replica scrapes it */
    struct fleet_watch *watch;   /* PHASE_WATCH: the wait for the owner */
    struct event *partial_timer; /* PHASE_WATCH: next read of the owner's partial answer */
    int partial_reading;         /* that read is in flight */
    double partial_shared;       /* owner: monotonic time its partial answer was last shared */
    struct event *share_timer;   /* owner: shares the partial answer again before it expires */
    int owner_done;              /* the fleet said the owner's scrape ended: its error counts */
    int refs;                    /* fleet reads in flight that will call back with r */
    int ended;                   /* out of the answerer: freed when refs reach 0 */
    int prefetch;                /* started by the prefetcher: kept when its waiters leave */
    int listed;                  /* the listing is in: partial answers can be made */
    double fetched;              /* monotonic time the listing arrived */
    double last_asked;           /* monotonic time a client last asked, 0 never */
    struct blob *partial;        /* the partial answer as of the last landed movie, or NULL */
    struct blob *partial_gzip;   /* and gzip-compressed, made with it */
    char partial_etag[20];
    char partial_gzip_etag[ANSWER_ETAG_SIZE];
    TAILQ_HEAD(, answer_wait) waiters;
    TAILQ_HEAD(, answer_follow) followers;
    LIST_ENTRY(refresh) link;
};

struct answerer {
    struct scraper *scraper;
    struct fleet *fleet;         /* or NULL: this process alone */
    struct event_base *base;     /* with a fleet: for the waiters' timers */
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

/* Frees what r holds once nothing will call back with it; r is out of the answerer. */
static void refresh_release(struct refresh *r)
{
    r->ended = 1;
    if (r->watch != NULL) {
        fleet_watch_cancel(r->watch);
        r->watch = NULL;
    }
    if (r->lock != NULL) {
        fleet_lock_release(r->lock);
        r->lock = NULL;
    }
    if (r->partial_timer != NULL) {
        event_free(r->partial_timer);
        r->partial_timer = NULL;
    }
    if (r->share_timer != NULL) {
        event_free(r->share_timer);
        r->share_timer = NULL;
    }
    if (r->refs > 0)
        return;
    blob_unref(r->partial);
    blob_unref(r->partial_gzip);
    free(r->city);
    free(r);
}

/* A fleet read for r answered: whether r still wants it (else it is released). */
static int refresh_back(struct refresh *r)
{
    r->refs--;
    if (!r->ended)
        return 1;
    refresh_release(r);
    return 0;
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
    struct answer_follow *f;
    while ((f = TAILQ_FIRST(&r->followers)) != NULL) {
        TAILQ_REMOVE(&r->followers, f, link);
        answer_follow_cb cb = f->cb;
        void *arg = f->arg;
        free(f);
        cb(ans, 1, arg);
    }
    refresh_release(r);
}


/* The partial answer of a listed refresh, made anew when a movie landed since the last. */
static void from_partial(struct refresh *r, struct answer *out)
{
    /* A replica waiting for another's scrape has that one's partial answer, never NULL. */
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

/* Tells r's followers of its partial answer as it stands. */
static void refresh_tell_followers(struct refresh *r)
{
    if (TAILQ_EMPTY(&r->followers))
        return;
    struct answer ans;
    from_partial(r, &ans);
    /* A follower may stop following from its callback, itself only. */
    struct answer_follow *f, *next;
    for (f = TAILQ_FIRST(&r->followers); f != NULL; f = next) {
        next = TAILQ_NEXT(f, link);
        f->cb(&ans, 0, f->arg);
    }
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

/* --- sharing with the fleet ------------------------------------------------------------ */

/* Shared values carry wall-clock times (replicas share no monotonic clock): a monotonic
 * time of this process as milliseconds since the epoch, and back (ages never negative). */
static long long wall_ms_of(double monotonic)
{
    return (long long)((clock_wall() - (clock_monotonic() - monotonic)) * 1000.0);
}

static double monotonic_of(long long wall_ms)
{
    double age = clock_wall() - (double)wall_ms / 1000.0;
    return clock_monotonic() - (age > 0 ? age : 0);
}

/* The error whose code is the len bytes at code, if a city's refresh can end with it. */
static int error_of_code(const char *code, size_t len, enum api_error *out)
{
    for (int e = 0; e < API_ERROR_COUNT; e++) {
        const char *c = api_error_code((enum api_error)e);
        if ((e == API_ERROR_NONE || api_error_info((enum api_error)e)->scrape) &&
            strlen(c) == len && memcmp(c, code, len) == 0) {
            *out = (enum api_error)e;
            return 0;
        }
    }
    return -1;
}

static struct envelope_field blob_field(const char *name, const struct blob *b)
{
    return (struct envelope_field){name, b->data, b->len};
}

static struct envelope_field text_field(const char *name, const char *text)
{
    return (struct envelope_field){name, text, strlen(text)};
}

/* How long Redis keeps a city's shared answer: as long as any replica may serve it. */
static long long shared_ttl_ms(const struct answerer *a, const struct city_entry *e)
{
    const struct config *c = a->config;
    if (e->error == API_ERROR_UNKNOWN_CITY)
        return c->listing_ttl * 1000;
    if (e->error != API_ERROR_NONE)
        return ERROR_SHARE_TTL_MS;
    long long keep = c->listing_ttl + c->stale_while_revalidate;
    return (keep > c->stale_max_age ? keep : c->stale_max_age) * 1000;
}

/* Shares e as the city's answer (an error's too: its waiters elsewhere take it). */
static void share_entry(struct answerer *a, const char *city, const struct city_entry *e)
{
    char fetched[24], degraded[2], retry[24];
    snprintf(fetched, sizeof fetched, "%lld", wall_ms_of(e->fetched));
    snprintf(degraded, sizeof degraded, "%d", e->degraded ? 1 : 0);
    snprintf(retry, sizeof retry, "%ld", e->retry_after > 0 ? e->retry_after : 0);
    struct envelope_field f[12];
    size_t n = 0;
    f[n++] = text_field("error", api_error_code(e->error));
    f[n++] = text_field("fetched_ms", fetched);
    f[n++] = text_field("degraded", degraded);
    f[n++] = text_field("retry_after", retry);
    f[n++] = blob_field("fresh", e->fresh_body);
    if (e->error == API_ERROR_NONE) {
        f[n++] = text_field("fresh_etag", e->fresh_etag);
        f[n++] = blob_field("fresh_gzip", e->fresh_gzip);
        f[n++] = text_field("fresh_gzip_etag", e->fresh_gzip_etag);
        f[n++] = blob_field("stale", e->stale_body);
        f[n++] = text_field("stale_etag", e->stale_etag);
        f[n++] = blob_field("stale_gzip", e->stale_gzip);
        f[n++] = text_field("stale_gzip_etag", e->stale_gzip_etag);
    }
    fleet_value_set(a->fleet, "city", city, f, n, shared_ttl_ms(a, e), NULL, NULL);
}

/* Copies field name of v as a blob; NULL when absent. */
static struct blob *field_blob(const struct envelope *v, const char *name)
{
    const struct envelope_field *f = envelope_find(v, name);
    return f ? blob_new(f->data, f->len) : NULL;
}

/* Copies field name of v into a quoted ETag buffer of size bytes; -1 when absent or not
 * one that matches body (expected: the ETag body's hash gives, with suffix inside). */
static int field_etag(const struct envelope *v, const char *name, const struct blob *body,
                      const char *suffix, char *out, size_t size)
{
    const struct envelope_field *f = envelope_find(v, name);
    char hex[17], want[ANSWER_ETAG_SIZE];
    if (f == NULL || body == NULL || f->len >= size)
        return -1;
    hash_hex(body->data, body->len, hex);
    snprintf(want, sizeof want, "\"%s%s\"", hex, suffix);
    if (f->len != strlen(want) || memcmp(f->data, want, f->len) != 0)
        return -1;
    memcpy(out, f->data, f->len);
    out[f->len] = '\0';
    return 0;
}

/* A city entry from its shared envelope (new), or NULL with the reason in why. The plain
 * bodies are checked against their ETags, so a value cut or altered in Redis is refused
 * rather than served. */
static struct city_entry *entry_of_shared(const struct envelope *v, char *why, size_t whylen)
{
    const struct envelope_field *code = envelope_find(v, "error");
    long long fetched_ms, degraded, retry_after;
    enum api_error error;
    if (code == NULL || error_of_code(code->data, code->len, &error) != 0) {
        errorf(why, whylen, "no known error code");
        return NULL;
    }
    if (envelope_integer(v, "fetched_ms", 0, 1LL << 53, &fetched_ms, why, whylen) != 0 ||
        envelope_integer(v, "degraded", 0, 1, &degraded, why, whylen) != 0 ||
        envelope_integer(v, "retry_after", 0, 1LL << 31, &retry_after, why, whylen) != 0)
        return NULL;
    struct city_entry *e = xcalloc(1, sizeof *e);
    e->error = error;
    e->fetched = monotonic_of(fetched_ms);
    e->degraded = (int)degraded;
    e->retry_after = retry_after > 0 ? (long)retry_after : -1;
    e->fresh_body = field_blob(v, "fresh");
    if (error != API_ERROR_NONE) {
        if (e->fresh_body != NULL)
            return e;
        errorf(why, whylen, "an error without its body");
        city_entry_free(e);
        return NULL;
    }
    e->stale_body = field_blob(v, "stale");
    e->fresh_gzip = field_blob(v, "fresh_gzip");
    e->stale_gzip = field_blob(v, "stale_gzip");
    if (e->fresh_gzip == NULL || e->stale_gzip == NULL ||
        field_etag(v, "fresh_etag", e->fresh_body, "", e->fresh_etag, sizeof e->fresh_etag) ||
        field_etag(v, "stale_etag", e->stale_body, "", e->stale_etag, sizeof e->stale_etag) ||
        field_etag(v, "fresh_gzip_etag", e->fresh_body, "-gz", e->fresh_gzip_etag,
                   sizeof e->fresh_gzip_etag) ||
        field_etag(v, "stale_gzip_etag", e->stale_body, "-gz", e->stale_gzip_etag,
                   sizeof e->stale_gzip_etag)) {
        errorf(why, whylen, "a body or an ETag missing, or a body that does not match its ETag");
        city_entry_free(e);
        return NULL;
    }
    return e;
}

static void on_share_timer(evutil_socket_t fd, short what, void *arg);

/* The owner's partial answer, shared for the replicas waiting for its scrape. Shared again
 * before it expires: minutes may pass between two movies landing (a fleet's budget spent on
 * other cities), and the waiters must not lose it while the owner is alive. */
static void share_partial(struct refresh *r)
{
    struct answer ans;
    from_partial(r, &ans);
    char fetched[24];
    snprintf(fetched, sizeof fetched, "%lld", wall_ms_of(r->fetched));
    struct envelope_field f[] = {
        text_field("fetched_ms", fetched), blob_field("body", ans.body),
        text_field("etag", ans.etag), blob_field("gzip", ans.gzip),
        text_field("gzip_etag", ans.gzip_etag),
    };
    fleet_value_set(r->answerer->fleet, "partial", r->city, f, sizeof f / sizeof f[0],
                    PARTIAL_SHARE_TTL_MS, NULL, NULL);
    r->partial_shared = clock_monotonic();
    if (r->share_timer == NULL)
        r->share_timer = evtimer_new(r->answerer->base, on_share_timer, r);
    struct timeval tv = {PARTIAL_SHARE_TTL_MS / 2000, (PARTIAL_SHARE_TTL_MS / 2 % 1000) * 1000};
    evtimer_add(r->share_timer, &tv);
}

static void on_share_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct refresh *r = arg;
    if (r->lock != NULL && r->scrape != NULL)
        share_partial(r);
}

/* The name of a city's flight in the fleet (movie pages' are "movie:<id>"). */
static const char *lock_name(const char *city, char out[64])
{
    snprintf(out, 64, "city:%s", city);
    return out;
}

static void refresh_scrape(struct refresh *r);
static void refresh_lookup(struct refresh *r);
static void refresh_event(const struct scrape_result *result, void *arg);

static void on_partial_timer(evutil_socket_t fd, short what, void *arg);

static void arm_partial(struct refresh *r, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->partial_timer, &tv);
}

/* The owner's partial answer, read while waiting: the first one answers the waiters that
 * need only the listing; later ones keep it current for requests that come meanwhile. */
static void on_partial(enum fleet_value_result result, const struct envelope *v,
                       const char *error, void *arg)
{
    (void)error;
    struct refresh *r = arg;
    r->partial_reading = 0;
    if (!refresh_back(r) || r->phase != PHASE_WATCH)
        return;
    long long fetched_ms;
    char why[160];
    struct blob *body = NULL, *gzip = NULL;
    char etag[sizeof r->partial_etag], gzip_etag[sizeof r->partial_gzip_etag];
    if (result == FLEET_VALUE_FOUND &&
        envelope_integer(v, "fetched_ms", 0, 1LL << 53, &fetched_ms, why, sizeof why) == 0 &&
        (body = field_blob(v, "body")) != NULL && (gzip = field_blob(v, "gzip")) != NULL &&
        field_etag(v, "etag", body, "", etag, sizeof etag) == 0 &&
        field_etag(v, "gzip_etag", body, "-gz", gzip_etag, sizeof gzip_etag) == 0) {
        blob_unref(r->partial);
        blob_unref(r->partial_gzip);
        r->partial = body;
        r->partial_gzip = gzip;
        memcpy(r->partial_etag, etag, sizeof etag);
        memcpy(r->partial_gzip_etag, gzip_etag, sizeof gzip_etag);
        r->fetched = monotonic_of(fetched_ms);
        if (!r->listed)
            refresh_listed(r);
        else
            refresh_tell_followers(r);
    } else {
        blob_unref(body);
        blob_unref(gzip);
    }
    arm_partial(r, r->listed ? PARTIAL_REFRESH_MS : PARTIAL_POLL_MS);
}

static void on_partial_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct refresh *r = arg;
    if (r->partial_reading)
        return;
    r->partial_reading = 1;
    r->refs++;
    fleet_value_get(r->answerer->fleet, "partial", r->city, on_partial, r);
}

/* The owner's wait ended: read its result, or scrape when it is gone or Redis is. */
static void on_watch(enum fleet_watch_result result, struct fleet_lock *lock, void *arg)
{
    struct refresh *r = arg;
    r->watch = NULL;
    evtimer_del(r->partial_timer);
    switch (result) {
    case FLEET_WATCH_DONE:
        r->owner_done = 1;
        refresh_lookup(r);
        return;
    case FLEET_WATCH_TIMEOUT:
        refresh_lookup(r);
        return;
    case FLEET_WATCH_TAKEOVER:
        log_info("taking over %s: the replica scraping it is gone", r->city);
        r->lock = lock;
        refresh_scrape(r);
        return;
    case FLEET_WATCH_ERROR:
    case FLEET_WATCH_COUNT:
        refresh_scrape(r);
        return;
    }
}

static void on_lock(enum fleet_lock_result result, struct fleet_lock *lock, const char *holder,
                    void *arg)
{
    struct refresh *r = arg;
    if (!refresh_back(r)) {
        if (lock != NULL)
            fleet_lock_release(lock);
        return;
    }
    switch (result) {
    case FLEET_LOCK_ACQUIRED:
        r->lock = lock;
        refresh_scrape(r);
        return;
    case FLEET_LOCK_HELD:
        r->phase = PHASE_WATCH;
        char name[64];
        if (r->partial_timer == NULL)
            r->partial_timer = evtimer_new(r->answerer->base, on_partial_timer, r);
        arm_partial(r, 0);
        r->watch = fleet_watch(r->answerer->fleet, lock_name(r->city, name), holder,
                               CITY_LOCK_TTL_MS, CITY_WATCH_MS, on_watch, r);
        return;
    case FLEET_LOCK_ERROR:
        refresh_scrape(r);
        return;
    }
}

/* Takes the city's lock to scrape it for the fleet, or learns who holds it. */
static void refresh_lock(struct refresh *r)
{
    char name[64];
    r->phase = PHASE_LOCK;
    r->owner_done = 0;
    r->refs++;
    fleet_lock_acquire(r->answerer->fleet, lock_name(r->city, name), CITY_LOCK_TTL_MS, on_lock, r);
}

/* Keeps a shared entry as the local one when it is newer. Returns the local entry now. */
static struct city_entry *adopt(struct answerer *a, const char *city, struct city_entry *e)
{
    struct city_entry *old = cache_get(a->cities, city);
    if (old != NULL && old->fetched >= e->fetched) {
        city_entry_free(e);
        return old;
    }
    if (old != NULL)
        e->last_asked = old->last_asked;
    cache_put(a->cities, city, e, city_entry_bytes(e));
    return cache_peek(a->cities, city);
}

static void on_lookup(enum fleet_value_result result, const struct envelope *v,
                      const char *error, void *arg)
{
    struct refresh *r = arg;
    struct answerer *a = r->answerer;
    if (!refresh_back(r))
        return;
    char why[160];
    struct city_entry *e = NULL;
    if (result == FLEET_VALUE_FOUND && (e = entry_of_shared(v, why, sizeof why)) == NULL)
        log_warn("the shared answer of %s is unreadable (%s): asking the upstream", r->city, why);
    else if (result == FLEET_VALUE_CORRUPT)
        log_warn("the shared answer of %s is unreadable (%s): asking the upstream", r->city,
                 error ? error : "corrupt");
    if (e != NULL && e->error != API_ERROR_NONE && e->error != API_ERROR_UNKNOWN_CITY &&
        !r->owner_done) {
        /* An earlier failure, not the one of the flight this refresh waited for: ask anew. */
        city_entry_free(e);
        e = NULL;
    }
    if (e != NULL && e->error != API_ERROR_NONE && e->error != API_ERROR_UNKNOWN_CITY) {
        /* The scrape this refresh waited for failed: its error stands for this one. */
        struct city_entry *old = cache_get(a->cities, r->city);
        if (entry_stale_usable(a, old)) {
            city_entry_free(e);
            refresh_fall_back(r, old, "the replica that refreshed it failed");
            return;
        }
        struct answer ans = {.error = e->error, .body = e->fresh_body, .max_age = -1,
                             .retry_after = e->retry_after};
        refresh_end(r, &ans);
        city_entry_free(e);
        return;
    }
    if (e != NULL) {
        double ttl = entry_ttl(a, e);
        if (answer_classify(clock_monotonic() - e->fetched, ttl, a->config) == CITY_FRESH) {
            struct city_entry *mine = cache_get(a->cities, r->city);
            if (mine == NULL || mine->fetched < e->fetched) {
                if (mine != NULL)
                    e->last_asked = mine->last_asked;
                e->last_asked = e->last_asked > r->last_asked ? e->last_asked : r->last_asked;
                refresh_store(r, e);
                return;
            }
            city_entry_free(e);
        } else {
            /* Older than fresh: still worth serving as stale while this refresh runs. */
            adopt(a, r->city, e);
        }
    }
    if (result == FLEET_VALUE_ERROR) {
        refresh_scrape(r);
        return;
    }
    refresh_lock(r);
}

/* Reads the city's shared answer: another replica may have it. */
static void refresh_lookup(struct refresh *r)
{
    r->phase = PHASE_LOOKUP;
    r->refs++;
    fleet_value_get(r->answerer->fleet, "city", r->city, on_lookup, r);
}

/* Scrapes the city here (for the fleet when r holds its lock): the listing its key names. */
static void refresh_scrape(struct refresh *r)
{
    enum kind kind;
    const char *city = kind_split(r->city, &kind);
    r->phase = PHASE_SCRAPE;
    r->scrape = scrape_city(r->answerer->scraper, kind, city, r->listing_priority,
                            r->details_priority, refresh_event, r);
}

/* The refresh is over here: its result shared (e, or NULL when waiters elsewhere should
 * look for themselves) and the city's lock handed on. */
static void refresh_share(struct refresh *r, const struct city_entry *e)
{
    if (r->lock == NULL)
        return;
    if (e != NULL)
        share_entry(r->answerer, r->city, e);
    fleet_notify(r->lock);
    r->lock = NULL;
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
        if (r->lock != NULL)
            share_partial(r);
        return;
    case SCRAPE_PROGRESS:
        blob_unref(r->partial);
        blob_unref(r->partial_gzip);
        r->partial = NULL;
        r->partial_gzip = NULL;
        if (r->lock != NULL && clock_monotonic() - r->partial_shared >= PARTIAL_SHARE_S)
            share_partial(r);
        refresh_tell_followers(r);
        return;
    case SCRAPE_DONE:
        break;
    }
    r->scrape = NULL;
    if (r->share_timer != NULL)
        evtimer_del(r->share_timer);
    metrics_scrape(a->metrics, result->document ? API_ERROR_NONE : result->error->code);
    struct city_entry *old = cache_get(a->cities, r->city);
    double last_asked = old && old->last_asked > r->last_asked ? old->last_asked : r->last_asked;
    if (!entry_stale_usable(a, old))
        old = NULL;
    if (result->document) {
        json_t *doc = result->document;
        if (result->details_refused > 0 && old) {
            json_decref(doc);
            refresh_share(r, NULL);
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
        e->retry_after = -1;
        refresh_share(r, e);
        refresh_store(r, e);
        return;
    }
    const struct scrape_error *err = result->error;
    struct blob *body = answer_error_body(err->code, err->message);
    struct city_entry failed = {.error = err->code, .fresh_body = body,
                                .fetched = clock_monotonic(), .retry_after = err->retry_after};
    refresh_share(r, &failed);
    if (old) {
        blob_unref(body);
        refresh_fall_back(r, old, api_error_code(err->code));
        return;
    }
    if (err->code == API_ERROR_UNKNOWN_CITY) {
        struct city_entry *e = xcalloc(1, sizeof *e);
        e->error = err->code;
        e->fresh_body = body;
        e->fetched = failed.fetched;
        e->retry_after = -1;
        refresh_store(r, e);
        return;
    }
    struct answer ans = {.error = err->code, .body = body, .etag = NULL, .max_age = -1, .age = 0,
                         .retry_after = err->retry_after};
    refresh_end(r, &ans);
    blob_unref(body);
}

/* Raises r's priorities (never lowers them), its scrape's if it has one. */
static void refresh_promote(struct refresh *r, enum fetch_priority listing,
                            enum fetch_priority details)
{
    if (listing > r->listing_priority)
        r->listing_priority = listing;
    if (details > r->details_priority)
        r->details_priority = details;
    if (r->scrape != NULL)
        scrape_promote(r->scrape, listing, details);
}

/* The refresh for city, started if none is under way, else raised to these priorities. */
static struct refresh *refresh_start(struct answerer *a, const char *city,
                                     enum fetch_priority listing, enum fetch_priority details)
{
    struct refresh *r = refresh_find(a, city);
    if (r) {
        refresh_promote(r, listing, details);
        return r;
    }
    r = xcalloc(1, sizeof *r);
    r->answerer = a;
    r->city = xstrdup(city);
    r->listing_priority = listing;
    r->details_priority = details;
    TAILQ_INIT(&r->waiters);
    TAILQ_INIT(&r->followers);
    LIST_INSERT_HEAD(&a->refreshes, r, link);
    if (a->fleet != NULL)
        refresh_lookup(r);
    else
        refresh_scrape(r);
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
        refresh_promote(r, FETCH_PREFETCH, FETCH_NORMAL);
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
    if (!TAILQ_EMPTY(&r->waiters) || !TAILQ_EMPTY(&r->followers) || r->prefetch)
        return;
    if (r->scrape == NULL || scrape_abandon(r->scrape)) {
        /* Waiting on the fleet: nothing was asked of the upstream here either. */
        LIST_REMOVE(r, link);
        refresh_release(r);
    }
}

struct answer_follow *answer_follow(struct answerer *a, const char *city, answer_follow_cb cb,
                                    void *arg)
{
    struct refresh *r = refresh_find(a, city);
    if (r == NULL || !r->listed)
        return NULL;
    struct answer_follow *f = xcalloc(1, sizeof *f);
    f->refresh = r;
    f->cb = cb;
    f->arg = arg;
    TAILQ_INSERT_TAIL(&r->followers, f, link);
    return f;
}

void answer_unfollow(struct answer_follow *f)
{
    if (f == NULL)
        return;
    TAILQ_REMOVE(&f->refresh->followers, f, link);
    free(f);
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
        struct answer_follow *f;
        while ((f = TAILQ_FIRST(&r->followers)) != NULL) {
            TAILQ_REMOVE(&r->followers, f, link);
            answer_follow_cb cb = f->cb;
            void *arg = f->arg;
            free(f);
            cb(&failed, 1, arg);
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

void answerer_set_fleet(struct answerer *a, struct fleet *fleet, struct event_base *base)
{
    a->fleet = fleet;
    a->base = base;
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
        struct answer_follow *f;
        while ((f = TAILQ_FIRST(&r->followers)) != NULL) {
            TAILQ_REMOVE(&r->followers, f, link);
            free(f);
        }
        /* The fleet is gone first (answerer_set_fleet): nothing of it is r's any more. */
        r->watch = NULL;
        r->lock = NULL;
        r->refs = 0;
        refresh_release(r);
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
