/* Small helpers shared by every module: allocation that cannot fail, string lists,
 * strict number parsing, clocks and a refcounted byte blob. */
#ifndef MOVIESD_UTIL_H
#define MOVIESD_UTIL_H

#include <stddef.h>
#include <time.h>

/* Allocation failure is fatal: a daemon that half-works after ENOMEM is worse than a restart. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable list of owned strings. */
struct strlist {
    char **v;
    size_t n, cap;
};
void strlist_push(struct strlist *l, const char *s);           /* copies s */
void strlist_push_owned(struct strlist *l, char *s);           /* steals s */
void strlist_free(struct strlist *l);                          /* leaves l empty; accepts empty */
int strlist_contains(const struct strlist *l, const char *s);

/* Parses a decimal integer in [min, max]. Rejects empty strings, signs, junk and overflow.
 * Returns 0 on success, -1 otherwise. */
int parse_integer(const char *s, long long min, long long max, long long *out);

/* Writes a formatted reason into a caller's error buffer (NULL or empty: nothing). */
void errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Seconds since an arbitrary point, for deadlines and durations. */
double clock_monotonic(void);

/* A refcounted immutable byte string: one serialized answer shared by every request that
 * sends it while the cache may already have replaced it. */
struct blob {
    int refs;
    size_t len;
    char data[];
};
struct blob *blob_new(const char *data, size_t len);   /* new reference, data copied, NUL added */
struct blob *blob_ref(struct blob *b);                  /* returns b */
void blob_unref(struct blob *b);                        /* accepts NULL */

/* Lower-case hex of a 64-bit FNV-1a hash of data, for ETags. out must hold 17 bytes. */
void hash_hex(const char *data, size_t len, char out[17]);

#endif
