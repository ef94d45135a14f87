/* Unit tests of lib/ical.c: TEXT escaping, folding at 75 octets that never splits a UTF-8
 * sequence, CRLF line ends, all-day events only for release days, the next day across
 * months, years and leap days, and a calendar that stays valid on a malformed document. */
#include "check.h"
#include "ical.h"
#include "textbuf.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ical_escape of s, new. */
static char *escaped(const char *s)
{
    struct textbuf b = {0};
    ical_escape(&b, s);
    return b.data ? b.data : xstrdup("");
}

static void test_escape(void)
{
    char *e = escaped("a,b;c\\d\ne\r\nf\rg\th\x01i");
    CHECK_STR(e, "a\\,b\\;c\\\\d\\ne\\nf\\ngh" "i");
    free(e);
    e = escaped("a\xff" "b\xe5\xbd" "c影\xf0\x9f\x98\x80");   /* not UTF-8: left out */
    CHECK_STR(e, "abc影\xf0\x9f\x98\x80");
    free(e);
    e = escaped("<script>速度&激情</script>");
    CHECK_STR(e, "<script>速度&激情</script>");   /* nothing of XML's concern */
    free(e);
}

/* Checks that folded is well folded: CRLF only, lines of at most 75 octets, each of them
 * whole UTF-8 sequences; and, unless line is NULL, continuation lines starting with a space
 * and unfolding giving line back. */
static void check_folded(const char *folded, size_t len, const char *line)
{
    struct textbuf unfolded = {0};
    size_t start = 0, lines = 0;
    int ok_ends = 1, ok_lengths = 1, ok_utf8 = 1, ok_cont = 1;
    while (start < len) {
        const char *crlf = bytes_find(folded + start, len - start, "\r\n");
        if (crlf == NULL) {
            ok_ends = 0;
            break;
        }
        size_t n = (size_t)(crlf - (folded + start));
        if (n > 75)
            ok_lengths = 0;
        if (memchr(folded + start, '\n', n) != NULL || memchr(folded + start, '\r', n) != NULL)
            ok_ends = 0;
        for (size_t i = 0; i < n;) {
            size_t k = utf8_sequence(folded + start + i, n - i);
            if (k == 0) {
                ok_utf8 = 0;
                break;
            }
            i += k;
        }
        if (line != NULL && lines > 0 && folded[start] != ' ')
            ok_cont = 0;
        if (line != NULL && lines > 0 && n > 0)
            textbuf_add(&unfolded, folded + start + 1, n - 1);
        else if (line != NULL)
            textbuf_add(&unfolded, folded + start, n);
        lines++;
        start += n + 2;
    }
    CHECK(ok_ends);
    CHECK(ok_lengths);
    CHECK(ok_utf8);
    CHECK(ok_cont);
    if (line != NULL)
        CHECK_STR(unfolded.data ? unfolded.data : "", line);
    textbuf_free(&unfolded);
}

static void test_fold(void)
{
    /* Short lines stay whole. */
    struct textbuf b = {0};
    ical_fold(&b, "SUMMARY:x", 9);
    CHECK_STR(b.data, "SUMMARY:x\r\n");
    textbuf_free(&b);

    /* Exactly 75 octets: one line; 76: two. */
    char line[400];
    memset(line, 'a', 76);
    line[75] = '\0';
    ical_fold(&b, line, 75);
    CHECK_INT(b.len, 77);
    textbuf_free(&b);
    line[75] = 'b';
    line[76] = '\0';
    ical_fold(&b, line, 76);
    CHECK_INT(b.len, 81);
    check_folded(b.data, b.len, line);
    textbuf_free(&b);

    /* Bytes that are no UTF-8 at all still end: cut at 75 octets. */
    memset(line, 0x80, 200);
    ical_fold(&b, line, 200);
    CHECK_INT(b.len, 200 + 2 * 2 + 2 + 2);
    textbuf_free(&b);

    /* Two-, three- and four-byte sequences at every offset against the fold points. */
    static const char *const chars[] = {"é", "影", "😀"};
    for (size_t c = 0; c < 3; c++) {
        for (size_t offset = 0; offset < 4; offset++) {
            size_t n = 0;
            memcpy(line, "DESCRIPTION:", 12);
            n = 12;
            for (size_t i = 0; i < offset; i++)
                line[n++] = 'x';
            while (n + strlen(chars[c]) < sizeof line - 1) {
                memcpy(line + n, chars[c], strlen(chars[c]));
                n += strlen(chars[c]);
            }
            line[n] = '\0';
            ical_fold(&b, line, n);
            check_folded(b.data, b.len, line);
            textbuf_free(&b);
        }
    }
}

static void test_next_day(void)
{
    char day[9], next[9];
    CHECK_INT(ical_day_and_next("2026-08-07", day, next), 0);
    CHECK_STR(day, "20260807");
    CHECK_STR(next, "20260808");
    CHECK_INT(ical_day_and_next("2026-12-31", day, next), 0);
    CHECK_STR(next, "20270101");
    CHECK_INT(ical_day_and_next("2026-04-30", day, next), 0);
    CHECK_STR(next, "20260501");
    CHECK_INT(ical_day_and_next("2028-02-28", day, next), 0);
    CHECK_STR(next, "20280229");
    CHECK_INT(ical_day_and_next("2028-02-29", day, next), 0);
    CHECK_STR(next, "20280301");
    CHECK_INT(ical_day_and_next("2027-02-28", day, next), 0);
    CHECK_STR(next, "20270301");
    CHECK_INT(ical_day_and_next("2027-02-29", day, next), -1);
    CHECK_INT(ical_day_and_next("2026-13-01", day, next), -1);
    CHECK_INT(ical_day_and_next("2026-08", day, next), -1);
    CHECK_INT(ical_day_and_next("2026-08-0x", day, next), -1);
    CHECK_INT(ical_day_and_next("+026-08-01", day, next), -1);
    CHECK_INT(ical_day_and_next(NULL, day, next), -1);
}

/* A city document of two movies: one with a release day and an odd title, one whose day
 * is not announced. */
static json_t *sample_doc(void)
{
    json_error_t e;
    json_t *doc = json_loads(
        "{\"city\": \"beijing\", \"city_name\": \"北京\", \"fetched_at\": \"2026-11-25T21:34:00Z\","
        " \"complete\": true, \"movies\": ["
        "{\"id\": \"3541415\", \"url\": \"https://movie.douban.com/subject/3541415/\","
        " \"title\": \"盗梦,空间;续\\\\集\\n<script>&\", \"release_date_iso\": \"2026-12-31\","
        " \"release_date_precision\": \"day\", \"genres\": [\"剧情\", \"科幻\"],"
        " \"regions\": [\"美国\"], \"directors\": [\"克里斯托弗·诺兰\"], \"wish_count\": 12345},"
        "{\"id\": \"36000001\", \"url\": \"https://movie.douban.com/subject/36000001/\","
        " \"title\": \"七月\", \"release_date_iso\": \"2027-07\", \"release_date_precision\": \"month\","
        " \"genres\": [], \"regions\": [], \"directors\": [], \"wish_count\": null}]}",
        0, &e);
    return doc;
}

/* Whether every LF of the len bytes at p ends a CRLF. */
static int crlf_only(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return 0;
    return len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n';
}

/* The number of times needle occurs in hay. */
static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_render(void)
{
    json_t *doc = sample_doc();
    CHECK(doc != NULL);
    struct blob *cal = ical_render(doc, 3600);
    const char *t = cal->data;
    CHECK(crlf_only(t, cal->len));
    check_folded(t, cal->len, NULL);
    CHECK(strncmp(t, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:", 37) == 0);
    CHECK(strstr(t, "\r\nEND:VCALENDAR\r\n") == t + cal->len - 17);
    CHECK(strstr(t, "\r\nX-WR-CALNAME:即将上映 · 北京\r\n") != NULL);
    CHECK(strstr(t, "\r\nREFRESH-INTERVAL;VALUE=DURATION:PT3600S\r\n") != NULL);
    CHECK_INT(occurrences(t, "BEGIN:VEVENT\r\n"), 1);   /* the month-only movie has none */
    CHECK(strstr(t, "\r\nUID:douban-3541415-beijing@moviesd\r\n") != NULL);
    CHECK(strstr(t, "\r\nDTSTAMP:20261125T213400Z\r\n") != NULL);
    CHECK(strstr(t, "\r\nDTSTART;VALUE=DATE:20261231\r\n") != NULL);
    CHECK(strstr(t, "\r\nDTEND;VALUE=DATE:20270101\r\n") != NULL);
    CHECK(strstr(t, "\r\nSUMMARY:盗梦\\,空间\\;续\\\\集\\n<script>&\r\n") != NULL);
    CHECK(strstr(t, "\r\nURL:https://movie.douban.com/subject/3541415/\r\n") != NULL);
    CHECK(strstr(t, "七月") == NULL);
    /* The description, unfolded: its facts separated by escaped line breaks. */
    const char *d = strstr(t, "\r\nDESCRIPTION:");
    CHECK(d != NULL);
    if (d != NULL) {
        struct textbuf u = {0};
        for (const char *p = d + 2; !(p[0] == '\r' && p[1] == '\n' && p[2] != ' '); p++) {
            if (p[0] == '\r' && p[1] == '\n' && p[2] == ' ')
                p += 3;
            textbuf_add(&u, p, 1);
        }
        CHECK_STR(u.data, "DESCRIPTION:类型：剧情 / 科幻\\n地区：美国\\n导演：克里斯托弗·诺兰\\n12345 人想看");
        textbuf_free(&u);
    }
    /* The same document gives the same bytes. */
    struct blob *again = ical_render(doc, 3600);
    CHECK(again->len == cal->len && memcmp(again->data, cal->data, cal->len) == 0);
    blob_unref(again);
    blob_unref(cal);
    json_decref(doc);

    /* Nothing usable: still a calendar, without events. */
    cal = ical_render(NULL, 0);
    CHECK(crlf_only(cal->data, cal->len));
    CHECK(strstr(cal->data, "BEGIN:VCALENDAR\r\n") == cal->data);
    CHECK(strstr(cal->data, "VEVENT") == NULL);
    CHECK(strstr(cal->data, "REFRESH-INTERVAL") == NULL);
    blob_unref(cal);
    json_t *odd = json_loads("{\"city\": \"../x\", \"fetched_at\": 5, \"movies\": [1, {\"id\": \"12a\","
                             " \"release_date_precision\": \"day\", \"release_date_iso\": \"2026-01-01\"},"
                             " {\"id\": \"7\", \"release_date_precision\": \"day\","
                             " \"release_date_iso\": \"2026-02-30\"}]}", 0, NULL);
    cal = ical_render(odd, 0);
    CHECK(strstr(cal->data, "VEVENT") == NULL);
    CHECK(strstr(cal->data, "../x") == NULL);
    blob_unref(cal);
    json_decref(odd);
}

int main(void)
{
    test_escape();
    test_fold();
    test_next_day();
    test_render();
    return check_summary();
}
