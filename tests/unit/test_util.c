/* Unit tests of lib/util.c and lib/log.c: number parsing, string lists, blobs, hashes,
 * log escaping and the two log line formats. */
#include "check.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether s is entirely valid UTF-8 (no overlongs, surrogates or cut sequences). */
static int valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        size_t n = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3
                 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (n == 0 || i + n > len)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += n;
    }
    return 1;
}

/* Strict integers: digits only, within bounds, out untouched on failure. */
static void test_parse_integer(void)
{
    long long v = 0;
    CHECK_INT(parse_integer("0", 0, 10, &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(parse_integer("10", 0, 10, &v), 0);
    CHECK_INT(v, 10);
    CHECK_INT(parse_integer("007", 0, 10, &v), 0);
    CHECK_INT(v, 7);
    CHECK_INT(parse_integer("9223372036854775807", 0, LLONG_MAX, &v), 0);
    CHECK_INT(v, LLONG_MAX);

    v = 42;
    const char *bad[] = { "", " 1", "1 ", "+1", "-1", "-0", "1a", "0x10", "1e3", "1.0", "١",
                          "9223372036854775808", "18446744073709551616",
                          "99999999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_integer(bad[i], 0, LLONG_MAX, &v) == 0)
            fprintf(stderr, "parse_integer accepted '%s'\n", bad[i]);
        CHECK_INT(parse_integer(bad[i], 0, LLONG_MAX, &v), -1);
    }
    CHECK_INT(parse_integer(NULL, 0, 10, &v), -1);
    CHECK_INT(parse_integer("11", 0, 10, &v), -1);
    CHECK_INT(parse_integer("4", 5, 10, &v), -1);
    CHECK_INT(parse_integer("5", 5, 10, &v), 0);
    CHECK_INT(v, 5);
    CHECK_INT(parse_integer("x", 5, 10, &v), -1);
    CHECK_INT(v, 5);
}

/* Lists copy or steal, grow past their first capacity, and free back to empty. */
static void test_strlist(void)
{
    struct strlist l = { 0 };
    strlist_free(&l);
    CHECK_INT(l.n, 0);
    char word[] = "alpha";
    strlist_push(&l, word);
    word[0] = 'A';
    CHECK_STR(l.v[0], "alpha");
    strlist_push_owned(&l, xstrdup("beta"));
    for (int i = 0; i < 20; i++) {
        char *s = xasprintf("item%d", i);
        strlist_push_owned(&l, s);
    }
    CHECK_INT(l.n, 22);
    CHECK(l.cap >= l.n);
    CHECK(strlist_contains(&l, "alpha"));
    CHECK(strlist_contains(&l, "item19"));
    CHECK(!strlist_contains(&l, "Alpha"));
    CHECK(!strlist_contains(&l, "item20"));
    CHECK_STR(l.v[21], "item19");
    strlist_free(&l);
    CHECK(l.v == NULL);
    CHECK_INT(l.n, 0);
    CHECK_INT(l.cap, 0);
}

/* The small string helpers and the clock. */
static void test_strings_and_clock(void)
{
    char *s = xstrndup("abcdef", 3);
    CHECK_STR(s, "abc");
    free(s);
    s = xasprintf("%s-%d", "x", 42);
    CHECK_STR(s, "x-42");
    free(s);
    s = xasprintf("%s", "");
    CHECK_STR(s, "");
    free(s);
    double a = clock_monotonic(), b = clock_monotonic();
    CHECK(a > 0);
    CHECK(b >= a);
}

/* Blobs copy their data, add a NUL, and live until the last reference goes. */
static void test_blob(void)
{
    char data[] = { 'a', '\0', 'b' };
    struct blob *b = blob_new(data, sizeof data);
    data[0] = 'z';
    CHECK_INT(b->refs, 1);
    CHECK_INT(b->len, 3);
    CHECK(memcmp(b->data, "a\0b", 3) == 0);
    CHECK_INT(b->data[3], '\0');
    CHECK(blob_ref(b) == b);
    CHECK_INT(b->refs, 2);
    blob_unref(b);
    CHECK_INT(b->refs, 1);
    blob_unref(b); /* freed here: ASan or valgrind would report a second free or a leak */
    blob_unref(NULL);
    struct blob *e = blob_new("", 0);
    CHECK_INT(e->len, 0);
    CHECK_STR(e->data, "");
    blob_unref(e);
}

/* FNV-1a 64 values are ETags clients keep: they must never change between builds. */
static void test_hash_hex(void)
{
    char out[17];
    hash_hex("", 0, out);
    CHECK_STR(out, "cbf29ce484222325");
    hash_hex("a", 1, out);
    CHECK_STR(out, "af63dc4c8601ec8c");
    hash_hex("foobar", 6, out);
    CHECK_STR(out, "85944171f73967e8");
    hash_hex("a\0b", 3, out);
    char again[17];
    hash_hex("a\0b", 3, again);
    CHECK_STR(out, again);
    CHECK_INT(strlen(out), 16);
    hash_hex("a\0c", 3, again);
    CHECK(strcmp(out, again) != 0);
}

/* Escaping keeps readable text, hides control bytes and never cuts a unit in two. */
static void test_log_escape(void)
{
    char out[256];
    const char *title = "霸王别姬 Farewell My Concubine (1993) — 豆瓣";
    CHECK_STR(log_escape(title, strlen(title), out, sizeof out), title);
    CHECK_STR(log_escape("a\nb\tc\r", 6, out, sizeof out), "a\\x0ab\\x09c\\x0d");
    CHECK_STR(log_escape("say \"hi\" \\o/", 12, out, sizeof out), "say \\x22hi\\x22 \\x5co/");
    CHECK_STR(log_escape("\x1b[31mred\x7f", 9, out, sizeof out), "\\x1b[31mred\\x7f");
    CHECK_STR(log_escape("ok", 2, out, sizeof out), "ok");
    CHECK_STR(log_escape("", 0, out, sizeof out), "");
    CHECK_STR(log_escape(NULL, 5, out, sizeof out), "");
    /* len is a limit: the copy stops there or at a NUL. */
    CHECK_STR(log_escape("abcdef", 3, out, sizeof out), "abc");
    CHECK_STR(log_escape("ab\0cd", 5, out, sizeof out), "ab");
    CHECK_STR(log_escape("xyz", (size_t)-1, out, sizeof out), "xyz");

    /* Invalid UTF-8: lone bytes, overlongs, surrogates, above U+10FFFF, cut sequences. */
    CHECK_STR(log_escape("\xff", 1, out, sizeof out), "\\xff");
    CHECK_STR(log_escape("\xc0\xaf", 2, out, sizeof out), "\\xc0\\xaf");
    CHECK_STR(log_escape("\xe0\x80\xaf", 3, out, sizeof out), "\\xe0\\x80\\xaf");
    CHECK_STR(log_escape("\xed\xa0\x80", 3, out, sizeof out), "\\xed\\xa0\\x80");
    CHECK_STR(log_escape("\xf4\x90\x80\x80", 4, out, sizeof out), "\\xf4\\x90\\x80\\x80");
    CHECK_STR(log_escape("\xe7\x94", 2, out, sizeof out), "\\xe7\\x94");
    CHECK_STR(log_escape("电影", 5, out, sizeof out), "电\\xe5\\xbd");
    CHECK_STR(log_escape("\xe7\x94x", 3, out, sizeof out), "\\xe7\\x94x");
    /* C1 controls are valid UTF-8 but terminals may act on them. */
    CHECK_STR(log_escape("\xc2\x9b", 2, out, sizeof out), "\\xc2\\x9b");
    CHECK_STR(log_escape("\xc2\xa0\xf0\x9f\x8e\xac", 6, out, sizeof out), "\xc2\xa0\xf0\x9f\x8e\xac");

    /* Cutting: the result fits outlen-1 bytes and holds whole units only. */
    char small[8];
    CHECK_STR(log_escape("abcdefghij", 10, small, sizeof small), "abcdefg");
    CHECK_STR(log_escape("电影电影", 12, small, sizeof small), "电影");    /* 6 of 7 bytes */
    CHECK_STR(log_escape("ab电影", 8, small, sizeof small), "ab电");     /* 5; 8 won't fit */
    CHECK_STR(log_escape("abcde\n", 6, small, sizeof small), "abcde");  /* \x0a won't fit */
    CHECK_STR(log_escape("abc\n", 4, small, sizeof small), "abc\\x0a"); /* exactly 7 */
    CHECK_STR(log_escape("a🎬", 5, small, sizeof small), "a🎬");
    CHECK_STR(log_escape("abcd🎬", 8, small, sizeof small), "abcd");
    char one[1] = { 'x' };
    CHECK_STR(log_escape("abc", 3, one, sizeof one), "");
    CHECK(log_escape("abc", 3, one, 0) == one);
    CHECK_INT(one[0], '\0');

    /* Every prefix length of a mixed string gives valid UTF-8 with no broken escape. */
    const char *mixed = "电\n影\"\xff🎬\\";
    for (size_t n = 1; n <= 40; n++) {
        char buf[64];
        log_escape(mixed, strlen(mixed), buf, n);
        size_t len = strlen(buf);
        CHECK(len <= n - 1);
        CHECK(valid_utf8(buf, len));
        const char *bs = strrchr(buf, '\\');
        CHECK(bs == NULL || (strlen(bs) >= 4 && bs[1] == 'x'));
    }
}

/* Names and levels map both ways; unknown names are refused. */
static void test_log_levels(void)
{
    CHECK_INT(log_level_parse("error"), LOG_ERROR);
    CHECK_INT(log_level_parse("warn"), LOG_WARN);
    CHECK_INT(log_level_parse("info"), LOG_INFO);
    CHECK_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_INT(log_level_parse("INFO"), -1);
    CHECK_INT(log_level_parse("warning"), -1);
    CHECK_INT(log_level_parse(""), -1);
    CHECK_INT(log_level_parse(NULL), -1);
    for (int l = LOG_ERROR; l <= LOG_DEBUG; l++)
        CHECK_INT(log_level_parse(log_level_name((enum log_level)l)), l);
    CHECK_STR(log_level_name((enum log_level)9), "unknown");
    log_set_level(LOG_WARN);
    CHECK_INT(log_current_level, LOG_WARN);
    log_set_level(LOG_INFO);
}

/* stderr redirected into a pipe while a test looks at what the logger writes. */
struct capture {
    int saved;
    int fds[2];
};

/* Points stderr at a fresh pipe. Nothing may be printed to stderr until capture_end. */
static void capture_begin(struct capture *cap)
{
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    if (cap->saved < 0 || pipe(cap->fds) != 0) {
        perror("capture");
        exit(2);
    }
    dup2(cap->fds[1], STDERR_FILENO);
}

/* Reads what the pipe holds now into out, without waiting for more. */
static size_t capture_read(struct capture *cap, char *out, size_t outlen)
{
    int flags = fcntl(cap->fds[0], F_GETFL);
    fcntl(cap->fds[0], F_SETFL, flags | O_NONBLOCK);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < outlen && (n = read(cap->fds[0], out + len, outlen - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    fcntl(cap->fds[0], F_SETFL, flags);
    return len;
}

/* Gives stderr back and closes the pipe. */
static void capture_end(struct capture *cap)
{
    dup2(cap->saved, STDERR_FILENO);
    close(cap->saved);
    close(cap->fds[0]);
    close(cap->fds[1]);
}

/* Under systemd the lines are "<N>message"; otherwise a UTC timestamp and the level. */
static void test_log_formats(void)
{
    static char out[65536];
    struct capture cap;
    size_t len;

    setenv("JOURNAL_STREAM", "8:123456", 1);
    log_init(LOG_INFO);
    capture_begin(&cap);
    log_info("hello %d", 5);
    log_debug("not shown %d", 1);
    log_error("boom");
    log_warn("careful");
    log_set_level(LOG_DEBUG);
    log_debug("shown %s", "now");
    log_info("line\nbreak\x1b");
    capture_read(&cap, out, sizeof out);
    capture_end(&cap);
    CHECK_STR(out, "<6>hello 5\n<3>boom\n<4>careful\n<7>shown now\n<6>line?break?\n");

    /* A long line is cut to one write with a mark, never inside a UTF-8 sequence. */
    size_t big = 3 * 2000;
    char *text = xmalloc(big + 1);
    for (size_t i = 0; i < big; i += 3)
        memcpy(text + i, "影", 3);
    text[big] = '\0';
    for (int shift = 0; shift < 3; shift++) {
        capture_begin(&cap);
        log_info("%.*s%s", shift, "ab", text);
        len = capture_read(&cap, out, sizeof out);
        capture_end(&cap);
        CHECK(len <= 4096);
        CHECK(len > 4000);
        CHECK(strncmp(out, "<6>", 3) == 0);
        CHECK(strchr(out, '\n') == out + len - 1);
        CHECK(len >= 4 && memcmp(out + len - 4, "...\n", 4) == 0);
        CHECK(valid_utf8(out, len));
    }
    free(text);

    unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO);
    capture_begin(&cap);
    log_warn("plain %s", "text");
    len = capture_read(&cap, out, sizeof out);
    capture_end(&cap);
    /* 2026-11-25T21:34:00.123Z WARN plain text */
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ WARN plain text\n";
    CHECK_INT(len, strlen(shape));
    int same = len == strlen(shape);
    for (size_t i = 0; same && i < len; i++)
        same = shape[i] == 'd' ? (out[i] >= '0' && out[i] <= '9') : shape[i] == out[i];
    if (!same)
        fprintf(stderr, "plain log line: %s", out);
    CHECK(same);
}

/* A stderr nobody reads costs one bounded wait, then lines are dropped and counted. */
static void test_log_stalled(void)
{
    static char out[1 << 20];
    struct capture cap;

    setenv("JOURNAL_STREAM", "8:123456", 1);
    log_init(LOG_INFO);
    capture_begin(&cap);
    int flags = fcntl(cap.fds[1], F_GETFL);
    fcntl(cap.fds[1], F_SETFL, flags | O_NONBLOCK);
    size_t filled = 0;
    while (write(cap.fds[1], "x", 1) == 1)
        filled++;
    fcntl(cap.fds[1], F_SETFL, flags);

    double t0 = clock_monotonic();
    log_info("first lost");
    double t1 = clock_monotonic();
    log_info("second lost");
    double t2 = clock_monotonic();
    size_t len = capture_read(&cap, out, sizeof out);
    errno = EINVAL;
    log_info("after");
    int saved_errno = errno;
    size_t after = capture_read(&cap, out, sizeof out);
    capture_end(&cap);
    unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO);

    CHECK(filled > 0);
    CHECK_INT(len, filled);
    CHECK(t1 - t0 < 2.0);
    CHECK(t2 - t1 < 0.1);
    CHECK_STR(out, "<4>stderr was blocked: 2 log lines dropped\n<6>after\n");
    CHECK(after > 0);
    CHECK_INT(saved_errno, EINVAL);
}

int main(void)
{
    test_parse_integer();
    test_strlist();
    test_strings_and_clock();
    test_blob();
    test_hash_hex();
    test_log_escape();
    test_log_levels();
    test_log_formats();
    test_log_stalled();
    return check_summary();
}
