/* libFuzzer target: a movie page from the upstream, as scrape.c hands it over (a 160-byte
 * reason buffer), through douban_parse_detail, movie_detail_json (the form the detail
 * cache keeps) and movie_json (the API's movie, merged with a listing item).
 *
 * Checked besides memory safety: a verdict other than DOUBAN_OK comes with a UTF-8 reason;
 * numbers are unknown (-1) or in the ranges the extractor promises; text fields are NULL or
 * non-empty UTF-8 without invisible marks (never a silent null in the JSON); the detail JSON
 * serialises and reads back equal; the API object has every key and serialises, with and
 * without a detail, its release date the page's mainland day when it has one. */
#include "fuzz.h"

#include <jansson.h>
#include <math.h>

#include "douban.h"
#include "log.h"
#include "movie.h"

/* How many keys movie_json() gives a movie: every one, always. */
static size_t movie_keys;

/* Checks a list of extracted strings: each non-empty UTF-8, none twice. */
static void check_list(const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        FUZZ_CHECK(l->v[i] != NULL && fuzz_text_ok(l->v[i]));
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(l->v[i], l->v[k]) != 0);
    }
}

/* Whether s is "YYYY-MM-DD" in digits and dashes (the extractor checks no more). */
static int iso_shape(const char *s)
{
    return strlen(s) == 10 && strspn(s, "0123456789") == 4 && s[4] == '-' &&
           strspn(s + 5, "0123456789") == 2 && s[7] == '-' && strspn(s + 8, "0123456789") == 2;
}

/* Checks the detail's fields as movie.h describes them. */
static void check_detail(const struct movie_detail *d)
{
    FUZZ_CHECK(fuzz_text_ok(d->title));
    FUZZ_CHECK(fuzz_text_ok(d->original_title));
    FUZZ_CHECK(fuzz_text_ok(d->poster));
    FUZZ_CHECK(fuzz_text_ok(d->summary));
    FUZZ_CHECK(d->year == -1 || (d->year >= 1000 && d->year <= 9999));
    FUZZ_CHECK(d->runtime_minutes == -1 || (d->runtime_minutes >= 1 && d->runtime_minutes <= 100000));
    FUZZ_CHECK(d->rating == -1 || (isfinite(d->rating) && d->rating >= 0 && d->rating <= 10));
    FUZZ_CHECK(d->votes >= -1);
    FUZZ_CHECK(d->release_date_cn == NULL || iso_shape(d->release_date_cn));
    if (d->imdb_id != NULL) {
        size_t digits = strspn(d->imdb_id + 2, "0123456789");
        FUZZ_CHECK(strncmp(d->imdb_id, "tt", 2) == 0 && digits > 0 && d->imdb_id[2 + digits] == '\0');
    }
    check_list(&d->directors);
    check_list(&d->actors);
    check_list(&d->genres);
    check_list(&d->regions);
    check_list(&d->languages);
}

/* The API's movie for a listing item (listed with a day, then with the month alone) with
 * detail (may be NULL) or the error. */
static void check_movie(const json_t *detail, const struct movie_detail *d,
                        const struct detail_error *error)
{
    static char day[] = "12月25日", month[] = "12月";
    char *const listed[] = {day, month};
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++) {
        struct listing_item item = {.id = "1", .url = "https://movie.douban.com/subject/1/",
                                    .release_date = listed[i], .wish_count = 7};
        json_t *movie = movie_json(&item, detail, error, FETCHED_AT);
        FUZZ_CHECK(json_is_object(movie) && json_object_size(movie) == movie_keys);
        const char *iso = json_string_value(json_object_get(movie, "release_date_iso"));
        const char *precision = json_string_value(json_object_get(movie, "release_date_precision"));
        const char *cn = d ? d->release_date_cn : NULL;
        FUZZ_CHECK(iso != NULL && precision != NULL);
        if (cn != NULL)
            FUZZ_CHECK(strcmp(iso, cn) == 0 && strcmp(precision, "day") == 0);
        else
            FUZZ_CHECK(strcmp(iso, i == 0 ? "2024-12-25" : "2024-12") == 0 &&
                       strcmp(precision, i == 0 ? "day" : "month") == 0);
        if (d != NULL) {
            FUZZ_CHECK(json_is_string(json_object_get(movie, "title")) == (d->title != NULL));
            FUZZ_CHECK(json_is_string(json_object_get(movie, "summary")) == (d->summary != NULL));
            FUZZ_CHECK(json_array_size(json_object_get(movie, "actors")) == d->actors.n);
        }
        fuzz_check_roundtrip(movie);
        json_decref(movie);
    }
}

/* Quiets logging and learns the number of keys of an API movie. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    movie_keys = fuzz_movie_setup();
    return 0;
}

/* One page. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct movie_detail d;
    movie_detail_init(&d);
    char err[160];
    memset(err, 'x', sizeof err);
    enum douban_verdict v = douban_parse_detail((const char *)data, size, &d, err, sizeof err);
    FUZZ_CHECK(v >= DOUBAN_OK && v <= DOUBAN_MALFORMED);
    check_detail(&d);
    if (v == DOUBAN_OK) {
        json_t *detail = movie_detail_json(&d);
        fuzz_check_roundtrip(detail);
        check_movie(detail, &d, NULL);
        json_decref(detail);
    } else {
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
        struct detail_error error = {.code = API_ERROR_UPSTREAM_CHANGED, .status = 200};
        snprintf(error.message, sizeof error.message, "%s", err);
        check_movie(NULL, NULL, &error);
    }
    movie_detail_free(&d);
    return 0;
}
