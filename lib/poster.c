/* Poster URLs, image types and file names (see poster.h). */
#include "poster.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int poster_id_valid(const char *id)
{
    size_t n = strspn(id, "0123456789");
    return n >= 1 && n <= POSTER_ID_MAX && id[n] == '\0';
}

/* Whether the len bytes at data begin with the n bytes of magic at offset at. */
static int has_at(const char *data, size_t len, size_t at, const char *magic, size_t n)
{
    return len >= at + n && memcmp(data + at, magic, n) == 0;
}

const char *poster_sniff(const char *data, size_t len)
{
    if (has_at(data, len, 0, "\xff\xd8\xff", 3))
        return "image/jpeg";
    if (has_at(data, len, 0, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (has_at(data, len, 0, "RIFF", 4) && has_at(data, len, 8, "WEBP", 4))
        return "image/webp";
    if (has_at(data, len, 0, "GIF87a", 6) || has_at(data, len, 0, "GIF89a", 6))
        return "image/gif";
    if (has_at(data, len, 4, "ftypavif", 8) || has_at(data, len, 4, "ftypavis", 8))
        return "image/avif";
    return NULL;
}

char *poster_fetch_url(const char *url, const char *base, char *err, size_t errlen)
{
    static const char scheme[] = "https://img";
    static const char domain[] = ".doubanio.com/";
    size_t n = sizeof scheme - 1;
    if (strncmp(url, scheme, n) != 0 || url[n] < '0' || url[n] > '9' ||
        strncmp(url + n + 1, domain, sizeof domain - 1) != 0) {
        errorf(err, errlen, "not on Douban's image hosts (https://img<N>.doubanio.com/...)");
        return NULL;
    }
    const char *path = url + n + 1 + sizeof domain - 2;  /* from its '/' */
    /* Unreserved characters, '/', '%' escapes and sub-delimiters curl passes as they are;
     * no '?', '#', '\\', blanks or controls: nothing curl or a mirror could read two ways. */
    size_t ok = strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                             "-._~/%!$&'()*+,;=:@");
    if (path[ok] != '\0' || strstr(path, "/../") != NULL || strstr(path, "/./") != NULL) {
        errorf(err, errlen, "the poster URL's path has characters that are not allowed");
        return NULL;
    }
    if (base == NULL || base[0] == '\0')
        return xstrdup(url);
    return xasprintf("%s%s", base, path);
}

void poster_file_name(const char *id, uint64_t hash, char out[POSTER_FILE_NAME_MAX])
{
    snprintf(out, POSTER_FILE_NAME_MAX, "%s-%016" PRIx64, id, hash);
}

int poster_parse_file_name(const char *name, char id_out[POSTER_ID_MAX + 1], uint64_t *hash)
{
    size_t n = strspn(name, "0123456789");
    if (n < 1 || n > POSTER_ID_MAX || name[n] != '-')
        return -1;
    const char *hex = name + n + 1;
    if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
        return -1;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++)
        h = h << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    memcpy(id_out, name, n);
    id_out[n] = '\0';
    *hash = h;
    return 0;
}
