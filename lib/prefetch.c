/* Each prefetch city gets a turn every `turn` seconds, round robin, so n cities are
 * visited once per cycle of 0.9 × listing_ttl: the remaining tenth is slack for a refresh
 * to complete before the cached answer expires. At its turn a city is refreshed if its
 * answer would no longer be fresh at its next turn plus half that slack; one refreshed in
 * the last twentieth of the TTL is skipped. Cold cities (no answer yet) are all queued at start: the fetcher's
 * half-budget for prefetch paces them, and the order they land in becomes the rotation. */
#include "prefetch.h"

#include <event2/event.h>
#include <stdlib.h>

#include "answer.h"
#include "cities.h"
#include "config.h"
#include "log.h"
#include "util.h"

/* Part of the TTL left for a refresh to complete before the answer expires. */
#define REFRESH_MARGIN 0.1

struct prefetcher {
    struct answerer *answerer;
    const struct config *config;
    struct event *timer;
    const struct city **cities;
    size_t n, next;
    double turn;
    int stopped;
};

/* Refreshes city if it has no answer, or one that would expire before its next turn. */
static void visit(struct prefetcher *p, const char *city)
{
    double ttl = (double)p->config->listing_ttl;
    double age = answerer_age(p->answerer, city);
    /* Half the margin: the refresh must be done before the answer expires. */
    if (age >= 0 && age + p->turn * (double)p->n + ttl * REFRESH_MARGIN / 2 < ttl)
        return;
    answerer_prefetch(p->answerer, city);
}

static void on_turn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct prefetcher *p = arg;
    if (p->stopped || p->n == 0)
        return;
    visit(p, p->cities[p->next]->slug);
    p->next = (p->next + 1) % p->n;
}

/* Warns when the cities cannot all be refreshed within half the request budget. */
static void check_budget(const struct prefetcher *p)
{
    long long per_minute = p->config->max_requests_per_minute;
    if (p->n == 0 || per_minute <= 0)
        return;
    double listings_per_minute = 60.0 / p->turn;
    if (listings_per_minute > (double)per_minute / 2)
        log_warn("prefetch: %zu cities every %.0f s need %.1f listings a minute, more than half of "
                 "max_requests_per_minute (%lld): answers will expire before their refresh; "
                 "raise listing_ttl or prefetch fewer cities",
                 p->n, (double)p->config->listing_ttl, listings_per_minute, per_minute);
}

void prefetcher_configure(struct prefetcher *p)
{
    const struct city **cities = NULL;
    size_t n = 0;
    char err[200];
    if (city_list_parse(p->config->prefetch_cities, &cities, &n, err, sizeof err) != 0) {
        /* The setting was validated when it was loaded. */
        log_error("prefetch_cities: %s", err);
        n = 0;
    }
    free(p->cities);
    p->cities = cities;
    p->n = n;
    p->next = 0;
    event_del(p->timer);
    p->turn = 0;
    if (p->n == 0 || p->stopped)
        return;
    p->turn = (double)p->config->listing_ttl * (1.0 - REFRESH_MARGIN) / (double)p->n;
    check_budget(p);
    size_t cold = 0;
    for (size_t i = 0; i < p->n; i++)
        if (answerer_age(p->answerer, p->cities[i]->slug) < 0)
            cold += (size_t)answerer_prefetch(p->answerer, p->cities[i]->slug);
    log_info("prefetch: %zu cities, one turn every %.1f s; %zu cold ones queued", p->n, p->turn,
             cold);
    struct timeval tv = {(time_t)p->turn, (suseconds_t)((p->turn - (double)(time_t)p->turn) * 1e6)};
    event_add(p->timer, &tv);
}

struct prefetcher *prefetcher_new(struct event_base *base, struct answerer *answerer,
                                  const struct config *config)
{
    struct prefetcher *p = xcalloc(1, sizeof *p);
    p->answerer = answerer;
    p->config = config;
    p->timer = event_new(base, -1, EV_PERSIST, on_turn, p);
    prefetcher_configure(p);
    return p;
}

void prefetcher_stop(struct prefetcher *p)
{
    if (p == NULL)
        return;
    p->stopped = 1;
    event_del(p->timer);
}

void prefetcher_free(struct prefetcher *p)
{
    if (p == NULL)
        return;
    event_free(p->timer);
    free(p->cities);
    free(p);
}
