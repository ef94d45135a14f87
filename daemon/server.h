/* The process's state, shared by main.c (lifecycle, signals, config) and http.c (the API). */
#ifndef MOVIESD_SERVER_H
#define MOVIESD_SERVER_H

#include <stddef.h>

#include "config.h"

struct event_base;
struct metrics;
struct fetcher;
struct scraper;
struct answerer;
struct http;
struct redis;
struct fleet;
struct posters;

struct server {
    struct event_base *base;
    struct config config;          /* live: SIGHUP updates it in place */
    struct metrics *metrics;
    struct fetcher *fetcher;
    struct scraper *scraper;
    struct pool *pool;             /* the parse workers */
    struct answerer *answerer;
    struct http *http;
    struct redis *redis;           /* the shared Redis and the fleet over it; NULL without */
    struct fleet *fleet;
    struct posters *posters;       /* GET /posters/<id> */
    int draining;                  /* SIGTERM seen: no new scrapes, Connection: close */
};

/* Starts the API on listen_fd (socket activation) or, when -1, on config.listen. Writes
 * the address it serves to bound ("127.0.0.1:8080"). */
int http_start(struct server *s, int listen_fd, char *bound, size_t boundlen, char *err, size_t errlen);
/* Stops accepting connections; open ones are still served. */
void http_stop_accepting(struct server *s);
/* Requests suspended waiting for an answer, and connections open. */
size_t http_waiting(const struct server *s);
size_t http_connections(const struct server *s);
/* Applies changed live settings of the API (request_header_timeout). */
void http_configure(struct server *s);
/* Stops the API; every suspended request must have been answered. Accepts s->http NULL. */
void http_stop(struct server *s);

#endif
