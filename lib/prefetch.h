/* Prefetch: the cities of prefetch_cities are scraped at start and refreshed before their
 * listing TTL runs out, so the people who ask for them never wait and never see an
 * incomplete answer. Refreshes are spread evenly over the TTL (one city's turn every
 * 0.9 × listing_ttl / n seconds, in table order), not bunched, and go through the fetcher's
 * prefetch queue, which may use at most half of max_requests_per_minute. */
#ifndef MOVIESD_PREFETCH_H
#define MOVIESD_PREFETCH_H

struct event_base;
struct answerer;
struct config;

struct prefetcher;

/* answerer and config are borrowed; config is read live. Starts the cold cities at once. */
struct prefetcher *prefetcher_new(struct event_base *base, struct answerer *answerer,
                                  const struct config *config);
/* Applies a changed prefetch_cities or listing_ttl (SIGHUP). */
void prefetcher_configure(struct prefetcher *p);
/* Stops prefetching (shutdown); prefetches under way are the answerer's. */
void prefetcher_stop(struct prefetcher *p);
void prefetcher_free(struct prefetcher *p);   /* accepts NULL */

#endif
