/* Douban's cities: the table generated from its now-playing page's city picker
 * (lib/city_table.c, made by scripts/gen-cities.py), looked up by slug, and the city lists
 * settings name (prefetch_cities). */
#ifndef MOVIESD_CITIES_H
#define MOVIESD_CITIES_H

#include <stddef.h>

struct city {
    const char *slug;   /* in Douban's URLs: "beijing", or the id for cities without a pinyin slug */
    const char *id;     /* Douban's city id as the page writes it: "108288" */
    const char *name;   /* "北京" */
};

/* Every city once, sorted by slug in byte order (strcmp). */
extern const struct city city_table[];
extern const size_t city_table_count;

/* The city whose slug is exactly slug (borrowed, static), or NULL if the table has none. */
const struct city *city_find(const char *slug);

/* Parses a list of cities: "" (or only separators) is the empty list, "all" every city of
 * the table in table order, anything else slugs separated by commas and/or blanks, each
 * kept once, in the order first given. *out is a new array of borrowed entries, for the
 * caller to free, NULL when *n is 0. Returns 0, or -1 with *out NULL, *n 0 and the reason
 * in err: a slug not in the table ("no city 'xyz' (GET /cities lists them)"), or "all"
 * beside other names. */
int city_list_parse(const char *text, const struct city ***out, size_t *n, char *err,
                    size_t errlen);

#endif
