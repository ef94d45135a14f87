/* Tests of lib/douban.c (the scan and parse of lib/html.c, and lib/dom.c's helpers, have
 * their own: test_html.c, test_dom.c). Fixtures in tests/fixtures/ are Douban-shaped pages, traps
 * included; case.html -> case.json pairs are compared structurally with
 * json_equal. With --real, the real pages in REAL_PAGES_DIR are read in place and checked
 * against values read off the pages by hand. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "douban.h"
#include "html.h"
#include "log.h"
#include "util.h"

/* 2025-08-01 00:00 in China (UTC+8): the fetch time behind the listing golden file. */
#define FETCHED_AT ((time_t)1753977600)

/* The whole file (new, NUL-terminated), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536)
            s = xrealloc(s, cap = cap * 2 + 65536);
        got = fread(s + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    s[n] = '\0';
    *len = n;
    return s;
}

/* A fixture's bytes (new); aborts the test run if it is missing. */
static char *fixture(const char *name, size_t *len)
{
    char *path = xasprintf("%s/%s", FIXTURES_DIR, name);
    char *s = slurp(path, len);
    if (s == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    free(path);
    return s;
}

/* Checks actual against the golden JSON file, printing both on a mismatch. */
static void check_golden(const json_t *actual, const char *golden)
{
    char *path = xasprintf("%s/%s", FIXTURES_DIR, golden);
    json_error_t e;
    json_t *expected = json_load_file(path, 0, &e);
    CHECK(expected != NULL);
    int same = expected && json_equal(actual, expected);
    CHECK(same);
    if (!same) {
        char *a = json_dumps(actual, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        fprintf(stderr, "%s differs (%s); actual:\n%s\n", golden, expected ? "" : e.text, a);
        free(a);
    }
    json_decref(expected);
    free(path);
}

/* The listing as the API would show it without movie pages. */
static json_t *listing_json(const struct listing *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, movie_json(&l->items[i], NULL, NULL, FETCHED_AT));
    return a;
}

/* Parses a fixture as beijing's listing (upstream host 127.0.0.1), returning the verdict. */
static enum douban_verdict listing_fixture(const char *name, struct listing *l)
{
    size_t len;
    char *html = fixture(name, &len);
    char err[200] = "";
    enum douban_verdict v =
        douban_parse_listing(html, len, "127.0.0.1", "beijing", l, err, sizeof err);
    CHECK(v == DOUBAN_OK || err[0] != '\0');
    free(html);
    return v;
}

/* Parses a fixture as a movie page, returning the verdict. */
static enum douban_verdict detail_fixture(const char *name, struct movie_detail *d)
{
    size_t len;
    char *html = fixture(name, &len);
    char err[200] = "";
    enum douban_verdict v = douban_parse_detail(html, len, d, err, sizeof err);
    CHECK(v == DOUBAN_OK || err[0] != '\0');
    free(html);
    return v;
}

/* Items with trailing-space and odd classes, missing rows, thousands separators, entities,
 * whitespace in titles, the trailer link inside <ul>, and off-host links (skipped). */
static void test_listing_traps(void)
{
    struct listing l = {0};
    CHECK_INT(listing_fixture("listing_traps.html", &l), DOUBAN_OK);
    json_t *j = listing_json(&l);
    check_golden(j, "listing_traps.json");
    json_decref(j);

    CHECK_INT(l.n, 6);
    for (size_t i = 0; i < l.n; i++) {
        CHECK(strncmp(l.items[i].id, "999", 3) != 0);          /* off-host links */
        CHECK(strcmp(l.items[i].id, "1291546") != 0);           /* outside #showing-soon */
    }
    if (l.n >= 3) {
        CHECK_STR(l.items[1].title, "速度&激情 十一");
        CHECK_STR(l.items[2].title, "他/她的\"秘密\"");
        CHECK_INT(l.items[0].wish_count, 12345);
        CHECK_INT(l.items[2].wish_count, 1234567);
        CHECK_INT(l.items[1].regions.n, 0);                     /* missing row */
        CHECK_INT(l.items[2].genres.n, 0);                      /* missing row */
    }
    listing_free(&l);
}

/* Parses a fixture as shanghai's now-playing page, returning the verdict. */
static enum douban_verdict nowplaying_fixture(const char *name, struct listing *l)
{
    size_t len;
    char *html = fixture(name, &len);
    char err[200] = "";
    enum douban_verdict v = douban_parse_nowplaying(html, len, "shanghai", l, err, sizeof err);
    CHECK(v == DOUBAN_OK || err[0] != '\0');
    free(html);
    return v;
}

/* The now-playing page's attributes: scores (0 is unrated), years, durations with a version,
 * blank-separated regions and directors (a Latin name kept whole), " / " actors, durations
 * with a blank or in minutes and seconds, entities
 * and marks, a missing data-subject (the id stands in), an item without an id (skipped);
 * neither #upcoming, the sidebar nor the script template's item is read. */
static void test_nowplaying_traps(void)
{
    struct listing l = {0};
    CHECK_INT(nowplaying_fixture("nowplaying_traps.html", &l), DOUBAN_OK);
    json_t *j = listing_json(&l);
    check_golden(j, "nowplaying_traps.json");
    json_decref(j);

    CHECK_INT(l.n, 5);
    for (size_t i = 0; i < l.n; i++) {
        CHECK(strncmp(l.items[i].id, "360002", 6) != 0);       /* #upcoming */
        CHECK(strcmp(l.items[i].id, "1292052") != 0);           /* the sidebar */
        CHECK_INT(l.items[i].wish_count, -1);
        CHECK(l.items[i].release_date == NULL);
    }
    if (l.n == 5) {
        CHECK_STR(l.items[0].title, "长夜将明");
        CHECK(l.items[0].rating > 9.1 - 1e-9 && l.items[0].rating < 9.1 + 1e-9);
        CHECK_INT(l.items[0].year, 2024);
        CHECK_INT(l.items[0].runtime_minutes, 123);
        CHECK_INT(l.items[0].votes, 502558);
        CHECK_INT(l.items[0].actors.n, 3);
        CHECK_STR(l.items[0].thumbnail,
                  "https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2915000101.jpg");
        CHECK_STR(l.items[0].poster, l.items[0].thumbnail);
        CHECK_INT(l.items[1].runtime_minutes, 119);
        CHECK_INT(l.items[1].regions.n, 2);
        CHECK_INT(l.items[1].directors.n, 3);
        CHECK_STR(l.items[2].title, "速度&激情 \"十一\"");
        CHECK(l.items[2].rating < 0);                           /* "0": not rated */
        CHECK_INT(l.items[2].votes, 587);
        CHECK_INT(l.items[2].directors.n, 2);
        if (l.items[2].directors.n == 2) {
            CHECK_STR(l.items[2].directors.v[0], "Julio Soto Gurpide");
            CHECK_STR(l.items[2].directors.v[1], "陈七");
        }
        CHECK_STR(l.items[3].title, "风起青萍");                 /* U+200E removed */
        CHECK_INT(l.items[3].year, -1);
        CHECK_INT(l.items[3].runtime_minutes, -1);
        CHECK_INT(l.items[3].votes, -1);
        CHECK(l.items[3].thumbnail == NULL && l.items[3].poster == NULL);
        CHECK_INT(l.items[3].directors.n, 1);
        CHECK_STR(l.items[4].id, "36000105");                   /* from id="..." */
        CHECK_INT(l.items[2].runtime_minutes, 88);              /* "88 分钟" */
        CHECK_INT(l.items[4].runtime_minutes, 7);               /* "7分02秒" */
    }
    listing_free(&l);
}

/* A now-playing page is read only for its own city and only with #nowplaying; a coming-soon
 * listing is not a now-playing page, nor the other way round. */
static void test_nowplaying_states(void)
{
    struct listing l = {0};
    char err[200] = "";
    size_t len;
    char *html = fixture("nowplaying_traps.html", &len);
    CHECK_INT(douban_parse_nowplaying(html, len, "beijing", &l, err, sizeof err), DOUBAN_CHANGED);
    CHECK_STR(err, "the upstream answered for city 'shanghai' instead of 'beijing'");
    CHECK_INT(l.n, 0);
    CHECK_INT(douban_parse_listing(html, len, NULL, "shanghai", &l, err, sizeof err), DOUBAN_CHANGED);
    CHECK_INT(l.n, 0);
    free(html);
    html = fixture("listing_traps.html", &len);
    CHECK_INT(douban_parse_nowplaying(html, len, NULL, &l, err, sizeof err), DOUBAN_CHANGED);
    CHECK(strstr(err, "#nowplaying") != NULL);
    free(html);
    html = fixture("blocked.html", &len);
    CHECK_INT(douban_parse_nowplaying(html, len, "shanghai", &l, err, sizeof err), DOUBAN_BLOCKED);
    free(html);
    html = fixture("not_found.html", &len);
    CHECK_INT(douban_parse_nowplaying(html, len, "shanghai", &l, err, sizeof err), DOUBAN_NOT_FOUND);
    free(html);
    static const char empty[] = "<html><body><div id=\"nowplaying\"><ul class=\"lists\"></ul></div>"
                                "<div id=\"upcoming\"><ul><li class=\"list-item\" data-subject=\"1\" "
                                "data-category=\"upcoming\"></li></ul></div></body></html>";
    CHECK_INT(douban_parse_nowplaying(empty, strlen(empty), "shanghai", &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 0);
    listing_free(&l);
    /* Durations cut short are unknown (and read within the string: see the fuzz regression). */
    html = fixture("../fuzz/regressions/fuzz_listing/nowplaying_duration_cut.html", &len);
    CHECK_INT(douban_parse_nowplaying(html, len, NULL, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 3);
    for (size_t i = 0; i < l.n; i++)
        CHECK_INT(l.items[i].runtime_minutes, -1);
    listing_free(&l);
    free(html);
}

/* The loop's quick look finds the block and login pages, and no ordinary page. */
static void test_may_be_refusal(void)
{
    static const struct {
        const char *name;
        int refusal;
    } pages[] = {
        {"blocked.html", 1}, {"login.html", 1}, {"not_found.html", 0},
        {"detail_full.html", 0}, {"detail_unrated.html", 0}, {"detail_changed.html", 0},
        {"listing_traps.html", 0}, {"listing_empty.html", 0}, {"listing_changed.html", 0},
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        size_t len;
        char *html = fixture(pages[i].name, &len);
        CHECK(html != NULL);
        if (html == NULL)
            continue;
        if (douban_may_be_refusal(html, len) != pages[i].refusal)
            fprintf(stderr, "douban_may_be_refusal(%s) is not %d\n", pages[i].name,
                    pages[i].refusal);
        CHECK_INT(douban_may_be_refusal(html, len), pages[i].refusal);
        free(html);
    }
    CHECK_INT(douban_may_be_refusal("", 0), 0);
    /* A title a byte search cannot read is parsed at once: it may be the login page. */
    static const char *const obscured[] = {
        "<html><head><title>&#30331;&#24405;&#36339;&#36716;&#39029;</title></head></html>",
        "<html><head><title>登录<!-- -->跳转页</title></head></html>",
        "<html><head><TITLE>登录<b></b>跳转页</TITLE></head></html>",
        "<html><head><title>登录跳转",
    };
    for (size_t i = 0; i < sizeof obscured / sizeof obscured[0]; i++) {
        CHECK_INT(douban_may_be_refusal(obscured[i], strlen(obscured[i])), 1);
        struct movie_detail d;
        movie_detail_init(&d);
        char why[200];
        /* What a parse makes of each: blocked, or at least not a movie. */
        CHECK(douban_parse_detail(obscured[i], strlen(obscured[i]), &d, why, sizeof why) !=
              DOUBAN_OK);
        movie_detail_free(&d);
    }
    static const char plain_title[] = "<html><head><title>沙丘2 (豆瓣)</title></head></html>";
    CHECK_INT(douban_may_be_refusal(plain_title, strlen(plain_title)), 0);
    /* The now-playing page's title: "&amp;" spells no mark, so it goes to the parse pool. */
    static const char amp_title[] = "<html><head><title>上海 - 在线购票&amp;影讯</title></head></html>";
    CHECK_INT(douban_may_be_refusal(amp_title, strlen(amp_title)), 0);
    CHECK_INT(douban_may_be_refusal(amp_title, (size_t)(strstr(amp_title, "&amp;") - amp_title) + 2), 1);
    size_t len;
    char *traps = fixture("nowplaying_traps.html", &len);
    CHECK_INT(douban_may_be_refusal(traps, len), 0);
    free(traps);
}

/* Empty, missing, blocked, login and not-found pages. */
static void test_listing_states(void)
{
    struct listing l = {0};
    CHECK_INT(listing_fixture("listing_empty.html", &l), DOUBAN_OK);
    CHECK_INT(l.n, 0);
    CHECK_INT(listing_fixture("listing_changed.html", &l), DOUBAN_CHANGED);
    CHECK_INT(listing_fixture("blocked.html", &l), DOUBAN_BLOCKED);
    CHECK_INT(listing_fixture("login.html", &l), DOUBAN_BLOCKED);
    CHECK_INT(listing_fixture("not_found.html", &l), DOUBAN_NOT_FOUND);
    CHECK_INT(l.n, 0);
    listing_free(&l);

    struct movie_detail d;
    movie_detail_init(&d);
    CHECK_INT(detail_fixture("blocked.html", &d), DOUBAN_BLOCKED);
    CHECK_INT(detail_fixture("login.html", &d), DOUBAN_BLOCKED);
    CHECK_INT(detail_fixture("not_found.html", &d), DOUBAN_NOT_FOUND);
    CHECK_INT(detail_fixture("detail_changed.html", &d), DOUBAN_CHANGED);
    CHECK(d.title == NULL && d.poster == NULL);
    movie_detail_free(&d);

    char err[200] = "";
    CHECK_INT(douban_parse_listing("", 0, NULL, "beijing", &l, err, sizeof err), DOUBAN_CHANGED);
    CHECK(err[0] != '\0');
    listing_free(&l);

    /* A good listing spoiled by one byte that is not UTF-8, or by a NUL, is malformed. */
    size_t len;
    char *page = fixture("listing_traps.html", &len);
    CHECK_INT(douban_parse_listing(page, len, NULL, "beijing", &l, err, sizeof err), DOUBAN_OK);
    listing_free(&l);
    char saved = page[len / 2];
    page[len / 2] = (char)0xFF;
    CHECK_INT(douban_parse_listing(page, len, NULL, "beijing", &l, err, sizeof err),
              DOUBAN_MALFORMED);
    CHECK(strstr(err, "UTF-8") != NULL);
    page[len / 2] = '\0';
    CHECK_INT(douban_parse_listing(page, len, NULL, "beijing", &l, err, sizeof err),
              DOUBAN_MALFORMED);
    page[len / 2] = saved;
    CHECK_INT(l.n, 0);
    listing_free(&l);
    free(page);

    /* What html_parse refuses is malformed, for movie pages too, with its reason. */
    char *deep = xmalloc((HTML_MAX_DEPTH + 1) * 5 + 1);
    deep[0] = '\0';
    for (int i = 0; i <= HTML_MAX_DEPTH; i++)
        strcat(deep, "<div>");
    CHECK_INT(douban_parse_listing(deep, strlen(deep), NULL, "beijing", &l, err, sizeof err),
              DOUBAN_MALFORMED);
    CHECK(strstr(err, "deeper") != NULL);
    CHECK_INT(l.n, 0);
    movie_detail_init(&d);
    CHECK_INT(douban_parse_detail(deep, strlen(deep), &d, err, sizeof err), DOUBAN_MALFORMED);
    CHECK(strstr(err, "deeper") != NULL);
    CHECK(d.title == NULL);
    movie_detail_free(&d);
    free(deep);
}

/* A listing page whose #location says which city it shows (data-uid), around one item. */
static char *located_listing(const char *location)
{
    return xasprintf("<html><head><title>即将上映</title></head><body><div id=\"hd\">%s</div>"
                     "<div id=\"showing-soon\"><div class=\"item mod\"><div class=\"intro\">"
                     "<h3><a href=\"https://movie.douban.com/subject/7/\">T</a></h3><ul>"
                     "<li class=\"dt\">08月07日</li></ul></div></div></div></body></html>",
                     location);
}

/* Douban answers a city it does not know with another city's page: #location tells. */
static void test_listing_city(void)
{
    struct listing l = {0};
    char err[200] = "";
    char *page = located_listing("<div id=\"location\" data-uid=\"shanghai\" data-id=\"108296\">"
                                 "<a class=\"change-loc\">[切换城市]</a></div>");
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "shanghai", &l, err, sizeof err),
              DOUBAN_OK);
    CHECK_INT(l.n, 1);
    listing_free(&l);
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "xyz", &l, err, sizeof err),
              DOUBAN_CHANGED);
    CHECK_STR(err, "the upstream answered for city 'shanghai' instead of 'xyz'");
    CHECK_INT(l.n, 0);
    listing_free(&l);
    /* No city to compare with: the page is read. */
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, NULL, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 1);
    listing_free(&l);
    free(page);

    /* The city a page names is escaped in the reason, which goes into JSON and logs. */
    page = located_listing("<div id=\"location\" data-uid=\" sh&quot;\n \"></div>");
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "beijing", &l, err, sizeof err),
              DOUBAN_CHANGED);
    CHECK_STR(err, "the upstream answered for city 'sh\\x22' instead of 'beijing'");
    listing_free(&l);
    free(page);

    /* Without a #location, or without a city in it, the page is taken as asked for. */
    const char *unlocated[] = { "", "<div id=\"location\"></div>",
                                "<div id=\"location\" data-uid=\"  \"></div>",
                                "<div class=\"location\" data-uid=\"shanghai\"></div>" };
    for (size_t i = 0; i < sizeof unlocated / sizeof unlocated[0]; i++) {
        page = located_listing(unlocated[i]);
        CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "xyz", &l, err, sizeof err),
                  DOUBAN_OK);
        CHECK_INT(l.n, 1);
        listing_free(&l);
        free(page);
    }
}

/* A 40-movie listing built here: every item comes back, in order. */
static void test_listing_40(void)
{
    size_t cap = 1 << 17, n = 0;
    char *html = xmalloc(cap);
    n += (size_t)snprintf(html + n, cap - n, "<html><head><title>即将上映</title></head><body>"
                                             "<div id=\"showing-soon\" class=\"tab-bd\">\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(
            html + n, cap - n,
            "<div class=\"item mod %s\"><a class=\"thumb\" href=\"https://movie.douban.com/subject/%d/\">"
            "<img src=\"https://img%d.doubanio.com/p%d.jpg\" class=\"\" /></a><div class=\"intro\">"
            "<h3>\n  <a href=\"https://movie.douban.com/subject/%d/\">影片%s%d</a>\n</h3><ul>"
            "<li class=\"dt\">%02d月%02d日</li><li class=\"dt\">剧情 / 喜剧</li>%s"
            "<li class=\"dt last\"><span>%s人想看</span></li></ul></div></div>\n",
            i % 2 ? "odd" : "", 36000100 + i, i % 10, i, 36000100 + i, i % 7 ? "" : "&amp;", i,
            i % 12 + 1, i % 28 + 1, i % 5 ? "<li class=\"dt\">中国大陆</li>" : "",
            i % 2 ? "1,000" : "1000");
    n += (size_t)snprintf(html + n, cap - n, "</div></body></html>");
    struct listing l = {0};
    char err[200] = "";
    CHECK_INT(douban_parse_listing(html, n, NULL, "beijing", &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 40);
    for (size_t i = 0; i < l.n && i < 40; i++) {
        char id[16], title[32];
        snprintf(id, sizeof id, "%zu", 36000100 + i);
        snprintf(title, sizeof title, "影片%s%zu", i % 7 ? "" : "&", i);
        CHECK_STR(l.items[i].id, id);
        CHECK_STR(l.items[i].title, title);
        CHECK_INT(l.items[i].wish_count, 1000);
        CHECK_INT(l.items[i].genres.n, 2);
        CHECK_INT(l.items[i].regions.n, i % 5 ? 1 : 0);
    }
    listing_free(&l);
    free(html);
}

/* Movie pages against their golden files: every field, the script-template <img> trap,
 * the re-release before the mainland date, and an unrated, unreleased film. */
static void test_detail_golden(void)
{
    static const char *const cases[] = {"detail_full", "detail_unrated"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *html = xasprintf("%s.html", cases[i]), *json = xasprintf("%s.json", cases[i]);
        struct movie_detail d;
        movie_detail_init(&d);
        CHECK_INT(detail_fixture(html, &d), DOUBAN_OK);
        json_t *j = movie_detail_json(&d);
        check_golden(j, json);
        json_decref(j);
        movie_detail_free(&d);
        free(html);
        free(json);
    }
}

/* Poster fallbacks: og:image when #mainpic has no image, JSON-LD (with raw newlines in its
 * strings) when there is no og:image either; never "the first img". */
static void test_detail_poster(void)
{
    struct movie_detail d;
    movie_detail_init(&d);
    CHECK_INT(detail_fixture("detail_jsonld_poster.html", &d), DOUBAN_OK);
    CHECK_STR(d.poster, "https://img4.doubanio.com/view/photo/s_ratio_poster/public/p2900000444.webp");
    CHECK_STR(d.title, "午夜列车");
    CHECK(d.rating < 0 && d.votes < 0 && d.year < 0 && d.runtime_minutes < 0);
    CHECK(d.summary == NULL && d.original_title == NULL);
    movie_detail_free(&d);

    CHECK_INT(detail_fixture("detail_unrated.html", &d), DOUBAN_OK);
    CHECK_STR(d.poster, "https://img3.doubanio.com/view/photo/s_ratio_poster/public/p2900000777.jpg");
    CHECK(d.rating < 0);
    movie_detail_free(&d);
}

/* City slugs. */
static void test_city_and_names(void)
{
    CHECK(douban_city_valid("beijing"));
    CHECK(douban_city_valid("a"));
    CHECK(!douban_city_valid(""));
    CHECK(!douban_city_valid(NULL));
    CHECK(!douban_city_valid("Beijing"));
    CHECK(!douban_city_valid("bei-jing"));
    CHECK(!douban_city_valid("beijing/"));
    CHECK(douban_city_valid("abcdefghijklmnopqrstuvwxyzabcdef"));
    CHECK(!douban_city_valid("abcdefghijklmnopqrstuvwxyzabcdefg"));
    /* Cities without a pinyin slug go by their id. */
    CHECK(douban_city_valid("118378"));
    CHECK(douban_city_valid("0"));
    CHECK(douban_city_valid("12345678901234567890123456789012"));
    CHECK(!douban_city_valid("123456789012345678901234567890123"));
    CHECK(!douban_city_valid("beijing1"));
    CHECK(!douban_city_valid("1beijing"));
    CHECK(!douban_city_valid("-1"));
    CHECK_STR(douban_verdict_name(DOUBAN_OK), "ok");
    CHECK_STR(douban_verdict_name(DOUBAN_BLOCKED), "blocked");
    CHECK_STR(douban_verdict_name(DOUBAN_NOT_FOUND), "not_found");
    CHECK_STR(douban_verdict_name(DOUBAN_CHANGED), "changed");
    CHECK_STR(douban_verdict_name(DOUBAN_MALFORMED), "malformed");
    CHECK_STR(douban_verdict_name((enum douban_verdict)99), "unknown");
}

/* ---- Real pages ----------------------------------------------------------------------- */

/* What each real movie page says, read off the page by hand. */
static const struct real_page {
    const char *id, *title, *original_title;
    long year;
    const char *poster, *directors;   /* lists joined with " / " */
    size_t actors;
    const char *first_actor, *last_actor, *genres, *regions, *languages, *release_date_cn;
    long runtime;
    double rating;
    long long votes;
    const char *imdb;
    size_t paragraphs;
    const char *summary_start;
} real_pages[] = {
    {"3541415", "盗梦空间 Inception", "Inception", 2010,
     "https://img9.doubanio.com/view/photo/s_ratio_poster/public/p513344864.webp",
     "克里斯托弗·诺兰", 25, "莱昂纳多·迪卡普里奥", "妲露拉·莱莉", "剧情 / 科幻 / 悬疑 / 冒险",
     "美国 / 英国", "英语 / 日语 / 法语", "2010-09-01", 148, 9.4, 1970885, "tt1375666", 1,
     "道姆·柯布（莱昂纳多·迪卡普里奥"},
    /* A movie without any v:initialReleaseDate. */
    {"6875601", "遇见恶魔 Meeting Evil", "Meeting Evil", 2012,
     "https://img2.doubanio.com/view/photo/s_ratio_poster/public/p1637430363.webp",
     "克里斯·费舍", 6, "塞缪尔·杰克逊", "李·瑞恩", "剧情 / 悬疑 / 犯罪", "美国", "英语", NULL, 89,
     6.1, 822, "tt1810697", 2, "曾经的约翰（卢克·威尔逊"},
    /* TV: 首播 2016-10-11(日本), per-episode runtime only. */
    {"26816519", "逃避虽可耻但有用 逃げるは恥だが役に立つ", "逃げるは恥だが役に立つ", 2016,
     "https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2400201631.webp",
     "金子文纪 / 土井裕泰 / 石井康晴", 14, "新垣结衣", "叶山奖之", "喜剧", "日本", "日语", NULL, -1, 8.4,
     154384, "tt5917100", 2, "森山实栗（新垣结衣 饰）"},
    /* TV: 首播 2021-07-15(美国); actors linked to /subject_search, one with a stray space. */
    {"26895436", "北海鲸梦 The North Water", "The North Water", 2021,
     "https://img9.doubanio.com/view/photo/s_ratio_poster/public/p2669129906.jpg", "安德鲁·海格",
     20, "杰克·奥康奈尔", "Stephen McMillan", "剧情 / 悬疑", "英国", "英语", NULL, -1, 8.3, 6184,
     "tt7660970", 1, "改编自伊恩·麦奎尔所著同名获奖小说"},
};

/* The list joined with " / " (new). */
static char *joined(const struct strlist *l)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < l->n; i++) {
        char *t = xasprintf("%s%s%s", s, i ? " / " : "", l->v[i]);
        free(s);
        s = t;
    }
    return s;
}

/* Checks one real movie page against its expectations. */
static void check_real_detail(const char *name, const char *html, size_t len)
{
    const struct real_page *e = NULL;
    for (size_t i = 0; i < sizeof real_pages / sizeof real_pages[0]; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "subject_%s_", real_pages[i].id);
        if (strncmp(name, prefix, strlen(prefix)) == 0)
            e = &real_pages[i];
    }
    if (e == NULL)
        fprintf(stderr, "no expectations for %s\n", name);
    CHECK(e != NULL);
    if (e == NULL)
        return;
    struct movie_detail d;
    movie_detail_init(&d);
    char err[200] = "";
    CHECK_INT(douban_parse_detail(html, len, &d, err, sizeof err), DOUBAN_OK);
    CHECK_STR(d.title, e->title);
    CHECK_STR(d.original_title, e->original_title);
    CHECK_INT(d.year, e->year);
    CHECK_STR(d.poster, e->poster);
    char *directors = joined(&d.directors), *genres = joined(&d.genres);
    char *regions = joined(&d.regions), *languages = joined(&d.languages);
    CHECK_STR(directors, e->directors);
    CHECK_STR(genres, e->genres);
    CHECK_STR(regions, e->regions);
    CHECK_STR(languages, e->languages);
    free(directors);
    free(genres);
    free(regions);
    free(languages);
    CHECK_INT(d.actors.n, e->actors);
    if (d.actors.n > 0) {
        CHECK_STR(d.actors.v[0], e->first_actor);
        CHECK_STR(d.actors.v[d.actors.n - 1], e->last_actor);
    }
    for (size_t i = 0; i < d.actors.n; i++) {
        size_t n = strlen(d.actors.v[i]);
        CHECK(n > 0 && d.actors.v[i][0] != ' ' && d.actors.v[i][n - 1] != ' ');
    }
    CHECK_STR(d.release_date_cn, e->release_date_cn);
    CHECK_INT(d.runtime_minutes, e->runtime);
    CHECK(d.rating > e->rating - 1e-9 && d.rating < e->rating + 1e-9);
    CHECK_INT(d.votes, e->votes);
    CHECK_STR(d.imdb_id, e->imdb);
    size_t paragraphs = 0;
    for (const char *p = d.summary; p; p = strchr(p + 1, '\n'))
        paragraphs++;
    CHECK_INT(paragraphs, e->paragraphs);
    CHECK(d.summary && strncmp(d.summary, e->summary_start, strlen(e->summary_start)) == 0);
    movie_detail_free(&d);
}

/* The real 2024 now-playing page's #location (shanghai), read as a listing's would be: the
 * page given a #showing-soon of its own. */
static void check_real_location(const char *html, size_t len)
{
    const char *end = bytes_find(html, len, "</body>");
    CHECK(end != NULL);
    if (end == NULL)
        return;
    char *page = xasprintf("%.*s<div id=\"showing-soon\"></div>%s", (int)(end - html), html, end);
    struct listing l = {0};
    char err[200] = "";
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "shanghai", &l, err, sizeof err),
              DOUBAN_OK);
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "beijing", &l, err, sizeof err),
              DOUBAN_CHANGED);
    CHECK_STR(err, "the upstream answered for city 'shanghai' instead of 'beijing'");
    listing_free(&l);
    free(page);
}

/* What each real now-playing page's #nowplaying says, read off the page by hand: its
 * first movie, one with a version's duration or an unrated score, one with blank-separated
 * directors or a Latin name, and a movie of its #upcoming block (never read). */
static const struct real_nowplaying {
    const char *file, *city;        /* city NULL: the page has no #location */
    size_t movies;
    const char *first_id, *first_title, *first_thumbnail;
    double first_rating;
    long first_year, first_runtime;
    long long first_votes;
    const char *unrated_id;         /* data-score="0" */
    long long unrated_votes;
    const char *directors_id;       /* several directors, or one Latin name */
    size_t directors_n;
    const char *director0;
    const char *regions_id;
    size_t regions_n;
    const char *upcoming_id;
} real_nowplaying[] = {
    {"nowplaying_shanghai_loggedin_2024-12.html", "shanghai", 85, "36154853", "好东西",
     "https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2915454411.jpg", 9.1, 2024, 123,
     502558, "34463311", 4512, "27162505", 3, "钱国伟", "35902857", 2, "25773932"},
    {"nowplaying_shangrao_excerpt_2018-08.html", NULL, 21, "26636712", "蚁人2：黄蜂女现身",
     "https://img1.doubanio.com/view/photo/s_ratio_poster/public/p2529389608.webp", 7.6, 2018, 119,
     34361, "30176525", 64, "30176525", 1, "Julio Soto Gurpide", "26906870", 3, "27021609"},
};

/* The item of l with id, or NULL. */
static const struct listing_item *item_with_id(const struct listing *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].id, id) == 0)
            return &l->items[i];
    return NULL;
}

/* Checks one real now-playing page's #nowplaying against its expectations. */
static void check_real_nowplaying(const char *name, const char *html, size_t len)
{
    const struct real_nowplaying *e = NULL;
    for (size_t i = 0; i < sizeof real_nowplaying / sizeof real_nowplaying[0]; i++)
        if (strcmp(name, real_nowplaying[i].file) == 0)
            e = &real_nowplaying[i];
    CHECK(e != NULL);
    if (e == NULL) {
        fprintf(stderr, "no expectations for %s\n", name);
        return;
    }
    /* Its title's "&amp;" leaves it to the parse pool, off the loop. */
    CHECK_INT(douban_may_be_refusal(html, len), 0);
    struct listing l = {0};
    char err[200] = "";
    CHECK_INT(douban_parse_nowplaying(html, len, e->city, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, e->movies);
    printf("now playing %2zu movies  %s\n", l.n, name);
    if (l.n == 0) {
        listing_free(&l);
        return;
    }
    const struct listing_item *first = &l.items[0];
    CHECK_STR(first->id, e->first_id);
    CHECK_STR(first->title, e->first_title);
    CHECK_STR(first->thumbnail, e->first_thumbnail);
    CHECK(first->rating > e->first_rating - 1e-9 && first->rating < e->first_rating + 1e-9);
    CHECK_INT(first->year, e->first_year);
    CHECK_INT(first->runtime_minutes, e->first_runtime);
    CHECK_INT(first->votes, e->first_votes);
    CHECK_INT(first->actors.n, 3);
    CHECK_INT(first->directors.n, 1);
    const struct listing_item *it = item_with_id(&l, e->unrated_id);
    CHECK(it != NULL && it->rating < 0 && it->votes == e->unrated_votes);
    it = item_with_id(&l, e->directors_id);
    CHECK(it != NULL && it->directors.n == e->directors_n);
    if (it && it->directors.n > 0)
        CHECK_STR(it->directors.v[0], e->director0);
    it = item_with_id(&l, e->regions_id);
    CHECK(it != NULL && it->regions.n == e->regions_n);
    CHECK(item_with_id(&l, e->upcoming_id) == NULL);
    for (size_t i = 0; i < l.n; i++) {
        CHECK(l.items[i].title != NULL && l.items[i].thumbnail != NULL);
        CHECK(l.items[i].runtime_minutes > 0 && l.items[i].year > 0 && l.items[i].votes >= 0);
        CHECK(l.items[i].regions.n > 0 && l.items[i].directors.n > 0);
        CHECK(l.items[i].wish_count < 0 && l.items[i].release_date == NULL);
    }
    if (e->city != NULL) {
        struct listing other = {0};
        CHECK_INT(douban_parse_nowplaying(html, len, "beijing", &other, err, sizeof err),
                  DOUBAN_CHANGED);
        CHECK_INT(other.n, 0);
        listing_free(&other);
    }
    listing_free(&l);
}

/* Every real page in REAL_PAGES_DIR: subject pages against their values, now-playing pages
 * refused as a coming-soon listing (a changed layout) and read as now playing; every page's
 * nesting depth printed. */
static void test_real(void)
{
    DIR *dir = opendir(REAL_PAGES_DIR);
    CHECK(dir != NULL);
    if (dir == NULL)
        return;
    size_t subjects = 0, nowplaying = 0;
    for (struct dirent *de; (de = readdir(dir)) != NULL;) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (nl < 5 || strcmp(name + nl - 5, ".html") != 0)
            continue;
        char *path = xasprintf("%s/%s", REAL_PAGES_DIR, name);
        size_t len;
        char *html = slurp(path, &len);
        CHECK(html != NULL);
        if (html) {
            size_t depth = html_nesting_depth(html, len);
            printf("nesting depth %3zu  %s\n", depth, name);
            CHECK(depth < 100);
            if (strncmp(name, "subject_", 8) == 0) {
                subjects++;
                check_real_detail(name, html, len);
            } else if (strncmp(name, "nowplaying_", 11) == 0) {
                nowplaying++;
                struct listing l = {0};
                char err[200] = "";
                CHECK_INT(douban_parse_listing(html, len, NULL, "beijing", &l, err, sizeof err),
                          DOUBAN_CHANGED);
                CHECK_INT(l.n, 0);
                listing_free(&l);
                if (strcmp(name, "nowplaying_shanghai_loggedin_2024-12.html") == 0)
                    check_real_location(html, len);
                check_real_nowplaying(name, html, len);
            }
        }
        free(html);
        free(path);
    }
    closedir(dir);
    CHECK_INT(subjects, sizeof real_pages / sizeof real_pages[0]);
    CHECK(nowplaying > 0);
}

/* Lists, whose check for repeats costs the square of their length, are capped. */
static void test_list_caps(void)
{
    char err[200];
    /* One listing row of 300 distinct " / " items keeps DOUBAN_MAX_LIST_ITEMS of them. */
    char *row = xstrdup("");
    for (int i = 0; i < 300; i++) {
        char *next = xasprintf("%s%s地区%d", row, i ? " / " : "", i);
        free(row);
        row = next;
    }
    char *page = xasprintf("<html><body><div id=\"showing-soon\"><div class=\"item mod\">"
                           "<a class=\"thumb\" href=\"https://movie.douban.com/subject/1/\"></a>"
                           "<div class=\"intro\"><h3><a href=\"https://movie.douban.com/subject/1/\">T</a>"
                           "</h3><ul><li class=\"dt\">08月07日</li><li class=\"dt\">剧情</li>"
                           "<li class=\"dt\">%s</li></ul></div></div></div></body></html>", row);
    struct listing l = {0};
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, "beijing", &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 1);
    if (l.n == 1)
        CHECK_INT(l.items[0].regions.n, DOUBAN_MAX_LIST_ITEMS);
    listing_free(&l);
    free(page);
    free(row);

    /* 300 distinct actors keep DOUBAN_MAX_LIST_ITEMS; after twice that many repeats of one
     * name, no more are looked at. */
    for (int repeats = 0; repeats <= 2 * DOUBAN_MAX_LIST_ITEMS; repeats += 2 * DOUBAN_MAX_LIST_ITEMS) {
        char *actors = xstrdup("");
        for (int i = 0; i < repeats + 300; i++) {
            char *next = xasprintf("%s<a rel=\"v:starring\">演员%d</a> / ", actors,
                                   i < repeats ? 0 : i);
            free(actors);
            actors = next;
        }
        page = xasprintf("<html><body><span property=\"v:itemreviewed\">T</span>%s</body></html>",
                         actors);
        struct movie_detail d;
        movie_detail_init(&d);
        CHECK_INT(douban_parse_detail(page, strlen(page), &d, err, sizeof err), DOUBAN_OK);
        CHECK_INT(d.actors.n, repeats ? 1 : DOUBAN_MAX_LIST_ITEMS);
        movie_detail_free(&d);
        free(page);
        free(actors);
    }
}

/* ---- Invisible marks and month-only dates ---------------------------------------------- */

/* U+200E, U+200F, U+200B and U+FEFF: Douban's text carries them, the API's must not. */
static const char *const marks[] = {"\xE2\x80\x8E", "\xE2\x80\x8F", "\xE2\x80\x8B", "\xEF\xBB\xBF"};
#define NMARKS (sizeof marks / sizeof marks[0])

/* text with mark m at its start (where 0), in its middle (1, at a character boundary) or
 * at its end (2). New. */
static char *marked(const char *text, const char *m, int where)
{
    size_t len = strlen(text), at = where == 0 ? 0 : where == 2 ? len : len / 2;
    while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80)
        at++;
    return xasprintf("%.*s%s%s", (int)at, text, m, text + at);
}

/* Whether s holds one of the marks. */
static int has_mark(const char *s)
{
    for (size_t i = 0; s && i < NMARKS; i++)
        if (strstr(s, marks[i]))
            return 1;
    return 0;
}

/* A listing of one item per mark and place: the mark in the title, the thumbnail, and each
 * row (date, genres, regions, wish count). Every field comes back without it. */
static void test_listing_marks(void)
{
    char *items = xstrdup("");
    for (size_t i = 0; i < NMARKS; i++)
        for (int where = 0; where < 3; where++) {
            char *title = marked("神探之痕迹", marks[i], where);
            char *thumb = marked("https://img9.doubanio.com/p1.jpg", marks[i], where);
            char *date = marked("08月07日", marks[i], where);
            char *genre = marked("爱情", marks[i], where), *region = marked("中国大陆", marks[i], where);
            char *wish = marked("12,345人想看", marks[i], where);
            char *next = xasprintf(
                "%s<div class=\"item mod\"><a class=\"thumb\" href=\"https://movie.douban.com/subject/%zu/\">"
                "<img src=\"%s\"></a><div class=\"intro\"><h3><a href=\"https://movie.douban.com/subject/%zu/\">"
                "\n   %s%s\n  </a></h3><ul><li class=\"dt\">%s</li><li class=\"dt\">%s / 动画%s</li>"
                "<li class=\"dt\">%s</li><li class=\"dt last\"><span>%s</span></li></ul></div></div>\n",
                items, 1 + i * 3 + (size_t)where, thumb, 1 + i * 3 + (size_t)where, marks[i], title,
                date, genre, marks[i], region, wish);
            free(items);
            items = next;
            free(title);
            free(thumb);
            free(date);
            free(genre);
            free(region);
            free(wish);
        }
    char *page = xasprintf("<html><body><div id=\"showing-soon\">%s</div></body></html>", items);
    struct listing l = {0};
    char err[200] = "";
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, NULL, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, NMARKS * 3);
    for (size_t k = 0; k < l.n; k++) {
        const struct listing_item *it = &l.items[k];
        CHECK_STR(it->title, "神探之痕迹");
        CHECK_STR(it->thumbnail, "https://img9.doubanio.com/p1.jpg");
        CHECK_STR(it->release_date, "08月07日");
        CHECK_INT(it->wish_count, 12345);
        CHECK_INT(it->genres.n, 2);
        CHECK_INT(it->regions.n, 1);
        if (it->genres.n == 2 && it->regions.n == 1) {
            CHECK_STR(it->genres.v[0], "爱情");
            CHECK_STR(it->genres.v[1], "动画");
            CHECK_STR(it->regions.v[0], "中国大陆");
        }
    }
    listing_free(&l);
    free(page);
    free(items);

    /* A title or row that is only marks is absent, as a blank one is. */
    page = xasprintf("<html><body><div id=\"showing-soon\"><div class=\"item mod\">"
                     "<a class=\"thumb\" href=\"/subject/7/\"><img src=\"%s\"></a>"
                     "<h3><a href=\"/subject/7/\"> %s%s </a></h3><ul><li class=\"dt\">%s</li>"
                     "<li class=\"dt\">%s / %s</li><li class=\"dt\">中国大陆</li></ul></div></div>"
                     "</body></html>", marks[3], marks[0], marks[1], marks[2], marks[0], marks[3]);
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, NULL, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 1);
    if (l.n == 1) {
        CHECK(l.items[0].title == NULL && l.items[0].thumbnail == NULL);
        CHECK(l.items[0].release_date == NULL);
        CHECK_INT(l.items[0].genres.n, 0);
        CHECK_INT(l.items[0].regions.n, 1);
    }
    listing_free(&l);
    free(page);
}

/* A movie page per mark and place, the mark in every field it has (labels included): the
 * fields read back without it. */
static void test_detail_marks(void)
{
    static const char *const parts[] = {
        "长夜将明 The Long Night", "(2024)", "https://img1.doubanio.com/p2900000001.webp",
        "The Long Night", "张艺谋", "周迅", "黄渤", "剧情", "制片国家/地区:", "美国 / 中国大陆",
        "语言:", "英语 / 汉语普通话", "2024-08-15(中国大陆)", "128", "IMDb:", "tt1234567",
        "7.9", "123456", "\xE3\x80\x80\xE3\x80\x80第一段", "第二段",
    };
#define NPARTS (sizeof parts / sizeof parts[0])
    for (size_t i = 0; i < NMARKS; i++)
        for (int where = 0; where < 3; where++) {
            char *p[NPARTS];
            for (size_t k = 0; k < NPARTS; k++)
                p[k] = marked(parts[k], marks[i], where);
            char *page = xasprintf(
                "<html><head><title>长夜将明 (豆瓣)</title></head><body>"
                "<h1><span property=\"v:itemreviewed\">%s</span> <span class=\"year\">%s</span></h1>"
                "<div id=\"mainpic\"><img src=\"%s\" alt=\"%s\" rel=\"v:image\"></div><div id=\"info\">"
                "<span class='pl'>导演</span>: <a rel=\"v:directedBy\">%s</a><br/>"
                "<span class='pl'>主演</span>: <a rel=\"v:starring\">%s</a> / <a rel=\"v:starring\">%s</a><br/>"
                "<span class=\"pl\">类型:</span> <span property=\"v:genre\">%s</span><br/>"
                "<span class=\"pl\">%s</span> %s<br/><span class=\"pl\">%s</span> %s<br/>"
                "<span class=\"pl\">上映日期:</span> <span property=\"v:initialReleaseDate\" content=\"%s\">x</span><br/>"
                "<span class=\"pl\">片长:</span> <span property=\"v:runtime\" content=\"%s\">128分钟</span><br/>"
                "<span class=\"pl\">%s</span> %s<br></div>"
                "<strong property=\"v:average\">%s</strong><span property=\"v:votes\">%s</span>"
                "<span class=\"all hidden\">%s<br/>%s</span></body></html>",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12],
                p[13], p[14], p[15], p[16], p[17], p[18], p[19]);
            struct movie_detail d;
            movie_detail_init(&d);
            char err[200] = "";
            CHECK_INT(douban_parse_detail(page, strlen(page), &d, err, sizeof err), DOUBAN_OK);
            CHECK_STR(d.title, "长夜将明 The Long Night");
            CHECK_STR(d.original_title, "The Long Night");
            CHECK_INT(d.year, 2024);
            CHECK_STR(d.poster, "https://img1.doubanio.com/p2900000001.webp");
            char *directors = joined(&d.directors), *actors = joined(&d.actors);
            char *genres = joined(&d.genres), *regions = joined(&d.regions);
            char *languages = joined(&d.languages);
            CHECK_STR(directors, "张艺谋");
            CHECK_STR(actors, "周迅 / 黄渤");
            CHECK_STR(genres, "剧情");
            CHECK_STR(regions, "美国 / 中国大陆");
            CHECK_STR(languages, "英语 / 汉语普通话");
            free(directors);
            free(actors);
            free(genres);
            free(regions);
            free(languages);
            CHECK_STR(d.release_date_cn, "2024-08-15");
            CHECK_INT(d.runtime_minutes, 128);
            CHECK_STR(d.imdb_id, "tt1234567");
            CHECK(d.rating > 7.9 - 1e-9 && d.rating < 7.9 + 1e-9);
            CHECK_INT(d.votes, 123456);
            CHECK_STR(d.summary, "第一段\n第二段");
            json_t *j = movie_detail_json(&d);
            char *text = json_dumps(j, MOVIE_JSON_FLAGS);
            CHECK(text != NULL && !has_mark(text));
            free(text);
            json_decref(j);
            movie_detail_free(&d);
            free(page);
            for (size_t k = 0; k < NPARTS; k++)
                free(p[k]);
        }
#undef NPARTS
}

/* The movie-page fixture with Douban's marks and a mainland date with the month alone,
 * which is no mainland day (also a fuzzing seed). */
static void test_detail_marks_fixture(void)
{
    struct movie_detail d;
    movie_detail_init(&d);
    CHECK_INT(detail_fixture("detail_marks.html", &d), DOUBAN_OK);
    CHECK_STR(d.title, "神探之痕迹 The Trace");
    CHECK_STR(d.original_title, "The Trace");
    CHECK_INT(d.year, 2026);
    CHECK_STR(d.poster, "https://img2.doubanio.com/view/photo/s_ratio_poster/public/p2916452871.webp");
    char *directors = joined(&d.directors), *actors = joined(&d.actors);
    char *genres = joined(&d.genres), *regions = joined(&d.regions);
    CHECK_STR(directors, "陈思诚");
    CHECK_STR(actors, "刘昊然 / 王宝强");           /* a name that is only a mark: none */
    CHECK_STR(genres, "悬疑 / 犯罪");
    CHECK_STR(regions, "中国大陆 / 中国香港");
    free(directors);
    free(actors);
    free(genres);
    free(regions);
    CHECK_INT(d.languages.n, 1);
    CHECK(d.release_date_cn == NULL);
    CHECK_INT(d.runtime_minutes, 119);
    CHECK_STR(d.imdb_id, "tt3146721");
    CHECK(d.rating < 0);                           /* only a mark: unrated */
    CHECK_STR(d.summary, "一桩旧案的痕迹，把两代警察重新连在一起。\n真相只有一个。");
    json_t *j = movie_detail_json(&d);
    char *text = json_dumps(j, MOVIE_JSON_FLAGS);
    CHECK(text != NULL && !has_mark(text));
    free(text);
    json_decref(j);
    movie_detail_free(&d);
}

/* A month alone ("07月") is the date row, wherever it stands and whatever rows are missing;
 * it never becomes a genre or region. Months 00 and 13 are not dates. */
static void test_listing_month_row(void)
{
    static const struct {
        const char *rows, *date, *genres, *regions;
    } cases[] = {
        {"<li>07月</li><li>剧情 / 喜剧</li><li>中国大陆</li>", "07月", "剧情 / 喜剧", "中国大陆"},
        {"<li>07月</li><li>中国大陆</li>", "07月", "", "中国大陆"},
        {"<li>12月</li>", "12月", "", ""},
        {"<li>中国大陆</li><li>01月</li>", "01月", "", "中国大陆"},
        /* Not dates: rows like any other, the genres' slot being free. */
        {"<li>13月</li><li>中国大陆</li>", NULL, "13月", "中国大陆"},
        {"<li>00月</li>", NULL, "00月", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *page = xasprintf("<html><body><div id=\"showing-soon\"><div class=\"item mod\">"
                               "<h3><a href=\"/subject/1/\">片</a></h3><ul>%s"
                               "<li><span>5028人想看</span></li></ul></div></div></body></html>",
                               cases[i].rows);
        struct listing l = {0};
        char err[200] = "";
        CHECK_INT(douban_parse_listing(page, strlen(page), NULL, NULL, &l, err, sizeof err), DOUBAN_OK);
        CHECK_INT(l.n, 1);
        if (l.n == 1) {
            char *genres = joined(&l.items[0].genres), *regions = joined(&l.items[0].regions);
            CHECK_STR(l.items[0].release_date, cases[i].date);
            CHECK_STR(genres, cases[i].genres);
            CHECK_STR(regions, cases[i].regions);
            CHECK_INT(l.items[0].wish_count, 5028);
            free(genres);
            free(regions);
        }
        listing_free(&l);
        free(page);
    }
}

/* The fixture with Douban's marks and a month-only date (also a fuzzing seed). */
static void test_listing_marks_fixture(void)
{
    struct listing l = {0};
    CHECK_INT(listing_fixture("listing_marks.html", &l), DOUBAN_OK);
    CHECK_INT(l.n, 3);
    for (size_t i = 0; i < l.n; i++) {
        const struct listing_item *it = &l.items[i];
        CHECK(!has_mark(it->title) && !has_mark(it->release_date) && !has_mark(it->thumbnail));
        for (size_t k = 0; k < it->genres.n; k++)
            CHECK(!has_mark(it->genres.v[k]));
        for (size_t k = 0; k < it->regions.n; k++)
            CHECK(!has_mark(it->regions.v[k]));
    }
    if (l.n == 3) {
        CHECK_STR(l.items[0].title, "神探之痕迹");
        CHECK_STR(l.items[0].release_date, "07月");
        CHECK_INT(l.items[0].genres.n, 2);
        CHECK_INT(l.items[0].wish_count, 8164);
        CHECK_STR(l.items[0].thumbnail,
                  "https://img1.doubanio.com/view/photo/s_ratio_poster/public/p2916452871.jpg");
        CHECK_STR(l.items[1].title, "Le Comte de Monte-Cristo");
        CHECK_STR(l.items[1].release_date, "08月15日");
        CHECK_INT(l.items[1].wish_count, 1205);
        CHECK_INT(l.items[1].genres.n, 2);
        CHECK_INT(l.items[1].regions.n, 2);
        CHECK_STR(l.items[2].title, "山那边的信");
        CHECK_STR(l.items[2].release_date, "01月");
        CHECK_INT(l.items[2].genres.n, 0);
        CHECK_INT(l.items[2].regions.n, 1);
        CHECK_INT(l.items[2].wish_count, 96);
    }
    json_t *j = listing_json(&l);
    char *text = json_dumps(j, MOVIE_JSON_FLAGS);
    CHECK(text != NULL && !has_mark(text));
    /* Listed on 2025-08-01: July has ended less than 30 days before; January is next year's. */
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "release_date_iso")), "2025-07");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "release_date_precision")), "month");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 1), "release_date_precision")), "day");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 2), "release_date_iso")), "2026-01");
    free(text);
    json_decref(j);
    listing_free(&l);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--real") == 0) {
        test_real();
        return check_summary();
    }
    test_listing_traps();
    test_listing_states();
    test_nowplaying_traps();
    test_nowplaying_states();
    test_may_be_refusal();
    test_listing_40();
    test_listing_city();
    test_detail_golden();
    test_detail_poster();
    test_city_and_names();
    test_list_caps();
    test_listing_marks();
    test_detail_marks();
    test_listing_month_row();
    test_listing_marks_fixture();
    test_detail_marks_fixture();
    return check_summary();
}
