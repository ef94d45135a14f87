/* The envelope of a value shared through Redis: named binary fields behind a short text
 * header, versioned, so that what one replica writes another reads back field by field, and
 * so that a value that is not one (corrupted, cut short, written by a newer version, put
 * there by hand) is refused by a strict parser instead of being believed.
 *
 *     MVENV 1 3\n            magic, format version, number of fields (0..ENVELOPE_MAX_FIELDS)
 *     status 3\n             one line per field: name ([a-z0-9_], 1..ENVELOPE_NAME_MAX bytes)
 *     etag 16\n              and length in bytes (decimal, no sign, no leading zero)
 *     body 5120\n
 *     200<16 bytes><5120 bytes>   the fields' bytes, in header order, and nothing after
 *
 * Field names are unique. A field may hold any bytes, NULs included. */
#ifndef MOVIESD_ENVELOPE_H
#define MOVIESD_ENVELOPE_H

#include <stddef.h>

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX_FIELDS 16
#define ENVELOPE_NAME_MAX 31
/* Largest field: far above any answer, low enough that lengths add up without overflow. */
#define ENVELOPE_FIELD_MAX ((size_t)1 << 30)

struct envelope_field {
    const char *name;       /* NUL-terminated */
    const char *data;       /* len bytes, not NUL-terminated; may be NULL when len is 0 */
    size_t len;
};

/* A parsed envelope: names copied into it, data borrowed from the parsed bytes. */
struct envelope {
    size_t count;
    struct envelope_field fields[ENVELOPE_MAX_FIELDS];
    char names[ENVELOPE_MAX_FIELDS][ENVELOPE_NAME_MAX + 1];
};

/* Packs count fields (borrowed) into *out (new, *len bytes; NUL-terminated for convenience,
 * the NUL not counted). Fails with -1 and the reason in err, *out untouched, when count is
 * over ENVELOPE_MAX_FIELDS, a name is not valid or repeated, or a field is over
 * ENVELOPE_FIELD_MAX. */
int envelope_pack(const struct envelope_field *fields, size_t count, char **out, size_t *len,
                  char *err, size_t errlen);

/* Parses the len bytes at data (borrowed: out's fields point into them). Fails with -1 and
 * the reason in err on anything but an envelope of ENVELOPE_VERSION exactly as described
 * above; out's content is then unspecified. */
int envelope_parse(const char *data, size_t len, struct envelope *out, char *err, size_t errlen);

/* The field called name (borrowed from e), or NULL. */
const struct envelope_field *envelope_find(const struct envelope *e, const char *name);

/* The field called name read as a decimal in [min, max] (parse_integer's rules, and no
 * leading zero; min >= 0).
 * Returns 0, or -1 with the reason in err when it is missing or not such a number. */
int envelope_integer(const struct envelope *e, const char *name, long long min, long long max,
                     long long *out, char *err, size_t errlen);

#endif
