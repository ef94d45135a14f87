/* Looking cities up in the generated table, and reading lists of them. */
#include "cities.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* What separates the names of a list. */
#define LIST_SEPARATORS ", \t"

/* bsearch's comparison: a slug against a table entry. */
static int compare_slug(const void *key, const void *entry)
{
    return strcmp(key, ((const struct city *)entry)->slug);
}

/* The city of a slug, by bisection of the sorted table. */
const struct city *city_find(const char *slug)
{
    if (slug == NULL)
        return NULL;
    return bsearch(slug, city_table, city_table_count, sizeof city_table[0], compare_slug);
}

/* The city of the len bytes at word, or NULL: the word is not NUL-terminated. */
static const struct city *find_word(const char *word, size_t len)
{
    char *slug = xstrndup(word, len);
    const struct city *c = city_find(slug);
    free(slug);
    return c;
}

/* Parses "", "all" or a list of slugs into a new array of table entries. */
int city_list_parse(const char *text, const struct city ***out, size_t *n, char *err,
                    size_t errlen)
{
    const struct city **list = NULL;
    size_t count = 0, words = 0, len;
    int all = 0;
    *out = NULL;
    *n = 0;
    for (const char *s = text ? text : "", *w; (w = words_next(&s, LIST_SEPARATORS, &len)) != NULL;) {
        words++;
        if (len == 3 && memcmp(w, "all", 3) == 0) {
            all = 1;
            continue;
        }
        const struct city *c = find_word(w, len);
        if (c == NULL) {
            char shown[80];
            errorf(err, errlen, "no city '%s' (GET /cities lists them)",
                   log_escape(w, len, shown, sizeof shown));
            free(list);
            return -1;
        }
        int seen = 0;
        for (size_t i = 0; i < count && !seen; i++)
            seen = list[i] == c;
        if (seen)
            continue;
        list = xrealloc(list, (count + 1) * sizeof *list);
        list[count++] = c;
    }
    if (all && words > 1) {
        errorf(err, errlen, "'all' stands alone: it already names every city");
        free(list);
        return -1;
    }
    if (all) {
        list = xmalloc(city_table_count * sizeof *list);
        for (size_t i = 0; i < city_table_count; i++)
            list[i] = &city_table[i];
        count = city_table_count;
    }
    *out = list;
    *n = count;
    return 0;
}
