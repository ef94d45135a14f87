/* Tests of lib/douban.c. Fixtures in tests/fixtures/ are Douban-shaped pages written from
 * shared/douban/STRUCTURE.md; case.html -> case.json pairs are compared structurally with
 * json_equal. With --real, the real pages in REAL_PAGES_DIR are read in place and checked
 * against values read off the pages by hand. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"
#include "douban.h"
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

/* Parses a fixture as a listing (upstream host 127.0.0.1), returning the verdict. */
static enum douban_verdict listing_fixture(const char *name, struct listing *l)
{
    size_t len;
    char *html = fixture(name, &len);
    char err[200] = "";
    enum douban_verdict v = douban_parse_listing(html, len, "127.0.0.1", l, err, sizeof err);
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
    CHECK_INT(douban_parse_listing("", 0, NULL, &l, err, sizeof err), DOUBAN_CHANGED);
    CHECK(err[0] != '\0');
    listing_free(&l);

    /* A good listing spoiled by one byte that is not UTF-8, or by a NUL, is malformed. */
    size_t len;
    char *page = fixture("listing_traps.html", &len);
    CHECK_INT(douban_parse_listing(page, len, NULL, &l, err, sizeof err), DOUBAN_OK);
    listing_free(&l);
    char saved = page[len / 2];
    page[len / 2] = (char)0xFF;
    CHECK_INT(douban_parse_listing(page, len, NULL, &l, err, sizeof err), DOUBAN_MALFORMED);
    CHECK(strstr(err, "UTF-8") != NULL);
    page[len / 2] = '\0';
    CHECK_INT(douban_parse_listing(page, len, NULL, &l, err, sizeof err), DOUBAN_MALFORMED);
    page[len / 2] = saved;
    CHECK_INT(l.n, 0);
    listing_free(&l);
    free(page);
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
    CHECK_INT(douban_parse_listing(html, n, NULL, &l, err, sizeof err), DOUBAN_OK);
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

/* The nesting scan's rules on small pages. */
static void test_depth_rules(void)
{
    static const struct {
        const char *html;
        size_t depth;
    } cases[] = {
        {"", 0},
        {"<div><div></div></div><div></div>", 2},
        {"<br><img src=x><input><hr><meta charset=utf-8>", 0},
        {"<div/><div/><div/>", 3},                                 /* no self-closing in HTML */
        {"<svg><path/><path d='M0 0'/></svg>", 1},                  /* but in svg */
        {"<svg><g><div/><section/><p/></svg>", 3},                /* <div> leaves svg */
        {"<div></x></x><div></y>", 2},                             /* stray end tags */
        {"<span><div></span><span><div></span>", 4},               /* block above: ignored */
        {"<div><span></div><div><span></div>", 2},                 /* </div> closes through */
        {"<h2><div><h1></h2><h2><div><h1></h2>", 5},               /* any heading */
        {"<form><div></form><form><div></form>", 3},               /* removes the form alone */
        {"<p><b></p><i>", 2},                                      /* <b> comes back */
        {"<!-- <div><div> --><div>", 1},
        {"<!--><div>--><div>", 2},                                 /* "<!-->" is a comment */
        {"<!--x--!><div>", 1},
        {"<script>\"<div><div>\"</script><style>a<b{}</style><div>", 1},
        {"<textarea><div></textarea><title><b></title>", 1},
        {"<a title=\"x > <div>\" href=y><div>", 2},                /* quotes hide '>' */
        {"<a title=x/><div>", 2},                                  /* '/' of an unquoted value */
        {"<!DOCTYPE html><?xml x?><div>", 1},
        {"<div", 0},                                               /* unfinished tag: dropped */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t d = douban_nesting_depth(cases[i].html, strlen(cases[i].html));
        if (d != cases[i].depth)
            fprintf(stderr, "depth of %s\n", cases[i].html);
        CHECK_INT(d, cases[i].depth);
    }
}

/* Seconds of CPU used by the process so far. */
static double cpu_seconds(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* The process's peak resident size in MiB. */
static long peak_mib(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_maxrss / 1024;
}

/* prefix, then unit repeated to fill size bytes (new). */
static char *repeated(const char *prefix, const char *unit, size_t size, size_t *len)
{
    size_t pl = strlen(prefix), ul = strlen(unit);
    char *s = xmalloc(size + 1);
    memcpy(s, prefix, pl);
    size_t n = pl;
    while (n + ul <= size) {
        memcpy(s + n, unit, ul);
        n += ul;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Hostile pages: deep nesting is refused in milliseconds; 4 MiB of junk that passes the
 * scan parses in bounded time and memory (gumbo's error list is bounded). */
static void test_hostile(void)
{
    static const struct {
        const char *what, *prefix, *unit;
        size_t size;
    } deep[] = {
        {"100000 nested <div>", "", "<div>", 100000 * 5},
        {"4 MiB of nested <div>", "", "<div>", 4 << 20},
        {"4 MiB of <div/>", "", "<div/>", 4 << 20},
        {"4 MiB of <div></x>", "", "<div></x>", 4 << 20},
        {"4 MiB of unclosed <b>", "<p>", "<b>x", 4 << 20},
    };
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        size_t len;
        char *html = repeated(deep[i].prefix, deep[i].unit, deep[i].size, &len);
        struct listing l = {0};
        char err[200] = "";
        double t = cpu_seconds();
        enum douban_verdict v = douban_parse_listing(html, len, NULL, &l, err, sizeof err);
        t = cpu_seconds() - t;
        printf("%s: %s in %.1f ms\n", deep[i].what, douban_verdict_name(v), t * 1e3);
        CHECK_INT(v, DOUBAN_MALFORMED);
        CHECK(t < 0.1);
        CHECK(strstr(err, "deeper") != NULL);
        free(html);
    }

    /* Open <div>s just under the limit, then end tags that close nothing: each costs gumbo a
     * search of its open elements (and with its default max_errors -1, a copy of them: 1 MiB
     * under 390 divs took 8 s and 808 MB). A few thousand parse; a page of them is refused. */
    char prefix[(DOUBAN_MAX_DEPTH - 8) * 5 + 1] = "";
    for (int i = 0; i < DOUBAN_MAX_DEPTH - 8; i++)
        strcat(prefix, "<div>");
    size_t len;
    char *html = repeated(prefix, "</x>text</span>", (DOUBAN_MAX_STRAY_END_TAGS / 2) * 15, &len);
    CHECK(douban_nesting_depth(html, len) == DOUBAN_MAX_DEPTH - 8);
    struct listing l = {0};
    char err[200] = "";
    CHECK_INT(douban_parse_listing(html, len, NULL, &l, err, sizeof err), DOUBAN_CHANGED);
    free(html);
    html = repeated(prefix, "</x>text</span>", 4 << 20, &len);
    CHECK(douban_nesting_depth(html, len) > DOUBAN_MAX_DEPTH);
    long before = peak_mib();
    double t = cpu_seconds();
    enum douban_verdict v = douban_parse_listing(html, len, NULL, &l, err, sizeof err);
    t = cpu_seconds() - t;
    printf("4 MiB of stray end tags under %d divs: %s in %.3f s, peak RSS +%ld MiB\n",
           DOUBAN_MAX_DEPTH - 8, douban_verdict_name(v), t, peak_mib() - before);
    CHECK_INT(v, DOUBAN_MALFORMED);
    CHECK(strstr(err, "stray end tags") != NULL);
    free(html);

    /* Random bytes: refused by the scan or parsed, quickly either way. */
    srand(7);
    html = xmalloc(4 << 20);
    for (size_t i = 0; i < 4 << 20; i++)
        html[i] = (char)(rand() & 0xff);
    t = cpu_seconds();
    v = douban_parse_listing(html, 4 << 20, NULL, &l, err, sizeof err);
    t = cpu_seconds() - t;
    printf("4 MiB of random bytes: %s in %.2f s\n", douban_verdict_name(v), t);
    CHECK(v == DOUBAN_MALFORMED || v == DOUBAN_CHANGED);
    CHECK(t < 30);
    listing_free(&l);
    free(html);
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
    CHECK_STR(douban_verdict_name(DOUBAN_OK), "ok");
    CHECK_STR(douban_verdict_name(DOUBAN_BLOCKED), "blocked");
    CHECK_STR(douban_verdict_name(DOUBAN_MALFORMED), "malformed");
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

/* Every real page in REAL_PAGES_DIR: subject pages against their values, now-playing pages
 * (not listings) refused as a changed layout; every page's nesting depth printed. */
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
            size_t depth = douban_nesting_depth(html, len);
            printf("nesting depth %3zu  %s\n", depth, name);
            CHECK(depth < 100);
            if (strncmp(name, "subject_", 8) == 0) {
                subjects++;
                check_real_detail(name, html, len);
            } else if (strncmp(name, "nowplaying_", 11) == 0) {
                nowplaying++;
                struct listing l = {0};
                char err[200] = "";
                CHECK_INT(douban_parse_listing(html, len, NULL, &l, err, sizeof err), DOUBAN_CHANGED);
                CHECK_INT(l.n, 0);
                listing_free(&l);
            }
        }
        free(html);
        free(path);
    }
    closedir(dir);
    CHECK_INT(subjects, sizeof real_pages / sizeof real_pages[0]);
    CHECK(nowplaying > 0);
}

/* Inputs whose cost grows with a square are cut short: long lists are capped and tags with
 * hundreds of attributes refused. */
static void test_quadratic_inputs(void)
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
    CHECK_INT(douban_parse_listing(page, strlen(page), NULL, &l, err, sizeof err), DOUBAN_OK);
    CHECK_INT(l.n, 1);
    if (l.n == 1)
        CHECK_INT(l.items[0].regions.n, DOUBAN_MAX_LIST_ITEMS);
    listing_free(&l);
    free(page);
    free(row);

    /* A tag with more than DOUBAN_MAX_ATTRIBUTES attributes is refused before gumbo. */
    for (int extra = 0; extra <= 1; extra++) {
        char *attrs = xstrdup("");
        for (int i = 0; i < DOUBAN_MAX_ATTRIBUTES + extra; i++) {
            char *next = xasprintf("%s a%d=\"x\"", attrs, i);
            free(attrs);
            attrs = next;
        }
        page = xasprintf("<html><body><div%s></div><div id=\"showing-soon\"></div></body></html>", attrs);
        CHECK_INT(douban_parse_listing(page, strlen(page), NULL, &l, err, sizeof err),
                  extra ? DOUBAN_MALFORMED : DOUBAN_OK);
        listing_free(&l);
        free(page);
        free(attrs);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--real") == 0) {
        test_real();
        return check_summary();
    }
    test_listing_traps();
    test_listing_states();
    test_listing_40();
    test_detail_golden();
    test_detail_poster();
    test_depth_rules();
    test_city_and_names();
    test_hostile();
    test_quadratic_inputs();
    return check_summary();
}
