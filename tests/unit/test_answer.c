/* The freshness rules of city answers: fresh, stale-while-revalidate, expired, and how old
 * an answer may be to stand in for a failed refresh. */
#include "answer.h"
#include "check.h"
#include "config.h"

static void test_defaults(void)
{
    struct config c;
    config_init(&c);  /* listing_ttl 600, stale_while_revalidate 86400, stale_max_age 604800 */
    CHECK_INT(answer_classify(0, (double)c.listing_ttl, &c), CITY_FRESH);
    CHECK_INT(answer_classify(599.9, (double)c.listing_ttl, &c), CITY_FRESH);
    CHECK_INT(answer_classify(600, (double)c.listing_ttl, &c), CITY_REVALIDATE);
    CHECK_INT(answer_classify(600 + 86399, (double)c.listing_ttl, &c), CITY_REVALIDATE);
    CHECK_INT(answer_classify(600 + 86400, (double)c.listing_ttl, &c), CITY_EXPIRED);
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

int main(void)
{
    test_defaults();
    test_revalidate_off_and_bounds();
    test_entry_ttl();
    return check_summary();
}
