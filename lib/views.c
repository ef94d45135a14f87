/* Renderings of answers, kept per answer body. */
#include "views.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "ical.h"
#include "log.h"
#include "movie.h"

/* Renderings kept: the few cities asked for in these forms lately. Each holds its body and
 * the gzip of it (a 40-movie city: 14 KB and 2 KB for the calendar, 40 KB and 4 KB for
 * Atom, 32 KB and 3 KB for RSS), so the bound is about a megabyte. */
#define VIEW_SLOTS 24

struct rendering {
    enum view_kind kind;
    char source_etag[ANSWER_ETAG_SIZE];   /* of the JSON body rendered; "" while free */
    struct blob *body, *gzip;
    char etag[20];
    char gzip_etag[ANSWER_ETAG_SIZE];
    unsigned long long used;              /* views' clock at the last use: lowest goes first */
};

struct views {
    struct rendering slots[VIEW_SLOTS];
    unsigned long long clock;
};

struct views *views_new(void)
{
    return xcalloc(1, sizeof(struct views));
}

/* Frees a slot's blobs and leaves it free. */
static void slot_clear(struct rendering *r)
{
    blob_unref(r->body);
    blob_unref(r->gzip);
    memset(r, 0, sizeof *r);
}

void views_free(struct views *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < VIEW_SLOTS; i++)
        slot_clear(&v->slots[i]);
    free(v);
}

const char *views_content_type(enum view_kind kind)
{
    switch (kind) {
    case VIEW_ICS:
        return "text/calendar; charset=utf-8";
    case VIEW_ATOM:
        return "application/atom+xml; charset=utf-8";
    case VIEW_RSS:
        return "application/rss+xml; charset=utf-8";
    }
    return "application/octet-stream";
}

/* Renders kind from the JSON body (new blob). */
static struct blob *render(enum view_kind kind, const struct blob *body, const struct view_options *o)
{
    json_error_t error;
    json_t *doc = json_loadb(body->data, body->len, 0, &error);
    if (doc == NULL)   /* the answerer's own output: never expected */
        log_warn("views: cannot read an answer: %s", error.text);
    struct blob *b = kind == VIEW_ICS    ? ical_render(doc, o->refresh_seconds)
                     : kind == VIEW_ATOM ? feed_atom(doc, o->base)
                                         : feed_rss(doc, o->base, o->refresh_seconds);
    json_decref(doc);
    return b;
}

void views_answer(struct views *v, enum view_kind kind, const struct answer *json,
                  const struct view_options *options, struct answer *out)
{
    /* Every 200 answer has an ETag; without one nothing is found and the slot is reused. */
    const char *source = json->etag != NULL ? json->etag : "";
    struct rendering *r = NULL, *oldest = &v->slots[0];
    for (size_t i = 0; i < VIEW_SLOTS && r == NULL; i++) {
        struct rendering *s = &v->slots[i];
        if (s->source_etag[0] != '\0' && s->kind == kind && strcmp(s->source_etag, source) == 0)
            r = s;
        else if (s->used < oldest->used)
            oldest = s;
    }
    if (r == NULL) {
        r = oldest;
        slot_clear(r);
        r->kind = kind;
        snprintf(r->source_etag, sizeof r->source_etag, "%s", source);
        r->body = render(kind, json->body, options);
        char hex[17];
        hash_hex(r->body->data, r->body->len, hex);
        snprintf(r->etag, sizeof r->etag, "\"%s\"", hex);
        r->gzip = answer_gzip(r->body, r->etag, r->gzip_etag);
    }
    r->used = ++v->clock;
    *out = (struct answer){.error = API_ERROR_NONE, .body = r->body, .gzip = r->gzip,
                           .etag = r->etag, .gzip_etag = r->gzip_etag,
                           .max_age = json->max_age, .age = json->age,
                           .retry_after = json->retry_after};
}

size_t views_kept(const struct views *v)
{
    size_t n = 0;
    for (size_t i = 0; i < VIEW_SLOTS; i++)
        n += v->slots[i].source_etag[0] != '\0';
    return n;
}
