/* Reading Douban's pages: a cheap nesting scan that refuses hostile pages before gumbo sees
 * them, small DOM helpers over gumbo's tree, then the listing and movie page extractors.
 * Page structure and its traps: shared/douban/STRUCTURE.md. */
#include "douban.h"

#include <gumbo.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------------------------------
 * The nesting scan.
 *
 * gumbo walks its stack of open elements for almost every tag (scope checks), so its time
 * grows with depth times tags: 20000 nested <div>s take 0.8 s, 100000 take ~20 s. The scan
 * below estimates the depth of gumbo's stack without building a tree, and the parsers
 * refuse anything deeper than DOUBAN_MAX_DEPTH.
 *
 * A plain "start tags minus end tags" count is easy to fool: stray end tags ("<div></x>"
 * repeated), "<div/>" (the slash means nothing on an HTML element), or an end tag that the
 * tree builder ignores because a block element sits above its target ("<span><div></span>").
 * So the scan keeps a small stack of what is open and follows the HTML5 tree builder's end
 * tag rules: an end tag closes the nearest element of its name unless a "special" element
 * (or, for block end tags, a scope barrier) comes first; formatting elements closed on the
 * way stay counted, because gumbo re-opens them before the next text. Implied closes (a
 * <p> ended by a <div>) are not modelled, so the scan errs high on sloppy markup; implied
 * opens (<tbody>, <tr>) make gumbo at most a few levels per table deeper than the scan
 * says, a bounded factor. The real pages measure 9 to 22; gumbo's own tree is 10 to 16.
 * Comments, <!...> and <?...> are skipped by the tokenizer's rules, and the content of
 * script, style, textarea, title and the other raw-text elements is skipped outside
 * svg/math, where it is text to gumbo.
 *
 * Known gaps, for crafted input only: inside <select> and after <frameset> gumbo ignores
 * start tags the scan still acts on (raw-text elements, svg), so the two can tokenize what
 * follows differently. The fetch size cap and gumbo's bounded error list limit what such a
 * page can cost. The scan stops as soon as it passes DOUBAN_MAX_DEPTH, so it returns
 * DOUBAN_MAX_DEPTH + 1 for anything deeper.
 * ------------------------------------------------------------------------------------- */

enum {
    TC_VOID = 1,          /* never stays open */
    TC_SPECIAL = 2,       /* the spec's "special" category */
    TC_BARRIER = 4,       /* ends an "element in scope" search */
    TC_FORMATTING = 8,    /* re-opened by the tree builder after an implied close */
    TC_BREAKOUT = 16,     /* closes svg/math content */
    TC_RAW = 32,          /* content is text up to the matching end tag */
    TC_FOREIGN = 64,      /* svg, math */
    TC_INTEGRATION = 128, /* inside svg/math, its content is HTML again */
};

/* Tag names of each class, as the HTML5 tree builder (and gumbo 0.10.1) knows them. */
static const struct {
    unsigned char cls;
    const char *names;
} tag_classes[] = {
    {TC_VOID, "area base basefont bgsound br col embed frame hr image img input keygen link "
              "meta param source track wbr"},
    {TC_SPECIAL, "address applet area article aside base basefont bgsound blockquote body br "
                 "button caption center col colgroup dd details dir div dl dt embed fieldset "
                 "figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header "
                 "hgroup hr html iframe img input isindex li link listing main marquee menu "
                 "menuitem meta nav noembed noframes noscript object ol p param plaintext pre "
                 "script section select style summary table tbody td template textarea tfoot "
                 "th thead title tr ul wbr xmp"},
    {TC_BARRIER, "applet caption html table td th marquee object template"},
    {TC_FORMATTING, "a b big code em font i nobr s small strike strong tt u"},
    {TC_BREAKOUT, "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 "
                  "h6 head hr i img li listing menu meta nobr ol p pre ruby s small span "
                  "strong strike sub sup table tt u ul var"},
    {TC_RAW, "script style textarea title xmp iframe noembed noframes plaintext"},
    {TC_FOREIGN, "svg math"},
    {TC_INTEGRATION, "foreignobject desc title mi mo mn ms mtext annotation-xml"},
};

struct open_element {
    GumboTag tag;
    unsigned char cls;
    unsigned char foreign;    /* in the svg/math namespace */
    const char *name;         /* for GUMBO_TAG_UNKNOWN: the name in the page */
    size_t len;
};

struct scan {
    unsigned char cls[GUMBO_TAG_LAST + 1];
    struct open_element open[DOUBAN_MAX_DEPTH + 1];
    size_t depth;             /* entries in open */
    size_t reopened;          /* formatting elements closed implicitly: gumbo re-opens them */
    size_t stray;             /* end tags that closed nothing */
    size_t max;
};

/* Whether c is HTML whitespace. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Whether c is an ASCII letter. */
static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The next word at *s (words are separated by any of seps), its length in *len, or NULL at
 * the end; *s moves past it. */
static const char *next_word(const char **s, const char *seps, size_t *len)
{
    const char *w = *s + strspn(*s, seps);
    *len = strcspn(w, seps);
    *s = w + *len;
    return *len ? w : NULL;
}

/* Whether the list of words separated by seps has the word w (wlen bytes). */
static int has_word(const char *list, const char *seps, const char *w, size_t wlen)
{
    size_t n;
    for (const char *p = list, *word; (word = next_word(&p, seps, &n)) != NULL;)
        if (n == wlen && strncmp(word, w, n) == 0)
            return 1;
    return 0;
}

/* The first occurrence of needle in [p, end), or NULL. */
static const char *find_bytes(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    while ((size_t)(end - p) >= n) {
        const char *q = memchr(p, needle[0], (size_t)(end - p) - n + 1);
        if (q == NULL)
            return NULL;
        if (memcmp(q, needle, n) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

/* Whether [p, end) starts with s (case-insensitively). */
static int starts_with(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && strncasecmp(p, s, n) == 0;
}

/* Just past the '>' ending a bogus comment or doctype, or end. */
static const char *skip_to_gt(const char *p, const char *end)
{
    const char *gt = memchr(p, '>', (size_t)(end - p));
    return gt ? gt + 1 : end;
}

/* Just past a comment whose "<!--" ends at p, by the tokenizer's rules: "<!-->" and
 * "<!--->" are whole comments, and "--!>" closes one as "-->" does. */
static const char *skip_comment(const char *p, const char *end)
{
    if (p < end && *p == '>')
        return p + 1;
    if (end - p >= 2 && p[0] == '-' && p[1] == '>')
        return p + 2;
    for (;;) {
        const char *dashes = find_bytes(p, end, "--");
        if (dashes == NULL)
            return end;
        p = dashes + 2;
        while (p < end && *p == '-')
            p++;
        if (p < end && *p == '>')
            return p + 1;
        if (end - p >= 2 && p[0] == '!' && p[1] == '>')
            return p + 2;
    }
}

/* The "</name" (followed by space, '/' or '>') ending raw text that starts at p, or end. */
static const char *raw_text_end(const char *p, const char *end, const char *name, size_t len)
{
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p) > len + 2 && p[1] == '/' && strncasecmp(p + 2, name, len) == 0 &&
            (is_space(p[2 + len]) || p[2 + len] == '/' || p[2 + len] == '>'))
            return p;
        p++;
    }
    return end;
}

/* Whether the current node takes svg/math content rules (not HTML ones). */
static int in_foreign(const struct scan *s)
{
    const struct open_element *top = s->depth ? &s->open[s->depth - 1] : NULL;
    return top && top->foreign && !(top->cls & TC_INTEGRATION);
}

/* Records the depth reached (formatting elements that will be re-opened included). */
static void note_depth(struct scan *s, size_t extra)
{
    if (s->depth + s->reopened + extra > s->max)
        s->max = s->depth + s->reopened + extra;
}

/* Opens an element; past the limit the scan is over anyway. */
static void push(struct scan *s, GumboTag tag, int foreign, const char *name, size_t len)
{
    if (s->depth == DOUBAN_MAX_DEPTH + 1) {
        s->max = DOUBAN_MAX_DEPTH + 1;
        return;
    }
    s->open[s->depth++] = (struct open_element){tag, s->cls[tag], (unsigned char)foreign,
                                                name, len};
    note_depth(s, 0);
}

/* Whether open element e is the one an end tag (tag, name) closes. Any heading closes any
 * heading, as in the tree builder. */
static int closes(const struct open_element *e, GumboTag tag, const char *name, size_t len)
{
    if (e->tag == tag)
        return tag != GUMBO_TAG_UNKNOWN || (e->len == len && strncasecmp(e->name, name, len) == 0);
    return !e->foreign && tag >= GUMBO_TAG_H1 && tag <= GUMBO_TAG_H6 &&
           e->tag >= GUMBO_TAG_H1 && e->tag <= GUMBO_TAG_H6;
}

/* Whether e stops the search for what end tag `tag` closes. Block ("special") end tags look
 * through anything but scope barriers (plus ol/ul for </li>, button for </p>); any other end
 * tag gives up at the first special element. */
static int stops_search(const struct scan *s, const struct open_element *e, GumboTag tag)
{
    if (e->foreign)
        return e->cls & TC_INTEGRATION;
    if (!(s->cls[tag] & TC_SPECIAL))
        return e->cls & TC_SPECIAL;
    return (e->cls & TC_BARRIER) ||
           (tag == GUMBO_TAG_LI && (e->tag == GUMBO_TAG_OL || e->tag == GUMBO_TAG_UL)) ||
           (tag == GUMBO_TAG_P && e->tag == GUMBO_TAG_BUTTON);
}

/* An end tag: closes what the tree builder would close, or nothing. */
static void end_tag(struct scan *s, const char *name, size_t len)
{
    GumboTag tag = gumbo_tagn_enum(name, (unsigned)len);
    /* </html>, </body> and </br> never pop anything. */
    if (tag == GUMBO_TAG_HTML || tag == GUMBO_TAG_BODY || tag == GUMBO_TAG_BR)
        return;
    for (size_t i = s->depth; i-- > 0;) {
        struct open_element *e = &s->open[i];
        if (closes(e, tag, name, len)) {
            if (tag == GUMBO_TAG_FORM) {   /* </form> removes the form alone */
                memmove(e, e + 1, (s->depth - i - 1) * sizeof *e);
                s->depth--;
                return;
            }
            for (size_t k = i + 1; k < s->depth; k++)
                if (!s->open[k].foreign && (s->open[k].cls & TC_FORMATTING))
                    s->reopened++;
            s->depth = i;
            return;
        }
        if (stops_search(s, e, tag))
            break;
    }
    if (++s->stray > DOUBAN_MAX_STRAY_END_TAGS)
        s->max = DOUBAN_MAX_DEPTH + 1;   /* as costly for gumbo as a page too deep */
}

/* A start tag; returns where scanning goes on (past raw text, for script and the like). */
static const char *start_tag(struct scan *s, const char *name, size_t len, int self_closing,
                             int font_breaks_out, const char *p, const char *end)
{
    GumboTag tag = gumbo_tagn_enum(name, (unsigned)len);
    unsigned char cls = s->cls[tag];
    if (in_foreign(s) && ((cls & TC_BREAKOUT) || (tag == GUMBO_TAG_FONT && font_breaks_out)))
        while (in_foreign(s))
            s->depth--;
    if (in_foreign(s)) {
        if (!self_closing)   /* only svg/math elements can close themselves */
            push(s, tag, 1, name, len);
        return p;
    }
    if (cls & TC_VOID)
        return p;
    if (cls & TC_FOREIGN) {
        if (!self_closing)
            push(s, tag, 1, name, len);
        return p;
    }
    if (cls & TC_RAW) {
        note_depth(s, 1);
        return raw_text_end(p, end, name, len);
    }
    push(s, tag, 0, name, len);
    return p;
}

/* Whether the attribute name (len bytes) is one that makes <font> leave svg/math. */
static int font_breakout_attribute(const char *name, size_t len)
{
    return (len == 5 && strncasecmp(name, "color", 5) == 0) ||
           (len == 4 && (strncasecmp(name, "face", 4) == 0 || strncasecmp(name, "size", 4) == 0));
}

/* A tag whose name starts at p: reads it and its attributes (quotes hide '>'), then opens
 * or closes. An unfinished tag at the end of the input is dropped, as gumbo drops it. */
static const char *read_tag(struct scan *s, const char *p, const char *end, int closing)
{
    const char *name = p;
    while (p < end && !is_space(*p) && *p != '/' && *p != '>')
        p++;
    size_t len = (size_t)(p - name);
    int self_closing = 0, font_attr = 0;
    size_t attributes = 0;
    for (;;) {
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            return end;
        if (*p == '>') {
            p++;
            break;
        }
        if (*p == '/') {
            if (++p < end && *p == '>') {
                self_closing = 1;
                p++;
                break;
            }
            continue;
        }
        if (++attributes > DOUBAN_MAX_ATTRIBUTES) {
            /* gumbo compares each attribute with the tag's others: quadratic, like depth. */
            s->max = DOUBAN_MAX_DEPTH + 1;
            return end;
        }
        const char *attr_name = p++;
        while (p < end && !is_space(*p) && *p != '/' && *p != '>' && *p != '=')
            p++;
        font_attr |= font_breakout_attribute(attr_name, (size_t)(p - attr_name));
        while (p < end && is_space(*p))
            p++;
        if (p == end || *p != '=')
            continue;
        for (p++; p < end && is_space(*p); p++)
            ;
        if (p < end && (*p == '"' || *p == '\'')) {
            const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
            if (q == NULL)
                return end;
            p = q + 1;
        } else {
            while (p < end && !is_space(*p) && *p != '>')
                p++;
        }
    }
    if (closing) {
        end_tag(s, name, len);
        return p;
    }
    return start_tag(s, name, len, self_closing, font_attr, p, end);
}

/* Markup at p (a '<'): returns where scanning goes on. */
static const char *markup(struct scan *s, const char *p, const char *end)
{
    const char *q = p + 1;
    if (q == end)
        return end;
    if (*q == '!') {
        if (starts_with(q + 1, end, "--"))
            return skip_comment(q + 3, end);
        if (in_foreign(s) && starts_with(q + 1, end, "[CDATA[")) {
            const char *close = find_bytes(q, end, "]]>");
            return close ? close + 3 : end;
        }
        return skip_to_gt(q, end);
    }
    if (*q == '?')
        return skip_to_gt(q, end);
    if (*q == '/') {
        q++;
        if (q == end)
            return end;
        if (*q == '>')
            return q + 1;
        return is_alpha(*q) ? read_tag(s, q, end, 1) : skip_to_gt(q, end);
    }
    return is_alpha(*q) ? read_tag(s, q, end, 0) : q;
}

/* The scan: how deep gumbo's stack of open elements may get on this page. */
size_t douban_nesting_depth(const char *html, size_t len)
{
    struct scan *s = xcalloc(1, sizeof *s);
    for (size_t i = 0; i < sizeof tag_classes / sizeof tag_classes[0]; i++) {
        size_t n;
        for (const char *p = tag_classes[i].names, *w; (w = next_word(&p, " ", &n)) != NULL;)
            s->cls[gumbo_tagn_enum(w, (unsigned)n)] |= tag_classes[i].cls;
    }
    s->cls[GUMBO_TAG_UNKNOWN] = 0;
    const char *p = html, *end = html + len;
    while (s->max <= DOUBAN_MAX_DEPTH && p < end &&
           (p = memchr(p, '<', (size_t)(end - p))) != NULL)
        p = markup(s, p, end);
    size_t max = s->max;
    free(s);
    return max;
}

/* ---------------------------------------------------------------------------------------
 * DOM helpers over gumbo's tree. Traversal is iterative: no recursion on page depth.
 * ------------------------------------------------------------------------------------- */

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

/* Length of the trimmable character at p (ASCII whitespace, U+00A0, U+3000), or 0. */
static size_t blank_at(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    if (p < end && is_space(*p))
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

/* A new copy of [s, s+len) without leading and trailing blanks; NULL if nothing is left. */
static char *trimmed(const char *s, size_t len)
{
    const char *end = s + len;
    for (size_t n; (n = blank_at(s, end)) > 0;)
        s += n;
    for (size_t n; (n = blank_before(s, end)) > 0;)
        end -= n;
    return end > s ? xstrndup(s, (size_t)(end - s)) : NULL;
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

/* An element's attribute value, or NULL. */
static const char *attr(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = is_element(n) ? gumbo_get_attribute(&n->v.element.attributes, name)
                                            : NULL;
    return a ? a->value : NULL;
}

/* What to look for: an element by tag (GUMBO_TAG_LAST: any) whose attribute has every
 * space-separated word of value among its own words (class="item mod " has "item"). */
struct sel {
    GumboTag tag;
    const char *attr, *value;
};
#define SEL(t, a, v) (&(const struct sel){GUMBO_TAG_##t, (a), (v)})

/* Whether element n matches sel. */
static int matches(const GumboNode *n, const struct sel *sel)
{
    if (!is_element(n) || (sel->tag != GUMBO_TAG_LAST && n->v.element.tag != sel->tag))
        return 0;
    if (sel->attr == NULL)
        return 1;
    const char *have = attr(n, sel->attr);
    if (have == NULL)
        return 0;
    size_t len;
    for (const char *p = sel->value, *w; (w = next_word(&p, " ", &len)) != NULL;)
        if (!has_word(have, " \t\n\r\f", w, len))
            return 0;
    return 1;
}

/* The first element under root (root excluded) matching sel, after the subtree of after
 * (NULL: from the start). */
static const GumboNode *find(const GumboNode *root, const GumboNode *after, const struct sel *sel)
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
        if (t->type == GUMBO_NODE_TEXT || t->type == GUMBO_NODE_WHITESPACE ||
            t->type == GUMBO_NODE_CDATA)
            buf_add(b, t->v.text.text, strlen(t->v.text.text));
}

/* The text of b's bytes on one line: runs of whitespace become one space, ends trimmed.
 * Frees b's bytes; returns a new string or NULL if blank. */
static char *buf_line(struct buf *b)
{
    size_t o = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (is_space(b->s[i])) {
            if (o > 0 && b->s[o - 1] == ' ')
                continue;
            b->s[o++] = ' ';
        } else {
            b->s[o++] = b->s[i];
        }
    }
    char *line = b->s ? trimmed(b->s, o) : NULL;
    free(b->s);
    *b = (struct buf){0};
    return line;
}

/* An element's text on one line (new), or NULL if it is blank or n is NULL. */
static char *text_of(const GumboNode *n)
{
    struct buf b = {0};
    if (n)
        add_text(&b, n);
    return buf_line(&b);
}

/* An attribute's trimmed value (new), or NULL if absent or blank. */
static char *attr_of(const GumboNode *n, const char *name)
{
    const char *v = n ? attr(n, name) : NULL;
    return v ? trimmed(v, strlen(v)) : NULL;
}

/* Adds the trimmed non-empty items of a "a / b / c" list, each once, up to
 * DOUBAN_MAX_LIST_ITEMS: the check for repeats makes longer lists cost their square. */
static void add_split(struct strlist *out, const char *s)
{
    for (size_t seen = 0; s && *s && out->n < DOUBAN_MAX_LIST_ITEMS && seen < 2 * DOUBAN_MAX_LIST_ITEMS;
         seen++) {
        size_t n = strcspn(s, "/");
        char *item = trimmed(s, n);
        if (item && !strlist_contains(out, item))
            strlist_push_owned(out, item);
        else
            free(item);
        s += n + (s[n] == '/');
    }
}

/* Adds the text of every element under root matching sel, each once, up to
 * DOUBAN_MAX_LIST_ITEMS. */
static void add_texts(struct strlist *out, const GumboNode *root, const struct sel *sel)
{
    size_t seen = 0;
    for (const GumboNode *n = find(root, NULL, sel);
         n && out->n < DOUBAN_MAX_LIST_ITEMS && seen++ < 2 * DOUBAN_MAX_LIST_ITEMS;
         n = find(root, n, sel)) {
        char *t = text_of(n);
        if (t && !strlist_contains(out, t))
            strlist_push_owned(out, t);
        else
            free(t);
    }
}

/* ---------------------------------------------------------------------------------------
 * Pages.
 * ------------------------------------------------------------------------------------- */

/* gumbo's options. With max_errors at -1 (the default) gumbo copies its whole stack of open
 * elements into every parse error: 20000 nested <div>s (100 KB) took 21 s and 3.1 GB, 1 MB
 * of stray end tags under 390 <div>s 8 s and 800 MB. We never read the errors, so none are
 * kept: the same pages then take 0.8 s and 0.3 s (per MB) in a few MB. */
static GumboOptions parse_options(void)
{
    GumboOptions o = kGumboDefaultOptions;
    o.max_errors = 0;
    return o;
}

/* The offset of the first byte that is not part of valid UTF-8 text (a NUL counts as
 * invalid), or len. Douban serves UTF-8 only: anything else is a broken or foreign body. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (c == 0 || n == 0 || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4) || i + n > len)
            return i;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        /* Overlong three- and four-byte forms and UTF-16 surrogates. */
        if ((n == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0))) ||
            (n == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))))
            return i;
        i += n;
    }
    return len;
}

/* Refuses pages that are not UTF-8 text or too deep (or too big) for gumbo, else parses them. */
static enum douban_verdict parse_page(const char *html, size_t len, GumboOutput **out,
                                      char *err, size_t errlen)
{
    *out = NULL;
    if (len > UINT_MAX) {
        errorf(err, errlen, "the page is too large to parse (%zu bytes)", len);
        return DOUBAN_MALFORMED;
    }
    size_t bad = utf8_invalid_at((const unsigned char *)html, len);
    if (bad < len) {
        errorf(err, errlen, "the page is not UTF-8 text (byte %zu of %zu)", bad, len);
        return DOUBAN_MALFORMED;
    }
    size_t depth = douban_nesting_depth(html, len);
    if (depth > DOUBAN_MAX_DEPTH) {
        errorf(err, errlen, "the page nests elements deeper than %d levels, has a tag with more "
               "than %d attributes or more than %d stray end tags", DOUBAN_MAX_DEPTH,
               DOUBAN_MAX_ATTRIBUTES, DOUBAN_MAX_STRAY_END_TAGS);
        return DOUBAN_MALFORMED;
    }
    GumboOptions o = parse_options();
    *out = gumbo_parse_with_options(&o, html, len);
    if (*out == NULL || (*out)->root == NULL) {
        errorf(err, errlen, "the page could not be parsed");
        return DOUBAN_MALFORMED;
    }
    return DOUBAN_OK;
}

/* Frees a parse. */
static void free_page(GumboOutput *out)
{
    GumboOptions o = parse_options();
    if (out)
        gumbo_destroy_output(&o, out);
}

/* What a page without the expected anchor is: Douban's not-found page, its block or login
 * page, or a layout we do not know. */
static enum douban_verdict without_anchor(const GumboOutput *page, const char *html, size_t len,
                                          const char *anchor, char *err, size_t errlen)
{
    char *title = text_of(find(page->root, NULL, SEL(TITLE, NULL, NULL)));
    enum douban_verdict v = DOUBAN_CHANGED;
    if (title && strstr(title, "页面不存在")) {
        v = DOUBAN_NOT_FOUND;
        errorf(err, errlen, "Douban says the page does not exist");
    } else if ((title && strstr(title, "登录跳转页")) ||
               find_bytes(html, html + len, "有异常请求")) {
        v = DOUBAN_BLOCKED;
        errorf(err, errlen, "Douban answered its abnormal-requests or login page");
    } else {
        char shown[80];
        errorf(err, errlen, "no %s in the page (title \"%s\")", anchor,
            title ? log_escape(title, strlen(title), shown, sizeof shown) : "");
    }
    free(title);
    return v;
}

/* --- The listing ------------------------------------------------------------------------ */

/* Douban's genre names: a fixed list, unlike regions. */
static const char genre_words[] =
    "剧情 喜剧 动作 爱情 科幻 动画 悬疑 惊悚 恐怖 犯罪 同性 音乐 歌舞 传记 历史 战争 西部 "
    "奇幻 冒险 灾难 武侠 情色 纪录片 短片 家庭 儿童 古装 运动 黑色电影 真人秀 脱口秀 鬼怪 "
    "舞台艺术 戏曲 荒诞 Adult Reality-TV Talk-Show Game-Show News";

/* Region names seen on Douban, for telling a lone region row from a genre row. */
static const char region_words[] =
    "中国大陆 中国香港 中国台湾 中国澳门 香港 台湾 澳门 中国 美国 英国 法国 德国 日本 韩国 "
    "朝鲜 印度 泰国 意大利 西班牙 葡萄牙 加拿大 澳大利亚 新西兰 俄罗斯 苏联 乌克兰 巴西 "
    "墨西哥 阿根廷 智利 哥伦比亚 秘鲁 瑞典 丹麦 挪威 芬兰 冰岛 荷兰 比利时 卢森堡 瑞士 "
    "奥地利 爱尔兰 波兰 捷克 斯洛伐克 匈牙利 罗马尼亚 保加利亚 希腊 土耳其 以色列 伊朗 "
    "黎巴嫩 埃及 摩洛哥 突尼斯 南非 尼日利亚 肯尼亚 阿联酋 卡塔尔 沙特阿拉伯 约旦 巴勒斯坦 "
    "新加坡 马来西亚 印度尼西亚 菲律宾 越南 柬埔寨 缅甸 巴基斯坦 孟加拉国 尼泊尔 不丹 "
    "斯里兰卡 蒙古 哈萨克斯坦 格鲁吉亚 亚美尼亚 塞尔维亚 克罗地亚 斯洛文尼亚 爱沙尼亚 "
    "拉脱维亚 立陶宛 塞浦路斯 马耳他 西德 东德 捷克斯洛伐克 南斯拉夫";

/* How many of the row's " / " items are words of list. */
static size_t known_items(const char *row, const char *list)
{
    struct strlist items = {0};
    add_split(&items, row);
    size_t known = 0;
    for (size_t i = 0; i < items.n; i++)
        known += has_word(list, " ", items.v[i], strlen(items.v[i]));
    strlist_free(&items);
    return known;
}

/* Parses the wish count of a row like "5028人想看" or "12,345 人想看" (pattern
 * ([\d,]+)\s*人?\s*想看, commas ignored). 1 if the row is one. */
static int wish_row(const char *row, long long *count)
{
    static const char ren[] = "人";
    const char *hit = strstr(row, "想看");
    if (hit == NULL)
        return 0;
    const char *p = hit;
    while (p > row && is_space(p[-1]))
        p--;
    if ((size_t)(p - row) >= strlen(ren) && memcmp(p - strlen(ren), ren, strlen(ren)) == 0)
        p -= strlen(ren);
    while (p > row && is_space(p[-1]))
        p--;
    const char *digits_end = p;
    while (p > row && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == ','))
        p--;
    long long n = 0;
    int any = 0;
    for (; p < digits_end; p++) {
        if (*p == ',')
            continue;
        if (n > (LLONG_MAX - 9) / 10)
            return 0;
        n = n * 10 + (*p - '0');
        any = 1;
    }
    if (!any)
        return 0;
    *count = n;
    return 1;
}

/* Sorts the rows that are neither date nor wish count into genres and regions.
 *
 * Real pages print date, genres, regions, wish count, but any row can be missing, so order
 * alone cannot say what a lone row is. Genres come from Douban's short fixed list; regions
 * are open-ended. A row is the genre row if it has a known genre and no known region, the
 * region row if it has a known region and no known genre; a row that is neither takes the
 * slot still free, genres first (Douban's order). Rows beyond two are ignored. */
static void sort_rows(struct listing_item *it, char **rows, size_t n)
{
    const char *genres = NULL, *regions = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t g = known_items(rows[i], genre_words), r = known_items(rows[i], region_words);
        if (g > 0 && r == 0 && genres == NULL)
            genres = rows[i];
        else if (r > 0 && g == 0 && regions == NULL)
            regions = rows[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i] == genres || rows[i] == regions)
            continue;
        if (genres == NULL)
            genres = rows[i];
        else if (regions == NULL)
            regions = rows[i];
    }
    add_split(&it->genres, genres);
    add_split(&it->regions, regions);
}

/* Whether a link's host[:port] (len bytes) is Douban's or the upstream's. Anything but a
 * plain name and port (user@host, backslashes, ...) is refused. */
static int host_allowed(const char *host, size_t len, const char *upstream_host)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789.-";
    const char *colon = memchr(host, ':', len);
    size_t hl = colon ? (size_t)(colon - host) : len;
    if (hl == 0 || strspn(host, name_chars) < hl)
        return 0;
    if (colon && (len - hl < 2 || strspn(colon + 1, "0123456789") < len - hl - 1))
        return 0;
    return (hl == 16 && strncasecmp(host, "movie.douban.com", 16) == 0) ||
           (upstream_host && hl == strlen(upstream_host) && strncasecmp(host, upstream_host, hl) == 0);
}

/* The subject id (digits, at most 20) of a link to /subject/<id>/ on an allowed host;
 * relative links are on the page's own host. 0 if the link is anything else. */
static int subject_id(const char *href, const char *upstream_host, char id[21])
{
    const char *p = href;
    if (starts_with(p, p + strlen(p), "https://"))
        p += 8;
    else if (starts_with(p, p + strlen(p), "http://"))
        p += 7;
    else if (p[0] == '/' && p[1] == '/')
        p += 2;
    else if (p[0] != '/')
        return 0;
    if (p != href) {
        size_t host_len = strcspn(p, "/?#");
        if (!host_allowed(p, host_len, upstream_host))
            return 0;
        p += host_len;
    }
    if (strncmp(p, "/subject/", 9) != 0)
        return 0;
    p += 9;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 20 || (p[n] != '/' && p[n] != '\0' && p[n] != '?' && p[n] != '#'))
        return 0;
    memcpy(id, p, n);
    id[n] = '\0';
    return 1;
}

/* Reads one div.item of the listing into out (or skips it, with a warning). */
static void read_item(const GumboNode *item, const char *upstream_host, struct listing *out)
{
    const GumboNode *h3 = find(item, NULL, SEL(H3, NULL, NULL));
    const GumboNode *link = find(h3, NULL, SEL(A, "href", ""));
    const GumboNode *thumb = find(item, NULL, SEL(A, "class", "thumb"));
    const char *href = attr(link ? link : thumb ? thumb : item, "href");
    char id[21];
    if (href == NULL || !subject_id(href, upstream_host, id)) {
        char shown[200];
        log_warn("listing: skipped an item whose link is not a Douban movie: \"%s\"",
                 href ? log_escape(href, strlen(href), shown, sizeof shown) : "(none)");
        return;
    }
    struct listing_item *it = listing_add(out);
    it->id = xstrdup(id);
    it->url = xasprintf("https://movie.douban.com/subject/%s/", id);
    it->title = text_of(link);
    it->thumbnail = attr_of(find(thumb, NULL, SEL(IMG, NULL, NULL)), "src");

    char *rows[8];
    size_t nrows = 0;
    int month, day;
    for (const GumboNode *li = find(item, NULL, SEL(LI, NULL, NULL)); li;
         li = find(item, li, SEL(LI, NULL, NULL))) {
        char *row = text_of(li);
        if (row == NULL)
            continue;
        if (it->release_date == NULL && movie_parse_listing_date(row, &month, &day) == 0)
            it->release_date = row;
        else if (it->wish_count < 0 && wish_row(row, &it->wish_count))
            free(row);
        else if (nrows < sizeof rows / sizeof rows[0])
            rows[nrows++] = row;
        else
            free(row);
    }
    sort_rows(it, rows, nrows);
    for (size_t i = 0; i < nrows; i++)
        free(rows[i]);
}

/* The items of #showing-soon, in page order. */
enum douban_verdict douban_parse_listing(const char *html, size_t len, const char *upstream_host,
                                         struct listing *out, char *err, size_t errlen)
{
    GumboOutput *page;
    enum douban_verdict v = parse_page(html, len, &page, err, errlen);
    if (v != DOUBAN_OK)
        return v;
    const GumboNode *soon = find(page->root, NULL, SEL(LAST, "id", "showing-soon"));
    if (soon == NULL) {
        v = without_anchor(page, html, len, "#showing-soon", err, errlen);
    } else {
        const struct sel *item_sel = SEL(DIV, "class", "item");
        for (const GumboNode *item = find(soon, NULL, item_sel); item;
             item = find(soon, item, item_sel))
            read_item(item, upstream_host, out);
    }
    free_page(page);
    return v;
}

/* --- The movie page --------------------------------------------------------------------- */

/* The bare text after the #info label (label "语言" matches "语言:" and "语言：") up to the
 * next <br>, on one line; NULL if there is no such label. */
static char *info_value(const GumboNode *info, const char *label)
{
    size_t ll = strlen(label);
    const struct sel *pl = SEL(SPAN, "class", "pl");
    for (const GumboNode *n = find(info, NULL, pl); n; n = find(info, n, pl)) {
        char *t = text_of(n);
        int hit = t && strncmp(t, label, ll) == 0 &&
                  (t[ll] == '\0' || strcmp(t + ll, ":") == 0 || strcmp(t + ll, "：") == 0);
        free(t);
        if (!hit)
            continue;
        struct buf b = {0};
        for (const GumboNode *sib = next_sibling(n); sib && !is_tag(sib, GUMBO_TAG_BR);
             sib = next_sibling(sib))
            add_text(&b, sib);
        return buf_line(&b);
    }
    return NULL;
}

/* The summary: paragraphs split at <br>, each trimmed of spaces and U+3000 indentation,
 * joined with "\n". New, or NULL. */
static char *summary_of(const GumboNode *span)
{
    struct buf all = {0}, para = {0};
    for (const GumboNode *n = span; n != NULL;) {
        int br = is_tag(n, GUMBO_TAG_BR);
        if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE)
            buf_add(&para, n->v.text.text, strlen(n->v.text.text));
        n = next_node(span, n, 1);
        if (br || n == NULL) {
            char *p = para.s ? trimmed(para.s, para.n) : NULL;
            if (p) {
                if (all.n)
                    buf_add(&all, "\n", 1);
                buf_add(&all, p, strlen(p));
                free(p);
            }
            para.n = 0;
        }
    }
    free(para.s);
    return all.s;
}

/* The "image" of the page's JSON-LD block, or NULL. Douban's JSON there can hold raw
 * newlines inside strings, which strict JSON refuses; control characters become spaces
 * first (outside strings that changes nothing). */
static char *json_ld_image(const GumboNode *root)
{
    const GumboNode *script = find(root, NULL, SEL(SCRIPT, "type", "application/ld+json"));
    struct buf b = {0};
    if (script)
        add_text(&b, script);
    for (size_t i = 0; i < b.n; i++)
        if ((unsigned char)b.s[i] < 0x20)
            b.s[i] = ' ';
    json_t *ld = b.s ? json_loads(b.s, 0, NULL) : NULL;
    const char *image = json_string_value(json_object_get(ld, "image"));
    char *result = image ? trimmed(image, strlen(image)) : NULL;
    json_decref(ld);
    free(b.s);
    return result;
}

/* The YYYY-MM-DD of the first release date labelled exactly (中国大陆), or NULL. Re-runs
 * (中国大陆重映) and other regions do not count. */
static char *mainland_release(const GumboNode *root)
{
    static const char mainland[] = "(中国大陆)";
    const struct sel *sel = SEL(SPAN, "property", "v:initialReleaseDate");
    for (const GumboNode *n = find(root, NULL, sel); n; n = find(root, n, sel)) {
        char *v = attr_of(n, "content");
        if (v == NULL)
            v = text_of(n);
        int ok = v && strlen(v) == 10 + strlen(mainland) && strcmp(v + 10, mainland) == 0 &&
                 strspn(v, "0123456789") == 4 && v[4] == '-' &&
                 strspn(v + 5, "0123456789") == 2 && v[7] == '-' &&
                 strspn(v + 8, "0123456789") == 2;
        if (ok) {
            v[10] = '\0';
            return v;
        }
        free(v);
    }
    return NULL;
}

/* Parses s (may be NULL) as a whole integer in [min, max], else -1. */
static long long integer_or_unknown(const char *s, long long min, long long max)
{
    long long v;
    return s && parse_integer(s, min, max, &v) == 0 ? v : -1;
}

/* The year in span.year, "(2010)", or -1. */
static long year_of(const GumboNode *root)
{
    char *t = text_of(find(root, NULL, SEL(SPAN, "class", "year")));
    long year = -1;
    size_t n = t ? strlen(t) : 0;
    if (n > 2 && t[0] == '(' && t[n - 1] == ')') {
        t[n - 1] = '\0';
        year = (long)integer_or_unknown(t + 1, 1000, 9999);
    }
    free(t);
    return year;
}

/* The rating in strong[property=v:average]: empty for unrated films, hence -1. */
static double rating_of(const GumboNode *root)
{
    char *t = text_of(find(root, NULL, SEL(STRONG, "property", "v:average")));
    double rating = -1;
    if (t) {
        char *end;
        double r = strtod(t, &end);
        if (*end == '\0' && t[0] >= '0' && t[0] <= '9' && r >= 0 && r <= 10)
            rating = r;
    }
    free(t);
    return rating;
}

/* The IMDb id ("tt" and digits) in the IMDb row (old pages: "IMDb链接" and a link). */
static char *imdb_of(const GumboNode *info)
{
    char *v = info_value(info, "IMDb");
    if (v == NULL)
        v = info_value(info, "IMDb链接");
    char *id = NULL;
    for (const char *p = v; p && (p = strstr(p, "tt")) != NULL; p += 2) {
        size_t n = strspn(p + 2, "0123456789");
        if (n > 0) {
            id = xstrndup(p, n + 2);
            break;
        }
    }
    free(v);
    return id;
}

/* Fills d from a movie page whose anchors were found. */
static void read_detail(const GumboNode *root, const GumboNode *mainpic,
                        const GumboNode *itemreviewed, struct movie_detail *d)
{
    const GumboNode *image = find(mainpic, NULL, SEL(IMG, "rel", "v:image"));
    d->title = text_of(itemreviewed);
    d->original_title = attr_of(image ? image : find(root, NULL, SEL(IMG, "rel", "v:image")),
                                "alt");
    d->year = year_of(root);
    d->poster = attr_of(image, "src");
    if (d->poster == NULL)
        d->poster = attr_of(find(root, NULL, SEL(META, "property", "og:image")), "content");
    if (d->poster == NULL)
        d->poster = json_ld_image(root);
    add_texts(&d->directors, root, SEL(A, "rel", "v:directedBy"));
    add_texts(&d->actors, root, SEL(A, "rel", "v:starring"));
    add_texts(&d->genres, root, SEL(SPAN, "property", "v:genre"));
    d->release_date_cn = mainland_release(root);

    const GumboNode *runtime = find(root, NULL, SEL(SPAN, "property", "v:runtime"));
    char *minutes = attr_of(runtime, "content");
    d->runtime_minutes = (long)integer_or_unknown(minutes, 1, 100000);
    free(minutes);

    const GumboNode *info = find(root, NULL, SEL(DIV, "id", "info"));
    char *regions = info_value(info, "制片国家/地区"), *languages = info_value(info, "语言");
    add_split(&d->regions, regions);
    add_split(&d->languages, languages);
    free(regions);
    free(languages);
    d->imdb_id = imdb_of(info);

    d->rating = rating_of(root);
    char *votes = text_of(find(root, NULL, SEL(SPAN, "property", "v:votes")));
    d->votes = integer_or_unknown(votes, 0, LLONG_MAX);
    free(votes);

    const GumboNode *summary = find(root, NULL, SEL(SPAN, "class", "all hidden"));
    if (summary == NULL)
        summary = find(root, NULL, SEL(SPAN, "property", "v:summary"));
    d->summary = summary ? summary_of(summary) : NULL;
}

/* A movie page's fields. */
enum douban_verdict douban_parse_detail(const char *html, size_t len, struct movie_detail *out,
                                        char *err, size_t errlen)
{
    GumboOutput *page;
    enum douban_verdict v = parse_page(html, len, &page, err, errlen);
    if (v != DOUBAN_OK)
        return v;
    const GumboNode *mainpic = find(page->root, NULL, SEL(LAST, "id", "mainpic"));
    const GumboNode *title = find(page->root, NULL, SEL(SPAN, "property", "v:itemreviewed"));
    if (mainpic == NULL && title == NULL)
        v = without_anchor(page, html, len, "#mainpic or v:itemreviewed", err, errlen);
    else
        read_detail(page->root, mainpic, title, out);
    free_page(page);
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Small public helpers.
 * ------------------------------------------------------------------------------------- */

/* 1-32 lower-case ASCII letters. */
int douban_city_valid(const char *city)
{
    size_t n = city ? strspn(city, "abcdefghijklmnopqrstuvwxyz") : 0;
    return n >= 1 && n <= 32 && city[n] == '\0';
}

/* Names used in logs and error codes. */
const char *douban_verdict_name(enum douban_verdict v)
{
    switch (v) {
    case DOUBAN_OK:
        return "ok";
    case DOUBAN_NOT_FOUND:
        return "not_found";
    case DOUBAN_BLOCKED:
        return "blocked";
    case DOUBAN_CHANGED:
        return "changed";
    case DOUBAN_MALFORMED:
        return "malformed";
    }
    return "unknown";
}
