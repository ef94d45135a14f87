/* libFuzzer target: the small parsers of short untrusted strings, each against a plain
 * reference written here: douban_city_valid (the city of an API path),
 * movie_parse_listing_date (a listing's "MM月DD日", or "MM月" alone) and
 * movie_listing_date_iso (that date placed in a year, for any fetch time the daemon can have).
 *
 * Input: 8 bytes of fetch time (little-endian, folded into 1970..9999, the range time(NULL)
 * can give and gmtime can show), then the string. */
#include "fuzz.h"

#include <time.h>

#include "douban.h"
#include "movie.h"

/* 9999-12-31T23:59:59Z: the latest fetch time tried. */
#define LAST_TIME 253402300799LL

/* Days in month m (1-12) of year y. */
static int days_in(int y, int m)
{
    if (m == 2)
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28;
    return m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31;
}

/* Days from 1 January of year `base` to (y, m, d), counted one day at a time by months:
 * slow and obviously right, where movie.c uses a closed formula. */
static long day_number(int base, int y, int m, int d)
{
    long n = 0;
    for (int yy = base; yy < y; yy++)
        for (int mm = 1; mm <= 12; mm++)
            n += days_in(yy, mm);
    for (int mm = 1; mm < m; mm++)
        n += days_in(y, mm);
    return n + d - 1;
}

/* The reference for douban_city_valid: 1-32 of [a-z], or 1-32 of [0-9], and nothing else. */
static int city_reference(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return 0;
    int letters = s[0] >= 'a' && s[0] <= 'z';
    for (size_t i = 0; i < n; i++)
        if (letters ? (s[i] < 'a' || s[i] > 'z') : (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

/* The reference for movie_parse_listing_date: month and day (0 for a month alone), or 0 if
 * s is not a date. */
static int date_reference(const char *s, int *month, int *day)
{
    if (strlen(s) != 10 && strlen(s) != 5)
        return 0;
    for (int m = 1; m <= 12; m++)
        for (int d = 0; d <= 31; d++) {
            char want[16];
            if (d == 0)
                snprintf(want, sizeof want, "%02d月", m);
            else
                snprintf(want, sizeof want, "%02d月%02d日", m, d);
            if (strcmp(s, want) == 0) {
                *month = m;
                *day = d;
                return 1;
            }
        }
    return 0;
}

/* Checks movie_listing_date_iso's answer for (month, day) fetched at t: the earliest of
 * last, this and next year (China's calendar) that is at most 30 days before the fetch day
 * and less than a year after it, or -1 when none is. A month alone (day 0) is placed as its
 * last day would be, and written YYYY-MM. */
static void check_iso(const char *s, int month, int day, time_t t)
{
    char *out = malloc(11);   /* exactly the promised size, for ASan */
    FUZZ_CHECK(out != NULL);
    int r = movie_listing_date_iso(s, t, out);
    time_t local = t + 8 * 3600;
    struct tm tm;
    FUZZ_CHECK(gmtime_r(&local, &tm) != NULL);
    int fy = tm.tm_year + 1900, fm = tm.tm_mon + 1, fd = tm.tm_mday;
    int want = 0;
    if (fy >= 1000 && fy <= 9998) {
        long today = day_number(fy - 1, fy, fm, fd);
        for (int y = fy - 1; y <= fy + 1 && want == 0; y++) {
            int d = day > 0 ? day : days_in(y, month);
            if (d > days_in(y, month) || day_number(fy - 1, y, month, d) < today - 30)
                continue;
            if (y == fy + 1 && (month > fm || (month == fm && d >= fd)))
                continue;
            want = y;
        }
        /* Every month fits some year: its own in the fetch year at the latest, the next. */
        FUZZ_CHECK(day > 0 || want != 0);
    }
    if (want == 0) {
        FUZZ_CHECK(r == -1);
    } else {
        char expected[16];
        if (day > 0)
            snprintf(expected, sizeof expected, "%04d-%02d-%02d", want, month, day);
        else
            snprintf(expected, sizeof expected, "%04d-%02d", want, month);
        FUZZ_CHECK(r == 0 && strcmp(out, expected) == 0);
    }
    free(out);
}

/* Nothing to set up. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* One fetch time and one string. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t raw = 0;
    for (int i = 7; i >= 0; i--)
        raw = raw << 8 | data[i];
    time_t t = (time_t)(raw % (uint64_t)(LAST_TIME + 1));
    char *s = fuzz_cstring(data + 8, size - 8);

    FUZZ_CHECK(douban_city_valid(s) == city_reference(s));
    FUZZ_CHECK(douban_city_valid(NULL) == 0);

    int month = 0, day = 0, rm, rd;
    int parsed = movie_parse_listing_date(s, &month, &day) == 0;
    FUZZ_CHECK(parsed == date_reference(s, &rm, &rd));
    if (parsed) {
        FUZZ_CHECK(month == rm && day == rd);
        check_iso(s, month, day, t);
    } else {
        char out[11];
        FUZZ_CHECK(movie_listing_date_iso(s, t, out) == -1);
    }
    free(s);
    return 0;
}
