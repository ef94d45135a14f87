/* The freshness rules of city answers: fresh, stale-while-revalidate, expired, and how old
 * an answer may be to stand in for a failed refresh. */
#include "answer.h"
#include "check.h"
#include "config.h"

static void test_defaults(void)
{
    struct config c;
    config_init(&c);  /* listing_ttl 3600, stale_while_revalidate 86400, stale_max_age 604800 */
    CHECK_INT(answer_classify(0, (double)c.listing_ttl, &c), CITY_FRESH);
    CHECK_INT(answer_classify(3599.9, (double)c.listing_ttl, &c), CITY_FRESH);
    CHECK_INT(answer_classify(3600, (double)c.listing_ttl, &c), CITY_REVALIDATE);
    CHECK_INT(answer_classify(3600 + 86399, (double)c.listing_ttl, &c), CITY_REVALIDATE);
    CHECK_INT(answer_classify(3600 + 86400, (double)c.listing_ttl, &c), CITY_EXPIRED);
    CHECK(answer_stale_usable(604800, &c));
    CHECK(!answer_stale_usable(604801, &c));
    config_free(&c);
}

static void test_revalidate_off_and_bounds(void)
{
    struct config c;
    config_init(&c);
    c.listing_ttl = 10;
    c.stale_while_revalidate = 0;   /* requests wait for the refresh */
    CHECK_INT(answer_classify(9, (double)c.listing_ttl, &c), CITY_FRESH);
    CHECK_INT(answer_classify(10, (double)c.listing_ttl, &c), CITY_EXPIRED);
    c.stale_while_revalidate = 1000;
    c.stale_max_age = 100;          /* stale_max_age bounds revalidation too */
    CHECK_INT(answer_classify(50, (double)c.listing_ttl, &c), CITY_REVALIDATE);
    CHECK_INT(answer_classify(101, (double)c.listing_ttl, &c), CITY_EXPIRED);
    c.stale_max_age = 0;            /* never serve stale */
    CHECK_INT(answer_classify(11, (double)c.listing_ttl, &c), CITY_EXPIRED);
    CHECK(!answer_stale_usable(1, &c));
    config_free(&c);
}

/* An entry's own TTL (short for degraded answers) decides freshness, not listing_ttl. */
static void test_entry_ttl(void)
{
    struct config c;
    config_init(&c);
    CHECK_INT(answer_classify(59, 60, &c), CITY_FRESH);
    CHECK_INT(answer_classify(61, 60, &c), CITY_REVALIDATE);
    c.stale_while_revalidate = 0;
    CHECK_INT(answer_classify(61, 60, &c), CITY_EXPIRED);
    config_free(&c);
}

/* A document's gzip twin: its own ETag, the plain one with -gz inside the quotes. */
static void test_gzip_etag(void)
{
    struct blob *body = blob_new("{\"count\":0}", 11);
    char etag[ANSWER_ETAG_SIZE];
    struct blob *gz = answer_gzip(body, "\"0123456789abcdef\"", etag);
    CHECK_STR(etag, "\"0123456789abcdef-gz\"");
    CHECK(gz != NULL && gz->len > 18 && (unsigned char)gz->data[0] == 0x1f);
    blob_unref(gz);
    blob_unref(body);
}

int main(void)
{
    test_gzip_etag();
    test_defaults();
    test_revalidate_off_and_bounds();
    test_entry_ttl();
    return check_summary();
}
