/* The page of GET /, rendered on the server: the cards are in the HTML, and /page.js only
 * updates them as details land. The card's structure here and in web/page.js must agree:
 * the classes of its fields are the contract between the two. */
#include "page.h"

#include <stdlib.h>
#include <string.h>

#include "cities.h"
#include "util.h"

void page_escape(FILE *out, const char *text)
{
    for (const char *p = text; p != NULL && *p != '\0'; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*p, out);
        }
    }
}

/* The string member key of o, or NULL. */
static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Writes a list member of o joined by " / " (nothing when empty). */
static void joined(FILE *out, const json_t *o, const char *key)
{
    const json_t *list = json_object_get(o, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (i > 0)
            fputs(" / ", out);
        page_escape(out, json_string_value(json_array_get(list, i)));
    }
}

/* Writes "<p class="cls">" with the list joined, the element empty when the list is. */
static void list_field(FILE *out, const json_t *m, const char *key, const char *cls)
{
    fprintf(out, "<p class=\"%s\">", cls);
    joined(out, m, key);
    fputs("</p>\n", out);
}

/* One movie's card. */
static void card(FILE *out, const json_t *m)
{
    const char *id = str(m, "id");
    const char *status = str(m, "detail_status");
    const char *title = str(m, "title");
    const char *date = str(m, "release_date_iso") ? str(m, "release_date_iso") : str(m, "release_date");
    fputs("<li class=\"card\" id=\"m-", out);
    page_escape(out, id);
    fputs("\" data-id=\"", out);
    page_escape(out, id);
    fputs("\" data-status=\"", out);
    page_escape(out, status);
    fputs("\">\n<img class=\"poster\" src=\"/posters/", out);
    page_escape(out, id);
    fputs("\" alt=\"\" width=\"135\" height=\"200\" loading=\"lazy\">\n<div class=\"info\">\n"
          "<h2 class=\"title\"><a href=\"", out);
    page_escape(out, str(m, "url"));
    fputs("\">", out);
    page_escape(out, title ? title : "?");
    fputs("</a></h2>\n<p class=\"date\">", out);
    page_escape(out, date);
    fputs("</p>\n", out);
    list_field(out, m, "genres", "genres");
    list_field(out, m, "regions", "regions");
    list_field(out, m, "directors", "directors");
    fputs("<p class=\"numbers\"><span class=\"wish\">", out);
    json_t *wish = json_object_get(m, "wish_count");
    if (json_is_integer(wish))
        fprintf(out, "%lld", (long long)json_integer_value(wish));
    fputs("</span><span class=\"rating\">", out);
    json_t *rating = json_object_get(m, "rating");
    if (json_is_number(rating))
        fprintf(out, "%.1f", json_number_value(rating));
    fputs("</span></p>\n</div>\n</li>\n", out);
}

/* The city picker: a form that works without script (page.js submits it on change). */
static void picker(FILE *out, const char *city)
{
    fputs("<form class=\"picker\" method=\"get\" action=\"/\">\n<label for=\"city\">City</label>\n"
          "<select id=\"city\" name=\"city\">\n", out);
    if (city == NULL)
        fputs("<option value=\"\" selected>Choose a city</option>\n", out);
    for (size_t i = 0; i < city_table_count; i++) {
        const struct city *c = &city_table[i];
        fputs("<option value=\"", out);
        page_escape(out, c->slug);
        fputs(city != NULL && strcmp(city, c->slug) == 0 ? "\" selected>" : "\">", out);
        page_escape(out, c->name);
        fputs(" ", out);
        page_escape(out, c->slug);
        fputs("</option>\n", out);
    }
    fputs("</select>\n<button type=\"submit\">Show</button>\n</form>\n", out);
}

/* The line above the cards: how many movies, how many still awaited. */
static void status_line(FILE *out, const json_t *doc)
{
    long long count = json_integer_value(json_object_get(doc, "count"));
    long long pending = json_integer_value(json_object_get(doc, "pending"));
    fprintf(out, "<p class=\"status\" id=\"status\">%lld movies coming soon", count);
    if (!json_is_true(json_object_get(doc, "complete")))
        fprintf(out, "; details of %lld on their way", pending);
    fputs("</p>\n", out);
}

char *page_render(const char *city, const json_t *doc, const char *notice)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        abort();   /* out of memory, as xmalloc treats it */
    const char *name = doc ? str(doc, "city_name") : NULL;
    const struct city *known = city ? city_find(city) : NULL;
    if (name == NULL && known != NULL)
        name = known->name;
    fputs("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", out);
    if (city != NULL) {
        page_escape(out, name ? name : city);
        fputs(" · ", out);
    }
    fputs("Coming soon · moviesd</title>\n<link rel=\"stylesheet\" href=\"/page.css\">\n"
          "<script src=\"/page.js\" defer></script>\n</head>\n", out);
    int complete = doc == NULL || json_is_true(json_object_get(doc, "complete"));
    fputs("<body", out);
    if (city != NULL && doc != NULL) {
        fputs(" data-city=\"", out);
        page_escape(out, city);
        fprintf(out, "\" data-complete=\"%s\"", complete ? "true" : "false");
    }
    fputs(">\n<header>\n<h1>", out);
    if (city != NULL) {
        page_escape(out, name ? name : city);
        fputs(": ", out);
    }
    fputs("coming soon</h1>\n", out);
    picker(out, city);
    fputs("</header>\n<main>\n", out);
    if (notice != NULL) {
        fputs("<p class=\"notice\" id=\"status\">", out);
        page_escape(out, notice);
        fputs("</p>\n", out);
    } else if (doc != NULL) {
        status_line(out, doc);
        fputs("<ul class=\"cards\" id=\"cards\">\n", out);
        const json_t *movies = json_object_get(doc, "movies");
        for (size_t i = 0; i < json_array_size(movies); i++)
            card(out, json_array_get(movies, i));
        fputs("</ul>\n", out);
    }
    fputs("</main>\n<footer><p>Data from Douban, through <a href=\"", out);
    if (city != NULL && doc != NULL) {
        fputs("/movies?city=", out);
        page_escape(out, city);
    } else {
        fputs("/cities", out);
    }
    fputs("\">moviesd's JSON</a>.</p></footer>\n</body>\n</html>\n", out);
    fclose(out);
    return text;
}
