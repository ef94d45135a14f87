/* Unit tests of lib/page.c: the page holds one card per movie with its fields, escapes
 * whatever the document or the request holds, loads nothing from elsewhere, and without a
 * city is the picker alone. */
#include "check.h"
#include "cities.h"
#include "page.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A movies document of n movies, the second with a hostile title, the first with details. */
static json_t *document(int n, int complete)
{
    json_t *movies = json_array();
    for (int i = 0; i < n; i++) {
        char id[16], title[64];
        snprintf(id, sizeof id, "3600%04d", i);
        snprintf(title, sizeof title, "电影%d", i);
        json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s], s:[s], s:I, s:[], s:n, s:s}",
                              "id", id, "url", "https://movie.douban.com/subject/1/", "title",
                              i == 1 ? "<script>alert(1)</script> & \"q\" 'a'" : title,
                              "release_date", "12月18日", "release_date_iso", "2026-12-18",
                              "genres", "剧情", "科幻", "regions", "美国", "wish_count",
                              (json_int_t)12345, "directors", "rating", "detail_status",
                              i == 0 ? "ok" : "pending");
        if (i == 0) {
            json_object_set_new(m, "rating", json_real(9.4));
            json_object_set_new(m, "directors", json_pack("[s]", "克里斯托弗·诺兰"));
        }
        json_array_append_new(movies, m);
    }
    return json_pack("{s:s, s:s, s:i, s:b, s:i, s:o}", "city", "beijing", "city_name", "北京",
                     "count", n, "complete", complete, "pending", complete ? 0 : n - 1,
                     "movies", movies);
}

static void test_cards(void)
{
    json_t *doc = document(5, 0);
    char *html = page_render("beijing", doc, NULL);
    CHECK_INT(count(html, "<li class=\"card\""), 5);
    CHECK(strstr(html, "id=\"m-36000000\" data-id=\"36000000\" data-status=\"ok\"") != NULL);
    CHECK_INT(count(html, "data-status=\"pending\""), 4);
    CHECK(strstr(html, "<img class=\"poster\" src=\"/posters/36000000\"") != NULL);
    CHECK(strstr(html, "<p class=\"date\">2026-12-18</p>") != NULL);
    CHECK(strstr(html, "<p class=\"genres\">剧情 / 科幻</p>") != NULL);
    CHECK(strstr(html, "<p class=\"regions\">美国</p>") != NULL);
    CHECK(strstr(html, "<p class=\"directors\">克里斯托弗·诺兰</p>") != NULL);
    CHECK(strstr(html, "<span class=\"wish\">12345</span><span class=\"rating\">9.4</span>") != NULL);
    CHECK(strstr(html, "<span class=\"wish\">12345</span><span class=\"rating\"></span>") != NULL);
    CHECK(strstr(html, "data-city=\"beijing\" data-complete=\"false\"") != NULL);
    CHECK(strstr(html, "details of 4 on their way") != NULL);
    CHECK(strstr(html, "<title>北京 · ") != NULL);
    CHECK(strstr(html, "<option value=\"beijing\" selected>北京 beijing</option>") != NULL);
    free(html);
    json_decref(doc);
    doc = document(2, 1);
    html = page_render("beijing", doc, NULL);
    CHECK(strstr(html, "data-complete=\"true\"") != NULL);
    CHECK(strstr(html, "on their way") == NULL);
    free(html);
    json_decref(doc);
}

static void test_escaping(void)
{
    json_t *doc = document(2, 1);
    char *html = page_render("beijing", doc, NULL);
    CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;") != NULL);
    CHECK(strstr(html, "<script>alert") == NULL);
    /* The one script and the one stylesheet are files of this origin: no inline code. */
    CHECK_INT(count(html, "<script"), 1);
    CHECK(strstr(html, "<script src=\"/page.js\" defer></script>") != NULL);
    CHECK(strstr(html, "<link rel=\"stylesheet\" href=\"/page.css\">") != NULL);
    CHECK(strstr(html, "style=") == NULL);
    CHECK(strstr(html, "<style") == NULL);
    CHECK(strstr(html, "onerror=") == NULL && strstr(html, "onclick=") == NULL);
    CHECK(strstr(html, "name=\"viewport\" content=\"width=device-width, initial-scale=1\"") != NULL);
    free(html);
    json_decref(doc);
    html = page_render("beijing", NULL, "no city '<b>' (GET /cities lists them)");
    CHECK(strstr(html, "<p class=\"notice\" id=\"status\">no city &#39;&lt;b&gt;&#39; (GET /cities lists them)</p>") != NULL);
    CHECK(strstr(html, "<ul class=\"cards\"") == NULL);
    CHECK(strstr(html, "data-city") == NULL);
    free(html);
}

static void test_picker(void)
{
    char *html = page_render(NULL, NULL, NULL);
    CHECK_INT(count(html, "<option value=\""), (int)city_table_count + 1);
    CHECK(strstr(html, "<option value=\"\" selected>") != NULL);
    CHECK(strstr(html, "<li class=\"card\"") == NULL);
    CHECK(strstr(html, "<title>Coming soon · moviesd</title>") != NULL);
    free(html);
}

int main(void)
{
    test_cards();
    test_escaping();
    test_picker();
    return check_summary();
}
