/* The bounded LRU map behind the city and movie caches. */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "check.h"
#include "util.h"

static int freed;

/* Counts values the cache lets go of. */
static void count_free(void *value)
{
    freed++;
    free(value);
}

static void test_get_put_replace(void)
{
    freed = 0;
    struct cache *c = cache_new(10, count_free);
    CHECK(cache_get(c, "beijing") == NULL);
    cache_put(c, "beijing", xstrdup("one"));
    CHECK_STR(cache_get(c, "beijing"), "one");
    cache_put(c, "beijing", xstrdup("two"));
    CHECK_STR(cache_get(c, "beijing"), "two");
    CHECK_INT(freed, 1);
    CHECK_INT(cache_count(c), 1);
    cache_free(c);
    CHECK_INT(freed, 2);
}

static void test_lru_eviction(void)
{
    freed = 0;
    struct cache *c = cache_new(3, count_free);
    cache_put(c, "a", xstrdup("A"));
    cache_put(c, "b", xstrdup("B"));
    cache_put(c, "c", xstrdup("C"));
    CHECK(cache_get(c, "a") != NULL);  /* a is now the most recently used */
    cache_put(c, "d", xstrdup("D"));    /* evicts b, the least recently used */
    CHECK_INT(cache_count(c), 3);
    CHECK(cache_get(c, "b") == NULL);
    CHECK(cache_get(c, "a") != NULL);
    CHECK(cache_get(c, "c") != NULL);
    CHECK(cache_get(c, "d") != NULL);
    CHECK_INT(freed, 1);
    cache_set_max(c, 1);                /* keeps only the most recent: d */
    CHECK_INT(cache_count(c), 1);
    CHECK(cache_get(c, "d") != NULL);
    CHECK_INT(freed, 3);
    cache_free(c);
    CHECK_INT(freed, 4);
}

static void test_many_keys(void)
{
    freed = 0;
    struct cache *c = cache_new(5000, count_free);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "city%d", i);
        cache_put(c, key, xasprintf("%d", i));
    }
    CHECK_INT(cache_count(c), 5000);
    CHECK_INT(freed, 5000);
    int present = 0;
    for (int i = 5000; i < 10000; i++) {
        snprintf(key, sizeof key, "city%d", i);
        char *v = cache_get(c, key);
        present += v != NULL && atoi(v) == i;
    }
    CHECK_INT(present, 5000);
    CHECK(cache_get(c, "city4999") == NULL);
    cache_free(c);
}

int main(void)
{
    test_get_put_replace();
    test_lru_eviction();
    test_many_keys();
    return check_summary();
}
