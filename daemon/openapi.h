/* The API's OpenAPI description, docs/openapi.json, built into the binary (the build makes
 * openapi_json.c from it with cmake/embed.cmake): one copy, served at GET /openapi.json. */
#ifndef MOVIESD_OPENAPI_H
#define MOVIESD_OPENAPI_H

#include <stddef.h>

extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;

#endif
