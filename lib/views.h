/* The other representations of a city's answer: the calendar and the two feeds, rendered
 * from the JSON document the answerer made, never from anything upstream of it. Each is
 * rendered once per answer body and kept, with its gzip form and its own ETags, for the
 * requests that follow, as the answer's own bytes are. */
#ifndef MOVIESD_VIEWS_H
#define MOVIESD_VIEWS_H

#include "answer.h"

enum view_kind {
    VIEW_ICS,
    VIEW_ATOM,
    VIEW_RSS,
};

/* What the renderings depend on beside the answer. */
struct view_options {
    const char *base;      /* the daemon's public base URL, or "": see feed.h */
    long refresh_seconds;  /* how often subscribers should poll (the listing TTL) */
};

struct views;

struct views *views_new(void);
void views_free(struct views *v);   /* accepts NULL */

/* The representation kind of json (a 200 answer with error API_ERROR_NONE, borrowed) in
 * *out: its bodies and ETags (borrowed from v, valid until the next views_answer), json's
 * max_age and age. The rendering is kept per (kind, ETag of json's body): a later answer
 * with the same body gets the same bytes without rendering again. */
void views_answer(struct views *v, enum view_kind kind, const struct answer *json,
                  const struct view_options *options, struct answer *out);

/* The Content-Type of a representation. */
const char *views_content_type(enum view_kind kind);

/* Renderings kept now (for tests). */
size_t views_kept(const struct views *v);

#endif
