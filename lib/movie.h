/* The movie record: what the listing says of a movie, what its own page adds, and the JSON
 * document the API returns for it. Records flow one way: extraction fills them, movie_json()
 * turns them into the answer. */
#ifndef MOVIESD_MOVIE_H
#define MOVIESD_MOVIE_H

#include <jansson.h>
#include <time.h>

#include "util.h"

/* How every JSON document of the API is written: compact, keys in their order, and ratings
 * as people write them (9.4, not jansson's default 9.4000000000000004). */
#define MOVIE_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

/* One entry of the coming-soon listing. Unknown strings are NULL, unknown numbers -1. */
struct listing_item {
    char *id;            /* digits of /subject/<id>/ */
    char *url;           /* canonical https://movie.douban.com/subject/<id>/ */
    char *title;         /* trimmed, entities decoded */
    char *release_date;  /* as listed, "08月07日" */
    struct strlist genres;
    struct strlist regions;
    long long wish_count;
    char *thumbnail;     /* a.thumb img@src */
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
    const char *code;       /* a static string: "upstream_error", "not_found", ... */
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
 * error is NULL when the detail was fetched. Every field is present: null or [] if unknown. */
json_t *movie_json(const struct listing_item *item, const json_t *detail,
                   const struct detail_error *error, time_t fetched_at);

/* The ISO date for a listing date "MM月DD日": the year that puts it at most 30 days before
 * fetched_at's day (UTC+8, Douban's time) and less than a year after. 0, or -1 if unparseable. */
int movie_listing_date_iso(const char *mmdd, time_t fetched_at, char out[11]);

/* Parses a listing date: exactly "MM月DD日", month 01-12, day 01-31. 0, or -1. */
int movie_parse_listing_date(const char *s, int *month, int *day);

#endif
