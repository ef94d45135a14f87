/* Tests of lib/movie.c: record lifetimes, the detail JSON, the API's movie object (every key,
 * its type, detail-wins merging, detail_error) and the listing date's year. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "movie.h"
#include "util.h"

/* The API's keys, in order. */
static const char *const movie_keys[] = {
    "id", "url", "title", "original_title", "release_date", "release_date_iso",
    "release_date_precision", "genres",
    "regions", "wish_count", "thumbnail", "poster", "poster_proxy", "year", "directors", "actors",
    "runtime_minutes", "rating", "votes", "imdb_id", "languages", "summary", "detail_status",
    "detail_error",
};
#define NKEYS (sizeof movie_keys / sizeof movie_keys[0])

/* Seconds since the epoch of y-m-d h:mi in China (UTC+8), by days-from-civil. */
static time_t china_time(int y, int m, int d, int h, int mi)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return (time_t)(days * 86400 + (h - 8) * 3600 + mi * 60);
}

/* The ISO date for mmdd fetched at y-m-d 12:00 China time, or "-1". */
static const char *iso_at(const char *mmdd, int y, int m, int d)
{
    static char out[11];
    if (movie_listing_date_iso(mmdd, china_time(y, m, d, 12, 0), out) != 0)
        return "-1";
    return out;
}

/* A listing item with every field set. */
static void fill_item(struct listing_item *it)
{
    it->id = xstrdup("35275131");
    it->url = xstrdup("https://movie.douban.com/subject/35275131/");
    it->title = xstrdup("去你的岛");
    it->release_date = xstrdup("08月07日");
    strlist_push(&it->genres, "爱情");
    strlist_push(&it->regions, "中国大陆");
    it->wish_count = 5028;
    it->thumbnail = xstrdup("https://img9.doubanio.com/view/photo/s_ratio_poster/public/p1.jpg");
}

/* Checks o has exactly the API's keys, in order. */
static void check_keys(const json_t *o)
{
    CHECK(json_is_object(o));
    CHECK_INT(json_object_size(o), NKEYS);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        (void)v;
        CHECK_STR(key, i < NKEYS ? movie_keys[i] : "(extra)");
        i++;
    }
}

/* Records start unknown; add and free leave them clean. */
static void test_records(void)
{
    struct listing l = {0};
    for (int i = 0; i < 40; i++) {
        struct listing_item *it = listing_add(&l);
        CHECK(it->id == NULL && it->genres.n == 0);
        CHECK_INT(it->wish_count, -1);
        it->id = xasprintf("%d", i);
    }
    CHECK_INT(l.n, 40);
    CHECK_STR(l.items[39].id, "39");
    listing_free(&l);
    CHECK(l.items == NULL && l.n == 0);
    listing_free(&l);

    struct movie_detail d;
    movie_detail_init(&d);
    CHECK(d.title == NULL && d.year == -1 && d.runtime_minutes == -1 && d.votes == -1);
    CHECK(d.rating < 0);
    d.title = xstrdup("x");
    strlist_push(&d.actors, "a");
    movie_detail_free(&d);
    CHECK(d.title == NULL && d.actors.n == 0 && d.year == -1);
    movie_detail_free(NULL);
    listing_item_free(NULL);
}

/* movie_detail_json: every key, null or [] when unknown. */
static void test_detail_json(void)
{
    struct movie_detail d;
    movie_detail_init(&d);
    json_t *j = movie_detail_json(&d);
    CHECK_INT(json_object_size(j), 15);
    static const char *const strings[] = {"title", "original_title", "poster", "release_date_cn",
                                          "imdb_id", "summary", "year", "runtime_minutes",
                                          "rating", "votes"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        CHECK(json_is_null(json_object_get(j, strings[i])));
    static const char *const lists[] = {"directors", "actors", "genres", "regions", "languages"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        CHECK(json_is_array(json_object_get(j, lists[i])));
        CHECK_INT(json_array_size(json_object_get(j, lists[i])), 0);
    }
    json_decref(j);

    d.title = xstrdup("盗梦空间 Inception");
    d.year = 2010;
    d.rating = 9.4;
    d.votes = 0;
    strlist_push(&d.directors, "克里斯托弗·诺兰");
    j = movie_detail_json(&d);
    CHECK_STR(json_string_value(json_object_get(j, "title")), "盗梦空间 Inception");
    CHECK_INT(json_integer_value(json_object_get(j, "year")), 2010);
    CHECK(json_is_real(json_object_get(j, "rating")));
    CHECK(json_real_value(json_object_get(j, "rating")) == 9.4);
    CHECK(json_is_integer(json_object_get(j, "votes")));      /* 0 votes is known */
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "directors"), 0)), "克里斯托弗·诺兰");
    json_decref(j);
    movie_detail_free(&d);
}

/* The movie object from the listing alone: every key, listing fields set, the rest null or
 * []; the ISO date from the listing's date. */
static void test_movie_listing_only(void)
{
    struct listing l = {0};
    struct listing_item *it = listing_add(&l);
    fill_item(it);
    json_t *o = movie_json(it, NULL, NULL, china_time(2025, 8, 1, 0, 0));
    check_keys(o);
    CHECK_STR(json_string_value(json_object_get(o, "id")), "35275131");
    CHECK_STR(json_string_value(json_object_get(o, "title")), "去你的岛");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2025-08-07");
    CHECK_INT(json_integer_value(json_object_get(o, "wish_count")), 5028);
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "genres"), 0)), "爱情");
    static const char *const nulls[] = {"original_title", "poster", "year", "runtime_minutes",
                                        "rating", "votes", "imdb_id", "summary", "detail_error"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        CHECK(json_is_null(json_object_get(o, nulls[i])));
    static const char *const empty[] = {"directors", "actors", "languages"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++)
        CHECK(json_is_array(json_object_get(o, empty[i])) &&
              json_array_size(json_object_get(o, empty[i])) == 0);
    json_decref(o);

    /* An item that knows nothing but its id still has every key. */
    struct listing_item *bare = listing_add(&l);
    bare->id = xstrdup("1");
    o = movie_json(bare, NULL, NULL, 0);
    check_keys(o);
    CHECK(json_is_null(json_object_get(o, "title")) && json_is_null(json_object_get(o, "wish_count")));
    CHECK(json_is_null(json_object_get(o, "release_date_iso")));
    CHECK(json_is_array(json_object_get(o, "genres")) && json_is_array(json_object_get(o, "regions")));
    json_decref(o);
    listing_free(&l);
}

/* With a movie page: its fields fill in, its non-empty genres and regions win, its mainland
 * date wins over the listing's, and its title is used only when the listing has none. */
static void test_movie_with_detail(void)
{
    struct listing l = {0};
    struct listing_item *it = listing_add(&l);
    fill_item(it);
    struct movie_detail d;
    movie_detail_init(&d);
    d.title = xstrdup("去你的岛 Island");
    d.original_title = xstrdup("Island");
    d.year = 2025;
    d.poster = xstrdup("https://img9.doubanio.com/p1.webp");
    strlist_push(&d.directors, "导演甲");
    strlist_push(&d.genres, "爱情");
    strlist_push(&d.genres, "动画");
    d.release_date_cn = xstrdup("2025-08-08");
    d.rating = 7.5;
    d.votes = 10;
    json_t *detail = movie_detail_json(&d);
    json_t *o = movie_json(it, detail, NULL, china_time(2025, 8, 1, 0, 0));
    check_keys(o);
    CHECK_STR(json_string_value(json_object_get(o, "title")), "去你的岛");
    CHECK_STR(json_string_value(json_object_get(o, "original_title")), "Island");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2025-08-08");
    CHECK_INT(json_array_size(json_object_get(o, "genres")), 2);          /* detail wins */
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "regions"), 0)), "中国大陆");
    CHECK_INT(json_integer_value(json_object_get(o, "year")), 2025);
    CHECK(json_real_value(json_object_get(o, "rating")) == 7.5);
    /* Ratings are written as people write them, not with 17 digits. */
    json_t *rating = json_pack("{s:f}", "rating", 9.4);
    char *text = json_dumps(rating, MOVIE_JSON_FLAGS);
    CHECK_STR(text, "{\"rating\":9.4}");
    free(text);
    json_decref(rating);
    CHECK_INT(json_integer_value(json_object_get(o, "votes")), 10);
    CHECK(json_is_null(json_object_get(o, "runtime_minutes")));
    CHECK(json_is_null(json_object_get(o, "detail_error")));
    /* The answer does not share arrays with the cached detail. */
    json_array_clear(json_object_get(o, "directors"));
    CHECK_INT(json_array_size(json_object_get(detail, "directors")), 1);
    json_decref(o);

    /* No listing title: the page's. */
    free(it->title);
    it->title = NULL;
    o = movie_json(it, detail, NULL, 0);
    CHECK_STR(json_string_value(json_object_get(o, "title")), "去你的岛 Island");
    json_decref(o);

    /* A detail from a bad cache entry: wrong types are null, not trusted. */
    json_t *bad = json_pack("{s:s, s:s, s:i, s:[]}", "year", "2025", "poster", "p", "directors",
                            5, "genres");
    o = movie_json(it, bad, NULL, 0);
    check_keys(o);
    CHECK(json_is_null(json_object_get(o, "year")));
    CHECK(json_is_array(json_object_get(o, "directors")));
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "genres"), 0)), "爱情");
    json_decref(o);
    json_decref(bad);

    json_decref(detail);
    movie_detail_free(&d);
    listing_free(&l);
}

/* detail_error: {code, status, message}, status null when unknown. */
static void test_detail_error(void)
{
    struct listing l = {0};
    struct listing_item *it = listing_add(&l);
    fill_item(it);
    struct detail_error e = {.code = API_ERROR_UPSTREAM_ERROR, .status = 502, .message = "HTTP 502"};
    json_t *o = movie_json(it, NULL, &e, 0);
    check_keys(o);
    json_t *err = json_object_get(o, "detail_error");
    CHECK(json_is_object(err));
    CHECK_INT(json_object_size(err), 3);
    CHECK_STR(json_string_value(json_object_get(err, "code")), "upstream_error");
    CHECK_INT(json_integer_value(json_object_get(err, "status")), 502);
    CHECK_STR(json_string_value(json_object_get(err, "message")), "HTTP 502");
    CHECK(json_is_null(json_object_get(o, "poster")));
    json_decref(o);

    e = (struct detail_error){.code = API_ERROR_UPSTREAM_TIMEOUT, .status = -1, .message = "timed out"};
    o = movie_json(it, NULL, &e, 0);
    CHECK(json_is_null(json_object_get(json_object_get(o, "detail_error"), "status")));
    json_decref(o);
    listing_free(&l);
}

/* The listing date's year. */
static void test_listing_date(void)
{
    CHECK_STR(iso_at("08月07日", 2025, 8, 1), "2025-08-07");
    CHECK_STR(iso_at("08月01日", 2025, 8, 1), "2025-08-01");            /* the fetch day */
    /* Year wrap: December fetch, January date; January fetch, December date. */
    CHECK_STR(iso_at("01月05日", 2024, 12, 20), "2025-01-05");
    CHECK_STR(iso_at("12月28日", 2025, 1, 5), "2024-12-28");
    /* Exactly 30 days before stays this year; 31 days before is next year's. */
    CHECK_STR(iso_at("03月01日", 2024, 3, 31), "2024-03-01");
    CHECK_STR(iso_at("02月29日", 2024, 3, 30), "2024-02-29");
    CHECK_STR(iso_at("02月28日", 2024, 3, 30), "2025-02-28");
    CHECK_STR(iso_at("07月15日", 2024, 8, 15), "2025-07-15");
    /* Less than a year after: the day before next year's fetch day, not that day. */
    CHECK_STR(iso_at("08月14日", 2024, 8, 15), "2024-08-14");
    CHECK_STR(iso_at("07月16日", 2024, 8, 15), "2024-07-16");
    /* Feb 29 only lands in a leap year, within the window. */
    CHECK_STR(iso_at("02月29日", 2023, 3, 1), "2024-02-29");
    CHECK_STR(iso_at("02月29日", 2024, 2, 1), "2024-02-29");
    CHECK_STR(iso_at("02月29日", 2025, 3, 1), "-1");
    CHECK_STR(iso_at("02月29日", 2024, 3, 31), "-1");                   /* 31 days back */
    /* The fetch day is China's: 2024-12-31 16:00 UTC is already 2025-01-01 there. */
    char out[11];
    CHECK_INT(movie_listing_date_iso("12月31日", china_time(2025, 1, 1, 0, 0), out), 0);
    CHECK_STR(out, "2024-12-31");
    CHECK_INT(movie_listing_date_iso("01月01日", china_time(2024, 12, 31, 23, 59), out), 0);
    CHECK_STR(out, "2025-01-01");
    CHECK_INT(movie_listing_date_iso("12月31日", china_time(2024, 12, 31, 23, 59), out), 0);
    CHECK_STR(out, "2024-12-31");
    /* Not a listing date. */
    static const char *const bad[] = {"8月7日", "08月7日", "13月01日", "00月10日", "08月32日",
                                      "08-07", "08月07日 ", "", "02月30日"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STR(iso_at(bad[i], 2025, 8, 1), "-1");
    CHECK_INT(movie_listing_date_iso(NULL, 0, out), -1);

    int m, d;
    CHECK_INT(movie_parse_listing_date("12月31日", &m, &d), 0);
    CHECK(m == 12 && d == 31);
    CHECK_INT(movie_parse_listing_date("1２月31日", &m, &d), -1);
}

/* A month alone, "07月": "YYYY-MM", the month judged by its last day. */
static void test_listing_month(void)
{
    int m = -1, d = -1;
    CHECK_INT(movie_parse_listing_date("07月", &m, &d), 0);
    CHECK(m == 7 && d == 0);
    CHECK_INT(movie_parse_listing_date("01月", &m, &d), 0);
    CHECK(m == 1 && d == 0);
    CHECK_INT(movie_parse_listing_date("12月", &m, &d), 0);
    CHECK(m == 12 && d == 0);

    CHECK_STR(iso_at("07月", 2025, 7, 20), "2025-07");          /* the fetch month */
    CHECK_STR(iso_at("07月", 2025, 7, 1), "2025-07");
    CHECK_STR(iso_at("07月", 2025, 7, 31), "2025-07");
    CHECK_STR(iso_at("09月", 2025, 8, 1), "2025-09");
    /* Year wrap: listed in December, January is next year's; listed in January, December
     * is the one just past while it ended at most 30 days before, then next December. */
    CHECK_STR(iso_at("01月", 2024, 12, 20), "2025-01");
    CHECK_STR(iso_at("01月", 2024, 12, 1), "2025-01");
    CHECK_STR(iso_at("02月", 2024, 12, 31), "2025-02");
    CHECK_STR(iso_at("12月", 2024, 12, 31), "2024-12");
    CHECK_STR(iso_at("12月", 2025, 1, 5), "2024-12");
    CHECK_STR(iso_at("12月", 2025, 1, 30), "2024-12");          /* ended 30 days before */
    CHECK_STR(iso_at("12月", 2025, 1, 31), "2025-12");          /* 31 days */
    CHECK_STR(iso_at("11月", 2025, 1, 5), "2025-11");
    /* 30 days after the last day, by each month's length (February's by leap year). */
    CHECK_STR(iso_at("06月", 2025, 7, 30), "2025-06");
    CHECK_STR(iso_at("06月", 2025, 7, 31), "2026-06");
    CHECK_STR(iso_at("02月", 2024, 3, 30), "2024-02");          /* 29 days in 2024 */
    CHECK_STR(iso_at("02月", 2024, 3, 31), "2025-02");
    CHECK_STR(iso_at("02月", 2025, 3, 30), "2025-02");          /* 28 in 2025 */
    CHECK_STR(iso_at("02月", 2025, 3, 31), "2026-02");
    /* The month before the fetch month, more than 30 days after its end: next year's,
     * less than a year after. */
    CHECK_STR(iso_at("03月", 2025, 5, 15), "2026-03");
    /* The fetch day is China's: 2024-12-31 16:00 UTC is January 2025 there. */
    char out[11];
    CHECK_INT(movie_listing_date_iso("12月", china_time(2025, 1, 1, 0, 0), out), 0);
    CHECK_STR(out, "2024-12");
    CHECK_INT(movie_listing_date_iso("01月", china_time(2024, 12, 31, 23, 59), out), 0);
    CHECK_STR(out, "2025-01");
    CHECK_INT(movie_listing_date_iso("11月", china_time(2024, 12, 31, 23, 59), out), 0);
    CHECK_STR(out, "2025-11");                                  /* November ended 31 days before */
    /* Not a month. */
    static const char *const bad[] = {"00月", "13月", "7月", "007月", "07", "07日", "07月 ",
                                      " 07月", "0７月", "07月0", "07月日", "99月", "０7月"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(movie_parse_listing_date(bad[i], &m, &d), -1);
        CHECK_STR(iso_at(bad[i], 2025, 8, 1), "-1");
    }
}

/* release_date_precision: "day" for a day (the listing's or the movie page's mainland
 * date, which wins over a listed month), "month" for a listed month, null without a date. */
static void test_release_precision(void)
{
    struct listing l = {0};
    struct listing_item *it = listing_add(&l);
    fill_item(it);
    time_t fetched = china_time(2025, 12, 20, 12, 0);
    json_t *o = movie_json(it, NULL, NULL, fetched);
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-08-07");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_precision")), "day");
    json_decref(o);

    free(it->release_date);
    it->release_date = xstrdup("01月");
    o = movie_json(it, NULL, NULL, fetched);
    check_keys(o);
    CHECK_STR(json_string_value(json_object_get(o, "release_date")), "01月");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-01");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_precision")), "month");
    json_decref(o);
    o = movie_json(it, NULL, NULL, china_time(2026, 1, 10, 12, 0));
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-01");
    json_decref(o);

    /* The movie page's mainland day wins over the listed month. */
    struct movie_detail d;
    movie_detail_init(&d);
    d.release_date_cn = xstrdup("2026-01-16");
    json_t *detail = movie_detail_json(&d);
    o = movie_json(it, detail, NULL, fetched);
    CHECK_STR(json_string_value(json_object_get(o, "release_date")), "01月");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-01-16");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_precision")), "day");
    json_decref(o);
    json_decref(detail);
    movie_detail_free(&d);

    /* A page without a mainland date leaves the listing's month. */
    movie_detail_init(&d);
    detail = movie_detail_json(&d);
    o = movie_json(it, detail, NULL, fetched);
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-01");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_precision")), "month");
    json_decref(o);
    json_decref(detail);

    /* A cached detail whose mainland date is not a day is not trusted for one. */
    detail = json_pack("{s:s}", "release_date_cn", "2026-01");
    o = movie_json(it, detail, NULL, fetched);
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2026-01");
    CHECK_STR(json_string_value(json_object_get(o, "release_date_precision")), "month");
    json_decref(o);
    json_decref(detail);

    /* No date, or one no year fits: both null. */
    free(it->release_date);
    it->release_date = NULL;
    o = movie_json(it, NULL, NULL, fetched);
    CHECK(json_is_null(json_object_get(o, "release_date_iso")));
    CHECK(json_is_null(json_object_get(o, "release_date_precision")));
    json_decref(o);
    it->release_date = xstrdup("02月29日");
    o = movie_json(it, NULL, NULL, china_time(2025, 3, 1, 12, 0));
    CHECK(json_is_null(json_object_get(o, "release_date_iso")));
    CHECK(json_is_null(json_object_get(o, "release_date_precision")));
    json_decref(o);
    listing_free(&l);
}

/* A number of the object, or -1 when it is null. */
static double number(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* A now-playing item: its own rating and votes win over the movie page's (fresher); the
 * page's year, directors, actors, runtime and poster win, the item's stand in without it. */
static void test_movie_nowplaying(void)
{
    struct listing l = {0};
    struct listing_item *it = listing_add(&l);
    CHECK_INT(it->year, -1);
    CHECK_INT(it->runtime_minutes, -1);
    CHECK_INT(it->votes, -1);
    CHECK(it->rating < 0 && it->poster == NULL && it->directors.n == 0 && it->actors.n == 0);
    it->id = xstrdup("36154853");
    it->url = xstrdup("https://movie.douban.com/subject/36154853/");
    it->title = xstrdup("好东西");
    strlist_push(&it->regions, "中国大陆");
    it->year = 2024;
    it->runtime_minutes = 123;
    it->rating = 9.1;
    it->votes = 502558;
    strlist_push(&it->directors, "邵艺辉");
    strlist_push(&it->actors, "宋佳");
    it->thumbnail = xstrdup("https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2.jpg");
    it->poster = xstrdup(it->thumbnail);

    json_t *o = movie_json(it, NULL, NULL, china_time(2024, 12, 5, 0, 0));
    check_keys(o);
    CHECK(number(o, "rating") == 9.1);
    CHECK(number(o, "votes") == 502558);
    CHECK(number(o, "year") == 2024);
    CHECK(number(o, "runtime_minutes") == 123);
    CHECK(number(o, "wish_count") < 0);
    CHECK(json_is_null(json_object_get(o, "release_date")));
    CHECK_STR(json_string_value(json_object_get(o, "poster")), it->thumbnail);
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "directors"), 0)), "邵艺辉");
    CHECK_STR(json_string_value(json_object_get(o, "detail_status")), "pending");
    json_decref(o);

    struct movie_detail d;
    movie_detail_init(&d);
    d.title = xstrdup("好东西");
    d.year = 2023;
    d.poster = xstrdup("https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2.webp");
    strlist_push(&d.directors, "邵艺辉");
    strlist_push(&d.directors, "导演乙");
    strlist_push(&d.actors, "宋佳");
    strlist_push(&d.actors, "钟楚曦");
    strlist_push(&d.genres, "剧情");
    d.release_date_cn = xstrdup("2024-11-22");
    d.runtime_minutes = 124;
    d.rating = 9.0;
    d.votes = 400000;
    json_t *detail = movie_detail_json(&d);
    o = movie_json(it, detail, NULL, china_time(2024, 12, 5, 0, 0));
    check_keys(o);
    CHECK(number(o, "rating") == 9.1);
    CHECK(number(o, "votes") == 502558);
    CHECK(number(o, "year") == 2023);
    CHECK(number(o, "runtime_minutes") == 124);
    CHECK_STR(json_string_value(json_object_get(o, "poster")), d.poster);
    CHECK_STR(json_string_value(json_object_get(o, "thumbnail")), it->thumbnail);
    CHECK_INT(json_array_size(json_object_get(o, "directors")), 2);
    CHECK_INT(json_array_size(json_object_get(o, "actors")), 2);
    CHECK_INT(json_array_size(json_object_get(o, "genres")), 1);
    CHECK_STR(json_string_value(json_object_get(o, "release_date_iso")), "2024-11-22");
    CHECK_STR(json_string_value(json_object_get(o, "detail_status")), "ok");
    json_decref(o);

    /* Unrated on the listing ("0"): the page's rating, if it has one. */
    it->rating = -1;
    it->votes = -1;
    o = movie_json(it, detail, NULL, china_time(2024, 12, 5, 0, 0));
    CHECK(number(o, "rating") == 9.0);
    CHECK(number(o, "votes") == 400000);
    json_decref(o);
    json_decref(detail);
    movie_detail_free(&d);
    listing_free(&l);
}

int main(void)
{
    test_records();
    test_detail_json();
    test_movie_listing_only();
    test_movie_with_detail();
    test_movie_nowplaying();
    test_detail_error();
    test_listing_date();
    test_listing_month();
    test_release_precision();
    return check_summary();
}
