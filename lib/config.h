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
    char *public_url;                   /* the daemon's own base URL, like upstream; "" for none */
    char *user_agent;
    long long cities;                   /* enum cities_policy */
    char *prefetch_cities;              /* a list for city_list_parse; "" for none */
    long long log_level;                /* enum log_level */
    long long max_host_connections;
    long long max_upstream_connections; /* total cap across hosts */
    long long upstream_timeout;         /* seconds */
    long long max_body_size;            /* bytes, decoded */
    long long listing_ttl;              /* seconds */
    long long detail_ttl;
    long long cache_max_entries;        /* cities */
    long long cache_max_bytes;          /* the city and movie caches together */
    long long stale_max_age;
    long long stale_while_revalidate;   /* seconds past the TTL an old answer is served at once; 0 off */
    long long min_request_interval_ms;
    long long max_requests_per_minute;
    long long retries;
    long long detail_retries;           /* background attempts at a failed movie page */
    long long detail_retry_delay;       /* seconds before the first, doubling */
    long long block_backoff;            /* seconds, doubling on repeated blocks */
    long long block_backoff_max;
    long long request_deadline;         /* seconds */
    long long events_heartbeat;         /* seconds */
    long long drain_timeout;
    long long parse_threads;            /* CONFIG_AUTO: see config_parse_threads */
    long long max_connections;          /* API side */
    long long max_connections_per_ip;
    long long connection_timeout;       /* idle seconds */
    long long request_header_timeout;   /* seconds from accept (or a request's first byte) to a complete request; 0 off */
    long long connection_memory_limit;
    char *redis_url;                    /* "" for none: see redis_url_parse */
    char *redis_password_file;          /* "" for none */
    long long redis_timeout_ms;
    long long expected_replicas;
    char *poster_upstream;              /* "" for Douban's image hosts themselves */
    char *poster_cache_dir;             /* "" for memory only */
    long long poster_cache_max_bytes;
    long long poster_min_request_interval_ms;
    long long poster_max_requests_per_minute;
    char *cors_origins;                 /* "*", a list of origins, or "" for no CORS: see cors.h */
};

/* Which cities /movies and `moviesd fetch` accept: the order of the setting's choices. */
enum cities_policy {
    CITIES_KNOWN,   /* only those of the city table; another slug is unknown_city at once */
    CITIES_ANY,     /* any well-formed slug is asked of Douban (cities newer than the table) */
};

enum setting_type {
    SETTING_STRING,
    SETTING_INTEGER,
    SETTING_LOG_LEVEL,
    SETTING_LISTEN,
    SETTING_URL,
    SETTING_CHOICE,     /* one word of choices, kept as its index (a long long) */
    SETTING_CITY_LIST,  /* text that city_list_parse accepts, kept as given */
    SETTING_REDIS_URL,  /* empty, or a URL that redis_url_parse accepts, kept as given */
    SETTING_PATH,       /* empty, or a file name without control characters */
    SETTING_ORIGIN_LIST, /* "*", empty, or origins that cors_check accepts, kept as given */
};

struct setting {
    const char *name;           /* key in the file; --name-with-dashes; MOVIESD_NAME */
    enum setting_type type;
    size_t offset;              /* into struct config */
    long long min, max;         /* for integers */
    const char *auto_word;      /* for integers: a word that stands for CONFIG_AUTO, or NULL */
    const char *const *choices; /* for choices: the words, NULL-terminated */
    const char *default_value;  /* as text, parsed like any other source */
    const char *unit;           /* "seconds", "bytes", ... or NULL */
    int live;                   /* 1 if a SIGHUP reload can apply it: config_apply_live */
    const char *help;
};

extern const struct setting config_settings[];
extern const size_t config_settings_count;

/* The value of an integer setting given as its auto_word: the daemon picks it. */
#define CONFIG_AUTO (-1)

/* The parse workers to start: parse_threads, or for auto the online CPUs, at most 4. */
int config_parse_threads(const struct config *c);

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

/* Applies a reloaded configuration (loaded, borrowed) to the running one: each live setting
 * takes loaded's value (strings copied), each restart-only one keeps its running value,
 * and the names of the restart-only settings whose loaded value differs go to kept,
 * ", "-separated ("" if none; cut at keptlen - 1 bytes; kept may be NULL). Fails with -1,
 * the reason in err and running and kept unchanged, if any value of loaded is one
 * config_set would refuse or a string is unset. */
int config_apply_live(struct config *running, const struct config *loaded, char *kept,
                      size_t keptlen, char *err, size_t errlen);

/* Writes "key = value" lines of every setting (the effective configuration). */
void config_print(const struct config *c, FILE *out);
/* Writes the --help text of every setting. */
void config_print_help(FILE *out);
/* Writes the settings as a Markdown table (the README's). */
void config_print_markdown(FILE *out);

#endif
