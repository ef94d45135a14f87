/* The API's errors: one closed vocabulary, one table of {code, HTTP status, default message,
 * whether Retry-After applies}. Every layer passes the enum by value; only the HTTP front
 * turns it into a status and headers, and JSON bodies turn it into its code through this
 * table. The README's error table is api_error_print_markdown(). */
#ifndef MOVIESD_ERROR_H
#define MOVIESD_ERROR_H

#include <stdio.h>

enum api_error {
    API_ERROR_NONE = 0,            /* no error: code "ok", status 200 */
    API_ERROR_BAD_REQUEST,         /* the request itself breaks HTTP/1.1's framing rules */
    API_ERROR_MISSING_CITY,
    API_ERROR_INVALID_CITY,
    API_ERROR_INVALID_WAIT,
    API_ERROR_INVALID_KIND,
    API_ERROR_NOT_FOUND,           /* no such endpoint; for a movie page, no such movie */
    API_ERROR_METHOD_NOT_ALLOWED,
    API_ERROR_REQUEST_TIMEOUT,     /* 408: the request did not arrive in time */
    API_ERROR_UNKNOWN_CITY,
    API_ERROR_UPSTREAM_ERROR,
    API_ERROR_UPSTREAM_CHANGED,
    API_ERROR_UPSTREAM_BLOCKED,
    API_ERROR_UPSTREAM_TIMEOUT,
    API_ERROR_SHUTTING_DOWN,
    API_ERROR_UNKNOWN_POSTER,      /* GET /posters/<id>: no poster known, or none fetchable */
    API_ERROR_POSTER_UNAVAILABLE,  /* GET /posters/<id>: the image host failed or refused */
    API_ERROR_COUNT
};

struct api_error_info {
    const char *code;      /* the JSON "code": "upstream_blocked", ... */
    int status;            /* the HTTP status the API answers with */
    const char *message;   /* the JSON "message" when no more precise one is given */
    int retry_after;       /* 1 if the answer carries Retry-After (the seconds come with the error) */
    int scrape;            /* 1 if a city scrape can end with it */
    const char *when;      /* what it means, for the docs (Markdown) */
};

/* The table row of e (borrowed, static). A value out of range reads as
 * API_ERROR_UPSTREAM_ERROR. */
const struct api_error_info *api_error_info(enum api_error e);
/* e's code (borrowed, static). */
const char *api_error_code(enum api_error e);
/* e's default message (borrowed, static). */
const char *api_error_message(enum api_error e);

/* Writes the errors as the README's Markdown table. */
void api_error_print_markdown(FILE *out);

#endif
