/* Unit tests of lib/cities.c and the generated table: its size, order and entries, lookups
 * that hit and miss, and the lists city_list_parse reads. */
#include "check.h"
#include "cities.h"
#include "douban.h"

#include <stdlib.h>
#include <string.h>

/* The table: 343 cities, strictly sorted by slug (so each once), each slug of the shape the
 * API accepts, each id digits, each name non-empty, and each found where it is. */
static void test_table(void)
{
    CHECK_INT(city_table_count, 343);
    size_t numeric = 0;
    for (size_t i = 0; i < city_table_count; i++) {
        const struct city *c = &city_table[i];
        if (i > 0 && strcmp(city_table[i - 1].slug, c->slug) >= 0)
            fprintf(stderr, "out of order: %s before %s\n", city_table[i - 1].slug, c->slug);
        CHECK(i == 0 || strcmp(city_table[i - 1].slug, c->slug) < 0);
        CHECK(douban_city_valid(c->slug));
        CHECK(c->id[0] != '\0' && strspn(c->id, "0123456789") == strlen(c->id));
        CHECK(c->name[0] != '\0');
        CHECK(city_find(c->slug) == c);
        /* A city without a pinyin slug goes by its id. */
        if (c->slug[0] >= '0' && c->slug[0] <= '9') {
            numeric++;
            CHECK_STR(c->slug, c->id);
        }
    }
    CHECK_INT(numeric, 19);
}

/* Lookups by exact slug only. */
static void test_find(void)
{
    const struct city *c = city_find("beijing");
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_STR(c->slug, "beijing");
        CHECK_STR(c->id, "108288");
        CHECK_STR(c->name, "北京");
    }
    c = city_find("shanghai");
    CHECK(c != NULL && strcmp(c->id, "108296") == 0 && strcmp(c->name, "上海") == 0);
    c = city_find("118378");
    CHECK(c != NULL && strcmp(c->name, "榆林") == 0);
    /* The first and the last of the table: bisection reaches both ends. */
    CHECK(city_find(city_table[0].slug) == &city_table[0]);
    CHECK(city_find(city_table[city_table_count - 1].slug) == &city_table[city_table_count - 1]);

    const char *misses[] = { "", "atlantis", "Beijing", "beijin", "beijingx", " beijing",
                             "beijing ", "0", "118", "1183780", "a", "zzzzzz", "北京" };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        if (city_find(misses[i]) != NULL)
            fprintf(stderr, "city_find found '%s'\n", misses[i]);
        CHECK(city_find(misses[i]) == NULL);
    }
    CHECK(city_find(NULL) == NULL);
}

/* Parses text, expecting success with the slugs of want (space-separated, "" for none). */
static void expect_list(const char *text, const char *want)
{
    const struct city **list = (const struct city **)&list; /* not NULL: must be reset */
    size_t n = 99;
    char err[200] = "";
    int r = city_list_parse(text, &list, &n, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "city_list_parse(\"%s\"): %s\n", text ? text : "(null)", err);
    CHECK_INT(r, 0);
    char got[512] = "";
    for (size_t i = 0; r == 0 && i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", list[i]->slug);
    CHECK_STR(got, want);
    CHECK(n > 0 || list == NULL);
    free(list);
}

/* Parses text, expecting failure with the reason want, and nothing handed out. */
static void expect_list_error(const char *text, const char *want)
{
    const struct city **list = (const struct city **)&list;
    size_t n = 99;
    char err[200] = "";
    CHECK_INT(city_list_parse(text, &list, &n, err, sizeof err), -1);
    CHECK_STR(err, want);
    CHECK(list == NULL);
    CHECK_INT(n, 0);
}

/* "", "all", and slugs separated by commas and blanks; repeats dropped; names checked. */
static void test_list_parse(void)
{
    expect_list("", "");
    expect_list(NULL, "");
    expect_list(" ,\t, ", "");
    expect_list("beijing", "beijing");
    expect_list("beijing,shanghai xian", "beijing shanghai xian");
    expect_list(" shanghai, beijing ,shanghai,,beijing\txian ", "shanghai beijing xian");
    expect_list("118378,yulin", "118378 yulin");

    const struct city **list;
    size_t n;
    char err[200];
    CHECK_INT(city_list_parse(" all ", &list, &n, err, sizeof err), 0);
    CHECK_INT(n, city_table_count);
    int in_order = list != NULL;
    for (size_t i = 0; in_order && i < n; i++)
        in_order = list[i] == &city_table[i];
    CHECK(in_order);
    free(list);

    expect_list_error("beijing atlantis", "no city 'atlantis' (GET /cities lists them)");
    expect_list_error("Beijing", "no city 'Beijing' (GET /cities lists them)");
    expect_list_error("ALL", "no city 'ALL' (GET /cities lists them)");
    expect_list_error("beijing;shanghai", "no city 'beijing;shanghai' (GET /cities lists them)");
    expect_list_error("beijing\nshanghai", "no city 'beijing\\x0ashanghai' (GET /cities lists them)");
    expect_list_error("all,beijing", "'all' stands alone: it already names every city");
    expect_list_error("all all", "'all' stands alone: it already names every city");

    /* A tiny error buffer is cut, not overrun. */
    char tiny[6];
    CHECK_INT(city_list_parse("nowhere", &list, &n, tiny, sizeof tiny), -1);
    CHECK_STR(tiny, "no ci");
    CHECK_INT(city_list_parse("nowhere", &list, &n, NULL, 0), -1);
}

int main(void)
{
    test_table();
    test_find();
    test_list_parse();
    return check_summary();
}
