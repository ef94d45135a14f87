/* The HTML page of GET /: a city picker (the city table), and for one city its movies as
 * cards, rendered from the city's answer document. Everything from the document or the
 * request is escaped; the page loads nothing but /page.css and /page.js from its own
 * origin, so that a Content-Security-Policy of default-src 'self' holds. */
#ifndef MOVIESD_PAGE_H
#define MOVIESD_PAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The page (new string). city NULL: the picker alone. Otherwise city is the slug asked for
 * (a valid one), doc (borrowed) its movies document, or NULL with notice the message to show
 * instead (an error's). */
char *page_render(const char *city, const json_t *doc, const char *notice);

/* Appends text escaped for HTML text and quoted attribute values to out (& < > " '). */
void page_escape(FILE *out, const char *text);

#endif
