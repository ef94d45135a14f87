/* The movie record: what the listing says of a movie, what its own page adds, and the JSON
 * document the API returns for it. Records flow one way: extraction fills them, movie_json()
 * turns them into the answer. */
#ifndef MOVIESD_MOVIE_H
#define MOVIESD_MOVIE_H

#include <jansson.h>
#include <time.h>

#include "error.h"
#include "util.h"

/* How every JSON document of the API is written: compact, keys in their order, and ratings
 * as people write them (9.4, not jansson's default 9.4000000000000004). */
#define MOVIE_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

/* An API document written as above into a new blob, with its quoted ETag (a hash of the
 * bytes) in etag. */
struct blob *movie_document_blob(const json_t *doc, char etag[20]);

/* One entry of a listing: coming soon, or now playing (whose entries carry more, as
 * attributes, and no date or wish count). Unknown strings are NULL, unknown numbers -1,
 * and a coming-soon entry leaves every now-playing field unknown. */
struct listing_item {
    char *id;            /* digits of /subject/<id>/ */
    char *url;           /* canonical https://movie.douban.com/subject/<id>/ */
    char *title;         /* trimmed, entities decoded */
    char *release_date;  /* as listed: "08月07日", or "07月" when the day is not announced */
    struct strlist genres;
    struct strlist regions;
    long long wish_count;
    char *thumbnail;     /* a.thumb img@src; now playing: li.poster img@src */
    /* Now playing only: the item's data-* attributes. */
    long year;                /* data-release */
    long runtime_minutes;     /* data-duration, "123分钟" */
    double rating;            /* data-score; its "0" (unrated) is -1 */
    long long votes;          /* data-votecount */
    struct strlist directors; /* data-director */
    struct strlist actors;    /* data-actors */
    char *poster;             /* li.poster img@src: the poster until the movie page's */
};

struct listing {
    struct listing_item *items;
    size_t n, cap;
};

/* What a movie's own page says. Unknown strings are NULL, unknown numbers -1. */
struct movie_detail {
    char *title;            /* span[property=v:itemreviewed], trimmed */
    char *original_title;   /* img[rel=v:image]@alt */
    long year;
    char *poster;           /* #mainpic img[rel=v:image]@src, else og:image, else JSON-LD image */
    struct strlist directors;
    struct strlist actors;
    struct strlist genres;
    struct strlist regions;
    struct strlist languages;
    char *release_date_cn;  /* YYYY-MM-DD of the 中国大陆 v:initialReleaseDate, if any */
    long runtime_minutes;
    double rating;          /* -1 when unrated */
    long long votes;
    char *imdb_id;
    char *summary;          /* paragraphs joined with "\n", each trimmed of U+3000 and spaces */
};

/* Why a movie page could not be used. status is the upstream HTTP status or -1. */
struct detail_error {
    enum api_error code;    /* API_ERROR_NOT_FOUND or one of API_ERROR_UPSTREAM_* */
    long status;
    char message[200];
};

void listing_item_free(struct listing_item *item);   /* frees the members, not item */
void listing_free(struct listing *l);                 /* frees items; leaves l empty */
struct listing_item *listing_add(struct listing *l);  /* borrowed, zeroed, numbers at -1 */
void movie_detail_init(struct movie_detail *d);       /* all unknown */
void movie_detail_free(struct movie_detail *d);       /* frees the members, not d */

/* The detail as a JSON object of its own fields (new reference): the form kept in the
 * detail cache and merged into answers by movie_json(). */
json_t *movie_detail_json(const struct movie_detail *d);

/* The API's movie object (new reference). detail is the movie_detail_json() object or NULL;
 * error is NULL when the detail was fetched or is still awaited (detail_status "ok" or
 * "pending"; "failed" with error). Every field is present: null or [] if unknown. The
 * listing's rating and votes win over the movie page's (a listing is read every listing
 * TTL, a record kept for detail_ttl); for year, directors, actors, runtime and poster the
 * page wins and the listing's stand in while it is missing. A coming-soon item knows none
 * of these, so its object is the page's alone. */
json_t *movie_json(const struct listing_item *item, const json_t *detail,
                   const struct detail_error *error, time_t fetched_at);

/* The ISO 8601 date for a listing date: "YYYY-MM-DD" for "MM月DD日", and the reduced
 * precision "YYYY-MM" for a month alone, "MM月" (the API's release_date_iso when the movie
 * page has no mainland day; release_date_precision names the form, "day" or "month"). The
 * year is the one that puts the date at most 30 days before fetched_at's day (UTC+8,
 * Douban's time) and less than a year after; a month counts from its last day. So "12月"
 * listed on 2025-01-20 is 2024-12 (ended 20 days before), listed on 2025-02-01 it is
 * 2025-12; "01月" listed in December is next January; the fetch day's own month is always
 * this year's. 0, or -1 if unparseable (or a day the year's calendar lacks: 02月29日
 * outside the window's leap years). */
int movie_listing_date_iso(const char *listed, time_t fetched_at, char out[11]);

/* Parses a listing date: exactly "MM月DD日" (month 01-12, day 01-31), or "MM月" alone,
 * which gives *day 0. 0, or -1. */
int movie_parse_listing_date(const char *s, int *month, int *day);

#endif
