/* Unit tests of lib/events.c: the framing of the event stream format (a line break in data
 * never ends an event early), and the events a stream sends as a city's answer fills in:
 * the answer first, one "movie" per changed movie, "complete" at the end. */
#include "check.h"
#include "events.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The pending bytes as a new string, and consumes them. */
static char *take(struct events_buf *b)
{
    size_t n = events_buf_pending(b);
    char *s = malloc(n + 1);
    memcpy(s, b->data + b->off, n);
    s[n] = '\0';
    events_buf_consume(b, n);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_framing(void)
{
    struct events_buf b = {0};
    events_append(&b, "x", "one\ntwo\r\nthree\rfour", 19);
    char *s = take(&b);
    CHECK_STR(s, "event: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
    free(s);
    events_append(&b, "y", "", 0);
    events_append_comment(&b, "heartbeat");
    events_append_retry(&b, 2000);
    s = take(&b);
    CHECK_STR(s, "event: y\ndata: \n\n: heartbeat\n\nretry: 2000\n\n");
    free(s);
    CHECK_INT(events_buf_pending(&b), 0);
    /* Partly sent, then more: what is pending stays in order. */
    events_append_comment(&b, "a");
    events_buf_consume(&b, 2);
    for (int i = 0; i < 200; i++)
        events_append_comment(&b, "bbbbbbbbbbbbbbbbbbbb");
    s = take(&b);
    CHECK(strncmp(s, "a\n\n: bbbb", 9) == 0);
    CHECK_INT(strlen(s), 3 + 200 * 24);
    free(s);
    events_buf_free(&b);
}

/* A document of three movies whose first `landed` have details. */
static json_t *doc(int landed, int complete)
{
    json_t *movies = json_array();
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", 100 + i);
        json_array_append_new(movies, json_pack("{s:s, s:s}", "id", id, "detail_status",
                                                i < landed ? "ok" : "pending"));
    }
    return json_pack("{s:i, s:b, s:i, s:o}", "count", 3, "complete", complete, "pending",
                     3 - landed, "movies", movies);
}

static void test_updates(void)
{
    struct events *e = events_new();
    struct events_buf b = {0};
    json_t *d = doc(0, 0);
    CHECK_INT(events_update(e, d, &b), 0);
    char *s = take(&b);
    CHECK(strncmp(s, "event: answer\ndata: {\"count\":3,", 31) == 0);
    CHECK_INT(count(s, "event: "), 1);
    free(s);
    json_decref(d);
    /* The same answer again: nothing to send. */
    d = doc(0, 0);
    CHECK_INT(events_update(e, d, &b), 0);
    CHECK_INT(events_buf_pending(&b), 0);
    json_decref(d);
    d = doc(2, 0);
    CHECK_INT(events_update(e, d, &b), 0);
    s = take(&b);
    CHECK_STR(s, "event: movie\ndata: {\"id\":\"100\",\"detail_status\":\"ok\"}\n\n"
                 "event: movie\ndata: {\"id\":\"101\",\"detail_status\":\"ok\"}\n\n");
    free(s);
    json_decref(d);
    d = doc(3, 1);
    CHECK_INT(events_update(e, d, &b), 1);
    s = take(&b);
    CHECK_STR(s, "event: movie\ndata: {\"id\":\"102\",\"detail_status\":\"ok\"}\n\n"
                 "event: complete\ndata: {\"count\":3,\"pending\":0}\n\n");
    free(s);
    json_decref(d);
    /* Another list of movies: the whole answer again. */
    d = json_pack("{s:i, s:b, s:i, s:[{s:s}]}", "count", 1, "complete", 0, "pending", 1, "movies",
                  "id", "999");
    CHECK_INT(events_update(e, d, &b), 0);
    s = take(&b);
    CHECK(strncmp(s, "event: answer\n", 14) == 0);
    free(s);
    json_decref(d);
    events_free(e);
    events_buf_free(&b);
    events_free(NULL);
}

/* A complete answer at once: the answer, then complete. */
static void test_complete_at_once(void)
{
    struct events *e = events_new();
    struct events_buf b = {0};
    json_t *d = doc(3, 1);
    CHECK_INT(events_update(e, d, &b), 1);
    char *s = take(&b);
    CHECK(strncmp(s, "event: answer\n", 14) == 0);
    CHECK(strstr(s, "\n\nevent: complete\ndata: {\"count\":3,\"pending\":0}\n\n") != NULL);
    free(s);
    json_decref(d);
    events_free(e);
    events_buf_free(&b);
}

int main(void)
{
    test_framing();
    test_updates();
    test_complete_at_once();
    return check_summary();
}
