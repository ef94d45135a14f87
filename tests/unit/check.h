/* A minimal test harness: CHECK macros count failures and report the place; each test
 * program ends with check_summary(), which prints "N passed, N failed" and gives the exit
 * status CTest reads. */
#ifndef MOVIESD_CHECK_H
#define MOVIESD_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (cond) {                                                                         \
            check_passed++;                                                                 \
        } else {                                                                            \
            check_failed++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                   \
    } while (0)

#define CHECK_STR(actual, expected)                                                         \
    do {                                                                                    \
        const char *a_ = (actual), *e_ = (expected);                                        \
        if ((a_ == NULL && e_ == NULL) || (a_ != NULL && e_ != NULL && strcmp(a_, e_) == 0)) { \
            check_passed++;                                                                 \
        } else {                                                                            \
            check_failed++;                                                                 \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                    #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)");                       \
        }                                                                                   \
    } while (0)

#define CHECK_INT(actual, expected)                                                         \
    do {                                                                                    \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                     \
        if (a_ == e_) {                                                                     \
            check_passed++;                                                                 \
        } else {                                                                            \
            check_failed++;                                                                 \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__,       \
                    #actual, a_, e_);                                                       \
        }                                                                                   \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

#endif
