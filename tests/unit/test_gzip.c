/* Unit tests of lib/gzip.c: what it writes is one gzip member (RFC 1952) that inflates back
 * to the input, for text, for bytes zlib cannot shrink, and for nothing at all. */
#include "check.h"
#include "gzip.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* gz inflated as gzip only (windowBits 15 + 16: a zlib or raw stream is refused) into a new
 * buffer, its length in *len; NULL if it is not exactly one complete gzip member. */
static char *gunzip(const struct blob *gz, size_t *len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return NULL;
    size_t cap = 1024;
    char *out = malloc(cap);
    z.next_in = (Bytef *)gz->data;
    z.avail_in = (uInt)gz->len;
    int rc;
    do {
        if (z.total_out == cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = (Bytef *)out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    } while (rc == Z_OK);
    *len = z.total_out;
    int whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) {
        free(out);
        return NULL;
    }
    return out;
}

/* gzip_blob(data) inflates back to data; returns the compressed length. */
static size_t round_trip(const char *data, size_t len)
{
    struct blob *plain = blob_new(data, len);
    struct blob *gz = gzip_blob(plain);
    CHECK_INT(gz->refs, 1);
    CHECK(gz->len >= 18);    /* header (10) and trailer (8) at least */
    /* RFC 1952 2.3: ID1 ID2, CM 8 (deflate). */
    CHECK_INT((unsigned char)gz->data[0], 0x1f);
    CHECK_INT((unsigned char)gz->data[1], 0x8b);
    CHECK_INT((unsigned char)gz->data[2], 8);
    CHECK_INT(gz->data[gz->len], '\0');
    size_t out_len = 0;
    char *out = gunzip(gz, &out_len);
    CHECK(out != NULL);
    CHECK_INT(out_len, len);
    CHECK(out != NULL && out_len == len && memcmp(out, data, len) == 0);
    size_t gz_len = gz->len;
    free(out);
    blob_unref(gz);
    blob_unref(plain);
    return gz_len;
}

/* A JSON answer shrinks to a fraction and comes back byte for byte. */
static void test_text(void)
{
    size_t cap = 64 * 1024, len = 0;
    char *doc = malloc(cap);
    len += (size_t)snprintf(doc, cap, "{\"city\":\"beijing\",\"movies\":[");
    for (int i = 0; i < 200 && len + 200 < cap; i++)
        len += (size_t)snprintf(doc + len, cap - len,
                                "%s{\"id\":\"%d\",\"title\":\"电影 %d\",\"genres\":[\"剧情\"]}",
                                i ? "," : "", 1000000 + i * 7, i);
    len += (size_t)snprintf(doc + len, cap - len, "]}");
    size_t gz_len = round_trip(doc, len);
    CHECK(gz_len < len / 3);
    free(doc);
}

/* Empty input is still a gzip member: header, an empty deflate block, trailer. */
static void test_empty(void)
{
    CHECK(round_trip("", 0) > 0);
}

/* Bytes that do not compress come back too, the output a little longer than the input. */
static void test_incompressible(void)
{
    size_t len = 100 * 1024;
    char *data = malloc(len);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (char)(x >> 32);
    }
    size_t gz_len = round_trip(data, len);
    CHECK(gz_len > len);
    CHECK(gz_len < len + len / 100 + 64);
    free(data);
}

int main(void)
{
    test_text();
    test_empty();
    test_incompressible();
    return check_summary();
}
