/* The poster cache's index: which posters are held, their bytes, and the order least
 * recently used first, bounded by poster_cache_max_bytes. With a directory every poster is
 * also a file there, "<id>-<hash>", so that the cache survives a restart; the index is built
 * from the directory at start and a file is read (and checked against the hash in its name)
 * when its poster is first asked for. Memory-only without a directory.
 *
 * The index is the loop's; the file functions below block and are meant for a worker
 * (they touch nothing but their arguments). The store never touches the disk itself after
 * poster_store_open: files to delete (evicted, replaced) are queued for the caller to
 * remove, off the loop, with poster_file_remove. */
#ifndef MOVIESD_POSTER_STORE_H
#define MOVIESD_POSTER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "poster.h"
#include "util.h"

struct poster_entry {
    char id[POSTER_ID_MAX + 1];
    uint64_t hash;              /* hash_fnv1a of the bytes: the file name's and the ETag's */
    size_t size;
    const char *type;           /* poster_sniff's; NULL until the bytes were read */
    struct blob *data;          /* the bytes (a reference), or NULL while only on disk */
    struct poster_store *store;
};

struct poster_store;

/* A store bounded by max_bytes, its files in dir (copied; "" or NULL: memory only). Opening
 * reads the directory (made if missing): temporary files left by a crash are deleted, a
 * second file of one id goes (the newer stays), and the files beyond max_bytes, oldest by
 * access or modification time first. Blocks: for startup. NULL with the reason in err when
 * the directory cannot be made or read. */
struct poster_store *poster_store_open(const char *dir, size_t max_bytes, char *err, size_t errlen);
void poster_store_free(struct poster_store *s);    /* accepts NULL */

/* The directory ("" for memory only; borrowed). */
const char *poster_store_dir(const struct poster_store *s);
/* The entry of id (borrowed), marked most recently used; NULL if absent. */
struct poster_entry *poster_store_get(struct poster_store *s, const char *id);
/* Stores data (a reference is taken) as id's poster of type, replacing any other, and evicts
 * beyond the bound. Returns the entry (borrowed), or NULL when data alone is larger than the
 * bound (then nothing is kept). */
struct poster_entry *poster_store_put(struct poster_store *s, const char *id, struct blob *data,
                                      uint64_t hash, const char *type);
/* Drops id's entry, whose file poster_file_read found corrupted (and deleted). */
void poster_store_remove(struct poster_store *s, const char *id);
/* Gives entry its bytes, read from its file (a reference is taken). */
void poster_store_loaded(struct poster_store *s, struct poster_entry *e, struct blob *data,
                         const char *type);

/* File names queued for removal since the last call (new list; the caller frees it). */
struct strlist poster_store_take_doomed(struct poster_store *s);

size_t poster_store_bytes(const struct poster_store *s);   /* of every entry held */
size_t poster_store_count(const struct poster_store *s);

/* --- blocking file work, for a worker --- */

/* Writes the len bytes at data to dir/name through a temporary file, fsync and rename, then
 * syncs the directory: a crash leaves the old file, the new one, or a temporary file that
 * the next start deletes, never half a poster under a poster's name. 0, or -1 with err. */
int poster_file_write(const char *dir, const char *name, const char *data, size_t len, char *err,
                      size_t errlen);

enum poster_read {
    POSTER_READ_OK,
    POSTER_READ_MISSING,   /* no such file, or it cannot be read */
    POSTER_READ_CORRUPT,   /* its bytes do not match its hash, are too big or no image: deleted */
};
/* Reads dir/name, which must hold an image of at most POSTER_MAX_BYTES whose hash_fnv1a is
 * hash: its bytes in *out (new) and type in *type. */
enum poster_read poster_file_read(const char *dir, const char *name, uint64_t hash,
                                  struct blob **out, const char **type, char *err, size_t errlen);
/* Deletes dir/name; a file already gone is fine. */
void poster_file_remove(const char *dir, const char *name);

#endif
