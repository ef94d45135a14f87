/* One city's scrape: the listing page (coming soon or now playing), then every movie page not in the record cache,
 * most wished-for first, through the fetcher's polite queue. Movie records are kept in a
 * cache shared by all cities, and a movie page being fetched for one city is awaited, not
 * fetched again, by another. Once the listing is in, the city's document can be had at
 * any time (movies whose page is not in yet marked pending); the scrape ends with the
 * complete document. */
#ifndef MOVIESD_SCRAPE_H
#define MOVIESD_SCRAPE_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"
#include "fetch.h"
#include "kind.h"

struct cache_budget;
struct config;

/* What went wrong upstream; the HTTP front alone turns it into a status. */
struct scrape_error {
    enum api_error code; /* API_ERROR_UNKNOWN_CITY or one of API_ERROR_UPSTREAM_* */
    char message[240];
    long retry_after;    /* seconds the upstream asks us to wait (always for a block), -1 if none */
};

enum scrape_event {
    SCRAPE_LISTED,    /* the listing is in and movie pages are awaited: see scrape_document() */
    SCRAPE_PROGRESS,  /* one more movie is in (or failed) */
    SCRAPE_DONE,      /* the last call: the complete document, or the error */
};

struct scrape_result {
    enum scrape_event event;
    json_t *document;                  /* DONE: a new reference the callback owns, or NULL */
    const struct scrape_error *error;  /* DONE without a document */
    double fetched;                    /* monotonic time the listing arrived */
    size_t details_refused;            /* movies without details because the upstream refused */
    size_t details_transient;          /* ... because of a timeout, a 5xx..., retries spent */
    size_t movies, pending;            /* listed movies; those whose page is not in yet */
    double listing_queued;             /* seconds the listing waited for its turn, -1 if unknown */
};

typedef void (*scrape_cb)(const struct scrape_result *result, void *arg);

struct pool;
struct scraper;

/* config is borrowed and read live (TTLs, upstream); the movie records are charged to
 * budget (borrowed), their only bound. Pages are parsed in pool (borrowed), which must
 * outlive the scraper. */
struct scraper *scraper_new(struct fetcher *fetcher, const struct config *config,
                            struct cache_budget *budget, struct pool *pool);
/* Cancels every scrape without calling back. Accepts NULL. With a fleet, fleet_free
 * first: it drops the fleet's calls back into the scraper. */
void scraper_free(struct scraper *s);
/* Shares movie records and movie-page flights with the other replicas through fleet
 * (borrowed), from the next movie looked for on. */
struct fleet;
void scraper_set_fleet(struct scraper *s, struct fleet *fleet);

struct scrape;

/* Starts scraping city (a valid slug): its listing of kind (coming soon or now playing) at
 * listing priority, the movie pages at details priority; movie records are shared by both
 * kinds as by all cities. cb runs from the loop, never from inside scrape_city(): LISTED at most
 * once, PROGRESS after it, DONE once and last. Returns the scrape (borrowed; valid until
 * the DONE callback returns). */
struct scrape *scrape_city(struct scraper *s, enum kind kind, const char *city,
                           enum fetch_priority listing, enum fetch_priority details, scrape_cb cb,
                           void *arg);
/* Raises the scrape's priorities (never lowers them): the listing's while it is queued,
 * and the movie pages' it awaits, in their wish order. */
void scrape_promote(struct scrape *sc, enum fetch_priority listing, enum fetch_priority details);
/* The city's document as it stands (new reference): after LISTED, before DONE. */
json_t *scrape_document(const struct scrape *sc);
/* Drops a scrape whose listing has not been requested yet (cb will not run) and returns 1;
 * returns 0, changing nothing, once the upstream has been asked. */
int scrape_abandon(struct scrape *sc);

size_t scraper_active(const struct scraper *s);       /* scrapes under way */
size_t scraper_cached_movies(const struct scraper *s);
size_t scraper_cached_bytes(const struct scraper *s);   /* the movie records' share */
size_t scraper_pending_details(const struct scraper *s); /* movie pages awaited */

/* The poster URL of movie id as moviesd knows it (new string), or NULL: its movie page's
 * poster from the record cache, else its listing's thumbnail while a scrape listing it is
 * under way. */
char *scraper_poster_url(const struct scraper *s, const char *id);

/* The document's "source": <upstream>/cinema/later/<city>/, or /cinema/nowplaying/<city>/
 * (new string). */
char *scrape_listing_url(const struct config *config, enum kind kind, const char *city);

#endif
