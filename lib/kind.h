/* The two listings a city has on Douban: coming soon (/cinema/later/<city>/, the default) and
 * now playing (/cinema/nowplaying/<city>/). Everything keyed by city (the answer cache, its
 * single-flight, the fleet's shared answers and locks, responses made once) is keyed by the
 * city's key for a kind: the slug itself for coming soon, so its keys are those of before
 * now playing existed, and "nowplaying:<slug>" for now playing. */
#ifndef MOVIESD_KIND_H
#define MOVIESD_KIND_H

#include <stddef.h>

enum kind {
    KIND_LATER = 0,       /* coming soon */
    KIND_NOWPLAYING,      /* now playing */
    KIND_COUNT
};

/* Room for any city's key: "nowplaying:" and a slug of at most 32 characters. */
#define KIND_KEY_SIZE 48

/* The kind's name as the API writes it ("later", "nowplaying"; borrowed, static), which is
 * also its part of Douban's listing path /cinema/<name>/<city>/. */
const char *kind_name(enum kind k);

/* The kind named by the len bytes at s (not NUL-terminated). 0, or -1 for any other text. */
int kind_parse(const char *s, size_t len, enum kind *out);

/* Writes the key of city (a valid slug) for kind k to out. */
void kind_key(enum kind k, const char *city, char out[KIND_KEY_SIZE]);

/* The kind of a key and its city (borrowed from key): the inverse of kind_key. */
const char *kind_split(const char *key, enum kind *k);

#endif
