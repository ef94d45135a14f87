/* A bounded map from string keys to owned values, least recently used evicted first.
 * Used twice: city answers (cache_max_entries) and movie records shared across cities.
 * What "fresh" means is the values' business; the map only keeps and bounds them. */
#ifndef MOVIESD_CACHE_H
#define MOVIESD_CACHE_H

#include <stddef.h>

struct cache;

/* free_value is called on every value the cache drops (replaced, evicted or freed). */
struct cache *cache_new(size_t max_entries, void (*free_value)(void *value));
void cache_free(struct cache *c);                   /* accepts NULL */

/* The value for key (borrowed) and marks it most recently used; NULL if absent. */
void *cache_get(struct cache *c, const char *key);
/* Stores value under key (steals value), replacing and freeing any old one, then evicts
 * least recently used entries beyond the bound. */
void cache_put(struct cache *c, const char *key, void *value);
/* Changes the bound, evicting at once if needed. */
void cache_set_max(struct cache *c, size_t max_entries);
size_t cache_count(const struct cache *c);

#endif
