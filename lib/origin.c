/* What a URL's origin is comes from libcurl's URL parser, the one the transfer itself
 * uses: a second parser of our own could disagree with it about where a URL leads. The
 * text is read only to learn how the host is spelled, and a spelling can only refuse a URL
 * that curl's reading already allows, never allow one. */
#include "origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Lower-cases s in place (ASCII only: curl leaves other bytes of a name as written). */
static char *lower(char *s)
{
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

/* The host as url's text spells it (new, lower-case): what follows "scheme://" or "//" up
 * to the port, path, query or fragment. NULL when the text names no host (a relative
 * reference such as "/path" or "?q"); "" when it has a scheme not followed by "//", which
 * curl may read leniently but no configured URL looks like. A scheme is read as curl reads
 * one: letters, digits, '+', '-' and '.' before a ':'. */
static char *spelled_host(const char *url)
{
    const char *p = url + strspn(url, " \t");
    size_t scheme = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    int has_scheme = scheme > 0 && p[scheme] == ':';
    if (has_scheme)
        p += scheme + 1;
    if (p[0] != '/' || p[1] != '/')
        return has_scheme ? xstrdup("") : NULL;
    const char *authority = p + 2;
    size_t n = strcspn(authority, "/?#\\");
    size_t host_len = n;
    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', n);
        if (close != NULL)
            host_len = (size_t)(close - authority) + 1;
    } else {
        for (size_t i = n; i > 0; i--)
            if (authority[i - 1] == ':') {
                host_len = i - 1;
                break;
            }
    }
    return lower(xstrndup(authority, host_len));
}

/* Fills *out from a parsed handle; the spelling is left to the caller. 0, or -1 with the
 * reason in err. */
static int read_origin(CURLU *u, struct origin *out, char *err, size_t errlen)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL;
    int rc = -1;
    long long port_number;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        errorf(err, errlen, "no host");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        errorf(err, errlen, "a user name or password in the URL");
    } else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
               parse_integer(port, 1, 65535, &port_number) != 0) {
        errorf(err, errlen, "no usable port");
    } else {
        out->scheme = lower(xstrdup(scheme));
        out->host = lower(xstrdup(host));
        out->port = (long)port_number;
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(password);
    return rc;
}

CURLU *origin_parse(const char *url, struct origin *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    CURLU *u = curl_url();
    if (u == NULL) {
        errorf(err, errlen, "out of memory");
        return NULL;
    }
    CURLUcode code = curl_url_set(u, CURLUPART_URL, url, 0);
    if (code != CURLUE_OK) {
        errorf(err, errlen, "not a URL libcurl reads (%s)", curl_url_strerror(code));
        curl_url_cleanup(u);
        return NULL;
    }
    if (read_origin(u, out, err, errlen) != 0) {
        curl_url_cleanup(u);
        return NULL;
    }
    out->spelling = spelled_host(url);
    if (out->spelling == NULL)
        out->spelling = xstrdup("");  /* curl read a host the text does not name */
    return u;
}

char *origin_resolve(const char *base, const char *reference, struct origin *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    CURLU *u = curl_url();
    if (u == NULL) {
        errorf(err, errlen, "out of memory");
        return NULL;
    }
    char *url = NULL, *result = NULL;
    CURLUcode code;
    if ((code = curl_url_set(u, CURLUPART_URL, base, 0)) != CURLUE_OK) {
        errorf(err, errlen, "the base URL does not parse (%s)", curl_url_strerror(code));
    } else if ((code = curl_url_set(u, CURLUPART_URL, reference, 0)) != CURLUE_OK) {
        /* On failure curl keeps the base URL: nothing of the reference is used. */
        errorf(err, errlen, "not a URL libcurl reads (%s)", curl_url_strerror(code));
    } else if ((code = curl_url_get(u, CURLUPART_URL, &url, 0)) != CURLUE_OK) {
        errorf(err, errlen, "no URL to follow (%s)", curl_url_strerror(code));
    } else if (read_origin(u, out, err, errlen) == 0) {
        out->spelling = spelled_host(reference);
        if (out->spelling == NULL)
            out->spelling = spelled_host(base);
        if (out->spelling == NULL)
            out->spelling = xstrdup("");
        result = xstrdup(url);
    }
    curl_free(url);
    curl_url_cleanup(u);
    return result;
}

void origin_clear(struct origin *o)
{
    free(o->scheme);
    free(o->host);
    free(o->spelling);
    memset(o, 0, sizeof *o);
}

const char *origin_format(const struct origin *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s://%s:%ld", o->scheme ? o->scheme : "", o->host ? o->host : "", o->port);
    return buf;
}

int origin_list_add(struct origin_list *l, const char *url, char *err, size_t errlen)
{
    struct origin o;
    CURLU *u = origin_parse(url, &o, err, errlen);
    if (u == NULL)
        return -1;
    curl_url_cleanup(u);
    l->items = xrealloc(l->items, (l->count + 1) * sizeof *l->items);
    l->items[l->count++] = o;
    return 0;
}

void origin_list_clear(struct origin_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        origin_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

int origin_list_allows(const struct origin_list *l, const struct origin *o)
{
    if (o->scheme == NULL || o->host == NULL || o->spelling == NULL)
        return 0;
    for (size_t i = 0; i < l->count; i++) {
        const struct origin *a = &l->items[i];
        if (strcmp(o->scheme, a->scheme) == 0 && strcmp(o->host, a->host) == 0 &&
            o->port == a->port &&
            (strcmp(o->spelling, a->spelling) == 0 || strcmp(o->spelling, a->host) == 0))
            return 1;
    }
    return 0;
}
