/* The answer for a city: from the city cache when fresh; otherwise one scrape however many
 * requests wait for it (single-flight); the last good answer, marked stale, while a refresh
 * runs (stale-while-revalidate) or when the refresh failed (stale-if-error). Every answer's
 * body is serialized, and gzip-compressed, once per refresh and shared. */
#ifndef MOVIESD_ANSWER_H
#define MOVIESD_ANSWER_H

#include <stddef.h>

#include "error.h"
#include "util.h"

struct cache_budget;
struct scraper;
struct config;
struct metrics;

/* Room for a quoted ETag, the gzip body's included ("...-gz"). */
#define ANSWER_ETAG_SIZE 24

/* The HTTP front turns error into the status (and whether retry_after is sent). */
struct answer {
    enum api_error error;  /* API_ERROR_NONE for a movies document, else the body's error */
    struct blob *body;     /* borrowed: take a reference to keep it */
    struct blob *gzip;     /* body gzip-compressed for 200 answers, else NULL; borrowed */
    const char *etag;      /* quoted ETag for 200 answers, else NULL */
    const char *gzip_etag; /* quoted ETag of gzip: etag with "-gz" inside the quotes */
    long max_age;          /* Cache-Control max-age for 200 answers, -1 for errors */
    long age;              /* seconds since the data was fetched (200 answers) */
    long retry_after;      /* seconds to wait before asking again, or -1 */
};

/* Called once with the answer for a waiting request (see answer_city). */
typedef void (*answer_cb)(const struct answer *a, void *arg);

struct answerer;
struct answer_wait;

/* scraper, config, metrics and budget are borrowed; config is read live. The cached
 * answers are charged to budget, which the movie records share. */
struct answerer *answerer_new(struct scraper *scraper, const struct config *config,
                              struct metrics *metrics, struct cache_budget *budget);
void answerer_configure(struct answerer *a);   /* applies a changed cache_max_entries */
/* Shares the city answers and their single-flight with the other replicas through fleet
 * (borrowed, on base), from the next refresh on. fleet_free must come before
 * answerer_free: it drops the fleet's calls back into the answerer. */
struct fleet;
struct event_base;
void answerer_set_fleet(struct answerer *a, struct fleet *fleet, struct event_base *base);
void answerer_free(struct answerer *a);        /* drops waiters without calling back */

enum answer_flags {
    ANSWER_MAY_SCRAPE = 1,    /* unset while shutting down: nothing new is scraped */
    ANSWER_WAIT_DETAILS = 2,  /* wait for every movie page, not only the listing */
};

/* Answers for city: a valid slug's key for a listing kind (kind_key: the slug for coming
 * soon, "nowplaying:<slug>" for now playing). Every cache, flight and shared value is the
 * key's, so the two kinds of a city never stand for each other. Returns NULL after filling *now when the answer is
 * ready at once; otherwise returns a wait handle and calls cb later (never from inside
 * answer_city). Without a usable cached answer the wait lasts until the listing is in
 * (the answer then says "complete": false while movie pages are awaited), or with
 * ANSWER_WAIT_DETAILS until the scrape ends. Without ANSWER_MAY_SCRAPE the answer is the
 * cached one, stale or partial if need be, or shutting_down. */
struct answer_wait *answer_city(struct answerer *a, const char *city, int flags,
                                struct answer *now, answer_cb cb, void *arg);
/* Stops waiting: cb will not be called. */
void answer_cancel(struct answer_wait *w);
/* The waiting request's fallback when it cannot wait any longer: the partial answer once
 * the listing is in, else the city's last good answer marked stale if it is young enough
 * (returns 1), else 0. */
int answer_fallback(struct answer_wait *w, struct answer *out);
/* Follows the refresh of city under way, whose listing is in: cb is called with the answer
 * anew each time a movie lands (final 0), then once with the refresh's result (final 1),
 * after which the follow is over (do not cancel it then). Returns NULL, never calling cb,
 * when no listed refresh of city is under way: its answer is as complete as it will get.
 * A follow keeps the refresh going as a waiter does. */
typedef void (*answer_follow_cb)(const struct answer *a, int final, void *arg);
struct answer_follow;
struct answer_follow *answer_follow(struct answerer *a, const char *city, answer_follow_cb cb,
                                    void *arg);
/* Stops following: cb will not be called. Accepts NULL. */
void answer_unfollow(struct answer_follow *f);

/* Answers every waiting request at once (shutdown): the last good answer, stale, where
 * there is one, else error with message (NULL: the error's default message). */
void answerer_fail_all(struct answerer *a, enum api_error error, const char *message);

/* Refreshes city in the background at prefetch priority (its movie pages at the priority
 * of a city people ask for, if someone asked within a listing TTL). Returns 0, doing
 * nothing, while a refresh of city is under way. */
int answerer_prefetch(struct answerer *a, const char *city);
/* Seconds since the cached answer of city was fetched; -1 when there is none. */
double answerer_age(const struct answerer *a, const char *city);

size_t answerer_cached_cities(const struct answerer *a);
size_t answerer_cached_bytes(const struct answerer *a);   /* the city answers' share */
size_t answerer_waiting(const struct answerer *a);

/* How a cached answer of a given age (seconds) may be used, under config's TTLs. */
enum city_age {
    CITY_FRESH,        /* serve it */
    CITY_REVALIDATE,   /* serve it marked stale at once, and refresh in the background */
    CITY_EXPIRED,      /* wait for a refresh */
};
enum city_age answer_classify(double age, double ttl, const struct config *config);
/* Whether an answer of this age may stand in, marked stale, for a failed refresh. */
int answer_stale_usable(double age, const struct config *config);

/* body gzip-compressed (new blob; body borrowed), made once with body, and its quoted
 * ETag: etag (quoted) with "-gz" inside the quotes, so that each encoding of a document has
 * its own and a 304 answers for the one it would send. */
struct blob *answer_gzip(const struct blob *body, const char *etag,
                         char gzip_etag[ANSWER_ETAG_SIZE]);

/* An error body {"error": {"code": ..., "message": ...}} (new blob); message NULL: the
 * error's default message. */
struct blob *answer_error_body(enum api_error error, const char *message);

#endif
