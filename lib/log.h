/* Level-gated logging to stderr. Under systemd (JOURNAL_STREAM set) lines carry <N>
 * priority prefixes and no timestamps; otherwise an ISO-8601 UTC timestamp and the level. */
#ifndef MOVIESD_LOG_H
#define MOVIESD_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_current_level;

/* Chooses the format once, from the environment (JOURNAL_STREAM). */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
/* "error", "warn", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats only when the level is enabled. */
#define log_at(level, ...)                                                                   \
    do {                                                                                     \
        if ((level) <= log_current_level)                                                    \
            log_write((level), __VA_ARGS__);                                                 \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

/* Copies s (at most len bytes) into out for logging scraped or client text: control bytes,
 * quotes and backslashes become \xNN escapes, and the result is cut at outlen-1 bytes.
 * Returns out. */
char *log_escape(const char *s, size_t len, char *out, size_t outlen);

#endif
