/* The table of API errors: every value has its own code, a status in range and a message;
 * lookups by value agree with the table; the codes, statuses and Retry-After the API
 * promises; the Markdown table has one row per error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"

/* Every value: a unique code of [a-z_], a status, a message, docs for the real errors. */
static void test_every_value(void)
{
    for (int e = 0; e < API_ERROR_COUNT; e++) {
        const struct api_error_info *i = api_error_info((enum api_error)e);
        CHECK(i->code != NULL && i->code[0] != '\0');
        if (i->code == NULL)
            continue;
        CHECK(strspn(i->code, "abcdefghijklmnopqrstuvwxyz_") == strlen(i->code));
        CHECK(i->message != NULL && i->message[0] != '\0');
        if (e == API_ERROR_NONE) {
            CHECK_INT(i->status, 200);
        } else {
            CHECK(i->status >= 400 && i->status <= 599);
            CHECK(i->when != NULL && i->when[0] != '\0' && strchr(i->when, '|') == NULL);
        }
        for (int f = 0; f < e; f++)
            CHECK(strcmp(api_error_code((enum api_error)f), i->code) != 0);
    }
}

/* A code found in the table leads back to its value; the accessors read the same row. */
static void test_round_trip(void)
{
    for (int e = 0; e < API_ERROR_COUNT; e++) {
        const char *code = api_error_code((enum api_error)e);
        int found = -1;
        for (int f = 0; f < API_ERROR_COUNT && found < 0; f++)
            if (strcmp(api_error_info((enum api_error)f)->code, code) == 0)
                found = f;
        CHECK_INT(found, e);
        CHECK_STR(api_error_message((enum api_error)e), api_error_info((enum api_error)e)->message);
    }
    /* Out of range reads as upstream_error rather than past the table. */
    CHECK_STR(api_error_code(API_ERROR_COUNT), "upstream_error");
    CHECK_INT(api_error_info((enum api_error)-1)->status, 502);
}

/* The API's contract: what clients see for each error. */
static void test_contract(void)
{
    static const struct {
        enum api_error e;
        const char *code;
        int status;
        int retry_after;
        int scrape;
    } want[] = {
        {API_ERROR_NONE, "ok", 200, 0, 1},
        {API_ERROR_BAD_REQUEST, "bad_request", 400, 0, 0},
        {API_ERROR_MISSING_CITY, "missing_city", 400, 0, 0},
        {API_ERROR_INVALID_CITY, "invalid_city", 400, 0, 0},
        {API_ERROR_INVALID_WAIT, "invalid_wait", 400, 0, 0},
        {API_ERROR_INVALID_KIND, "invalid_kind", 400, 0, 0},
        {API_ERROR_NOT_FOUND, "not_found", 404, 0, 0},
        {API_ERROR_METHOD_NOT_ALLOWED, "method_not_allowed", 405, 0, 0},
        {API_ERROR_REQUEST_TIMEOUT, "request_timeout", 408, 0, 0},
        {API_ERROR_UNKNOWN_CITY, "unknown_city", 404, 0, 1},
        {API_ERROR_UPSTREAM_ERROR, "upstream_error", 502, 0, 1},
        {API_ERROR_UPSTREAM_CHANGED, "upstream_changed", 502, 0, 1},
        {API_ERROR_UPSTREAM_BLOCKED, "upstream_blocked", 503, 1, 1},
        {API_ERROR_UPSTREAM_TIMEOUT, "upstream_timeout", 504, 0, 1},
        {API_ERROR_SHUTTING_DOWN, "shutting_down", 503, 1, 0},
        {API_ERROR_UNKNOWN_POSTER, "unknown_poster", 404, 0, 0},
        {API_ERROR_POSTER_UNAVAILABLE, "poster_unavailable", 503, 1, 0},
    };
    CHECK_INT(sizeof want / sizeof want[0], API_ERROR_COUNT);
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const struct api_error_info *i = api_error_info(want[k].e);
        CHECK_STR(i->code, want[k].code);
        CHECK_INT(i->status, want[k].status);
        CHECK_INT(i->retry_after, want[k].retry_after);
        CHECK_INT(i->scrape, want[k].scrape);
    }
}

/* The README's table: a header, then one row per error (not "ok") in enum order. */
static void test_markdown(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    api_error_print_markdown(out);
    fclose(out);
    const char *line = text;
    int row = -2;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        CHECK(end != NULL);
        if (end == NULL)
            break;
        if (row >= 0) {
            enum api_error e = (enum api_error)(row + 1);
            char start[96];
            snprintf(start, sizeof start, "| %d | `%s` | %s | ", api_error_info(e)->status, api_error_code(e),
                     api_error_info(e)->retry_after ? "yes" : "no");
            CHECK(strncmp(line, start, strlen(start)) == 0);
        }
        row++;
        line = end + 1;
    }
    CHECK_INT(row, API_ERROR_COUNT - 1);
    CHECK(strncmp(text, "| status | code | Retry-After | when |\n|---|---|---|---|\n", 56) == 0);
    free(text);
}

int main(void)
{
    test_every_value();
    test_round_trip();
    test_contract();
    test_markdown();
    return check_summary();
}
