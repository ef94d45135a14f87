/* The HTTP front: libmicrohttpd without threads of its own, driven from the loop.
 *
 * MHD's epoll fd is a persistent read event; after every MHD_run() its timeout re-arms a
 * timer (a connection that is never run again would hang). A /movies request that must
 * wait for a scrape is suspended; it has its own deadline because a suspended connection
 * never times out in MHD. Whatever ends the wait (answer, deadline, shutdown) prepares the
 * response, resumes the connection and asks the loop to run MHD: never MHD_run() from
 * inside another library's callback. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "douban.h"
#include "fetch.h"
#include "log.h"
#include "movie.h"
#include "metrics.h"
#include "scrape.h"
#include "server.h"
#include "util.h"

/* One client connection (MHD's socket context), watched for the client hanging up. */
struct conn {
    struct server *server;
    int fd;
    struct event *hangup;          /* EV_CLOSED: the peer shut its side */
    int in_request;                /* between the first handler call and completed() */
    int peer_gone;
};

struct request {
    struct server *server;
    struct conn *conn;
    struct MHD_Connection *connection;
    double started;
    char method[12];
    int head;                      /* HEAD: headers only, no body bytes sent */
    const char *route;             /* metrics label */
    char target[160];              /* path and query for the access log, escaped */
    int status;
    size_t bytes;
    struct answer_wait *wait;      /* while suspended */
    struct event *deadline;
    struct MHD_Response *response; /* prepared while suspended, queued on resume */
    int suspended;
    LIST_ENTRY(request) link;
};

struct http {
    struct MHD_Daemon *mhd;
    struct event *epoll_ready;
    struct event *timeout;
    struct event *run_now;
    LIST_HEAD(, request) suspended;
    size_t nsuspended;
};

static void trigger_run(struct server *s);

/* Runs MHD and re-arms its timer: the one place MHD_run is called. */
static void run_mhd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct http *h = s->http;
    size_t before = http_connections(s);
    MHD_run(h->mhd);
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

/* A response whose body is a shared blob (NULL body: empty); counts its bytes. */
static struct MHD_Response *blob_response(struct request *rq, struct blob *body)
{
    rq->bytes = body && !rq->head ? body->len : 0;
    if (body == NULL)
        return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return MHD_create_response_from_buffer_with_free_callback_cls(body->len, body->data, release_blob,
                                                                 blob_ref(body));
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

/* A JSON error response: {"error": {"code", "message"}}. */
static struct MHD_Response *error_response(struct request *rq, const char *code, const char *message,
                                           long retry_after)
{
    struct server *s = rq->server;
    struct blob *body = answer_error_body(code, message);
    struct MHD_Response *r = blob_response(rq, body);
    blob_unref(body);
    common_headers(s, r, "application/json; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_retry_after(r, retry_after);
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

/* The response for a city's answer, honouring If-None-Match. Sets rq->status. */
static struct MHD_Response *answer_response(struct request *rq, const struct answer *a)
{
    struct server *s = rq->server;
    if (a->status != 200) {
        rq->status = a->status;
        struct MHD_Response *r = blob_response(rq, a->body);
        common_headers(s, r, "application/json; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        add_retry_after(r, a->retry_after);
        return r;
    }
    const char *inm = MHD_lookup_connection_value(rq->connection, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    int not_modified = inm != NULL && a->etag != NULL &&
                       (strstr(inm, a->etag) != NULL || strcmp(inm, "*") == 0);
    struct MHD_Response *r = blob_response(rq, not_modified ? NULL : a->body);
    rq->status = not_modified ? MHD_HTTP_NOT_MODIFIED : 200;
    common_headers(s, r, "application/json; charset=utf-8");
    char value[64];
    snprintf(value, sizeof value, "public, max-age=%ld", a->max_age);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, value);
    snprintf(value, sizeof value, "%ld", a->age);
    MHD_add_response_header(r, MHD_HTTP_HEADER_AGE, value);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, a->etag);
    return r;
}

/* Ends a suspended request's wait with a prepared response. */
static void resume_with(struct request *rq, struct MHD_Response *response)
{
    struct server *s = rq->server;
    rq->response = response;
    rq->wait = NULL;
    if (rq->deadline) {
        event_free(rq->deadline);
        rq->deadline = NULL;
    }
    LIST_REMOVE(rq, link);
    s->http->nsuspended--;
    rq->suspended = 0;
    MHD_resume_connection(rq->connection);
    trigger_run(s);
}

/* The scrape a suspended request waited for has ended. */
static void answer_arrived(const struct answer *a, void *arg)
{
    struct request *rq = arg;
    rq->wait = NULL;
    resume_with(rq, answer_response(rq, a));
}

/* A suspended request's own deadline passed: the last good answer if young enough, else
 * 504; either way it stops waiting (the scrape goes on and fills the cache). */
static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct request *rq = arg;
    struct answer stale;
    int have_stale = answer_fallback(rq->wait, &stale);
    struct MHD_Response *response =
        have_stale ? answer_response(rq, &stale)
                   : error_response(rq, "upstream_timeout",
                                    "no answer from the upstream within the request deadline", -1);
    if (!have_stale)
        rq->status = MHD_HTTP_GATEWAY_TIMEOUT;
    answer_cancel(rq->wait);
    rq->wait = NULL;
    resume_with(rq, response);
}

/* GET /movies?city=...: answers at once or suspends the connection. */
static struct MHD_Response *handle_movies(struct request *rq)
{
    struct server *s = rq->server;
    const char *city = NULL;
    size_t city_len = 0;
    /* With its length: a %00 inside the value must not cut it short. */
    if (MHD_lookup_connection_value_n(rq->connection, MHD_GET_ARGUMENT_KIND, "city", 4, &city,
                                      &city_len) != MHD_YES)
        city = NULL;
    if (city == NULL) {
        rq->status = MHD_HTTP_BAD_REQUEST;
        return error_response(rq, "missing_city", "the query parameter 'city' is required", -1);
    }
    if (city_len != strlen(city) || !douban_city_valid(city)) {
        rq->status = MHD_HTTP_BAD_REQUEST;
        return error_response(rq, "invalid_city", "'city' must be 1 to 32 letters a-z, e.g. 'beijing'", -1);
    }
    struct answer now;
    struct answer_wait *w = answer_city(s->answerer, city, !s->draining, &now, answer_arrived, rq);
    if (w == NULL)
        return answer_response(rq, &now);
    rq->wait = w;
    rq->suspended = 1;
    rq->deadline = evtimer_new(s->base, deadline_passed, rq);
    struct timeval tv = {(time_t)s->config.request_deadline, 0};
    evtimer_add(rq->deadline, &tv);
    LIST_INSERT_HEAD(&s->http->suspended, rq, link);
    s->http->nsuspended++;
    MHD_suspend_connection(rq->connection);
    return NULL;
}

/* GET /readyz: ready unless the breaker is open or the process is stopping. */
static struct MHD_Response *handle_readyz(struct request *rq)
{
    struct server *s = rq->server;
    long left = fetch_breaker_remaining(s->fetcher);
    if (s->draining || left > 0) {
        rq->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        json_t *doc = json_pack("{s:s, s:s}", "status", "unavailable", "reason",
                                s->draining ? "shutting down"
                                            : "the upstream refused our requests; waiting before asking again");
        if (left > 0)
            json_object_set_new(doc, "retry_after", json_integer(left));
        struct MHD_Response *r = json_response(rq, doc);
        add_retry_after(r, left > 0 ? left : -1);
        return r;
    }
    rq->status = MHD_HTTP_OK;
    return json_response(rq, json_pack("{s:s}", "status", "ready"));
}

/* GET /metrics in the Prometheus text format. */
static struct MHD_Response *handle_metrics(struct request *rq)
{
    struct server *s = rq->server;
    long left = fetch_breaker_remaining(s->fetcher);
    struct metrics_gauges g = {
        .scrapes_in_flight = (long)scraper_active(s->scraper),
        .upstream_queue_length = (long)fetch_queue_length(s->fetcher),
        .upstream_in_flight = (long)fetch_in_flight(s->fetcher),
        .breaker_open = left > 0,
        .breaker_remaining = left,
        .cached_cities = (long)answerer_cached_cities(s->answerer),
        .cached_movies = (long)scraper_cached_movies(s->scraper),
    };
    rq->status = MHD_HTTP_OK;
    return text_response(rq, metrics_render(s->metrics, &g), "text/plain; version=0.0.4; charset=utf-8");
}

/* Routes a request; NULL means it was suspended. */
static struct MHD_Response *route(struct request *rq, const char *url, const char *method)
{
    static const struct {
        const char *path;
        const char *label;
        struct MHD_Response *(*handler)(struct request *);
    } routes[] = {
        {"/movies", "movies", handle_movies},
        {"/healthz", "healthz", NULL},
        {"/readyz", "readyz", handle_readyz},
        {"/metrics", "metrics", handle_metrics},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) != 0)
            continue;
        rq->route = routes[i].label;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            rq->status = MHD_HTTP_METHOD_NOT_ALLOWED;
            struct MHD_Response *r = error_response(rq, "method_not_allowed", "only GET and HEAD are allowed", -1);
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
            return r;
        }
        if (routes[i].handler == NULL) {
            rq->status = MHD_HTTP_OK;
            return json_response(rq, json_pack("{s:s}", "status", "ok"));
        }
        return routes[i].handler(rq);
    }
    rq->route = "other";
    rq->status = MHD_HTTP_NOT_FOUND;
    return error_response(rq, "not_found", "no such endpoint; try GET /movies?city=beijing", -1);
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

/* The client shut its side: between requests it can never send a whole one again. A
 * request in progress is left to finish (its client may still read the answer). */
static void peer_hung_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->peer_gone = 1;
    if (!c->in_request)
        drop_connection(c);
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
        c->fd = info->connect_fd;
        c->hangup = event_new(s->base, c->fd, EV_CLOSED, peer_hung_up, c);
        event_add(c->hangup, NULL);
        *socket_context = c;
    } else if (*socket_context != NULL) {
        struct conn *c = *socket_context;
        event_free(c->hangup);
        free(c);
        *socket_context = NULL;
    }
}

/* MHD's access handler: called for the headers, for each body chunk, and after a resume. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    struct server *s = cls;
    struct request *rq = *req_cls;
    if (rq == NULL) {
        rq = xcalloc(1, sizeof *rq);
        rq->server = s;
        rq->connection = connection;
        rq->started = clock_monotonic();
        rq->route = "other";
        snprintf(rq->method, sizeof rq->method, "%s", method);
        rq->head = strcmp(method, "HEAD") == 0;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->conn = info ? info->socket_context : NULL;
        if (rq->conn)
            rq->conn->in_request = 1;
        note_target(rq, url);
        *req_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;  /* no endpoint takes a body */
        return MHD_YES;
    }
    struct MHD_Response *response = rq->response;
    rq->response = NULL;
    if (response == NULL) {
        if (rq->suspended)
            return MHD_YES;
        response = route(rq, url, method);
        if (response == NULL)
            return MHD_YES;  /* suspended */
    }
    enum MHD_Result ret = MHD_queue_response(connection, (unsigned)rq->status, response);
    MHD_destroy_response(response);
    return ret;
}

/* Request done (answered or connection lost): access log, metrics, free. */
static void completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                      enum MHD_RequestTerminationCode code)
{
    (void)connection;
    struct server *s = cls;
    struct request *rq = *req_cls;
    if (rq == NULL)
        return;
    double seconds = clock_monotonic() - rq->started;
    char method[sizeof rq->method * 4];
    log_escape(rq->method, strlen(rq->method), method, sizeof method);
    log_info("%s %s %d %zu %.1fms%s", method, rq->target, rq->status, rq->bytes, seconds * 1000,
             code == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection lost)");
    metrics_request(s->metrics, rq->route, rq->status, seconds);
    if (rq->suspended) {
        LIST_REMOVE(rq, link);
        s->http->nsuspended--;
    }
    if (rq->wait)
        answer_cancel(rq->wait);
    if (rq->deadline)
        event_free(rq->deadline);
    if (rq->response)
        MHD_destroy_response(rq->response);
    if (rq->conn) {
        rq->conn->in_request = 0;
        if (rq->conn->peer_gone)
            drop_connection(rq->conn);
    }
    free(rq);
    *req_cls = NULL;
}

/* MHD's own error messages go to the log. */
static void __attribute__((format(printf, 2, 0))) mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    log_warn("http: %s", line);
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
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
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
    LIST_INIT(&h->suspended);
    const struct config *c = &s->config;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)c->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->connection_memory_limit,
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, connection_event, s,
        MHD_OPTION_END);
    if (h->mhd == NULL) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", bound);
        close(listen_fd);
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
    MHD_socket fd = MHD_quiesce_daemon(s->http->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    trigger_run(s);
}

size_t http_waiting(const struct server *s)
{
    return s->http ? s->http->nsuspended : 0;
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
    MHD_stop_daemon(h->mhd);
    event_free(h->epoll_ready);
    event_free(h->timeout);
    event_free(h->run_now);
    free(h);
    s->http = NULL;
}
