/* libFuzzer target: log_escape, which every piece of scraped or client text passes through
 * before it reaches a log line or an error message.
 *
 * Input: byte 0 picks outlen (0-255), byte 1 shortens len, the rest is the text. The output
 * buffer is allocated at exactly outlen bytes and the text is not NUL-terminated, so ASan
 * sees any write past outlen or read past len.
 *
 * Checked for every outlen: the result is out, NUL-terminated within outlen (so at most
 * outlen-1 bytes), strict UTF-8 without control bytes, C1 controls, bidirectional or
 * line-breaking format controls, quotes or lone backslashes (a backslash always starts \xNN); it is the longest prefix of the unbounded
 * escape that fits without cutting a character or an escape; and the unbounded escape
 * decodes back to the text up to len or the first NUL.
 *
 * The raw text also goes through log_write, the backstop for text nobody escaped, with
 * stderr pointed at a pipe for the call (a crash inside it saves the input but its report
 * is lost: rerun the input to see it), alone or after blanks that put it where a long line
 * is cut (byte 1 picks). Its line must be one line of at most 4096 bytes, free of control
 * bytes but tabs and of format controls, and cut only between UTF-8 characters. */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#include "log.h"

/* The pipe log_write's lines go to. */
static int log_pipe[2] = {-1, -1};

/* The code point of the n-byte strict UTF-8 sequence at p. */
static uint32_t code_point(const unsigned char *p, size_t n)
{
    static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & lead_mask[n];
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (p[i] & 0x3Fu);
    return cp;
}

/* Whether cp is one of the format controls log_escape must hide. */
static int format_control(uint32_t cp)
{
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* Checks the escaped text s: what may appear in a log line. */
static void check_output(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    FUZZ_CHECK(fuzz_utf8_valid(s, len));
    for (size_t i = 0; i < len;) {
        size_t n = fuzz_utf8_len(p + i, len - i);
        FUZZ_CHECK(!format_control(code_point(p + i, n)));
        if (n == 1) {
            FUZZ_CHECK(p[i] >= 0x20 && p[i] != 0x7F && p[i] != '"');
            if (p[i] == '\\') {
                FUZZ_CHECK(len - i >= 4 && p[i + 1] == 'x');
                FUZZ_CHECK(strspn(s + i + 2, "0123456789abcdef") >= 2);
                n = 4;
            }
        } else if (n == 2) {
            FUZZ_CHECK(!(p[i] == 0xC2 && p[i + 1] < 0xA0)); /* U+0080..U+009F */
        }
        i += n;
    }
}

/* Length of the unit (character or \xNN escape) at s[0] of an escaped text. */
static size_t unit_len(const char *s)
{
    return s[0] == '\\' ? 4 : fuzz_utf8_len((const unsigned char *)s, strlen(s));
}

/* Decodes an escaped text into out (new), returning its length. */
static size_t unescape(const char *s, char **out)
{
    size_t len = strlen(s), o = 0;
    char *d = malloc(len + 1);
    FUZZ_CHECK(d != NULL);
    for (size_t i = 0; i < len;) {
        if (s[i] == '\\') {
            char hex[3] = {s[i + 2], s[i + 3], '\0'};
            d[o++] = (char)strtoul(hex, NULL, 16);
            i += 4;
        } else {
            d[o++] = s[i++];
        }
    }
    *out = d;
    return o;
}

/* The text escaped into a buffer of exactly outlen bytes; checked and returned (new), or
 * NULL when outlen is 0 (malloc(0) is a buffer ASan guards whole: nothing may be written). */
static char *escape(const char *s, size_t len, size_t outlen)
{
    char *out = malloc(outlen);
    FUZZ_CHECK(out != NULL || outlen == 0);
    FUZZ_CHECK(log_escape(s, len, out, outlen) == out);
    if (outlen == 0) {
        free(out);
        return NULL;
    }
    FUZZ_CHECK(memchr(out, '\0', outlen) != NULL);
    check_output(out);
    return out;
}

/* Writes text as a log line in the journal or the plain format, after pad blanks (which
 * can put it where a long line is cut), and checks the line. */
static void check_log_line(const char *text, int journal, int pad)
{
    char line[2 * 4096];
    if (journal)
        setenv("JOURNAL_STREAM", "8:1", 1);
    else
        unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FUZZ_CHECK(saved >= 0 && dup2(log_pipe[1], STDERR_FILENO) == STDERR_FILENO);
    log_write(LOG_WARN, "%*s%s", pad, "", text);
    FUZZ_CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO && close(saved) == 0);
    ssize_t n = read(log_pipe[0], line, sizeof line);
    FUZZ_CHECK(n > 0 && n <= 4096 && line[n - 1] == '\n');
    FUZZ_CHECK(read(log_pipe[0], line + n, sizeof line - (size_t)n) < 0);  /* one write */
    for (ssize_t i = 0; i < n - 1; i++)
        FUZZ_CHECK((unsigned char)line[i] >= 0x20 ? line[i] != 0x7F : line[i] == '\t');
    const unsigned char *p = (const unsigned char *)line;
    for (size_t i = 0; i < (size_t)n - 1;) {
        size_t len = fuzz_utf8_len(p + i, (size_t)n - 1 - i);
        FUZZ_CHECK(len == 0 || !format_control(code_point(p + i, len)));
        i += len ? len : 1;
    }
    if (fuzz_utf8_valid(text, strlen(text)))
        FUZZ_CHECK(fuzz_utf8_valid(line, (size_t)n));
}

/* Makes the pipe that stands in for stderr while log_write runs. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(pipe(log_pipe) == 0);
    FUZZ_CHECK(fcntl(log_pipe[0], F_SETFL, O_NONBLOCK) == 0);
    return 0;
}

/* One text, escaped into buffers of several sizes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chosen = data[0];
    const char *text = (const char *)data + 2;
    size_t avail = size - 2;
    size_t len = avail - data[1] % (avail + 1);

    /* The unbounded escape: at most 4 bytes per byte of text. */
    char *full = escape(text, len, 4 * len + 1);
    size_t full_len = strlen(full);
    char *plain;
    size_t plain_len = unescape(full, &plain);
    size_t text_len = strnlen(text, len);
    FUZZ_CHECK(plain_len == text_len && memcmp(plain, text, text_len) == 0);
    free(plain);

    /* A NUL-terminated copy read with an unbounded len stops at its NUL alike. */
    char *copy = fuzz_cstring((const uint8_t *)text, text_len);
    char *same = escape(copy, (size_t)-1, 4 * text_len + 1);
    FUZZ_CHECK(strcmp(same, full) == 0);
    free(same);
    check_log_line(copy, data[1] & 1, data[1] & 2 ? 3968 + data[0] : 0);
    free(copy);

    const size_t sizes[] = {0, 1, 2, 3, 4, 5, chosen, full_len, full_len + 1, full_len + 2};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *cut = escape(text, len, sizes[i]);
        if (cut == NULL)
            continue;
        size_t n = strlen(cut);
        FUZZ_CHECK(n <= sizes[i] - 1 && strncmp(cut, full, n) == 0);
        FUZZ_CHECK(n == full_len || n + unit_len(full + n) > sizes[i] - 1);
        free(cut);
    }
    FUZZ_CHECK(log_escape(NULL, len, NULL, 0) == NULL);
    char small[8];
    FUZZ_CHECK(log_escape(NULL, len, small, sizeof small) == small && small[0] == '\0');
    free(full);
    return 0;
}
