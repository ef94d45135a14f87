/* Unit tests of lib/feed.c: XML escaping of every text (titles with <script> and &
 * included), the characters XML cannot carry left out, stable tag URI ids, links to the
 * poster proxy relative or absolute by the public base, RSS dates, and documents that stay
 * well formed on a malformed answer. */
#include "check.h"
#include "feed.h"
#include "textbuf.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* feed_xml_escape of s, new. */
static char *escaped(const char *s)
{
    struct textbuf b = {0};
    feed_xml_escape(&b, s);
    return b.data ? b.data : xstrdup("");
}

static void test_escape(void)
{
    char *e = escaped("<script>alert(\"x\")&'</script>");
    CHECK_STR(e, "&lt;script&gt;alert(&quot;x&quot;)&amp;&#39;&lt;/script&gt;");
    free(e);
    /* Controls but TAB, LF, CR; U+FFFE, U+FFFF; bytes that are not UTF-8: all left out. */
    e = escaped("a\x01" "b\tc\nd\re\x7f" "f\xef\xbf\xbe" "g\xef\xbf\xbf" "h\xff" "i\xe5\xbd" "j影");
    CHECK_STR(e, "ab\tc\nd\re\x7f" "fghij影");
    free(e);
}

static void test_helpers(void)
{
    CHECK(feed_id_valid("3541415"));
    CHECK(!feed_id_valid(""));
    CHECK(!feed_id_valid("12a"));
    CHECK(!feed_id_valid(NULL));
    CHECK(!feed_id_valid("123456789012345678901"));
    CHECK(feed_url_plain("https://movie.douban.com/subject/1/"));
    CHECK(!feed_url_plain("javascript:alert(1)"));
    CHECK(!feed_url_plain("https://x/\"><script>"));
    CHECK(!feed_url_plain("https://x/ y"));
    CHECK(!feed_url_plain(NULL));
}

static json_t *sample_doc(void)
{
    return json_loads(
        "{\"city\": \"beijing\", \"city_name\": \"北京\", \"fetched_at\": \"2026-11-25T21:34:00Z\","
        " \"source\": \"https://movie.douban.com/cinema/later/beijing/\", \"movies\": ["
        "{\"id\": \"3541415\", \"url\": \"https://movie.douban.com/subject/3541415/\","
        " \"title\": \"<script>alert(1)</script>&速度\", \"release_date_iso\": \"2026-12-31\","
        " \"release_date_precision\": \"day\", \"genres\": [\"剧情\", \"科&幻\"],"
        " \"regions\": [\"美国\"], \"directors\": [], \"wish_count\": 12345,"
        " \"poster\": \"https://img9.doubanio.com/view/photo/p1.webp\", \"summary\": \"a <b> & c\"},"
        "{\"id\": \"36000001\", \"url\": \"javascript:alert(1)\", \"title\": null,"
        " \"release_date\": \"07月\", \"release_date_iso\": \"2027-07\", \"genres\": [],"
        " \"regions\": [], \"directors\": [], \"wish_count\": null, \"poster\": null,"
        " \"thumbnail\": null},"
        "{\"id\": \"../../etc\", \"title\": \"bad id\"}]}",
        0, NULL);
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_facts(void)
{
    json_t *doc = sample_doc();
    char *f = feed_movie_facts(json_array_get(json_object_get(doc, "movies"), 0), 1);
    CHECK_STR(f, "上映：2026-12-31\n类型：剧情 / 科&幻\n地区：美国\n12345 人想看");
    free(f);
    f = feed_movie_facts(json_array_get(json_object_get(doc, "movies"), 1), 0);
    CHECK_STR(f, "");
    free(f);
    char *t = feed_title(doc);
    CHECK_STR(t, "即将上映 · 北京");
    free(t);
    json_decref(doc);
}

static void test_atom(void)
{
    json_t *doc = sample_doc();
    struct blob *b = feed_atom(doc, "");
    const char *t = b->data;
    CHECK(strncmp(t, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\"", 77) == 0);
    CHECK(strstr(t, "<script") == NULL);
    CHECK(strstr(t, "<id>tag:moviesd,2026:movies/beijing</id>") != NULL);
    CHECK(strstr(t, "<id>tag:moviesd,2026:movies/beijing/3541415</id>") != NULL);
    CHECK(strstr(t, "<id>tag:moviesd,2026:movies/beijing/36000001</id>") != NULL);
    CHECK(strstr(t, "etc") == NULL);
    CHECK_INT(occurrences(t, "<entry>"), 2);
    CHECK(strstr(t, "<title>&lt;script&gt;alert(1)&lt;/script&gt;&amp;速度</title>") != NULL);
    CHECK(strstr(t, "<title>36000001</title>") != NULL);   /* no title: the id */
    CHECK(strstr(t, "<updated>2026-11-25T21:34:00Z</updated>") != NULL);
    CHECK(strstr(t, "href=\"https://movie.douban.com/subject/3541415/\"") != NULL);
    CHECK(strstr(t, "javascript") == NULL);
    CHECK(strstr(t, "<link rel=\"enclosure\" type=\"image/webp\" href=\"/posters/3541415\"/>") != NULL);
    CHECK_INT(occurrences(t, "rel=\"enclosure\""), 1);     /* the second movie has no poster */
    CHECK(strstr(t, "<category term=\"科&amp;幻\"/>") != NULL);
    CHECK(strstr(t, "<summary>上映：2026-12-31\n类型：剧情 / 科&amp;幻\n地区：美国\n12345 人想看</summary>") != NULL);
    /* The HTML content is escaped twice: once as HTML, once as XML. */
    CHECK(strstr(t, "&lt;img src=&quot;/posters/3541415&quot; alt=&quot;&amp;lt;script&amp;gt;") != NULL);
    CHECK(strstr(t, "a &amp;lt;b&amp;gt; &amp;amp; c") != NULL);
    CHECK(strstr(t, "href=\"/movies.atom?city=beijing\"") != NULL);
    CHECK(strcmp(t + b->len - 8, "</feed>\n") == 0);
    blob_unref(b);

    b = feed_atom(doc, "https://movies.example.org:8443");
    CHECK(strstr(b->data, "href=\"https://movies.example.org:8443/posters/3541415\"") != NULL);
    CHECK(strstr(b->data, "<link rel=\"self\" type=\"application/atom+xml\" "
                          "href=\"https://movies.example.org:8443/movies.atom?city=beijing\"/>") != NULL);
    /* Ids do not depend on the base. */
    CHECK(strstr(b->data, "<id>tag:moviesd,2026:movies/beijing/3541415</id>") != NULL);
    blob_unref(b);
    json_decref(doc);

    b = feed_atom(NULL, "");
    CHECK(strstr(b->data, "<updated>1970-01-01T00:00:00Z</updated>") != NULL);
    CHECK(strstr(b->data, "<entry>") == NULL);
    CHECK(strstr(b->data, "</feed>") != NULL);
    blob_unref(b);
}

static void test_rss(void)
{
    json_t *doc = sample_doc();
    struct blob *b = feed_rss(doc, "", 3600);
    const char *t = b->data;
    CHECK(strstr(t, "<rss version=\"2.0\"") != NULL);
    CHECK(strstr(t, "<script") == NULL);
    CHECK_INT(occurrences(t, "<item>"), 2);
    CHECK(strstr(t, "<guid isPermaLink=\"false\">tag:moviesd,2026:movies/beijing/3541415</guid>") != NULL);
    CHECK(strstr(t, "<link>https://movie.douban.com/subject/3541415/</link>") != NULL);
    CHECK(strstr(t, "<pubDate>Wed, 25 Nov 2026 21:34:00 +0000</pubDate>") != NULL);
    CHECK(strstr(t, "<lastBuildDate>Wed, 25 Nov 2026 21:34:00 +0000</lastBuildDate>") != NULL);
    CHECK(strstr(t, "<ttl>60</ttl>") != NULL);
    CHECK(strstr(t, "<enclosure") == NULL);     /* RSS wants absolute URLs: none without a base */
    CHECK(strstr(t, "atom:link") == NULL);
    CHECK(strstr(t, "<category>科&amp;幻</category>") != NULL);
    blob_unref(b);
    b = feed_rss(doc, "http://127.0.0.1:8080", 0);
    CHECK(strstr(b->data, "<enclosure url=\"http://127.0.0.1:8080/posters/3541415\" length=\"0\" type=\"image/webp\"/>") != NULL);
    CHECK_INT(occurrences(b->data, "<enclosure"), 1);
    CHECK(strstr(b->data, "<ttl>") == NULL);
    blob_unref(b);
    json_decref(doc);
    json_t *leap = json_loads("{\"city\": \"x\", \"fetched_at\": \"2028-02-29T00:00:09Z\"}", 0, NULL);
    b = feed_rss(leap, "", 0);
    CHECK(strstr(b->data, "<lastBuildDate>Tue, 29 Feb 2028 00:00:09 +0000</lastBuildDate>") != NULL);
    blob_unref(b);
    json_decref(leap);
}

int main(void)
{
    test_escape();
    test_helpers();
    test_facts();
    test_atom();
    test_rss();
    return check_summary();
}
