/* Origins: the scheme, host and port of a URL as libcurl's own URL parser reads it, and the
 * short allow-list of origins the fetcher may talk to, derived from the configuration.
 *
 * A URL is allowed when libcurl's reading of it equals an allowed origin (so a host name
 * curl would connect to elsewhere never passes) and its text spells the host the way the
 * configuration does or the way curl normalises it: 127.0.0.1 written as 2130706433,
 * 0x7f000001, 017700000001 or 127.1 reads as 127.0.0.1 but is refused, as are
 * [::ffff:127.0.0.1], user@host, percent-encoded and trailing-dot host names. */
#ifndef MOVIESD_ORIGIN_H
#define MOVIESD_ORIGIN_H

#include <curl/curl.h>
#include <stddef.h>

struct origin {
    char *scheme;    /* lower-case, as curl reads it: "http", "https" */
    char *host;      /* lower-case, as curl normalises it; an IPv6 address in brackets */
    long port;       /* the URL's port, or the scheme's default */
    char *spelling;  /* the host as the URL's text writes it, lower-case, port left out; ""
                      * when the text is not "scheme://host..." (no match is possible) */
};

struct origin_list {
    struct origin *items;
    size_t count;
};

/* Reads the absolute URL url with libcurl's parser into *out (new strings: origin_clear).
 * Returns the parsed handle (new: curl_url_cleanup), which names exactly what was checked
 * and can be handed to a transfer (CURLOPT_CURLU); NULL with the reason in err if url does
 * not parse, has no host, or carries a user name or password. *out is then cleared. */
CURLU *origin_parse(const char *url, struct origin *out, char *err, size_t errlen);

/* Resolves reference (a Location header's value) against the absolute URL base, with
 * libcurl's parser: the resulting URL (new) and its origin in *out. The spelling is the
 * reference's own when it names a host ("http://h/", "//h/"), else base's. NULL with the
 * reason in err when either does not parse. */
char *origin_resolve(const char *base, const char *reference, struct origin *out, char *err,
                     size_t errlen);

/* Frees o's strings and zeroes it. Accepts a zeroed origin. */
void origin_clear(struct origin *o);

/* Writes "scheme://host:port" into buf (len bytes, cut if needed) and returns buf. The host
 * comes from a URL someone else may have written: escape it before logging. */
const char *origin_format(const struct origin *o, char *buf, size_t len);

/* Adds the origin of url (a configured base URL) to l: 0, or -1 with the reason in err. */
int origin_list_add(struct origin_list *l, const char *url, char *err, size_t errlen);
/* Empties l. Accepts an empty list. */
void origin_list_clear(struct origin_list *l);
/* Whether o is one of l's origins, spelled as configured or as curl normalises it. */
int origin_list_allows(const struct origin_list *l, const struct origin *o);

#endif
