/* Small helpers over gumbo's tree. Text is gathered into a growable buffer, then turned
 * into the one-line, trimmed strings the extractors keep. */
#include "dom.h"

#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "util.h"

/* A growable byte buffer, always NUL-terminated once something was added. */
struct buf {
    char *s;
    size_t n, cap;
};

/* Appends len bytes of s. */
static void buf_add(struct buf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        b->cap = (b->n + len + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

/* Length of the trimmable character at p (HTML whitespace, U+00A0, U+3000), or 0. */
static size_t blank_at(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    if (p < end && html_is_space(*p))
        return 1;
    if (end - p >= 2 && u[0] == 0xC2 && u[1] == 0xA0)
        return 2;
    if (end - p >= 3 && u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80)
        return 3;
    return 0;
}

/* Length of a trimmable character ending just before end, or 0. */
static size_t blank_before(const char *start, const char *end)
{
    for (size_t n = 1; n <= 3 && (size_t)(end - start) >= n; n++)
        if (blank_at(end - n, end) == n)
            return n;
    return 0;
}

/* Length of the invisible mark at p, or 0: U+200B (ZERO WIDTH SPACE), U+200E and U+200F
 * (LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK) and U+FEFF (ZERO WIDTH NO-BREAK SPACE, a BOM).
 * Douban's text carries them (a title ending in U+200E); no reader of the API wants them. */
static size_t invisible_at(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    if (end - p < 3)
        return 0;
    if (u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0x8B || u[2] == 0x8E || u[2] == 0x8F))
        return 3;
    return u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
}

/* Removes the invisible marks from the len bytes at s, in place; returns the length left. */
static size_t drop_invisible(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t mark = invisible_at(s + i, s + len);
        if (mark > 0)
            i += mark;
        else
            s[o++] = s[i++];
    }
    return o;
}

/* Drops the invisible marks of [s, s+len), then the blanks at both ends: in that order, so
 * that a mark outside a blank does not shield it. */
char *dom_trimmed(const char *s, size_t len)
{
    char *copy = xstrndup(s, len);
    const char *start = copy, *end = copy + drop_invisible(copy, len);
    for (size_t n; (n = blank_at(start, end)) > 0;)
        start += n;
    for (size_t n; (n = blank_before(start, end)) > 0;)
        end -= n;
    size_t kept = (size_t)(end - start);
    if (kept == 0) {
        free(copy);
        return NULL;
    }
    memmove(copy, start, kept);
    copy[kept] = '\0';
    return copy;
}

/* Whether n is an element (a <template> is one too). */
static int is_element(const GumboNode *n)
{
    return n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE;
}

/* Whether n is an element with the given tag. */
static int is_tag(const GumboNode *n, GumboTag tag)
{
    return is_element(n) && n->v.element.tag == tag;
}

/* Whether n holds text of the page (not a comment). */
static int is_text(const GumboNode *n)
{
    return n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
           n->type == GUMBO_NODE_CDATA;
}

/* n's next sibling, or NULL. */
static const GumboNode *next_sibling(const GumboNode *n)
{
    const GumboNode *parent = n->parent;
    if (parent == NULL || !is_element(parent))
        return NULL;
    const GumboVector *kids = &parent->v.element.children;
    size_t next = n->index_within_parent + 1;
    return next < kids->length ? kids->data[next] : NULL;
}

/* The node after n in document order, staying under root; n's own subtree is skipped
 * unless descend. */
static const GumboNode *next_node(const GumboNode *root, const GumboNode *n, int descend)
{
    if (descend && is_element(n) && n->v.element.children.length > 0)
        return n->v.element.children.data[0];
    for (; n != root && n != NULL; n = n->parent) {
        const GumboNode *sib = next_sibling(n);
        if (sib)
            return sib;
    }
    return NULL;
}

/* Looks the attribute up in an element's list. */
const char *dom_attr(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = n && is_element(n)
                                  ? gumbo_get_attribute(&n->v.element.attributes, name)
                                  : NULL;
    return a ? a->value : NULL;
}

/* Whether element n matches sel. */
static int matches(const GumboNode *n, const struct dom_sel *sel)
{
    if (!is_element(n) || (sel->tag != GUMBO_TAG_LAST && n->v.element.tag != sel->tag))
        return 0;
    if (sel->attr == NULL)
        return 1;
    const char *have = dom_attr(n, sel->attr);
    if (have == NULL)
        return 0;
    size_t len;
    for (const char *p = sel->value, *w; (w = words_next(&p, " ", &len)) != NULL;)
        if (!words_contain(have, " \t\n\r\f", w, len))
            return 0;
    return 1;
}

/* Walks the nodes under root in document order from after's next. */
const GumboNode *dom_find(const GumboNode *root, const GumboNode *after,
                          const struct dom_sel *sel)
{
    if (root == NULL)
        return NULL;
    const GumboNode *n = after ? next_node(root, after, 0) : next_node(root, root, 1);
    for (; n != NULL; n = next_node(root, n, 1))
        if (matches(n, sel))
            return n;
    return NULL;
}

/* Appends n's text (n itself if a text node, else every text under it) to b. */
static void add_text(struct buf *b, const GumboNode *n)
{
    for (const GumboNode *t = n; t != NULL; t = next_node(n, t, 1))
        if (is_text(t))
            buf_add(b, t->v.text.text, strlen(t->v.text.text));
}

/* The text of b's bytes on one line: runs of whitespace become one space, ends trimmed.
 * Frees b's bytes; returns a new string or NULL if blank. */
static char *buf_line(struct buf *b)
{
    /* Marks go first: the spaces on both sides of one are a single run. */
    b->n = b->s ? drop_invisible(b->s, b->n) : 0;
    size_t o = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (html_is_space(b->s[i])) {
            if (o > 0 && b->s[o - 1] == ' ')
                continue;
            b->s[o++] = ' ';
        } else {
            b->s[o++] = b->s[i];
        }
    }
    char *line = b->s ? dom_trimmed(b->s, o) : NULL;
    free(b->s);
    *b = (struct buf){0};
    return line;
}

/* The trimmed attribute value. */
char *dom_attr_text(const GumboNode *n, const char *name)
{
    const char *v = dom_attr(n, name);
    return v ? dom_trimmed(v, strlen(v)) : NULL;
}

/* The text under n, on one line. */
char *dom_text(const GumboNode *n)
{
    struct buf b = {0};
    if (n)
        add_text(&b, n);
    return buf_line(&b);
}

/* The text of n's next siblings up to a <stop>, on one line. */
char *dom_text_after(const GumboNode *n, GumboTag stop)
{
    struct buf b = {0};
    for (const GumboNode *sib = n ? next_sibling(n) : NULL; sib && !is_tag(sib, stop);
         sib = next_sibling(sib))
        add_text(&b, sib);
    return buf_line(&b);
}

/* The text under n split at <br>, each line trimmed. */
char *dom_text_lines(const GumboNode *n)
{
    struct buf all = {0}, line = {0};
    for (const GumboNode *t = n; t != NULL;) {
        int br = is_tag(t, GUMBO_TAG_BR);
        if (is_text(t))
            buf_add(&line, t->v.text.text, strlen(t->v.text.text));
        t = next_node(n, t, 1);
        if (br || t == NULL) {
            char *p = line.s ? dom_trimmed(line.s, line.n) : NULL;
            if (p) {
                if (all.n)
                    buf_add(&all, "\n", 1);
                buf_add(&all, p, strlen(p));
                free(p);
            }
            line.n = 0;
        }
    }
    free(line.s);
    return all.s;
}

/* The text under n, byte for byte. */
char *dom_raw_text(const GumboNode *n)
{
    struct buf b = {0};
    if (n)
        add_text(&b, n);
    return b.s;
}
