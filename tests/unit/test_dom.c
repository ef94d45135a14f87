/* Tests of lib/dom.c: finding elements by tag and attribute words, and reading their text
 * and attributes, on small pages parsed with html_parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dom.h"
#include "html.h"
#include "util.h"

/* Parses a test page (new); exits if html_parse refuses it, since every test needs one. */
static GumboOutput *page(const char *html)
{
    GumboOutput *out;
    char err[200];
    if (html_parse(html, strlen(html), &out, err, sizeof err) != 0) {
        fprintf(stderr, "html_parse: %s\n", err);
        exit(1);
    }
    return out;
}

/* dom_text of a node, compared and freed. */
static void check_text(const GumboNode *n, const char *expected)
{
    char *t = dom_text(n);
    CHECK_STR(t, expected);
    free(t);
}

/* Tags, attribute words, document order, "after" and the root's exclusion. */
static void test_find(void)
{
    GumboOutput *p = page("<html><body>"
                          "<div id=a class=\"item mod \"><div id=b class=item><i>1</i></div></div>"
                          "<div id=c class=\"mod\tother\"><i>2</i></div>"
                          "<span id=d class=item>3</span><p id=e title=\"\">4</p>"
                          "</body></html>");
    const GumboNode *root = p->root;
    const GumboNode *a = dom_find(root, NULL, DOM_SEL(DIV, NULL, NULL));
    CHECK_STR(dom_attr(a, "id"), "a");

    /* Every word of the value, in any order, among the attribute's words. */
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(DIV, "class", "mod item")), "id"), "a");
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(DIV, "class", "mod")), "id"), "a");
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(DIV, "class", "other")), "id"), "c");
    CHECK(dom_find(root, NULL, DOM_SEL(DIV, "class", "ite")) == NULL);
    CHECK(dom_find(root, NULL, DOM_SEL(DIV, "class", "item other")) == NULL);
    CHECK(dom_find(root, NULL, DOM_SEL(DIV, "lang", "")) == NULL);
    /* An empty value asks only for the attribute, even an empty one. */
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(P, "title", "")), "id"), "e");
    /* GUMBO_TAG_LAST: any element. */
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(LAST, "id", "d")), "id"), "d");
    CHECK_STR(dom_attr(dom_find(root, NULL, DOM_SEL(LAST, "class", "item")), "id"), "a");

    /* Walking on: after a, its subtree (b) is skipped; from inside it, it is not. */
    const struct dom_sel *item = DOM_SEL(LAST, "class", "item");
    const GumboNode *b = dom_find(a, NULL, item);
    CHECK_STR(dom_attr(b, "id"), "b");
    CHECK_STR(dom_attr(dom_find(root, a, item), "id"), "d");
    CHECK_STR(dom_attr(dom_find(root, b, item), "id"), "d");
    CHECK(dom_find(root, dom_find(root, a, item), item) == NULL);
    /* Under root only, root excluded. */
    CHECK(dom_find(b, NULL, DOM_SEL(DIV, NULL, NULL)) == NULL);
    CHECK(dom_find(b, NULL, DOM_SEL(SPAN, NULL, NULL)) == NULL);
    check_text(dom_find(b, NULL, DOM_SEL(I, NULL, NULL)), "1");
    size_t n = 0;
    for (const GumboNode *i = dom_find(root, NULL, DOM_SEL(I, NULL, NULL)); i;
         i = dom_find(root, i, DOM_SEL(I, NULL, NULL)))
        n++;
    CHECK_INT(n, 2);
    CHECK(dom_find(NULL, NULL, DOM_SEL(DIV, NULL, NULL)) == NULL);
    html_free(p);

    /* A page nested as deep as html_parse allows is walked without recursion. */
    char deep[HTML_MAX_DEPTH * 5 + 32] = "";
    for (int i = 0; i < HTML_MAX_DEPTH - 4; i++)
        strcat(deep, "<div>");
    strcat(deep, "<b id=z>deep</b>");
    p = page(deep);
    check_text(dom_find(p->root, NULL, DOM_SEL(B, "id", "z")), "deep");
    html_free(p);
}

/* Attributes as in the page, and trimmed of blanks for keeping. */
static void test_attributes(void)
{
    GumboOutput *p = page("<html><body><img id=i src=\"  a.jpg\xC2\xA0\" alt=\"\xE3\x80\x80 \" "
                          "title=\"A &amp; B\" data-x=\"\">text</body></html>");
    const GumboNode *img = dom_find(p->root, NULL, DOM_SEL(IMG, NULL, NULL));
    CHECK_STR(dom_attr(img, "src"), "  a.jpg\xC2\xA0");
    CHECK_STR(dom_attr(img, "title"), "A & B");
    CHECK_STR(dom_attr(img, "data-x"), "");
    CHECK(dom_attr(img, "href") == NULL);
    CHECK(dom_attr(NULL, "src") == NULL);

    char *v = dom_attr_text(img, "src");
    CHECK_STR(v, "a.jpg");
    free(v);
    CHECK(dom_attr_text(img, "alt") == NULL);       /* only U+3000 and a space */
    CHECK(dom_attr_text(img, "data-x") == NULL);
    CHECK(dom_attr_text(img, "href") == NULL);
    CHECK(dom_attr_text(NULL, "src") == NULL);

    /* A text node has no attributes. */
    const GumboNode *body = dom_find(p->root, NULL, DOM_SEL(BODY, NULL, NULL));
    const GumboNode *text = body->v.element.children.data[1];
    CHECK(text->type == GUMBO_NODE_TEXT);
    CHECK(dom_attr(text, "src") == NULL);
    html_free(p);
}

/* Text on one line, text up to a <br>, text in lines, and raw text. */
static void test_text(void)
{
    GumboOutput *p = page(
        "<html><head><title>\n  速度&amp;激情\t十一 </title>"
        "<script type=\"application/ld+json\">{\"a\":\n\"b\"}</script></head><body>"
        "<h1 id=t>  <span>盗梦</span>\n\n  <!-- not text --><b>空间</b>\xE3\x80\x80</h1>"
        "<p id=blank> \xC2\xA0 <i></i></p>"
        "<div id=info><span class=pl>语言:</span> 汉语普通话 /\n 英语<br/>"
        "<span class=pl>又名:</span> <a>长夜</a> / Long Night</div>"
        "<span id=s>\xE3\x80\x80\xE3\x80\x80第一段，\n 续<br>  <br><br/>第二段 <b>粗</b> <br>\xC2\xA0</span>"
        "</body></html>");
    const GumboNode *root = p->root;
    check_text(dom_find(root, NULL, DOM_SEL(TITLE, NULL, NULL)), "速度&激情 十一");
    check_text(dom_find(root, NULL, DOM_SEL(H1, NULL, NULL)), "盗梦 空间");
    check_text(dom_find(root, NULL, DOM_SEL(P, "id", "blank")), NULL);
    check_text(NULL, NULL);

    /* The text after a label, up to the <br> or to the last sibling. */
    const struct dom_sel *pl = DOM_SEL(SPAN, "class", "pl");
    const GumboNode *lang = dom_find(root, NULL, pl), *aka = dom_find(root, lang, pl);
    char *t = dom_text_after(lang, GUMBO_TAG_BR);
    CHECK_STR(t, "汉语普通话 / 英语");
    free(t);
    t = dom_text_after(aka, GUMBO_TAG_BR);
    CHECK_STR(t, "长夜 / Long Night");
    free(t);
    /* GUMBO_TAG_LAST never stops: every later sibling. A <br> adds no text of its own. */
    t = dom_text_after(lang, GUMBO_TAG_LAST);
    CHECK_STR(t, "汉语普通话 / 英语又名: 长夜 / Long Night");
    free(t);
    CHECK(dom_text_after(dom_find(root, NULL, DOM_SEL(SCRIPT, NULL, NULL)), GUMBO_TAG_BR) == NULL);
    CHECK(dom_text_after(NULL, GUMBO_TAG_BR) == NULL);

    /* Lines split at <br>, each trimmed (U+3000 indentation too), blank ones dropped. Inside
     * a line the text stays as it is, newlines included. */
    t = dom_text_lines(dom_find(root, NULL, DOM_SEL(SPAN, "id", "s")));
    CHECK_STR(t, "第一段，\n 续\n第二段 粗");
    free(t);
    CHECK(dom_text_lines(dom_find(root, NULL, DOM_SEL(P, "id", "blank"))) == NULL);
    CHECK(dom_text_lines(NULL) == NULL);

    /* Raw text: byte for byte, script content included. */
    t = dom_raw_text(dom_find(root, NULL, DOM_SEL(SCRIPT, NULL, NULL)));
    CHECK_STR(t, "{\"a\":\n\"b\"}");
    free(t);
    t = dom_raw_text(dom_find(root, NULL, DOM_SEL(P, "id", "blank")));
    CHECK_STR(t, " \xC2\xA0 ");
    free(t);
    CHECK(dom_raw_text(dom_find(root, NULL, DOM_SEL(I, NULL, NULL))) == NULL);
    CHECK(dom_raw_text(NULL) == NULL);
    html_free(p);
}

/* Trimming: HTML whitespace, U+00A0 and U+3000 at either end, nothing inside. */
static void test_trimmed(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"abc", "abc"},
        {" \t\n\r\fabc\f\r\n\t ", "abc"},
        {"\xC2\xA0" "abc" "\xC2\xA0", "abc"},
        {"\xE3\x80\x80\xE3\x80\x80" "第一段" "\xE3\x80\x80", "第一段"},
        {"a \xE3\x80\x80 b", "a \xE3\x80\x80 b"},
        {" \xC2\xA0\xE3\x80\x80 ", NULL},
        {"", NULL},
        {"\xC2", "\xC2"},                  /* half a U+00A0 is not a blank */
        {"\xE3\x80", "\xE3\x80"},
        {"\v", "\v"},                      /* not HTML whitespace */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = dom_trimmed(cases[i].in, strlen(cases[i].in));
        CHECK_STR(t, cases[i].out);
        free(t);
    }
    /* Only len bytes are read. */
    char *t = dom_trimmed(" ab cd", 3);
    CHECK_STR(t, "ab");
    free(t);
}

/* The four invisible marks, with their names for failure messages. */
static const struct {
    const char *utf8, *name;
} marks[] = {
    {"\xE2\x80\x8E", "U+200E"},
    {"\xE2\x80\x8F", "U+200F"},
    {"\xE2\x80\x8B", "U+200B"},
    {"\xEF\xBB\xBF", "U+FEFF"},
};
#define NMARKS (sizeof marks / sizeof marks[0])

/* "神探之痕迹" with mark m at the start, in the middle or at the end (where 0, 1, 2). New. */
static char *marked_title(const char *m, int where)
{
    static const char head[] = "神探之", tail[] = "痕迹";
    return xasprintf("%s%s%s%s%s", where == 0 ? m : "", head, where == 1 ? m : "", tail,
                     where == 2 ? m : "");
}

/* Invisible marks are dropped anywhere, by dom_trimmed and by every helper that gives
 * text; blanks next to them are still trimmed or joined; nothing else is touched. */
static void test_invisible_marks(void)
{
    for (size_t i = 0; i < NMARKS; i++) {
        const char *m = marks[i].utf8;
        for (int where = 0; where < 3; where++) {
            char *in = marked_title(m, where);
            char *t = dom_trimmed(in, strlen(in));
            if (t == NULL || strcmp(t, "神探之痕迹") != 0)
                fprintf(stderr, "dom_trimmed with %s at %d\n", marks[i].name, where);
            CHECK_STR(t, "神探之痕迹");
            free(t);

            /* In an element's text (outside blanks and newlines), an attribute, a line
             * of a summary and the text after a label. */
            char *html = xasprintf(
                "<html><body><h3 id=t>%s\n  %s \n%s</h3><img alt=\"%s %s\xE3\x80\x80%s\">"
                "<span id=s>%s\xE3\x80\x80\xE3\x80\x80%s<br>%s%s</span>"
                "<div><span class=pl>语%s言:</span>%s 英语 %s / 法%s语<br/></div></body></html>",
                m, in, m, m, in, m, m, in, in, m, m, m, m, m);
            GumboOutput *p = page(html);
            const GumboNode *root = p->root;
            check_text(dom_find(root, NULL, DOM_SEL(H3, NULL, NULL)), "神探之痕迹");
            t = dom_attr_text(dom_find(root, NULL, DOM_SEL(IMG, NULL, NULL)), "alt");
            CHECK_STR(t, "神探之痕迹");
            free(t);
            t = dom_text_lines(dom_find(root, NULL, DOM_SEL(SPAN, "id", "s")));
            CHECK_STR(t, "神探之痕迹\n神探之痕迹");
            free(t);
            const GumboNode *label = dom_find(root, NULL, DOM_SEL(SPAN, "class", "pl"));
            check_text(label, "语言:");
            t = dom_text_after(label, GUMBO_TAG_BR);
            CHECK_STR(t, "英语 / 法语");
            free(t);
            html_free(p);
            free(html);
            free(in);
        }
        /* Marks and blanks only: nothing left. */
        char *only = xasprintf(" %s\xE3\x80\x80%s%s ", m, m, marks[(i + 1) % NMARKS].utf8);
        CHECK(dom_trimmed(only, strlen(only)) == NULL);
        char *html = xasprintf("<html><body><p title=\"%s\">%s %s</p></body></html>", only, m, only);
        GumboOutput *p = page(html);
        const GumboNode *para = dom_find(p->root, NULL, DOM_SEL(P, NULL, NULL));
        CHECK(dom_text(para) == NULL);
        CHECK(dom_attr_text(para, "title") == NULL);
        CHECK(dom_text_lines(para) == NULL);
        /* dom_attr and dom_raw_text give the page's bytes as they are. */
        CHECK_STR(dom_attr(para, "title"), only);
        char *raw = dom_raw_text(para);
        CHECK(raw != NULL && strstr(raw, m) != NULL);
        free(raw);
        html_free(p);
        free(html);
        free(only);
    }

    /* Other text stays: the neighbours of the marks (U+200A hair space, U+200C and U+200D
     * joiners, U+2060 word joiner, U+FEFE), half a mark, U+3000 inside, Chinese. */
    static const char *const kept[] = {
        "a\xE2\x80\x8A" "b", "a\xE2\x80\x8C" "b", "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB",
        "a\xE2\x81\xA0" "b", "a\xEF\xBB\xBE" "b", "a\xE2\x80", "a\xEF\xBB",
        "中国大陆 \xE3\x80\x80 中国香港", "速度&激情 十一",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char *t = dom_trimmed(kept[i], strlen(kept[i]));
        CHECK_STR(t, kept[i]);
        free(t);
    }
    /* U+3000 at the ends is trimmed as before, also behind a mark. */
    static const char indented[] = "\xE3\x80\x80\xE2\x80\x8E\xE3\x80\x80第一段\xEF\xBB\xBF\xE3\x80\x80";
    char *t = dom_trimmed(indented, strlen(indented));
    CHECK_STR(t, "第一段");
    free(t);
    /* Only len bytes are read: a mark cut by len is not one. */
    t = dom_trimmed("ab\xE2\x80\x8E", 4);
    CHECK_STR(t, "ab\xE2\x80");
    free(t);
}

int main(void)
{
    test_find();
    test_attributes();
    test_text();
    test_trimmed();
    test_invisible_marks();
    return check_summary();
}
