/* libcurl's multi-socket API driven from the libevent loop (the pattern of curl's
 * docs/examples/hiperfifo.c), with a polite queue in front of it.
 *
 * A request moves QUEUED -> RUNNING -> (WAITING -> QUEUED for a retry, QUEUED at once for
 * an in-origin redirect) -> completed. pump() is the only place transfers start: it runs as an
 * event callback and starts queued requests while the per-host cap, the total cap, the spacing
 * and the per-minute window allow, or arms itself for the moment they will; a URL off the
 * upstream's origin (origin.h) is failed there, before a connection. Completions are
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
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "origin.h"
#include "redis.h"
#include "util.h"

/* A Retry-After longer than this is not waited out inside one request: it is reported. */
#define MAX_RETRY_WAIT 30.0
#define MAX_REDIRECTS 3
/* A Location header longer than this is not followed. */
#define MAX_LOCATION 4096

enum request_state { STATE_QUEUED, STATE_RUNNING, STATE_WAITING };

struct fetch_request {
    struct fetcher *fetcher;
    char *url;
    fetch_cb cb;
    void *arg;
    enum request_state state;
    CURL *easy;
    CURLU *curlu;              /* the checked URL the running transfer fetches */
    char *location;            /* the last response's Location header, as sent */
    char *body;
    size_t len, cap;
    int too_large;
    long retry_after;          /* from the last response's Retry-After header, -1 if none */
    int attempts;              /* 1 + retries scheduled so far */
    int redirects;
    enum fetch_priority priority;
    unsigned long epoch;       /* breaker epoch at the first start */
    double created;
    double queued;             /* seconds from creation to the first start, -1 before it */
    double attempt_started;
    struct event *wait_timer;
    char error[CURL_ERROR_SIZE];
    TAILQ_ENTRY(fetch_request) queue_link;  /* in fetcher.queues[priority] while QUEUED */
    TAILQ_ENTRY(fetch_request) all_link;    /* in fetcher.all always */
};

TAILQ_HEAD(request_list, fetch_request);

/* Start times of the last 60 s, oldest first: grows only as large as one minute's starts. */
struct start_log {
    double *t;
    size_t cap, head, count;
};

struct fetcher {
    struct event_base *base;
    struct metrics *metrics;
    CURLM *multi;
    CURLSH *share;              /* cookies, kept in memory across requests */
    struct curl_slist *headers;
    struct event *curl_timer;
    struct event *pump_timer;
    struct request_list queues[FETCH_PRIORITY_COUNT];  /* QUEUED, highest priority served first */
    size_t queued_of[FETCH_PRIORITY_COUNT];
    struct request_list all;
    size_t queued, in_flight;
    int held;                   /* fetch_hold: nothing new starts */

    char *host;
    struct origin_list origins; /* the only origins any transfer may go to */
    struct origin_list also;    /* more of them, from fetch_allow_origin (kept across reloads) */
    char *user_agent;
    long long max_host_connections, max_total, timeout, max_body, min_interval_ms,
        max_per_minute, retries, block_backoff, block_backoff_max;

    double last_start;          /* spacing: the last start (0: none yet)... */
    double last_jitter;         /* ...and the jitter drawn for the gap after it, in [0, 1) */
    struct start_log starts;    /* every start: the per-minute cap */
    struct start_log prefetch_starts;  /* prefetch starts: half the cap */

    double breaker_until;
    double breaker_backoff;     /* the last backoff applied, doubled on a repeat block */
    int blocked_since_success;
    unsigned long epoch;        /* counts breaker trips */

    /* The fleet's shared budget and breaker (fetch_set_fleet); NULL when alone. */
    struct fleet *fleet;
    struct redis *redis;
    long long expected_replicas;
    int asking;                 /* a budget ask is outstanding: at most one at a time */
    int ask_failed;             /* the last ask failed: the next start uses the local budget */
    unsigned long fleet_ok_epoch;  /* epoch + 1 of the last fleet_breaker_ok sent, 0: none */
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
    return &f->queues[r->priority];
}

/* Drops the starts older than 60 s. */
static void start_log_expire(struct start_log *l, double now)
{
    while (l->count > 0 && l->t[l->head] <= now - 60.0) {
        l->head = (l->head + 1) % l->cap;
        l->count--;
    }
}

static void start_log_add(struct start_log *l, double now)
{
    start_log_expire(l, now);
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        double *t = xmalloc(cap * sizeof *t);
        for (size_t i = 0; i < l->count; i++)
            t[i] = l->t[(l->head + i) % l->cap];
        free(l->t);
        l->t = t;
        l->cap = cap;
        l->head = 0;
    }
    l->t[(l->head + l->count) % l->cap] = now;
    l->count++;
}

/* Seconds until fewer than limit starts lie in the last 60 s (0 if they do now). */
static double start_log_wait(struct start_log *l, long long limit, double now)
{
    start_log_expire(l, now);
    if (limit <= 0 || l->count < (size_t)limit)
        return 0;
    /* The start that must leave the window before one more may begin. */
    double oldest = l->t[(l->head + l->count - (size_t)limit) % l->cap];
    return oldest + 60.0 - now;
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
    f->queued_of[r->priority]++;
}

/* Takes r out of its queue. */
static void dequeue(struct fetcher *f, struct fetch_request *r)
{
    TAILQ_REMOVE(queue_of(f, r), r, queue_link);
    f->queued--;
    f->queued_of[r->priority]--;
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
    static const char location[] = "location:";
    if (bytes > sizeof location - 1 && strncasecmp(line, location, sizeof location - 1) == 0) {
        size_t i = sizeof location - 1, end = bytes;
        while (i < end && (line[i] == ' ' || line[i] == '\t'))
            i++;
        while (end > i && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' ' ||
                           line[end - 1] == '\t'))
            end--;
        free(r->location);
        r->location = end - i <= MAX_LOCATION ? xstrndup(line + i, end - i) : NULL;
    } else if (bytes > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
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

/* Reads url with curl's parser and checks its origin against the allow-list before any
 * connection is made: the parsed handle to fetch exactly that with (new), or NULL with the
 * reason in why. */
static CURLU *allowed_url(struct fetcher *f, const char *url, char *why, size_t len)
{
    struct origin o;
    char reason[128];
    CURLU *u = origin_parse(url, &o, reason, sizeof reason);
    if (u == NULL) {
        snprintf(why, len, "refused to fetch it: %s", reason);
        return NULL;
    }
    if (!origin_list_allows(&f->origins, &o) && !origin_list_allows(&f->also, &o)) {
        char where[200], shown[200], spelled[100];
        /* The URL may come from a page or a Location header: escape it for the log. */
        origin_format(&o, where, sizeof where);
        snprintf(why, len, "refused to fetch it: %s (host written '%s') is not the upstream's origin",
                 log_escape(where, strlen(where), shown, sizeof shown),
                 log_escape(o.spelling, strlen(o.spelling), spelled, sizeof spelled));
        curl_url_cleanup(u);
        u = NULL;
    }
    origin_clear(&o);
    return u;
}

/* Starts one transfer of r->url, which u is the checked reading of (stolen). Returns 0, or
 * -1 if curl would not take it. */
static int start_transfer(struct fetcher *f, struct fetch_request *r, CURLU *u)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        log_error("curl_easy_init failed");
        abort();
    }
    r->easy = e;
    r->curlu = u;
    free(r->location);
    r->location = NULL;
    r->state = STATE_RUNNING;
    r->len = 0;
    r->too_large = 0;
    r->retry_after = -1;
    r->error[0] = '\0';
    r->attempt_started = clock_monotonic();
    /* The handle that was checked, not the text again: curl fetches what was allowed. */
    curl_easy_setopt(e, CURLOPT_CURLU, u);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_callback);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_callback);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
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
        curl_url_cleanup(u);
        r->easy = NULL;
        r->curlu = NULL;
        return -1;
    }
    f->in_flight++;
    return 0;
}

/* Records a start for the spacing and per-minute rules. */
static void note_start(struct fetcher *f, struct fetch_request *r, double now)
{
    f->last_start = now;
    f->last_jitter = jitter();
    start_log_add(&f->starts, now);
    if (r->priority == FETCH_PREFETCH)
        start_log_add(&f->prefetch_starts, now);
    if (r->queued < 0)
        r->queued = now - r->created;
}

/* Prefetch may use half of the per-minute budget: the rest stays for what people ask. */
static long long prefetch_limit(long long per_minute)
{
    if (per_minute <= 0)
        return 0;
    return per_minute >= 2 ? per_minute / 2 : 1;
}

/* The per-minute cap of a local budget that is 1/share of the whole (at least 1 start
 * when the cap is on). */
static long long per_minute_share(const struct fetcher *f, long long share)
{
    if (f->max_per_minute <= 0)
        return 0;
    long long n = f->max_per_minute / share;
    return n >= 1 ? n : 1;
}

/* Seconds r must wait under the local budget: the spacing after this replica's last start
 * and the per-minute windows. share is 1 alone, expected_replicas while the fleet's budget
 * is out of reach: the spacing stretched and the cap divided so that the replicas together
 * stay within one daemon's budget. */
static double local_wait(struct fetcher *f, const struct fetch_request *r, long long share,
                         double now)
{
    double wait = 0;
    if (f->min_interval_ms > 0 && f->last_start > 0) {
        double next = f->last_start + (double)(f->min_interval_ms * share) / 1000.0 *
                                          (1.0 + 0.5 * f->last_jitter);
        if (now < next)
            wait = next - now;
    }
    long long per_minute = per_minute_share(f, share);
    double window = start_log_wait(&f->starts, per_minute, now);
    if (window > wait)
        wait = window;
    if (r->priority == FETCH_PREFETCH) {
        window = start_log_wait(&f->prefetch_starts, prefetch_limit(per_minute), now);
        if (window > wait)
            wait = window;
    }
    return wait;
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
        .queued = r->queued,
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
    free(r->location);
    free(r);
    cb(&resp, arg);
    free(body);
    free(url);
}

/* Opens the local breaker for seconds from now, unless it is open longer already: for a
 * pause the fleet decided (its breaker open, or doubled past ours). Returns 0 when the
 * local breaker is off (block_backoff 0) and stays closed. */
static int open_breaker_for(struct fetcher *f, double seconds, const char *why)
{
    double now = clock_monotonic();
    if (f->block_backoff <= 0)
        return 0;
    if (now + seconds <= f->breaker_until)
        return 1;
    if (now >= f->breaker_until) {
        /* Like a trip of our own: pages of requests sent before say nothing of the block. */
        f->epoch++;
        f->blocked_since_success = 1;
        log_warn("upstream %s: %s: no requests for %.0f s", f->host, why, ceil(seconds));
    }
    f->breaker_until = now + seconds;
    schedule_pump(f);
    return 1;
}

/* The fleet's breaker after our trip: its pause (doubled fleet-wide) is ours too. */
static void on_fleet_trip(enum fleet_status status, long long remaining_ms, int opened, void *arg)
{
    (void)opened;
    struct fetcher *f = arg;
    if (status == FLEET_OK && remaining_ms > 0)
        open_breaker_for(f, (double)remaining_ms / 1000.0, "the fleet's breaker is open");
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
    /* The other replicas stop too; the shared pause may come back longer than ours. */
    if (f->fleet != NULL && redis_up(f->redis))
        fleet_breaker_trip(f->fleet, f->block_backoff, f->block_backoff_max,
                           retry_after > 0 ? retry_after : 0, on_fleet_trip, f);
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
    metrics_breaker_trip(f->metrics);
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

/* Retries r if it has attempts left; returns the wait before the retry, or -1 if none. */
static double maybe_retry(struct fetch_request *r)
{
    struct fetcher *f = r->fetcher;
    if (r->attempts > f->retries)
        return -1;
    double wait = 0.5 * (double)(1 << (r->attempts - 1)) * (1.0 + jitter());
    if (r->retry_after >= 0) {
        if ((double)r->retry_after > MAX_RETRY_WAIT)
            return -1;
        if ((double)r->retry_after > wait)
            wait = (double)r->retry_after;
    }
    r->attempts++;
    r->state = STATE_WAITING;
    if (r->wait_timer == NULL)
        r->wait_timer = evtimer_new(f->base, wait_over, r);
    arm_timer(r->wait_timer, wait);
    return wait;
}

/* Logs a failed attempt at warn and delivers it: every upstream failure reaches the log. */
static void give_up(struct fetch_request *r, enum fetch_outcome outcome, long status, const char *why)
{
    char url[256];
    /* After an in-origin redirect the URL comes from the upstream's Location header. */
    log_escape(r->url, strlen(r->url), url, sizeof url);
    if (r->attempts > 1)
        log_warn("upstream GET %s failed (%s); giving up after %d attempts", url, why, r->attempts);
    else
        log_warn("upstream GET %s failed (%s)", url, why);
    complete(r, outcome, status, why);
}

/* A failed attempt: retried while attempts are left, else given up; logged at warn either way. */
static void fail_or_retry(struct fetch_request *r, enum fetch_outcome outcome, long status, const char *why)
{
    double wait = maybe_retry(r);
    if (wait < 0) {
        give_up(r, outcome, status, why);
        return;
    }
    char url[256];
    log_escape(r->url, strlen(r->url), url, sizeof url);
    log_warn("upstream GET %s failed (%s); retry %d of %lld in %.1f s", url, why, r->attempts - 1,
             r->fetcher->retries, wait);
}

/* Whether a redirect to o is Douban refusing us: its captcha host or its login host. */
static int is_block_redirect(const struct origin *o)
{
    static const char *const hosts[] = {"sec.douban.com", "accounts.douban.com"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        if (strcmp(o->host, hosts[i]) == 0)
            return 1;
    return 0;
}

/* A 3xx: followed (queued again at once) when its Location stays on an allowed origin; a
 * block when it leads to Douban's captcha or login host; any other target, or a Location
 * that does not parse, fails the fetch without retries, and nothing is sent there. */
static void follow_redirect(struct fetch_request *r, long status, double seconds)
{
    struct fetcher *f = r->fetcher;
    struct origin o;
    char reason[128], why[CURL_ERROR_SIZE];
    char *target = r->location ? origin_resolve(r->url, r->location, &o, reason, sizeof reason) : NULL;
    if (target == NULL) {
        metrics_upstream(f->metrics, "error", seconds);
        if (r->location)
            snprintf(why, sizeof why, "redirect with an unusable Location: %s", reason);
        else
            snprintf(why, sizeof why, "redirect without a Location");
        give_up(r, FETCH_ERROR, status, why);
        return;
    }
    char where[200], shown[100];
    /* The target comes from the upstream's Location header: escape it for the log. */
    origin_format(&o, where, sizeof where);
    log_escape(where, strlen(where), shown, sizeof shown);
    if (origin_list_allows(&f->origins, &o) && r->redirects < MAX_REDIRECTS) {
        metrics_upstream(f->metrics, "ok", seconds);
        r->redirects++;
        free(r->url);
        r->url = target;
        target = NULL;
        enqueue(f, r, 1);
    } else if (origin_list_allows(&f->origins, &o)) {
        metrics_upstream(f->metrics, "error", seconds);
        give_up(r, FETCH_ERROR, status, "too many redirects");
    } else if (is_block_redirect(&o)) {
        metrics_upstream(f->metrics, "blocked", seconds);
        snprintf(why, sizeof why, "redirected to %s", shown);
        trip_breaker(f, why, r->retry_after);
        give_up(r, FETCH_BLOCKED, status, why);
    } else {
        char spelled[64];
        metrics_upstream(f->metrics, "error", seconds);
        snprintf(why, sizeof why, "redirected off the upstream's origin to %s (host written '%s'): not followed",
                 shown, log_escape(o.spelling, strlen(o.spelling), spelled, sizeof spelled));
        give_up(r, FETCH_ERROR, status, why);
    }
    free(target);
    origin_clear(&o);
}

/* Decides what a finished transfer means: done, retry, redirect, block or failure. */
static void transfer_finished(struct fetch_request *r, CURLcode code)
{
    struct fetcher *f = r->fetcher;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    double seconds = clock_monotonic() - r->attempt_started;
    curl_multi_remove_handle(f->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_url_cleanup(r->curlu);
    r->easy = NULL;
    r->curlu = NULL;
    f->in_flight--;
    schedule_pump(f);

    if (r->too_large) {
        metrics_upstream(f->metrics, "error", seconds);
        char why[96];
        snprintf(why, sizeof why, "body larger than %lld bytes", f->max_body);
        give_up(r, FETCH_TOO_LARGE, status, why);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        metrics_upstream(f->metrics, "timeout", seconds);
        fail_or_retry(r, FETCH_TIMEOUT, status, r->error[0] ? r->error : curl_easy_strerror(code));
    } else if (code != CURLE_OK) {
        metrics_upstream(f->metrics, "error", seconds);
        fail_or_retry(r, FETCH_ERROR, status, r->error[0] ? r->error : curl_easy_strerror(code));
    } else if (status >= 300 && status < 400) {
        follow_redirect(r, status, seconds);
    } else if (status == 403 || status == 418 || status == 429) {
        metrics_upstream(f->metrics, "blocked", seconds);
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", status);
        trip_breaker(f, why, r->retry_after);
        give_up(r, FETCH_BLOCKED, status, why);
    } else if (status >= 500) {
        metrics_upstream(f->metrics, "error", seconds);
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", status);
        fail_or_retry(r, FETCH_DONE, status, why);
    } else if (status < 200 || (status >= 300 && status != 404)) {
        /* An answer, but not one a page can be read from (401, 410...). */
        metrics_upstream(f->metrics, "error", seconds);
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", status);
        give_up(r, FETCH_DONE, status, why);
    } else {
        metrics_upstream(f->metrics, status == 404 ? "not_found" : "ok", seconds);
        complete(r, FETCH_DONE, status, NULL);
    }
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

static void pump_run(struct fetcher *f, int granted);

/* The fleet's answer to a budget ask. */
static void on_budget(enum fleet_budget verdict, long long ms, void *arg)
{
    struct fetcher *f = arg;
    f->asking = 0;
    if (f->fleet == NULL)
        return;
    switch (verdict) {
    case FLEET_BUDGET_GRANTED:
        pump_run(f, 1);
        break;
    case FLEET_BUDGET_WAIT:
        arm_timer(f->pump_timer, (double)ms / 1000.0);
        break;
    case FLEET_BUDGET_BLOCKED:
        /* With our breaker off, queued requests wait for the fleet's to close instead. */
        if (!open_breaker_for(f, (double)ms / 1000.0, "another replica was refused"))
            arm_timer(f->pump_timer, (double)ms / 1000.0);
        break;
    case FLEET_BUDGET_ERROR:
    case FLEET_BUDGET_COUNT:
        f->ask_failed = 1;
        schedule_pump(f);
        break;
    }
}

/* Asks the fleet for the start of r (the head of the queue). */
static void ask_budget(struct fetcher *f, const struct fetch_request *r)
{
    long long spacing = 0;
    if (f->min_interval_ms > 0)
        spacing = (long long)((double)f->min_interval_ms * (1.0 + 0.5 * jitter()));
    f->asking = 1;
    fleet_budget_ask(f->fleet, spacing, f->max_per_minute,
                     r->priority == FETCH_PREFETCH ? prefetch_limit(f->max_per_minute) : 0,
                     on_budget, f);
}

static void pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump_run(arg, 0);
}

/* Starts queued requests while the limits allow; fails them all while the breaker is open.
 * With a fleet and Redis up, each start needs a grant of the shared budget (granted: one is
 * in hand; it is spent if nothing can start now); without one, the local budget. */
static void pump_run(struct fetcher *f, int granted)
{
    struct fetch_request *r;
    for (;;) {
        r = NULL;
        for (int p = FETCH_PRIORITY_COUNT - 1; p >= 0 && r == NULL; p--)
            r = TAILQ_FIRST(&f->queues[p]);
        if (r == NULL)
            return;
        double now = clock_monotonic();
        if (now < f->breaker_until) {
            dequeue(f, r);
            complete(r, FETCH_BLOCKED, 0, "the upstream refused us recently; waiting before asking again");
            continue;
        }
        if (f->held)
            return;
        if (f->max_host_connections > 0 && f->in_flight >= (size_t)f->max_host_connections)
            return;
        if (f->in_flight >= (size_t)f->max_total)
            return;
        int shared = f->fleet != NULL && redis_up(f->redis) && !f->ask_failed;
        if (shared && !granted) {
            if (!f->asking)
                ask_budget(f, r);
            return;
        }
        if (!shared) {
            double wait = local_wait(f, r, f->fleet != NULL ? f->expected_replicas : 1, now);
            if (wait > 0) {
                arm_timer(f->pump_timer, wait);
                return;
            }
        }
        dequeue(f, r);
        char why[CURL_ERROR_SIZE];
        CURLU *u = allowed_url(f, r->url, why, sizeof why);
        if (u == NULL) {
            give_up(r, FETCH_ERROR, 0, why);  /* no start: it costs the upstream nothing */
            continue;
        }
        if (f->fleet != NULL && !shared) {
            metrics_fleet_fallback(f->metrics);
            f->ask_failed = 0;  /* the next start asks the fleet again */
        }
        granted = 0;
        note_start(f, r, now);  /* kept either way: the metrics and the fallback read it */
        if (start_transfer(f, r, u) != 0)
            give_up(r, FETCH_ERROR, 0, "libcurl refused the transfer");
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

    /* Every URL fetched, redirect targets included, must be on one of these origins. */
    char why[128];
    origin_list_clear(&f->origins);
    if (origin_list_add(&f->origins, c->upstream, why, sizeof why) != 0)
        log_error("upstream %s: %s; nothing will be fetched", c->upstream, why);
    free(f->host);
    f->host = xstrdup(f->origins.count > 0 ? f->origins.items[0].host : "");
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
    for (int p = 0; p < FETCH_PRIORITY_COUNT; p++)
        TAILQ_INIT(&f->queues[p]);
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
        curl_url_cleanup(r->curlu);
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
    free(r->location);
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
    free(f->starts.t);
    free(f->prefetch_starts.t);
    free(f->host);
    origin_list_clear(&f->origins);
    origin_list_clear(&f->also);
    free(f->user_agent);
    free(f);
}

int fetch_allow_origin(struct fetcher *f, const char *url, char *err, size_t errlen)
{
    return origin_list_add(&f->also, url, err, errlen);
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
    r->created = clock_monotonic();
    r->queued = -1;
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

void fetch_hold(struct fetcher *f, int hold)
{
    if (f->held == hold)
        return;
    f->held = hold;
    if (!hold)
        schedule_pump(f);
}

void fetch_set_priority(struct fetch_request *r, enum fetch_priority priority)
{
    if (r->priority == priority)
        return;
    if (r->state != STATE_QUEUED) {
        r->priority = priority;
        return;
    }
    dequeue(r->fetcher, r);
    r->priority = priority;
    enqueue(r->fetcher, r, 0);
    schedule_pump(r->fetcher);
}


void fetch_report_block(struct fetcher *f, const char *why)
{
    metrics_upstream_reclassify(f->metrics, "ok", "blocked");
    trip_breaker(f, why, -1);
}

void fetch_report_ok(struct fetcher *f, unsigned long epoch)
{
    if (epoch != f->epoch)
        return;
    f->blocked_since_success = 0;
    /* Once per epoch: the fleet's doubling starts over, and one message says so. */
    if (f->fleet != NULL && redis_up(f->redis) && f->fleet_ok_epoch != f->epoch + 1) {
        f->fleet_ok_epoch = f->epoch + 1;
        fleet_breaker_ok(f->fleet, NULL, NULL);
    }
}

void fetch_set_fleet(struct fetcher *f, struct fleet *fleet, struct redis *redis,
                     long long expected_replicas)
{
    f->fleet = fleet;
    f->redis = fleet != NULL ? redis : NULL;
    f->expected_replicas = expected_replicas >= 1 ? expected_replicas : 1;
    f->asking = 0;
    f->ask_failed = 0;
    schedule_pump(f);
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

size_t fetch_queue_length_of(const struct fetcher *f, enum fetch_priority priority)
{
    return f->queued_of[priority];
}

size_t fetch_starts_last_minute(struct fetcher *f)
{
    start_log_expire(&f->starts, clock_monotonic());
    return f->starts.count;
}

size_t fetch_in_flight(const struct fetcher *f)
{
    return f->in_flight;
}

struct event_base *fetch_event_base(const struct fetcher *f)
{
    return f->base;
}

const char *fetch_upstream_host(const struct fetcher *f)
{
    return f->host;
}
