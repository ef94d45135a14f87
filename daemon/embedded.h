/* Files served from the binary, one copy each in the repository: the build makes a C file
 * of each with cmake/embed.cmake (see CMakeLists.txt). docs/openapi.json is served at
 * GET /openapi.json, web/page.js and web/page.css at /page.js and /page.css. */
#ifndef MOVIESD_EMBEDDED_H
#define MOVIESD_EMBEDDED_H

#include <stddef.h>

extern const unsigned char openapi_json[], page_js[], page_css[];
extern const size_t openapi_json_len, page_js_len, page_css_len;

#endif
