/* Level-gated logging to stderr. Under systemd (JOURNAL_STREAM naming stderr) lines carry
 * <N> priority prefixes and no timestamps; otherwise an ISO-8601 UTC timestamp and the level. */
#ifndef MOVIESD_LOG_H
#define MOVIESD_LOG_H

#include <stddef.h>

struct stat;

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Written by the loop (log_set_level), read by every thread: use log_level_now(). */
extern enum log_level log_current_level;
static inline enum log_level log_level_now(void)
{
    return __atomic_load_n(&log_current_level, __ATOMIC_RELAXED);
}

/* Chooses the format once, from JOURNAL_STREAM and what stderr is. */
void log_init(enum log_level level);
/* Whether value, JOURNAL_STREAM's "DEV:INODE", names the file st describes (stderr's fstat).
 * The variable outlives a redirect (a shell under systemd running `moviesd 2>file`), so it
 * alone does not say the journal reads stderr. value may be NULL. */
int log_journal_stream_matches(const char *value, const struct stat *st);
void log_set_level(enum log_level level);
/* "error", "warn", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats only when the level is enabled. */
#define log_at(level, ...)                                                                   \
    do {                                                                                     \
        if ((level) <= log_level_now())                                                      \
            log_write((level), __VA_ARGS__);                                                 \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

/* Copies s (at most len bytes) into out for logging scraped or client text: control bytes,
 * quotes, backslashes, invalid UTF-8 and the bytes of C1 controls and of bidirectional and
 * line-breaking format controls (U+061C, U+200E-F, U+2028-E, U+2066-9; U+202E becomes
 * \xe2\x80\xae) become \xNN escapes, and the result is cut at outlen-1 bytes. Returns out. */
char *log_escape(const char *s, size_t len, char *out, size_t outlen);

#endif
