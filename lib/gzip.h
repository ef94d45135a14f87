/* gzip (RFC 1952) of a blob, for answers sent with Content-Encoding: gzip. */
#ifndef MOVIESD_GZIP_H
#define MOVIESD_GZIP_H

#include "util.h"

/* plain compressed into a gzip member (new blob; plain borrowed). Compression cannot fail
 * short of memory, which is fatal like every allocation. */
struct blob *gzip_blob(const struct blob *plain);

#endif
