/* The request header fields the API acts on, read as RFC 9110 writes them: Accept-Encoding
 * (12.5.3), to choose between the plain and the gzip body, and If-None-Match (13.1.2), to
 * answer 304. Pure functions of the field values. */
#ifndef MOVIESD_HEADERS_H
#define MOVIESD_HEADERS_H

/* Whether a client sending accept_encoding (a field value, the values of several fields
 * joined by commas; NULL: no such field) is to get gzip rather than the plain body: gzip
 * (or x-gzip, or * when neither is listed) has a q-value above 0, and at least that of
 * identity when identity (or *) is weighted at all. Without the field the plain body is
 * sent: a client that does not say it takes gzip gets what every client reads. Names are
 * case-insensitive; a coding listed twice counts with its higher q-value; an element
 * whose q-value is malformed is ignored. */
int headers_accept_gzip(const char *accept_encoding);

/* Whether if_none_match (a field value; NULL: no such field) names etag (a quoted
 * entity-tag) by the weak comparison, W/ prefixes aside, or is "*". */
int headers_etag_match(const char *if_none_match, const char *etag);

#endif
