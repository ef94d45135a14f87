/* Unit tests of lib/views.c: a representation is rendered once per answer body and kept,
 * with its own ETags (the plain one a hash of its bytes, the gzip one with -gz) and the
 * answer's max-age and age; another body renders anew; the kept renderings are bounded. */
#include "check.h"
#include "util.h"
#include "views.h"

#include <stdio.h>
#include <string.h>

/* A 200 answer for body, with a made-up ETag. */
static struct answer answer_of(struct blob *body, const char *etag)
{
    return (struct answer){.error = API_ERROR_NONE, .body = body, .etag = etag,
                           .max_age = 42, .age = 7, .retry_after = -1};
}

int main(void)
{
    static const char doc[] =
        "{\"city\": \"beijing\", \"city_name\": \"北京\", \"fetched_at\": \"2026-11-25T21:34:00Z\","
        " \"movies\": [{\"id\": \"1\", \"title\": \"一\", \"release_date_iso\": \"2026-12-01\","
        " \"release_date_precision\": \"day\"}]}";
    struct blob *body = blob_new(doc, strlen(doc));
    struct views *v = views_new();
    struct view_options o = {.base = "", .refresh_seconds = 3600};
    struct answer json = answer_of(body, "\"aaaa\"");
    struct answer out;
    views_answer(v, VIEW_ICS, &json, &o, &out);
    CHECK(out.error == API_ERROR_NONE);
    CHECK(strstr(out.body->data, "DTSTART;VALUE=DATE:20261201") != NULL);
    CHECK(out.gzip != NULL && out.gzip->len > 0);
    CHECK_INT(out.max_age, 42);
    CHECK_INT(out.age, 7);
    CHECK(strcmp(out.etag, "\"aaaa\"") != 0);
    char expected_gz[ANSWER_ETAG_SIZE];
    snprintf(expected_gz, sizeof expected_gz, "%.*s-gz\"", (int)strlen(out.etag) - 1, out.etag);
    CHECK_STR(out.gzip_etag, expected_gz);
    char hex[17], etag[20];
    hash_hex(out.body->data, out.body->len, hex);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    CHECK_STR(out.etag, etag);
    struct blob *first = out.body;

    /* The same body again: the same rendering, not a new one. */
    views_answer(v, VIEW_ICS, &json, &o, &out);
    CHECK(out.body == first);
    CHECK_INT(views_kept(v), 1);

    /* Other kinds are renderings of their own. */
    views_answer(v, VIEW_ATOM, &json, &o, &out);
    CHECK(strstr(out.body->data, "<feed") != NULL);
    views_answer(v, VIEW_RSS, &json, &o, &out);
    CHECK(strstr(out.body->data, "<rss") != NULL);
    CHECK_INT(views_kept(v), 3);
    CHECK_STR(views_content_type(VIEW_ICS), "text/calendar; charset=utf-8");
    CHECK_STR(views_content_type(VIEW_ATOM), "application/atom+xml; charset=utf-8");
    CHECK_STR(views_content_type(VIEW_RSS), "application/rss+xml; charset=utf-8");

    /* Another body (a refresh) renders anew; bounded however many there are. */
    for (int i = 0; i < 100; i++) {
        char e[24];
        snprintf(e, sizeof e, "\"b%d\"", i);
        struct answer other = answer_of(body, e);
        views_answer(v, VIEW_ICS, &other, &o, &out);
        CHECK(out.body != NULL);
    }
    CHECK(views_kept(v) <= 24);
    CHECK(views_kept(v) >= 3);
    views_free(v);
    views_free(NULL);
    blob_unref(body);
    return check_summary();
}
