/* Cross-origin reads (CORS): which web pages of other origins may read the API's answers.
 * The cors_origins setting is "*" (any origin: the data is public), a list of origins
 * ("https://example.com", "http://localhost:3000") separated by commas or blanks, or empty
 * (no CORS headers at all). The HTTP front asks cors_allow_origin() for every response. */
#ifndef MOVIESD_CORS_H
#define MOVIESD_CORS_H

#include <stddef.h>

enum cors_mode {
    CORS_OFF,    /* empty: no CORS headers */
    CORS_ANY,    /* "*": Access-Control-Allow-Origin: * on every response */
    CORS_LIST,   /* listed origins: the request's Origin echoed when listed, with Vary: Origin */
};

/* The mode the setting's text (as cors_check accepts it) stands for. */
enum cors_mode cors_mode_of(const char *origins);

/* 0 if origins is a valid cors_origins value, else -1 with the reason in err. */
int cors_check(const char *origins, char *err, size_t errlen);

/* The Access-Control-Allow-Origin value for a request whose Origin header is origin (NULL
 * when it has none) under the setting origins: "*", origin itself when it is listed
 * (borrowed from the argument), or NULL for none. */
const char *cors_allow_origin(const char *origins, const char *origin);

#endif
