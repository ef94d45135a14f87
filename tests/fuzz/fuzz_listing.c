/* libFuzzer target: a listing page from the upstream, as scrape.c hands it over
 * (upstream host 127.0.0.1, city beijing, a 200-byte reason buffer), through
 * douban_parse_listing and then the API's JSON of every item, as scrape_finish() builds it;
 * then the same bytes as a now-playing page, through douban_parse_nowplaying.
 *
 * Checked besides memory safety: a verdict other than DOUBAN_OK comes with a reason that is
 * UTF-8 (it goes into a JSON error); every item has a numeric id and the canonical URL; a
 * field that was extracted is non-empty UTF-8 without invisible marks, so it never turns
 * into a silent null in the JSON; the date's ISO form and precision agree with the listed
 * date; the JSON has every key, serialises, and reads back equal. */
#include "fuzz.h"

#include <jansson.h>

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

/* Checks one item's fields as douban.h and movie.h describe them. */
static void check_item(const struct listing_item *it)
{
    FUZZ_CHECK(it->id != NULL);
    size_t digits = strspn(it->id, "0123456789");
    FUZZ_CHECK(digits >= 1 && digits <= 20 && it->id[digits] == '\0');
    char url[64];
    snprintf(url, sizeof url, "https://movie.douban.com/subject/%s/", it->id);
    FUZZ_CHECK(it->url != NULL && strcmp(it->url, url) == 0);
    FUZZ_CHECK(fuzz_text_ok(it->title));
    FUZZ_CHECK(fuzz_text_ok(it->thumbnail));
    int month, day;
    FUZZ_CHECK(it->release_date == NULL ||
               movie_parse_listing_date(it->release_date, &month, &day) == 0);
    FUZZ_CHECK(it->wish_count >= -1);
    check_list(&it->genres);
    check_list(&it->regions);
}

/* Checks a now-playing item's own fields: its attributes' numbers in range, no date. */
static void check_playing(const struct listing_item *it)
{
    check_item(it);
    FUZZ_CHECK(it->release_date == NULL && it->wish_count == -1 && it->genres.n == 0);
    FUZZ_CHECK(it->year == -1 || (it->year >= 1000 && it->year <= 9999));
    FUZZ_CHECK(it->runtime_minutes == -1 || (it->runtime_minutes >= 1 && it->runtime_minutes <= 100000));
    FUZZ_CHECK(it->rating == -1 || (it->rating > 0 && it->rating <= 10));
    FUZZ_CHECK(it->votes >= -1);
    FUZZ_CHECK(fuzz_text_ok(it->poster));
    check_list(&it->directors);
    check_list(&it->actors);
}

/* The item's API object: every key, known strings kept, and a lossless JSON text. */
static void check_json(const struct listing_item *it)
{
    json_t *movie = movie_json(it, NULL, NULL, FETCHED_AT);
    FUZZ_CHECK(json_is_object(movie) && json_object_size(movie) == movie_keys);
    FUZZ_CHECK(json_is_string(json_object_get(movie, "id")));
    FUZZ_CHECK(json_is_string(json_object_get(movie, "title")) == (it->title != NULL));
    FUZZ_CHECK(json_is_string(json_object_get(movie, "thumbnail")) == (it->thumbnail != NULL));
    FUZZ_CHECK(json_array_size(json_object_get(movie, "genres")) == it->genres.n);
    FUZZ_CHECK(json_array_size(json_object_get(movie, "regions")) == it->regions.n);
    /* A listed day gives YYYY-MM-DD (or null: a day no year near FETCHED_AT has), a listed
     * month YYYY-MM; the precision says which, and is null exactly when the date is. */
    const char *iso = json_string_value(json_object_get(movie, "release_date_iso"));
    const char *precision = json_string_value(json_object_get(movie, "release_date_precision"));
    int month_only = it->release_date && strlen(it->release_date) == 5;
    FUZZ_CHECK((iso == NULL) == (precision == NULL));
    FUZZ_CHECK(it->release_date != NULL || iso == NULL);
    FUZZ_CHECK(!month_only || iso != NULL);
    if (iso != NULL) {
        FUZZ_CHECK(strlen(iso) == (month_only ? 7u : 10u));
        FUZZ_CHECK(strcmp(precision, month_only ? "month" : "day") == 0);
        FUZZ_CHECK(strncmp(iso + 5, it->release_date, 2) == 0);
    }
    fuzz_check_roundtrip(movie);
    json_decref(movie);
}

/* Quiets the warnings about skipped items: formatting them is log_escape's target's job. */
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
    struct listing l = {0};
    char err[200];
    memset(err, 'x', sizeof err);
    enum douban_verdict v = douban_parse_listing((const char *)data, size, "127.0.0.1", "beijing",
                                                 &l, err, sizeof err);
    FUZZ_CHECK(v >= DOUBAN_OK && v <= DOUBAN_MALFORMED);
    if (v != DOUBAN_OK)
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
    for (size_t i = 0; i < l.n; i++) {
        check_item(&l.items[i]);
        check_json(&l.items[i]);
    }
    listing_free(&l);
    memset(err, 'x', sizeof err);
    v = douban_parse_nowplaying((const char *)data, size, "beijing", &l, err, sizeof err);
    FUZZ_CHECK(v >= DOUBAN_OK && v <= DOUBAN_MALFORMED);
    if (v != DOUBAN_OK)
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
    for (size_t i = 0; i < l.n; i++) {
        check_playing(&l.items[i]);
        check_json(&l.items[i]);
    }
    listing_free(&l);
    return 0;
}
