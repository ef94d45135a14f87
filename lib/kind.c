/* Listing kinds, their names and the keys of a city for each. */
#include "kind.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[KIND_COUNT] = {"later", "nowplaying"};

/* The prefix of a now-playing key: a slug never holds a colon, so keys cannot collide. */
#define NOWPLAYING_PREFIX "nowplaying:"

const char *kind_name(enum kind k)
{
    return (unsigned)k < KIND_COUNT ? kind_names[k] : kind_names[KIND_LATER];
}

int kind_parse(const char *s, size_t len, enum kind *out)
{
    for (int k = 0; k < KIND_COUNT; k++)
        if (s != NULL && strlen(kind_names[k]) == len && memcmp(s, kind_names[k], len) == 0) {
            *out = (enum kind)k;
            return 0;
        }
    return -1;
}

void kind_key(enum kind k, const char *city, char out[KIND_KEY_SIZE])
{
    snprintf(out, KIND_KEY_SIZE, "%s%s", k == KIND_NOWPLAYING ? NOWPLAYING_PREFIX : "", city);
}

const char *kind_split(const char *key, enum kind *k)
{
    size_t n = strlen(NOWPLAYING_PREFIX);
    if (strncmp(key, NOWPLAYING_PREFIX, n) == 0) {
        *k = KIND_NOWPLAYING;
        return key + n;
    }
    *k = KIND_LATER;
    return key;
}
