/* The event stream of GET /movies/events (Server-Sent Events, text/event-stream): a city's
 * answer as it stands ("answer"), then one "movie" event for each movie whose object
 * changed as its details landed, then "complete" once the answer is. This module keeps what
 * the client was sent and writes the events that bring it up to date, framed as the
 * WHATWG's event stream format has them; the HTTP front only moves the bytes. */
#ifndef MOVIESD_EVENTS_H
#define MOVIESD_EVENTS_H

#include <jansson.h>
#include <stddef.h>

/* Bytes waiting to be sent: data[off..len). */
struct events_buf {
    char *data;
    size_t len, off, cap;
};
void events_buf_free(struct events_buf *b);     /* leaves b empty */
size_t events_buf_pending(const struct events_buf *b);
/* Drops the first n pending bytes (sent). */
void events_buf_consume(struct events_buf *b, size_t n);

/* Appends one event: "event: NAME", a "data:" line for each line of data, a blank line. */
void events_append(struct events_buf *b, const char *name, const char *data, size_t len);
/* Appends a comment line (": text"), which clients ignore: a heartbeat. */
void events_append_comment(struct events_buf *b, const char *text);
/* Appends the reconnection delay a client uses after the stream ends ("retry: MS"). */
void events_append_retry(struct events_buf *b, long ms);

struct events;

struct events *events_new(void);
void events_free(struct events *e);   /* accepts NULL */

/* Appends to b what brings the client from what it was sent to doc (borrowed: a movies
 * document of the API): the first time, or when the list of movies changed, "answer" with
 * the whole document; otherwise "movie" with each movie object that differs from the one
 * sent; then "complete" (data {"count", "pending"}) when doc says "complete": true, and
 * returns 1: the stream is over. Returns 0 while the answer is incomplete. */
int events_update(struct events *e, const json_t *doc, struct events_buf *b);

#endif
