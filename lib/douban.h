/* Reading Douban's pages: the coming-soon and now-playing listings and a movie's own page.
 * Pure functions of the bytes, testable without a socket. See the fixtures in
 * tests/fixtures/. */
#ifndef MOVIESD_DOUBAN_H
#define MOVIESD_DOUBAN_H

#include <stddef.h>

#include "movie.h"

/* Lists (genres, regions, actors, ...) keep at most this many items, out of at most twice
 * as many looked at: real pages list a few dozen actors at most, and checking for repeats
 * costs the square of the length. */
#define DOUBAN_MAX_LIST_ITEMS 200

enum douban_verdict {
    DOUBAN_OK = 0,
    DOUBAN_NOT_FOUND,   /* <title>页面不存在</title> */
    DOUBAN_BLOCKED,     /* the "有异常请求" page or the login bounce page (登录跳转页) */
    DOUBAN_CHANGED,     /* a 200 page without the expected anchor */
    DOUBAN_MALFORMED,   /* refused by html_parse: not UTF-8 text, too big or too deep */
};

/* A city slug is 1-32 characters of [a-z], or 1-32 digits (the id Douban uses for a city
 * without a pinyin slug). Returns 1 if valid. */
int douban_city_valid(const char *city);

/* Fills out (which the caller initialised to {0}) with the items of #showing-soon, in page
 * order. Links whose host is neither movie.douban.com nor upstream_host are skipped (and
 * logged at warn). An empty #showing-soon is DOUBAN_OK with no items. city is the slug
 * asked for: Douban answers a city it does not know with another city's page, so a page
 * whose <div id="location" data-uid="..."> names another city is DOUBAN_CHANGED (a page
 * without it is read as it is; city NULL skips the check). On anything but DOUBAN_OK, why
 * is written to err. */
enum douban_verdict douban_parse_listing(const char *html, size_t len, const char *upstream_host,
                                         const char *city, struct listing *out, char *err,
                                         size_t errlen);

/* Fills out (initialised to {0}) with the items of the now-playing page's #nowplaying, in
 * page order, from their attributes (title, score, year, duration, regions, directors,
 * actors, vote count) and poster image; the page's #upcoming block is not read. A page
 * without #nowplaying is DOUBAN_CHANGED; city is checked against #location as for
 * douban_parse_listing. On anything but DOUBAN_OK, why is written to err. */
enum douban_verdict douban_parse_nowplaying(const char *html, size_t len, const char *city,
                                            struct listing *out, char *err, size_t errlen);

/* Fills out (initialised with movie_detail_init) from a movie page; on anything but
 * DOUBAN_OK, why is written to err. */
enum douban_verdict douban_parse_detail(const char *html, size_t len, struct movie_detail *out,
                                        char *err, size_t errlen);

/* Whether the page may be Douban's block or login page: a byte search, cheap enough for the
 * event loop, that finds every page douban_parse_* would call DOUBAN_BLOCKED (and may find
 * some it would not: any page whose <title> holds a character reference or markup, which
 * a byte search cannot read). A block must stop the next request, so such pages are parsed
 * at once. */
int douban_may_be_refusal(const char *html, size_t len);

/* The verdict's name, for logs and error messages. */
const char *douban_verdict_name(enum douban_verdict v);

#endif
