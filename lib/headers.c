/* Both fields are comma-separated lists (RFC 9110 5.6.1): elements may be empty and are
 * separated by optional whitespace (OWS: spaces and tabs) around the commas. */
#include "headers.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* A coding's q-value when it is not listed. */
#define Q_UNLISTED (-1)
/* q=1, in thousandths. */
#define Q_MAX 1000

/* Whether c is optional whitespace. */
static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) with optional whitespace trimmed on both sides. */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && is_ows(s[0])) {
        s++;
        (*n)--;
    }
    while (*n > 0 && is_ows(s[*n - 1]))
        (*n)--;
    return s;
}

/* Whether s[0..n) is word, case-insensitively. */
static int is_word(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* A qvalue (RFC 9110 12.4.2: 0 or 1, with at most three decimals, never above 1) in
 * thousandths, or -1 when s[0..n) is not one. */
static int parse_qvalue(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int q = (s[0] - '0') * Q_MAX;
    if (n == 1)
        return q;
    if (s[1] != '.' || n > 5)
        return -1;
    int scale = Q_MAX / 10;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q > Q_MAX ? -1 : q;
}

/* The q-value of one Accept-Encoding element, "coding *(OWS ; OWS parameter)", whose
 * coding is set in *coding; 1 when it has no weight, -1 when it is malformed or empty. */
static int element_weight(const char *e, size_t n, const char **coding, size_t *coding_len)
{
    e = trim(e, &n);
    size_t len = 0;
    while (len < n && e[len] != ';' && !is_ows(e[len]))
        len++;
    *coding = e;
    *coding_len = len;
    if (len == 0)
        return -1;
    int q = Q_MAX;
    const char *p = e + len, *end = e + n;
    while (p < end) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            break;
        if (*p != ';')
            return -1;   /* a second word after the coding */
        p++;
        const char *param = p;
        while (p < end && *p != ';')
            p++;
        size_t plen = (size_t)(p - param);
        param = trim(param, &plen);
        const char *eq = memchr(param, '=', plen);
        if (eq == NULL) {
            if (plen > 0)
                return -1;
            continue;    /* "gzip;" */
        }
        size_t name_len = (size_t)(eq - param), bare_len = name_len;
        trim(param, &bare_len);
        if (!is_word(param, bare_len, "q"))
            continue;    /* no other parameter is defined: ignored */
        if (bare_len != name_len)
            return -1;   /* "q =": no whitespace around a parameter's "=" (5.6.6) */
        q = parse_qvalue(eq + 1, plen - name_len - 1);
        if (q < 0)
            return -1;
    }
    return q;
}

int headers_accept_gzip(const char *accept_encoding)
{
    if (accept_encoding == NULL)
        return 0;
    int gzip = Q_UNLISTED, identity = Q_UNLISTED, any = Q_UNLISTED;
    const char *p = accept_encoding;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *coding;
        size_t len;
        int q = element_weight(p, n, &coding, &len);
        int *slot = q < 0                                                              ? NULL
                    : is_word(coding, len, "gzip") || is_word(coding, len, "x-gzip") ? &gzip
                    : is_word(coding, len, "identity")                               ? &identity
                    : is_word(coding, len, "*")                                      ? &any
                                                                                     : NULL;
        if (slot != NULL && q > *slot)
            *slot = q;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    int q_gzip = gzip != Q_UNLISTED ? gzip : any != Q_UNLISTED ? any : 0;
    /* identity unweighted (neither it nor * listed) is acceptable but not preferred:
     * "gzip;q=0.5" alone still asks for gzip. */
    int q_identity = identity != Q_UNLISTED ? identity : any;
    return q_gzip > 0 && q_gzip >= q_identity;
}

int headers_etag_match(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL || etag == NULL)
        return 0;
    /* The weak comparison: the opaque-tags, quotes included, are the same. */
    if (strncmp(etag, "W/", 2) == 0)
        etag += 2;
    size_t etag_len = strlen(etag);
    const char *p = if_none_match;
    for (;;) {
        while (is_ows(*p) || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        if (*p == '*') {
            const char *after = p + 1;
            while (is_ows(*after))
                after++;
            if (*after == ',' || *after == '\0')
                return 1;
        }
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"') {
            /* Not an entity-tag: on to the next element. */
            p += strcspn(p, ",");
            continue;
        }
        /* A quoted tag may hold commas: it ends at its closing quote. */
        const char *tag = p, *close = strchr(p + 1, '"');
        if (close == NULL)
            return 0;
        size_t len = (size_t)(close + 1 - tag);
        p = close + 1;
        while (is_ows(*p))
            p++;
        if (*p != ',' && *p != '\0') {
            /* Something after the tag: not an entity-tag either. */
            p += strcspn(p, ",");
            continue;
        }
        if (len == etag_len && memcmp(tag, etag, len) == 0)
            return 1;
    }
}
