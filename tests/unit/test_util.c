/* Unit tests of lib/util.c and lib/log.c: number parsing, string lists, blobs, hashes,
 * UTF-8 sequences, log escaping and the two log line formats. */
#include "check.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether s is entirely valid UTF-8, by the library's own check (tested below). */
static int valid_utf8(const char *s, size_t len)
{
    size_t n;
    for (size_t i = 0; i < len; i += n)
        if ((n = utf8_sequence(s + i, len - i)) == 0)
            return 0;
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

    /* The hex is the hash the cache buckets by. */
    CHECK(hash_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    CHECK(hash_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(hash_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
    CHECK(hash_fnv1a("foobar", 3) == hash_fnv1a("foo", 3));
}

/* A reference for utf8_sequence written differently: decode, then judge the code point. */
static size_t utf8_reference(const unsigned char *p, size_t avail)
{
    static const unsigned long least[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3
             : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || avail < n)
        return 0;
    unsigned long cp = n == 1 ? p[0] : (unsigned long)(p[0] & (0x7F >> n));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* utf8_sequence against the reference on every one-, two- and three-byte input and on
 * four-byte ones around the edges, with and without room for the whole sequence. */
static void test_utf8_sequence(void)
{
    unsigned char b[4];
    size_t wrong = 0;
    for (unsigned b0 = 0; b0 < 256; b0++)
        for (unsigned b1 = 0; b1 < 256; b1++)
            for (unsigned b2 = 0; b2 < 256; b2++) {
                static const unsigned char last[] = {0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF};
                b[0] = (unsigned char)b0;
                b[1] = (unsigned char)b1;
                b[2] = (unsigned char)b2;
                for (size_t k = 0; k < (b0 >= 0xF0 ? sizeof last : 1); k++) {
                    b[3] = last[k];
                    for (size_t avail = 1; avail <= 4; avail++)
                        if (utf8_sequence((const char *)b, avail) != utf8_reference(b, avail))
                            wrong++;
                }
            }
    CHECK_INT(wrong, 0);

    CHECK_INT(utf8_sequence("", 0), 0);
    CHECK_INT(utf8_sequence("", 1), 1);                    /* a NUL is a character */
    CHECK_INT(utf8_sequence("a", 1), 1);
    CHECK_INT(utf8_sequence("\xC2\xA0", 2), 2);
    CHECK_INT(utf8_sequence("\xC2\x9B", 2), 2);            /* C1 controls are UTF-8 */
    CHECK_INT(utf8_sequence("电", 3), 3);
    CHECK_INT(utf8_sequence("🎬", 4), 4);
    CHECK_INT(utf8_sequence("\xF4\x8F\xBF\xBF", 4), 4);    /* U+10FFFF */
    CHECK_INT(utf8_sequence("\xF4\x90\x80\x80", 4), 0);
    CHECK_INT(utf8_sequence("\xED\x9F\xBF", 3), 3);        /* U+D7FF */
    CHECK_INT(utf8_sequence("\xED\xA0\x80", 3), 0);        /* U+D800 */
    CHECK_INT(utf8_sequence("电", 2), 0);                  /* cut short */

    /* Nothing past the first wrong byte is read (ASan sees any overread of these). */
    unsigned char *two = xmalloc(2), *three = xmalloc(3);
    memcpy(two, "\xE7\x00", 2);
    CHECK_INT(utf8_sequence((const char *)two, 4), 0);
    memcpy(three, "\xF0\x9F\x00", 3);
    CHECK_INT(utf8_sequence((const char *)three, 4), 0);
    free(two);
    free(three);
}

/* Word lists: any run of separators splits, words are compared whole. */
static void test_words(void)
{
    const char *p = "  item\tmod  x ", *w;
    size_t n;
    CHECK((w = words_next(&p, " \t", &n)) != NULL && n == 4 && strncmp(w, "item", 4) == 0);
    CHECK((w = words_next(&p, " \t", &n)) != NULL && n == 3 && strncmp(w, "mod", 3) == 0);
    CHECK((w = words_next(&p, " \t", &n)) != NULL && n == 1 && *w == 'x');
    CHECK(words_next(&p, " \t", &n) == NULL);
    CHECK_INT(n, 0);
    p = "";
    CHECK(words_next(&p, " ", &n) == NULL);

    CHECK(words_contain("item mod", " ", "mod", 3));
    CHECK(words_contain("剧情 喜剧", " ", "喜剧", strlen("喜剧")));
    CHECK(words_contain("a\tb", " \t", "b", 1));
    CHECK(!words_contain("a\tb", " ", "b", 1));            /* only the given separators */
    CHECK(!words_contain("items mod", " ", "item", 4));    /* whole words only */
    CHECK(!words_contain("item mod", " ", "mo", 2));
    CHECK(!words_contain("", " ", "a", 1));
    CHECK(words_contain("ab", " ", "abc", 2));             /* w is wlen bytes */
}

/* A bounded search that looks past NULs and never past len. */
static void test_bytes_find(void)
{
    static const char data[] = "a\0有异常请求\0b";
    size_t len = sizeof data - 1;
    CHECK(bytes_find(data, len, "有异常请求") == data + 2);
    CHECK(bytes_find(data, len, "b") == data + len - 1);
    CHECK(bytes_find(data, len - 1, "b") == NULL);
    CHECK(bytes_find(data, 5, "有异常请求") == NULL);       /* cut short by len */
    CHECK(bytes_find(data, len, "x") == NULL);
    const char *s = "aaab";
    CHECK(bytes_find(s, 4, "aab") == s + 1);            /* after a false start */
    CHECK(bytes_find(s, 0, "a") == NULL);
    CHECK(bytes_find(s, 4, "") == s);
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
    /* Bidirectional and line-breaking format controls are escaped like C1 controls: they
     * would make a logged path read as other text. */
    CHECK_STR(log_escape("/movies\xe2\x80\xaegpj.exe", 17, out, sizeof out),
              "/movies\\xe2\\x80\\xaegpj.exe");                                      /* U+202E */
    static const struct { const char *utf8, *escaped; } format_controls[] = {
        {"\xd8\x9c", "\\xd8\\x9c"},                                                  /* U+061C */
        {"\xe2\x80\x8e", "\\xe2\\x80\\x8e"}, {"\xe2\x80\x8f", "\\xe2\\x80\\x8f"},    /* U+200E-F */
        {"\xe2\x80\xa8", "\\xe2\\x80\\xa8"}, {"\xe2\x80\xa9", "\\xe2\\x80\\xa9"},    /* U+2028-9 */
        {"\xe2\x80\xaa", "\\xe2\\x80\\xaa"}, {"\xe2\x80\xab", "\\xe2\\x80\\xab"},    /* U+202A-E */
        {"\xe2\x80\xac", "\\xe2\\x80\\xac"}, {"\xe2\x80\xad", "\\xe2\\x80\\xad"},
        {"\xe2\x80\xae", "\\xe2\\x80\\xae"},
        {"\xe2\x81\xa6", "\\xe2\\x81\\xa6"}, {"\xe2\x81\xa7", "\\xe2\\x81\\xa7"},    /* U+2066-9 */
        {"\xe2\x81\xa8", "\\xe2\\x81\\xa8"}, {"\xe2\x81\xa9", "\\xe2\\x81\\xa9"},
    };
    for (size_t i = 0; i < sizeof format_controls / sizeof format_controls[0]; i++)
        CHECK_STR(log_escape(format_controls[i].utf8, strlen(format_controls[i].utf8), out, sizeof out),
                  format_controls[i].escaped);
    /* Their neighbours are ordinary text: U+061B, U+200D (joins emoji), U+2027, U+2030,
     * U+2065, U+206A, and the dash of Douban's titles. */
    const char *neighbours = "\xd8\x9b \xe2\x80\x8d \xe2\x80\xa7 \xe2\x80\xb0 \xe2\x81\xa5 \xe2\x81\xaa \xe2\x80\x94";
    CHECK_STR(log_escape(neighbours, strlen(neighbours), out, sizeof out), neighbours);

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

/* Sets JOURNAL_STREAM to stderr's device and inode, as systemd does for a service. */
static void journal_on_stderr(void)
{
    struct stat st;
    char value[64];
    if (fstat(STDERR_FILENO, &st) != 0)
        exit(2);
    snprintf(value, sizeof value, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", value, 1);
}

/* JOURNAL_STREAM counts only when its DEV:INODE are stderr's, both strict decimals. */
static void test_log_journal_stream(void)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_dev = 8;
    st.st_ino = 123456;
    CHECK_INT(log_journal_stream_matches("8:123456", &st), 1);
    const char *bad[] = { NULL, "", "8", "8:", ":123456", "9:123456", "8:123457", "8:1234560",
                          "08:123456x", "+8:123456", "8:-123456", " 8:123456", "8:123456 ",
                          "8:123456:1", "8;123456", "0x8:123456",
                          "99999999999999999999:123456", "8:123456123456123456123456123456" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (log_journal_stream_matches(bad[i], &st))
            fprintf(stderr, "JOURNAL_STREAM '%s' matched 8:123456\n", bad[i] ? bad[i] : "(null)");
        CHECK_INT(log_journal_stream_matches(bad[i], &st), 0);
    }
    CHECK_INT(log_journal_stream_matches("08:0123456", &st), 1);
    st.st_dev = 0;
    st.st_ino = 0;
    CHECK_INT(log_journal_stream_matches("0:0", &st), 1);

    /* log_init looks at stderr itself: a variable naming another file (stderr redirected
     * under systemd) leaves the plain format. */
    static char out[4096];
    struct capture cap;
    struct stat other;
    char value[64];
    CHECK_INT(stat("/", &other), 0);
    snprintf(value, sizeof value, "%llu:%llu", (unsigned long long)other.st_dev,
             (unsigned long long)other.st_ino);
    capture_begin(&cap);
    setenv("JOURNAL_STREAM", value, 1);
    log_init(LOG_INFO);
    log_info("elsewhere");
    journal_on_stderr();
    log_init(LOG_INFO);
    log_info("journal");
    capture_read(&cap, out, sizeof out);
    capture_end(&cap);
    unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO);
    const char *nl = strchr(out, '\n');
    CHECK(nl != NULL && out[0] >= '0' && out[0] <= '9');
    CHECK(nl != NULL && nl - out > 10 && memcmp(nl - 10, " elsewhere", 10) == 0);
    CHECK_STR(nl ? nl + 1 : "", "<6>journal\n");
}

/* Under systemd the lines are "<N>message"; otherwise a UTC timestamp and the level. */
static void test_log_formats(void)
{
    static char out[65536];
    struct capture cap;
    size_t len;

    capture_begin(&cap);
    journal_on_stderr();
    log_init(LOG_INFO);
    log_info("hello %d", 5);
    log_debug("not shown %d", 1);
    log_error("boom");
    log_warn("careful");
    log_set_level(LOG_DEBUG);
    log_debug("shown %s", "now");
    log_info("line\nbreak\x1b");
    log_info("rtl\xe2\x80\xae \xd8\x9c|\xe2\x81\xa9|\xe2\x80\x94");  /* the backstop for unescaped text */
    capture_read(&cap, out, sizeof out);
    capture_end(&cap);
    CHECK_STR(out, "<6>hello 5\n<3>boom\n<4>careful\n<7>shown now\n<6>line?break?\n"
                   "<6>rtl??? ??|???|\xe2\x80\x94\n");

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

    capture_begin(&cap);
    journal_on_stderr();
    log_init(LOG_INFO);
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
    test_utf8_sequence();
    test_words();
    test_bytes_find();
    test_log_escape();
    test_log_levels();
    test_log_journal_stream();
    test_log_formats();
    test_log_stalled();
    return check_summary();
}
