/* libFuzzer target: any page, through html_parse (the guarded gumbo parse every Douban
 * page goes through) and then the dom_ helpers over every element of the tree.
 *
 * Checked besides memory safety: html_parse refuses exactly what html.h says (bytes that
 * are not UTF-8 text, a scan depth past HTML_MAX_DEPTH), with a UTF-8 reason and no tree;
 * the scan never reports more than HTML_MAX_DEPTH + 1; walking with dom_find reaches
 * every element of the tree, once; every text dom_text, dom_text_after, dom_text_lines and
 * dom_attr_text give is NULL or non-empty UTF-8 trimmed of blanks, one line where promised. */
#include "fuzz.h"

#include "dom.h"
#include "html.h"

/* Elements looked at per page: enough for every fixture, bounded for the fuzzer's speed
 * (each dom_text walks the element's subtree). */
#define MAX_ELEMENTS 4000

/* Whether the trimmable character (HTML whitespace, U+00A0, U+3000) starts at p. */
static int blank_starts(const char *p, size_t n)
{
    return (n >= 1 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')) ||
           (n >= 2 && memcmp(p, "\xC2\xA0", 2) == 0) || (n >= 3 && memcmp(p, "\xE3\x80\x80", 3) == 0);
}

/* Whether s (len bytes) ends with a trimmable character. */
static int blank_ends(const char *s, size_t len)
{
    return (len >= 1 && blank_starts(s + len - 1, 1)) ||
           (len >= 2 && blank_starts(s + len - 2, 2) && s[len - 2] == '\xC2') ||
           (len >= 3 && blank_starts(s + len - 3, 3) && s[len - 3] == '\xE3');
}

/* Checks a new text: NULL, or non-empty UTF-8 without blanks at its ends; with one_line,
 * no whitespace but single spaces. Frees it. */
static void check_text(char *s, int one_line)
{
    if (s != NULL) {
        size_t len = strlen(s);
        FUZZ_CHECK(fuzz_text_ok(s));
        FUZZ_CHECK(!blank_starts(s, len) && !blank_ends(s, len));
        if (one_line)
            FUZZ_CHECK(strpbrk(s, "\t\n\r\f") == NULL && strstr(s, "  ") == NULL);
    }
    free(s);
}

/* Checks every helper on one element. */
static void check_element(const GumboNode *n)
{
    check_text(dom_text(n), 1);
    check_text(dom_text_after(n, GUMBO_TAG_BR), 1);
    check_text(dom_text_lines(n), 0);
    char *raw = dom_raw_text(n);
    FUZZ_CHECK(raw == NULL || (raw[0] != '\0' && fuzz_utf8_valid(raw, strlen(raw))));
    free(raw);
    const GumboVector *attrs = &n->v.element.attributes;
    for (unsigned i = 0; i < attrs->length; i++) {
        const GumboAttribute *a = attrs->data[i];
        FUZZ_CHECK(dom_attr(n, a->name) != NULL);
        check_text(dom_attr_text(n, a->name), 0);
    }
}

/* The elements under root (root excluded), counted over gumbo's child vectors with a stack
 * of our own: a second opinion on dom_find's walk. */
static size_t count_elements(const GumboNode *root)
{
    size_t count = 0, n = 0, cap = 64;
    const GumboNode **stack = malloc(cap * sizeof *stack);
    FUZZ_CHECK(stack != NULL);
    stack[n++] = root;
    while (n > 0) {
        const GumboNode *e = stack[--n];
        if (e->type != GUMBO_NODE_ELEMENT && e->type != GUMBO_NODE_TEMPLATE)
            continue;
        count += e != root;
        const GumboVector *kids = &e->v.element.children;
        for (unsigned i = 0; i < kids->length; i++) {
            if (n == cap) {
                cap *= 2;
                stack = realloc(stack, cap * sizeof *stack);
                FUZZ_CHECK(stack != NULL);
            }
            stack[n++] = kids->data[i];
        }
    }
    free(stack);
    return count;
}

/* Quiet: nothing here logs, but the library may. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

/* One page. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *html = (const char *)data;
    size_t depth = html_nesting_depth(html, size);
    FUZZ_CHECK(depth <= HTML_MAX_DEPTH + 1);
    int text = fuzz_utf8_valid(html, size);

    GumboOutput *out = (GumboOutput *)&depth;   /* html_parse must overwrite it */
    char err[200];
    memset(err, 'x', sizeof err);
    int r = html_parse(html, size, &out, err, sizeof err);
    FUZZ_CHECK(r == ((!text || depth > HTML_MAX_DEPTH) ? -1 : 0));
    if (r != 0) {
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
        return 0;
    }
    FUZZ_CHECK(out != NULL && out->root != NULL);

    /* Every element once: into each element's subtree first (dom_find under it), else on
     * past the subtree (dom_find after it). The count must be the tree's own. */
    const struct dom_sel *any = DOM_SEL(LAST, NULL, NULL);
    size_t seen = 0;
    const GumboNode *n = dom_find(out->root, NULL, any);
    while (n != NULL && seen < MAX_ELEMENTS) {
        FUZZ_CHECK(n != out->root);
        check_element(n);
        seen++;
        const GumboNode *inside = dom_find(n, NULL, any);
        n = inside ? inside : dom_find(out->root, n, any);
    }
    if (n == NULL)
        FUZZ_CHECK(seen == count_elements(out->root));
    check_element(out->root);
    html_free(out);
    return 0;
}
