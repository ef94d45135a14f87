/* The fetcher refuses a URL off the upstream's origin before any transfer starts: no
 * connection, no start counted against the politeness budget, FETCH_ERROR with the reason. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "config.h"
#include "fetch.h"
#include "metrics.h"

struct result {
    struct event_base *base;
    int called;
    enum fetch_outcome outcome;
    char error[256];
};

static void done(const struct fetch_response *r, void *arg)
{
    struct result *res = arg;
    res->called++;
    res->outcome = r->outcome;
    snprintf(res->error, sizeof res->error, "%s", r->error ? r->error : "");
    event_base_loopbreak(res->base);
}

static void give_up_waiting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Fetches url and runs the loop until its callback (or 10 s); the result. */
static struct result fetch(struct event_base *base, struct fetcher *f, const char *url)
{
    struct result res = {.base = base};
    struct event *guard = evtimer_new(base, give_up_waiting, base);
    struct timeval ten = {10, 0};
    evtimer_add(guard, &ten);
    fetch_start(f, url, FETCH_URGENT, done, &res);
    event_base_dispatch(base);
    event_free(guard);
    return res;
}

static void set(struct config *c, const char *name, const char *value)
{
    char err[256];
    if (config_set(c, config_find(name), value, name, err, sizeof err) != 0) {
        fprintf(stderr, "config_set %s: %s\n", name, err);
        exit(2);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* A port bound but not listening: a transfer to it is refused at once by the kernel. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(s, (struct sockaddr *)&addr, &len) != 0) {
        perror("socket");
        return 2;
    }
    int port = ntohs(addr.sin_port);

    struct config c;
    char upstream[64], url[128];
    config_init(&c);
    snprintf(upstream, sizeof upstream, "http://127.0.0.1:%d", port);
    set(&c, "upstream", upstream);
    set(&c, "min_request_interval_ms", "0");
    set(&c, "max_requests_per_minute", "0");
    set(&c, "retries", "0");
    struct event_base *base = event_base_new();
    struct metrics *m = metrics_new();
    struct fetcher *f = fetcher_new(base, &c, m);
    CHECK_STR(fetch_upstream_host(f), "127.0.0.1");

    const char *refused[] = {"http://127.0.0.1", "http://2130706433", "http://0x7f000001",
                             "http://[::ffff:127.0.0.1]", "https://127.0.0.1", "http://localhost"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        /* The first names another port; the others the upstream's port spelled otherwise. */
        snprintf(url, sizeof url, "%s:%d/subject/1/", refused[i], i == 0 ? port + 1 : port);
        struct result r = fetch(base, f, url);
        CHECK_INT(r.called, 1);
        CHECK_INT(r.outcome, FETCH_ERROR);
        CHECK(strstr(r.error, "refused to fetch it") != NULL);
        if (strstr(r.error, "refused to fetch it") == NULL)
            fprintf(stderr, "    %s: %s\n", url, r.error);
    }
    struct result r = fetch(base, f, "not a url");
    CHECK_INT(r.outcome, FETCH_ERROR);
    CHECK(strstr(r.error, "refused to fetch it") != NULL);
    CHECK_INT(fetch_starts_last_minute(f), 0);  /* nothing was sent */
    CHECK_INT(fetch_in_flight(f), 0);

    /* The upstream's own origin is fetched: a transfer starts and the kernel refuses it. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/subject/1/", port);
    r = fetch(base, f, url);
    CHECK_INT(r.called, 1);
    CHECK_INT(r.outcome, FETCH_ERROR);
    CHECK(strstr(r.error, "refused to fetch it") == NULL);
    CHECK_INT(fetch_starts_last_minute(f), 1);

    fetcher_free(f);
    metrics_free(m);
    event_base_free(base);
    config_free(&c);
    close(s);
    curl_global_cleanup();
    return check_summary();
}
