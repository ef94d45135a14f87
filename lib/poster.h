/* Posters: what the proxy needs to know of an image without a socket. Which URLs it may
 * fetch (Douban's image hosts only), where a fetch goes when a mirror stands in for them,
 * what an image is from its first bytes, and how a cached poster's file is named. */
#ifndef MOVIESD_POSTER_H
#define MOVIESD_POSTER_H

#include <stddef.h>
#include <stdint.h>

/* Largest poster accepted. Douban's s_ratio_poster and l_ratio_poster images are 10 KB to
 * 1 MB; anything bigger is not a poster from a movie page, and holding it would cost the
 * cache dozens of others. */
#define POSTER_MAX_BYTES (2 * 1024 * 1024)

/* Movie ids are Douban's digits: 1 to 20 of them (they are file names too). */
#define POSTER_ID_MAX 20

/* Whether id is 1 to POSTER_ID_MAX digits. */
int poster_id_valid(const char *id);

/* The image type of data from its magic bytes: "image/jpeg", "image/png", "image/webp",
 * "image/gif" or "image/avif" (static strings), or NULL when it is none of them. */
const char *poster_sniff(const char *data, size_t len);

/* Checks that url is https://img<N>.doubanio.com/<path> (N one digit, no port, no user, no
 * query or fragment, a path of URL-safe characters) and returns the URL to fetch (new):
 * url itself, or with base (a configured "scheme://host[:port]", or NULL/"" for none) in
 * place of "https://img<N>.doubanio.com". NULL with the reason in err otherwise. */
char *poster_fetch_url(const char *url, const char *base, char *err, size_t errlen);

/* The file name of a cached poster, "<id>-<16 hex digits of its hash>", into out. */
#define POSTER_FILE_NAME_MAX (POSTER_ID_MAX + 18)
void poster_file_name(const char *id, uint64_t hash, char out[POSTER_FILE_NAME_MAX]);
/* Reads a file name written by poster_file_name: the id into id_out and the hash. 0, or -1
 * for any other name (temporary files, strangers). */
int poster_parse_file_name(const char *name, char id_out[POSTER_ID_MAX + 1], uint64_t *hash);

#endif
