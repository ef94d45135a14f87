/* libFuzzer target: the calendar and the feeds (ical_render, feed_atom, feed_rss), which
 * put scraped text into documents that calendar apps and feed readers parse.
 *
 * Input: a /movies document as JSON; bytes that are not one are taken as one text (if
 * jansson takes them as UTF-8) and put into every text field of a one-movie document.
 *
 * Checked: the calendar begins and ends as a VCALENDAR, has CRLF line ends only, lines of
 * at most 75 octets that are each strict UTF-8 without control bytes, and as many
 * END:VEVENT as BEGIN:VEVENT lines; each feed is strict UTF-8 without the characters XML
 * 1.0 forbids, and well formed as far as its writer's narrow XML goes: one prolog, one root,
 * tags balanced, no raw < & or > in text or attribute values but the five entities. */
#include "fuzz.h"

#include <jansson.h>

#include "feed.h"
#include "ical.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

/* Checks the calendar's bytes. */
static void check_ics(const struct blob *b)
{
    const char *p = b->data;
    size_t len = b->len, begins = 0, ends = 0;
    FUZZ_CHECK(len >= 32 && strncmp(p, "BEGIN:VCALENDAR\r\n", 17) == 0);
    FUZZ_CHECK(strcmp(p + len - 15, "END:VCALENDAR\r\n") == 0);
    for (size_t start = 0; start < len;) {
        const char *crlf = strstr(p + start, "\r\n");
        FUZZ_CHECK(crlf != NULL);
        size_t n = (size_t)(crlf - (p + start));
        FUZZ_CHECK(n <= 75);
        FUZZ_CHECK(fuzz_utf8_valid(p + start, n));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)p[start + i] >= 0x20 && p[start + i] != 0x7F);
        begins += n == 12 && memcmp(p + start, "BEGIN:VEVENT", 12) == 0;
        ends += n == 10 && memcmp(p + start, "END:VEVENT", 10) == 0;
        start += n + 2;
    }
    FUZZ_CHECK(begins == ends);
}

/* Whether the text at p is one of the entities the writer uses; their length in *n. */
static int entity(const char *p, size_t *n)
{
    static const char *const names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(p, names[i], strlen(names[i])) == 0) {
            *n = strlen(names[i]);
            return 1;
        }
    return 0;
}

/* Checks a feed's bytes. */
static void check_xml(const struct blob *b)
{
    const char *p = b->data;
    size_t len = b->len;
    FUZZ_CHECK(fuzz_utf8_valid(p, len));
    FUZZ_CHECK(strstr(p, "\xEF\xBF\xBE") == NULL && strstr(p, "\xEF\xBF\xBF") == NULL);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\n' || c == '\r');
    }
    static const char prolog[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
    FUZZ_CHECK(strncmp(p, prolog, sizeof prolog - 1) == 0);
    const char *stack[16];
    size_t depth = 0, roots = 0;
    for (size_t i = sizeof prolog - 1; i < len;) {
        size_t n;
        if (p[i] == '&') {
            FUZZ_CHECK(entity(p + i, &n));
            i += n;
            continue;
        }
        FUZZ_CHECK(p[i] != '>');
        if (p[i] != '<') {
            FUZZ_CHECK(depth > 0 || p[i] == '\n');
            i++;
            continue;
        }
        const char *close = strchr(p + i, '>');
        FUZZ_CHECK(close != NULL);
        const char *tag = p + i + 1;
        size_t taglen = (size_t)(close - tag);
        int closing = tag[0] == '/', empty = taglen > 0 && close[-1] == '/';
        const char *name = tag + closing;
        size_t namelen = strcspn(name, " />");
        FUZZ_CHECK(namelen > 0);
        /* Attribute values: double-quoted, nothing raw inside but entities. */
        int quoted = 0;
        for (const char *q = name + namelen; q < close; q++) {
            FUZZ_CHECK(*q != '<' && *q != '\'');
            if (*q == '"')
                quoted = !quoted;
            else if (*q == '&')
                FUZZ_CHECK(quoted && entity(q, &n));
        }
        FUZZ_CHECK(!quoted);
        if (closing) {
            FUZZ_CHECK(depth > 0);
            depth--;
            FUZZ_CHECK(strncmp(stack[depth], name, namelen) == 0 &&
                       strcspn(stack[depth], " />") == namelen);
        } else if (!empty) {
            if (depth == 0)
                roots++;
            FUZZ_CHECK(depth < sizeof stack / sizeof stack[0]);
            stack[depth++] = name;
        }
        i = (size_t)(close - p) + 1;
    }
    FUZZ_CHECK(depth == 0 && roots == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (doc == NULL) {
        json_t *t = json_stringn((const char *)data, size);
        if (t == NULL)
            return 0;
        doc = json_pack("{s:s, s:O, s:s, s:O, s:[{s:s, s:O, s:O, s:s, s:s, s:[O], s:[O],"
                        " s:[O], s:I, s:O, s:O}]}",
                        "city", "beijing", "city_name", t, "fetched_at", "2026-11-25T21:34:00Z",
                        "source", t, "movies", "id", "3541415", "url", t, "title", t,
                        "release_date_iso", "2026-12-31", "release_date_precision", "day",
                        "genres", t, "regions", t, "directors", t, "wish_count", (json_int_t)1,
                        "summary", t, "poster", t);
        json_decref(t);
        FUZZ_CHECK(doc != NULL);
    }
    struct blob *ics = ical_render(doc, 3600);
    check_ics(ics);
    blob_unref(ics);
    for (int absolute = 0; absolute < 2; absolute++) {
        const char *base = absolute ? "https://movies.example.org:8443" : "";
        struct blob *atom = feed_atom(doc, base);
        check_xml(atom);
        blob_unref(atom);
        struct blob *rss = feed_rss(doc, base, 3600);
        check_xml(rss);
        blob_unref(rss);
    }
    json_decref(doc);
    return 0;
}
