/* One city's scrape: the listing page, then every movie page in parallel (through the
 * fetcher's polite queue), movie records taken from and kept in a cache shared by all
 * cities, and a movie page being fetched for one city awaited, not fetched again, by
 * another. The result is the city's JSON document. */
#ifndef MOVIESD_SCRAPE_H
#define MOVIESD_SCRAPE_H

#include <jansson.h>
#include <stddef.h>

struct fetcher;
struct config;

struct scrape_error {
    int status;          /* the API status to answer with: 404, 502, 503 or 504 */
    const char *code;    /* unknown_city, upstream_error, upstream_changed, upstream_blocked, upstream_timeout */
    char message[240];
    long retry_after;    /* seconds, for upstream_blocked; -1 otherwise */
};

struct scrape_result {
    json_t *document;                  /* a new reference the callback owns, or NULL */
    const struct scrape_error *error;  /* when document is NULL */
    double fetched;                    /* monotonic time the listing arrived */
    size_t details_refused;            /* movies without details because the upstream refused */
};

typedef void (*scrape_cb)(const struct scrape_result *result, void *arg);

struct scraper;

/* config is borrowed and read live (TTLs, upstream). */
struct scraper *scraper_new(struct fetcher *fetcher, const struct config *config);
/* Applies a changed cache bound. */
void scraper_configure(struct scraper *s);
/* Cancels every scrape without calling back. Accepts NULL. */
void scraper_free(struct scraper *s);

struct scrape;

/* Starts scraping city (a valid slug). cb runs once, from the loop, never from inside
 * scrape_city(). Returns the scrape (borrowed; valid until cb runs). */
struct scrape *scrape_city(struct scraper *s, const char *city, scrape_cb cb, void *arg);
/* Drops a scrape whose listing has not been requested yet (cb will not run) and returns 1;
 * returns 0, changing nothing, once the upstream has been asked. */
int scrape_abandon(struct scrape *sc);

size_t scraper_active(const struct scraper *s);       /* scrapes under way */
size_t scraper_cached_movies(const struct scraper *s);

/* The document's "source": <upstream>/cinema/later/<city>/ (new string). */
char *scrape_listing_url(const struct config *config, const char *city);

#endif
