/* Safe parsing of untrusted HTML: the nesting scan that refuses hostile pages before gumbo
 * sees them, the UTF-8 check, and the gumbo wrapper with the options that keep its cost
 * bounded. */
#include "html.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ---------------------------------------------------------------------------------------
 * The nesting scan.
 *
 * gumbo walks its stack of open elements for almost every tag (scope checks), so its time
 * grows with depth times tags: 20000 nested <div>s take 0.8 s, 100000 take ~20 s. The scan
 * below estimates the depth of gumbo's stack without building a tree, and html_parse
 * refuses anything deeper than HTML_MAX_DEPTH.
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
 * page can cost. The scan stops as soon as it passes HTML_MAX_DEPTH, so it returns
 * HTML_MAX_DEPTH + 1 for anything deeper.
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
    struct open_element open[HTML_MAX_DEPTH + 1];
    size_t depth;             /* entries in open */
    size_t reopened;          /* formatting elements closed implicitly: gumbo re-opens them */
    size_t stray;             /* end tags that closed nothing */
    size_t max;
};

/* Whether c is an ASCII letter. */
static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
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
        const char *dashes = bytes_find(p, (size_t)(end - p), "--");
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
            (html_is_space(p[2 + len]) || p[2 + len] == '/' || p[2 + len] == '>'))
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
    if (s->depth == HTML_MAX_DEPTH + 1) {
        s->max = HTML_MAX_DEPTH + 1;
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
    if (++s->stray > HTML_MAX_STRAY_END_TAGS)
        s->max = HTML_MAX_DEPTH + 1;   /* as costly for gumbo as a page too deep */
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
    push(s, tag, 0, name, len);
    /* Open like any element, so that the end tag after its text closes it (not a stray). */
    if (cls & TC_RAW)
        return raw_text_end(p, end, name, len);
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
    while (p < end && !html_is_space(*p) && *p != '/' && *p != '>')
        p++;
    size_t len = (size_t)(p - name);
    int self_closing = 0, font_attr = 0;
    size_t attributes = 0;
    for (;;) {
        while (p < end && html_is_space(*p))
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
        if (++attributes > HTML_MAX_ATTRIBUTES) {
            /* gumbo compares each attribute with the tag's others: quadratic, like depth. */
            s->max = HTML_MAX_DEPTH + 1;
            return end;
        }
        const char *attr_name = p++;
        while (p < end && !html_is_space(*p) && *p != '/' && *p != '>' && *p != '=')
            p++;
        font_attr |= font_breakout_attribute(attr_name, (size_t)(p - attr_name));
        while (p < end && html_is_space(*p))
            p++;
        if (p == end || *p != '=')
            continue;
        for (p++; p < end && html_is_space(*p); p++)
            ;
        if (p < end && (*p == '"' || *p == '\'')) {
            const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
            if (q == NULL)
                return end;
            p = q + 1;
        } else {
            while (p < end && !html_is_space(*p) && *p != '>')
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
            const char *close = bytes_find(q, (size_t)(end - q), "]]>");
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
size_t html_nesting_depth(const char *html, size_t len)
{
    struct scan *s = xcalloc(1, sizeof *s);
    for (size_t i = 0; i < sizeof tag_classes / sizeof tag_classes[0]; i++) {
        size_t n;
        for (const char *p = tag_classes[i].names, *w; (w = words_next(&p, " ", &n)) != NULL;)
            s->cls[gumbo_tagn_enum(w, (unsigned)n)] |= tag_classes[i].cls;
    }
    s->cls[GUMBO_TAG_UNKNOWN] = 0;
    const char *p = html, *end = html + len;
    while (s->max <= HTML_MAX_DEPTH && p < end &&
           (p = memchr(p, '<', (size_t)(end - p))) != NULL)
        p = markup(s, p, end);
    size_t max = s->max;
    free(s);
    return max;
}

/* ---------------------------------------------------------------------------------------
 * Parsing.
 * ------------------------------------------------------------------------------------- */

/* HTML whitespace, as the tokenizer knows it. */
int html_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

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

/* The offset of the first byte that is not part of UTF-8 text (a NUL counts as such), or
 * len. Pages are served as UTF-8 here: anything else is a broken or foreign body. */
static size_t text_invalid_at(const char *s, size_t len)
{
    size_t i = 0, n;
    while (i < len && s[i] != '\0' && (n = utf8_sequence(s + i, len - i)) > 0)
        i += n;
    return i;
}

/* Refuses pages that are not UTF-8 text or too deep (or too big) for gumbo, else parses them. */
int html_parse(const char *html, size_t len, GumboOutput **out, char *err, size_t errlen)
{
    *out = NULL;
    /* gumbo counts in unsigned int. */
    if (len > UINT_MAX) {
        errorf(err, errlen, "the page is too large to parse (%zu bytes)", len);
        return -1;
    }
    size_t bad = text_invalid_at(html, len);
    if (bad < len) {
        errorf(err, errlen, "the page is not UTF-8 text (byte %zu of %zu)", bad, len);
        return -1;
    }
    if (html_nesting_depth(html, len) > HTML_MAX_DEPTH) {
        errorf(err, errlen, "the page nests elements deeper than %d levels, has a tag with more "
               "than %d attributes or more than %d stray end tags", HTML_MAX_DEPTH,
               HTML_MAX_ATTRIBUTES, HTML_MAX_STRAY_END_TAGS);
        return -1;
    }
    GumboOptions o = parse_options();
    *out = gumbo_parse_with_options(&o, html, len);
    if (*out == NULL || (*out)->root == NULL) {
        html_free(*out);
        *out = NULL;
        errorf(err, errlen, "the page could not be parsed");
        return -1;
    }
    return 0;
}

/* Frees a parse with the options it was made with. */
void html_free(GumboOutput *out)
{
    GumboOptions o = parse_options();
    if (out)
        gumbo_destroy_output(&o, out);
}
