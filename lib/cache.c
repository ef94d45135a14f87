/* Chained hash table plus doubly linked recency lists (the cache's own and its budget's):
 * O(1) get, put and eviction. */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
    char *key;
    void *value;
    size_t bytes;                    /* charged to the budget, overhead included */
    struct cache *cache;
    struct entry *chain;             /* next in the bucket */
    struct entry *newer, *older;     /* the cache's recency list */
    struct entry *b_newer, *b_older; /* the budget's recency list, across its caches */
};

struct cache_budget {
    size_t max, bytes;
    struct entry *newest, *oldest;
};

struct cache {
    struct cache_budget *budget;
    struct entry **buckets;
    size_t nbuckets, count, max, bytes;
    struct entry *newest, *oldest;
    void (*free_value)(void *);
};

/* The bucket hash of a NUL-terminated key. */
static size_t key_hash(const char *key)
{
    return (size_t)hash_fnv1a(key, strlen(key));
}

/* What an entry costs beyond its value's bytes: the entry itself and its key. */
static size_t entry_overhead(const char *key)
{
    return sizeof(struct entry) + strlen(key) + 1;
}

/* Unlinks e from both recency lists. */
static void list_unlink(struct cache *c, struct entry *e)
{
    struct cache_budget *b = c->budget;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->b_newer)
        e->b_newer->b_older = e->b_older;
    else
        b->newest = e->b_older;
    if (e->b_older)
        e->b_older->b_newer = e->b_newer;
    else
        b->oldest = e->b_newer;
    e->newer = e->older = e->b_newer = e->b_older = NULL;
}

/* Puts e at the newest end of both recency lists. */
static void list_push_newest(struct cache *c, struct entry *e)
{
    struct cache_budget *b = c->budget;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
    e->b_older = b->newest;
    if (b->newest)
        b->newest->b_newer = e;
    b->newest = e;
    if (b->oldest == NULL)
        b->oldest = e;
}

/* Adds bytes to what c and its budget hold. */
static void charge(struct cache *c, size_t bytes)
{
    c->bytes += bytes;
    c->budget->bytes += bytes;
}

/* Takes bytes off what c and its budget hold. */
static void refund(struct cache *c, size_t bytes)
{
    c->bytes -= bytes;
    c->budget->bytes -= bytes;
}

/* The slot that points at key's entry (or at the NULL ending its chain). */
static struct entry **find_slot(struct cache *c, const char *key)
{
    struct entry **slot = &c->buckets[key_hash(key) % c->nbuckets];
    while (*slot && strcmp((*slot)->key, key) != 0)
        slot = &(*slot)->chain;
    return slot;
}

/* Removes e from its cache and frees it with its value. */
static void drop(struct entry *e)
{
    struct cache *c = e->cache;
    struct entry **slot = find_slot(c, e->key);
    *slot = e->chain;
    list_unlink(c, e);
    refund(c, e->bytes);
    c->count--;
    c->free_value(e->value);
    free(e->key);
    free(e);
}

/* Doubles the bucket array when chains would grow long. */
static void grow(struct cache *c)
{
    size_t n = c->nbuckets * 2;
    struct entry **buckets = xcalloc(n, sizeof *buckets);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->chain;
            size_t b = key_hash(e->key) % n;
            e->chain = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = buckets;
    c->nbuckets = n;
}

/* Evicts c's least recently used entries beyond its count bound. */
static void enforce_count(struct cache *c)
{
    while (c->count > c->max && c->oldest)
        drop(c->oldest);
}

/* Evicts the least recently used entries of any of b's caches beyond its byte bound. */
static void enforce_bytes(struct cache_budget *b)
{
    while (b->bytes > b->max && b->oldest)
        drop(b->oldest);
}

struct cache_budget *cache_budget_new(size_t max_bytes)
{
    struct cache_budget *b = xcalloc(1, sizeof *b);
    b->max = max_bytes;
    return b;
}

void cache_budget_free(struct cache_budget *b)
{
    free(b);
}

void cache_budget_set_max(struct cache_budget *b, size_t max_bytes)
{
    b->max = max_bytes;
    enforce_bytes(b);
}

size_t cache_budget_bytes(const struct cache_budget *b)
{
    return b->bytes;
}

struct cache *cache_new(struct cache_budget *budget, size_t max_entries,
                        void (*free_value)(void *value))
{
    struct cache *c = xcalloc(1, sizeof *c);
    c->budget = budget;
    c->nbuckets = 64;
    c->buckets = xcalloc(c->nbuckets, sizeof *c->buckets);
    c->max = max_entries;
    c->free_value = free_value;
    return c;
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    while (c->oldest)
        drop(c->oldest);
    free(c->buckets);
    free(c);
}

void *cache_get(struct cache *c, const char *key)
{
    struct entry *e = *find_slot(c, key);
    if (e == NULL)
        return NULL;
    list_unlink(c, e);
    list_push_newest(c, e);
    return e->value;
}

void *cache_peek(const struct cache *c, const char *key)
{
    const struct entry *e = c->buckets[key_hash(key) % c->nbuckets];
    while (e && strcmp(e->key, key) != 0)
        e = e->chain;
    return e ? e->value : NULL;
}

int cache_put(struct cache *c, const char *key, void *value, size_t bytes)
{
    size_t cost = bytes + entry_overhead(key);
    struct entry **slot = find_slot(c, key);
    struct entry *e = *slot;
    /* Refused before anything is evicted for it: an entry that cannot fit must not empty
     * the caches on its way out. What it replaces goes all the same: it is outdated. */
    if (cost > c->budget->max || c->max == 0) {
        if (e)
            drop(e);
        c->free_value(value);
        return 0;
    }
    if (e) {
        c->free_value(e->value);
        e->value = value;
        refund(c, e->bytes);
        list_unlink(c, e);
    } else {
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->value = value;
        e->cache = c;
        *slot = e;
        c->count++;
        if (c->count > c->nbuckets)
            grow(c);
    }
    e->bytes = cost;
    charge(c, cost);
    list_push_newest(c, e);
    /* The newest entry is evicted last, and it fits both bounds alone: it stays. */
    enforce_count(c);
    enforce_bytes(c->budget);
    return 1;
}

void cache_set_max(struct cache *c, size_t max_entries)
{
    c->max = max_entries;
    enforce_count(c);
}

size_t cache_count(const struct cache *c)
{
    return c->count;
}

size_t cache_bytes(const struct cache *c)
{
    return c->bytes;
}
