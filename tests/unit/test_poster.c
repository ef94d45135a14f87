/* Posters: magic bytes, the image-host check, file names, and the store's LRU bound, files
 * surviving a reopen and corrupted files found out. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "poster.h"
#include "poster_store.h"
#include "util.h"

static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
static const char jpeg[] = "\xff\xd8\xff\xe0\0\x10JFIF";
static const char webp[] = "RIFF\x24\0\0\0WEBPVP8 ";
static const char gif[] = "GIF89a\1\0\1\0";
static const char avif[] = "\0\0\0\x1c" "ftypavif";

static void test_sniff(void)
{
    CHECK_STR(poster_sniff(png, sizeof png - 1), "image/png");
    CHECK_STR(poster_sniff(jpeg, sizeof jpeg - 1), "image/jpeg");
    CHECK_STR(poster_sniff(webp, sizeof webp - 1), "image/webp");
    CHECK_STR(poster_sniff(gif, sizeof gif - 1), "image/gif");
    CHECK_STR(poster_sniff(avif, sizeof avif - 1), "image/avif");
    CHECK(poster_sniff("<html><body>", 12) == NULL);
    CHECK(poster_sniff("RIFF\x24\0\0\0WAVE", 12) == NULL);   /* RIFF, but sound */
    CHECK(poster_sniff(png, 4) == NULL);                      /* cut short */
    CHECK(poster_sniff("", 0) == NULL);
}

static void test_fetch_url(void)
{
    char err[160];
    char *u = poster_fetch_url("https://img9.doubanio.com/view/photo/s_ratio_poster/public/p1.webp", NULL,
                               err, sizeof err);
    CHECK_STR(u, "https://img9.doubanio.com/view/photo/s_ratio_poster/public/p1.webp");
    free(u);
    u = poster_fetch_url("https://img3.doubanio.com/view/photo/s_ratio_poster/public/p2.jpg",
                         "http://127.0.0.1:8081", err, sizeof err);
    CHECK_STR(u, "http://127.0.0.1:8081/view/photo/s_ratio_poster/public/p2.jpg");
    free(u);
    static const char *const refused[] = {
        "http://img9.doubanio.com/view/p.jpg",            /* not https */
        "https://img.doubanio.com/view/p.jpg",            /* no N */
        "https://imgx.doubanio.com/view/p.jpg",
        "https://img9.doubanio.com.evil.example/p.jpg",   /* another host */
        "https://img9.doubanio.com:8443/p.jpg",           /* a port */
        "https://img9.doubanio.com@evil.example/p.jpg",   /* a user */
        "https://evil.example/img9.doubanio.com/p.jpg",
        "https://img9.doubanio.com/p.jpg?x=1",            /* a query */
        "https://img9.doubanio.com/p.jpg#f",
        "https://img9.doubanio.com/a/../p.jpg",
        "https://img9.doubanio.com/p .jpg",
        "https://img9.doubanio.com/p\\.jpg",
        "https://img9.doubanio.com",
        "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        u = poster_fetch_url(refused[i], "http://127.0.0.1:1", err, sizeof err);
        if (u != NULL)
            fprintf(stderr, "accepted %s\n", refused[i]);
        CHECK(u == NULL);
        free(u);
    }
}

static void test_ids_and_names(void)
{
    CHECK(poster_id_valid("3541415"));
    CHECK(!poster_id_valid(""));
    CHECK(!poster_id_valid("35a"));
    CHECK(!poster_id_valid("../1"));
    CHECK(!poster_id_valid("123456789012345678901"));   /* 21 digits */
    char name[POSTER_FILE_NAME_MAX], id[POSTER_ID_MAX + 1];
    uint64_t h;
    poster_file_name("3541415", 0x0123456789abcdefULL, name);
    CHECK_STR(name, "3541415-0123456789abcdef");
    CHECK_INT(poster_parse_file_name(name, id, &h), 0);
    CHECK_STR(id, "3541415");
    CHECK(h == 0x0123456789abcdefULL);
    CHECK_INT(poster_parse_file_name(".tmp-1-0123456789abcdef-9", id, &h), -1);
    CHECK_INT(poster_parse_file_name("1-0123456789ABCDEF", id, &h), -1);
    CHECK_INT(poster_parse_file_name("1-01234", id, &h), -1);
    CHECK_INT(poster_parse_file_name("x-0123456789abcdef", id, &h), -1);
}

/* A PNG-looking blob of n bytes whose content depends on seed. */
static struct blob *image(size_t n, int seed)
{
    char *buf = xmalloc(n);
    memset(buf, 'a' + seed, n);
    memcpy(buf, png, 8);
    struct blob *b = blob_new(buf, n);
    free(buf);
    return b;
}

/* Files in dir that are posters' (not temporary). */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] >= '0' && de->d_name[0] <= '9';
    if (d)
        closedir(d);
    return n;
}

/* Puts id's poster and writes its file, as the proxy's disk queue does. */
static void put(struct poster_store *s, const char *id, struct blob *b)
{
    uint64_t h = hash_fnv1a(b->data, b->len);
    struct poster_entry *e = poster_store_put(s, id, b, h, "image/png");
    char err[256], name[POSTER_FILE_NAME_MAX];
    if (e != NULL && poster_store_dir(s)[0]) {
        poster_file_name(id, h, name);
        CHECK_INT(poster_file_write(poster_store_dir(s), name, b->data, b->len, err, sizeof err), 0);
    }
    struct strlist doomed = poster_store_take_doomed(s);
    for (size_t i = 0; i < doomed.n; i++)
        poster_file_remove(poster_store_dir(s), doomed.v[i]);
    strlist_free(&doomed);
}

static void test_store_lru(void)
{
    char err[256];
    /* Room for two 10 KB posters and their bookkeeping, not three. */
    struct poster_store *s = poster_store_open("", 25000, err, sizeof err);
    CHECK(s != NULL);
    struct blob *a = image(10000, 0), *b = image(10000, 1), *c = image(10000, 2);
    put(s, "1", a);
    put(s, "2", b);
    CHECK(poster_store_get(s, "1") != NULL);   /* 1 is now the most recently used */
    put(s, "3", c);
    CHECK(poster_store_get(s, "2") == NULL);   /* so 2 went */
    CHECK(poster_store_get(s, "1") != NULL);
    CHECK(poster_store_get(s, "3") != NULL);
    CHECK_INT(poster_store_count(s), 2);
    CHECK(poster_store_bytes(s) <= 25000);
    struct blob *huge = image(30000, 3);
    CHECK(poster_store_put(s, "4", huge, hash_fnv1a(huge->data, huge->len), "image/png") == NULL);
    CHECK_INT(poster_store_count(s), 2);
    poster_store_free(s);
    blob_unref(a);
    blob_unref(b);
    blob_unref(c);
    blob_unref(huge);
}

static void test_store_files(void)
{
    char dir[] = "/tmp/moviesd-test-posters-XXXXXX", err[256];
    CHECK(mkdtemp(dir) != NULL);
    char sub[64];
    snprintf(sub, sizeof sub, "%s/cache", dir);   /* made by open */
    struct poster_store *s = poster_store_open(sub, 25000, err, sizeof err);
    CHECK(s != NULL);
    struct blob *a = image(10000, 0), *b = image(10000, 1), *c = image(10000, 2);
    put(s, "1", a);
    put(s, "2", b);
    put(s, "3", c);   /* evicts 1 and deletes its file */
    CHECK_INT(files_in(sub), 2);
    poster_store_free(s);
    CHECK_INT(files_in(sub), 2);   /* freeing is not evicting */

    /* A temporary file left by a crash and a stranger's file. */
    char path[128];
    snprintf(path, sizeof path, "%s/.tmp-9-0000000000000000-1", sub);
    FILE *f = fopen(path, "w");
    fputs("half", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/README", sub);
    f = fopen(path, "w");
    fclose(f);

    s = poster_store_open(sub, 25000, err, sizeof err);
    CHECK(s != NULL);
    CHECK_INT(poster_store_count(s), 2);
    CHECK(access(path, F_OK) == 0);   /* not ours: left alone */
    snprintf(path, sizeof path, "%s/.tmp-9-0000000000000000-1", sub);
    CHECK(access(path, F_OK) != 0);   /* the cut-short write is gone */
    struct poster_entry *e = poster_store_get(s, "2");
    CHECK(e != NULL && e->data == NULL && e->size == 10000);
    char name[POSTER_FILE_NAME_MAX];
    struct blob *got = NULL;
    const char *type = NULL;
    poster_file_name("2", e->hash, name);
    CHECK_INT(poster_file_read(sub, name, e->hash, &got, &type, err, sizeof err), POSTER_READ_OK);
    CHECK(got != NULL && got->len == 10000 && memcmp(got->data, b->data, 10000) == 0);
    CHECK_STR(type, "image/png");
    blob_unref(got);

    /* One byte changed: found out by the hash, and deleted. */
    e = poster_store_get(s, "3");
    poster_file_name("3", e->hash, name);
    snprintf(path, sizeof path, "%s/%s", sub, name);
    f = fopen(path, "r+");
    fseek(f, 5000, SEEK_SET);
    fputc('!', f);
    fclose(f);
    got = NULL;
    CHECK_INT(poster_file_read(sub, name, e->hash, &got, &type, err, sizeof err), POSTER_READ_CORRUPT);
    CHECK(got == NULL);
    CHECK(strstr(err, "hash") != NULL);
    CHECK(access(path, F_OK) != 0);
    poster_store_remove(s, "3");
    CHECK(poster_store_get(s, "3") == NULL);
    CHECK_INT(poster_store_count(s), 1);
    CHECK_INT(poster_file_read(sub, name, e ? 0 : 0, &got, &type, err, sizeof err), POSTER_READ_MISSING);

    /* Reopened smaller: the oldest files go. */
    poster_store_free(s);
    s = poster_store_open(sub, 5000, err, sizeof err);
    CHECK_INT(poster_store_count(s), 0);
    CHECK_INT(files_in(sub), 0);
    poster_store_free(s);

    snprintf(path, sizeof path, "%s/README", sub);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
    blob_unref(a);
    blob_unref(b);
    blob_unref(c);
}

int main(void)
{
    test_sniff();
    test_fetch_url();
    test_ids_and_names();
    test_store_lru();
    test_store_files();
    return check_summary();
}
