/* A growable byte buffer for the renderers that write a document piece by piece. */
#ifndef MOVIESD_TEXTBUF_H
#define MOVIESD_TEXTBUF_H

#include <stddef.h>

#include "util.h"

struct textbuf {
    char *data;   /* NUL-terminated once anything is added; NULL while empty */
    size_t len, cap;
};

void textbuf_add(struct textbuf *b, const char *s, size_t len);
void textbuf_puts(struct textbuf *b, const char *s);
void textbuf_printf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The bytes as a new blob; b is left empty. */
struct blob *textbuf_blob(struct textbuf *b);
void textbuf_free(struct textbuf *b);   /* leaves b empty */

#endif
