/* What every libFuzzer target here shares: the entry points' prototypes, a check that
 * aborts (so libFuzzer saves the input), and small validators written independently of
 * lib/ so that they can judge its output. */
#ifndef MOVIESD_FUZZ_H
#define MOVIESD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "movie.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash: libFuzzer keeps the input that caused it. */
#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* A NUL-terminated copy of the input (new; embedded NULs end the string early). */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Length of the strict UTF-8 sequence at p (avail bytes), or 0: no overlongs, surrogates
 * or code points past U+10FFFF. Table-free on purpose: a second opinion on lib/'s. */
static inline size_t fuzz_utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char b = p[0];
    size_t n;
    uint32_t cp;
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0) {
        n = 2;
        cp = b & 0x1Fu;
    } else if ((b & 0xF0) == 0xE0) {
        n = 3;
        cp = b & 0x0Fu;
    } else if ((b & 0xF8) == 0xF0) {
        n = 4;
        cp = b & 0x07u;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Whether s (len bytes) is strict UTF-8 without NUL bytes. */
static inline int fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = fuzz_utf8_len(p + i, len - i);
        if (n == 0 || p[i] == '\0')
            return 0;
        i += n;
    }
    return 1;
}

/* Whether s holds one of the invisible marks extracted text never keeps: U+200B, U+200E,
 * U+200F or U+FEFF. */
static inline int fuzz_has_mark(const char *s)
{
    return strstr(s, "\xE2\x80\x8B") || strstr(s, "\xE2\x80\x8E") || strstr(s, "\xE2\x80\x8F") ||
           strstr(s, "\xEF\xBB\xBF");
}

/* Whether s is NULL, or a non-empty UTF-8 string without invisible marks: how lib/ reports
 * an unknown or a known text field. */
static inline int fuzz_text_ok(const char *s)
{
    return s == NULL || (s[0] != '\0' && fuzz_utf8_valid(s, strlen(s)) && !fuzz_has_mark(s));
}

/* Whether err (errlen bytes) holds a non-empty, NUL-terminated UTF-8 message: the reason a
 * call gave, which ends up in logs and in the API's JSON errors. */
static inline int fuzz_message_ok(const char *err, size_t errlen)
{
    const char *nul = memchr(err, '\0', errlen);
    return nul != NULL && nul != err && fuzz_utf8_valid(err, (size_t)(nul - err));
}

/* The fetch time of every fuzzed movie, 2024-12-01T00:00:00Z (a fixed day keeps runs
 * reproducible). */
#define FETCHED_AT ((time_t)1733011200)

/* Quiets logging (formatting log lines is fuzz_escape's job) and returns the number of
 * keys of an API movie object, learnt from an empty one. */
static inline size_t fuzz_movie_setup(void)
{
    log_set_level(LOG_ERROR);
    struct listing_item empty = {.wish_count = -1};
    json_t *movie = movie_json(&empty, NULL, NULL, FETCHED_AT);
    size_t keys = json_object_size(movie);
    json_decref(movie);
    return keys;
}

/* Serialises v the API's way and checks that the text reads back equal. */
static inline void fuzz_check_roundtrip(const json_t *v)
{
    char *text = json_dumps(v, MOVIE_JSON_FLAGS);
    FUZZ_CHECK(text != NULL);
    json_t *back = json_loads(text, 0, NULL);
    FUZZ_CHECK(back != NULL);
    /* Ratings are written with 10 significant digits on purpose; compare the rest exactly. */
    json_t *a = json_deep_copy(v);
    json_object_del(a, "rating");
    json_object_del(back, "rating");
    FUZZ_CHECK(json_equal(a, back));
    json_decref(a);
    json_decref(back);
    free(text);
}

#endif
