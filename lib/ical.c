/* iCalendar rendering of a city's coming-soon movies. */
#include "ical.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "douban.h"
#include "feed.h"

/* Lines longer than this many octets, CRLF excluded, are folded (RFC 5545 3.1). */
#define FOLD_OCTETS 75

void ical_escape(struct textbuf *out, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            /* Whole sequences only: the folding relies on well-formed UTF-8. */
            size_t n = utf8_sequence(p, strlen(p));
            if (n > 0)
                textbuf_add(out, p, n);
            p += n > 0 ? n - 1 : 0;
        } else if (c == '\\' || c == ';' || c == ',') {
            char esc[2] = {'\\', (char)c};
            textbuf_add(out, esc, 2);
        } else if (c == '\r' || c == '\n') {
            if (c == '\r' && p[1] == '\n')
                p++;
            textbuf_add(out, "\\n", 2);
        } else if (c < 0x20 || c == 0x7F) {
            continue;   /* TEXT has no place for them (HTAB included, to keep lines plain) */
        } else {
            textbuf_add(out, p, 1);
        }
    }
}

void ical_fold(struct textbuf *out, const char *line, size_t len)
{
    size_t room = FOLD_OCTETS;
    while (len > room) {
        size_t cut = room;
        /* Back to the start of the sequence the cut would split: a continuation byte is
         * 10xxxxxx. A sequence is at most 4 bytes, so the cut stays well past 0. */
        while (cut > 0 && ((unsigned char)line[cut] & 0xC0) == 0x80)
            cut--;
        if (cut == 0)
            cut = room;   /* not UTF-8 at all: octets are all RFC 5545 counts */
        textbuf_add(out, line, cut);
        textbuf_add(out, "\r\n ", 3);
        line += cut;
        len -= cut;
        room = FOLD_OCTETS - 1;
    }
    textbuf_add(out, line, len);
    textbuf_add(out, "\r\n", 2);
}

/* Days in month m of year y. */
static int days_in(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int ical_day_and_next(const char *iso, char day[9], char next[9])
{
    int y, m, d;
    char tail;
    if (iso == NULL || strlen(iso) != 10 || iso[4] != '-' || iso[7] != '-' ||
        sscanf(iso, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1000 || m < 1 || m > 12 ||
        d < 1 || d > days_in(y, m))
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (iso[i] < '0' || iso[i] > '9'))
            return -1;
    /* The modulos only tell the compiler what the checks above already ensure. */
    snprintf(day, 9, "%04u%02u%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
    if (++d > days_in(y, m)) {
        d = 1;
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
    if (y > 9999)
        return -1;
    snprintf(next, 9, "%04u%02u%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
    return 0;
}

/* "2026-11-25T21:34:00Z" as the UTC DATE-TIME "20261125T213400Z"; 0, or -1. */
static int utc_stamp(const char *iso, char out[17])
{
    static const char shape[] = "0000-00-00T00:00:00Z";
    if (iso == NULL || strlen(iso) != sizeof shape - 1)
        return -1;
    size_t n = 0;
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == '0') {
            if (iso[i] < '0' || iso[i] > '9')
                return -1;
            out[n++] = iso[i];
        } else if (iso[i] != shape[i]) {
            return -1;
        } else if (shape[i] == 'T' || shape[i] == 'Z') {
            out[n++] = shape[i];
        }
    }
    out[n] = '\0';
    return 0;
}

/* One property "NAME:value" (value already in its escaped form), folded. */
static void property(struct textbuf *out, const char *name, const char *value)
{
    struct textbuf line = {0};
    textbuf_puts(&line, name);
    textbuf_add(&line, ":", 1);
    textbuf_puts(&line, value);
    ical_fold(out, line.data, line.len);
    textbuf_free(&line);
}

/* One TEXT property, escaped and folded. */
static void text_property(struct textbuf *out, const char *name, const char *text)
{
    struct textbuf value = {0};
    ical_escape(&value, text);
    property(out, name, value.data ? value.data : "");
    textbuf_free(&value);
}

/* The event of one movie, if its release day is known. */
static void event(struct textbuf *out, const char *city, const char *stamp, const json_t *movie)
{
    const char *id = json_string_value(json_object_get(movie, "id"));
    const char *precision = json_string_value(json_object_get(movie, "release_date_precision"));
    char day[9], next[9];
    if (!feed_id_valid(id) || precision == NULL || strcmp(precision, "day") != 0 ||
        ical_day_and_next(json_string_value(json_object_get(movie, "release_date_iso")), day,
                          next) != 0)
        return;
    textbuf_puts(out, "BEGIN:VEVENT\r\n");
    char *uid = xasprintf("douban-%s-%s@moviesd", id, city);
    text_property(out, "UID", uid);
    free(uid);
    property(out, "DTSTAMP", stamp);
    property(out, "DTSTART;VALUE=DATE", day);
    property(out, "DTEND;VALUE=DATE", next);
    const char *title = json_string_value(json_object_get(movie, "title"));
    text_property(out, "SUMMARY", title ? title : id);
    char *description = feed_movie_facts(movie, 0);
    if (description[0] != '\0')
        text_property(out, "DESCRIPTION", description);
    free(description);
    const char *url = json_string_value(json_object_get(movie, "url"));
    if (feed_url_plain(url))
        property(out, "URL", url);
    /* A release day occupies no one's time. */
    textbuf_puts(out, "TRANSP:TRANSPARENT\r\n");
    textbuf_puts(out, "END:VEVENT\r\n");
}

struct blob *ical_render(const json_t *doc, long refresh_seconds)
{
    struct textbuf out = {0};
    const char *city = json_string_value(json_object_get(doc, "city"));
    if (city == NULL || !douban_city_valid(city))
        city = "";
    char stamp[17];
    if (utc_stamp(json_string_value(json_object_get(doc, "fetched_at")), stamp) != 0)
        strcpy(stamp, "19700101T000000Z");
    textbuf_puts(&out, "BEGIN:VCALENDAR\r\n"
                       "VERSION:2.0\r\n"
                       "PRODID:-//moviesd//coming soon//ZH\r\n"
                       "CALSCALE:GREGORIAN\r\n"
                       "METHOD:PUBLISH\r\n");
    char *name = feed_title(doc);
    text_property(&out, "X-WR-CALNAME", name);
    text_property(&out, "NAME", name);
    free(name);
    if (refresh_seconds > 0) {
        char value[48];
        snprintf(value, sizeof value, "PT%ldS", refresh_seconds);
        property(&out, "REFRESH-INTERVAL;VALUE=DURATION", value);
        property(&out, "X-PUBLISHED-TTL", value);
    }
    const json_t *movies = json_object_get(doc, "movies");
    size_t i;
    const json_t *movie;
    json_array_foreach(movies, i, movie)
        if (json_is_object(movie))
            event(&out, city, stamp, movie);
    textbuf_puts(&out, "END:VCALENDAR\r\n");
    return textbuf_blob(&out);
}
