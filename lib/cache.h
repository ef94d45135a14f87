/* A bounded map from string keys to owned values, least recently used evicted first.
 * Used twice: city answers and movie records shared across cities.
 * What "fresh" means is the values' business; the map only keeps and bounds them.
 *
 * Two bounds. Each cache may bound its own count of entries (the cities' cache_max_entries).
 * Memory is bounded in bytes by a budget that several caches share (cache_max_bytes: the
 * city and movie caches together): every entry is charged the size its owner gives at put
 * time, plus the cache's own overhead for the entry and its key, and while the caches of a
 * budget hold more than its bound, the least recently used entry of any of them goes. Each
 * cache keeps its own map and recency list; the budget threads every entry of its caches on
 * one more recency list, the order the byte bound evicts in. One budget, one bound, so "how
 * much memory do the caches hold" has one answer. */
#ifndef MOVIESD_CACHE_H
#define MOVIESD_CACHE_H

#include <stddef.h>

struct cache_budget;
struct cache;

/* A byte budget for the caches that will charge it (new). */
struct cache_budget *cache_budget_new(size_t max_bytes);
/* Accepts NULL; every cache charging b must have been freed first. */
void cache_budget_free(struct cache_budget *b);
/* Changes the bound, evicting at once if needed. */
void cache_budget_set_max(struct cache_budget *b, size_t max_bytes);
size_t cache_budget_bytes(const struct cache_budget *b);   /* held by all its caches */

/* A cache charging budget (borrowed; it must outlive the cache), holding at most
 * max_entries entries. free_value is called on every value the cache drops (replaced,
 * evicted or freed). */
struct cache *cache_new(struct cache_budget *budget, size_t max_entries,
                        void (*free_value)(void *value));
void cache_free(struct cache *c);                   /* accepts NULL */

/* The value for key (borrowed) and marks it most recently used; NULL if absent. */
void *cache_get(struct cache *c, const char *key);
/* The value for key (borrowed) without marking it used; NULL if absent. */
void *cache_peek(const struct cache *c, const char *key);
/* Stores value under key (steals value), charged bytes, replacing and freeing any old one,
 * then evicts least recently used entries beyond the bounds, from this cache for the count
 * and from any cache of the budget for the bytes. Returns 1 if value is held, 0 if it was
 * freed at once, with any old value under key: an entry bigger than the whole byte bound is
 * never kept, and nothing is evicted for it. */
int cache_put(struct cache *c, const char *key, void *value, size_t bytes);
/* Changes the count bound, evicting at once if needed. */
void cache_set_max(struct cache *c, size_t max_entries);
size_t cache_count(const struct cache *c);
size_t cache_bytes(const struct cache *c);          /* this cache's share of the budget */

#endif
