/* The HTTP front: libmicrohttpd without threads of its own, driven from the loop.
 *
 * MHD's epoll fd is a persistent read event; after every MHD_run() its timeout re-arms a
 * timer (a connection that is never run again would hang). A /movies request that must
 * wait for a scrape is suspended; it has its own deadline because a suspended connection
 * never times out in MHD. Whatever ends the wait (answer, deadline, shutdown, the client
 * leaving) prepares the response, resumes the connection and asks the loop to run MHD:
 * never MHD_run() from inside another library's callback.
 *
 * Each client connection is also watched here, beside MHD, for what MHD 0.9.75 does not
 * see or has no setting for:
 *   - a deadline from accept (or from the first byte of a later request on a kept-alive
 *     connection) to a complete request, request_header_timeout: MHD's only timeout is an
 *     idle one, which every byte restarts, so a client sending a byte every few seconds
 *     held its slot for ever. Connections receiving a request wait in a queue, oldest
 *     first (one duration for all), under one timer; past the deadline the client gets a
 *     408 written on the socket (MHD has sent nothing for that request) and the socket is
 *     shut, which MHD sees as a hang-up and closes;
 *   - the client leaving: its FIN or reset, seen by an edge-triggered event on the socket.
 *     MHD does not watch a suspended connection at all. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <linux/tcp.h>   /* the kernel's struct tcp_info: glibc's lacks tcpi_bytes_received */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "cities.h"
#include "cors.h"
#include "douban.h"
#include "error.h"
#include "events.h"
#include "fetch.h"
#include "fleet.h"
#include "headers.h"
#include "kind.h"
#include "log.h"
#include "movie.h"
#include "metrics.h"
#include "embedded.h"
#include "page.h"
#include "pool.h"
#include "posters.h"
#include "redis.h"
#include "scrape.h"
#include "server.h"
#include "util.h"
#include "views.h"

struct request;
struct stream;

/* What a request waiting for a city's answer is answered with once it comes. */
enum answer_kind {
    ANSWER_JSON,     /* GET /movies */
    ANSWER_STREAM,   /* GET /movies/events */
    ANSWER_PAGE,     /* GET /?city= */
};

/* One client connection (MHD's socket context). */
struct conn {
    struct server *server;
    struct MHD_Connection *connection;
    int fd;
    struct event *watch;           /* edge-triggered: new bytes, the client's FIN, a reset */
    struct request *rq;            /* the request MHD is handling on it, if any */
    double receiving_since;        /* > 0 while a request arrives: its header deadline's start */
    TAILQ_ENTRY(conn) receiving;   /* in http.receiving while receiving_since > 0 */
    int unread_queued;             /* in http.unread */
    LIST_ENTRY(conn) unread;
    uint64_t received_at_rest;     /* bytes the client had sent when its last request ended */
    int peer_gone;                 /* the client sent its FIN, or reset */
    int probed;                    /* a 100 Continue went out to learn whether it still reads */
};

struct request {
    struct server *server;
    struct conn *conn;
    struct MHD_Connection *connection;
    double started;
    char method[12];
    int head;                      /* HEAD: headers only, no body bytes sent */
    const char *route;             /* metrics label */
    int view;                      /* 1 + enum view_kind for a calendar or a feed, 0 for JSON */
    char target[160];              /* path and query for the access log, escaped */
    int status;
    size_t bytes;
    struct answer_wait *wait;      /* while waiting */
    struct poster_wait *poster_wait;  /* while waiting for a poster */
    enum answer_kind kind;         /* what its answer becomes */
    char city[KIND_KEY_SIZE];      /* what it waits for: a valid slug, with its kind's prefix */
    struct stream *stream;         /* GET /movies/events once its stream began */
    struct event *deadline;
    struct MHD_Response *response; /* prepared while waiting, queued on the next handler call */
    int response_made_once;        /* the response handed to MHD is the table's: not ours to destroy */
    int waiting;                   /* for an answer, in http.waiting */
    int suspended;                 /* by MHD_suspend_connection */
    int http11;                    /* HTTP/1.1 or later: an interim 1xx may be sent */
    int routed;                    /* the whole request is in: its header deadline is over */
    int abandoned;                 /* its client left while it waited: the connection closes */
    LIST_ENTRY(request) link;
    int began;                     /* the access handler has seen its headers */
    int answered_in_place;         /* answered by answer_in_place_of_mhd() */
    int in_head;                   /* in http.heads */
    LIST_ENTRY(request) head_link;
};

/* Repeated log lines, one a second at most for each kind: the first at once, then, for as
 * long as more come, one line a second with their count ("... (and 249 more in the last
 * second)"). A client can have the same line written thousands of times a second (every
 * connection refused at a limit): the log must stay readable and cheap. Kinds are told
 * apart by their format, and by their text when the format is a bare "%s". */
#define BURST_KINDS 16
struct burst {
    const char *fmt;               /* NULL: a free slot */
    enum log_level level;
    double since;                  /* the second being counted began */
    unsigned long more;            /* lines held back in it */
    char text[512];                /* the first line (its key when fmt is "%s"), then the latest */
};

/* GET /cities may be kept this long by clients and caches: the table changes only with a
 * new build. */
#define CITIES_MAX_AGE 86400

/* GET /openapi.json changes only with a new build too; a day, as for /cities. */
#define OPENAPI_MAX_AGE 86400

/* CORS: what a browser's preflight is told (cors_headers() adds the rest). The headers are
 * those a page may set that are not CORS-safelisted: revalidation, and EventSource's
 * reconnection. */
#define CORS_ALLOW_METHODS "GET, HEAD, OPTIONS"
#define CORS_ALLOW_HEADERS "If-None-Match, If-Modified-Since, Cache-Control, Last-Event-ID"
#define CORS_EXPOSE_HEADERS "ETag, Age, Retry-After"
#define CORS_MAX_AGE "86400"

/* Responses made once (see "responses made once" below): entries kept, and how long one
 * stays unasked before it goes. */
#define MADE_ENTRIES 64
#define MADE_WAYS 4
#define MADE_IDLE 2.0

/* A response made for one (encoding, status) of a document, for one (age, max-age). */
struct made_response {
    struct MHD_Response *response; /* our reference, or NULL */
    long age, max_age;
};

/* The responses made for one document key (a city's slug, or "/cities"). */
struct made_entry {
    char key[KIND_KEY_SIZE + 8];   /* a kind's key, or "atom:" and one; "" while free */
    struct blob *body;             /* a reference to the plain body they send: its identity */
    double last_used;
    struct made_response made[2][2];   /* [gzip][304] */
};

struct http {
    struct MHD_Daemon *mhd;
    struct blob *cities_body;      /* GET /cities, made once at start, and gzip-compressed */
    struct blob *cities_gzip;
    char cities_etag[20];
    char cities_gzip_etag[ANSWER_ETAG_SIZE];
    struct blob *openapi_body;     /* GET /openapi.json: docs/openapi.json, built in */
    struct blob *openapi_gzip;
    char openapi_etag[20];
    char openapi_gzip_etag[ANSWER_ETAG_SIZE];
    struct made_entry made[MADE_ENTRIES];
    struct views *views;           /* the calendars and feeds of answers, rendered once */
    size_t made_used;              /* entries not free */
    struct event *made_sweep;      /* drops entries unasked for MADE_IDLE */
    struct event *epoll_ready;
    struct event *timeout;
    struct event *run_now;
    LIST_HEAD(, request) waiting;
    size_t nwaiting;
    LIST_HEAD(, request) heads;    /* request line read, headers not yet in handle() */
    struct request *in_line;       /* the request whose request line MHD is parsing */
    const char *in_line_uri;
    size_t in_place_open;          /* answered in place, connection not yet closed by MHD */
    TAILQ_HEAD(, conn) receiving;  /* connections whose request is not complete, oldest first */
    struct event *header_timer;    /* the oldest of them reaches request_header_timeout */
    LIST_HEAD(, conn) unread;      /* clients gone with bytes MHD has yet to read */
    struct blob *timeout_body;     /* the 408's JSON body */
    int closing_quietly;           /* the handler closes an abandoned connection */
    struct burst bursts[BURST_KINDS];
    struct event *burst_timer;
    LIST_HEAD(, stream) streams;   /* GET /movies/events responses under way */
    struct blob *parsed_body;      /* the last answer body parsed for a page or a stream */
    json_t *parsed;                /* and its document (or NULL if it was not JSON) */
    struct blob *assets[2];        /* /page.js, /page.css */
    char asset_etags[2][20];
};

static void trigger_run(struct server *s);
static void arm_in(struct event *timer, double seconds);
static void recheck_unread(struct server *s);
static int name_is(const char *key, size_t n, const char *name);

/* Runs MHD and re-arms its timer: the one place MHD_run is called. */
static void run_mhd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct http *h = s->http;
    size_t before = http_connections(s);
    MHD_run(h->mhd);
    recheck_unread(s);
    /* At its connection limit MHD takes the listening socket out of its epoll set, and puts
     * it back only at the start of a later run: when connections closed in this run, that
     * run must come now, or nothing wakes MHD and it never accepts again. */
    if (http_connections(s) < before)
        trigger_run(s);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(h->timeout, &tv);
    } else {
        evtimer_del(h->timeout);
    }
}

/* Asks the loop to run MHD soon (after a resume). */
static void trigger_run(struct server *s)
{
    event_active(s->http->run_now, 0, 0);
}

/* MHD's buffer-free callback for shared bodies. */
static void release_blob(void *cls)
{
    blob_unref(cls);
}

/* A response whose body is a shared blob (borrowed; the response takes a reference);
 * counts its bytes. */
static struct MHD_Response *blob_response(struct request *rq, struct blob *body)
{
    rq->bytes = rq->head ? 0 : body->len;
    metrics_response_made(rq->server->metrics);
    return MHD_create_response_from_buffer_with_free_callback_cls(body->len, body->data, release_blob,
                                                                 blob_ref(body));
}

/* MHD's body reader for a response whose body is never sent. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* The empty response of a 304 Not Modified, without Content-Length: a 304 has no content
 * (RFC 9110 15.4.5), and a Content-Length there may only repeat the 200's (8.6), never 0.
 * MHD 0.9.75 writes Content-Length for any response of known size, even for a 304, and
 * Transfer-Encoding: chunked for one of unknown size, except in its HTTP/1.0-compatible mode,
 * which also closes the connection after the response: that is the price of neither. */
static struct MHD_Response *not_modified_response(struct request *rq)
{
    rq->bytes = 0;
    metrics_response_made(rq->server->metrics);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, no_body, NULL, NULL);
    if (r != NULL)
        MHD_set_response_options(r, MHD_RF_HTTP_VERSION_1_0_ONLY, MHD_RO_END);
    return r;
}

/* Adds the headers every response carries. */
static void common_headers(struct server *s, struct MHD_Response *r, const char *content_type)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (s->draining)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Adds Retry-After when there is a time to give. */
static void add_retry_after(struct MHD_Response *r, long seconds)
{
    if (seconds < 0)
        return;
    char value[32];
    snprintf(value, sizeof value, "%ld", seconds);
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, value);
}

/* The response for an error whose JSON body is made: the error table gives the status and
 * whether retry_after (seconds, or -1 for none) is sent. Sets rq->status. */
static struct MHD_Response *error_body_response(struct request *rq, enum api_error error,
                                                struct blob *body, long retry_after)
{
    const struct api_error_info *info = api_error_info(error);
    rq->status = info->status;
    struct MHD_Response *r = blob_response(rq, body);
    common_headers(rq->server, r, "application/json; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (info->retry_after)
        add_retry_after(r, retry_after);
    return r;
}

/* A JSON error response {"error": {"code", "message"}}; message NULL: the error's default.
 * Sets rq->status. */
static struct MHD_Response *error_response(struct request *rq, enum api_error error, const char *message)
{
    struct blob *body = answer_error_body(error, message);
    struct MHD_Response *r = error_body_response(rq, error, body, -1);
    blob_unref(body);
    return r;
}

/* An uncacheable response with a body made for this request (steals text). */
static struct MHD_Response *text_response(struct request *rq, char *text, const char *content_type)
{
    struct blob *body = blob_new(text, strlen(text));
    free(text);
    struct MHD_Response *r = blob_response(rq, body);
    blob_unref(body);
    common_headers(rq->server, r, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}

/* A JSON document built with jansson (steals doc). */
static struct MHD_Response *json_response(struct request *rq, json_t *doc)
{
    char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
    json_decref(doc);
    return text_response(rq, text, "application/json; charset=utf-8");
}

/* --- responses made once -----------------------------------------------------------------
 * A cached answer is the same bytes for every request until the next refresh; only Age
 * and Cache-Control's max-age move, once a second. So the response object of a document,
 * for each encoding and for 200 and 304, is made once for its (age, max-age) and queued for
 * every request that gets it: MHD counts the connections holding a response, and the
 * table's own reference is dropped when it is replaced, while connections still sending it
 * keep theirs. An entry belongs to a document key (a city's slug, "/cities") and holds a
 * reference to the plain body its responses send: a refresh makes a new blob, whose
 * address cannot be an old one's while the entry holds that, and the entry's responses are
 * then made anew. Entries sit in MADE_WAYS neighbouring slots of their key's hash, and go
 * when unasked for MADE_IDLE seconds: what they hold beside the caches' byte bound is what
 * was served in the last seconds. Only requests answered at once share them: a response
 * prepared for a waiting request is queued later, when the table may have replaced it. */

/* Drops an entry's responses and body, leaving it free. */
static void made_clear(struct http *h, struct made_entry *e)
{
    if (e->key[0] == '\0')
        return;
    for (int g = 0; g < 2; g++)
        for (int nm = 0; nm < 2; nm++)
            if (e->made[g][nm].response != NULL)
                MHD_destroy_response(e->made[g][nm].response);
    blob_unref(e->body);
    memset(e, 0, sizeof *e);
    h->made_used--;
}

/* The sweep: entries unasked for MADE_IDLE seconds go; it comes back while any are left. */
static void made_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    double now = clock_monotonic();
    for (size_t i = 0; i < MADE_ENTRIES; i++)
        if (h->made[i].key[0] != '\0' && now - h->made[i].last_used >= MADE_IDLE)
            made_clear(h, &h->made[i]);
    if (h->made_used > 0) {
        struct timeval tv = {1, 0};
        evtimer_add(h->made_sweep, &tv);
    }
}

/* The slot of key's document body in (encoding, status), its entry taken (from a free slot
 * or the least recently used of its ways) or made anew for body if need be. */
static struct made_response *made_slot(struct http *h, const char *key, struct blob *body, int gzip,
                                       int not_modified)
{
    size_t first = (size_t)(hash_fnv1a(key, strlen(key)) % MADE_ENTRIES);
    struct made_entry *e = NULL;
    for (size_t w = 0; w < MADE_WAYS && e == NULL; w++) {
        struct made_entry *c = &h->made[(first + w) % MADE_ENTRIES];
        if (strcmp(c->key, key) == 0)
            e = c;
    }
    for (size_t w = 0; w < MADE_WAYS && e == NULL; w++) {
        struct made_entry *c = &h->made[(first + w) % MADE_ENTRIES];
        if (c->key[0] == '\0')
            e = c;
    }
    if (e == NULL) {
        e = &h->made[first];
        for (size_t w = 1; w < MADE_WAYS; w++) {
            struct made_entry *c = &h->made[(first + w) % MADE_ENTRIES];
            if (c->last_used < e->last_used)
                e = c;
        }
    }
    if (strcmp(e->key, key) != 0 || e->body != body) {
        made_clear(h, e);
        snprintf(e->key, sizeof e->key, "%s", key);
        e->body = blob_ref(body);
        h->made_used++;
        if (!evtimer_pending(h->made_sweep, NULL)) {
            struct timeval tv = {(time_t)MADE_IDLE, 0};
            evtimer_add(h->made_sweep, &tv);
        }
    }
    e->last_used = clock_monotonic();
    return &e->made[gzip != 0][not_modified != 0];
}

/* Drops every made response (at stop). */
static void made_clear_all(struct http *h)
{
    for (size_t i = 0; i < MADE_ENTRIES; i++)
        made_clear(h, &h->made[i]);
}

/* MHD's header iterator: joins the values of every field named as the join asks (a list
 * may come in several fields, RFC 9110 5.3). */
struct field_join {
    const char *name;
    const char *value;             /* the first field's, or owned */
    char *owned;                   /* the values joined by commas, from a second field on */
};

static enum MHD_Result join_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                  const char *value, size_t value_size)
{
    (void)kind;
    struct field_join *j = cls;
    if (!name_is(key, key_size, j->name))
        return MHD_YES;
    if (j->value == NULL) {
        j->value = value;
        return MHD_YES;
    }
    char *joined = xasprintf("%s,%.*s", j->value, (int)value_size, value);
    free(j->owned);
    j->owned = joined;
    j->value = joined;
    return MHD_YES;
}

/* The value of rq's header fields called name, joined; NULL when none. Free *owned after. */
static const char *field_value(struct request *rq, const char *name, char **owned)
{
    struct field_join j = {name, NULL, NULL};
    MHD_get_connection_values_n(rq->connection, MHD_HEADER_KIND, join_field, &j);
    *owned = j.owned;
    return j.value;
}

/* --- CORS ---------------------------------------------------------------------------------
 * cors_origins decides, for every response, whether a page of another origin may read it.
 * The headers are added in one place, queue_response(), through which every response MHD
 * sends passes (errors and 304s too); the two written on the socket itself, the 408 and the
 * answers given in MHD's place, carry "*" when that is the setting (their request's Origin
 * is not known). A response made once is shared by every request it is queued for: it gets
 * the headers when it is first queued, and a request whose Origin is echoed (a listed one)
 * never shares one (document_response makes it its own). */

/* The Access-Control-Allow-Origin value for rq's answer, or NULL for none; *owned is to be
 * freed after. */
static const char *cors_allow(struct request *rq, char **owned)
{
    const char *origins = rq->server->config.cors_origins;
    *owned = NULL;
    if (cors_mode_of(origins) != CORS_LIST)
        return cors_allow_origin(origins, NULL);
    return cors_allow_origin(origins, field_value(rq, "Origin", owned));
}

/* Whether rq's answer names its own Origin, so that no other request may share it. */
static int cors_echoes(struct request *rq)
{
    if (cors_mode_of(rq->server->config.cors_origins) != CORS_LIST)
        return 0;
    char *owned;
    int echoes = cors_allow(rq, &owned) != NULL;
    free(owned);
    return echoes;
}

/* Adds the CORS headers of rq's answer to r, unless it has them (a made-once response
 * queued before). */
static void cors_headers(struct request *rq, struct MHD_Response *r)
{
    enum cors_mode mode = cors_mode_of(rq->server->config.cors_origins);
    if (mode == CORS_OFF || MHD_get_response_header(r, "Access-Control-Expose-Headers") != NULL)
        return;
    char *owned;
    const char *allow = cors_allow(rq, &owned);
    if (allow != NULL)
        MHD_add_response_header(r, "Access-Control-Allow-Origin", allow);
    free(owned);
    /* A listed origin is echoed: caches must keep one answer per Origin. */
    if (mode == CORS_LIST)
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

/* The CORS header line of a response written on the socket, for a request not parsed. */
static const char *cors_raw_line(const struct server *s)
{
    return cors_mode_of(s->config.cors_origins) == CORS_ANY ? "Access-Control-Allow-Origin: *\r\n" : "";
}

/* OPTIONS on a known path: 204 with what the path allows; a CORS preflight also learns what
 * a page may send, and for how long it may remember it. Sets rq->status. */
static struct MHD_Response *options_response(struct request *rq)
{
    rq->status = MHD_HTTP_NO_CONTENT;
    rq->bytes = 0;
    metrics_response_made(rq->server->metrics);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, CORS_ALLOW_METHODS);
    if (rq->server->draining)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (cors_mode_of(rq->server->config.cors_origins) != CORS_OFF) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        MHD_add_response_header(r, "Access-Control-Max-Age", CORS_MAX_AGE);
    }
    return r;
}

/* Adds the headers of a document's response: max_age, Age when age is not negative, the
 * ETag, the encoding. */
static void document_headers(struct server *s, struct MHD_Response *r, const char *content_type,
                             const char *etag, int gzip, int not_modified, long max_age, long age)
{
    common_headers(s, r, content_type);
    char value[64];
    snprintf(value, sizeof value, "public, max-age=%ld", max_age);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, value);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    /* Caches keep one answer per encoding: the two bodies are of one URL. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (gzip && !not_modified)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (age >= 0) {
        snprintf(value, sizeof value, "%ld", age);
        MHD_add_response_header(r, MHD_HTTP_HEADER_AGE, value);
    }
}

/* The response of document doc (key names it: a city, "/cities"; doc->age -1: no Age
 * header) to rq: the body in the encoding rq takes, with that body's ETag, or 304 when
 * If-None-Match names it. answered_now: queued at once, so it may be a made-once one
 * (never while draining, when each says Connection: close). Sets rq->status. */
static struct MHD_Response *document_response(struct request *rq, const char *key,
                                              const struct answer *doc, int answered_now)
{
    struct server *s = rq->server;
    char *owned;
    const char *accept = field_value(rq, MHD_HTTP_HEADER_ACCEPT_ENCODING, &owned);
    int gzip = doc->gzip != NULL && headers_accept_gzip(accept);
    free(owned);
    struct blob *body = gzip ? doc->gzip : doc->body;
    const char *etag = gzip ? doc->gzip_etag : doc->etag;
    const char *inm = field_value(rq, MHD_HTTP_HEADER_IF_NONE_MATCH, &owned);
    int not_modified = headers_etag_match(inm, etag);
    free(owned);
    rq->status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    struct made_response *made = NULL;
    if (answered_now && !s->draining && !cors_echoes(rq)) {
        made = made_slot(s->http, key, doc->body, gzip, not_modified);
        if (made->response != NULL && made->age == doc->age && made->max_age == doc->max_age) {
            rq->bytes = not_modified || rq->head ? 0 : body->len;
            rq->response_made_once = 1;
            return made->response;
        }
    }
    struct MHD_Response *r = not_modified ? not_modified_response(rq) : blob_response(rq, body);
    const char *type = rq->view ? views_content_type((enum view_kind)(rq->view - 1))
                                : "application/json; charset=utf-8";
    document_headers(s, r, type, etag, gzip, not_modified, doc->max_age, doc->age);
    if (made != NULL) {
        if (made->response != NULL)
            MHD_destroy_response(made->response);
        *made = (struct made_response){r, doc->age, doc->max_age};
        rq->response_made_once = 1;
    }
    return r;
}

/* The response for a city's answer, honouring Accept-Encoding and If-None-Match (see
 * document_response). Sets rq->status. */
static struct MHD_Response *answer_response(struct request *rq, const char *city, const struct answer *a,
                                            int answered_now)
{
    if (a->error != API_ERROR_NONE)
        return error_body_response(rq, a->error, a->body, a->retry_after);
    if (rq->view == 0)
        return document_response(rq, city, a, answered_now);
    /* A calendar or feed: rendered from the answer, under a key of its own. */
    struct server *s = rq->server;
    struct view_options options = {.base = s->config.public_url,
                                   .refresh_seconds = (long)s->config.listing_ttl};
    struct answer rendered;
    views_answer(s->http->views, (enum view_kind)(rq->view - 1), a, &options, &rendered);
    static const char *const prefix[] = {[VIEW_ICS] = "ics", [VIEW_ATOM] = "atom", [VIEW_RSS] = "rss"};
    char key[sizeof ((struct made_entry *)0)->key];   /* "atom:" and a kind's key fit */
    snprintf(key, sizeof key, "%s:%s", prefix[rq->view - 1], city ? city : "");
    return document_response(rq, key, &rendered, answered_now);
}

/* Ends a request's wait with a prepared response (NULL when abandoned), to be queued by the
 * handler's next call. */
static void resume_with(struct request *rq, struct MHD_Response *response)
{
    struct server *s = rq->server;
    rq->response = response;
    rq->wait = NULL;
    rq->poster_wait = NULL;
    if (rq->deadline) {
        event_free(rq->deadline);
        rq->deadline = NULL;
    }
    LIST_REMOVE(rq, link);
    s->http->nwaiting--;
    rq->waiting = 0;
    if (rq->suspended) {
        rq->suspended = 0;
        MHD_resume_connection(rq->connection);
    }
    trigger_run(s);
}

/* A waiting request whose client has left: it stops waiting (the scrape goes on where
 * the answerer wants it) and its connection is resumed only to be closed. */
static void abandon(struct request *rq)
{
    answer_cancel(rq->wait);
    rq->wait = NULL;
    posters_cancel(rq->poster_wait);
    rq->poster_wait = NULL;
    rq->abandoned = 1;
    rq->status = 499;   /* nginx's "client closed request", for the log and the metrics */
    resume_with(rq, NULL);
}

/* --- the page and the event stream ----------------------------------------------------- */

/* The document of an answer body, parsed once for every page and stream that gets the same
 * body in a row (borrowed, valid until the next call; NULL if it is not JSON). */
static const json_t *parsed_answer(struct http *h, struct blob *body)
{
    if (h->parsed_body != body) {
        blob_unref(h->parsed_body);
        json_decref(h->parsed);
        h->parsed_body = blob_ref(body);
        h->parsed = json_loadb(body->data, body->len, 0, NULL);
    }
    return h->parsed;
}

/* Adds the headers of the page and its assets: nothing from elsewhere may load. */
static void page_headers(struct server *s, struct MHD_Response *r, const char *content_type)
{
    common_headers(s, r, content_type);
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "same-origin");
}

/* The page (rendered for this request): the picker alone without city, else city's cards
 * from a, or the message of a's error with its status. Sets rq->status. */
static struct MHD_Response *page_response(struct request *rq, const char *city, const struct answer *a)
{
    const json_t *doc = NULL;
    const char *notice = NULL;
    rq->status = MHD_HTTP_OK;
    if (a != NULL && a->error != API_ERROR_NONE) {
        rq->status = api_error_info(a->error)->status;
        const json_t *err = parsed_answer(rq->server->http, a->body);
        notice = json_string_value(json_object_get(json_object_get(err, "error"), "message"));
        if (notice == NULL)
            notice = api_error_message(a->error);
    } else if (a != NULL) {
        doc = parsed_answer(rq->server->http, a->body);
        if (doc == NULL) {
            rq->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            notice = "the answer could not be read";
        }
    }
    char *html = page_render(city, doc, notice);
    struct blob *body = blob_new(html, strlen(html));
    free(html);
    struct MHD_Response *r = blob_response(rq, body);
    blob_unref(body);
    page_headers(rq->server, r, "text/html; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}

/* The page for an error found in the request itself (the city asked for). */
static struct MHD_Response *page_error(struct request *rq, const char *city, enum api_error error,
                                       const char *message)
{
    struct blob *body = answer_error_body(error, message);
    struct answer a = {.error = error, .body = body, .max_age = -1, .retry_after = -1};
    struct MHD_Response *r = page_response(rq, city, &a);
    blob_unref(body);
    return r;
}

/* A GET /movies/events stream: the events of lib/events.c, written as the client reads
 * them. MHD asks stream_read() for bytes; when there are none it suspends the connection
 * there, and whatever adds bytes or ends the stream (a movie landing, the heartbeat, the
 * deadline, the client leaving, shutdown) resumes it. The stream is held by its request
 * (until completed()) and by its response (until MHD frees it), whichever goes last
 * frees it. Its connection is one of MHD's like any, so the connection limits count it. */
struct stream {
    struct server *server;
    struct request *rq;            /* NULL once the request is over */
    int refs;
    char city[KIND_KEY_SIZE];
    struct events *events;
    struct events_buf buf;
    struct answer_follow *follow;  /* while the city's refresh goes on */
    struct event *heartbeat;
    struct event *deadline;        /* request_deadline after the request began */
    int ended;                     /* no more events: the stream ends once buf is sent */
    int gone;                      /* the client left, or the daemon stops: close now */
    int suspended;
    LIST_ENTRY(stream) link;       /* in http.streams while its request lasts */
};

static void stream_unref(struct stream *st)
{
    if (--st->refs > 0)
        return;
    events_free(st->events);
    events_buf_free(&st->buf);
    free(st);
}

/* MHD's free callback of the stream's response. */
static void stream_release(void *cls)
{
    stream_unref(cls);
}

/* Bytes were added or the stream ended: MHD reads again. */
static void stream_wake(struct stream *st)
{
    if (!st->suspended || st->rq == NULL)
        return;
    st->suspended = 0;
    MHD_resume_connection(st->rq->connection);
    trigger_run(st->server);
}

/* No more events: stop following, and end once what is written is sent. */
static void stream_finish(struct stream *st)
{
    st->ended = 1;
    answer_unfollow(st->follow);
    st->follow = NULL;
    stream_wake(st);
}

/* Writes the events that bring the client to answer a. */
static void stream_push(struct stream *st, const struct answer *a)
{
    if (a->error != API_ERROR_NONE) {
        events_append(&st->buf, "failed", a->body->data, a->body->len);
        stream_finish(st);
        return;
    }
    const json_t *doc = parsed_answer(st->server->http, a->body);
    if (doc == NULL || events_update(st->events, doc, &st->buf))
        stream_finish(st);
    else
        stream_wake(st);
}

/* The city's answer gained a movie, or its refresh ended (final). */
static void stream_followed(const struct answer *a, int final, void *arg)
{
    struct stream *st = arg;
    if (final)
        st->follow = NULL;   /* over: answer_unfollow must not see it */
    stream_push(st, a);
    if (final && !st->ended)
        stream_finish(st);   /* ended incomplete (movies awaiting retries): the client asks anew */
}

static void stream_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream *st = arg;
    events_append_comment(&st->buf, "heartbeat");
    stream_wake(st);
}

static void stream_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_finish(arg);
}

/* MHD's body reader of a stream. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct stream *st = cls;
    if (st->gone || st->rq == NULL)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = events_buf_pending(&st->buf);
    if (n > 0) {
        if (n > max)
            n = max;
        memcpy(out, st->buf.data + st->buf.off, n);
        events_buf_consume(&st->buf, n);
        st->rq->bytes += n;
        return (ssize_t)n;
    }
    if (st->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    st->suspended = 1;
    MHD_suspend_connection(st->rq->connection);
    return 0;
}

/* The stream's request is over: nothing may resume its connection any more. */
static void stream_detach(struct stream *st)
{
    answer_unfollow(st->follow);
    st->follow = NULL;
    if (st->heartbeat != NULL)
        event_free(st->heartbeat);
    if (st->deadline != NULL)
        event_free(st->deadline);
    st->heartbeat = st->deadline = NULL;
    LIST_REMOVE(st, link);
    st->rq->stream = NULL;
    st->rq = NULL;
    stream_unref(st);
}

/* Ends every stream: gone 0 lets each send what it has (the daemon stops accepting), 1
 * closes them now (MHD is about to stop, and must find no connection suspended). */
static void streams_end(struct http *h, int gone)
{
    struct stream *st;
    LIST_FOREACH(st, &h->streams, link) {
        st->gone = st->gone || gone;
        stream_finish(st);
    }
}

/* The response of GET /movies/events for answer a: its events so far, then the stream
 * follows the city's refresh while the answer is incomplete. Sets rq->status. */
static struct MHD_Response *stream_response(struct request *rq, const struct answer *a)
{
    struct server *s = rq->server;
    if (a->error != API_ERROR_NONE)
        return error_body_response(rq, a->error, a->body, a->retry_after);
    struct stream *st = xcalloc(1, sizeof *st);
    st->server = s;
    st->rq = rq;
    st->refs = 2;   /* the request's and the response's */
    snprintf(st->city, sizeof st->city, "%s", rq->city);
    st->events = events_new();
    LIST_INSERT_HEAD(&s->http->streams, st, link);
    rq->stream = st;
    /* A client that reconnects after the stream ends waits this long (ms) first. */
    events_append_retry(&st->buf, 2000);
    stream_push(st, a);
    if (!st->ended) {
        st->follow = answer_follow(s->answerer, st->city, stream_followed, st);
        if (st->follow == NULL)
            st->ended = 1;   /* no refresh to follow: the answer is as complete as it gets */
    }
    if (!st->ended) {
        st->heartbeat = event_new(s->base, -1, EV_PERSIST, stream_heartbeat, st);
        struct timeval beat = {(time_t)s->config.events_heartbeat, 0};
        event_add(st->heartbeat, &beat);
        st->deadline = evtimer_new(s->base, stream_deadline, st);
        arm_in(st->deadline, rq->started + (double)s->config.request_deadline - clock_monotonic());
    }
    rq->status = MHD_HTTP_OK;
    rq->bytes = 0;
    metrics_response_made(s->metrics);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                               stream_release);
    common_headers(s, r, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* One stream per connection: it closes when the stream ends (common_headers says so
     * already while draining). */
    if (!s->draining)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    /* nginx would otherwise buffer the events. */
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}

/* The response to a request for a city's answer, as its kind wants it. */
static struct MHD_Response *kind_response(struct request *rq, const struct answer *a, int answered_now)
{
    switch (rq->kind) {
    case ANSWER_STREAM:
        return stream_response(rq, a);
    case ANSWER_PAGE:
        return page_response(rq, rq->city, a);
    case ANSWER_JSON:
        break;
    }
    return answer_response(rq, answered_now ? rq->city : NULL, a, answered_now);
}

/* The scrape a request waited for has ended. */
static void answer_arrived(const struct answer *a, void *arg)
{
    struct request *rq = arg;
    rq->wait = NULL;
    resume_with(rq, kind_response(rq, a, 0));
}

/* A waiting request's own deadline passed: the last good answer if young enough, else
 * upstream_timeout; either way it stops waiting (the scrape goes on and fills the cache). */
static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct request *rq = arg;
    struct answer stale;
    int have_stale = answer_fallback(rq->wait, &stale);
    answer_cancel(rq->wait);
    rq->wait = NULL;
    struct MHD_Response *response;
    if (have_stale) {
        response = kind_response(rq, &stale, 0);
    } else {
        static const char why[] = "no answer from the upstream within the request deadline";
        struct blob *body = answer_error_body(API_ERROR_UPSTREAM_TIMEOUT, why);
        struct answer failed = {.error = API_ERROR_UPSTREAM_TIMEOUT, .body = body, .max_age = -1,
                                .retry_after = -1};
        response = kind_response(rq, &failed, 0);
        blob_unref(body);
    }
    resume_with(rq, response);
}

/* The city parameter of rq, checked (into rq->city): 0, or -1 with the error and its
 * message (in message, or NULL for the error's own). Absent: API_ERROR_MISSING_CITY. */
static int city_param(struct request *rq, enum api_error *error, char *message, size_t len)
{
    const char *city = NULL;
    size_t city_len = 0;
    *message = '\0';
    /* With its length: a %00 inside the value must not cut it short. */
    if (MHD_lookup_connection_value_n(rq->connection, MHD_GET_ARGUMENT_KIND, "city", 4, &city,
                                      &city_len) != MHD_YES)
        city = NULL;
    if (city == NULL) {
        *error = API_ERROR_MISSING_CITY;
        return -1;
    }
    if (city_len != strlen(city) || !douban_city_valid(city)) {
        *error = API_ERROR_INVALID_CITY;
        return -1;
    }
    /* Douban answers a city it does not know with another city's page: asking it about a
     * slug outside the table costs a request and, at best, an upstream_changed. */
    if (rq->server->config.cities == CITIES_KNOWN && city_find(city) == NULL) {
        snprintf(message, len, "no city '%s' (GET /cities lists them)", city);
        *error = API_ERROR_UNKNOWN_CITY;
        return -1;
    }
    snprintf(rq->city, sizeof rq->city, "%s", city);
    return 0;
}

/* Asks for rq->city's answer: answers at once, or makes rq wait for it (NULL). */
static struct MHD_Response *ask_city(struct request *rq, int flags)
{
    struct server *s = rq->server;
    if (!s->draining)
        flags |= ANSWER_MAY_SCRAPE;
    struct answer now;
    struct answer_wait *w = answer_city(s->answerer, rq->city, flags, &now, answer_arrived, rq);
    if (w == NULL)
        return kind_response(rq, &now, 1);
    rq->wait = w;
    rq->waiting = 1;
    rq->deadline = evtimer_new(s->base, deadline_passed, rq);
    struct timeval tv = {(time_t)s->config.request_deadline, 0};
    evtimer_add(rq->deadline, &tv);
    LIST_INSERT_HEAD(&s->http->waiting, rq, link);
    s->http->nwaiting++;
    return NULL;
}

/* What a /movies request asks for: the city's key for the listing kind, and how long it
 * waits (ANSWER_* flags). */
struct movies_query {
    const char *city;             /* borrowed from the request */
    enum kind kind;
    char key[KIND_KEY_SIZE];      /* kind_key(kind, city): what the answerer is asked */
    int flags;
};

/* Reads city, kind and wait of a /movies request into q. Returns NULL, or the error
 * response for a parameter that is missing or wrong. */
static struct MHD_Response *movies_query_read(struct request *rq, struct movies_query *q)
{
    enum api_error error;
    char message[128];
    if (city_param(rq, &error, message, sizeof message) != 0)
        return error_response(rq, error, message[0] ? message : NULL);
    const char *kind = NULL;
    size_t kind_len = 0;
    q->kind = KIND_LATER;
    if (MHD_lookup_connection_value_n(rq->connection, MHD_GET_ARGUMENT_KIND, "kind", 4, &kind,
                                      &kind_len) == MHD_YES &&
        (kind == NULL || kind_parse(kind, kind_len, &q->kind) != 0))
        return error_response(rq, API_ERROR_INVALID_KIND, NULL);
    int flags = 0;
    const char *wait = NULL;
    size_t wait_len = 0;
    if (MHD_lookup_connection_value_n(rq->connection, MHD_GET_ARGUMENT_KIND, "wait", 4, &wait,
                                      &wait_len) != MHD_YES)
        wait = NULL;
    if (wait != NULL && (wait_len != strlen(wait) || strcmp(wait, "details") != 0))
        return error_response(rq, API_ERROR_INVALID_WAIT, NULL);
    /* Calendars and feeds are polled, seldom, by programs that keep what they get: they
     * wait for the complete answer (up to request_deadline) rather than take a partial
     * one without dates and directors from the movie pages. */
    if (wait != NULL || rq->view != 0)
        flags |= ANSWER_WAIT_DETAILS;
    q->city = rq->city;
    q->flags = flags;
    kind_key(q->kind, rq->city, q->key);
    return NULL;
}

/* GET /movies?city=...[&kind=...]: answers at once or suspends the connection. */
static struct MHD_Response *handle_movies(struct request *rq)
{
    struct movies_query q;
    struct MHD_Response *bad = movies_query_read(rq, &q);
    if (bad != NULL)
        return bad;
    /* From here on the request waits for the kind's key, not the bare slug. */
    snprintf(rq->city, sizeof rq->city, "%s", q.key);
    rq->kind = ANSWER_JSON;
    return ask_city(rq, q.flags);
}

/* GET /movies.ics, /movies.atom, /movies.rss: /movies in another representation. */
static struct MHD_Response *handle_movies_ics(struct request *rq)
{
    rq->view = 1 + VIEW_ICS;
    return handle_movies(rq);
}

static struct MHD_Response *handle_movies_atom(struct request *rq)
{
    rq->view = 1 + VIEW_ATOM;
    return handle_movies(rq);
}

static struct MHD_Response *handle_movies_rss(struct request *rq)
{
    rq->view = 1 + VIEW_RSS;
    return handle_movies(rq);
}

/* A poster, or its error: immutable, so cacheable for a year; 304 when If-None-Match names
 * it. Sets rq->status. */
static struct MHD_Response *poster_response(struct request *rq, const struct poster_answer *a)
{
    if (a->error != API_ERROR_NONE) {
        struct blob *body = answer_error_body(a->error, a->message[0] ? a->message : NULL);
        struct MHD_Response *r = error_body_response(rq, a->error, body, a->retry_after);
        blob_unref(body);
        return r;
    }
    char *owned;
    const char *inm = field_value(rq, MHD_HTTP_HEADER_IF_NONE_MATCH, &owned);
    int not_modified = headers_etag_match(inm, a->etag);
    free(owned);
    rq->status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    struct MHD_Response *r = not_modified ? not_modified_response(rq) : blob_response(rq, a->data);
    common_headers(rq->server, r, a->type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=31536000, immutable");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, a->etag);
    return r;
}

/* The poster a request waited for is in (or failed). */
static void poster_arrived(const struct poster_answer *a, void *arg)
{
    struct request *rq = arg;
    rq->poster_wait = NULL;
    resume_with(rq, poster_response(rq, a));
}

/* A poster wait passed request_deadline: the fetch goes on and fills the cache. */
static void poster_deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct request *rq = arg;
    posters_cancel(rq->poster_wait);
    rq->poster_wait = NULL;
    struct poster_answer a = {.error = API_ERROR_POSTER_UNAVAILABLE, .retry_after = 5};
    snprintf(a.message, sizeof a.message, "the image host did not answer within the request deadline");
    resume_with(rq, poster_response(rq, &a));
}

/* GET /posters/<movie id>: answers at once from the cache or suspends the connection. */
static struct MHD_Response *handle_poster(struct request *rq, const char *id)
{
    struct server *s = rq->server;
    struct poster_answer now;
    struct poster_wait *w = posters_get(s->posters, id, &now, poster_arrived, rq);
    if (w == NULL)
        return poster_response(rq, &now);
    rq->poster_wait = w;
    rq->waiting = 1;
    rq->deadline = evtimer_new(s->base, poster_deadline_passed, rq);
    struct timeval tv = {(time_t)s->config.request_deadline, 0};
    evtimer_add(rq->deadline, &tv);
    LIST_INSERT_HEAD(&s->http->waiting, rq, link);
    s->http->nwaiting++;
    return NULL;
}

/* GET /movies/events?city=...: the answer as Server-Sent Events, once the listing is in. */
static struct MHD_Response *handle_events(struct request *rq)
{
    enum api_error error;
    char message[128];
    if (city_param(rq, &error, message, sizeof message) != 0)
        return error_response(rq, error, message[0] ? message : NULL);
    rq->kind = ANSWER_STREAM;
    return ask_city(rq, 0);
}

/* GET /: the city picker; GET /?city=...: the city's page, once the listing is in. */
static struct MHD_Response *handle_page(struct request *rq)
{
    const char *city = MHD_lookup_connection_value(rq->connection, MHD_GET_ARGUMENT_KIND, "city");
    if (city == NULL || city[0] == '\0')
        return page_response(rq, NULL, NULL);
    enum api_error error;
    char message[128];
    if (city_param(rq, &error, message, sizeof message) != 0)
        return page_error(rq, NULL, error, message[0] ? message : NULL);
    rq->kind = ANSWER_PAGE;
    return ask_city(rq, 0);
}

/* GET /page.js and /page.css, with their ETags (a matching If-None-Match gets 304). */
static struct MHD_Response *asset_response(struct request *rq, int which)
{
    struct http *h = rq->server->http;
    static const char *const types[] = {"text/javascript; charset=utf-8", "text/css; charset=utf-8"};
    char *owned;
    const char *inm = field_value(rq, MHD_HTTP_HEADER_IF_NONE_MATCH, &owned);
    int not_modified = headers_etag_match(inm, h->asset_etags[which]);
    free(owned);
    rq->status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    struct MHD_Response *r = not_modified ? not_modified_response(rq) : blob_response(rq, h->assets[which]);
    page_headers(rq->server, r, types[which]);
    /* Revalidated after a few minutes: a new build may change them under the same URL. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=300");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, h->asset_etags[which]);
    return r;
}

static struct MHD_Response *handle_page_js(struct request *rq)
{
    return asset_response(rq, 0);
}

static struct MHD_Response *handle_page_css(struct request *rq)
{
    return asset_response(rq, 1);
}

/* An asset's blob, and its quoted ETag. New. */
static struct blob *asset_blob(const unsigned char *data, size_t len, char etag[20])
{
    char hex[17];
    hash_hex((const char *)data, len, hex);
    snprintf(etag, 20, "\"%s\"", hex);
    return blob_new((const char *)data, len);
}

/* GET /cities: the city table, made once at start. */
static struct MHD_Response *handle_cities(struct request *rq)
{
    struct http *h = rq->server->http;
    struct answer doc = {.error = API_ERROR_NONE, .body = h->cities_body, .gzip = h->cities_gzip,
                         .etag = h->cities_etag, .gzip_etag = h->cities_gzip_etag,
                         .max_age = CITIES_MAX_AGE, .age = -1, .retry_after = -1};
    return document_response(rq, "/cities", &doc, 1);
}

/* GET /openapi.json: the API's description, docs/openapi.json as built in. */
static struct MHD_Response *handle_openapi(struct request *rq)
{
    struct http *h = rq->server->http;
    struct answer doc = {.error = API_ERROR_NONE, .body = h->openapi_body, .gzip = h->openapi_gzip,
                         .etag = h->openapi_etag, .gzip_etag = h->openapi_gzip_etag,
                         .max_age = OPENAPI_MAX_AGE, .age = -1, .retry_after = -1};
    return document_response(rq, "/openapi.json", &doc, 1);
}

/* The body of GET /cities, {"count": n, "cities": [{"slug", "id", "name"}, ...]} in the
 * table's order (by slug), and its quoted ETag. New. */
static struct blob *cities_document(char etag[20])
{
    json_t *list = json_array();
    for (size_t i = 0; i < city_table_count; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "slug", city_table[i].slug, "id",
                                              city_table[i].id, "name", city_table[i].name));
    json_t *doc = json_pack("{s:I, s:o}", "count", (json_int_t)city_table_count, "cities", list);
    struct blob *b = movie_document_blob(doc, etag);
    json_decref(doc);
    return b;
}

/* GET /readyz: 503 only while stopping (before the first listen nothing answers at all).
 * An open breaker leaves it 200, with the breaker in the body: cached cities are still
 * served, and replicas behind one egress address are refused together, so a 503 would take
 * every one of them out of the load balancer at once. */
static struct MHD_Response *handle_readyz(struct request *rq)
{
    struct server *s = rq->server;
    long left = fetch_breaker_remaining(s->fetcher);
    json_t *breaker = json_pack("{s:b}", "open", left > 0);
    if (left > 0)
        json_object_set_new(breaker, "retry_after", json_integer(left));
    if (s->draining) {
        rq->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return json_response(rq, json_pack("{s:s, s:s, s:o}", "status", "unavailable", "reason",
                                           "shutting down", "breaker", breaker));
    }
    rq->status = MHD_HTTP_OK;
    return json_response(rq, json_pack("{s:s, s:o}", "status", "ready", "breaker", breaker));
}

/* GET /metrics in the Prometheus text format. */
static struct MHD_Response *handle_metrics(struct request *rq)
{
    struct server *s = rq->server;
    long left = fetch_breaker_remaining(s->fetcher);
    struct metrics_process process;
    char err[160];
    int have_process = metrics_process_read(&process, err, sizeof err) == 0;
    if (!have_process)
        log_debug("metrics: no process figures: %s", err);
    struct metrics_gauges g = {
        .process = have_process ? &process : NULL,
        .scrapes_in_flight = (long)scraper_active(s->scraper),
        .upstream_queue_length = (long)fetch_queue_length(s->fetcher),
        .upstream_in_flight = (long)fetch_in_flight(s->fetcher),
        .breaker_open = left > 0,
        .breaker_remaining = left,
        .cached_cities = (long)answerer_cached_cities(s->answerer),
        .cached_movies = (long)scraper_cached_movies(s->scraper),
        .cache_bytes = {(long)answerer_cached_bytes(s->answerer), (long)scraper_cached_bytes(s->scraper)},
        .upstream_queued = {(long)fetch_queue_length_of(s->fetcher, FETCH_PREFETCH),
                            (long)fetch_queue_length_of(s->fetcher, FETCH_NORMAL),
                            (long)fetch_queue_length_of(s->fetcher, FETCH_URGENT)},
        .upstream_starts_last_minute = (long)fetch_starts_last_minute(s->fetcher),
        .details_pending = (long)scraper_pending_details(s->scraper),
        .parse_threads = pool_threads(s->pool),
        .parse_queued = (long)pool_queued(s->pool),
    };
    struct redis_stats redis;
    struct fleet_stats fleet;
    if (s->redis != NULL && s->fleet != NULL) {
        redis_stats(s->redis, &redis);
        fleet_stats(s->fleet, &fleet);
        g.redis = &redis;
        g.fleet = &fleet;
    }
    rq->status = MHD_HTTP_OK;
    char *text = metrics_render(s->metrics, &g);
    char *posters = posters_metrics(s->posters);
    char *all = xasprintf("%s%s", text, posters);
    free(text);
    free(posters);
    return text_response(rq, all, "text/plain; version=0.0.4; charset=utf-8");
}

/* Routes a request; NULL means it waits for an answer. */
static struct MHD_Response *route(struct request *rq, const char *url, const char *method)
{
    static const struct {
        const char *path;
        const char *label;
        struct MHD_Response *(*handler)(struct request *);
    } routes[] = {
        {"/movies", "movies", handle_movies},
        {"/movies.ics", "movies_ics", handle_movies_ics},
        {"/movies.atom", "movies_atom", handle_movies_atom},
        {"/movies.rss", "movies_rss", handle_movies_rss},
        {"/movies/events", "events", handle_events},
        {"/", "page", handle_page},
        {"/page.js", "assets", handle_page_js},
        {"/page.css", "assets", handle_page_css},
        {"/cities", "cities", handle_cities},
        {"/healthz", "healthz", NULL},
        {"/readyz", "readyz", handle_readyz},
        {"/metrics", "metrics", handle_metrics},
        {"/openapi.json", "openapi", handle_openapi},
    };
    static const char posters_prefix[] = "/posters/";
    const char *poster = NULL;
    size_t i = 0;
    if (strncmp(url, posters_prefix, sizeof posters_prefix - 1) == 0)
        poster = url + sizeof posters_prefix - 1;
    else
        while (i < sizeof routes / sizeof routes[0] && strcmp(url, routes[i].path) != 0)
            i++;
    if (poster != NULL || i < sizeof routes / sizeof routes[0]) {
        rq->route = poster != NULL ? "posters" : routes[i].label;
        if (strcmp(method, "OPTIONS") == 0)
            return options_response(rq);
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            struct MHD_Response *r = error_response(rq, API_ERROR_METHOD_NOT_ALLOWED, NULL);
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, CORS_ALLOW_METHODS);
            return r;
        }
        if (poster != NULL)
            return handle_poster(rq, poster);
        if (routes[i].handler == NULL) {
            rq->status = MHD_HTTP_OK;
            return json_response(rq, json_pack("{s:s}", "status", "ok"));
        }
        return routes[i].handler(rq);
    }
    rq->route = "other";
    return error_response(rq, API_ERROR_NOT_FOUND, NULL);
}

/* Remembers path and query, escaped, for the access log. */
static void note_target(struct request *rq, const char *url)
{
    char path[96], city[48];
    log_escape(url, strlen(url), path, sizeof path);
    const char *c = MHD_lookup_connection_value(rq->connection, MHD_GET_ARGUMENT_KIND, "city");
    if (c) {
        log_escape(c, strlen(c), city, sizeof city);
        snprintf(rq->target, sizeof rq->target, "%s?city=%s", path, city);
    } else {
        snprintf(rq->target, sizeof rq->target, "%s", path);
    }
}

/* Arms a timer to fire in seconds (at once if that is not positive). */
static void arm_in(struct event *timer, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(timer, &tv);
}

/* --- repeated log lines ------------------------------------------------------------------ */

/* Whether a burst slot holds the kind of line fmt/text is. */
static int burst_matches(const struct burst *b, const char *fmt, const char *text)
{
    if (b->fmt != fmt)
        return 0;
    return strncmp(fmt, "%s", 2) != 0 || strcmp(b->text, text) == 0;
}

/* Writes what a slot held back in its second: the latest line, with the count of the others. */
static void burst_flush(struct burst *b)
{
    if (b->more == 1)
        log_at(b->level, "%s", b->text);
    else if (b->more > 1)
        log_at(b->level, "%s (and %lu more in the last second)", b->text, b->more - 1);
    b->more = 0;
}

/* Arms the burst timer for the first slot whose second ends. */
static void burst_arm(struct http *h, double now)
{
    double first = 0;
    for (size_t i = 0; i < BURST_KINDS; i++)
        if (h->bursts[i].fmt != NULL && (first == 0 || h->bursts[i].since < first))
            first = h->bursts[i].since;
    if (first == 0)
        return;
    arm_in(h->burst_timer, first + 1.0 - now);
}

/* A second ended for some slots: their held-back lines go out as one, and a slot that held
 * none is freed (its next line is logged at once). */
static void burst_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    double now = clock_monotonic();
    for (size_t i = 0; i < BURST_KINDS; i++) {
        struct burst *b = &h->bursts[i];
        if (b->fmt == NULL || b->since + 1.0 > now + 0.001)
            continue;
        if (b->more == 0) {
            b->fmt = NULL;
            continue;
        }
        burst_flush(b);
        b->since = now;
    }
    burst_arm(h, now);
}

/* Logs text, a line of the kind fmt makes, unless a line of its kind went out less than a
 * second ago: then it is counted and written with the others when the second ends. */
static void burst_log(struct http *h, enum log_level level, const char *fmt, const char *text)
{
    if (level > log_level_now())
        return;
    double now = clock_monotonic();
    struct burst *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < BURST_KINDS; i++) {
        struct burst *b = &h->bursts[i];
        if (b->fmt != NULL && burst_matches(b, fmt, text)) {
            b->more++;
            if (strncmp(fmt, "%s", 2) != 0)
                snprintf(b->text, sizeof b->text, "%s", text);
            return;
        }
        if (b->fmt == NULL && slot == NULL)
            slot = b;
        if (b->fmt != NULL && (oldest == NULL || b->since < oldest->since))
            oldest = b;
    }
    if (slot == NULL) {  /* more kinds at once than slots: the oldest count goes out early */
        burst_flush(oldest);
        slot = oldest;
    }
    log_at(level, "%s", text);
    slot->fmt = fmt;
    slot->level = level;
    slot->since = now;
    slot->more = 0;
    snprintf(slot->text, sizeof slot->text, "%s", text);
    if (!evtimer_pending(h->burst_timer, NULL))
        burst_arm(h, now);
}

/* Writes every count still held back (at shutdown). */
static void burst_flush_all(struct http *h)
{
    for (size_t i = 0; i < BURST_KINDS; i++)
        if (h->bursts[i].fmt != NULL)
            burst_flush(&h->bursts[i]);
}

/* --- connections ------------------------------------------------------------------------ */

/* Makes MHD notice a client that has gone. MHD (0.9.75, epoll) stops reading a connection
 * after a short read and waits for a new edge that never comes when the client's close
 * arrived with its last bytes: a half-sent request would then hold its slot until the idle
 * timeout, and enough of them take the API down. Shutting our side raises a new edge; MHD
 * reads the end of the stream and closes the connection. */
static void drop_connection(struct conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    trigger_run(c->server);
}

/* Bytes the client sent that nobody has read yet. */
static int unread_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : 0;
}

/* TCP_CLOSE of the kernel's TCP states: after a reset (a FIN alone leaves CLOSE_WAIT). */
#define TCP_STATE_CLOSED 7

/* A connection's TCP state and the bytes received on it so far; 0 if unknown. */
static int tcp_state(int fd, uint64_t *received)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    if (received != NULL)
        *received = ti.tcpi_bytes_received;
    return ti.tcpi_state;
}

/* Arms the header timer for the oldest connection still receiving its request. */
static void header_timer_arm(struct server *s)
{
    struct http *h = s->http;
    struct conn *c = TAILQ_FIRST(&h->receiving);
    long long limit = s->config.request_header_timeout;
    if (c == NULL || limit == 0) {
        evtimer_del(h->header_timer);
        return;
    }
    arm_in(h->header_timer, c->receiving_since + (double)limit - clock_monotonic());
}

/* A request begins to arrive on c (accepted, or a kept-alive connection's next bytes): its
 * header deadline runs from now. The queue stays in order because every deadline has the
 * same length. */
static void receiving_start(struct conn *c)
{
    struct http *h = c->server->http;
    if (c->receiving_since > 0)
        return;
    c->receiving_since = clock_monotonic();
    TAILQ_INSERT_TAIL(&h->receiving, c, receiving);
    if (TAILQ_FIRST(&h->receiving) == c)
        header_timer_arm(c->server);
}

/* The request on c is complete, or c closes: no header deadline any more. */
static void receiving_stop(struct conn *c)
{
    if (c->receiving_since == 0)
        return;
    TAILQ_REMOVE(&c->server->http->receiving, c, receiving);
    c->receiving_since = 0;
}

/* The client's address as text, for the log. */
static void client_address(struct conn *c, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, outlen, "?");
    if (info == NULL || info->client_addr == NULL)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)outlen);
}

/* Writes the 408 on the socket itself: MHD has sent nothing for this request (the last one's
 * answer is all out before the next request's deadline starts), and it cannot be asked to
 * answer a request it has not parsed. Best effort: a client that does not read loses it. */
static void send_request_timeout(struct conn *c)
{
    struct blob *body = c->server->http->timeout_body;
    char date[40], head[320];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 408 Request Timeout\r\nDate: %s\r\nConnection: close\r\n"
                     "Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
                     "%sContent-Length: %zu\r\n\r\n",
                     date, cors_raw_line(c->server), body->len);
    struct iovec iov[2] = {{head, (size_t)n}, {body->data, body->len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    if (sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("http: the 408 was not sent: %s", strerror(errno));
}

/* Connections closed at their header deadline in one turn of the loop: when thousands
 * reach it together (slow clients that came together), the loop serves others between
 * batches. */
#define DEADLINE_BATCH 32

/* request_header_timeout passed for the oldest connections receiving a request: each gets
 * a 408 and is closed. */
static void header_deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct http *h = s->http;
    long long limit = s->config.request_header_timeout;
    double now = clock_monotonic();
    struct conn *c;
    for (int n = 0; n < DEADLINE_BATCH && limit > 0; n++) {
        c = TAILQ_FIRST(&h->receiving);
        if (c == NULL || c->receiving_since + (double)limit > now + 0.001)
            break;
        receiving_stop(c);
        send_request_timeout(c);
        if (c->rq != NULL) {
            c->rq->status = MHD_HTTP_REQUEST_TIMEOUT;   /* its access log line says so */
        } else {
            metrics_request(s->metrics, "other", MHD_HTTP_REQUEST_TIMEOUT, now - c->receiving_since);
        }
        char address[INET6_ADDRSTRLEN], line[160];
        static const char kind[] = "http: %s sent no complete request within %lld s: 408, closed";
        client_address(c, address, sizeof address);
        snprintf(line, sizeof line, kind, address, limit);
        burst_log(h, LOG_INFO, kind, line);
        drop_connection(c);
    }
    header_timer_arm(s);
}

/* Asks a waiting request's client, which sent its FIN, whether it still reads: a client
 * that only shut its sending side (RFC 9112 9.6 allows it) takes the interim response and
 * waits for the answer; one that closed its socket answers it with a reset, which the watch
 * sees. Only HTTP/1.1 clients may be sent a 1xx (RFC 9110 15.2). */
static void probe_client(struct conn *c)
{
    static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->probed = 1;
    ssize_t n = send(c->fd, probe, sizeof probe - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != (ssize_t)(sizeof probe - 1) && !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
        abandon(c->rq);   /* gone already, or half a status line out: either way, closed */
}

/* The client of c sent its FIN or reset. A waiting request is let go at once on a reset,
 * and probed on a FIN; an answer on its way is left to finish (completed() lets the
 * connection go); otherwise no complete request can come any more, and the connection is
 * dropped once MHD has read what the client sent last. */
static void client_left(struct conn *c, int reset)
{
    struct request *rq = c->rq;
    c->peer_gone = 1;
    if (rq != NULL && rq->stream != NULL) {
        /* An event stream has no end of its own to wait for: its client closing is its end. */
        rq->stream->gone = 1;
        stream_finish(rq->stream);
        return;
    }
    if (rq != NULL && rq->waiting) {
        if (reset)
            abandon(rq);
        else if (!c->probed && rq->http11)
            probe_client(c);
        return;
    }
    if (rq != NULL && rq->routed)
        return;
    if (!reset && unread_bytes(c->fd) > 0) {
        /* A request that came with the FIN: MHD reads it in its next run, then it is
         * answered (the client may still read) or, incomplete, dropped. */
        if (!c->unread_queued) {
            LIST_INSERT_HEAD(&c->server->http->unread, c, unread);
            c->unread_queued = 1;
        }
        trigger_run(c->server);
        return;
    }
    drop_connection(c);
}

/* Takes c off the list of gone clients with bytes unread. */
static void unread_remove(struct conn *c)
{
    if (!c->unread_queued)
        return;
    LIST_REMOVE(c, unread);
    c->unread_queued = 0;
}

/* After an MHD run, gone clients whose last bytes MHD has now read: a request they
 * completed goes on like any (probed if waiting), the others are dropped. */
static void recheck_unread(struct server *s)
{
    struct conn *c = LIST_FIRST(&s->http->unread), *next;
    for (; c != NULL; c = next) {
        next = LIST_NEXT(c, unread);
        if (c->rq != NULL && c->rq->routed) {
            unread_remove(c);
            if (c->rq->waiting && !c->probed && c->rq->http11)
                probe_client(c);
        } else if (unread_bytes(c->fd) == 0) {
            unread_remove(c);
            drop_connection(c);
        }
    }
}

/* The watch on a client's socket fired: bytes came (on an idle kept-alive connection, a
 * request begins), or the client sent its FIN (EV_CLOSED), or reset (libevent reports a
 * socket error as readable). Edge-triggered: once per change, not while the state lasts. */
static void connection_watched(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    uint64_t received = 0;
    int reset = tcp_state(fd, &received) == TCP_STATE_CLOSED;
    /* Counted in bytes, not by the event: MHD may have read these bytes, and answered
     * the request they made, before this callback runs. */
    if ((what & EV_READ) && c->rq == NULL && !c->peer_gone && received > c->received_at_rest)
        receiving_start(c);
    if ((what & EV_CLOSED) || reset)
        client_left(c, reset);
}

/* MHD opened or closed a client connection. */
static void connection_event(void *cls, struct MHD_Connection *connection, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn *c = xcalloc(1, sizeof *c);
        c->server = s;
        c->connection = connection;
        c->fd = info->connect_fd;
        c->watch = event_new(s->base, c->fd, EV_READ | EV_CLOSED | EV_ET | EV_PERSIST,
                             connection_watched, c);
        event_add(c->watch, NULL);
        receiving_start(c);
        *socket_context = c;
    } else if (*socket_context != NULL) {
        struct conn *c = *socket_context;
        receiving_stop(c);
        unread_remove(c);
        if (c->rq != NULL)
            c->rq->conn = NULL;
        event_free(c->watch);
        free(c);
        *socket_context = NULL;
    }
}

/* What the headers of a request say about its framing. */
struct header_scan {
    int bad_name;
    int bad_value;
    int hosts;
    int transfer_encoding;
    int lengths;
    int bad_length;
    int length_nonzero;
};

/* Whether s[0..n) is an HTTP token (RFC 9110 5.6.2), as a header name must be. */
static int is_token(const char *s, size_t n)
{
    static const char others[] = "!#$%&'*+-.^_`|~";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
        if (!alnum && (c == '\0' || strchr(others, c) == NULL))
            return 0;
    }
    return n > 0;
}

/* Whether the header name key[0..n) is name, case-insensitively. */
static int name_is(const char *key, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(key, name, n) == 0;
}

/* MHD's header iterator: notes what request_defect() judges. */
static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    struct header_scan *scan = cls;
    for (size_t i = 0; i < value_size; i++)
        if (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
            scan->bad_value = 1;
    if (!is_token(key, key_size)) {
        scan->bad_name = 1;
    } else if (name_is(key, key_size, MHD_HTTP_HEADER_HOST)) {
        scan->hosts++;
    } else if (name_is(key, key_size, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        scan->transfer_encoding = 1;
    } else if (name_is(key, key_size, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        scan->lengths++;
        size_t digits = 0;
        while (digits < value_size && value[digits] >= '0' && value[digits] <= '9')
            digits++;
        if (digits == 0 || digits != value_size)
            scan->bad_length = 1;
        for (size_t i = 0; i < value_size; i++)
            if (value[i] != '0')
                scan->length_nonzero = 1;
    }
    return MHD_YES;
}

/* Why a request whose headers MHD accepted is still refused, or NULL; *has_body: whether it
 * announces a body. Each of these is read differently by some proxy or server, and that
 * difference is how requests are smuggled: the framing of a request must be beyond doubt
 * before anything runs. MHD (0.9.75, strict) has already refused an HTTP/1.1 request without
 * Host, a space in the request target and a bad first Content-Length; it keeps a name with
 * whitespace before its colon as a name that ends in whitespace, ignores every
 * Content-Length but the first, and waits for a body it cannot frame (a Transfer-Encoding
 * other than chunked) until the idle timeout. */
static const char *request_defect(struct MHD_Connection *connection, const char *method, int *has_body)
{
    struct header_scan scan = {0};
    MHD_get_connection_values_n(connection, MHD_HEADER_KIND, scan_header, &scan);
    *has_body = scan.length_nonzero || scan.transfer_encoding;
    if (scan.bad_name)
        return "a header name must be a token, with no whitespace before its colon";
    if (scan.bad_value)
        return "a header value must not hold control characters";
    if (scan.hosts > 1)
        return "a request must have one Host header at most";
    if (scan.transfer_encoding)
        return "Transfer-Encoding is not accepted: no endpoint takes a request body";
    if (scan.lengths > 1 || scan.bad_length)
        return "Content-Length must be one decimal number, given once";
    if (scan.length_nonzero && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return "a GET or HEAD request must not have a body";
    return NULL;
}

/* The request leaves http.heads: its headers reached handle(), or it ended. */
static void leave_head(struct request *rq)
{
    struct http *h = rq->server->http;
    if (rq->in_head) {
        LIST_REMOVE(rq, head_link);
        rq->in_head = 0;
    }
    if (h->in_line == rq)
        h->in_line = NULL;
}

/* MHD_OPTION_URI_LOG_CALLBACK: MHD read a request line. The request starts here; what this
 * returns is the request's context in handle() and completed(). */
static void *request_line_read(void *cls, const char *uri, struct MHD_Connection *connection)
{
    struct server *s = cls;
    struct http *h = s->http;
    struct request *rq = xcalloc(1, sizeof *rq);
    rq->server = s;
    rq->connection = connection;
    rq->started = clock_monotonic();
    rq->route = "other";
    snprintf(rq->method, sizeof rq->method, "-");
    if (uri != NULL) {
        char path[96];
        log_escape(uri, strcspn(uri, "?"), path, sizeof path);
        snprintf(rq->target, sizeof rq->target, "%s", path);
        h->in_line = rq;
        h->in_line_uri = uri;
    }
    LIST_INSERT_HEAD(&h->heads, rq, head_link);
    rq->in_head = 1;
    return rq;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: MHD's own unescaping. MHD unescapes the request line's
 * path after its query parameters, last: MHD is then done with that line. */
static size_t unescape(void *cls, struct MHD_Connection *connection, char *text)
{
    (void)connection;
    struct http *h = ((struct server *)cls)->http;
    if (h->in_line != NULL && text == h->in_line_uri)
        h->in_line = NULL;
    return MHD_http_unescape(text);
}

/* Answers rq with bad_request and closes its connection, writing to the socket before MHD
 * does, which then fails to send its own answer and closes. For the cases where MHD 0.9.75
 * botches its own: an error found while parsing the headers (no Host, a bad Content-Length)
 * is queued with its status line and headers, then the state machine carries on and writes
 * them a second time; query parameters beyond the connection's memory make MHD queue 431,
 * ignore the failure, and wait for header lines it has no buffer left to read, until the
 * idle timeout. MHD is between requests on this socket, so nothing of its own is unsent.
 * The method is not known yet: a HEAD gets the body too, just before the close. */
static void answer_in_place_of_mhd(struct request *rq, const char *message)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(rq->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL || rq->answered_in_place)
        return;
    int fd = info->connect_fd;
    const struct api_error_info *error = api_error_info(API_ERROR_BAD_REQUEST);
    struct blob *body = answer_error_body(API_ERROR_BAD_REQUEST, message);
    char date[40];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));  /* C locale */
    char head[320];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
                     "Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
                     "%sContent-Length: %zu\r\n\r\n",
                     error->status, MHD_get_reason_phrase_for((unsigned)error->status), date,
                     cors_raw_line(rq->server), body->len);
    struct iovec iov[2] = {{head, (size_t)n}, {body->data, body->len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_RDWR);
    rq->status = error->status;
    rq->bytes = sent > n ? (size_t)(sent - n) : 0;
    rq->answered_in_place = 1;
    rq->server->http->in_place_open++;
    blob_unref(body);
    trigger_run(rq->server);
}

/* The request whose headers MHD is parsing now: of those whose headers have not reached
 * handle(), the only one past its headers with no answer queued (MHD parses the headers
 * and calls handle() in one go). NULL if none. */
static struct request *request_in_header_parse(struct http *h)
{
    struct request *rq;
    LIST_FOREACH(rq, &h->heads, head_link) {
        if (MHD_get_connection_info(rq->connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) != NULL &&
            MHD_get_connection_info(rq->connection, MHD_CONNECTION_INFO_HTTP_STATUS) == NULL)
            return rq;
    }
    return NULL;
}

/* MHD is logging fmt: if it is one of the errors MHD 0.9.75 answers wrongly, answers in its
 * place (the message is logged while MHD is still with that request) and returns 1. */
static int replace_botched_answer(struct server *s, const char *fmt)
{
    static const struct {
        const char *start;  /* of MHD's message */
        int request_line;   /* while parsing the request line, else the headers */
        const char *answer;
    } botched[] = {
        {"Not enough memory in pool to allocate header record", 1,
         "the request has more query parameters than the server takes"},
        {"Received HTTP/1.1 request without `Host' header", 0, "an HTTP/1.1 request must have a Host header"},
        {"Failed to parse `Content-Length' header", 0, "Content-Length must be one decimal number, given once"},
        {"Too large value of 'Content-Length' header", 0, "Content-Length is out of range"},
    };
    struct http *h = s->http;
    if (h == NULL)
        return 0;
    for (size_t i = 0; i < sizeof botched / sizeof botched[0]; i++) {
        if (strncmp(fmt, botched[i].start, strlen(botched[i].start)) != 0)
            continue;
        struct request *rq = botched[i].request_line ? h->in_line : request_in_header_parse(h);
        if (rq == NULL)
            return 0;
        answer_in_place_of_mhd(rq, botched[i].answer);
        return 1;
    }
    return 0;
}

/* Queues rq's response and drops our reference to it, unless it is a made-once one, whose
 * reference is the table's. */
static enum MHD_Result queue_response(struct request *rq, struct MHD_Response *response)
{
    cors_headers(rq, response);
    enum MHD_Result ret = MHD_queue_response(rq->connection, (unsigned)rq->status, response);
    if (!rq->response_made_once)
        MHD_destroy_response(response);
    rq->response_made_once = 0;
    return ret;
}

/* MHD's access handler: called once the headers are in, again once the request is whole,
 * and after a resume; a body is never read (see below). */
static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)upload_data;
    struct server *s = cls;
    struct request *rq = *req_cls;  /* made by request_line_read() */
    if (!rq->began) {
        rq->began = 1;
        leave_head(rq);
        snprintf(rq->method, sizeof rq->method, "%s", method);
        rq->head = strcmp(method, "HEAD") == 0;
        rq->http11 = strncmp(version, "HTTP/1.", 7) == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->conn = info ? info->socket_context : NULL;
        if (rq->conn)
            rq->conn->rq = rq;
        note_target(rq, url);
        /* No endpoint takes a body: a request with one is answered now, before its body,
         * and MHD then reads nothing more on this connection (no body, no pipelined
         * request) and closes it after the answer. Whatever a proxy in front thinks the
         * body is, nothing after it runs. */
        int has_body;
        const char *defect = request_defect(connection, method, &has_body);
        if (defect == NULL && !has_body)
            return MHD_YES;
        rq->routed = 1;
        if (rq->conn)
            receiving_stop(rq->conn);
        struct MHD_Response *response =
            defect ? error_response(rq, API_ERROR_BAD_REQUEST, defect) : route(rq, url, method);
        if (response == NULL)
            return MHD_YES;  /* suspended (only GET and HEAD are, and they have no body) */
        return queue_response(rq, response);
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;  /* answered before its body, so never read: see above */
        return MHD_YES;
    }
    struct MHD_Response *response = rq->response;
    rq->response = NULL;
    if (response == NULL) {
        if (rq->abandoned) {
            /* Refusing closes the connection; MHD logs that the application failed. */
            s->http->closing_quietly = 1;
            return MHD_NO;
        }
        if (rq->waiting) {
            /* Suspended on the call after the one that began the wait, not in it: MHD
             * 0.9.75 keeps a connection's poll state as it was when it was suspended
             * (reading, when the request came in one piece and its wait began in the same
             * pass) and reads once when resuming it; a client that shut its sending side
             * then reads as gone and the connection is closed with its answer unsent.
             * Between the two calls MHD marks the connection as blocked, not reading. */
            if (!rq->suspended) {
                rq->suspended = 1;
                MHD_suspend_connection(connection);
            }
            return MHD_YES;
        }
        rq->routed = 1;
        if (rq->conn)
            receiving_stop(rq->conn);
        response = route(rq, url, method);
        if (response == NULL)
            return MHD_YES;  /* waits; MHD calls again at once, with nothing to read */
    }
    return queue_response(rq, response);
}

/* Request done (answered or connection lost): access log, metrics, free. */
static void completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                      enum MHD_RequestTerminationCode code)
{
    (void)connection;
    struct server *s = cls;
    struct request *rq = *req_cls;
    s->http->closing_quietly = 0;
    if (rq == NULL)
        return;
    leave_head(rq);
    if (rq->answered_in_place)
        s->http->in_place_open--;
    if (!rq->began && !rq->answered_in_place) {
        /* MHD refused or lost it before its headers were whole (it logs why). */
        free(rq);
        *req_cls = NULL;
        return;
    }
    double seconds = clock_monotonic() - rq->started;
    char method[sizeof rq->method * 4];
    log_escape(rq->method, strlen(rq->method), method, sizeof method);
    const char *how = code == MHD_REQUEST_TERMINATED_COMPLETED_OK || rq->answered_in_place ? ""
                      : rq->abandoned                          ? " (client gone)"
                      : rq->status == MHD_HTTP_REQUEST_TIMEOUT ? " (request_header_timeout)"
                                                               : " (connection lost)";
    log_info("%s %s %d %zu %.1fms%s", method, rq->target, rq->status, rq->bytes, seconds * 1000, how);
    metrics_request(s->metrics, rq->route, rq->status, seconds);
    if (rq->waiting) {
        LIST_REMOVE(rq, link);
        s->http->nwaiting--;
    }
    if (rq->wait)
        answer_cancel(rq->wait);
    posters_cancel(rq->poster_wait);
    if (rq->stream)
        stream_detach(rq->stream);
    if (rq->deadline)
        event_free(rq->deadline);
    if (rq->response)
        MHD_destroy_response(rq->response);
    struct conn *c = rq->conn;
    if (c != NULL) {
        c->rq = NULL;
        tcp_state(c->fd, &c->received_at_rest);
        if (c->peer_gone)
            drop_connection(c);
        else if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK && unread_bytes(c->fd) > 0)
            receiving_start(c);   /* the next request came while this one was answered */
    }
    free(rq);
    *req_cls = NULL;
}

/* MHD's own error messages go to the log, escaped (some hold what a client sent), each kind
 * at most once a second. */
static void __attribute__((format(printf, 2, 0))) mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct server *s = cls;
    struct http *h = s->http;
    int replaced = replace_botched_answer(s, fmt);
    char line[512], escaped[512], text[520];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (h != NULL && h->closing_quietly && strstr(line, "Application reported internal error")) {
        h->closing_quietly = 0;   /* the abandoned connection handle() refused */
        return;
    }
    log_escape(line, n, escaped, sizeof escaped);
    snprintf(text, sizeof text, "http: %s", escaped);
    /* A request answered in place is in the access log: MHD's account of it, and of the
     * answer it then cannot send, is detail. */
    if (replaced || (h != NULL && h->in_place_open > 0 &&
                     (strncmp(fmt, "Error processing request", 24) == 0 ||
                      strncmp(fmt, "Failed to send", 14) == 0))) {
        log_debug("%s", text);
        return;
    }
    if (h == NULL) {   /* while starting */
        log_warn("%s", text);
        return;
    }
    burst_log(h, LOG_WARN, fmt, text);
}

/* Opens a listening socket on "HOST:PORT". */
static int bind_listen(const char *listen_at, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen_at, ':');
    if (colon == NULL || (size_t)(colon - listen_at) >= sizeof host) {
        snprintf(err, errlen, "listen: '%s' is not HOST:PORT", listen_at);
        return -1;
    }
    size_t hostlen = (size_t)(colon - listen_at);
    memcpy(host, listen_at, hostlen);
    host[hostlen] = '\0';
    if (host[0] == '[' && hostlen >= 2 && host[hostlen - 1] == ']') {
        memmove(host, host + 1, hostlen - 2);
        host[hostlen - 2] = '\0';
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen: '%s': %s", listen_at, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "listen: cannot listen on %s: %s", listen_at, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The address a listening socket serves, as HOST:PORT. */
static void describe_socket(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            char a[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
            snprintf(host, sizeof host, "[%.43s]", a);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, outlen, "%s:%d", host, port);
}

int http_start(struct server *s, int listen_fd, char *bound, size_t boundlen, char *err, size_t errlen)
{
    if (listen_fd < 0) {
        listen_fd = bind_listen(s->config.listen, err, errlen);
        if (listen_fd < 0)
            return -1;
    } else {
        fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    }
    describe_socket(listen_fd, bound, boundlen);
    struct http *h = xcalloc(1, sizeof *h);
    LIST_INIT(&h->waiting);
    LIST_INIT(&h->heads);
    TAILQ_INIT(&h->receiving);
    LIST_INIT(&h->unread);
    LIST_INIT(&h->streams);
    h->assets[0] = asset_blob(page_js, page_js_len, h->asset_etags[0]);
    h->assets[1] = asset_blob(page_css, page_css_len, h->asset_etags[1]);
    h->cities_body = cities_document(h->cities_etag);
    h->cities_gzip = answer_gzip(h->cities_body, h->cities_etag, h->cities_gzip_etag);
    h->openapi_body = blob_new((const char *)openapi_json, openapi_json_len);
    char hex[17];
    hash_hex(h->openapi_body->data, h->openapi_body->len, hex);
    snprintf(h->openapi_etag, sizeof h->openapi_etag, "\"%s\"", hex);
    h->openapi_gzip = answer_gzip(h->openapi_body, h->openapi_etag, h->openapi_gzip_etag);
    h->made_sweep = evtimer_new(s->base, made_sweep, h);
    h->views = views_new();
    h->timeout_body = answer_error_body(API_ERROR_REQUEST_TIMEOUT, NULL);
    h->header_timer = evtimer_new(s->base, header_deadline_passed, s);
    h->burst_timer = evtimer_new(s->base, burst_tick, h);
    const struct config *c = &s->config;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)c->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->connection_memory_limit,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_URI_LOG_CALLBACK, request_line_read, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, connection_event, s,
        MHD_OPTION_END);
    if (h->mhd == NULL) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", bound);
        close(listen_fd);
        blob_unref(h->cities_body);
        blob_unref(h->cities_gzip);
        blob_unref(h->openapi_body);
        blob_unref(h->openapi_gzip);
        event_free(h->made_sweep);
        views_free(h->views);
        blob_unref(h->timeout_body);
        event_free(h->header_timer);
        event_free(h->burst_timer);
        blob_unref(h->assets[0]);
        blob_unref(h->assets[1]);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    s->http = h;
    h->epoll_ready = event_new(s->base, info->epoll_fd, EV_READ | EV_PERSIST, run_mhd, s);
    h->timeout = evtimer_new(s->base, run_mhd, s);
    h->run_now = event_new(s->base, -1, 0, run_mhd, s);
    event_add(h->epoll_ready, NULL);
    trigger_run(s);
    return 0;
}

void http_stop_accepting(struct server *s)
{
    streams_end(s->http, 0);
    MHD_socket fd = MHD_quiesce_daemon(s->http->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    trigger_run(s);
}

size_t http_waiting(const struct server *s)
{
    return s->http ? s->http->nwaiting : 0;
}

size_t http_connections(const struct server *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->http->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void http_stop(struct server *s)
{
    struct http *h = s->http;
    if (h == NULL)
        return;
    streams_end(h, 1);
    MHD_stop_daemon(h->mhd);
    made_clear_all(h);
    event_free(h->made_sweep);
    views_free(h->views);
    burst_flush_all(h);
    event_free(h->epoll_ready);
    event_free(h->timeout);
    event_free(h->run_now);
    event_free(h->header_timer);
    event_free(h->burst_timer);
    blob_unref(h->cities_body);
    blob_unref(h->cities_gzip);
    blob_unref(h->openapi_body);
    blob_unref(h->openapi_gzip);
    blob_unref(h->timeout_body);
    blob_unref(h->assets[0]);
    blob_unref(h->assets[1]);
    blob_unref(h->parsed_body);
    json_decref(h->parsed);
    free(h);
    s->http = NULL;
}

void http_configure(struct server *s)
{
    if (s->http != NULL)
        header_timer_arm(s);
}
