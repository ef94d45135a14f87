/* Reading Douban's pages: the listings (coming soon, now playing) and a movie's own page,
 * through the safe parse of lib/html.c and the tree helpers of lib/dom.c. Each extractor's
 * comment says which part of the page it reads and which of the page's traps it allows for. */
#include "douban.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dom.h"
#include "html.h"
#include "log.h"
#include "util.h"

/* --- Lists and pages -------------------------------------------------------------------- */

/* Adds the trimmed non-empty items of a "a / b / c" list, each once, up to
 * DOUBAN_MAX_LIST_ITEMS: the check for repeats makes longer lists cost their square. */
static void add_split(struct strlist *out, const char *s)
{
    for (size_t seen = 0; s && *s && out->n < DOUBAN_MAX_LIST_ITEMS && seen < 2 * DOUBAN_MAX_LIST_ITEMS;
         seen++) {
        size_t n = strcspn(s, "/");
        char *item = dom_trimmed(s, n);
        if (item && !strlist_contains(out, item))
            strlist_push_owned(out, item);
        else
            free(item);
        s += n + (s[n] == '/');
    }
}

/* Adds the text of every element under root matching sel, each once, up to
 * DOUBAN_MAX_LIST_ITEMS. */
static void add_texts(struct strlist *out, const GumboNode *root, const struct dom_sel *sel)
{
    size_t seen = 0;
    for (const GumboNode *n = dom_find(root, NULL, sel);
         n && out->n < DOUBAN_MAX_LIST_ITEMS && seen++ < 2 * DOUBAN_MAX_LIST_ITEMS;
         n = dom_find(root, n, sel)) {
        char *t = dom_text(n);
        if (t && !strlist_contains(out, t))
            strlist_push_owned(out, t);
        else
            free(t);
    }
}

/* Parses a page, or says why it is malformed. */
static enum douban_verdict parse_page(const char *html, size_t len, GumboOutput **out,
                                      char *err, size_t errlen)
{
    return html_parse(html, len, out, err, errlen) == 0 ? DOUBAN_OK : DOUBAN_MALFORMED;
}

/* The marks of Douban's refusals: its abnormal-requests page's text, its login bounce
 * page's title. */
#define BLOCK_PAGE_MARK "有异常请求"
#define LOGIN_PAGE_MARK "登录跳转页"

/* Whether a <title> element's raw bytes may spell text otherwise than as plain UTF-8 (a
 * character reference, a comment, a nested tag): then only a parse can tell what it says.
 * "&amp;" alone does not count: it spells "&", which is in no mark, and every now-playing
 * page's title has one ("上海 - 在线购票&amp;影讯"). */
static int title_obscured(const char *html, size_t len)
{
    for (size_t i = 0; i + 7 <= len; i++) {
        if (html[i] != '<' || strncasecmp(html + i + 1, "title", 5) != 0)
            continue;
        const char *open_end = memchr(html + i, '>', len - i);
        if (open_end == NULL)
            return 1;
        for (const char *p = open_end + 1; p < html + len; p++) {
            if (*p == '&' && ((size_t)(html + len - p) < 5 || memcmp(p, "&amp;", 5) != 0))
                return 1;
            if (*p == '<')   /* </title> ends it plainly; anything else obscures it */
                return (size_t)(html + len - p) < 8 || strncasecmp(p, "</title", 7) != 0;
        }
        return 1;
    }
    return 0;
}

int douban_may_be_refusal(const char *html, size_t len)
{
    return bytes_find(html, len, BLOCK_PAGE_MARK) != NULL ||
           bytes_find(html, len, LOGIN_PAGE_MARK) != NULL || title_obscured(html, len);
}

/* What a page without the expected anchor is: Douban's not-found page, its block or login
 * page, or a layout we do not know. */
static enum douban_verdict without_anchor(const GumboOutput *page, const char *html, size_t len,
                                          const char *anchor, char *err, size_t errlen)
{
    char *title = dom_text(dom_find(page->root, NULL, DOM_SEL(TITLE, NULL, NULL)));
    enum douban_verdict v = DOUBAN_CHANGED;
    if (title && strstr(title, "页面不存在")) {
        v = DOUBAN_NOT_FOUND;
        errorf(err, errlen, "Douban says the page does not exist");
    } else if ((title && strstr(title, LOGIN_PAGE_MARK)) ||
               bytes_find(html, len, BLOCK_PAGE_MARK)) {
        v = DOUBAN_BLOCKED;
        errorf(err, errlen, "Douban answered its abnormal-requests or login page");
    } else {
        char shown[80];
        errorf(err, errlen, "no %s in the page (title \"%s\")", anchor,
            title ? log_escape(title, strlen(title), shown, sizeof shown) : "");
    }
    free(title);
    return v;
}

/* --- The listing ------------------------------------------------------------------------ */

/* Douban's genre names: a fixed list, unlike regions. */
static const char genre_words[] =
    "剧情 喜剧 动作 爱情 科幻 动画 悬疑 惊悚 恐怖 犯罪 同性 音乐 歌舞 传记 历史 战争 西部 "
    "奇幻 冒险 灾难 武侠 情色 纪录片 短片 家庭 儿童 古装 运动 黑色电影 真人秀 脱口秀 鬼怪 "
    "舞台艺术 戏曲 荒诞 Adult Reality-TV Talk-Show Game-Show News";

/* Region names seen on Douban, for telling a lone region row from a genre row. */
static const char region_words[] =
    "中国大陆 中国香港 中国台湾 中国澳门 香港 台湾 澳门 中国 美国 英国 法国 德国 日本 韩国 "
    "朝鲜 印度 泰国 意大利 西班牙 葡萄牙 加拿大 澳大利亚 新西兰 俄罗斯 苏联 乌克兰 巴西 "
    "墨西哥 阿根廷 智利 哥伦比亚 秘鲁 瑞典 丹麦 挪威 芬兰 冰岛 荷兰 比利时 卢森堡 瑞士 "
    "奥地利 爱尔兰 波兰 捷克 斯洛伐克 匈牙利 罗马尼亚 保加利亚 希腊 土耳其 以色列 伊朗 "
    "黎巴嫩 埃及 摩洛哥 突尼斯 南非 尼日利亚 肯尼亚 阿联酋 卡塔尔 沙特阿拉伯 约旦 巴勒斯坦 "
    "新加坡 马来西亚 印度尼西亚 菲律宾 越南 柬埔寨 缅甸 巴基斯坦 孟加拉国 尼泊尔 不丹 "
    "斯里兰卡 蒙古 哈萨克斯坦 格鲁吉亚 亚美尼亚 塞尔维亚 克罗地亚 斯洛文尼亚 爱沙尼亚 "
    "拉脱维亚 立陶宛 塞浦路斯 马耳他 西德 东德 捷克斯洛伐克 南斯拉夫";

/* How many of the row's " / " items are words of list. */
static size_t known_items(const char *row, const char *list)
{
    struct strlist items = {0};
    add_split(&items, row);
    size_t known = 0;
    for (size_t i = 0; i < items.n; i++)
        known += words_contain(list, " ", items.v[i], strlen(items.v[i]));
    strlist_free(&items);
    return known;
}

/* Parses the wish count of a row like "5028人想看" or "12,345 人想看" (pattern
 * ([\d,]+)\s*人?\s*想看, commas ignored). 1 if the row is one. */
static int wish_row(const char *row, long long *count)
{
    static const char ren[] = "人";
    const char *hit = strstr(row, "想看");
    if (hit == NULL)
        return 0;
    const char *p = hit;
    while (p > row && html_is_space(p[-1]))
        p--;
    if ((size_t)(p - row) >= strlen(ren) && memcmp(p - strlen(ren), ren, strlen(ren)) == 0)
        p -= strlen(ren);
    while (p > row && html_is_space(p[-1]))
        p--;
    const char *digits_end = p;
    while (p > row && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == ','))
        p--;
    long long n = 0;
    int any = 0;
    for (; p < digits_end; p++) {
        if (*p == ',')
            continue;
        if (n > (LLONG_MAX - 9) / 10)
            return 0;
        n = n * 10 + (*p - '0');
        any = 1;
    }
    if (!any)
        return 0;
    *count = n;
    return 1;
}

/* Sorts the rows that are neither date nor wish count into genres and regions.
 *
 * Real pages print date, genres, regions, wish count, but any row can be missing, so order
 * alone cannot say what a lone row is. Genres come from Douban's short fixed list; regions
 * are open-ended. A row is the genre row if it has a known genre and no known region, the
 * region row if it has a known region and no known genre; a row that is neither takes the
 * slot still free, genres first (Douban's order). Rows beyond two are ignored. */
static void sort_rows(struct listing_item *it, char **rows, size_t n)
{
    const char *genres = NULL, *regions = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t g = known_items(rows[i], genre_words), r = known_items(rows[i], region_words);
        if (g > 0 && r == 0 && genres == NULL)
            genres = rows[i];
        else if (r > 0 && g == 0 && regions == NULL)
            regions = rows[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i] == genres || rows[i] == regions)
            continue;
        if (genres == NULL)
            genres = rows[i];
        else if (regions == NULL)
            regions = rows[i];
    }
    add_split(&it->genres, genres);
    add_split(&it->regions, regions);
}

/* Whether a link's host[:port] (len bytes) is Douban's or the upstream's. Anything but a
 * plain name and port (user@host, backslashes, ...) is refused. */
static int host_allowed(const char *host, size_t len, const char *upstream_host)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789.-";
    const char *colon = memchr(host, ':', len);
    size_t hl = colon ? (size_t)(colon - host) : len;
    if (hl == 0 || strspn(host, name_chars) < hl)
        return 0;
    if (colon && (len - hl < 2 || strspn(colon + 1, "0123456789") < len - hl - 1))
        return 0;
    return (hl == 16 && strncasecmp(host, "movie.douban.com", 16) == 0) ||
           (upstream_host && hl == strlen(upstream_host) && strncasecmp(host, upstream_host, hl) == 0);
}

/* The subject id (digits, at most 20) of a link to /subject/<id>/ on an allowed host;
 * relative links are on the page's own host. 0 if the link is anything else. */
static int subject_id(const char *href, const char *upstream_host, char id[21])
{
    const char *p = href;
    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    else if (p[0] == '/' && p[1] == '/')
        p += 2;
    else if (p[0] != '/')
        return 0;
    if (p != href) {
        size_t host_len = strcspn(p, "/?#");
        if (!host_allowed(p, host_len, upstream_host))
            return 0;
        p += host_len;
    }
    if (strncmp(p, "/subject/", 9) != 0)
        return 0;
    p += 9;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 20 || (p[n] != '/' && p[n] != '\0' && p[n] != '?' && p[n] != '#'))
        return 0;
    memcpy(id, p, n);
    id[n] = '\0';
    return 1;
}

/* Reads one div.item of the listing into out (or skips it, with a warning). */
static void read_item(const GumboNode *item, const char *upstream_host, struct listing *out)
{
    const GumboNode *h3 = dom_find(item, NULL, DOM_SEL(H3, NULL, NULL));
    const GumboNode *link = dom_find(h3, NULL, DOM_SEL(A, "href", ""));
    const GumboNode *thumb = dom_find(item, NULL, DOM_SEL(A, "class", "thumb"));
    const char *href = dom_attr(link ? link : thumb ? thumb : item, "href");
    char id[21];
    if (href == NULL || !subject_id(href, upstream_host, id)) {
        char shown[200];
        log_warn("listing: skipped an item whose link is not a Douban movie: \"%s\"",
                 href ? log_escape(href, strlen(href), shown, sizeof shown) : "(none)");
        return;
    }
    struct listing_item *it = listing_add(out);
    it->id = xstrdup(id);
    it->url = xasprintf("https://movie.douban.com/subject/%s/", id);
    it->title = dom_text(link);
    it->thumbnail = dom_attr_text(dom_find(thumb, NULL, DOM_SEL(IMG, NULL, NULL)), "src");

    char *rows[8];
    size_t nrows = 0;
    int month, day;
    for (const GumboNode *li = dom_find(item, NULL, DOM_SEL(LI, NULL, NULL)); li;
         li = dom_find(item, li, DOM_SEL(LI, NULL, NULL))) {
        char *row = dom_text(li);
        if (row == NULL)
            continue;
        if (it->release_date == NULL && movie_parse_listing_date(row, &month, &day) == 0)
            it->release_date = row;
        else if (it->wish_count < 0 && wish_row(row, &it->wish_count))
            free(row);
        else if (nrows < sizeof rows / sizeof rows[0])
            rows[nrows++] = row;
        else
            free(row);
    }
    sort_rows(it, rows, nrows);
    for (size_t i = 0; i < nrows; i++)
        free(rows[i]);
}

/* Whether the page is for city, as far as its #location says: the city it shows is
 * data-uid. Writes why not to err. */
static int page_for_city(const GumboOutput *page, const char *city, char *err, size_t errlen)
{
    if (city == NULL)
        return 1;
    char *shown_uid = dom_attr_text(dom_find(page->root, NULL, DOM_SEL(LAST, "id", "location")),
                                    "data-uid");
    int same = shown_uid == NULL || strcmp(shown_uid, city) == 0;
    if (!same) {
        char a[80], b[80];
        errorf(err, errlen, "the upstream answered for city '%s' instead of '%s'",
               log_escape(shown_uid, strlen(shown_uid), a, sizeof a),
               log_escape(city, strlen(city), b, sizeof b));
    }
    free(shown_uid);
    return same;
}

/* The items of #showing-soon, in page order, if the page is city's. */
enum douban_verdict douban_parse_listing(const char *html, size_t len, const char *upstream_host,
                                         const char *city, struct listing *out, char *err,
                                         size_t errlen)
{
    GumboOutput *page;
    enum douban_verdict v = parse_page(html, len, &page, err, errlen);
    if (v != DOUBAN_OK)
        return v;
    const GumboNode *soon = dom_find(page->root, NULL, DOM_SEL(LAST, "id", "showing-soon"));
    if (soon == NULL) {
        v = without_anchor(page, html, len, "#showing-soon", err, errlen);
    } else if (!page_for_city(page, city, err, errlen)) {
        v = DOUBAN_CHANGED;
    } else {
        const struct dom_sel *item_sel = DOM_SEL(DIV, "class", "item");
        for (const GumboNode *item = dom_find(soon, NULL, item_sel); item;
             item = dom_find(soon, item, item_sel))
            read_item(item, upstream_host, out);
    }
    html_free(page);
    return v;
}

/* --- The movie page --------------------------------------------------------------------- */

/* The bare text after the #info label (label "语言" matches "语言:" and "语言：") up to the
 * next <br>, on one line; NULL if there is no such label. */
static char *info_value(const GumboNode *info, const char *label)
{
    size_t ll = strlen(label);
    const struct dom_sel *pl = DOM_SEL(SPAN, "class", "pl");
    for (const GumboNode *n = dom_find(info, NULL, pl); n; n = dom_find(info, n, pl)) {
        char *t = dom_text(n);
        int hit = t && strncmp(t, label, ll) == 0 &&
                  (t[ll] == '\0' || strcmp(t + ll, ":") == 0 || strcmp(t + ll, "：") == 0);
        free(t);
        if (!hit)
            continue;
        return dom_text_after(n, GUMBO_TAG_BR);
    }
    return NULL;
}

/* The "image" of the page's JSON-LD block, or NULL. Douban's JSON there can hold raw
 * newlines inside strings, which strict JSON refuses; control characters become spaces
 * first (outside strings that changes nothing). */
static char *json_ld_image(const GumboNode *root)
{
    const GumboNode *script = dom_find(root, NULL, DOM_SEL(SCRIPT, "type", "application/ld+json"));
    char *text = dom_raw_text(script);
    for (char *p = text; p && *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    json_t *ld = text ? json_loads(text, 0, NULL) : NULL;
    const char *image = json_string_value(json_object_get(ld, "image"));
    char *result = image ? dom_trimmed(image, strlen(image)) : NULL;
    json_decref(ld);
    free(text);
    return result;
}

/* The YYYY-MM-DD of the first release date labelled exactly (中国大陆), or NULL. Re-runs
 * (中国大陆重映) and other regions do not count. */
static char *mainland_release(const GumboNode *root)
{
    static const char mainland[] = "(中国大陆)";
    const struct dom_sel *sel = DOM_SEL(SPAN, "property", "v:initialReleaseDate");
    for (const GumboNode *n = dom_find(root, NULL, sel); n; n = dom_find(root, n, sel)) {
        char *v = dom_attr_text(n, "content");
        if (v == NULL)
            v = dom_text(n);
        int ok = v && strlen(v) == 10 + strlen(mainland) && strcmp(v + 10, mainland) == 0 &&
                 strspn(v, "0123456789") == 4 && v[4] == '-' &&
                 strspn(v + 5, "0123456789") == 2 && v[7] == '-' &&
                 strspn(v + 8, "0123456789") == 2;
        if (ok) {
            v[10] = '\0';
            return v;
        }
        free(v);
    }
    return NULL;
}

/* Parses s (may be NULL) as a whole integer in [min, max], else -1. */
static long long integer_or_unknown(const char *s, long long min, long long max)
{
    long long v;
    return s && parse_integer(s, min, max, &v) == 0 ? v : -1;
}

/* The year in span.year, "(2010)", or -1. */
static long year_of(const GumboNode *root)
{
    char *t = dom_text(dom_find(root, NULL, DOM_SEL(SPAN, "class", "year")));
    long year = -1;
    size_t n = t ? strlen(t) : 0;
    if (n > 2 && t[0] == '(' && t[n - 1] == ')') {
        t[n - 1] = '\0';
        year = (long)integer_or_unknown(t + 1, 1000, 9999);
    }
    free(t);
    return year;
}

/* The rating in strong[property=v:average]: empty for unrated films, hence -1. */
static double rating_of(const GumboNode *root)
{
    char *t = dom_text(dom_find(root, NULL, DOM_SEL(STRONG, "property", "v:average")));
    double rating = -1;
    if (t) {
        char *end;
        double r = strtod(t, &end);
        if (*end == '\0' && t[0] >= '0' && t[0] <= '9' && r >= 0 && r <= 10)
            rating = r;
    }
    free(t);
    return rating;
}

/* The IMDb id ("tt" and digits) in the IMDb row (old pages: "IMDb链接" and a link). */
static char *imdb_of(const GumboNode *info)
{
    char *v = info_value(info, "IMDb");
    if (v == NULL)
        v = info_value(info, "IMDb链接");
    char *id = NULL;
    for (const char *p = v; p && (p = strstr(p, "tt")) != NULL; p += 2) {
        size_t n = strspn(p + 2, "0123456789");
        if (n > 0) {
            id = xstrndup(p, n + 2);
            break;
        }
    }
    free(v);
    return id;
}

/* Fills d from a movie page whose anchors were found. */
static void read_detail(const GumboNode *root, const GumboNode *mainpic,
                        const GumboNode *itemreviewed, struct movie_detail *d)
{
    const GumboNode *image = dom_find(mainpic, NULL, DOM_SEL(IMG, "rel", "v:image"));
    d->title = dom_text(itemreviewed);
    d->original_title = dom_attr_text(image ? image : dom_find(root, NULL, DOM_SEL(IMG, "rel", "v:image")),
                                "alt");
    d->year = year_of(root);
    d->poster = dom_attr_text(image, "src");
    if (d->poster == NULL)
        d->poster = dom_attr_text(dom_find(root, NULL, DOM_SEL(META, "property", "og:image")), "content");
    if (d->poster == NULL)
        d->poster = json_ld_image(root);
    add_texts(&d->directors, root, DOM_SEL(A, "rel", "v:directedBy"));
    add_texts(&d->actors, root, DOM_SEL(A, "rel", "v:starring"));
    add_texts(&d->genres, root, DOM_SEL(SPAN, "property", "v:genre"));
    d->release_date_cn = mainland_release(root);

    const GumboNode *runtime = dom_find(root, NULL, DOM_SEL(SPAN, "property", "v:runtime"));
    char *minutes = dom_attr_text(runtime, "content");
    d->runtime_minutes = (long)integer_or_unknown(minutes, 1, 100000);
    free(minutes);

    const GumboNode *info = dom_find(root, NULL, DOM_SEL(DIV, "id", "info"));
    char *regions = info_value(info, "制片国家/地区"), *languages = info_value(info, "语言");
    add_split(&d->regions, regions);
    add_split(&d->languages, languages);
    free(regions);
    free(languages);
    d->imdb_id = imdb_of(info);

    d->rating = rating_of(root);
    char *votes = dom_text(dom_find(root, NULL, DOM_SEL(SPAN, "property", "v:votes")));
    d->votes = integer_or_unknown(votes, 0, LLONG_MAX);
    free(votes);

    const GumboNode *summary = dom_find(root, NULL, DOM_SEL(SPAN, "class", "all hidden"));
    if (summary == NULL)
        summary = dom_find(root, NULL, DOM_SEL(SPAN, "property", "v:summary"));
    /* Paragraphs split at <br>, each trimmed of spaces and U+3000 indentation. */
    d->summary = dom_text_lines(summary);
}

/* A movie page's fields. */
enum douban_verdict douban_parse_detail(const char *html, size_t len, struct movie_detail *out,
                                        char *err, size_t errlen)
{
    GumboOutput *page;
    enum douban_verdict v = parse_page(html, len, &page, err, errlen);
    if (v != DOUBAN_OK)
        return v;
    const GumboNode *mainpic = dom_find(page->root, NULL, DOM_SEL(LAST, "id", "mainpic"));
    const GumboNode *title = dom_find(page->root, NULL, DOM_SEL(SPAN, "property", "v:itemreviewed"));
    if (mainpic == NULL && title == NULL)
        v = without_anchor(page, html, len, "#mainpic or v:itemreviewed", err, errlen);
    else
        read_detail(page->root, mainpic, title, out);
    html_free(page);
    return v;
}

/* --- Now playing ------------------------------------------------------------------------ */

/* Whether the len bytes at s are all characters below U+0800 (Latin, Greek, Cyrillic...):
 * no CJK, whose characters take three bytes or more in UTF-8. */
static int latin_word(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0xE0)
            return 0;
    return 1;
}

/* Adds the names of a now-playing attribute, each once, up to DOUBAN_MAX_LIST_ITEMS. Names
 * are separated by blanks ("日本 德国", "钱国伟 张成 金鑫") or slashes; glue_latin keeps a run of
 * Latin words together as one name ("Julio Soto Gurpide"), since a person's Latin name has
 * blanks of its own, unlike a Chinese one. */
static void add_names(struct strlist *out, const char *s, int glue_latin)
{
    size_t seen = 0;
    while (s && *s && out->n < DOUBAN_MAX_LIST_ITEMS && seen++ < 2 * DOUBAN_MAX_LIST_ITEMS) {
        while (*s == '/' || html_is_space(*s))
            s++;
        const char *start = s, *end = s;
        for (;;) {
            size_t n = 0;
            while (end[n] && end[n] != '/' && !html_is_space(end[n]))
                n++;
            int latin = glue_latin && latin_word(end, n);
            end += n;
            /* Another Latin word after blanks belongs to the same name. */
            const char *next = end;
            while (html_is_space(*next))
                next++;
            size_t m = 0;
            while (next[m] && next[m] != '/' && !html_is_space(next[m]))
                m++;
            if (!latin || next == end || m == 0 || !latin_word(next, m))
                break;
            end = next;
        }
        if (end == start)
            break;
        char *name = dom_trimmed(start, (size_t)(end - start));
        if (name && !strlist_contains(out, name))
            strlist_push_owned(out, name);
        else
            free(name);
        s = end;
    }
}

/* A now-playing score: "9.1", or "0" when the movie is not rated (enough) yet: -1 then. */
static double score_of(const char *t)
{
    if (t == NULL || t[0] < '0' || t[0] > '9')
        return -1;
    char *end;
    double r = strtod(t, &end);
    return *end == '\0' && r > 0 && r <= 10 ? r : -1;
}

/* A now-playing duration in whole minutes: "123分钟", "93 分钟", "119分钟(中国大陆)" (the
 * version it is of), or a short film's "7分02秒". -1 if it is none of these. */
static long duration_of(const char *t)
{
    static const char minutes[] = "分钟", fen[] = "分", miao[] = "秒";
    size_t n = t ? strspn(t, "0123456789") : 0;
    if (n == 0 || n > 6)
        return -1;
    const char *unit = t + n;
    while (*unit == ' ')
        unit++;
    if (strncmp(unit, minutes, strlen(minutes)) != 0) {
        if (strncmp(unit, fen, strlen(fen)) != 0)
            return -1;
        const char *sec = unit + strlen(fen);
        size_t sn = strspn(sec, "0123456789");
        if (sn == 0 || strncmp(sec + sn, miao, strlen(miao)) != 0)
            return -1;
    }
    char digits[8];
    memcpy(digits, t, n);
    digits[n] = '\0';
    return (long)integer_or_unknown(digits, 1, 100000);
}

/* Reads one li.list-item of #nowplaying into out (or skips it, with a warning). */
static void read_playing(const GumboNode *item, struct listing *out)
{
    char *id = dom_attr_text(item, "data-subject");
    if (id == NULL)
        id = dom_attr_text(item, "id");
    size_t n = id ? strspn(id, "0123456789") : 0;
    if (n == 0 || n > 20 || id[n] != '\0') {
        char shown[80];
        log_warn("now playing: skipped an item without a movie id: \"%s\"",
                 id ? log_escape(id, strlen(id), shown, sizeof shown) : "(none)");
        free(id);
        return;
    }
    /* Not the page's #upcoming, should Douban ever nest one inside. */
    char *category = dom_attr_text(item, "data-category");
    int other = category && strcmp(category, "nowplaying") != 0;
    free(category);
    if (other) {
        free(id);
        return;
    }
    struct listing_item *it = listing_add(out);
    it->id = id;
    it->url = xasprintf("https://movie.douban.com/subject/%s/", id);
    it->title = dom_attr_text(item, "data-title");
    if (it->title == NULL)
        it->title = dom_text(dom_find(item, NULL, DOM_SEL(LI, "class", "stitle")));
    char *v = dom_attr_text(item, "data-score");
    it->rating = score_of(v);
    free(v);
    v = dom_attr_text(item, "data-release");
    it->year = (long)integer_or_unknown(v, 1000, 9999);
    free(v);
    v = dom_attr_text(item, "data-duration");
    it->runtime_minutes = duration_of(v);
    free(v);
    v = dom_attr_text(item, "data-votecount");
    it->votes = integer_or_unknown(v, 0, LLONG_MAX);
    free(v);
    v = dom_attr_text(item, "data-region");
    add_names(&it->regions, v, 0);
    free(v);
    v = dom_attr_text(item, "data-director");
    add_names(&it->directors, v, 1);
    free(v);
    v = dom_attr_text(item, "data-actors");
    add_split(&it->actors, v);
    free(v);
    const GumboNode *poster = dom_find(item, NULL, DOM_SEL(LI, "class", "poster"));
    it->thumbnail = dom_attr_text(dom_find(poster, NULL, DOM_SEL(IMG, NULL, NULL)), "src");
    it->poster = it->thumbnail ? xstrdup(it->thumbnail) : NULL;
}

/* The items of #nowplaying, in page order, if the page is city's; #upcoming is left out. */
enum douban_verdict douban_parse_nowplaying(const char *html, size_t len, const char *city,
                                            struct listing *out, char *err, size_t errlen)
{
    GumboOutput *page;
    enum douban_verdict v = parse_page(html, len, &page, err, errlen);
    if (v != DOUBAN_OK)
        return v;
    const GumboNode *playing = dom_find(page->root, NULL, DOM_SEL(LAST, "id", "nowplaying"));
    if (playing == NULL) {
        v = without_anchor(page, html, len, "#nowplaying", err, errlen);
    } else if (!page_for_city(page, city, err, errlen)) {
        v = DOUBAN_CHANGED;
    } else {
        const struct dom_sel *item_sel = DOM_SEL(LI, "class", "list-item");
        for (const GumboNode *item = dom_find(playing, NULL, item_sel); item;
             item = dom_find(playing, item, item_sel))
            read_playing(item, out);
    }
    html_free(page);
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Small public helpers.
 * ------------------------------------------------------------------------------------- */

/* 1-32 lower-case ASCII letters, or 1-32 digits: Douban's slug for a city without a pinyin
 * one is its id (/cinema/later/118378/ is 榆林). */
int douban_city_valid(const char *city)
{
    if (city == NULL)
        return 0;
    size_t n = strspn(city, "abcdefghijklmnopqrstuvwxyz");
    if (n == 0)
        n = strspn(city, "0123456789");
    return n >= 1 && n <= 32 && city[n] == '\0';
}

/* Names used in logs and error messages. */
const char *douban_verdict_name(enum douban_verdict v)
{
    switch (v) {
    case DOUBAN_OK:
        return "ok";
    case DOUBAN_NOT_FOUND:
        return "not_found";
    case DOUBAN_BLOCKED:
        return "blocked";
    case DOUBAN_CHANGED:
        return "changed";
    case DOUBAN_MALFORMED:
        return "malformed";
    }
    return "unknown";
}
