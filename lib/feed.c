/* Atom and RSS 2.0 rendering of a city's coming-soon movies. */
#include "feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "douban.h"

/* The tag URI prefix of every id (see feed.h). */
#define TAG_PREFIX "tag:moviesd,2026:movies/"
/* Now playing's ids are apart from coming soon's: a movie can be in both feeds. */
#define TAG_PREFIX_NOWPLAYING "tag:moviesd,2026:nowplaying/"

void feed_xml_escape(struct textbuf *out, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(s + i, len - i);
        unsigned char c = (unsigned char)s[i];
        if (n == 0) {
            i++;
            continue;
        }
        if (n == 1) {
            switch (c) {
            case '&': textbuf_puts(out, "&amp;"); break;
            case '<': textbuf_puts(out, "&lt;"); break;
            case '>': textbuf_puts(out, "&gt;"); break;
            case '"': textbuf_puts(out, "&quot;"); break;
            case '\'': textbuf_puts(out, "&#39;"); break;
            default:
                if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                    textbuf_add(out, s + i, 1);
            }
        } else if (!(n == 3 && c == 0xEF && (unsigned char)s[i + 1] == 0xBF &&
                     ((unsigned char)s[i + 2] == 0xBE || (unsigned char)s[i + 2] == 0xBF))) {
            textbuf_add(out, s + i, n);
        }
        i += n;
    }
}

int feed_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n >= 1 && n <= 20 && strspn(id, "0123456789") == n;
}

int feed_url_plain(const char *url)
{
    if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7F || strchr("\"'<>\\^`{|}", *p) != NULL)
            return 0;
    return 1;
}

/* Appends "label：a / b" for a non-empty list of strings. */
static void list_fact(struct textbuf *out, const char *label, const json_t *list)
{
    size_t i, shown = 0;
    const json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (s == NULL)
            continue;
        if (shown++ == 0) {
            if (out->len > 0)
                textbuf_add(out, "\n", 1);
            textbuf_puts(out, label);
        } else {
            textbuf_puts(out, " / ");
        }
        textbuf_puts(out, s);
    }
}

char *feed_movie_facts(const json_t *movie, int with_date)
{
    struct textbuf out = {0};
    const char *date = json_string_value(json_object_get(movie, "release_date_iso"));
    if (date == NULL)
        date = json_string_value(json_object_get(movie, "release_date"));
    if (with_date && date != NULL)
        textbuf_printf(&out, "上映：%s", date);
    list_fact(&out, "类型：", json_object_get(movie, "genres"));
    list_fact(&out, "地区：", json_object_get(movie, "regions"));
    list_fact(&out, "导演：", json_object_get(movie, "directors"));
    const json_t *wish = json_object_get(movie, "wish_count");
    if (json_is_integer(wish))
        textbuf_printf(&out, "%s%lld 人想看", out.len > 0 ? "\n" : "",
                       (long long)json_integer_value(wish));
    char *s = out.data ? out.data : xstrdup("");
    return s;
}

/* The document's city when it is a valid slug, else "". */
static const char *doc_city(const json_t *doc)
{
    const char *city = json_string_value(json_object_get(doc, "city"));
    return city != NULL && douban_city_valid(city) ? city : "";
}

/* Whether the document is a city's now-playing answer: its source is that page. */
static int doc_nowplaying(const json_t *doc)
{
    const char *source = json_string_value(json_object_get(doc, "source"));
    return source != NULL && strstr(source, "/cinema/nowplaying/") != NULL;
}

static const char *doc_tag_prefix(const json_t *doc)
{
    return doc_nowplaying(doc) ? TAG_PREFIX_NOWPLAYING : TAG_PREFIX;
}

char *feed_title(const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "city_name"));
    if (name == NULL)
        name = doc_city(doc);
    return xasprintf("%s · %s", doc_nowplaying(doc) ? "正在上映" : "即将上映",
                     name[0] != '\0' ? name : "?");
}

/* The document's fetched_at when it has the API's form "YYYY-MM-DDTHH:MM:SSZ", else the epoch. */
static const char *doc_updated(const json_t *doc)
{
    static const char shape[] = "0000-00-00T00:00:00Z";
    const char *t = json_string_value(json_object_get(doc, "fetched_at"));
    if (t == NULL || strlen(t) != sizeof shape - 1)
        return "1970-01-01T00:00:00Z";
    for (size_t i = 0; shape[i] != '\0'; i++)
        if (shape[i] == '0' ? t[i] < '0' || t[i] > '9' : t[i] != shape[i])
            return "1970-01-01T00:00:00Z";
    return t;
}

/* An RFC 822 date (RSS's) for an updated time of doc_updated()'s form. */
static void rfc822(const char *iso, char out[32])
{
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y = atoi(iso), m = atoi(iso + 5), d = atoi(iso + 8);
    if (m < 1 || m > 12)
        m = 1;
    /* Days since 1970-01-01 (Howard Hinnant's days_from_civil); that day was a Thursday. */
    int yy = y - (m <= 2);
    long era = (yy >= 0 ? yy : yy - 399) / 400;
    long yoe = yy - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long days_since = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    long wd = ((days_since % 7) + 7) % 7;
    snprintf(out, 32, "%s, %02d %s %04d %.8s +0000", days[wd], d % 100, months[m - 1], y % 10000,
             iso + 11);
}

/* The media type a poster URL's extension suggests (the proxy checks the bytes). */
static const char *poster_type(const char *url)
{
    const char *dot = url ? strrchr(url, '.') : NULL;
    if (dot == NULL)
        return "image/jpeg";
    if (strcmp(dot, ".webp") == 0)
        return "image/webp";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    if (strcmp(dot, ".gif") == 0)
        return "image/gif";
    return "image/jpeg";
}

/* The movie's upstream poster (or thumbnail) URL, NULL when it has neither. */
static const char *poster_of(const json_t *movie)
{
    const char *p = json_string_value(json_object_get(movie, "poster"));
    return p ? p : json_string_value(json_object_get(movie, "thumbnail"));
}

/* The HTML shown for a movie by feed readers, as text (to be XML-escaped): the poster, its
 * facts, its summary, each piece of text HTML-escaped. */
static char *movie_html(const json_t *movie, const char *id, const char *title, const char *base)
{
    struct textbuf html = {0};
    if (poster_of(movie) != NULL) {
        textbuf_printf(&html, "<p><img src=\"%s/posters/%s\" alt=\"", base, id);
        feed_xml_escape(&html, title);
        textbuf_puts(&html, "\"/></p>");
    }
    char *facts = feed_movie_facts(movie, 1);
    textbuf_puts(&html, "<p>");
    for (const char *line = facts, *end; *line != '\0'; line = *end ? end + 1 : end) {
        end = line + strcspn(line, "\n");
        char *piece = xstrndup(line, (size_t)(end - line));
        if (line != facts)
            textbuf_puts(&html, "<br/>");
        feed_xml_escape(&html, piece);
        free(piece);
    }
    textbuf_puts(&html, "</p>");
    free(facts);
    const char *summary = json_string_value(json_object_get(movie, "summary"));
    if (summary != NULL) {
        textbuf_puts(&html, "<p>");
        feed_xml_escape(&html, summary);
        textbuf_puts(&html, "</p>");
    }
    return html.data;
}

/* <name>text</name>, escaped. */
static void element(struct textbuf *out, const char *name, const char *text)
{
    textbuf_printf(out, "<%s>", name);
    feed_xml_escape(out, text);
    textbuf_printf(out, "</%s>\n", name);
}

/* What an entry needs of a movie; 0 when it cannot have one (no valid id). */
static int movie_basics(const json_t *movie, const char **id, const char **title, const char **url)
{
    *id = json_string_value(json_object_get(movie, "id"));
    if (!json_is_object(movie) || !feed_id_valid(*id))
        return 0;
    *title = json_string_value(json_object_get(movie, "title"));
    if (*title == NULL)
        *title = *id;
    *url = json_string_value(json_object_get(movie, "url"));
    if (!feed_url_plain(*url))
        *url = NULL;
    return 1;
}

struct blob *feed_atom(const json_t *doc, const char *base)
{
    struct textbuf out = {0};
    const char *city = doc_city(doc), *updated = doc_updated(doc);
    textbuf_puts(&out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                       "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"zh-CN\">\n");
    textbuf_printf(&out, "<id>%s%s</id>\n", doc_tag_prefix(doc), city);
    char *title = feed_title(doc);
    element(&out, "title", title);
    free(title);
    textbuf_printf(&out, "<updated>%s</updated>\n", updated);
    const char *source = json_string_value(json_object_get(doc, "source"));
    if (feed_url_plain(source))
        textbuf_printf(&out, "<link rel=\"alternate\" type=\"text/html\" href=\"%s\"/>\n", source);
    textbuf_printf(&out, "<link rel=\"self\" type=\"application/atom+xml\" href=\"%s/movies.atom?city=%s\"/>\n",
                   base, city);
    textbuf_puts(&out, "<author><name>moviesd</name></author>\n<generator>moviesd</generator>\n");
    size_t i;
    const json_t *movie;
    json_array_foreach(json_object_get(doc, "movies"), i, movie) {
        const char *id, *name, *url;
        if (!movie_basics(movie, &id, &name, &url))
            continue;
        textbuf_puts(&out, "<entry>\n");
        textbuf_printf(&out, "<id>%s%s/%s</id>\n", doc_tag_prefix(doc), city, id);
        element(&out, "title", name);
        textbuf_printf(&out, "<updated>%s</updated>\n", updated);
        if (url != NULL)
            textbuf_printf(&out, "<link rel=\"alternate\" type=\"text/html\" href=\"%s\"/>\n", url);
        const char *poster = poster_of(movie);
        if (poster != NULL)
            textbuf_printf(&out, "<link rel=\"enclosure\" type=\"%s\" href=\"%s/posters/%s\"/>\n",
                           poster_type(poster), base, id);
        size_t g;
        const json_t *genre;
        json_array_foreach(json_object_get(movie, "genres"), g, genre) {
            if (!json_is_string(genre))
                continue;
            textbuf_puts(&out, "<category term=\"");
            feed_xml_escape(&out, json_string_value(genre));
            textbuf_puts(&out, "\"/>\n");
        }
        char *facts = feed_movie_facts(movie, 1);
        element(&out, "summary", facts);
        free(facts);
        char *html = movie_html(movie, id, name, base);
        textbuf_puts(&out, "<content type=\"html\">");
        feed_xml_escape(&out, html);
        textbuf_puts(&out, "</content>\n</entry>\n");
        free(html);
    }
    textbuf_puts(&out, "</feed>\n");
    return textbuf_blob(&out);
}

struct blob *feed_rss(const json_t *doc, const char *base, long ttl_seconds)
{
    struct textbuf out = {0};
    const char *city = doc_city(doc);
    char date[32];
    rfc822(doc_updated(doc), date);
    textbuf_puts(&out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                       "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n");
    char *title = feed_title(doc);
    element(&out, "title", title);
    const char *source = json_string_value(json_object_get(doc, "source"));
    element(&out, "link", feed_url_plain(source) ? source : "https://movie.douban.com/");
    element(&out, "description", title);
    free(title);
    if (base[0] != '\0')
        textbuf_printf(&out, "<atom:link rel=\"self\" type=\"application/rss+xml\" href=\"%s/movies.rss?city=%s\"/>\n",
                       base, city);
    textbuf_printf(&out, "<language>zh-cn</language>\n<lastBuildDate>%s</lastBuildDate>\n"
                         "<generator>moviesd</generator>\n", date);
    if (ttl_seconds > 0)
        textbuf_printf(&out, "<ttl>%ld</ttl>\n", (ttl_seconds + 59) / 60);
    size_t i;
    const json_t *movie;
    json_array_foreach(json_object_get(doc, "movies"), i, movie) {
        const char *id, *name, *url;
        if (!movie_basics(movie, &id, &name, &url))
            continue;
        textbuf_puts(&out, "<item>\n");
        element(&out, "title", name);
        if (url != NULL)
            element(&out, "link", url);
        textbuf_printf(&out, "<guid isPermaLink=\"false\">%s%s/%s</guid>\n", doc_tag_prefix(doc),
                       city, id);
        textbuf_printf(&out, "<pubDate>%s</pubDate>\n", date);
        const char *poster = poster_of(movie);
        if (poster != NULL && base[0] != '\0')
            textbuf_printf(&out, "<enclosure url=\"%s/posters/%s\" length=\"0\" type=\"%s\"/>\n",
                           base, id, poster_type(poster));
        size_t g;
        const json_t *genre;
        json_array_foreach(json_object_get(movie, "genres"), g, genre)
            if (json_is_string(genre))
                element(&out, "category", json_string_value(genre));
        char *html = movie_html(movie, id, name, base);
        element(&out, "description", html);
        free(html);
        textbuf_puts(&out, "</item>\n");
    }
    textbuf_puts(&out, "</channel>\n</rss>\n");
    return textbuf_blob(&out);
}
