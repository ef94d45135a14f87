/* The answer for a city: from the city cache when fresh; otherwise one scrape however many
 * requests wait for it (single-flight); the last good answer, marked stale, while a refresh
 * runs (stale-while-revalidate) or when the refresh failed (stale-if-error). Every answer's
 * body is serialized once per refresh and shared. */
#ifndef MOVIESD_ANSWER_H
#define MOVIESD_ANSWER_H

#include <stddef.h>

#include "util.h"

struct scraper;
struct config;
struct metrics;

struct answer {
    int status;            /* 200, or an error status */
    struct blob *body;     /* borrowed: take a reference to keep it */
    const char *etag;      /* quoted ETag for 200 answers, else NULL */
    long max_age;          /* Cache-Control max-age for 200 answers, -1 for errors */
    long age;              /* seconds since the data was fetched (200 answers) */
    long retry_after;      /* seconds, or -1 */
};

/* Called once with the answer for a waiting request (see answer_city). */
typedef void (*answer_cb)(const struct answer *a, void *arg);

struct answerer;
struct answer_wait;

/* scraper, config and metrics are borrowed; config is read live. */
struct answerer *answerer_new(struct scraper *scraper, const struct config *config,
                              struct metrics *metrics);
void answerer_configure(struct answerer *a);   /* applies a changed cache bound */
void answerer_free(struct answerer *a);        /* drops waiters without calling back */

/* Answers for city (a valid slug). Returns NULL after filling *now when the answer is
 * ready at once; otherwise returns a wait handle and calls cb later (never from inside
 * answer_city). With may_scrape 0 (shutting down) nothing new is scraped: the answer is
 * the cached one, stale if need be, or 503 shutting_down. */
struct answer_wait *answer_city(struct answerer *a, const char *city, int may_scrape,
                                struct answer *now, answer_cb cb, void *arg);
/* Stops waiting: cb will not be called. */
void answer_cancel(struct answer_wait *w);
/* The waiting request's fallback when it cannot wait any longer: the city's last good
 * answer marked stale if it is young enough (returns 1), else 0. */
int answer_fallback(struct answer_wait *w, struct answer *out);
/* Answers every waiting request at once (shutdown): the last good answer, stale, where
 * there is one, else the given error. */
void answerer_fail_all(struct answerer *a, int status, const char *code, const char *message);

size_t answerer_cached_cities(const struct answerer *a);
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

/* An error body {"error": {"code": ..., "message": ...}} (new blob). */
struct blob *answer_error_body(const char *code, const char *message);

#endif
