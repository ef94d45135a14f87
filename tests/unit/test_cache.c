/* The bounded LRU map behind the city and movie caches, and the byte budget they share. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "check.h"
#include "util.h"

static int freed;
static char evicted[256];   /* the values let go of, in order */

/* Counts values the cache lets go of and notes which, in order. */
static void count_free(void *value)
{
    freed++;
    strncat(evicted, value, sizeof evicted - strlen(evicted) - 1);
    free(value);
}

/* Starts a test's record of freed values afresh. */
static void reset(void)
{
    freed = 0;
    evicted[0] = '\0';
}

static void test_get_put_replace(void)
{
    reset();
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *c = cache_new(b, 10, count_free);
    CHECK(cache_get(c, "beijing") == NULL);
    CHECK_INT(cache_put(c, "beijing", xstrdup("one"), 3), 1);
    CHECK_STR(cache_get(c, "beijing"), "one");
    CHECK_INT(cache_put(c, "beijing", xstrdup("two"), 3), 1);
    CHECK_STR(cache_get(c, "beijing"), "two");
    CHECK_INT(freed, 1);
    CHECK_INT(cache_count(c), 1);
    cache_free(c);
    CHECK_INT(freed, 2);
    CHECK_INT(cache_budget_bytes(b), 0);
    cache_budget_free(b);
    cache_budget_free(NULL);
}

static void test_lru_eviction(void)
{
    reset();
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *c = cache_new(b, 3, count_free);
    cache_put(c, "a", xstrdup("A"), 1);
    cache_put(c, "b", xstrdup("B"), 1);
    cache_put(c, "c", xstrdup("C"), 1);
    CHECK(cache_get(c, "a") != NULL);  /* a is now the most recently used */
    cache_put(c, "d", xstrdup("D"), 1); /* evicts b, the least recently used */
    CHECK_INT(cache_count(c), 3);
    CHECK(cache_get(c, "b") == NULL);
    CHECK(cache_get(c, "a") != NULL);
    CHECK(cache_get(c, "c") != NULL);
    CHECK(cache_get(c, "d") != NULL);
    CHECK_STR(evicted, "B");
    cache_set_max(c, 1);                /* keeps only the most recent: d */
    CHECK_INT(cache_count(c), 1);
    CHECK(cache_get(c, "d") != NULL);
    CHECK_STR(evicted, "BAC");
    cache_free(c);
    CHECK_INT(freed, 4);
    cache_budget_free(b);
}

static void test_many_keys(void)
{
    reset();
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *c = cache_new(b, 5000, free);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "city%d", i);
        cache_put(c, key, xasprintf("%d", i), 8);
    }
    CHECK_INT(cache_count(c), 5000);
    int present = 0;
    for (int i = 5000; i < 10000; i++) {
        snprintf(key, sizeof key, "city%d", i);
        char *v = cache_get(c, key);
        present += v != NULL && atoi(v) == i;
    }
    CHECK_INT(present, 5000);
    CHECK(cache_get(c, "city4999") == NULL);
    cache_free(c);
    cache_budget_free(b);
}

/* What the cache adds to an entry of a one-letter key: measured, not assumed. */
static size_t one_letter_overhead(void)
{
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *c = cache_new(b, 1, free);
    cache_put(c, "x", xstrdup("X"), 1000);
    size_t overhead = cache_bytes(c) - 1000;
    cache_free(c);
    cache_budget_free(b);
    return overhead;
}

/* Bytes are charged per entry, replaced entries refunded, and both caches add up. */
static void test_byte_accounting(void)
{
    reset();
    size_t o = one_letter_overhead();
    CHECK(o > 0 && o < 200);
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *cities = cache_new(b, 100, count_free);
    struct cache *movies = cache_new(b, SIZE_MAX, count_free);
    cache_put(cities, "a", xstrdup("a"), 1000);
    cache_put(movies, "b", xstrdup("b"), 300);
    CHECK_INT(cache_bytes(cities), 1000 + o);
    CHECK_INT(cache_bytes(movies), 300 + o);
    CHECK_INT(cache_budget_bytes(b), 1300 + 2 * o);
    cache_put(cities, "a", xstrdup("A"), 200);    /* replaced: charged its new size only */
    CHECK_INT(cache_bytes(cities), 200 + o);
    CHECK_INT(cache_budget_bytes(b), 500 + 2 * o);
    cache_free(cities);                           /* refunds the budget */
    CHECK_INT(cache_budget_bytes(b), 300 + o);
    cache_free(movies);
    CHECK_INT(cache_budget_bytes(b), 0);
    cache_budget_free(b);
}

/* Over the byte bound, the least recently used entry of either cache goes, whichever cache
 * the new entry went into; cache_get counts as use, cache_peek does not. */
static void test_byte_lru_across_caches(void)
{
    reset();
    size_t o = one_letter_overhead();
    struct cache_budget *b = cache_budget_new(3 * (1000 + o));
    struct cache *cities = cache_new(b, 100, count_free);
    struct cache *movies = cache_new(b, SIZE_MAX, count_free);
    cache_put(cities, "a", xstrdup("a"), 1000);
    cache_put(movies, "b", xstrdup("b"), 1000);
    cache_put(cities, "c", xstrdup("c"), 1000);
    CHECK_INT(cache_budget_bytes(b), 3 * (1000 + o));   /* exactly full: nothing goes */
    CHECK_STR(evicted, "");
    CHECK(cache_get(cities, "a") != NULL);              /* order now b, c, a */
    CHECK(cache_peek(movies, "b") != NULL);             /* not a use: b stays oldest */
    CHECK_INT(cache_put(movies, "d", xstrdup("d"), 1000), 1);
    CHECK_STR(evicted, "b");                            /* a movie made room for a movie */
    CHECK_INT(cache_put(movies, "e", xstrdup("e"), 1000), 1);
    CHECK_STR(evicted, "bc");                           /* a city made room for a movie */
    CHECK(cache_peek(cities, "a") != NULL);
    CHECK(cache_peek(cities, "c") == NULL);
    CHECK_INT(cache_count(cities), 1);
    CHECK_INT(cache_count(movies), 2);
    /* One big entry pushes out as many old ones as it takes, oldest first. */
    CHECK_INT(cache_put(cities, "f", xstrdup("f"), 2000 + o), 1);
    CHECK_STR(evicted, "bcad");
    CHECK_INT(cache_budget_bytes(b), cache_bytes(cities) + cache_bytes(movies));
    CHECK(cache_budget_bytes(b) <= 3 * (1000 + o));
    cache_free(cities);
    cache_free(movies);
    cache_budget_free(b);
}

/* An entry bigger than the whole bound is refused and evicts nothing; what it would have
 * replaced goes. */
static void test_entry_larger_than_bound(void)
{
    reset();
    size_t o = one_letter_overhead();
    struct cache_budget *b = cache_budget_new(3 * (1000 + o));
    struct cache *cities = cache_new(b, 100, count_free);
    struct cache *movies = cache_new(b, SIZE_MAX, count_free);
    cache_put(cities, "a", xstrdup("a"), 1000);
    cache_put(movies, "b", xstrdup("b"), 1000);
    CHECK_INT(cache_put(movies, "h", xstrdup("h"), 3 * (1000 + o)), 0);
    CHECK_STR(evicted, "h");
    CHECK(cache_peek(movies, "h") == NULL);
    CHECK(cache_peek(cities, "a") != NULL);
    CHECK(cache_peek(movies, "b") != NULL);
    CHECK_INT(cache_budget_bytes(b), 2 * (1000 + o));
    CHECK_INT(cache_put(cities, "a", xstrdup("A"), 5000), 0);
    CHECK_STR(evicted, "haA");
    CHECK(cache_peek(cities, "a") == NULL);
    CHECK_INT(cache_budget_bytes(b), 1000 + o);
    CHECK_INT(cache_bytes(cities), 0);
    cache_free(cities);
    cache_free(movies);
    cache_budget_free(b);
}

/* Shrinking the bound evicts at once, least recently used first across both caches;
 * growing it evicts nothing. */
static void test_set_max_shrinking(void)
{
    reset();
    size_t o = one_letter_overhead();
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *cities = cache_new(b, 100, count_free);
    struct cache *movies = cache_new(b, SIZE_MAX, count_free);
    cache_put(movies, "a", xstrdup("a"), 1000);
    cache_put(cities, "b", xstrdup("b"), 1000);
    cache_put(movies, "c", xstrdup("c"), 1000);
    cache_put(cities, "d", xstrdup("d"), 1000);
    cache_get(movies, "a");                             /* order b, c, d, a */
    cache_budget_set_max(b, 10 * (1000 + o));
    CHECK_STR(evicted, "");
    cache_budget_set_max(b, 2 * (1000 + o) + 1);
    CHECK_STR(evicted, "bc");
    CHECK_INT(cache_budget_bytes(b), 2 * (1000 + o));
    CHECK(cache_peek(cities, "d") != NULL);
    CHECK(cache_peek(movies, "a") != NULL);
    cache_budget_set_max(b, 1000 + o);
    CHECK_STR(evicted, "bcd");
    cache_budget_set_max(b, 0);
    CHECK_STR(evicted, "bcda");
    CHECK_INT(cache_budget_bytes(b), 0);
    CHECK_INT(cache_count(cities) + cache_count(movies), 0);
    cache_free(cities);
    cache_free(movies);
    cache_budget_free(b);
}

/* The count bound evicts from its own cache only, even when the other's entries are
 * older. */
static void test_count_bound_stays_local(void)
{
    reset();
    struct cache_budget *b = cache_budget_new(SIZE_MAX);
    struct cache *cities = cache_new(b, 2, count_free);
    struct cache *movies = cache_new(b, SIZE_MAX, count_free);
    cache_put(movies, "m", xstrdup("m"), 10);
    cache_put(cities, "a", xstrdup("a"), 10);
    cache_put(cities, "b", xstrdup("b"), 10);
    cache_put(cities, "c", xstrdup("c"), 10);
    CHECK_STR(evicted, "a");
    CHECK(cache_peek(movies, "m") != NULL);
    cache_free(cities);
    cache_free(movies);
    cache_budget_free(b);
}

int main(void)
{
    test_get_put_replace();
    test_lru_eviction();
    test_many_keys();
    test_byte_accounting();
    test_byte_lru_across_caches();
    test_entry_larger_than_bound();
    test_set_max_shrinking();
    test_count_bound_stays_local();
    return check_summary();
}
