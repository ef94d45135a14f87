/* Tests of lib/html.c: the nesting scan's rules, what html_parse refuses and why, and the
 * hostile pages it must refuse (or parse) in bounded time and memory. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check.h"
#include "html.h"
#include "util.h"

/* Parses html as html_parse does, returning its result; err gets the reason. A parse that
 * succeeds is checked for a root and freed. */
static int parse(const char *html, size_t len, char *err, size_t errlen)
{
    GumboOutput *out = (GumboOutput *)1;   /* html_parse must set it either way */
    err[0] = '\0';
    int r = html_parse(html, len, &out, err, errlen);
    if (r == 0) {
        CHECK(out != NULL && out->root != NULL);
        html_free(out);
    } else {
        CHECK(out == NULL);
        CHECK(err[0] != '\0');
    }
    return r;
}

/* The nesting scan's rules on small pages. */
static void test_depth_rules(void)
{
    static const struct {
        const char *html;
        size_t depth;
    } cases[] = {
        {"", 0},
        {"<div><div></div></div><div></div>", 2},
        {"<br><img src=x><input><hr><meta charset=utf-8>", 0},
        {"<div/><div/><div/>", 3},                                 /* no self-closing in HTML */
        {"<svg><path/><path d='M0 0'/></svg>", 1},                  /* but in svg */
        {"<svg><g><div/><section/><p/></svg>", 3},                /* <div> leaves svg */
        {"<svg><font color=red><div>", 2},                          /* so does <font color> */
        {"<svg><font><g>", 3},                                      /* but not a bare <font> */
        {"<svg><foreignObject><div><p>", 4},                        /* HTML again inside */
        {"<svg><![CDATA[<div><div>]]></svg><div>", 1},              /* CDATA in svg is text */
        {"<div></x></x><div></y>", 2},                             /* stray end tags */
        {"<span><div></span><span><div></span>", 4},               /* block above: ignored */
        {"<div><span></div><div><span></div>", 2},                 /* </div> closes through */
        {"<h2><div><h1></h2><h2><div><h1></h2>", 5},               /* any heading */
        {"<form><div></form><form><div></form>", 3},               /* removes the form alone */
        {"<ul><li><ol></li><li>", 4},                              /* ol stops </li> */
        {"<p><b></p><i>", 2},                                      /* <b> comes back */
        {"<x-a><x-b></x-a><x-a>", 2},                              /* unknown tags by name */
        {"<body></body></html><div>", 2},                          /* they pop nothing */
        {"<!-- <div><div> --><div>", 1},
        {"<!--><div>--><div>", 2},                                 /* "<!-->" is a comment */
        {"<!---><div>", 1},                                        /* so is "<!--->" */
        {"<!--x--!><div>", 1},
        {"<!-- never closed <div>", 0},
        {"<script>\"<div><div>\"</script><style>a<b{}</style><div>", 1},
        {"<textarea><div></textarea><title><b></title>", 1},
        {"<script><div></scriptx></script ><div>", 1},             /* only </script ends it */
        {"<a title=\"x > <div>\" href=y><div>", 2},                /* quotes hide '>' */
        {"<a title=x/><div>", 2},                                  /* '/' of an unquoted value */
        {"<!DOCTYPE html><?xml x?><div>", 1},
        {"</><div></ div><div>", 2},                               /* no names: no end tags */
        {"<div", 0},                                               /* unfinished tag: dropped */
        {"<a title=\"never closed", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t d = html_nesting_depth(cases[i].html, strlen(cases[i].html));
        if (d != cases[i].depth)
            fprintf(stderr, "depth of %s\n", cases[i].html);
        CHECK_INT(d, cases[i].depth);
    }
}

/* prefix, then unit repeated to fill size bytes (new). */
static char *repeated(const char *prefix, const char *unit, size_t size, size_t *len)
{
    size_t pl = strlen(prefix), ul = strlen(unit);
    char *s = xmalloc(size + 1);
    memcpy(s, prefix, pl);
    size_t n = pl;
    while (n + ul <= size) {
        memcpy(s + n, unit, ul);
        n += ul;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* The scan stops at the limit, and counts attributes and stray end tags against it. */
static void test_depth_limits(void)
{
    size_t len;
    char *html = repeated("", "<div>", HTML_MAX_DEPTH * 5, &len);
    CHECK_INT(html_nesting_depth(html, len), HTML_MAX_DEPTH);
    free(html);
    html = repeated("", "<div>", 10000 * 5, &len);
    CHECK_INT(html_nesting_depth(html, len), HTML_MAX_DEPTH + 1);
    free(html);

    /* A tag with HTML_MAX_ATTRIBUTES attributes passes, one more does not. */
    for (int extra = 0; extra <= 1; extra++) {
        char *attrs = xstrdup("");
        for (int i = 0; i < HTML_MAX_ATTRIBUTES + extra; i++) {
            char *next = xasprintf("%s a%d=\"x\"", attrs, i);
            free(attrs);
            attrs = next;
        }
        char *page = xasprintf("<html><body><div%s></div></body></html>", attrs);
        size_t depth = html_nesting_depth(page, strlen(page));
        CHECK_INT(depth, extra ? HTML_MAX_DEPTH + 1 : 3);
        char err[200];
        CHECK_INT(parse(page, strlen(page), err, sizeof err), extra ? -1 : 0);
        free(page);
        free(attrs);
    }

    /* HTML_MAX_STRAY_END_TAGS end tags that close nothing pass, one more does not. */
    html = repeated("<div>", "</x>", 5 + HTML_MAX_STRAY_END_TAGS * 4, &len);
    CHECK_INT(html_nesting_depth(html, len), 1);
    free(html);
    html = repeated("<div>", "</x>", 5 + (HTML_MAX_STRAY_END_TAGS + 1) * 4, &len);
    CHECK_INT(html_nesting_depth(html, len), HTML_MAX_DEPTH + 1);
    free(html);
    /* The end tag after raw text closes its element: it is no stray. */
    html = repeated("", "<script>x</script><title>t</title>", 2 * HTML_MAX_STRAY_END_TAGS * 34,
                    &len);
    CHECK_INT(html_nesting_depth(html, len), 1);
    free(html);
}

/* What html_parse refuses, with which reason, and that it parses the rest. */
static void test_parse(void)
{
    char err[200];
    static const char page[] = "<html><head><title>t</title></head><body><p>长夜将明</p></body></html>";
    CHECK_INT(parse(page, strlen(page), err, sizeof err), 0);
    CHECK_INT(parse("", 0, err, sizeof err), 0);

    /* Bytes that are not UTF-8 text, each reported at its offset. */
    static const struct {
        const char *bytes;
        size_t len, at;
    } bad[] = {
        {"ab\xFF", 3, 2},
        {"<p>\xC0\xAF</p>", 9, 3},            /* overlong '/' */
        {"<p>\xE0\x80\xAF</p>", 10, 3},       /* overlong, three bytes */
        {"x\xED\xA0\x80", 4, 1},              /* a UTF-16 surrogate */
        {"x\xF4\x90\x80\x80", 5, 1},          /* past U+10FFFF */
        {"\xE9\x95", 2, 0},                   /* cut short at the end */
        {"\x80", 1, 0},                       /* a stray continuation byte */
        {"<p>a\0b</p>", 10, 4},               /* a NUL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(parse(bad[i].bytes, bad[i].len, err, sizeof err), -1);
        char want[64];
        snprintf(want, sizeof want, "not UTF-8 text (byte %zu of %zu)", bad[i].at, bad[i].len);
        if (strstr(err, want) == NULL)
            fprintf(stderr, "case %zu: %s\n", i, err);
        CHECK(strstr(err, want) != NULL);
    }

    /* Too large for gumbo's unsigned counts: refused before a byte is read. */
    if ((size_t)UINT_MAX < SIZE_MAX) {
        CHECK_INT(parse("x", (size_t)UINT_MAX + 1, err, sizeof err), -1);
        CHECK(strstr(err, "too large") != NULL);
    }

    size_t len;
    char *deep = repeated("", "<div>", (HTML_MAX_DEPTH + 1) * 5, &len);
    CHECK_INT(parse(deep, len, err, sizeof err), -1);
    CHECK(strstr(err, "deeper than 128 levels") != NULL);
    CHECK_INT(parse(deep, len - 5, err, sizeof err), 0);
    free(deep);

    /* A small error buffer gets a cut, terminated reason; none at all is allowed. */
    char small[8];
    CHECK_INT(parse("\xFF", 1, small, sizeof small), -1);
    CHECK_INT(strlen(small), sizeof small - 1);
    GumboOutput *out;
    CHECK_INT(html_parse("\xFF", 1, &out, NULL, 0), -1);
    CHECK(out == NULL);
    html_free(NULL);
}

/* HTML whitespace is the tokenizer's five bytes, not C's isspace. */
static void test_is_space(void)
{
    for (int c = 0; c < 256; c++) {
        int want = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
        CHECK_INT(html_is_space((char)c), want);
    }
}

/* Seconds of CPU used by the process so far. */
static double cpu_seconds(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* The process's peak resident size in MiB. */
static long peak_mib(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_maxrss / 1024;
}

/* The bounds below are orders of magnitude, not benchmarks (bench/ measures). A
 * ThreadSanitizer build runs every memory access through its runtime: it gets five times
 * the room. */
#if defined(__SANITIZE_THREAD__)
#define INSTRUMENTED_SLOWDOWN 5
#else
#define INSTRUMENTED_SLOWDOWN 1
#endif

/* Hostile pages: deep nesting is refused in milliseconds; 4 MiB of junk that passes the
 * scan parses in bounded time and memory (gumbo's error list is bounded). */
static void test_hostile(void)
{
    static const struct {
        const char *what, *prefix, *unit;
        size_t size;
    } deep[] = {
        {"100000 nested <div>", "", "<div>", 100000 * 5},
        {"4 MiB of nested <div>", "", "<div>", 4 << 20},
        {"4 MiB of <div/>", "", "<div/>", 4 << 20},
        {"4 MiB of <div></x>", "", "<div></x>", 4 << 20},
        {"4 MiB of unclosed <b>", "<p>", "<b>x", 4 << 20},
    };
    char err[200];
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        size_t len;
        char *html = repeated(deep[i].prefix, deep[i].unit, deep[i].size, &len);
        double t = cpu_seconds();
        int r = parse(html, len, err, sizeof err);
        t = cpu_seconds() - t;
        printf("%s: %s in %.1f ms\n", deep[i].what, r == 0 ? "parsed" : "refused", t * 1e3);
        CHECK_INT(r, -1);
        CHECK(t < 0.1 * INSTRUMENTED_SLOWDOWN);
        CHECK(strstr(err, "deeper") != NULL);
        free(html);
    }

    /* Open <div>s just under the limit, then end tags that close nothing: each costs gumbo a
     * search of its open elements (and with its default max_errors -1, a copy of them: 1 MiB
     * under 390 divs took 8 s and 808 MB). A few thousand parse; a page of them is refused. */
    char prefix[(HTML_MAX_DEPTH - 8) * 5 + 1] = "";
    for (int i = 0; i < HTML_MAX_DEPTH - 8; i++)
        strcat(prefix, "<div>");
    size_t len;
    char *html = repeated(prefix, "</x>text</span>", (HTML_MAX_STRAY_END_TAGS / 2) * 15, &len);
    CHECK(html_nesting_depth(html, len) == HTML_MAX_DEPTH - 8);
    CHECK_INT(parse(html, len, err, sizeof err), 0);
    free(html);
    html = repeated(prefix, "</x>text</span>", 4 << 20, &len);
    CHECK(html_nesting_depth(html, len) > HTML_MAX_DEPTH);
    long before = peak_mib();
    double t = cpu_seconds();
    int r = parse(html, len, err, sizeof err);
    t = cpu_seconds() - t;
    printf("4 MiB of stray end tags under %d divs: %s in %.3f s, peak RSS +%ld MiB\n",
           HTML_MAX_DEPTH - 8, r == 0 ? "parsed" : "refused", t, peak_mib() - before);
    CHECK_INT(r, -1);
    CHECK(strstr(err, "stray end tags") != NULL);
    free(html);

    /* 1 MiB of random markup that passes the scan (balanced, flat, with a stray end tag
     * now and then): gumbo keeps no error list, so it parses in bounded time. */
    static const char *const tokens[] = {
        "<div>x</div>", "<b>z</b>", "<br>", "text ", "<a href='u'>l</a>", "<!-- c -->",
        "<table><tr><td>t</td></tr></table>", "长夜", "&amp;", "<span title=\"a>b\">s</span>", "<p>p</p>",
        "<img src=x alt=\"\">", "<ul><li>1<li>2</ul>", "<script>if (a<b) x()</script>",
        "<svg><path d='M0'/></svg>", "\n",
    };
    srand(7);
    html = xmalloc((1 << 20) + 64);
    len = 0;
    size_t strays = 0;
    while (len < 1 << 20) {
        const char *tok = tokens[(size_t)rand() % (sizeof tokens / sizeof tokens[0])];
        if (rand() % 2000 == 0 && strays < HTML_MAX_STRAY_END_TAGS) {
            tok = "</x>";
            strays++;
        }
        memcpy(html + len, tok, strlen(tok));
        len += strlen(tok);
    }
    CHECK(html_nesting_depth(html, len) <= HTML_MAX_DEPTH);
    before = peak_mib();
    t = cpu_seconds();
    r = parse(html, len, err, sizeof err);
    t = cpu_seconds() - t;
    printf("1 MiB of random flat markup: %s in %.2f s, peak RSS +%ld MiB\n",
           r == 0 ? "parsed" : "refused", t, peak_mib() - before);
    CHECK_INT(r, 0);
    CHECK(t < 10 * INSTRUMENTED_SLOWDOWN);
    free(html);

    /* Random bytes: refused (not UTF-8) at once. */
    html = xmalloc(4 << 20);
    for (size_t i = 0; i < 4 << 20; i++)
        html[i] = (char)(rand() & 0xff);
    t = cpu_seconds();
    r = parse(html, 4 << 20, err, sizeof err);
    t = cpu_seconds() - t;
    printf("4 MiB of random bytes: %s in %.2f ms\n", r == 0 ? "parsed" : "refused", t * 1e3);
    CHECK_INT(r, -1);
    CHECK(t < 0.1 * INSTRUMENTED_SLOWDOWN);
    free(html);
}

int main(void)
{
    test_depth_rules();
    test_depth_limits();
    test_parse();
    test_is_space();
    test_hostile();
    return check_summary();
}
