/* The poster proxy (see posters.h).
 *
 * A poster is asked for by movie id. Held with its bytes: answered at once. Held only as a
 * file (after a restart): a flight reads it through the disk queue, checking its hash;
 * a corrupted file is deleted and the poster fetched again. Not held: the movie's poster
 * URL comes from the records (lookup), is checked to be on Douban's image hosts, and a
 * flight fetches it; every request for that id meanwhile joins the flight. A fetched image
 * is typed from its magic bytes (the upstream's Content-Type is not trusted), put in the
 * store and written to its file through the disk queue.
 *
 * The disk queue runs one job at a time on the pool: a write and a later delete of the same
 * file (evicted at once) can then never cross, and a slow disk costs one worker, never the
 * loop. */
#include "posters.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "fetch.h"
#include "log.h"
#include "pool.h"
#include "poster.h"
#include "poster_store.h"

/* Retry-After of a failed fetch when neither the image host nor the breaker gives one: a
 * poster is not worth asking for again sooner. */
#define POSTER_RETRY_AFTER 30

struct poster_wait {
    struct flight *flight;
    posters_cb cb;
    void *arg;
    LIST_ENTRY(poster_wait) link;
};

enum flight_state { FLIGHT_LOADING, FLIGHT_FETCHING };

struct flight {
    struct posters *p;
    char id[POSTER_ID_MAX + 1];
    enum flight_state state;
    struct fetch_request *fetch;
    LIST_HEAD(, poster_wait) waiters;
    LIST_ENTRY(flight) link;
};

enum disk_kind { DISK_READ, DISK_WRITE, DISK_REMOVE };

/* One job of the disk queue; the worker touches only this. */
struct disk_op {
    struct posters *p;           /* for the loop's side only */
    enum disk_kind kind;
    char *dir;
    char name[POSTER_FILE_NAME_MAX];
    char id[POSTER_ID_MAX + 1];
    uint64_t hash;
    struct blob *data;           /* WRITE: the bytes; READ: the result */
    const char *type;            /* READ's result */
    enum poster_read result;
    int failed;                  /* WRITE failed: err says why */
    char err[256];
    STAILQ_ENTRY(disk_op) link;
};

struct posters {
    struct event_base *base;
    struct fetcher *fetcher;
    struct pool *pool;
    struct poster_store *store;
    char *upstream;              /* poster_upstream: "" fetches from Douban's hosts */
    posters_lookup lookup;
    void *lookup_arg;
    LIST_HEAD(, flight) flights;
    size_t waiting, fetched;
    STAILQ_HEAD(, disk_op) disk;     /* waiting for the worker; the head is running if job */
    struct pool_job *job;
};

static void disk_next(struct posters *p);

/* Fills a with data's answer. */
static void answer_of(struct poster_answer *a, struct blob *data, uint64_t hash, const char *type)
{
    memset(a, 0, sizeof *a);
    a->error = API_ERROR_NONE;
    a->data = data;
    a->type = type;
    snprintf(a->etag, sizeof a->etag, "\"%016" PRIx64 "\"", hash);
    a->retry_after = -1;
}

/* Fills a with error and its message, formatted ("" for the error's default). */
static void __attribute__((format(printf, 4, 5)))
error_of(struct poster_answer *a, enum api_error error, long retry_after, const char *fmt, ...)
{
    memset(a, 0, sizeof *a);
    a->error = error;
    a->retry_after = retry_after;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
}

/* Ends a flight: every waiter gets a, then the flight goes. */
static void flight_finish(struct flight *fl, const struct poster_answer *a)
{
    struct posters *p = fl->p;
    LIST_REMOVE(fl, link);
    struct poster_wait *w;
    while ((w = LIST_FIRST(&fl->waiters)) != NULL) {
        LIST_REMOVE(w, link);
        p->waiting--;
        posters_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(a, arg);
    }
    free(fl);
}

/* Queues a disk job (steals op). */
static void disk_queue(struct posters *p, struct disk_op *op)
{
    op->p = p;
    op->dir = xstrdup(poster_store_dir(p->store));
    STAILQ_INSERT_TAIL(&p->disk, op, link);
    disk_next(p);
}

/* Queues the removal of the files the store has let go. */
static void disk_remove_doomed(struct posters *p)
{
    struct strlist doomed = poster_store_take_doomed(p->store);
    for (size_t i = 0; i < doomed.n; i++) {
        struct disk_op *op = xcalloc(1, sizeof *op);
        op->kind = DISK_REMOVE;
        snprintf(op->name, sizeof op->name, "%s", doomed.v[i]);
        disk_queue(p, op);
    }
    strlist_free(&doomed);
}

/* The worker's side of a disk job. */
static void disk_work(void *arg)
{
    struct disk_op *op = arg;
    switch (op->kind) {
    case DISK_READ:
        op->result = poster_file_read(op->dir, op->name, op->hash, &op->data, &op->type, op->err,
                                      sizeof op->err);
        break;
    case DISK_WRITE:
        op->failed = poster_file_write(op->dir, op->name, op->data->data, op->data->len, op->err,
                                       sizeof op->err) != 0;
        break;
    case DISK_REMOVE:
        poster_file_remove(op->dir, op->name);
        break;
    }
}

static void disk_op_free(void *arg)
{
    struct disk_op *op = arg;
    blob_unref(op->data);
    free(op->dir);
    free(op);
}

static void flight_fetch(struct flight *fl);

/* A file read for a flight is back. */
static void read_done(struct posters *p, struct disk_op *op)
{
    struct flight *fl;
    LIST_FOREACH(fl, &p->flights, link)
        if (fl->state == FLIGHT_LOADING && strcmp(fl->id, op->id) == 0)
            break;
    struct poster_entry *e = poster_store_get(p->store, op->id);
    if (op->result == POSTER_READ_OK && e != NULL && e->hash == op->hash) {
        poster_store_loaded(p->store, e, op->data, op->type);
        if (fl != NULL) {
            struct poster_answer a;
            answer_of(&a, e->data, e->hash, e->type);
            flight_finish(fl, &a);
        }
        return;
    }
    if (op->result == POSTER_READ_OK) {
        /* Evicted while it was read: served once more, from these bytes. */
        if (fl != NULL) {
            struct poster_answer a;
            answer_of(&a, op->data, op->hash, op->type);
            flight_finish(fl, &a);
        }
        return;
    }
    log_warn("poster cache: %s%s", op->err,
             op->result == POSTER_READ_CORRUPT ? "; deleted, fetching the poster again" : "");
    if (e != NULL && e->hash == op->hash)
        poster_store_remove(p->store, op->id);
    if (fl != NULL)
        flight_fetch(fl);
}

/* The loop's side of a disk job: its result used, the next job started. */
static void disk_done(void *arg)
{
    struct disk_op *op = arg;
    struct posters *p = op->p;
    STAILQ_REMOVE_HEAD(&p->disk, link);
    p->job = NULL;
    if (op->kind == DISK_READ)
        read_done(p, op);
    else if (op->kind == DISK_WRITE && op->failed)
        log_warn("poster cache: cannot write %s: %s (served from memory only)", op->name, op->err);
    disk_op_free(op);
    disk_next(p);
}

/* Starts the head of the disk queue unless a job runs. */
static void disk_next(struct posters *p)
{
    if (p->job != NULL || STAILQ_EMPTY(&p->disk))
        return;
    p->job = pool_submit(p->pool, disk_work, disk_done, disk_op_free, STAILQ_FIRST(&p->disk),
                         POOL_FRONT);
}

/* The image host's answer for a flight. */
static void fetch_done(const struct fetch_response *r, void *arg)
{
    struct flight *fl = arg;
    struct posters *p = fl->p;
    fl->fetch = NULL;
    p->fetched++;
    struct poster_answer a;
    const char *type = NULL;
    if (r->outcome == FETCH_DONE && r->status == 200 && (type = poster_sniff(r->body, r->len)) != NULL) {
        struct blob *data = blob_new(r->body, r->len);
        uint64_t hash = hash_fnv1a(data->data, data->len);
        struct poster_entry *e = poster_store_put(p->store, fl->id, data, hash, type);
        disk_remove_doomed(p);
        if (e != NULL && poster_store_dir(p->store)[0] != '\0') {
            struct disk_op *op = xcalloc(1, sizeof *op);
            op->kind = DISK_WRITE;
            poster_file_name(fl->id, hash, op->name);
            op->data = blob_ref(data);
            disk_queue(p, op);
        }
        answer_of(&a, data, hash, type);
        flight_finish(fl, &a);
        blob_unref(data);
        return;
    }
    if (r->outcome == FETCH_DONE && (r->status == 404 || r->status == 410)) {
        error_of(&a, API_ERROR_UNKNOWN_POSTER, -1, "the image host has no poster for movie %s", fl->id);
    } else {
        long retry = r->retry_after > 0 ? r->retry_after : fetch_breaker_remaining(p->fetcher);
        char why[160];
        if (r->outcome == FETCH_DONE && r->status == 200)
            snprintf(why, sizeof why, "the image host answered something that is not an image");
        else
            snprintf(why, sizeof why, "%s", r->error && r->error[0] ? r->error : "fetch failed");
        log_warn("poster of movie %s: %s", fl->id, why);
        error_of(&a, API_ERROR_POSTER_UNAVAILABLE, retry > 0 ? retry : POSTER_RETRY_AFTER,
                 "the poster could not be fetched from the image host: %s", why);
    }
    flight_finish(fl, &a);
}

/* Looks the movie's poster URL up and checks it: the URL to fetch (new), or NULL with the
 * answer in a. */
static char *poster_source(struct posters *p, const char *id, struct poster_answer *a)
{
    char *url = p->lookup(p->lookup_arg, id);
    if (url == NULL) {
        error_of(a, API_ERROR_UNKNOWN_POSTER, -1, "no poster known for movie %s (GET /movies lists movies)", id);
        return NULL;
    }
    char why[160];
    char *fetch = poster_fetch_url(url, p->upstream, why, sizeof why);
    if (fetch == NULL) {
        char shown[200];
        log_escape(url, strlen(url), shown, sizeof shown);
        log_warn("poster of movie %s refused: %s: %s", id, shown, why);
        error_of(a, API_ERROR_UNKNOWN_POSTER, -1,
                 "the poster of movie %s is not on Douban's image hosts: not fetched", id);
    }
    free(url);
    return fetch;
}

/* Fetches the flight's poster (after a failed file read: the answer may be an error). */
static void flight_fetch(struct flight *fl)
{
    struct poster_answer a;
    char *url = poster_source(fl->p, fl->id, &a);
    if (url == NULL) {
        flight_finish(fl, &a);
        return;
    }
    fl->state = FLIGHT_FETCHING;
    fl->fetch = fetch_start(fl->p->fetcher, url, FETCH_NORMAL, fetch_done, fl);
    free(url);
}

struct posters *posters_new(struct event_base *base, const struct config *config, struct pool *pool,
                            posters_lookup lookup, void *lookup_arg, char *err, size_t errlen)
{
    struct poster_store *store = poster_store_open(config->poster_cache_dir,
                                                   (size_t)config->poster_cache_max_bytes, err, errlen);
    if (store == NULL)
        return NULL;
    struct posters *p = xcalloc(1, sizeof *p);
    p->base = base;
    p->pool = pool;
    p->store = store;
    p->lookup = lookup;
    p->lookup_arg = lookup_arg;
    p->upstream = xstrdup(config->poster_upstream);
    LIST_INIT(&p->flights);
    STAILQ_INIT(&p->disk);

    /* The image host's own fetcher: the pages' settings, with the poster budget and size. */
    struct config c;
    config_copy(&c, config);
    free(c.upstream);
    c.upstream = xstrdup(p->upstream[0] ? p->upstream : "https://img1.doubanio.com");
    c.min_request_interval_ms = config->poster_min_request_interval_ms;
    c.max_requests_per_minute = config->poster_max_requests_per_minute;
    c.max_body_size = POSTER_MAX_BYTES;
    p->fetcher = fetcher_new(base, &c, NULL);
    config_free(&c);
    if (p->upstream[0] == '\0') {
        /* Douban spreads its images over img1 to img9 (img<N>: poster_fetch_url). */
        for (int n = 0; n <= 9; n++) {
            char origin[40], why[128];
            snprintf(origin, sizeof origin, "https://img%d.doubanio.com", n);
            if (fetch_allow_origin(p->fetcher, origin, why, sizeof why) != 0)
                log_error("poster origin %s: %s", origin, why);
        }
    }
    log_info("poster cache: %zu posters (%zu bytes) in %s, at most %lld bytes", poster_store_count(store),
             poster_store_bytes(store), config->poster_cache_dir[0] ? config->poster_cache_dir : "memory",
             config->poster_cache_max_bytes);
    return p;
}

void posters_free(struct posters *p)
{
    if (p == NULL)
        return;
    struct flight *fl;
    while ((fl = LIST_FIRST(&p->flights)) != NULL) {
        LIST_REMOVE(fl, link);
        fetch_cancel(fl->fetch);
        struct poster_wait *w;
        while ((w = LIST_FIRST(&fl->waiters)) != NULL) {
            LIST_REMOVE(w, link);
            free(w);
        }
        free(fl);
    }
    /* The running job is the pool's to discard; the waiting ones are ours. */
    struct disk_op *op = STAILQ_FIRST(&p->disk);
    if (p->job != NULL) {
        STAILQ_REMOVE_HEAD(&p->disk, link);
        pool_cancel(p->job);
    }
    while ((op = STAILQ_FIRST(&p->disk)) != NULL) {
        STAILQ_REMOVE_HEAD(&p->disk, link);
        disk_op_free(op);
    }
    fetcher_free(p->fetcher);
    poster_store_free(p->store);
    free(p->upstream);
    free(p);
}

struct poster_wait *posters_get(struct posters *p, const char *id, struct poster_answer *now,
                                posters_cb cb, void *arg)
{
    if (!poster_id_valid(id)) {
        error_of(now, API_ERROR_UNKNOWN_POSTER, -1, "a movie id is 1 to 20 digits");
        return NULL;
    }
    struct poster_entry *e = poster_store_get(p->store, id);
    if (e != NULL && e->data != NULL) {
        answer_of(now, e->data, e->hash, e->type);
        return NULL;
    }
    struct flight *fl;
    LIST_FOREACH(fl, &p->flights, link)
        if (strcmp(fl->id, id) == 0)
            break;
    if (fl == NULL) {
        char *url = NULL;
        if (e == NULL && (url = poster_source(p, id, now)) == NULL)
            return NULL;
        fl = xcalloc(1, sizeof *fl);
        fl->p = p;
        snprintf(fl->id, sizeof fl->id, "%s", id);
        LIST_INIT(&fl->waiters);
        LIST_INSERT_HEAD(&p->flights, fl, link);
        if (e != NULL) {
            fl->state = FLIGHT_LOADING;
            struct disk_op *op = xcalloc(1, sizeof *op);
            op->kind = DISK_READ;
            snprintf(op->id, sizeof op->id, "%s", id);
            op->hash = e->hash;
            poster_file_name(id, e->hash, op->name);
            disk_queue(p, op);
        } else {
            fl->state = FLIGHT_FETCHING;
            fl->fetch = fetch_start(p->fetcher, url, FETCH_NORMAL, fetch_done, fl);
            free(url);
        }
    }
    struct poster_wait *w = xcalloc(1, sizeof *w);
    w->flight = fl;
    w->cb = cb;
    w->arg = arg;
    LIST_INSERT_HEAD(&fl->waiters, w, link);
    p->waiting++;
    return w;
}

void posters_cancel(struct poster_wait *w)
{
    if (w == NULL)
        return;
    LIST_REMOVE(w, link);
    w->flight->p->waiting--;
    free(w);
}

void posters_fail_all(struct posters *p, enum api_error error, const char *message)
{
    struct poster_answer a;
    error_of(&a, error, error == API_ERROR_SHUTTING_DOWN ? 1 : -1, "%s", message ? message : "");
    struct flight *fl;
    LIST_FOREACH(fl, &p->flights, link) {
        struct poster_wait *w;
        while ((w = LIST_FIRST(&fl->waiters)) != NULL) {
            LIST_REMOVE(w, link);
            p->waiting--;
            posters_cb cb = w->cb;
            void *cb_arg = w->arg;
            free(w);
            cb(&a, cb_arg);
        }
    }
}

size_t posters_waiting(const struct posters *p)
{
    return p->waiting;
}

size_t posters_cached(const struct posters *p)
{
    return poster_store_count(p->store);
}

size_t posters_cached_bytes(const struct posters *p)
{
    return poster_store_bytes(p->store);
}

size_t posters_fetched(const struct posters *p)
{
    return p->fetched;
}

size_t posters_queued(const struct posters *p)
{
    return fetch_queue_length(p->fetcher);
}

long posters_breaker_remaining(const struct posters *p)
{
    return fetch_breaker_remaining(p->fetcher);
}

char *posters_metrics(const struct posters *p)
{
    long left = posters_breaker_remaining(p);
    return xasprintf("# HELP moviesd_posters_cached Posters held by the poster cache.\n"
                     "# TYPE moviesd_posters_cached gauge\n"
                     "moviesd_posters_cached %zu\n"
                     "# HELP moviesd_poster_cache_bytes Bytes charged to poster_cache_max_bytes.\n"
                     "# TYPE moviesd_poster_cache_bytes gauge\n"
                     "moviesd_poster_cache_bytes %zu\n"
                     "# HELP moviesd_poster_fetches_total Poster fetches from the image host, any outcome.\n"
                     "# TYPE moviesd_poster_fetches_total counter\n"
                     "moviesd_poster_fetches_total %zu\n"
                     "# HELP moviesd_poster_queued Poster fetches waiting for their turn.\n"
                     "# TYPE moviesd_poster_queued gauge\n"
                     "moviesd_poster_queued %zu\n"
                     "# HELP moviesd_poster_breaker_open Whether the image host's breaker is open.\n"
                     "# TYPE moviesd_poster_breaker_open gauge\n"
                     "moviesd_poster_breaker_open %d\n",
                     posters_cached(p), posters_cached_bytes(p), posters_fetched(p), posters_queued(p),
                     left > 0);
}
