/* The cors_origins setting: its three forms, what cors_check refuses, and which Origin gets
 * which Access-Control-Allow-Origin. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cors.h"

/* Empty and blank are off, "*" is any, anything else a list. */
static void test_modes(void)
{
    CHECK_INT(cors_mode_of(""), CORS_OFF);
    CHECK_INT(cors_mode_of(" ,\t"), CORS_OFF);
    CHECK_INT(cors_mode_of("*"), CORS_ANY);
    CHECK_INT(cors_mode_of("  *"), CORS_ANY);
    CHECK_INT(cors_mode_of("https://a.example"), CORS_LIST);
}

/* Valid settings pass; junk, paths, a '*' inside a list and wrong schemes are refused with
 * a reason. */
static void test_check(void)
{
    char err[256];
    const char *good[] = {"", "*", "https://example.com", "http://localhost:3000",
                          "https://a.example, http://b.example:8080  https://c.example",
                          "http://127.0.0.1:8080", "http://[::1]:8080", "https://EXAMPLE.com"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        err[0] = '\0';
        CHECK_INT(cors_check(good[i], err, sizeof err), 0);
    }
    const char *bad[] = {"example.com", "https://example.com/", "https://example.com/app",
                         "ftp://example.com", "https://", "https://a.example, *", "* *",
                         "https://exa mple.com/x", "https://a.example:", "https://a.example:123456",
                         "https://a_b.example", "http://[]", "https://a.example?x", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(cors_check(bad[i], err, sizeof err), -1);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(cors_check("https://a.example,https://b/x", err, sizeof err), -1);
    CHECK(strstr(err, "'https://b/x'") != NULL);
}

/* Any: "*" with or without an Origin. Off: nothing. A list: the Origin itself when listed
 * (case aside), nothing otherwise. */
static void test_allow_origin(void)
{
    CHECK_STR(cors_allow_origin("*", NULL), "*");
    CHECK_STR(cors_allow_origin("*", "https://x.example"), "*");
    CHECK_STR(cors_allow_origin("", "https://x.example"), NULL);
    const char *list = "https://a.example, http://localhost:3000";
    const char *origin = "http://localhost:3000";
    CHECK(cors_allow_origin(list, origin) == origin);
    CHECK_STR(cors_allow_origin(list, "https://a.example"), "https://a.example");
    CHECK_STR(cors_allow_origin(list, "https://A.example"), "https://A.example");
    CHECK_STR(cors_allow_origin(list, NULL), NULL);
    CHECK_STR(cors_allow_origin(list, "https://a.example.evil"), NULL);
    CHECK_STR(cors_allow_origin(list, "https://a.exampl"), NULL);
    CHECK_STR(cors_allow_origin(list, "http://localhost"), NULL);
    CHECK_STR(cors_allow_origin(list, ""), NULL);
    CHECK_STR(cors_allow_origin(list, "https://a.example, http://localhost:3000"), NULL);
}

int main(void)
{
    test_modes();
    test_check();
    test_allow_origin();
    return check_summary();
}
