/* Unit tests of lib/envelope.c: the exact bytes packed, round trips of any bytes, and a
 * parser that refuses every cut, corrupted or oversized value without reading past it (each
 * input lives in a buffer of exactly its size, so ASan sees any overread). */
#include "check.h"
#include "envelope.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parses a copy of the len bytes at data held in a buffer of exactly len bytes. */
static int parse_exact(const char *data, size_t len, struct envelope *e, char *err, size_t errlen)
{
    char *copy = xmalloc(len);
    if (len > 0)
        memcpy(copy, data, len);
    int r = envelope_parse(copy, len, e, err, errlen);
    /* Fields point into copy: check them before it goes. */
    if (r == 0) {
        size_t total = 0;
        for (size_t i = 0; i < e->count; i++) {
            CHECK(e->fields[i].data >= copy && e->fields[i].data + e->fields[i].len <= copy + len);
            total += e->fields[i].len;
        }
        CHECK(total <= len);
    }
    free(copy);
    return r;
}

/* Parses the C string text (its NUL not included); 0 or -1, reason in err. */
static int parse_text(const char *text, char *err, size_t errlen)
{
    struct envelope e;
    return parse_exact(text, strlen(text), &e, err, errlen);
}

/* The bytes of a pack are as documented, and parse back to the same fields. */
static void test_pack_format(void)
{
    char *out, err[200];
    size_t len;
    struct envelope_field fields[] = {
        {"status", "200", 3}, {"etag", "\"abc\"", 5}, {"body", "{\"a\":\0}", 7}, {"gzip", NULL, 0},
    };
    CHECK_INT(envelope_pack(fields, 4, &out, &len, err, sizeof err), 0);
    const char want[] = "MVENV 1 4\nstatus 3\netag 5\nbody 7\ngzip 0\n200\"abc\"{\"a\":\0}";
    CHECK_INT(len, sizeof want - 1);
    CHECK(memcmp(out, want, sizeof want - 1) == 0);
    CHECK_INT(out[len], '\0');

    struct envelope e;
    CHECK_INT(parse_exact(out, len, &e, err, sizeof err), 0);
    /* Its fields point into the bytes parsed: out, this time. */
    CHECK_INT(envelope_parse(out, len, &e, err, sizeof err), 0);
    CHECK_INT(e.count, 4);
    const struct envelope_field *body = envelope_find(&e, "body");
    CHECK(body != NULL && body->len == 7 && memcmp(body->data, "{\"a\":\0}", 7) == 0);
    CHECK_INT(envelope_find(&e, "gzip")->len, 0);
    CHECK_STR(e.fields[1].name, "etag");
    CHECK(envelope_find(&e, "missing") == NULL);
    long long status;
    CHECK_INT(envelope_integer(&e, "status", 100, 599, &status, err, sizeof err), 0);
    CHECK_INT(status, 200);
    CHECK_INT(envelope_integer(&e, "status", 300, 599, &status, err, sizeof err), -1);
    CHECK_STR(err, "field status is not a number in 300..599");
    CHECK_INT(envelope_integer(&e, "etag", 0, 10, &status, err, sizeof err), -1);
    CHECK_INT(envelope_integer(&e, "body", 0, 10, &status, err, sizeof err), -1);
    CHECK_STR(err, "field body is not a number");
    CHECK_INT(envelope_integer(&e, "gzip", 0, 10, &status, err, sizeof err), -1);
    CHECK_INT(envelope_integer(&e, "nothing", 0, 10, &status, err, sizeof err), -1);
    CHECK_STR(err, "no field nothing");
    free(out);

    /* Numbers in their canonical form only: "0" is one, "007" is not. */
    struct envelope_field numbers[] = {{"zero", "0", 1}, {"padded", "007", 3}};
    CHECK_INT(envelope_pack(numbers, 2, &out, &len, err, sizeof err), 0);
    CHECK_INT(envelope_parse(out, len, &e, err, sizeof err), 0);
    CHECK_INT(envelope_integer(&e, "zero", 0, 10, &status, err, sizeof err), 0);
    CHECK_INT(status, 0);
    CHECK_INT(envelope_integer(&e, "padded", 0, 10, &status, err, sizeof err), -1);
    CHECK_STR(err, "field padded is not a number");
    free(out);

    /* No fields at all is an envelope too. */
    CHECK_INT(envelope_pack(NULL, 0, &out, &len, err, sizeof err), 0);
    CHECK_STR(out, "MVENV 1 0\n");
    CHECK_INT(parse_exact(out, len, &e, err, sizeof err), 0);
    CHECK_INT(e.count, 0);
    free(out);
}

/* What envelope_pack refuses, leaving *out alone. */
static void test_pack_errors(void)
{
    char *out = NULL, err[200];
    size_t len;
    struct envelope_field many[ENVELOPE_MAX_FIELDS + 1];
    char names[ENVELOPE_MAX_FIELDS + 1][8];
    for (size_t i = 0; i <= ENVELOPE_MAX_FIELDS; i++) {
        snprintf(names[i], sizeof names[i], "f%zu", i);
        many[i] = (struct envelope_field){names[i], "x", 1};
    }
    CHECK_INT(envelope_pack(many, ENVELOPE_MAX_FIELDS, &out, &len, err, sizeof err), 0);
    free(out);
    out = NULL;
    CHECK_INT(envelope_pack(many, ENVELOPE_MAX_FIELDS + 1, &out, &len, err, sizeof err), -1);
    CHECK_STR(err, "17 fields, at most 16");
    struct envelope_field bad[][2] = {
        {{"Body", "x", 1}, {"b", "", 0}},
        {{"", "x", 1}, {"b", "", 0}},
        {{"a-b", "x", 1}, {"b", "", 0}},
        {{"abcdefghijklmnopqrstuvwxyz012345", "x", 1}, {"b", "", 0}},
        {{"same", "x", 1}, {"same", "", 0}},
        {{"big", "x", ENVELOPE_FIELD_MAX + 1}, {"b", "", 0}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(envelope_pack(bad[i], 2, &out, &len, err, sizeof err), -1);
        CHECK(out == NULL);
    }
    CHECK_INT(envelope_pack(bad[4], 2, &out, &len, err, sizeof err), -1);
    CHECK_STR(err, "field same given twice");
    /* 31 bytes is the longest name. */
    struct envelope_field longest = {"abcdefghijklmnopqrstuvwxyz01234", "x", 1};
    CHECK_INT(envelope_pack(&longest, 1, &out, &len, err, sizeof err), 0);
    struct envelope e;
    CHECK_INT(parse_exact(out, len, &e, err, sizeof err), 0);
    CHECK_STR(e.fields[0].name, longest.name);
    free(out);
}

/* Every cut of a valid envelope, and every one of it with a byte added, is refused. */
static void test_truncated(void)
{
    char *out, err[200];
    size_t len;
    struct envelope_field fields[] = {{"fetched_at", "1733011200", 10}, {"body", "[1,2,3]", 7}};
    CHECK_INT(envelope_pack(fields, 2, &out, &len, err, sizeof err), 0);
    struct envelope e;
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++)
        refused += parse_exact(out, cut, &e, err, sizeof err) == -1;
    CHECK_INT(refused, len);
    CHECK_INT(parse_exact(out, len - 1, &e, err, sizeof err), -1);
    CHECK_STR(err, "the header announces 17 bytes of fields, 16 follow");
    char *longer = xmalloc(len + 1);
    memcpy(longer, out, len);
    longer[len] = 'x';
    CHECK_INT(parse_exact(longer, len + 1, &e, err, sizeof err), -1);
    CHECK_STR(err, "the header announces 17 bytes of fields, 18 follow");
    free(longer);
    free(out);
}

/* Headers that are almost right, each refused with its reason. */
static void test_bad_headers(void)
{
    char err[200];
    struct {
        const char *text, *reason;
    } cases[] = {
        {"", "not an envelope (no MVENV header)"},
        {"MVENV", "not an envelope (no MVENV header)"},
        {"mvenv 1 0\n", "not an envelope (no MVENV header)"},
        {"{\"movies\":[]}", "not an envelope (no MVENV header)"},
        {"MVENV 2 0\n", "envelope version 2 is not supported (this build reads 1)"},
        {"MVENV 0 0\n", "envelope version 0 is not supported (this build reads 1)"},
        {"MVENV 01 0\n", "bad version in the header"},
        {"MVENV  1 0\n", "bad version in the header"},
        {"MVENV 1\n", "bad version in the header"},
        {"MVENV 99999999999 0\n", "bad version in the header"},
        {"MVENV 1 17\n", "bad field count in the header (at most 16)"},
        {"MVENV 1 -1\n", "bad field count in the header (at most 16)"},
        {"MVENV 1 1", "bad field count in the header (at most 16)"},
        {"MVENV 1 0 \n", "bad field count in the header (at most 16)"},
        {"MVENV 1 1\n", "field 0: bad name in the header"},
        {"MVENV 1 1\nBody 1\nx", "field 0: bad name in the header"},
        {"MVENV 1 1\n body 1\nx", "field 0: bad name in the header"},
        {"MVENV 1 1\nbody\n1\nx", "field 0: bad name in the header"},
        {"MVENV 1 1\nabcdefghijklmnopqrstuvwxyz012345 1\nx", "field 0: bad name in the header"},
        {"MVENV 1 1\nbody 01\nx", "field body: bad length in the header"},
        {"MVENV 1 1\nbody +1\nx", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 1 \nx", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 1", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 1073741825\n", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 99999999999999999999\n", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 18446744073709551617\n", "field body: bad length in the header"},
        {"MVENV 1 1\nbody 1073741824\nabc", "the header announces 1073741824 bytes of fields, 3 follow"},
        {"MVENV 1 2\na 1\na 1\nxy", "field a appears twice"},
        {"MVENV 1 0\nx", "the header announces 0 bytes of fields, 1 follow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(err, 0, sizeof err);
        CHECK_INT(parse_text(cases[i].text, err, sizeof err), -1);
        if (strcmp(err, cases[i].reason) != 0)
            fprintf(stderr, "case %zu (%s): %s\n", i, cases[i].text, err);
        CHECK_STR(err, cases[i].reason);
    }
    /* Sixteen fields of the largest size add up without overflow, and are refused unless
     * the bytes are there. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "MVENV 1 16\n");
    for (int i = 0; i < 16; i++)
        fprintf(f, "f%d 1073741824\n", i);
    fclose(f);
    CHECK_INT(parse_text(text, err, sizeof err), -1);
    CHECK(strstr(err, "the header announces 17179869184 bytes") == err);
    free(text);
}

/* Random bytes and random corruptions of a valid envelope never crash the parser, and
 * whatever it accepts is consistent (parse_exact checks the fields). */
static void test_garbage(void)
{
    uint64_t state = 88172645463325252ULL;
    char buf[256], err[200], *valid;
    size_t valid_len;
    struct envelope e;
    struct envelope_field fields[] = {{"status", "304", 3}, {"body", "hello world", 11}};
    CHECK_INT(envelope_pack(fields, 2, &valid, &valid_len, err, sizeof err), 0);
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len;
        if (round % 2 == 0) {
            len = (size_t)(state % sizeof buf);
            for (size_t i = 0; i < len; i++) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf[i] = (char)(state & 0xFF);
            }
        } else {
            len = valid_len;
            memcpy(buf, valid, len);
            for (int flips = 0; flips < 1 + round % 3; flips++) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf[state % len] = (char)((state >> 16) & 0xFF);
            }
        }
        if (parse_exact(buf, len, &e, err, sizeof err) == 0) {
            accepted++;
            CHECK(e.count <= ENVELOPE_MAX_FIELDS);
        } else {
            CHECK(err[0] != '\0');
        }
    }
    /* Some corruptions only change a field's bytes: those envelopes stay valid. */
    CHECK(accepted > 0 && accepted < 20000);
    free(valid);
}

int main(void)
{
    test_pack_format();
    test_pack_errors();
    test_truncated();
    test_bad_headers();
    test_garbage();
    return check_summary();
}
