#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One line, newline included, is written with a single write(). 4096 is PIPE_BUF on Linux,
 * so a line sent to a pipe never interleaves with another process's output. */
#define LOG_LINE_MAX 4096
/* How long one write may wait for a full stderr (a stuck journal, a paused terminal)
 * before lines are dropped instead; the daemon is one event loop and must not hang on it. */
#define LOG_WRITE_TIMEOUT_MS 250
#define LOG_TRUNCATED_MARK "..."

enum log_level log_current_level = LOG_INFO;

/* Chosen once by log_init: "<N>message" for the journal, or timestamp and level. */
static int log_journal;
/* Set after a write timed out: later writes only try without waiting until one succeeds,
 * so a stalled stderr costs the loop one timeout, not one per line. */
static int log_stalled;
/* Lines lost while stderr was stalled, reported with the next line that gets through. */
static unsigned long log_dropped;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const level_labels[] = { "ERROR", "WARN", "INFO", "DEBUG" };
/* syslog priorities, which the journal reads from the <N> prefix. */
static const int level_priorities[] = { 3, 4, 6, 7 };

/* Clamps a level that may come from a cast integer to a table index. */
static int level_index(enum log_level level)
{
    if ((int)level < (int)LOG_ERROR)
        return LOG_ERROR;
    if ((int)level > (int)LOG_DEBUG)
        return LOG_DEBUG;
    return (int)level;
}

/* Chooses the line format from JOURNAL_STREAM and sets the level. */
void log_init(enum log_level level)
{
    const char *js = getenv("JOURNAL_STREAM");
    log_journal = js != NULL && js[0] != '\0';
    log_stalled = 0;
    log_dropped = 0;
    log_set_level(level);
}

/* Changes the level, e.g. on a SIGHUP reload. */
void log_set_level(enum log_level level)
{
    int index = level_index(level);
    log_current_level = (enum log_level)index;
}

/* Maps a level name to its level; -1 if unknown. */
int log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* Maps a level to its name as log_level_parse reads it. */
const char *log_level_name(enum log_level level)
{
    if ((int)level < (int)LOG_ERROR || (int)level > (int)LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

/* Writes buf to stderr without waiting longer than the timeout; 0 if all of it went out. */
static int log_emit(const char *buf, size_t len)
{
    int timeout = log_stalled ? 0 : LOG_WRITE_TIMEOUT_MS;
    while (len > 0) {
        struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };
        int r = poll(&pfd, 1, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
            if (r == 0)
                log_stalled = 1;
            return -1;
        }
        /* POLLOUT on a pipe means a free buffer slot, so a line of at most PIPE_BUF bytes
         * goes out whole without blocking. */
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    log_stalled = 0;
    return 0;
}

/* Writes the level's prefix into line: "<N>" or "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL ". */
static size_t format_prefix(char *line, size_t size, int level)
{
    int n;
    if (log_journal) {
        n = snprintf(line, size, "<%d>", level_priorities[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        char date[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, size, "%s.%03ldZ %s ", date, ts.tv_nsec / 1000000L,
                     level_labels[level]);
    }
    return n < 0 ? 0 : (size_t)n;
}

/* Formats one line into line (LOG_LINE_MAX bytes) and returns its length, newline included. */
static size_t __attribute__((format(printf, 3, 0)))
format_line(char *line, int level, const char *fmt, va_list ap)
{
    /* Room for the truncation mark and the newline is kept back from the start. */
    const size_t mark = sizeof LOG_TRUNCATED_MARK - 1;
    const size_t room = LOG_LINE_MAX - mark - 1;
    size_t len = format_prefix(line, room, level);
    size_t start = len;
    int n = vsnprintf(line + len, room - len, fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < room - len) {
        len += (size_t)n;
    } else {
        /* Cut before a UTF-8 sequence that lost its tail, so the line stays valid text:
         * find the lead byte of the last sequence kept and compare its length with what
         * is left of it. */
        len = room - 1;
        size_t lead = len;
        while (lead > start && ((unsigned char)line[lead - 1] & 0xC0) == 0x80)
            lead--;
        if (lead > start) {
            unsigned char b = (unsigned char)line[lead - 1];
            size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            if (len - (lead - 1) < need)
                len = lead - 1;
        }
        memcpy(line + len, LOG_TRUNCATED_MARK, mark);
        len += mark;
    }
    /* A newline inside a message would start a journal entry without a priority, and other
     * control bytes can drive a terminal; callers escape scraped text, this is the backstop. */
    for (size_t i = start; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7F)
            line[i] = '?';
    }
    line[len++] = '\n';
    return len;
}

/* Formats one line and writes it; 0 if it went out whole. */
static int __attribute__((format(printf, 2, 0)))
write_line(int level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len = format_line(line, level, fmt, ap);
    return log_emit(line, len);
}

/* write_line for the logger's own notes. */
static int __attribute__((format(printf, 2, 3))) write_note(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = write_line(level, fmt, ap);
    va_end(ap);
    return r;
}

/* Formats and writes one line at level, whatever the current level; keeps errno. */
void log_write(enum log_level level, const char *fmt, ...)
{
    int saved_errno = errno;
    va_list ap;

    /* Lost lines are owned up to before the next one, so the gap shows where it was. */
    if (log_dropped > 0 &&
        write_note(LOG_WARN, "stderr was blocked: %lu log lines dropped", log_dropped) == 0)
        log_dropped = 0;
    va_start(ap, fmt);
    if (write_line(level_index(level), fmt, ap) != 0)
        log_dropped++;
    va_end(ap);
    errno = saved_errno;
}

/* Length of the valid UTF-8 sequence at p (at most avail bytes), or 0 if it is invalid,
 * cut short, or a C1 control character (U+0080..U+009F), which terminals may obey. */
static size_t utf8_sequence(const unsigned char *p, size_t avail)
{
    unsigned char b = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        if (b == 0xC2)
            lo = 0xA0;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    /* Checked one by one, so a NUL ends the scan before any byte past it is read. */
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Copies s for logging, escaping what could forge lines or confuse a reader; see log.h.
 * Stops at len bytes or at a NUL, whichever comes first. */
char *log_escape(const char *s, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    if (out == NULL || outlen == 0)
        return out;
    for (size_t i = 0; s != NULL && i < len && p[i] != '\0';) {
        unsigned char b = p[i];
        size_t n = 0;
        int plain;
        if (b < 0x80)
            plain = b >= 0x20 && b != 0x7F && b != '"' && b != '\\';
        else
            plain = (n = utf8_sequence(p + i, len - i)) > 0;
        if (plain) {
            if (n == 0)
                n = 1;
            /* A sequence that does not fit whole is left out, never cut. */
            if (o + n > outlen - 1)
                break;
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            if (o + 4 > outlen - 1)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 0x0F];
            i++;
        }
    }
    out[o] = '\0';
    return out;
}
