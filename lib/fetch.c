/* libcurl's multi-socket API driven from the libevent loop (the pattern of curl's
 * docs/examples/hiperfifo.c), with a polite queue in front of it.
 *
 * A request moves QUEUED -> RUNNING -> (WAITING -> QUEUED for a retry or an in-host
 * redirect) -> completed. pump() is the only place transfers start: it runs as an event
 * callback and starts queued requests while the per-host cap, the total cap, the spacing and
 * the per-minute window allow, or arms itself for the moment they will. Completions are
 * collected from curl first and handled after, so a callback that starts or cancels other
 * requests never runs inside a curl callback. */
#include "fetch.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* A Retry-After longer than this is not waited out inside one request: it is reported. */
#define MAX_RETRY_WAIT 30.0
#define MAX_REDIRECTS 3

enum request_state { STATE_QUEUED, STATE_RUNNING, STATE_WAITING };

struct fetch_request {
    struct fetcher *fetcher;
    char *url;
    fetch_cb cb;
    void *arg;
    enum request_state state;
    CURL *easy;
    char *body;
    size_t len, cap;
    int too_large;
    long retry_after;          /* from the last response's Retry-After header, -1 if none */
    int attempts;              /* 1 + retries scheduled so far */
    int redirects;
    enum fetch_priority priority;
    unsigned long epoch;       /* breaker epoch at the first start */
    double attempt_started;
    struct event *wait_timer;
    char error[CURL_ERROR_SIZE];
    TAILQ_ENTRY(fetch_request) queue_link;  /* in fetcher.queue while QUEUED */
    TAILQ_ENTRY(fetch_request) all_link;    /* in fetcher.all always */
};

TAILQ_HEAD(request_list, fetch_request);

struct fetcher {
    struct event_base *base;
    struct metrics *metrics;
    CURLM *multi;
    CURLSH *share;              /* cookies, kept in memory across requests */
    struct curl_slist *headers;
    struct event *curl_timer;
    struct event *pump_timer;
    struct request_list urgent;     /* QUEUED listings and retries: served first */
    struct request_list queue;      /* QUEUED movie pages */
    struct request_list all;
    size_t queued, in_flight;

    char *host;
    char *user_agent;
    long long max_host_connections, max_total, timeout, max_body, min_interval_ms,
        max_per_minute, retries, block_backoff, block_backoff_max;

    double next_start;          /* spacing: no start before this */
    double *starts;             /* ring of the last max_per_minute start times */
    size_t starts_cap, starts_head, starts_count;

    double breaker_until;
    double breaker_backoff;     /* the last backoff applied, doubled on a repeat block */
    int blocked_since_success;
    unsigned long epoch;        /* counts breaker trips */
};

/* What curl keeps for each socket it asks us to watch. */
struct socket_watch {
    struct event *ev;
};

static void pump(evutil_socket_t fd, short what, void *arg);
static void check_done(struct fetcher *f);

/* The queue a request waits in. */
static struct request_list *queue_of(struct fetcher *f, const struct fetch_request *r)
{
    return r->priority == FETCH_URGENT ? &f->urgent : &f->queue;
}

/* Queues r at the back of its queue, or at the front (retries and redirects, whose client
 * has waited longest). */
static void enqueue(struct fetcher *f, struct fetch_request *r, int front)
{
    r->state = STATE_QUEUED;
    if (front)
        TAILQ_INSERT_HEAD(queue_of(f, r), r, queue_link);
    else
        TAILQ_INSERT_TAIL(queue_of(f, r), r, queue_link);
    f->queued++;
}

/* Takes r out of its queue. */
static void dequeue(struct fetcher *f, struct fetch_request *r)
{
    TAILQ_REMOVE(queue_of(f, r), r, queue_link);
    f->queued--;
}

/* A random number in [0, 1) for jitter; quality does not matter here. */
static double jitter(void)
{
    return (double)rand() / ((double)RAND_MAX + 1.0);
}

/* Arms ev to fire after seconds (0 = on the next loop turn). */
static void arm_timer(struct event *ev, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    evtimer_add(ev, &tv);
}

/* Runs pump() soon from the loop. */
static void schedule_pump(struct fetcher *f)
{
    arm_timer(f->pump_timer, 0);
}

/* The host part of url, lower-cased (new string), or NULL if url does not parse. */
static char *url_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *result = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        result = xstrdup(host);
        for (char *p = result; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    curl_free(host);
    curl_url_cleanup(u);
    return result;
}

/* curl's socket callback: (re)arms a persistent loop event for what curl wants. */
static void socket_event(evutil_socket_t fd, short what, void *arg);
static int socket_callback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct fetcher *f = userp;
    struct socket_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            event_free(w->ev);
            free(w);
        }
        return 0;
    }
    if (w == NULL) {
        w = xcalloc(1, sizeof *w);
        curl_multi_assign(f->multi, s, w);
    } else {
        event_free(w->ev);
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    w->ev = event_new(f->base, s, kind, socket_event, f);
    event_add(w->ev, NULL);
    return 0;
}

/* curl's timer callback: only arms the loop timer; curl runs from timer_event(). */
static int timer_callback(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct fetcher *f = userp;
    if (timeout_ms < 0)
        evtimer_del(f->curl_timer);
    else
        arm_timer(f->curl_timer, (double)timeout_ms / 1000.0);
    return 0;
}

/* A watched socket is ready: let curl act on it. */
static void socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct fetcher *f = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(f->multi, fd, action, &running);
    check_done(f);
}

/* curl's timeout expired. */
static void timer_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetcher *f = arg;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

/* Body bytes (decoded): kept up to max_body; past it the transfer is aborted. */
static size_t write_callback(char *data, size_t size, size_t n, void *arg)
{
    struct fetch_request *r = arg;
    size_t bytes = size * n;
    if (r->len + bytes > (size_t)r->fetcher->max_body) {
        r->too_large = 1;
        return 0;
    }
    if (r->len + bytes + 1 > r->cap) {
        r->cap = r->cap ? r->cap : 16384;
        while (r->cap < r->len + bytes + 1)
            r->cap *= 2;
        r->body = xrealloc(r->body, r->cap);
    }
    memcpy(r->body + r->len, data, bytes);
    r->len += bytes;
    r->body[r->len] = '\0';
    return bytes;
}

/* Header lines: only Retry-After is of interest (seconds or an HTTP date; junk counts as 60 s). */
static size_t header_callback(char *line, size_t size, size_t n, void *arg)
{
    struct fetch_request *r = arg;
    size_t bytes = size * n;
    static const char name[] = "retry-after:";
    if (bytes > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        char value[64];
        size_t i = sizeof name - 1, j = 0;
        while (i < bytes && (line[i] == ' ' || line[i] == '\t'))
            i++;
        while (i < bytes && j < sizeof value - 1 && line[i] != '\r' && line[i] != '\n')
            value[j++] = line[i++];
        while (j > 0 && (value[j - 1] == ' ' || value[j - 1] == '\t'))
            j--;
        value[j] = '\0';
        long long seconds;
        time_t when;
        if (parse_integer(value, 0, 86400, &seconds) == 0)
            r->retry_after = (long)seconds;
        else if ((when = curl_getdate(value, NULL)) != -1)  /* the HTTP-date form */
            r->retry_after = when > time(NULL) ? (long)(when - time(NULL)) : 0;
        else
            r->retry_after = 60;
    }
    return bytes;
}

/* Starts one transfer of r->url. Returns 0, or -1 if curl would not take it. */
static int start_transfer(struct fetcher *f, struct fetch_request *r)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        log_error("curl_easy_init failed");
        abort();
    }
    r->easy = e;
    r->state = STATE_RUNNING;
    r->len = 0;
    r->too_large = 0;
    r->retry_after = -1;
    r->error[0] = '\0';
    r->attempt_started = clock_monotonic();
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_callback);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_callback);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  /* redirects are checked by hand */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)f->timeout);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)f->timeout);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  /* the cap counts decoded bytes */
    curl_easy_setopt(e, CURLOPT_USERAGENT, f->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_SHARE, f->share);
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");       /* enables the cookie engine */
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        r->easy = NULL;
        return -1;
    }
    f->in_flight++;
    return 0;
}

/* Records a start for the spacing and per-minute rules. */
static void note_start(struct fetcher *f, double now)
{
    if (f->min_interval_ms > 0)
        f->next_start = now + (double)f->min_interval_ms / 1000.0 * (1.0 + 0.5 * jitter());
    if (f->max_per_minute > 0 && f->starts_cap > 0) {
        size_t slot = (f->starts_head + f->starts_count) % f->starts_cap;
        if (f->starts_count == f->starts_cap) {
            f->starts[f->starts_head] = now;
            f->starts_head = (f->starts_head + 1) % f->starts_cap;
        } else {
            f->starts[slot] = now;
            f->starts_count++;
        }
    }
}

/* Seconds until the per-minute window admits another start (0 if it does now). */
static double window_wait(const struct fetcher *f, double now)
{
    if (f->max_per_minute <= 0 || f->starts_count < f->starts_cap)
        return 0;
    double oldest = f->starts[f->starts_head];
    return oldest + 60.0 - now;
}

/* Delivers the final result of r and frees it. */
static void complete(struct fetch_request *r, enum fetch_outcome outcome, long status, const char *error)
{
    struct fetcher *f = r->fetcher;
    /* error may point into r, which is freed before the callback runs. */
    char why[CURL_ERROR_SIZE];
    snprintf(why, sizeof why, "%s", error ? error : "");
    struct fetch_response resp = {
        .outcome = outcome,
        .status = status,
        .body = r->body ? r->body : "",
        .len = r->len,
        .retry_after = r->retry_after,
        .error = why,
        .epoch = r->epoch,
    };
    if (outcome == FETCH_BLOCKED) {
        long left = fetch_breaker_remaining(f);
        resp.retry_after = left > 0 ? left : (r->retry_after > 0 ? r->retry_after : 60);
    }
    TAILQ_REMOVE(&f->all, r, all_link);
    fetch_cb cb = r->cb;
    void *arg = r->arg;
    char *body = r->body;
    char *url = r->url;
    if (r->wait_timer)
        event_free(r->wait_timer);
    free(r);
    cb(&resp, arg);
    free(body);
    free(url);
}

/* Opens the breaker: every request to the host waits block_backoff, doubled while blocks
 * repeat without a success in between, up to block_backoff_max. */
static void trip_breaker(struct fetcher *f, const char *why, long retry_after)
{
    if (f->block_backoff <= 0)
        return;
    double now = clock_monotonic();
    if (now < f->breaker_until)
        return;  /* already open: the answers of requests sent before it opened */
    double backoff = (double)f->block_backoff;
    if (f->blocked_since_success && f->breaker_backoff > 0)
        backoff = f->breaker_backoff * 2;
    if (backoff > (double)f->block_backoff_max)
        backoff = (double)f->block_backoff_max;
    f->breaker_backoff = backoff;
    /* The site's own Retry-After wins when it asks for longer. */
    double wait = retry_after > (long)backoff ? (double)retry_after : backoff;
    f->breaker_until = now + wait;
    f->blocked_since_success = 1;
    f->epoch++;
    log_warn("upstream %s refused us (%s): no requests for %.0f s", f->host, why, wait);
    schedule_pump(f);
}

/* Re-queues r after a wait (retry backoff). */
static void wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch_request *r = arg;
    enqueue(r->fetcher, r, 1);
    pump(-1, 0, r->fetcher);
}

/* Retries r if it has attempts left; returns 1 if it will be retried. */
static int maybe_retry(struct fetch_request *r)
{
    struct fetcher *f = r->fetcher;
    if (r->attempts > f->retries)
        return 0;
    double wait = 0.5 * (double)(1 << (r->attempts - 1)) * (1.0 + jitter());
    if (r->retry_after >= 0) {
        if ((double)r->retry_after > MAX_RETRY_WAIT)
            return 0;
        if ((double)r->retry_after > wait)
            wait = (double)r->retry_after;
    }
    r->attempts++;
    log_debug("retrying %s in %.2f s (attempt %d)", r->url, wait, r->attempts);
    r->state = STATE_WAITING;
    if (r->wait_timer == NULL)
        r->wait_timer = evtimer_new(f->base, wait_over, r);
    arm_timer(r->wait_timer, wait);
    return 1;
}

/* Decides what a finished transfer means: done, retry, redirect, block or failure. */
static void transfer_finished(struct fetch_request *r, CURLcode code)
{
    struct fetcher *f = r->fetcher;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    char *location = NULL;
    if (status >= 300 && status < 400) {
        char *loc = NULL;
        curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &loc);
        if (loc)
            location = xstrdup(loc);
    }
    double seconds = clock_monotonic() - r->attempt_started;
    curl_multi_remove_handle(f->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    f->in_flight--;
    schedule_pump(f);

    if (r->too_large) {
        metrics_upstream(f->metrics, "error", seconds);
        char why[96];
        snprintf(why, sizeof why, "body larger than %lld bytes", f->max_body);
        complete(r, FETCH_TOO_LARGE, status, why);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        metrics_upstream(f->metrics, "timeout", seconds);
        if (!maybe_retry(r))
            complete(r, FETCH_TIMEOUT, status, r->error[0] ? r->error : curl_easy_strerror(code));
    } else if (code != CURLE_OK) {
        metrics_upstream(f->metrics, "error", seconds);
        if (!maybe_retry(r))
            complete(r, FETCH_ERROR, status, r->error[0] ? r->error : curl_easy_strerror(code));
    } else if (status >= 300 && status < 400) {
        char *host = location ? url_host(location) : NULL;
        if (host != NULL && strcmp(host, f->host) == 0 && r->redirects < MAX_REDIRECTS) {
            metrics_upstream(f->metrics, "ok", seconds);
            r->redirects++;
            free(r->url);
            r->url = location;
            location = NULL;
            enqueue(f, r, 1);
        } else if (host != NULL && strcmp(host, f->host) != 0) {
            metrics_upstream(f->metrics, "blocked", seconds);
            char why[160], shown[100];
            /* The host comes from the upstream's Location header: escape it for the log. */
            snprintf(why, sizeof why, "redirected to another host (%s)",
                     log_escape(host, strlen(host), shown, sizeof shown));
            trip_breaker(f, why, r->retry_after);
            complete(r, FETCH_BLOCKED, status, why);
        } else {
            metrics_upstream(f->metrics, "error", seconds);
            complete(r, FETCH_ERROR, status, host ? "too many redirects" : "redirect without a usable Location");
        }
        free(host);
    } else if (status == 403 || status == 418 || status == 429) {
        metrics_upstream(f->metrics, "blocked", seconds);
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", status);
        trip_breaker(f, why, r->retry_after);
        complete(r, FETCH_BLOCKED, status, why);
    } else if (status >= 500) {
        metrics_upstream(f->metrics, "error", seconds);
        if (!maybe_retry(r)) {
            char why[64];
            snprintf(why, sizeof why, "HTTP %ld", status);
            complete(r, FETCH_DONE, status, why);
        }
    } else {
        metrics_upstream(f->metrics, status == 404 ? "not_found" : status < 300 ? "ok" : "error", seconds);
        complete(r, FETCH_DONE, status, NULL);
    }
    free(location);
}

/* Collects finished transfers first, then handles them: handling may add or remove
 * handles, which must not happen while curl's message queue is being read. */
static void check_done(struct fetcher *f)
{
    struct done {
        struct fetch_request *r;
        CURL *easy;
        CURLcode code;
    } *done = NULL;
    size_t n = 0, cap = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct fetch_request *r;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            done = xrealloc(done, cap * sizeof *done);
        }
        done[n].r = r;
        done[n].easy = msg->easy_handle;
        done[n].code = msg->data.result;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        /* An earlier callback may have cancelled a later one: cancel frees only after
         * removing the handle, so look the request up again. */
        struct fetch_request *r;
        int alive = 0;
        TAILQ_FOREACH(r, &f->all, all_link)
            if (r == done[i].r && r->state == STATE_RUNNING && r->easy == done[i].easy) {
                alive = 1;
                break;
            }
        if (alive)
            transfer_finished(done[i].r, done[i].code);
    }
    free(done);
}

/* Starts queued requests while the limits allow; fails them all while the breaker is open. */
static void pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetcher *f = arg;
    struct fetch_request *r;
    while ((r = TAILQ_FIRST(&f->urgent)) != NULL || (r = TAILQ_FIRST(&f->queue)) != NULL) {
        double now = clock_monotonic();
        if (now < f->breaker_until) {
            dequeue(f, r);
            complete(r, FETCH_BLOCKED, 0, "the upstream refused us recently; waiting before asking again");
            continue;
        }
        if (f->max_host_connections > 0 && f->in_flight >= (size_t)f->max_host_connections)
            return;
        if (f->in_flight >= (size_t)f->max_total)
            return;
        double wait = 0;
        if (f->min_interval_ms > 0 && now < f->next_start)
            wait = f->next_start - now;
        double window = window_wait(f, now);
        if (window > wait)
            wait = window;
        if (wait > 0) {
            arm_timer(f->pump_timer, wait);
            return;
        }
        dequeue(f, r);
        note_start(f, now);
        if (start_transfer(f, r) != 0)
            complete(r, FETCH_ERROR, 0, "libcurl refused the transfer");
    }
}

/* Copies the limits from config; resizes the per-minute ring keeping the newest starts. */
static void apply_config(struct fetcher *f, const struct config *c)
{
    free(f->user_agent);
    f->user_agent = xstrdup(c->user_agent);
    f->max_host_connections = c->max_host_connections;
    f->max_total = c->max_upstream_connections;
    f->timeout = c->upstream_timeout;
    f->max_body = c->max_body_size;
    f->min_interval_ms = c->min_request_interval_ms;
    f->max_per_minute = c->max_requests_per_minute;
    f->retries = c->retries;
    f->block_backoff = c->block_backoff;
    f->block_backoff_max = c->block_backoff_max;
    if (f->block_backoff <= 0)
        f->breaker_until = 0;

    size_t cap = (size_t)(f->max_per_minute > 0 ? f->max_per_minute : 0);
    double *starts = cap ? xcalloc(cap, sizeof *starts) : NULL;
    size_t keep = f->starts_count < cap ? f->starts_count : cap;
    for (size_t i = 0; i < keep; i++)
        starts[i] = f->starts[(f->starts_head + f->starts_count - keep + i) % f->starts_cap];
    free(f->starts);
    f->starts = starts;
    f->starts_cap = cap;
    f->starts_head = 0;
    f->starts_count = keep;

    free(f->host);
    f->host = url_host(c->upstream);
    if (f->host == NULL)
        f->host = xstrdup("");
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)(f->max_host_connections > 0 ? f->max_host_connections : 0));
    curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)f->max_total);
}

struct fetcher *fetcher_new(struct event_base *base, const struct config *config,
                            struct metrics *metrics)
{
    struct fetcher *f = xcalloc(1, sizeof *f);
    f->base = base;
    f->metrics = metrics;
    TAILQ_INIT(&f->urgent);
    TAILQ_INIT(&f->queue);
    TAILQ_INIT(&f->all);
    f->multi = curl_multi_init();
    f->share = curl_share_init();
    if (f->multi == NULL || f->share == NULL) {
        log_error("cannot initialise libcurl");
        abort();
    }
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    f->headers = curl_slist_append(f->headers, "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8");
    f->headers = curl_slist_append(f->headers, "Accept-Language: zh-CN,zh;q=0.9,en;q=0.6");
    f->headers = curl_slist_append(f->headers, "Referer: https://movie.douban.com/");
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_callback);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    f->curl_timer = evtimer_new(base, timer_event, f);
    f->pump_timer = evtimer_new(base, pump, f);
    apply_config(f, config);
    return f;
}

void fetcher_configure(struct fetcher *f, const struct config *config)
{
    apply_config(f, config);
    schedule_pump(f);
}

/* Releases r without calling back. */
static void discard(struct fetch_request *r)
{
    struct fetcher *f = r->fetcher;
    switch (r->state) {
    case STATE_QUEUED:
        dequeue(f, r);
        break;
    case STATE_RUNNING:
        curl_multi_remove_handle(f->multi, r->easy);
        curl_easy_cleanup(r->easy);
        f->in_flight--;
        schedule_pump(f);
        break;
    case STATE_WAITING:
        break;
    }
    TAILQ_REMOVE(&f->all, r, all_link);
    if (r->wait_timer)
        event_free(r->wait_timer);
    free(r->body);
    free(r->url);
    free(r);
}

void fetcher_free(struct fetcher *f)
{
    if (f == NULL)
        return;
    struct fetch_request *r;
    while ((r = TAILQ_FIRST(&f->all)) != NULL)
        discard(r);
    /* curl may still call the timer callback while cleaning up: events go last. */
    curl_multi_cleanup(f->multi);
    curl_share_cleanup(f->share);
    event_free(f->curl_timer);
    event_free(f->pump_timer);
    curl_slist_free_all(f->headers);
    free(f->starts);
    free(f->host);
    free(f->user_agent);
    free(f);
}

struct fetch_request *fetch_start(struct fetcher *f, const char *url, enum fetch_priority priority,
                                  fetch_cb cb, void *arg)
{
    struct fetch_request *r = xcalloc(1, sizeof *r);
    r->fetcher = f;
    r->url = xstrdup(url);
    r->cb = cb;
    r->arg = arg;
    r->retry_after = -1;
    r->attempts = 1;
    r->priority = priority;
    r->epoch = f->epoch;
    TAILQ_INSERT_TAIL(&f->all, r, all_link);
    enqueue(f, r, 0);
    schedule_pump(f);
    return r;
}

void fetch_cancel(struct fetch_request *r)
{
    if (r != NULL)
        discard(r);
}

int fetch_unsent(const struct fetch_request *r)
{
    return r->state == STATE_QUEUED && r->attempts == 1 && r->redirects == 0;
}

void fetch_report_block(struct fetcher *f, const char *why)
{
    metrics_upstream_reclassify(f->metrics, "ok", "blocked");
    trip_breaker(f, why, -1);
}

void fetch_report_ok(struct fetcher *f, unsigned long epoch)
{
    if (epoch == f->epoch)
        f->blocked_since_success = 0;
}

long fetch_breaker_remaining(const struct fetcher *f)
{
    /* Rounded up: while any time is left, nobody may be told the breaker is closed. */
    double left = f->breaker_until - clock_monotonic();
    return left > 0 ? (long)ceil(left) : 0;
}

size_t fetch_queue_length(const struct fetcher *f)
{
    return f->queued;
}

size_t fetch_in_flight(const struct fetcher *f)
{
    return f->in_flight;
}

const char *fetch_upstream_host(const struct fetcher *f)
{
    return f->host;
}
