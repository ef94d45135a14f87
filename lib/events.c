/* What a client of GET /movies/events was sent, and the events that bring it up to date. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "movie.h"
#include "util.h"

struct events {
    json_t *movies;   /* the movie objects as last sent (a reference), or NULL */
};

void events_buf_free(struct events_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

size_t events_buf_pending(const struct events_buf *b)
{
    return b->len - b->off;
}

void events_buf_consume(struct events_buf *b, size_t n)
{
    b->off += n < b->len - b->off ? n : b->len - b->off;
    if (b->off == b->len)
        b->off = b->len = 0;
}

/* Appends n bytes, moving what is pending to the front when that makes room. */
static void buf_add(struct events_buf *b, const char *p, size_t n)
{
    if (b->off > 0 && b->len + n > b->cap) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_puts(struct events_buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void events_append(struct events_buf *b, const char *name, const char *data, size_t len)
{
    buf_puts(b, "event: ");
    buf_puts(b, name);
    buf_puts(b, "\n");
    /* A line ends at LF, CR or CRLF in this format: each line of data is a field of its
     * own, so none can end the event early or forge another field. */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r')
            continue;
        buf_puts(b, "data: ");
        buf_add(b, data + start, i - start);
        buf_puts(b, "\n");
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    buf_puts(b, "\n");
}

void events_append_comment(struct events_buf *b, const char *text)
{
    buf_puts(b, ": ");
    buf_puts(b, text);
    buf_puts(b, "\n\n");
}

void events_append_retry(struct events_buf *b, long ms)
{
    char line[40];
    snprintf(line, sizeof line, "retry: %ld\n\n", ms);
    buf_puts(b, line);
}

struct events *events_new(void)
{
    return xcalloc(1, sizeof(struct events));
}

void events_free(struct events *e)
{
    if (e == NULL)
        return;
    json_decref(e->movies);
    free(e);
}

/* Appends event name with the JSON value as its data. */
static void append_json(struct events_buf *b, const char *name, const json_t *v)
{
    char *text = json_dumps(v, MOVIE_JSON_FLAGS | JSON_ENCODE_ANY);
    events_append(b, name, text, strlen(text));
    free(text);
}

/* Whether two movie lists hold the same movies in the same order (by id). */
static int same_movies(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *x = json_string_value(json_object_get(json_array_get(a, i), "id"));
        const char *y = json_string_value(json_object_get(json_array_get(b, i), "id"));
        if (x == NULL || y == NULL || strcmp(x, y) != 0)
            return 0;
    }
    return 1;
}

int events_update(struct events *e, const json_t *doc, struct events_buf *b)
{
    json_t *movies = json_object_get(doc, "movies");
    if (!json_is_array(movies))
        movies = NULL;
    if (e->movies == NULL || movies == NULL || !same_movies(e->movies, movies)) {
        append_json(b, "answer", doc);
    } else {
        for (size_t i = 0; i < json_array_size(movies); i++)
            if (!json_equal(json_array_get(e->movies, i), json_array_get(movies, i)))
                append_json(b, "movie", json_array_get(movies, i));
    }
    json_decref(e->movies);
    e->movies = movies ? json_incref(movies) : NULL;
    if (!json_is_true(json_object_get(doc, "complete")))
        return 0;
    json_t *end = json_pack("{s:O?, s:O?}", "count", json_object_get(doc, "count"), "pending",
                            json_object_get(doc, "pending"));
    append_json(b, "complete", end);
    json_decref(end);
    return 1;
}
