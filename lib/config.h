/* The settings: one table (name, type, bounds, default, help) drives the config file, the
 * command-line flags (--key-with-dashes), the environment (MOVIESD_KEY), --help, the
 * effective-settings dump and the README table. Precedence: flag > environment > file >
 * default. */
#ifndef MOVIESD_CONFIG_H
#define MOVIESD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
    char *listen;                       /* HOST:PORT; port 0 picks a free port */
    char *upstream;                     /* base URL, http or https, no trailing slash */
    char *user_agent;
    long long log_level;                /* enum log_level */
    long long max_host_connections;
    long long max_upstream_connections; /* total cap across hosts */
    long long upstream_timeout;         /* seconds */
    long long max_body_size;            /* bytes, decoded */
    long long listing_ttl;              /* seconds */
    long long detail_ttl;
    long long cache_max_entries;        /* cities */
    long long stale_max_age;
    long long stale_while_revalidate;   /* seconds past the TTL an old answer is served at once; 0 off */
    long long min_request_interval_ms;
    long long max_requests_per_minute;
    long long retries;
    long long block_backoff;            /* seconds, doubling on repeated blocks */
    long long block_backoff_max;
    long long request_deadline;         /* seconds */
    long long drain_timeout;
    long long max_connections;          /* API side */
    long long max_connections_per_ip;
    long long connection_timeout;
    long long connection_memory_limit;
};

enum setting_type { SETTING_STRING, SETTING_INTEGER, SETTING_LOG_LEVEL, SETTING_LISTEN,
                    SETTING_URL };

struct setting {
    const char *name;          /* key in the file; --name-with-dashes; MOVIESD_NAME */
    enum setting_type type;
    size_t offset;             /* into struct config */
    long long min, max;        /* for integers */
    const char *default_value; /* as text, parsed like any other source */
    const char *unit;          /* "seconds", "bytes", ... or NULL */
    int live;                  /* 1 if a SIGHUP reload can apply it */
    const char *help;
};

extern const struct setting config_settings[];
extern const size_t config_settings_count;

/* Fills every setting with its default. */
void config_init(struct config *c);
/* Frees the strings; accepts a zeroed config. */
void config_free(struct config *c);
/* Deep copy (dst must be uninitialised or freed). */
void config_copy(struct config *dst, const struct config *src);

const struct setting *config_find(const char *name);
/* Finds a setting by its flag spelling ("listing-ttl"). */
const struct setting *config_find_flag(const char *flag);

/* Sets one setting from text. On error returns -1 and writes "<source>: <reason>" to err,
 * e.g. "--listing-ttl: 'abc' is not an integer". */
int config_set(struct config *c, const struct setting *s, const char *value, const char *source,
               char *err, size_t errlen);

/* Reads a "key = value" file (# comments, blank lines). An unknown key, a bad or
 * out-of-bounds value, or a line without '=' fails with "FILE:LINE: reason". */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Applies every MOVIESD_<KEY> variable of envp. An unknown MOVIESD_ variable other than
 * MOVIESD_CONFIG fails, naming it. */
int config_load_env(struct config *c, char *const envp[], char *err, size_t errlen);

/* Writes "key = value" lines of every setting (the effective configuration). */
void config_print(const struct config *c, FILE *out);
/* Writes the --help text of every setting. */
void config_print_help(FILE *out);
/* Writes the settings as a Markdown table (the README's). */
void config_print_markdown(FILE *out);

#endif
