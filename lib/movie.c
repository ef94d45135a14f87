/* Movie records and the JSON the API answers for them. */
#include "movie.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything unknown: NULL strings, empty lists, -1 numbers. */
static void listing_item_unknown(struct listing_item *item)
{
    memset(item, 0, sizeof *item);
    item->wish_count = -1;
    item->year = -1;
    item->runtime_minutes = -1;
    item->rating = -1;
    item->votes = -1;
}

/* Frees an item's members and leaves it unknown. */
void listing_item_free(struct listing_item *item)
{
    if (item == NULL)
        return;
    free(item->id);
    free(item->url);
    free(item->title);
    free(item->release_date);
    strlist_free(&item->genres);
    strlist_free(&item->regions);
    free(item->thumbnail);
    strlist_free(&item->directors);
    strlist_free(&item->actors);
    free(item->poster);
    listing_item_unknown(item);
}

/* Frees every item and the array. */
void listing_free(struct listing *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        listing_item_free(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* Appends an unknown item (borrowed: valid until the next add or free). */
struct listing_item *listing_add(struct listing *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    struct listing_item *item = &l->items[l->n++];
    listing_item_unknown(item);
    return item;
}

/* Everything unknown: NULL strings, empty lists, -1 numbers. */
void movie_detail_init(struct movie_detail *d)
{
    memset(d, 0, sizeof *d);
    d->year = -1;
    d->runtime_minutes = -1;
    d->rating = -1;
    d->votes = -1;
}

/* Frees the members and leaves d unknown. */
void movie_detail_free(struct movie_detail *d)
{
    if (d == NULL)
        return;
    free(d->title);
    free(d->original_title);
    free(d->poster);
    strlist_free(&d->directors);
    strlist_free(&d->actors);
    strlist_free(&d->genres);
    strlist_free(&d->regions);
    strlist_free(&d->languages);
    free(d->release_date_cn);
    free(d->imdb_id);
    free(d->summary);
    movie_detail_init(d);
}

/* A JSON string, or null for NULL (and for text jansson refuses: it must be UTF-8). */
static json_t *jstr(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

/* A JSON integer, or null for the "unknown" -1. */
static json_t *jint(long long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

/* A JSON array of the list's strings ([] when empty). */
static json_t *jlist(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) {
        json_t *s = json_string(l->v[i]);
        if (s)
            json_array_append_new(a, s);
    }
    return a;
}

/* The detail's fields as a JSON object (new): null or [] for what is unknown. */
json_t *movie_detail_json(const struct movie_detail *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "title", jstr(d->title));
    json_object_set_new(o, "original_title", jstr(d->original_title));
    json_object_set_new(o, "year", jint(d->year));
    json_object_set_new(o, "poster", jstr(d->poster));
    json_object_set_new(o, "directors", jlist(&d->directors));
    json_object_set_new(o, "actors", jlist(&d->actors));
    json_object_set_new(o, "genres", jlist(&d->genres));
    json_object_set_new(o, "regions", jlist(&d->regions));
    json_object_set_new(o, "languages", jlist(&d->languages));
    json_object_set_new(o, "release_date_cn", jstr(d->release_date_cn));
    json_object_set_new(o, "runtime_minutes", jint(d->runtime_minutes));
    json_object_set_new(o, "rating", d->rating >= 0 ? json_real(d->rating) : json_null());
    json_object_set_new(o, "votes", jint(d->votes));
    json_object_set_new(o, "imdb_id", jstr(d->imdb_id));
    json_object_set_new(o, "summary", jstr(d->summary));
    return o;
}

/* The detail's field (a new copy) when it has the wanted type, else null (or [] for arrays).
 * movie_json takes any JSON value as the detail, so its shape is checked, not trusted; the
 * copy keeps the cached object from being shared with (and changed through) an answer. */
static json_t *detail_field(const json_t *detail, const char *key, json_type type)
{
    json_t *v = detail ? json_object_get(detail, key) : NULL;
    int ok = v && (json_typeof(v) == type || (type == JSON_REAL && json_is_integer(v)));
    if (ok)
        return json_deep_copy(v);
    return type == JSON_ARRAY ? json_array() : json_null();
}

/* The detail's field when it has the wanted type, else listed (stolen; null when unknown). */
static json_t *detail_or(const json_t *detail, const char *key, json_type type, json_t *listed)
{
    json_t *v = detail ? json_object_get(detail, key) : NULL;
    if (v && (json_typeof(v) == type || (type == JSON_REAL && json_is_integer(v)))) {
        json_decref(listed);
        return json_deep_copy(v);
    }
    return listed;
}

/* The listing's rating when it has one, else the detail's. */
static json_t *rating_of(const struct listing_item *item, const json_t *detail)
{
    if (item->rating >= 0)
        return json_real(item->rating);
    return detail_field(detail, "rating", JSON_REAL);
}

/* The listing's vote count when it has one, else the detail's. */
static json_t *votes_of(const struct listing_item *item, const json_t *detail)
{
    if (item->votes >= 0)
        return json_integer(item->votes);
    return detail_field(detail, "votes", JSON_INTEGER);
}

/* The detail's list when it has items, else the listing's: a movie page knows best. */
static json_t *merged_list(const json_t *detail, const char *key, const struct strlist *listed)
{
    json_t *v = detail ? json_object_get(detail, key) : NULL;
    if (json_is_array(v) && json_array_size(v) > 0)
        return json_deep_copy(v);
    return jlist(listed);
}

/* The release date's ISO form, written to iso: the movie page's mainland date (a day),
 * else the listing's date placed in the right year ("YYYY-MM-DD", or "YYYY-MM" for a month
 * alone). Returns its precision, "day" or "month", or NULL when there is no date. */
static const char *release_when(const struct listing_item *item, const json_t *detail,
                                time_t fetched_at, char iso[11])
{
    const char *cn = json_string_value(detail ? json_object_get(detail, "release_date_cn") : NULL);
    if (cn != NULL && strlen(cn) == 10) {
        memcpy(iso, cn, 11);
        return "day";
    }
    if (item->release_date == NULL ||
        movie_listing_date_iso(item->release_date, fetched_at, iso) != 0)
        return NULL;
    return strlen(iso) == 7 ? "month" : "day";
}

/* The release date's ISO form, or null. */
static json_t *release_iso(const struct listing_item *item, const json_t *detail,
                           time_t fetched_at)
{
    char iso[11];
    return release_when(item, detail, fetched_at, iso) ? json_string(iso) : json_null();
}

/* How much of the release date is known: "day", "month", or null with no date. */
static json_t *release_precision(const struct listing_item *item, const json_t *detail,
                                 time_t fetched_at)
{
    char iso[11];
    return jstr(release_when(item, detail, fetched_at, iso));
}

/* detail_error as the API shows it: null, or {code, status (null if unknown), message}. */
static json_t *error_json(const struct detail_error *error)
{
    if (error == NULL)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "code", jstr(api_error_code(error->code)));
    json_object_set_new(o, "status", jint(error->status));
    json_object_set_new(o, "message", jstr(error->message));
    return o;
}

/* The API's movie object (new): every key present, the movie page's values preferred. */
json_t *movie_json(const struct listing_item *item, const json_t *detail,
                   const struct detail_error *error, time_t fetched_at)
{
    if (detail != NULL && !json_is_object(detail))
        detail = NULL;
    json_t *o = json_object();
    json_object_set_new(o, "id", jstr(item->id));
    json_object_set_new(o, "url", jstr(item->url));
    json_object_set_new(o, "title", item->title ? jstr(item->title)
                                                : detail_field(detail, "title", JSON_STRING));
    json_object_set_new(o, "original_title", detail_field(detail, "original_title", JSON_STRING));
    json_object_set_new(o, "release_date", jstr(item->release_date));
    json_object_set_new(o, "release_date_iso", release_iso(item, detail, fetched_at));
    json_object_set_new(o, "release_date_precision", release_precision(item, detail, fetched_at));
    json_object_set_new(o, "genres", merged_list(detail, "genres", &item->genres));
    json_object_set_new(o, "regions", merged_list(detail, "regions", &item->regions));
    json_object_set_new(o, "wish_count", jint(item->wish_count));
    json_object_set_new(o, "thumbnail", jstr(item->thumbnail));
    json_object_set_new(o, "poster", detail_or(detail, "poster", JSON_STRING, jstr(item->poster)));
    /* The proxy serves posters that load in a browser (the image host wants a Referer). */
    json_object_set_new(o, "poster_proxy",
                        item->id ? json_sprintf("/posters/%s", item->id) : json_null());
    json_object_set_new(o, "year", detail_or(detail, "year", JSON_INTEGER, jint(item->year)));
    json_object_set_new(o, "directors", merged_list(detail, "directors", &item->directors));
    json_object_set_new(o, "actors", merged_list(detail, "actors", &item->actors));
    json_object_set_new(o, "runtime_minutes", detail_or(detail, "runtime_minutes", JSON_INTEGER,
                                                        jint(item->runtime_minutes)));
    json_object_set_new(o, "rating", rating_of(item, detail));
    json_object_set_new(o, "votes", votes_of(item, detail));
    json_object_set_new(o, "imdb_id", detail_field(detail, "imdb_id", JSON_STRING));
    json_object_set_new(o, "languages", detail_field(detail, "languages", JSON_ARRAY));
    json_object_set_new(o, "summary", detail_field(detail, "summary", JSON_STRING));
    json_object_set_new(o, "detail_status",
                        json_string(detail ? "ok" : error ? "failed" : "pending"));
    json_object_set_new(o, "detail_error", error_json(error));
    return o;
}

struct blob *movie_document_blob(const json_t *doc, char etag[20])
{
    char *text = json_dumps(doc, MOVIE_JSON_FLAGS);
    size_t len = strlen(text);
    char hex[17];
    hash_hex(text, len, hex);
    snprintf(etag, 20, "\"%s\"", hex);
    struct blob *b = blob_new(text, len);
    free(text);
    return b;
}

/* "MM月DD日" -> month and day; "MM月" -> month and day 0. */
int movie_parse_listing_date(const char *s, int *month, int *day)
{
    static const char yue[] = "月", ri[] = "日";
    const unsigned char *u = (const unsigned char *)s;
    size_t len = s ? strlen(s) : 0;
    int month_only = len == 2 + strlen(yue);
    if (!month_only && len != 4 + strlen(yue) + strlen(ri))
        return -1;
    const unsigned char *d = u + 2 + strlen(yue);
    for (int i = 0; i < 2; i++)
        if (u[i] < '0' || u[i] > '9' || (!month_only && (d[i] < '0' || d[i] > '9')))
            return -1;
    if (memcmp(s + 2, yue, strlen(yue)) != 0 ||
        (!month_only && memcmp(d + 2, ri, strlen(ri)) != 0))
        return -1;
    int m = (u[0] - '0') * 10 + (u[1] - '0');
    int dd = month_only ? 0 : (d[0] - '0') * 10 + (d[1] - '0');
    if (m < 1 || m > 12 || (!month_only && (dd < 1 || dd > 31)))
        return -1;
    *month = m;
    *day = dd;
    return 0;
}

/* Days in month m of year y (Gregorian). */
static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil). */
static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The listing date placed in the year that fits the fetch day. */
int movie_listing_date_iso(const char *listed, time_t fetched_at, char out[11])
{
    int m, d;
    if (movie_parse_listing_date(listed, &m, &d) != 0)
        return -1;
    /* Douban's day is China's (UTC+8, no daylight saving). */
    time_t local = fetched_at + 8 * 3600;
    struct tm tm;
    if (gmtime_r(&local, &tm) == NULL)
        return -1;
    int fy = tm.tm_year + 1900, fm = tm.tm_mon + 1, fd = tm.tm_mday;
    if (fy < 1000 || fy > 9998)
        return -1;
    long today = days_from_civil(fy, fm, fd);
    /* The listing keeps movies for a while after they open, hence the 30 days back; the
     * earliest year that fits wins, and "less than a year after" is by the calendar so that
     * 02月29日 can still land in next year's leap day. A month alone (d 0) is judged by its
     * last day: the movie may open on any day of it. */
    for (int y = fy - 1; y <= fy + 1; y++) {
        int day = d > 0 ? d : month_days(y, m);
        if (day > month_days(y, m) || days_from_civil(y, m, day) < today - 30)
            continue;
        if (y == fy + 1 && (m > fm || (m == fm && day >= fd)))
            continue;
        /* The modulos only tell the compiler what the checks above already ensure. */
        if (d > 0)
            snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
                     (unsigned)d % 100u);
        else
            snprintf(out, 11, "%04u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u);
        return 0;
    }
    return -1;
}
