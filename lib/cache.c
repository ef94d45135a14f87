/* Chained hash table plus a doubly linked recency list: O(1) get, put and eviction. */
#include "cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct entry {
    char *key;
    void *value;
    struct entry *chain;             /* next in the bucket */
    struct entry *newer, *older;     /* recency list */
};

struct cache {
    struct entry **buckets;
    size_t nbuckets, count, max;
    struct entry *newest, *oldest;
    void (*free_value)(void *);
};

/* FNV-1a of a NUL-terminated key. */
static size_t key_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *key; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* Unlinks e from the recency list. */
static void list_unlink(struct cache *c, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

/* Puts e at the newest end of the recency list. */
static void list_push_newest(struct cache *c, struct entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

/* The slot that points at key's entry (or at the NULL ending its chain). */
static struct entry **find_slot(struct cache *c, const char *key)
{
    struct entry **slot = &c->buckets[key_hash(key) % c->nbuckets];
    while (*slot && strcmp((*slot)->key, key) != 0)
        slot = &(*slot)->chain;
    return slot;
}

/* Removes the entry at slot and frees it with its value. */
static void drop(struct cache *c, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->chain;
    list_unlink(c, e);
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

/* Evicts the least recently used entries beyond the bound. */
static void enforce_bound(struct cache *c)
{
    while (c->count > c->max && c->oldest)
        drop(c, find_slot(c, c->oldest->key));
}

struct cache *cache_new(size_t max_entries, void (*free_value)(void *value))
{
    struct cache *c = xcalloc(1, sizeof *c);
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
        drop(c, find_slot(c, c->oldest->key));
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

void cache_put(struct cache *c, const char *key, void *value)
{
    struct entry **slot = find_slot(c, key);
    if (*slot) {
        struct entry *e = *slot;
        c->free_value(e->value);
        e->value = value;
        list_unlink(c, e);
        list_push_newest(c, e);
    } else {
        struct entry *e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->value = value;
        *slot = e;
        list_push_newest(c, e);
        c->count++;
        if (c->count > c->nbuckets)
            grow(c);
    }
    enforce_bound(c);
}

void cache_set_max(struct cache *c, size_t max_entries)
{
    c->max = max_entries;
    enforce_bound(c);
}

size_t cache_count(const struct cache *c)
{
    return c->count;
}
