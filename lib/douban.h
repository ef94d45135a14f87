/* Reading Douban's pages: the coming-soon listing and a movie's own page. Pure functions of
 * the bytes, testable without a socket. See docs/ and the fixtures in tests/fixtures/. */
#ifndef MOVIESD_DOUBAN_H
#define MOVIESD_DOUBAN_H

#include <stddef.h>

#include "movie.h"

/* Real pages nest under 100 levels; gumbo's cost grows with depth squared, so anything much
 * deeper is hostile or broken and is refused before parsing. */
#define DOUBAN_MAX_DEPTH 128
/* Each end tag that closes nothing costs gumbo a search of its open elements; real pages
 * have a handful of them. */
#define DOUBAN_MAX_STRAY_END_TAGS 4096
/* Gumbo's cost also grows with the square of one tag's attribute count; real tags carry a
 * handful. */
#define DOUBAN_MAX_ATTRIBUTES 256
/* Lists (genres, regions, actors, ...) keep at most this many items, out of at most twice
 * as many looked at: real pages list a few dozen actors at most, and checking for repeats
 * costs the square of the length. */
#define DOUBAN_MAX_LIST_ITEMS 200

enum douban_verdict {
    DOUBAN_OK = 0,
    DOUBAN_NOT_FOUND,   /* <title>页面不存在</title> */
    DOUBAN_BLOCKED,     /* the "有异常请求" page or the login bounce page (登录跳转页) */
    DOUBAN_CHANGED,     /* a 200 page without the expected anchor */
    DOUBAN_MALFORMED,   /* nested deeper than DOUBAN_MAX_DEPTH, or not parseable */
};

/* A city slug is 1-32 characters of [a-z]. Returns 1 if valid. */
int douban_city_valid(const char *city);

/* Fills out (which the caller initialised to {0}) with the items of #showing-soon, in page
 * order. Links whose host is neither movie.douban.com nor upstream_host are skipped (and
 * logged at warn). An empty #showing-soon is DOUBAN_OK with no items. On anything but
 * DOUBAN_OK, why is written to err. */
enum douban_verdict douban_parse_listing(const char *html, size_t len, const char *upstream_host,
                                         struct listing *out, char *err, size_t errlen);

/* Fills out (initialised with movie_detail_init) from a movie page. */
enum douban_verdict douban_parse_detail(const char *html, size_t len, struct movie_detail *out,
                                        char *err, size_t errlen);

/* The deepest element nesting a cheap tag scan finds (close to the depth gumbo's stack of
 * open elements reaches). The scan stops past DOUBAN_MAX_DEPTH, and reports more than
 * DOUBAN_MAX_DEPTH for a tag with more than DOUBAN_MAX_ATTRIBUTES attributes or a page with
 * more than DOUBAN_MAX_STRAY_END_TAGS end tags that close nothing. */
size_t douban_nesting_depth(const char *html, size_t len);

/* The verdict's name, for logs and error codes. */
const char *douban_verdict_name(enum douban_verdict v);

#endif
