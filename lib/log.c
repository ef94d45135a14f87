#include "log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

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
/* The parse workers log too: one line at a time, and the two counters above, under it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* Compares JOURNAL_STREAM's device and inode numbers with st's (systemd.exec(5)). */
int log_journal_stream_matches(const char *value, const struct stat *st)
{
    char dev[32], ino[32];
    const char *colon = value ? strchr(value, ':') : NULL;
    if (colon == NULL || (size_t)(colon - value) >= sizeof dev || strlen(colon + 1) >= sizeof ino)
        return 0;
    memcpy(dev, value, (size_t)(colon - value));
    dev[colon - value] = '\0';
    strcpy(ino, colon + 1);
    long long d, i;
    if (parse_integer(dev, 0, LLONG_MAX, &d) != 0 || parse_integer(ino, 0, LLONG_MAX, &i) != 0)
        return 0;
    return (unsigned long long)d == (unsigned long long)st->st_dev &&
           (unsigned long long)i == (unsigned long long)st->st_ino;
}

/* Chooses the line format from JOURNAL_STREAM and sets the level. */
void log_init(enum log_level level)
{
    struct stat st;
    log_journal = fstat(STDERR_FILENO, &st) == 0 &&
                  log_journal_stream_matches(getenv("JOURNAL_STREAM"), &st);
    log_stalled = 0;
    log_dropped = 0;
    log_set_level(level);
}

/* Changes the level, e.g. on a SIGHUP reload. */
void log_set_level(enum log_level level)
{
    int index = level_index(level);
    __atomic_store_n(&log_current_level, (enum log_level)index, __ATOMIC_RELAXED);
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

/* Whether the n-byte UTF-8 sequence at p is a bidirectional or line-breaking format
 * control: U+061C, U+200E..U+200F, U+2028..U+202E, U+2066..U+2069. They are invisible
 * and reorder or break what a reader sees ("Trojan Source"), so a logged path or title
 * could show other text than it holds. */
static int is_format_control(const unsigned char *p, size_t n)
{
    if (n == 2)
        return p[0] == 0xD8 && p[1] == 0x9C;
    if (n != 3 || p[0] != 0xE2)
        return 0;
    unsigned cp = 0x2000u | ((unsigned)(p[1] & 0x3F) << 6) | (unsigned)(p[2] & 0x3F);
    return (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
           (cp == 0x200E || cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) ||
            (cp >= 0x2066 && cp <= 0x2069));
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
    /* A newline inside a message would start a journal entry without a priority, other
     * control bytes can drive a terminal, and format controls reorder what a reader sees;
     * callers escape scraped text, this is the backstop. */
    for (size_t i = start; i < len; i++) {
        unsigned char *ch = (unsigned char *)line + i;
        size_t seq = *ch == 0xD8 ? 2 : *ch == 0xE2 ? 3 : 0;
        if ((*ch < 0x20 && *ch != '\t') || *ch == 0x7F) {
            *ch = '?';
        } else if (seq > 0 && len - i >= seq && is_format_control(ch, seq)) {
            memset(ch, '?', seq);
            i += seq - 1;
        }
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

    pthread_mutex_lock(&log_lock);
    /* Lost lines are owned up to before the next one, so the gap shows where it was. */
    if (log_dropped > 0 &&
        write_note(LOG_WARN, "stderr was blocked: %lu log lines dropped", log_dropped) == 0)
        log_dropped = 0;
    va_start(ap, fmt);
    if (write_line(level_index(level), fmt, ap) != 0)
        log_dropped++;
    va_end(ap);
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

/* Whether the n-byte UTF-8 sequence at p is a C1 control character (U+0080..U+009F), which
 * terminals may obey. */
static int is_c1_control(const unsigned char *p, size_t n)
{
    return n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
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
            plain = (n = utf8_sequence(s + i, len - i)) > 0 && !is_c1_control(p + i, n) &&
                    !is_format_control(p + i, n);
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
