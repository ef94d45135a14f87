/* Parsing untrusted HTML with gumbo, safely: a cheap scan first refuses what would make
 * gumbo slow (deep nesting, tags with many attributes, floods of stray end tags) and
 * anything that is not UTF-8 text; then gumbo parses what is left, keeping no error list.
 * Knows nothing of any site; lib/dom.h reads the tree it builds. */
#ifndef MOVIESD_HTML_H
#define MOVIESD_HTML_H

#include <gumbo.h>
#include <stddef.h>

/* Real pages nest under 100 levels; gumbo's cost grows with depth squared, so anything much
 * deeper is hostile or broken and is refused before parsing. */
#define HTML_MAX_DEPTH 128
/* Each end tag that closes nothing costs gumbo a search of its open elements; real pages
 * have a handful of them. */
#define HTML_MAX_STRAY_END_TAGS 4096
/* Gumbo's cost also grows with the square of one tag's attribute count; real tags carry a
 * handful. */
#define HTML_MAX_ATTRIBUTES 256

/* Parses len bytes of html into *out (new; free with html_free). Refuses, with -1, *out
 * NULL and the reason in err: more than UINT_MAX bytes, bytes that are not UTF-8 text (a
 * NUL counts as not text), or a page html_nesting_depth puts past HTML_MAX_DEPTH. */
int html_parse(const char *html, size_t len, GumboOutput **out, char *err, size_t errlen);
/* Frees a parse. Accepts NULL. */
void html_free(GumboOutput *out);

/* The deepest element nesting a cheap tag scan finds (close to the depth gumbo's stack of
 * open elements reaches). The scan stops past HTML_MAX_DEPTH, and reports more than
 * HTML_MAX_DEPTH for a tag with more than HTML_MAX_ATTRIBUTES attributes or a page with
 * more than HTML_MAX_STRAY_END_TAGS end tags that close nothing. */
size_t html_nesting_depth(const char *html, size_t len);

/* Whether c is HTML whitespace: space, tab, LF, CR or FF. */
int html_is_space(char c);

#endif
