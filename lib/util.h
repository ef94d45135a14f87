/* Small helpers shared by every module: allocation that cannot fail, string lists,
 * strict number parsing, clocks, a refcounted byte blob, the one hash, the one UTF-8
 * check, word lists and a bounded byte search. */
#ifndef MOVIESD_UTIL_H
#define MOVIESD_UTIL_H

#include <stddef.h>
#include <stdint.h>
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
/* Seconds since the epoch, for times shared with other processes (replicas' records). */
double clock_wall(void);

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

/* The 64-bit FNV-1a hash of data: the one hash of the tree (cache buckets, ETags). */
uint64_t hash_fnv1a(const char *data, size_t len);
/* Lower-case hex of hash_fnv1a(data), for ETags. out must hold 17 bytes. */
void hash_hex(const char *data, size_t len, char out[17]);

/* Length (1 to 4) of the well-formed UTF-8 sequence at p, reading at most avail bytes, or 0
 * if none starts there: avail 0, a stray continuation or invalid byte, an overlong form, a
 * UTF-16 surrogate, a code point past U+10FFFF, or a sequence cut short. Any ASCII byte,
 * NUL included, is a sequence of 1. Bytes are read in order up to the first wrong one, so
 * a NUL ends the check before anything past it is read. */
size_t utf8_sequence(const char *p, size_t avail);

/* The next word at *s (words are separated by any byte of seps), its length in *len, or
 * NULL at the end; *s moves past it. The word is borrowed from *s, not NUL-terminated. */
const char *words_next(const char **s, const char *seps, size_t *len);
/* Whether the list of words separated by seps has the word w (wlen bytes). */
int words_contain(const char *list, const char *seps, const char *w, size_t wlen);

/* The first occurrence of needle in the len bytes at p (which may hold NULs), or NULL. */
const char *bytes_find(const char *p, size_t len, const char *needle);

#endif
