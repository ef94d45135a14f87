/* The table of API errors. Its order is the README's: request errors, then what the
 * upstream did, then the daemon's own state. */
#include "error.h"

static const struct api_error_info api_errors[API_ERROR_COUNT] = {
    [API_ERROR_NONE] = {"ok", 200, "no error", 0, 1, NULL},
    [API_ERROR_BAD_REQUEST] = {"bad_request", 400, "the request is not valid HTTP/1.1", 0, 0,
                               "the request breaks one of HTTP/1.1's framing rules (see below the "
                               "table); the connection is closed after the answer"},
    [API_ERROR_MISSING_CITY] = {"missing_city", 400, "the query parameter 'city' is required", 0, 0,
                                "no `city` parameter"},
    [API_ERROR_INVALID_CITY] = {"invalid_city", 400,
                                "'city' must be 1 to 32 letters a-z, e.g. 'beijing', or a city's "
                                "id of 1 to 32 digits", 0, 0,
                                "`city` is neither 1-32 letters `a`-`z` nor 1-32 digits"},
    [API_ERROR_INVALID_WAIT] = {"invalid_wait", 400, "'wait' may only be 'details'", 0, 0,
                                "`wait` is given with a value other than `details`"},
    [API_ERROR_INVALID_KIND] = {"invalid_kind", 400, "'kind' may only be 'later' or 'nowplaying'", 0, 0,
                                "`kind` is given with a value other than `later` or `nowplaying`"},
    [API_ERROR_NOT_FOUND] = {"not_found", 404, "no such endpoint; try GET /movies?city=beijing", 0, 0,
                             "unknown path (and, in a movie's `detail_error`, a movie page that "
                             "does not exist)"},
    [API_ERROR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405, "only GET, HEAD and OPTIONS are allowed",
                                      0, 0,
                                      "a method other than GET, HEAD or OPTIONS (with `Allow: GET, "
                                      "HEAD, OPTIONS`)"},
    [API_ERROR_REQUEST_TIMEOUT] = {"request_timeout", 408,
                                   "no complete request within request_header_timeout", 0, 0,
                                   "the request was not complete `request_header_timeout` after "
                                   "the connection opened (or after its first byte, on a "
                                   "kept-alive connection); the connection is closed"},
    [API_ERROR_UNKNOWN_CITY] = {"unknown_city", 404, "the upstream knows no such city", 0, 1,
                                "`city` is not one of `GET /cities` (with `cities = known`: "
                                "Douban is not asked), or Douban has no such city"},
    [API_ERROR_UPSTREAM_ERROR] = {"upstream_error", 502, "the upstream failed", 0, 1,
                                  "Douban answered 5xx, a truncated, malformed, oversized or absurdly "
                                  "nested page, or a redirect off its origin (not followed)"},
    [API_ERROR_UPSTREAM_CHANGED] = {"upstream_changed", 502, "the upstream's page has changed", 0, 1,
                                    "the listing page no longer has `#showing-soon` (`#nowplaying` for "
                                    "`kind=nowplaying`), or its "
                                    "`#location` names another city than the one asked (Douban's "
                                    "answer for a city it does not know)"},
    [API_ERROR_UPSTREAM_BLOCKED] = {"upstream_blocked", 503, "the upstream is refusing our requests", 1, 1,
                                    "Douban refuses us (403, 418, 429, a redirect to `sec.douban.com` or "
                                    "its login host, the \"有异常请求\" page), or the breaker is open: `Retry-After` says when "
                                    "to come back"},
    [API_ERROR_UPSTREAM_TIMEOUT] = {"upstream_timeout", 504, "the upstream did not answer in time", 0, 1,
                                    "Douban did not answer within `upstream_timeout`, or the request "
                                    "passed `request_deadline`, with no older answer to serve"},
    [API_ERROR_SHUTTING_DOWN] = {"shutting_down", 503, "the service is stopping; retry shortly", 1, 0,
                                 "the daemon is stopping and has no answer to give: none cached for "
                                 "the city, or its scrape outlasted `drain_timeout`"},
    [API_ERROR_UNKNOWN_POSTER] = {"unknown_poster", 404, "no poster known for this movie", 0, 0,
                                  "`GET /posters/<id>`: the id is not digits, moviesd has not listed "
                                  "the movie, its poster URL is not on `img<N>.doubanio.com` (not "
                                  "fetched), or the image host has no such image"},
    [API_ERROR_POSTER_UNAVAILABLE] = {"poster_unavailable", 503, "the poster could not be fetched", 1, 0,
                                      "`GET /posters/<id>`: the image host failed, timed out, "
                                      "refused us (its breaker is open) or sent something that "
                                      "is not an image: `Retry-After` says when to ask again"},
};

/* The row of e, out-of-range values read as upstream_error. */
const struct api_error_info *api_error_info(enum api_error e)
{
    return (unsigned)e < API_ERROR_COUNT ? &api_errors[e] : &api_errors[API_ERROR_UPSTREAM_ERROR];
}

/* The JSON code of e. */
const char *api_error_code(enum api_error e)
{
    return api_error_info(e)->code;
}

/* The default message of e. */
const char *api_error_message(enum api_error e)
{
    return api_error_info(e)->message;
}

/* Writes every error but API_ERROR_NONE as a Markdown table. */
void api_error_print_markdown(FILE *out)
{
    fputs("| status | code | Retry-After | when |\n", out);
    fputs("|---|---|---|---|\n", out);
    for (int e = API_ERROR_NONE + 1; e < API_ERROR_COUNT; e++) {
        const struct api_error_info *i = &api_errors[e];
        fprintf(out, "| %d | `%s` | %s | %s |\n", i->status, i->code, i->retry_after ? "yes" : "no",
                i->when);
    }
}
