/* A city's movies document as an Atom feed (RFC 4287) and as an RSS 2.0 feed: one entry per
 * movie, in the listing's order. Pure functions of the document (and the daemon's public
 * base URL), so each feed's ETag changes only when the answer does.
 *
 * Ids are tag URIs (RFC 4151) of the moviesd tagging entity, tag:moviesd,2026:movies/<city>
 * for a feed and .../<city>/<movie id> for an entry: absolute, stable across scrapes,
 * restarts, replicas and hosts, and taken neither from the client's Host header nor from
 * the deployment's address, which may change without the entries changing. */
#ifndef MOVIESD_FEED_H
#define MOVIESD_FEED_H

#include <jansson.h>

#include "textbuf.h"
#include "util.h"

/* The feed of doc (a /movies document, borrowed; NULL or malformed parts give fewer
 * entries, never a broken document), new. base is the daemon's public base URL
 * ("https://host[:port]", no trailing slash) or "" when unknown: links to the daemon (its
 * poster proxy /posters/<id>, the feed itself) are then relative, and the RSS feed, whose
 * enclosures must be absolute, has none. ttl_seconds > 0 goes into RSS's <ttl>. */
struct blob *feed_atom(const json_t *doc, const char *base);
struct blob *feed_rss(const json_t *doc, const char *base, long ttl_seconds);

/* Appends s as XML character data or an attribute value: & < > " ' escaped; bytes that are
 * not well-formed UTF-8 and characters XML 1.0 forbids (controls but TAB, LF and CR;
 * U+FFFE, U+FFFF) left out. */
void feed_xml_escape(struct textbuf *out, const char *s);

/* Shared with the calendar. */
/* Whether id is a movie id as the API gives it: 1 to 20 digits. */
int feed_id_valid(const char *id);
/* Whether url is an http(s) URL without a byte that would need escaping anywhere. */
int feed_url_plain(const char *url);
/* A movie's facts, one a line: its release date (with_date), genres, regions, directors
 * and wish count, those known; "" when none is. New. */
char *feed_movie_facts(const json_t *movie, int with_date);
/* The title of a city's calendar and feeds, with the city's name (its slug if unnamed). New. */
char *feed_title(const json_t *doc);

#endif
