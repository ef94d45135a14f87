#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "moviesd: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        out_of_memory(n * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void strlist_push(struct strlist *l, const char *s)
{
    strlist_push_owned(l, xstrdup(s));
}

void strlist_push_owned(struct strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int strlist_contains(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

int parse_integer(const char *s, long long min, long long max, long long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > (unsigned long long)max || (long long)v < min)
        return -1;
    *out = (long long)v;
    return 0;
}

void errorf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

double clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clock_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct blob *blob_new(const char *data, size_t len)
{
    struct blob *b = xmalloc(sizeof *b + len + 1);
    b->refs = 1;
    b->len = len;
    memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

struct blob *blob_ref(struct blob *b)
{
    b->refs++;
    return b;
}

void blob_unref(struct blob *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

/* FNV-1a, 64 bits: simple, fast on short keys, and stable across builds (ETags). */
uint64_t hash_fnv1a(const char *data, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The hash as 16 lower-case hex digits. */
void hash_hex(const char *data, size_t len, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)hash_fnv1a(data, len));
}

/* Checks one UTF-8 sequence by the ranges of RFC 3629's table. */
size_t utf8_sequence(const char *p, size_t avail)
{
    const unsigned char *u = (const unsigned char *)p;
    if (avail == 0)
        return 0;
    if (u[0] < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;   /* the range the second byte may take */
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        n = 2;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        n = 3;
        if (u[0] == 0xE0)
            lo = 0xA0;   /* overlong */
        else if (u[0] == 0xED)
            hi = 0x9F;   /* UTF-16 surrogates */
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        n = 4;
        if (u[0] == 0xF0)
            lo = 0x90;   /* overlong */
        else if (u[0] == 0xF4)
            hi = 0x8F;   /* past U+10FFFF */
    } else {
        return 0;        /* a continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (avail < 2 || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (i >= avail || (u[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Steps to the next word of a separated list. */
const char *words_next(const char **s, const char *seps, size_t *len)
{
    const char *w = *s + strspn(*s, seps);
    *len = strcspn(w, seps);
    *s = w + *len;
    return *len ? w : NULL;
}

/* Looks for one word in a separated list. */
int words_contain(const char *list, const char *seps, const char *w, size_t wlen)
{
    size_t n;
    for (const char *p = list, *word; (word = words_next(&p, seps, &n)) != NULL;)
        if (n == wlen && strncmp(word, w, n) == 0)
            return 1;
    return 0;
}

/* A bounded strstr that does not stop at NUL bytes. */
const char *bytes_find(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    const char *end = p + len;
    if (n == 0)
        return p;
    while ((size_t)(end - p) >= n) {
        const char *q = memchr(p, needle[0], (size_t)(end - p) - n + 1);
        if (q == NULL)
            return NULL;
        if (memcmp(q, needle, n) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}
