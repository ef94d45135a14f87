/* Reading the tree html_parse builds: finding elements by tag and attribute words, and
 * their text and attributes as trimmed strings. Knows nothing of any site. Traversal is
 * iterative, so a tree of any depth costs no stack. Every node argument may be NULL (the
 * result of a find that found nothing): the answer is then NULL too.
 *
 * Every string given as text (all but dom_attr and dom_raw_text) goes through dom_trimmed:
 * it carries no invisible marks (U+200B, U+200E, U+200F, U+FEFF) anywhere, and text that
 * was only marks and blanks is NULL. */
#ifndef MOVIESD_DOM_H
#define MOVIESD_DOM_H

#include <gumbo.h>
#include <stddef.h>

/* What to look for: an element by tag (GUMBO_TAG_LAST: any) and, unless attr is NULL, an
 * attribute whose space-separated words include every word of value (class="item mod "
 * matches "item" and "mod item"; an empty value matches any value). */
struct dom_sel {
    GumboTag tag;
    const char *attr, *value;
};
/* A selector literal: DOM_SEL(DIV, "class", "item"), DOM_SEL(LAST, "id", "info"). */
#define DOM_SEL(t, a, v) (&(const struct dom_sel){GUMBO_TAG_##t, (a), (v)})

/* The first element under root (root itself excluded) matching sel, in document order,
 * after the subtree of after (NULL: from the start). Borrowed from the tree. */
const GumboNode *dom_find(const GumboNode *root, const GumboNode *after,
                          const struct dom_sel *sel);

/* An element's attribute value (borrowed, as in the page), or NULL. */
const char *dom_attr(const GumboNode *n, const char *name);
/* An element's attribute value trimmed of blanks (new), or NULL if absent or blank. */
char *dom_attr_text(const GumboNode *n, const char *name);

/* The text under n (n itself if a text node) on one line: runs of whitespace become one
 * space, blanks trimmed at both ends. New, or NULL if blank. */
char *dom_text(const GumboNode *n);
/* The text of the siblings after n, up to the first <stop> element (GUMBO_TAG_LAST: up to
 * the last sibling), as dom_text gives it. New, or NULL if blank. */
char *dom_text_after(const GumboNode *n, GumboTag stop);
/* The text under n with each <br> a line break: every line trimmed of blanks, blank lines
 * dropped, the rest joined with "\n". New, or NULL if blank. */
char *dom_text_lines(const GumboNode *n);
/* Every byte of text under n (script and CDATA content included) as the page has it. New,
 * or NULL if there is none. */
char *dom_raw_text(const GumboNode *n);

/* A copy of the len bytes at s without the invisible marks U+200B (zero width space),
 * U+200E, U+200F (left-to-right, right-to-left mark) and U+FEFF (BOM) wherever they are,
 * then without leading and trailing blanks: HTML whitespace, U+00A0 and U+3000 (a page's
 * indentation). Other text is kept byte for byte. New, or NULL if nothing is left. */
char *dom_trimmed(const char *s, size_t len);

#endif
