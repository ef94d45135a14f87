/* The parser reads the header with explicit bounds everywhere (no strtol, no sscanf, no
 * reliance on a NUL): the bytes come from Redis, where anything may have been written. */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAGIC "MVENV "
/* "ENVELOPE_FIELD_MAX" has 10 digits: a longer length is refused before it is summed. */
#define LENGTH_DIGITS_MAX 10

/* Whether name is a valid field name: [a-z0-9_], 1..ENVELOPE_NAME_MAX bytes. */
static int name_valid(const char *name, size_t len)
{
    if (len == 0 || len > ENVELOPE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Packs fields into a new buffer: the header, then the bytes. */
int envelope_pack(const struct envelope_field *fields, size_t count, char **out, size_t *len,
                  char *err, size_t errlen)
{
    if (count > ENVELOPE_MAX_FIELDS) {
        errorf(err, errlen, "%zu fields, at most %d", count, ENVELOPE_MAX_FIELDS);
        return -1;
    }
    size_t header = sizeof MAGIC + 24, body = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = fields[i].name;
        if (name == NULL || !name_valid(name, strlen(name))) {
            errorf(err, errlen, "field %zu: name is not 1..%d of [a-z0-9_]", i, ENVELOPE_NAME_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(fields[j].name, name) == 0) {
                errorf(err, errlen, "field %s given twice", name);
                return -1;
            }
        if (fields[i].len > ENVELOPE_FIELD_MAX) {
            errorf(err, errlen, "field %s: %zu bytes, at most %zu", name, fields[i].len,
                   ENVELOPE_FIELD_MAX);
            return -1;
        }
        header += strlen(name) + 2 + LENGTH_DIGITS_MAX;
        body += fields[i].len;
    }
    char *buf = xmalloc(header + body + 1);
    size_t used = (size_t)snprintf(buf, header, MAGIC "%d %zu\n", ENVELOPE_VERSION, count);
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(buf + used, header - used, "%s %zu\n", fields[i].name,
                                 fields[i].len);
    for (size_t i = 0; i < count; i++) {
        if (fields[i].len > 0)
            memcpy(buf + used, fields[i].data, fields[i].len);
        used += fields[i].len;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
}

/* Reads a decimal at *p (at most end - *p bytes) up to the byte stop: digits only, no leading
 * zero, at most max. Moves *p past stop. Returns 0, or -1. */
static int read_number(const char **p, const char *end, char stop, size_t max, size_t *out)
{
    const char *s = *p;
    size_t v = 0, digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (++digits > LENGTH_DIGITS_MAX)
            return -1;
        v = v * 10 + (size_t)(*s - '0');
        s++;
    }
    if (digits == 0 || (digits > 1 && (*p)[0] == '0') || s >= end || *s != stop || v > max)
        return -1;
    *p = s + 1;
    *out = v;
    return 0;
}

/* Parses an envelope strictly: the header as documented, then exactly the declared bytes. */
int envelope_parse(const char *data, size_t len, struct envelope *out, char *err, size_t errlen)
{
    const char *p = data, *end = data + len;
    size_t version, count;
    memset(out, 0, sizeof *out);
    if (len < sizeof MAGIC - 1 || memcmp(p, MAGIC, sizeof MAGIC - 1) != 0) {
        errorf(err, errlen, "not an envelope (no " MAGIC "header)");
        return -1;
    }
    p += sizeof MAGIC - 1;
    if (read_number(&p, end, ' ', 1000000, &version) != 0) {
        errorf(err, errlen, "bad version in the header");
        return -1;
    }
    if (version != ENVELOPE_VERSION) {
        errorf(err, errlen, "envelope version %zu is not supported (this build reads %d)", version,
               ENVELOPE_VERSION);
        return -1;
    }
    if (read_number(&p, end, '\n', ENVELOPE_MAX_FIELDS, &count) != 0) {
        errorf(err, errlen, "bad field count in the header (at most %d)", ENVELOPE_MAX_FIELDS);
        return -1;
    }
    size_t body = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = p;
        size_t room = (size_t)(end - p) < ENVELOPE_NAME_MAX + 1 ? (size_t)(end - p)
                                                                 : ENVELOPE_NAME_MAX + 1;
        const char *space = memchr(name, ' ', room);
        if (space == NULL || !name_valid(name, (size_t)(space - name))) {
            errorf(err, errlen, "field %zu: bad name in the header", i);
            return -1;
        }
        size_t name_len = (size_t)(space - name);
        memcpy(out->names[i], name, name_len);
        out->names[i][name_len] = '\0';
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->names[j], out->names[i]) == 0) {
                errorf(err, errlen, "field %s appears twice", out->names[i]);
                return -1;
            }
        p = space + 1;
        if (read_number(&p, end, '\n', ENVELOPE_FIELD_MAX, &out->fields[i].len) != 0) {
            errorf(err, errlen, "field %s: bad length in the header", out->names[i]);
            return -1;
        }
        out->fields[i].name = out->names[i];
        body += out->fields[i].len;
    }
    size_t left = (size_t)(end - p);
    if (body != left) {
        errorf(err, errlen, "the header announces %zu bytes of fields, %zu follow", body, left);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        out->fields[i].data = p;
        p += out->fields[i].len;
    }
    out->count = count;
    return 0;
}

const struct envelope_field *envelope_find(const struct envelope *e, const char *name)
{
    for (size_t i = 0; i < e->count; i++)
        if (strcmp(e->fields[i].name, name) == 0)
            return &e->fields[i];
    return NULL;
}

int envelope_integer(const struct envelope *e, const char *name, long long min, long long max,
                     long long *out, char *err, size_t errlen)
{
    const struct envelope_field *f = envelope_find(e, name);
    char text[24];
    if (f == NULL) {
        errorf(err, errlen, "no field %s", name);
        return -1;
    }
    /* Canonical form only, as envelope_pack's writers print it: no leading zero. */
    if (f->len == 0 || f->len >= sizeof text || memchr(f->data, '\0', f->len) != NULL ||
        (f->len > 1 && f->data[0] == '0')) {
        errorf(err, errlen, "field %s is not a number", name);
        return -1;
    }
    memcpy(text, f->data, f->len);
    text[f->len] = '\0';
    if (parse_integer(text, min, max, out) != 0) {
        errorf(err, errlen, "field %s is not a number in %lld..%lld", name, min, max);
        return -1;
    }
    return 0;
}
