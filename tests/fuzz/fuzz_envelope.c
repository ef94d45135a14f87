/* libFuzzer target: the envelope of values read from Redis, lib/envelope.c's parser.
 *
 * The bytes are a value as GET returns it. Checked besides memory safety (the input lives
 * in a buffer of exactly its size): a refusal says why in UTF-8; an accepted envelope is
 * canonical, its fields inside the input, in order, filling it after the header, with
 * valid unique names, so that packing them again gives back exactly the input; reading
 * any field as a number neither crashes nor accepts junk. */
#include "fuzz.h"

#include "envelope.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

/* Whether name is 1..ENVELOPE_NAME_MAX bytes of [a-z0-9_]: a second opinion on lib/'s. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ENVELOPE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    struct envelope e;
    char err[256];
    memset(err, 'x', sizeof err);
    if (envelope_parse(copy, size, &e, err, sizeof err) != 0) {
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
        free(copy);
        return 0;
    }
    FUZZ_CHECK(e.count <= ENVELOPE_MAX_FIELDS);
    const char *expected = e.count > 0 ? e.fields[0].data : copy + size;
    for (size_t i = 0; i < e.count; i++) {
        const struct envelope_field *f = &e.fields[i];
        FUZZ_CHECK(name_ok(f->name));
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(e.fields[j].name, f->name) != 0);
        FUZZ_CHECK(f->data == expected);
        FUZZ_CHECK(f->data >= copy && f->len <= (size_t)(copy + size - f->data));
        expected = f->data + f->len;
        FUZZ_CHECK(envelope_find(&e, f->name) == f);
        long long v;
        if (envelope_integer(&e, f->name, 0, 1000000, &v, err, sizeof err) == 0)
            FUZZ_CHECK(v >= 0 && v <= 1000000 && f->len > 0 && f->len <= 7);
        else
            FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
    }
    FUZZ_CHECK(expected == copy + size);
    char *packed;
    size_t len;
    FUZZ_CHECK(envelope_pack(e.fields, e.count, &packed, &len, err, sizeof err) == 0);
    FUZZ_CHECK(len == size && memcmp(packed, copy, size) == 0);
    free(packed);
    free(copy);
    return 0;
}
