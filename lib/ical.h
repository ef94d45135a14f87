/* A city's movies document as an iCalendar (RFC 5545): one all-day event per movie whose
 * release day is known. A pure function of the document: the same bytes for the same
 * answer, so the calendar's ETag changes only when the answer does. */
#ifndef MOVIESD_ICAL_H
#define MOVIESD_ICAL_H

#include <jansson.h>

#include "textbuf.h"
#include "util.h"

/* The calendar of doc (a /movies document, borrowed; NULL or malformed parts give fewer
 * events, never a broken calendar), new. refresh_seconds > 0 is announced as the
 * subscription's refresh interval. */
struct blob *ical_render(const json_t *doc, long refresh_seconds);

/* Appends s as a TEXT value: backslash, semicolon and comma escaped, a line break (LF, CR
 * or CRLF) as \n, other control characters and bytes that are not well-formed UTF-8 left
 * out. */
void ical_escape(struct textbuf *out, const char *s);

/* Appends the content line line[0..len) folded to lines of at most 75 octets (a folded
 * line begins with a space, which counts), never inside a UTF-8 sequence, each ended by
 * CRLF. */
void ical_fold(struct textbuf *out, const char *line, size_t len);

/* The day after the ISO date "YYYY-MM-DD" as "YYYYMMDD" in next, and the date itself so
 * in day. 0, or -1 when iso is not a real date. */
int ical_day_and_next(const char *iso, char day[9], char next[9]);

#endif
