/* The cors_origins setting: checking it, and matching a request's Origin against it. */
#include "cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Separators between listed origins. */
#define CORS_SEPARATORS ", \t"

/* The longest origin accepted in the list: a scheme, a DNS name and a port. */
#define CORS_ORIGIN_MAX 300

enum cors_mode cors_mode_of(const char *origins)
{
    size_t skip = strspn(origins, CORS_SEPARATORS);
    if (origins[skip] == '\0')
        return CORS_OFF;
    return strcmp(origins + skip, "*") == 0 ? CORS_ANY : CORS_LIST;
}

/* Whether s[0..n) is an origin as browsers send it (RFC 6454 7): http or https, a host
 * (a name, an IPv4 address or a bracketed IPv6 one) and an optional port, nothing after. */
static int origin_valid(const char *s, size_t n)
{
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (scheme == 0 || n <= scheme || n > CORS_ORIGIN_MAX)
        return 0;
    size_t i = scheme;
    if (s[i] == '[') {
        while (i < n && s[i] != ']') {
            if (strchr("0123456789abcdefABCDEF:.[", s[i]) == NULL)
                return 0;
            i++;
        }
        if (i == n || i == scheme + 1)
            return 0;
        i++;
    } else {
        size_t host = i;
        while (i < n && s[i] != ':') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.'))
                return 0;
            i++;
        }
        if (i == host)
            return 0;
    }
    if (i == n)
        return 1;
    if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
        return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int cors_check(const char *origins, char *err, size_t errlen)
{
    enum cors_mode mode = cors_mode_of(origins);
    if (mode != CORS_LIST)
        return 0;
    for (const char *p = origins + strspn(origins, CORS_SEPARATORS); *p != '\0';
         p += strspn(p, CORS_SEPARATORS)) {
        size_t n = strcspn(p, CORS_SEPARATORS);
        if (n == 1 && p[0] == '*') {
            snprintf(err, errlen, "'*' stands alone: any origin, or a list of origins, not both");
            return -1;
        }
        if (!origin_valid(p, n)) {
            snprintf(err, errlen,
                     "'%.*s' is not an origin: http:// or https://, a host and an optional port, "
                     "no path (e.g. https://example.com)",
                     (int)(n < 80 ? n : 80), p);
            return -1;
        }
        p += n;
    }
    return 0;
}

const char *cors_allow_origin(const char *origins, const char *origin)
{
    switch (cors_mode_of(origins)) {
    case CORS_OFF:
        return NULL;
    case CORS_ANY:
        return "*";
    case CORS_LIST:
        break;
    }
    if (origin == NULL)
        return NULL;
    size_t len = strlen(origin);
    for (const char *p = origins + strspn(origins, CORS_SEPARATORS); *p != '\0';
         p += strspn(p, CORS_SEPARATORS)) {
        size_t n = strcspn(p, CORS_SEPARATORS);
        /* Scheme and host are case-insensitive; browsers send them in lower case. */
        if (n == len && strncasecmp(p, origin, n) == 0)
            return origin;
        p += n;
    }
    return NULL;
}
