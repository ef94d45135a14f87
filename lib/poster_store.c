/* The poster cache's index over lib/cache.c (one budget of its own, poster_cache_max_bytes),
 * and its files. See poster_store.h. */
#include "poster_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"

/* Temporary files start with this; no poster's name does (those start with a digit). */
#define TEMP_PREFIX ".tmp-"

struct poster_store {
    char *dir;                  /* "" for memory only */
    struct cache_budget *budget;
    struct cache *entries;      /* id -> struct poster_entry */
    struct strlist doomed;      /* file names to delete */
    size_t max_bytes;
};

/* The cache's destructor: an entry dropped (evicted, replaced, removed) takes its file. */
static void entry_free(void *value)
{
    struct poster_entry *e = value;
    struct poster_store *s = e->store;
    if (s->dir[0] != '\0') {
        char name[POSTER_FILE_NAME_MAX];
        poster_file_name(e->id, e->hash, name);
        strlist_push(&s->doomed, name);
    }
    blob_unref(e->data);
    free(e);
}

/* One file found at start. */
struct found {
    char id[POSTER_ID_MAX + 1];
    uint64_t hash;
    size_t size;
    double used;
};

static int by_use(const void *a, const void *b)
{
    double x = ((const struct found *)a)->used, y = ((const struct found *)b)->used;
    return x < y ? -1 : x > y;
}

/* Reads the directory into the index, oldest first so that the newest end most recent. */
static int index_dir(struct poster_store *s, char *err, size_t errlen)
{
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        errorf(err, errlen, "poster_cache_dir %s: %s", s->dir, strerror(errno));
        return -1;
    }
    struct found *found = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (strncmp(name, TEMP_PREFIX, sizeof TEMP_PREFIX - 1) == 0) {
            poster_file_remove(s->dir, name);   /* a write that a crash cut short */
            continue;
        }
        struct found f;
        struct stat st;
        if (poster_parse_file_name(name, f.id, &f.hash) != 0 || fstatat(dirfd(d), name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;   /* not ours: left alone */
        f.size = (size_t)st.st_size;
        double atime = (double)st.st_atim.tv_sec + (double)st.st_atim.tv_nsec / 1e9;
        double mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
        f.used = atime > mtime ? atime : mtime;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            found = xrealloc(found, cap * sizeof *found);
        }
        found[n++] = f;
    }
    closedir(d);
    if (n > 1)
        qsort(found, n, sizeof *found, by_use);
    for (size_t i = 0; i < n; i++) {
        struct poster_entry *e = xcalloc(1, sizeof *e);
        memcpy(e->id, found[i].id, sizeof e->id);
        e->hash = found[i].hash;
        e->size = found[i].size;
        e->store = s;
        /* A second file of one id replaces the older, which is deleted. */
        cache_put(s->entries, e->id, e, e->size);
    }
    free(found);
    return 0;
}

struct poster_store *poster_store_open(const char *dir, size_t max_bytes, char *err, size_t errlen)
{
    struct poster_store *s = xcalloc(1, sizeof *s);
    s->dir = xstrdup(dir ? dir : "");
    s->max_bytes = max_bytes;
    s->budget = cache_budget_new(max_bytes);
    s->entries = cache_new(s->budget, SIZE_MAX, entry_free);
    if (s->dir[0] != '\0') {
        if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
            errorf(err, errlen, "poster_cache_dir %s: %s", s->dir, strerror(errno));
            poster_store_free(s);
            return NULL;
        }
        if (index_dir(s, err, errlen) != 0) {
            poster_store_free(s);
            return NULL;
        }
        /* At start, nothing else touches the directory: the stale files go now. */
        struct strlist doomed = poster_store_take_doomed(s);
        for (size_t i = 0; i < doomed.n; i++)
            poster_file_remove(s->dir, doomed.v[i]);
        strlist_free(&doomed);
    }
    return s;
}

void poster_store_free(struct poster_store *s)
{
    if (s == NULL)
        return;
    /* Freeing the map is not evicting: the files stay for the next start. */
    char *dir = s->dir;
    s->dir = (char *)"";
    cache_free(s->entries);
    cache_budget_free(s->budget);
    strlist_free(&s->doomed);
    free(dir);
    free(s);
}

const char *poster_store_dir(const struct poster_store *s)
{
    return s->dir;
}

struct poster_entry *poster_store_get(struct poster_store *s, const char *id)
{
    return cache_get(s->entries, id);
}

struct poster_entry *poster_store_put(struct poster_store *s, const char *id, struct blob *data,
                                      uint64_t hash, const char *type)
{
    struct poster_entry *e = xcalloc(1, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->hash = hash;
    e->size = data->len;
    e->type = type;
    e->data = blob_ref(data);
    e->store = s;
    struct poster_entry *old = cache_peek(s->entries, id);
    if (old != NULL && old->hash == hash) {
        /* The same bytes: keep the old entry, whose file is the new one's too. */
        if (old->data == NULL) {
            old->data = e->data;
            old->type = type;
            e->data = NULL;
        }
        blob_unref(e->data);
        free(e);
        return cache_get(s->entries, id);
    }
    if (!cache_put(s->entries, e->id, e, e->size))
        return NULL;
    return e;
}

void poster_store_remove(struct poster_store *s, const char *id)
{
    if (cache_peek(s->entries, id) == NULL)
        return;
    /* cache.h has no delete, but an entry bigger than the bound is never kept: putting one
     * frees it and the old entry at once. The file is not queued: the reader that found
     * it corrupted has deleted it. */
    struct poster_entry *gone = xcalloc(1, sizeof *gone);
    gone->store = s;
    char *dir = s->dir;
    s->dir = (char *)"";
    cache_put(s->entries, id, gone, s->max_bytes + 1);
    s->dir = dir;
}

void poster_store_loaded(struct poster_store *s, struct poster_entry *e, struct blob *data,
                         const char *type)
{
    (void)s;
    blob_unref(e->data);
    e->data = blob_ref(data);
    e->type = type;
}

struct strlist poster_store_take_doomed(struct poster_store *s)
{
    struct strlist l = s->doomed;
    s->doomed = (struct strlist){0};
    return l;
}

size_t poster_store_bytes(const struct poster_store *s)
{
    return cache_bytes(s->entries);
}

size_t poster_store_count(const struct poster_store *s)
{
    return cache_count(s->entries);
}

/* --- files --- */

/* Writes all len bytes at data to fd. */
static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int poster_file_write(const char *dir, const char *name, const char *data, size_t len, char *err,
                      size_t errlen)
{
    char *tmp = xasprintf("%s/" TEMP_PREFIX "%s-%ld", dir, name, (long)getpid());
    char *path = xasprintf("%s/%s", dir, name);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        errorf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        errorf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        errorf(err, errlen, "rename to %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* The rename itself is durable once the directory is synced. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    free(tmp);
    free(path);
    return rc;
}

enum poster_read poster_file_read(const char *dir, const char *name, uint64_t hash,
                                  struct blob **out, const char **type, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, name);
    enum poster_read rc = POSTER_READ_MISSING;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errorf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = POSTER_READ_CORRUPT;
    if (st.st_size <= 0 || st.st_size > POSTER_MAX_BYTES) {
        errorf(err, errlen, "%s: %lld bytes is not a poster's size", path, (long long)st.st_size);
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    buf = xmalloc(len);
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != len) {
        errorf(err, errlen, "%s: cut short at %zu of %zu bytes", path, got, len);
        goto out;
    }
    if (hash_fnv1a(buf, len) != hash) {
        errorf(err, errlen, "%s: its bytes do not match the hash in its name", path);
        goto out;
    }
    *type = poster_sniff(buf, len);
    if (*type == NULL) {
        errorf(err, errlen, "%s: not an image", path);
        goto out;
    }
    *out = blob_new(buf, len);
    rc = POSTER_READ_OK;
out:
    if (rc == POSTER_READ_CORRUPT)
        unlink(path);
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return rc;
}

void poster_file_remove(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("poster cache: cannot delete %s: %s", path, strerror(errno));
    free(path);
}
