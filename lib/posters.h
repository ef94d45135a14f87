/* The poster proxy: GET /posters/<movie id> served from a bounded cache (poster_store.h),
 * filled from Douban's image hosts through a fetcher of its own, with its own spacing,
 * per-minute budget and breaker, so that the image host refusing us never holds up the
 * pages, nor the pages' budget the images. One fetch per poster however many requests
 * want it (single-flight); files are read, written and deleted by the parse pool's
 * workers, one at a time, never on the loop. */
#ifndef MOVIESD_POSTERS_H
#define MOVIESD_POSTERS_H

#include <stddef.h>

#include "error.h"
#include "util.h"

struct event_base;
struct config;
struct pool;
struct posters;
struct poster_wait;

/* A poster, or why there is none. */
struct poster_answer {
    enum api_error error;   /* API_ERROR_NONE, API_ERROR_UNKNOWN_POSTER, API_ERROR_POSTER_UNAVAILABLE
                             * or API_ERROR_SHUTTING_DOWN */
    struct blob *data;      /* the image (borrowed: take a reference to keep it); NULL on error */
    const char *type;       /* its Content-Type, from its magic bytes */
    char etag[20];          /* quoted: a hash of the bytes */
    long retry_after;       /* seconds, for POSTER_UNAVAILABLE; -1 otherwise */
    char message[256];      /* "" for the error's default */
};

typedef void (*posters_cb)(const struct poster_answer *a, void *arg);
/* The poster URL of a listed movie (new string), or NULL when moviesd has not listed it. */
typedef char *(*posters_lookup)(void *arg, const char *id);

/* A proxy on base reading config (borrowed; read at start: poster_*, user_agent, timeouts,
 * breaker settings), its files handled by pool (borrowed; it must outlive the proxy), its
 * URLs found through lookup(lookup_arg, id). NULL with the reason in err when the cache
 * directory cannot be used. */
struct posters *posters_new(struct event_base *base, const struct config *config, struct pool *pool,
                            posters_lookup lookup, void *lookup_arg, char *err, size_t errlen);
/* Cancels everything without calling back. Accepts NULL. */
void posters_free(struct posters *p);

/* The poster of movie id (any string: one that is not digits is unknown). Returns NULL
 * after filling *now when the answer is ready at once; otherwise a wait handle, and cb is
 * called once later from the loop (never from inside posters_get). */
struct poster_wait *posters_get(struct posters *p, const char *id, struct poster_answer *now,
                                posters_cb cb, void *arg);
/* Stops waiting: cb will not be called. The fetch goes on and fills the cache. */
void posters_cancel(struct poster_wait *w);
/* Answers every waiting request with error (shutdown); message NULL: the default. */
void posters_fail_all(struct posters *p, enum api_error error, const char *message);

size_t posters_waiting(const struct posters *p);
size_t posters_cached(const struct posters *p);          /* posters held */
size_t posters_cached_bytes(const struct posters *p);
size_t posters_fetched(const struct posters *p);         /* upstream fetches completed, any outcome */
size_t posters_queued(const struct posters *p);          /* fetches waiting for their turn */
long posters_breaker_remaining(const struct posters *p); /* seconds the image host's breaker stays open */
/* The proxy's series for /metrics, Prometheus text format (new string). */
char *posters_metrics(const struct posters *p);

#endif
