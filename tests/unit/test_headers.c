/* Unit tests of lib/headers.c: Accept-Encoding as RFC 9110 12.5.3 reads it (gzip, x-gzip,
 * *, identity, q-values, case, whitespace, list syntax) and If-None-Match's weak
 * comparison over a list of entity-tags. */
#include "check.h"
#include "headers.h"

#include <stddef.h>

/* Values that ask for gzip. */
static void test_accepts_gzip(void)
{
    const char *yes[] = {
        "gzip", "x-gzip", "*", "GZIP", "Gzip", "X-GZip", "gzip, deflate, br", "deflate, gzip",
        "br;q=1.0, gzip;q=0.8, *;q=0.1", " gzip ", "\tgzip\t", ",gzip,", ", , gzip", "gzip;q=1",
        "gzip;q=1.", "gzip;q=1.000", "gzip;q=0.001", "gzip;Q=0.5", "gzip ; q=0.5", "gzip;q=0.5 ",
        "gzip;q=0.5, identity;q=0.5",      /* a tie: the smaller body */
        "gzip;q=0.5, identity;q=0",
        "identity;q=0.5, gzip",
        "*;q=0.3",                           /* gzip and identity alike from * */
        "gzip;q=0, x-gzip",                  /* the same coding twice: the higher q */
        "x-gzip;q=0, gzip;q=0.2",
        "gzip;level=9",                      /* an unknown parameter is ignored */
        "gzip;q=0.1",                        /* identity unweighted does not compete */
        "gzip;",
        "identity;q=0, *",
        "gzip, identity;q=bad",              /* the malformed element alone is ignored */
        "deflate;q=0.4, gzip;q=0.5, identity;q=0.5",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        int got = headers_accept_gzip(yes[i]);
        if (!got)
            fprintf(stderr, "expected gzip for Accept-Encoding: %s\n", yes[i]);
        CHECK(got);
    }
}

/* Values that do not: gzip refused, not listed, or identity preferred. */
static void test_refuses_gzip(void)
{
    const char *no[] = {
        "", " ", ",", "identity", "deflate", "br, deflate", "gzip;q=0", "GZIP;Q=0", "gzip;q=0.0",
        "gzip;q=0.000", "x-gzip;q=0", "gzip;q=0, *", "*, gzip;q=0", "*;q=0", "gzip;q=0, x-gzip;q=0",
        "gzip;q=0.5, identity",              /* identity at 1 wins */
        "gzip;q=0.5, identity;q=0.6",
        "gzip;q=0.5, *",                     /* identity from * at 1 */
        "gzipx", "xgzip", "gzip2", "g zip", "gzip q=1",
        "gzip;q=2", "gzip;q=1.5", "gzip;q=1.001", "gzip;q=0.5000", "gzip;q=-1", "gzip;q=.5",
        "gzip;q=", "gzip;q", "gzip;q =0.5", "gzip;q= 0.5", "gzip;q=0.5x",
        "identity;q=0",                      /* nothing acceptable: the plain body anyway */
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        int got = headers_accept_gzip(no[i]);
        if (got)
            fprintf(stderr, "expected no gzip for Accept-Encoding: %s\n", no[i]);
        CHECK(!got);
    }
    CHECK(!headers_accept_gzip(NULL));
}

/* If-None-Match: any listed tag, W/ on either side, "*"; never a part of a tag. */
static void test_etag_match(void)
{
    const char *etag = "\"0123456789abcdef\"";
    const char *gz = "\"0123456789abcdef-gz\"";
    CHECK(headers_etag_match("\"0123456789abcdef\"", etag));
    CHECK(headers_etag_match("W/\"0123456789abcdef\"", etag));
    CHECK(headers_etag_match("\"0123456789abcdef\"", "W/\"0123456789abcdef\""));
    CHECK(headers_etag_match("\"x\", \"0123456789abcdef\"", etag));
    CHECK(headers_etag_match("\"0123456789abcdef\",\"x\"", etag));
    CHECK(headers_etag_match(" \"x\" ,\t\"0123456789abcdef-gz\" , ", gz));
    CHECK(headers_etag_match("\"0123456789abcdef\", W/\"0123456789abcdef-gz\"", gz));
    CHECK(headers_etag_match("\"0123456789abcdef\", W/\"0123456789abcdef-gz\"", etag));
    CHECK(headers_etag_match("\"a,b\", \"0123456789abcdef\"", etag));  /* a comma inside a tag */
    CHECK(headers_etag_match("*", etag));
    CHECK(headers_etag_match(" * ", gz));
    CHECK(headers_etag_match("bogus, \"0123456789abcdef\"", etag));

    CHECK(!headers_etag_match(NULL, etag));
    CHECK(!headers_etag_match("*", NULL));
    CHECK(!headers_etag_match("", etag));
    CHECK(!headers_etag_match("\"0123456789abcdef\"", gz));           /* the other encoding's */
    CHECK(!headers_etag_match("\"0123456789abcdef-gz\"", etag));
    CHECK(!headers_etag_match("W/\"0123456789abcdef-gz\"", etag));
    CHECK(!headers_etag_match("\"0123456789abcde\"", etag));
    CHECK(!headers_etag_match("0123456789abcdef", etag));             /* unquoted */
    CHECK(!headers_etag_match("\"0123456789abcdef", etag));           /* unclosed */
    CHECK(!headers_etag_match("\"x0123456789abcdef\"", etag));
    CHECK(!headers_etag_match("\"a, 0123456789abcdef\"", etag));      /* inside another tag */
    CHECK(!headers_etag_match("w/\"0123456789abcdef\"", etag));       /* W/ is case-sensitive */
    CHECK(!headers_etag_match("\"x\" *", etag));
    CHECK(!headers_etag_match("**", etag));
}

int main(void)
{
    test_accepts_gzip();
    test_refuses_gzip();
    test_etag_match();
    return check_summary();
}
