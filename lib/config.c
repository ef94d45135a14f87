/* The settings table and everything it drives.
 *
 * File format (config_load_file), chosen to be hard to get subtly wrong:
 *   - one "key = value" per line; blank lines are ignored;
 *   - a line whose first non-blank character is '#' is a comment. There are no trailing
 *     comments: "listing_ttl = 600 # ten minutes" is an error (not a whole number), never
 *     a silently different value, and a value such as a User-Agent may contain '#';
 *   - keys and values are trimmed of surrounding blanks; a value wrapped in double quotes
 *     has that one pair removed (no escapes inside), which keeps leading or trailing blanks
 *     and lets config_print write any value back;
 *   - a key given twice takes its last value, like a flag given twice;
 *   - the first error stops the load and leaves the config untouched, so a bad SIGHUP
 *     reload keeps the running settings whole.
 * The environment loader is all-or-nothing too. Values from the environment and from flags
 * are taken verbatim: no trimming, no quote stripping (the shell already did its quoting). */
#include "config.h"

#include "cities.h"
#include "cors.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_PREFIX "MOVIESD_"
/* Parsing needs few threads to keep up with a polite fetcher; more only cost memory. */
#define PARSE_THREADS_AUTO_MAX 4
/* Escaped values in messages are cut here: enough to recognise, short enough for a line. */
#define VALUE_SHOWN_MAX 160

#define INTEGER(key, lo, hi, def, unit_, live_, help_)                                       \
    { .name = #key, .type = SETTING_INTEGER, .offset = offsetof(struct config, key),        \
      .min = (lo), .max = (hi), .default_value = (def), .unit = (unit_), .live = (live_),   \
      .help = (help_) }
#define INTEGER_OR_AUTO(key, lo, hi, def, unit_, live_, help_)                               \
    { .name = #key, .type = SETTING_INTEGER, .offset = offsetof(struct config, key),        \
      .min = (lo), .max = (hi), .auto_word = "auto", .default_value = (def), .unit = (unit_),\
      .live = (live_), .help = (help_) }
#define TEXT(key, type_, def, live_, help_)                                                  \
    { .name = #key, .type = (type_), .offset = offsetof(struct config, key),                \
      .default_value = (def), .live = (live_), .help = (help_) }
#define CHOICE(key, words, def, live_, help_)                                                \
    { .name = #key, .type = SETTING_CHOICE, .offset = offsetof(struct config, key),         \
      .choices = (words), .default_value = (def), .live = (live_), .help = (help_) }

/* The words of the cities setting, in the order of enum cities_policy. */
static const char *const cities_choices[] = {"known", "any", NULL};

const struct setting config_settings[] = {
    TEXT(listen, SETTING_LISTEN, "127.0.0.1:8080", 0,
         "Address and port the HTTP API listens on; port 0 picks a free port."),
    TEXT(upstream, SETTING_URL, "https://movie.douban.com", 0,
         "Base URL of the Douban movie site to scrape: scheme, host and optional port."),
    TEXT(public_url, SETTING_URL, "", 0,
         "Base URL clients reach the daemon at (scheme, host and optional port), for the "
         "absolute links of the Atom and RSS feeds; empty: links to the daemon are relative "
         "and RSS items have no poster enclosure."),
    CHOICE(cities, cities_choices, "known", 1,
           "Which city slugs /movies and moviesd fetch accept: known takes only those of "
           "GET /cities and answers any other with unknown_city at once, asking Douban "
           "nothing; any passes every slug on to Douban, for cities newer than the table."),
    TEXT(prefetch_cities, SETTING_CITY_LIST, "", 1,
         "Cities whose listings are fetched ahead of requests: empty for none, all for every "
         "city of GET /cities, or slugs from that table separated by commas or spaces."),
    TEXT(user_agent, SETTING_STRING,
         "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36",
         1, "User-Agent header sent with every upstream request."),
    TEXT(log_level, SETTING_LOG_LEVEL, "info", 1,
         "Least severe messages logged: error, warn, info or debug."),
    INTEGER(max_host_connections, 0, 256, "2", NULL, 1,
            "Most simultaneous upstream connections to one host; 0 turns the limit off."),
    INTEGER(max_upstream_connections, 1, 1024, "16", NULL, 1,
            "Most simultaneous upstream connections in total."),
    INTEGER(upstream_timeout, 1, 600, "15", "seconds", 1,
            "Time one upstream fetch may take, from connecting to the last byte."),
    INTEGER(max_body_size, 1024, 1073741824, "4194304", "bytes", 1,
            "Largest decoded upstream page accepted; a bigger page fails its fetch."),
    INTEGER(listing_ttl, 1, 31536000, "3600", "seconds", 1,
            "How long a city's listing of movies stays fresh in the cache."),
    INTEGER(detail_ttl, 1, 31536000, "86400", "seconds", 1,
            "How long a movie's details stay fresh in the cache."),
    INTEGER(cache_max_entries, 1, 1000000, "1000", NULL, 1,
            "Most cities kept in the cache before old entries are evicted."),
    INTEGER(cache_max_bytes, 65536, 1099511627776LL, "67108864", "bytes", 1,
            "Most memory the city and movie caches hold together (answers as served, movie "
            "records as estimated); the least recently used entry of either goes first."),
    INTEGER(stale_max_age, 0, 31536000, "604800", "seconds", 1,
            "Oldest an answer may be, counted from its scrape, to be served marked stale "
            "when a refresh fails or is under way; 0 never serves stale answers."),
    INTEGER(stale_while_revalidate, 0, 31536000, "86400", "seconds", 1,
            "How long past its TTL an old answer is served at once while a refresh runs; "
            "0 makes requests wait for the refresh."),
    INTEGER(min_request_interval_ms, 0, 60000, "2000", "milliseconds", 1,
            "Least time between the starts of two upstream requests; 0 turns the spacing off."),
    INTEGER(max_requests_per_minute, 0, 100000, "30", NULL, 1,
            "Most upstream requests started in any one minute; 0 turns the limit off."),
    INTEGER(retries, 0, 10, "2", NULL, 1,
            "Extra attempts made for a failed upstream request."),
    INTEGER(detail_retries, 0, 10, "3", NULL, 1,
            "Background attempts at a movie page that failed for a passing reason (timeout, "
            "connection error, 5xx) after its quick retries; the answer is not complete until "
            "they are over."),
    INTEGER(detail_retry_delay, 1, 86400, "30", "seconds", 1,
            "Wait before the first background attempt at a failed movie page, doubled for each "
            "next one."),
    INTEGER(block_backoff, 0, 86400, "600", "seconds", 1,
            "Pause in upstream requests after Douban blocks us, doubled on each repeat; "
            "0 turns the breaker off."),
    INTEGER(block_backoff_max, 1, 604800, "21600", "seconds", 1,
            "Longest pause the block backoff doubles up to."),
    INTEGER(request_deadline, 1, 3600, "30", "seconds", 1,
            "Longest an API request waits before it gets its answer or an error."),
    INTEGER(events_heartbeat, 1, 3600, "15", "seconds", 1,
            "Time between the comments a GET /movies/events stream sends while no event "
            "comes, so that clients and proxies in between keep it open."),
    INTEGER(drain_timeout, 0, 3600, "10", "seconds", 1,
            "Time requests in flight get to finish on shutdown."),
    INTEGER_OR_AUTO(parse_threads, 0, 64, "auto", NULL, 0,
            "Worker threads that parse Douban's pages off the event loop, at a lower priority "
            "than it; auto starts one per online CPU, at most 4; 0 parses on the loop."),
    INTEGER(max_connections, 1, 100000, "8192", NULL, 0,
            "Most simultaneous API client connections; past it new ones wait in the listen "
            "queue. Each needs an open file: the daemon raises its limit to match."),
    INTEGER(max_connections_per_ip, 0, 100000, "0", NULL, 0,
            "Most simultaneous API connections from one client address; 0 turns the limit "
            "off, as it must be behind a reverse proxy (every client has the proxy's address). "
            "Set it when clients connect directly."),
    INTEGER(connection_timeout, 0, 3600, "30", "seconds", 0,
            "Idle time after which an API client connection is closed; 0 keeps it open."),
    INTEGER(request_header_timeout, 0, 3600, "10", "seconds", 1,
            "Longest time from accepting a connection, or from the first byte of a later "
            "request on it, to a complete request; past it the client gets 408 and the "
            "connection is closed, however slowly it keeps sending. 0 turns it off."),
    INTEGER(connection_memory_limit, 4096, 16777216, "65536", "bytes", 0,
            "Memory each API connection may use for its request headers and buffers."),
    TEXT(redis_url, SETTING_REDIS_URL, "", 0,
         "Redis to be shared by replicas of moviesd for their cache, single-flight, request "
         "budget and breaker: redis://[[user]:password@]host[:port][/db] or "
         "unix:///path/to.sock; empty runs alone, with everything in memory. Shared: city "
         "answers and movie records (each replica keeps its own copy too), one scrape per "
         "city and one fetch per movie page across replicas, the request budget (spacing and "
         "per-minute cap hold for all replicas together) and the breaker (a block seen by one "
         "pauses all). While Redis is down each replica keeps "
         "to its share of the budget (expected_replicas). A password here shows in --check-config: prefer redis_password_file."),
    TEXT(redis_password_file, SETTING_PATH, "", 0,
         "File holding the Redis password on its one line, read at start (a file that cannot "
         "be read stops startup); empty for none or the one in redis_url."),
    INTEGER(redis_timeout_ms, 1, 60000, "250", "milliseconds", 0,
            "Longest a Redis command may take; past it Redis counts as down: replicas fall "
            "back to local state and reconnect with back-off."),
    INTEGER(expected_replicas, 1, 1000, "3", NULL, 0,
            "Replicas sharing one Redis: while Redis is down each replica keeps to "
            "1/expected_replicas of max_requests_per_minute and of the spacing's rate."),
    TEXT(poster_upstream, SETTING_URL, "", 0,
         "Base URL (scheme, host and optional port) that stands in for "
         "https://img<N>.doubanio.com when fetching posters: a mirror, or a test's fake; "
         "empty fetches from Douban's image hosts."),
    TEXT(poster_cache_dir, SETTING_PATH, "", 0,
         "Directory keeping fetched posters across restarts (made if missing); empty keeps "
         "them in memory only."),
    INTEGER(poster_cache_max_bytes, 0, 1LL << 40, "67108864", "bytes", 0,
            "Most bytes of posters kept (in memory, and in poster_cache_dir when set); the "
            "least recently used go first."),
    INTEGER(poster_min_request_interval_ms, 0, 60000, "1000", "milliseconds", 0,
            "Least time between the starts of two poster fetches from the image host (its own "
            "queue, apart from the pages'); 0 turns the spacing off."),
    INTEGER(poster_max_requests_per_minute, 0, 100000, "60", NULL, 0,
            "Most poster fetches started in any one minute; 0 turns the limit off."),
    TEXT(cors_origins, SETTING_ORIGIN_LIST, "*", 0,
         "Web pages of which origins may read the API's answers from a browser (CORS): * for "
         "any (the data is public), origins such as https://example.com separated by commas "
         "or spaces (the request's Origin is echoed when listed), or empty for no CORS headers."),
};
const size_t config_settings_count = sizeof config_settings / sizeof config_settings[0];

int config_parse_threads(const struct config *c)
{
    if (c->parse_threads != CONFIG_AUTO)
        return (int)c->parse_threads;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online < 1 ? 1 : online > PARSE_THREADS_AUTO_MAX ? PARSE_THREADS_AUTO_MAX : (int)online;
}

/* Escapes text from a file, a flag or the environment before it goes into a message. */
static const char *shown(const char *value, char out[VALUE_SHOWN_MAX])
{
    return log_escape(value, strlen(value), out, VALUE_SHOWN_MAX);
}

/* The char * field of a string-like setting. */
static char **string_field(struct config *c, const struct setting *s)
{
    return (char **)(void *)((char *)c + s->offset);
}

/* The long long field of an integer, log-level or choice setting. */
static long long *integer_field(struct config *c, const struct setting *s)
{
    return (long long *)(void *)((char *)c + s->offset);
}

/* The string value of a string-like setting, read only. */
static const char *string_value(const struct config *c, const struct setting *s)
{
    return *(char *const *)(const void *)((const char *)c + s->offset);
}

/* The value of an integer, log-level or choice setting, read only. */
static long long integer_value(const struct config *c, const struct setting *s)
{
    return *(const long long *)(const void *)((const char *)c + s->offset);
}

/* An integer setting's value as config_set reads it back: its number, or its auto word. */
static const char *integer_text(const struct config *c, const struct setting *s, char *out,
                                size_t outlen)
{
    long long v = integer_value(c, s);
    if (s->auto_word != NULL && v == CONFIG_AUTO)
        return s->auto_word;
    snprintf(out, outlen, "%lld", v);
    return out;
}

/* Whether a setting keeps its value as an owned string. */
static int is_string(const struct setting *s)
{
    return s->type == SETTING_STRING || s->type == SETTING_LISTEN || s->type == SETTING_URL ||
           s->type == SETTING_CITY_LIST || s->type == SETTING_REDIS_URL ||
           s->type == SETTING_PATH || s->type == SETTING_ORIGIN_LIST;
}

/* Fills every setting with its default; a default that does not parse is a bug in the table. */
void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < config_settings_count; i++) {
        char err[256];
        if (config_set(c, &config_settings[i], config_settings[i].default_value, "default",
                       err, sizeof err) != 0) {
            fprintf(stderr, "moviesd: bad default for %s: %s\n", config_settings[i].name, err);
            abort();
        }
    }
}

/* Frees the strings and leaves every string NULL. */
void config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < config_settings_count; i++) {
        if (is_string(&config_settings[i])) {
            char **field = string_field(c, &config_settings[i]);
            free(*field);
            *field = NULL;
        }
    }
}

/* Deep copy: integers by value, strings duplicated. */
void config_copy(struct config *dst, const struct config *src)
{
    memcpy(dst, src, sizeof *dst);
    for (size_t i = 0; i < config_settings_count; i++) {
        if (is_string(&config_settings[i])) {
            char **field = string_field(dst, &config_settings[i]);
            if (*field != NULL)
                *field = xstrdup(*field);
        }
    }
}

/* Finds a setting by its key; NULL if there is none. */
const struct setting *config_find(const char *name)
{
    for (size_t i = 0; i < config_settings_count; i++)
        if (strcmp(config_settings[i].name, name) == 0)
            return &config_settings[i];
    return NULL;
}

/* Finds a setting by its flag spelling: dashes for underscores, and only that spelling. */
const struct setting *config_find_flag(const char *flag)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        const char *n = config_settings[i].name, *f = flag;
        while (*n != '\0' && *f == (*n == '_' ? '-' : *n)) {
            n++;
            f++;
        }
        if (*n == '\0' && *f == '\0')
            return &config_settings[i];
    }
    return NULL;
}

/* Parses an integer setting, telling junk apart from a number out of bounds. */
static int set_integer(struct config *c, const struct setting *s, const char *value,
                       const char *source, char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    long long v;
    if (s->auto_word != NULL && strcmp(value, s->auto_word) == 0) {
        *integer_field(c, s) = CONFIG_AUTO;
        return 0;
    }
    if (parse_integer(value, s->min, s->max, &v) == 0) {
        *integer_field(c, s) = v;
        return 0;
    }
    /* parse_integer says only "no": all digits means the number itself was the problem. */
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && value[digits] == '\0')
        errorf(err, errlen, "%s: %s is out of range %lld..%lld", source, shown(value, buf),
                  s->min, s->max);
    else
        errorf(err, errlen, "%s: '%s' is not a whole number%s%s", source, shown(value, buf),
               s->auto_word != NULL ? " or " : "", s->auto_word != NULL ? s->auto_word : "");
    return -1;
}

/* Checks a user_agent-like string: non-empty and free of control characters, since it goes
 * into an HTTP header and a control byte would split or corrupt it. */
static int check_text(const char *value, const char *source, char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    if (value[0] == '\0') {
        errorf(err, errlen, "%s: must not be empty", source);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            errorf(err, errlen, "%s: '%s' contains a control character", source,
                      shown(value, buf));
            return -1;
        }
    }
    return 0;
}

/* Whether text[0..len) is an IPv6 address literal (without brackets). */
static int is_ipv6(const char *text, size_t len)
{
    char host[64];
    unsigned char addr[16];
    if (len == 0 || len >= sizeof host)
        return 0;
    memcpy(host, text, len);
    host[len] = '\0';
    return inet_pton(AF_INET6, host, addr) == 1;
}

/* Checks "HOST:PORT" where HOST is an IPv4 literal, [IPv6 literal] or localhost: the daemon
 * binds it, so names other than localhost (which would need a resolver) are refused. */
static int check_listen(const char *value, const char *source, char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    const char *port;
    long long v;
    int host_ok;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        host_ok = close != NULL && is_ipv6(value + 1, (size_t)(close - value - 1));
        port = close != NULL && close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strrchr(value, ':');
        port = colon != NULL ? colon + 1 : NULL;
        size_t hostlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
        char host[32];
        unsigned char addr[4];
        host_ok = 0;
        if (hostlen < sizeof host) {
            memcpy(host, value, hostlen);
            host[hostlen] = '\0';
            host_ok = strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, addr) == 1;
        }
    }
    if (!host_ok) {
        errorf(err, errlen,
                  "%s: '%s' is not HOST:PORT with HOST an IPv4 address, [IPv6 address] or "
                  "localhost",
                  source, shown(value, buf));
        return -1;
    }
    if (port == NULL || parse_integer(port, 0, 65535, &v) != 0) {
        errorf(err, errlen, "%s: '%s' needs a port 0..65535 after the host", source,
                  shown(value, buf));
        return -1;
    }
    return 0;
}

/* Checks an upstream base URL and returns its normalised copy (no trailing slash), or NULL.
 * Only scheme, host and port are allowed: the scraper appends its own paths. */
static char *normalise_url(const char *value, const char *source, char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    const char *host;
    if (strncmp(value, "http://", 7) == 0)
        host = value + 7;
    else if (strncmp(value, "https://", 8) == 0)
        host = value + 8;
    else {
        errorf(err, errlen, "%s: '%s' must start with http:// or https://", source,
                  shown(value, buf));
        return NULL;
    }

    const char *end; /* just past the host */
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL || !is_ipv6(host + 1, (size_t)(close - host - 1))) {
            errorf(err, errlen, "%s: '%s' has a bad IPv6 address", source, shown(value, buf));
            return NULL;
        }
        end = close + 1;
    } else {
        end = host + strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789.-_");
        if (end == host || host[0] == '.' || host[0] == '-') {
            errorf(err, errlen, "%s: '%s' has no valid host name", source, shown(value, buf));
            return NULL;
        }
    }

    const char *rest = end;
    if (*rest == ':') {
        size_t digits = strspn(rest + 1, "0123456789");
        char port[8];
        long long v;
        if (digits == 0 || digits >= sizeof port) {
            errorf(err, errlen, "%s: '%s' has a bad port", source, shown(value, buf));
            return NULL;
        }
        memcpy(port, rest + 1, digits);
        port[digits] = '\0';
        if (parse_integer(port, 1, 65535, &v) != 0) {
            errorf(err, errlen, "%s: '%s' has a port out of range 1..65535", source,
                      shown(value, buf));
            return NULL;
        }
        rest += 1 + digits;
    }
    if (!(rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0'))) {
        errorf(err, errlen,
                  "%s: '%s' may only hold a scheme, a host and a port (no user, path or query)",
                  source, shown(value, buf));
        return NULL;
    }
    return xstrndup(value, (size_t)(rest - value));
}

/* The word of a choice setting's index, or NULL if the index is none of its words. */
static const char *choice_word(const struct setting *s, long long index)
{
    for (long long i = 0; s->choices[i] != NULL; i++)
        if (i == index)
            return s->choices[i];
    return NULL;
}

/* Writes the words of a choice setting, ", "-separated. */
static void choice_words(const struct setting *s, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; s->choices[i] != NULL && used + 1 < outlen; i++) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", s->choices[i]);
        used = n < 0 ? used : used + (size_t)n;
    }
}

/* Sets a choice setting to the index of its word; the message lists the words. */
static int set_choice(struct config *c, const struct setting *s, const char *value,
                      const char *source, char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX], words[160];
    for (long long i = 0; s->choices[i] != NULL; i++) {
        if (strcmp(value, s->choices[i]) == 0) {
            *integer_field(c, s) = i;
            return 0;
        }
    }
    choice_words(s, words, sizeof words);
    errorf(err, errlen, "%s: '%s' is not one of %s", source, shown(value, buf), words);
    return -1;
}

/* Checks a list of cities by parsing it as its users will. */
static int check_city_list(const char *value, const char *source, char *err, size_t errlen)
{
    const struct city **list;
    size_t n;
    char why[200];
    if (city_list_parse(value, &list, &n, why, sizeof why) != 0) {
        errorf(err, errlen, "%s: %s", source, why);
        return -1;
    }
    free(list);
    return 0;
}

/* Checks a Redis URL by parsing it as the client will; empty means no Redis. */
static int check_redis_url(const char *value, const char *source, char *err, size_t errlen)
{
    struct redis_address a;
    char why[300];
    if (value[0] == '\0')
        return 0;
    if (redis_url_parse(value, &a, why, sizeof why) != 0) {
        errorf(err, errlen, "%s: %s", source, why);
        return -1;
    }
    redis_address_free(&a);
    return 0;
}

/* Sets one setting from text; c is unchanged on error. */
int config_set(struct config *c, const struct setting *s, const char *value, const char *source,
               char *err, size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    char *copy = NULL;

    if (value == NULL)
        value = "";
    switch (s->type) {
    case SETTING_INTEGER:
        return set_integer(c, s, value, source, err, errlen);
    case SETTING_CHOICE:
        return set_choice(c, s, value, source, err, errlen);
    case SETTING_LOG_LEVEL: {
        int level = log_level_parse(value);
        if (level < 0) {
            errorf(err, errlen, "%s: '%s' is not a log level (error, warn, info, debug)",
                      source, shown(value, buf));
            return -1;
        }
        *integer_field(c, s) = level;
        return 0;
    }
    case SETTING_STRING:
        if (check_text(value, source, err, errlen) != 0)
            return -1;
        copy = xstrdup(value);
        break;
    case SETTING_LISTEN:
        if (check_listen(value, source, err, errlen) != 0)
            return -1;
        copy = xstrdup(value);
        break;
    case SETTING_URL:
        /* Empty means "none" for a URL whose default is none; upstream's is not. */
        copy = value[0] == '\0' && s->default_value[0] == '\0'
                   ? xstrdup("")
                   : normalise_url(value, source, err, errlen);
        if (copy == NULL)
            return -1;
        break;
    case SETTING_CITY_LIST:
        if (check_city_list(value, source, err, errlen) != 0)
            return -1;
        copy = xstrdup(value);
        break;
    case SETTING_REDIS_URL:
        if (check_redis_url(value, source, err, errlen) != 0)
            return -1;
        copy = xstrdup(value);
        break;
    case SETTING_ORIGIN_LIST: {
        char why[200], shown_buf[VALUE_SHOWN_MAX];
        /* Origins are ASCII: anything else is refused before cors_check quotes a part. */
        for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
            if ((*p < 0x20 && *p != '\t') || *p >= 0x7F) {
                errorf(err, errlen, "%s: '%s' is not a list of origins (printable ASCII only)",
                       source, shown(value, shown_buf));
                return -1;
            }
        }
        if (cors_check(value, why, sizeof why) != 0) {
            errorf(err, errlen, "%s: %s", source, why);
            return -1;
        }
        copy = xstrdup(value);
        break;
    }
    case SETTING_PATH:
        /* The file is read where it is used, once at start: not on every parse. */
        if (value[0] != '\0' && check_text(value, source, err, errlen) != 0)
            return -1;
        copy = xstrdup(value);
        break;
    }
    char **field = string_field(c, s);
    free(*field);
    *field = copy;
    return 0;
}

/* Returns s with blanks removed from both ends, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Applies one line of a config file to c; 0 for a setting, comment or blank line. */
static int load_line(struct config *c, char *line, size_t len, const char *where, char *err,
                     size_t errlen)
{
    char buf[VALUE_SHOWN_MAX];
    if (strlen(line) != len) {
        errorf(err, errlen, "%s: line contains a NUL byte", where);
        return -1;
    }
    char *key = trim(line);
    if (key[0] == '\0' || key[0] == '#')
        return 0;
    char *eq = strchr(key, '=');
    if (eq == NULL) {
        errorf(err, errlen, "%s: expected 'key = value'", where);
        return -1;
    }
    *eq = '\0';
    char *value = trim(eq + 1);
    key = trim(key);
    if (key[0] == '\0') {
        errorf(err, errlen, "%s: expected 'key = value'", where);
        return -1;
    }
    const struct setting *s = config_find(key);
    if (s == NULL) {
        errorf(err, errlen, "%s: unknown key '%s'", where, shown(key, buf));
        return -1;
    }
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    char *source = xasprintf("%s: %s", where, s->name);
    int r = config_set(c, s, value, source, err, errlen);
    free(source);
    return r;
}

/* Reads a "key = value" file into c, all or nothing; the format is described at the top. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        errorf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct config next;
    config_copy(&next, c);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int r = 0;
    while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *text = line;
        size_t len = (size_t)n;
        /* Some editors start a UTF-8 file with a byte order mark. */
        if (lineno == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
            text += 3;
            len -= 3;
        }
        char *where = xasprintf("%s:%lu", path, lineno);
        r = load_line(&next, text, len, where, err, errlen);
        free(where);
    }
    if (r == 0 && ferror(f)) {
        errorf(err, errlen, "%s: %s", path, strerror(errno));
        r = -1;
    }
    free(line);
    fclose(f);
    if (r == 0) {
        config_free(c);
        *c = next;
    } else {
        config_free(&next);
    }
    return r;
}

/* Applies every MOVIESD_<KEY> variable of envp to c, all or nothing. */
int config_load_env(struct config *c, char *const envp[], char *err, size_t errlen)
{
    const size_t plen = sizeof ENV_PREFIX - 1;
    char buf[VALUE_SHOWN_MAX];
    struct config next;
    int r = 0;

    if (envp == NULL)
        return 0;
    config_copy(&next, c);
    for (size_t i = 0; r == 0 && envp[i] != NULL; i++) {
        const char *var = envp[i];
        const char *eq = strchr(var, '=');
        if (strncmp(var, ENV_PREFIX, plen) != 0 || eq == NULL)
            continue;
        char *name = xstrndup(var, (size_t)(eq - var));
        if (strcmp(name, ENV_PREFIX "CONFIG") == 0) {
            free(name);
            continue;
        }
        /* Only the upper-case spelling counts: MOVIESD_listing_ttl is a mistake to report. */
        char *key = xstrdup(name + plen);
        int spelled_ok = key[0] != '\0';
        for (char *k = key; *k != '\0'; k++) {
            if (*k >= 'A' && *k <= 'Z')
                *k = (char)(*k - 'A' + 'a');
            else if (!((*k >= '0' && *k <= '9') || *k == '_'))
                spelled_ok = 0;
        }
        const struct setting *s = spelled_ok ? config_find(key) : NULL;
        if (s == NULL) {
            errorf(err, errlen, "environment %s: unknown setting", shown(name, buf));
            r = -1;
        } else {
            r = config_set(&next, s, eq + 1, name, err, errlen);
        }
        free(key);
        free(name);
    }
    if (r == 0) {
        config_free(c);
        *c = next;
    } else {
        config_free(&next);
    }
    return r;
}

/* Checks that loaded's value of s is one config_set accepts: the rules of loading, applied
 * again through the same code. */
static int check_loaded(const struct config *loaded, const struct setting *s, char *err,
                        size_t errlen)
{
    char text[32];
    const char *value;
    if (s->type == SETTING_INTEGER) {
        value = integer_text(loaded, s, text, sizeof text);
    } else if (s->type == SETTING_LOG_LEVEL) {
        value = log_level_name((enum log_level)integer_value(loaded, s));
    } else if (s->type == SETTING_CHOICE) {
        value = choice_word(s, integer_value(loaded, s));
        if (value == NULL)
            value = "";   /* refused by config_set below, with the words to choose from */
    } else if ((value = string_value(loaded, s)) == NULL) {
        errorf(err, errlen, "%s: has no value", s->name);
        return -1;
    }
    struct config scratch;
    memset(&scratch, 0, sizeof scratch);
    int r = config_set(&scratch, s, value, s->name, err, errlen);
    config_free(&scratch);
    return r;
}

/* Whether a setting has the same value in a and b. */
static int same_value(const struct config *a, const struct config *b, const struct setting *s)
{
    if (!is_string(s))
        return integer_value(a, s) == integer_value(b, s);
    const char *x = string_value(a, s), *y = string_value(b, s);
    return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* Takes loaded's live settings into running, all or nothing; names the others that differ. */
int config_apply_live(struct config *running, const struct config *loaded, char *kept,
                      size_t keptlen, char *err, size_t errlen)
{
    for (size_t i = 0; i < config_settings_count; i++)
        if (check_loaded(loaded, &config_settings[i], err, errlen) != 0)
            return -1;
    size_t used = 0;
    if (kept != NULL && keptlen > 0)
        kept[0] = '\0';
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        if (same_value(running, loaded, s))
            continue;
        if (!s->live) {
            if (kept != NULL && used + 1 < keptlen) {
                int n = snprintf(kept + used, keptlen - used, "%s%s", used ? ", " : "", s->name);
                used = n < 0 ? used : used + (size_t)n;
            }
        } else if (is_string(s)) {
            char **field = string_field(running, s);
            free(*field);
            *field = xstrdup(string_value(loaded, s));
        } else {
            *integer_field(running, s) = integer_value(loaded, s);
        }
    }
    return 0;
}

/* Writes a setting's value as config_load_file reads it back. */
static void print_value(const struct config *c, const struct setting *s, FILE *out)
{
    if (s->type == SETTING_INTEGER) {
        char text[32];
        fputs(integer_text(c, s, text, sizeof text), out);
    } else if (s->type == SETTING_LOG_LEVEL) {
        long long level = integer_value(c, s);
        fputs(log_level_name((enum log_level)level), out);
    } else if (s->type == SETTING_CHOICE) {
        const char *word = choice_word(s, integer_value(c, s));
        fputs(word != NULL ? word : "", out);
    } else {
        const char *v = string_value(c, s) != NULL ? string_value(c, s) : "";
        size_t n = strlen(v);
        /* Quotes only where trimming or quote stripping would change the value. */
        int quote = n == 0 || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' ||
                    v[n - 1] == '\t' || (n >= 2 && v[0] == '"' && v[n - 1] == '"');
        if (quote)
            fprintf(out, "\"%s\"", v);
        else
            fputs(v, out);
    }
}

/* Writes "key = value" for every setting: the effective configuration, loadable as a file. */
void config_print(const struct config *c, FILE *out)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        fprintf(out, "%s = ", config_settings[i].name);
        print_value(c, &config_settings[i], out);
        fputc('\n', out);
    }
}

/* The placeholder shown after a flag in --help (a choice's help names its words). */
static void metavar(const struct setting *s, char *out, size_t outlen)
{
    const char *m = "VALUE";
    switch (s->type) {
    case SETTING_CHOICE:
        m = "CHOICE";
        break;
    case SETTING_CITY_LIST:
        m = "CITIES";
        break;
    case SETTING_INTEGER:
        m = s->unit != NULL ? s->unit : "N";
        break;
    case SETTING_LOG_LEVEL:
        m = "LEVEL";
        break;
    case SETTING_LISTEN:
        m = "HOST:PORT";
        break;
    case SETTING_URL:
        m = "URL";
        break;
    case SETTING_STRING:
        m = "TEXT";
        break;
    case SETTING_REDIS_URL:
        m = "URL";
        break;
    case SETTING_PATH:
        m = "FILE";
        break;
    case SETTING_ORIGIN_LIST:
        m = "ORIGINS";
        break;
    }
    size_t i = 0;
    for (; m[i] != '\0' && i + 1 < outlen; i++)
        out[i] = (m[i] >= 'a' && m[i] <= 'z') ? (char)(m[i] - 'a' + 'A') : m[i];
    out[i] = '\0';
}

/* Writes the flag spelling of a setting's name (without the leading dashes). */
static void flag_name(const struct setting *s, char *out, size_t outlen)
{
    size_t i = 0;
    for (; s->name[i] != '\0' && i + 1 < outlen; i++)
        out[i] = s->name[i] == '_' ? '-' : s->name[i];
    out[i] = '\0';
}

/* Writes the environment spelling of a setting's name. */
static void env_name(const struct setting *s, char *out, size_t outlen)
{
    size_t o = (size_t)snprintf(out, outlen, "%s", ENV_PREFIX);
    for (const char *p = s->name; *p != '\0' && o + 1 < outlen; p++)
        out[o++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
    out[o] = '\0';
}

/* Writes one line per setting: "  --flag METAVAR   help (default X)", help aligned. */
void config_print_help(FILE *out)
{
    char flag[64], meta[32];
    int width = 0;
    for (size_t i = 0; i < config_settings_count; i++) {
        flag_name(&config_settings[i], flag, sizeof flag);
        metavar(&config_settings[i], meta, sizeof meta);
        int w = (int)(strlen(flag) + strlen(meta)) + 4; /* "  --" before, one blank between */
        if (w > width)
            width = w;
    }
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        flag_name(s, flag, sizeof flag);
        metavar(s, meta, sizeof meta);
        int w = (int)(strlen(flag) + strlen(meta)) + 4;
        /* Quoted where the text is free: a default with blanks, or none at all, shows. */
        const char *q = s->type == SETTING_STRING || s->type == SETTING_CITY_LIST ||
                                s->type == SETTING_REDIS_URL || s->type == SETTING_PATH ||
                                s->type == SETTING_ORIGIN_LIST || s->default_value[0] == '\0'
                            ? "\""
                            : "";
        fprintf(out, "  --%s %s%*s   %s (default %s%s%s)\n", flag, meta, width - w, "", s->help, q,
                s->default_value, q);
    }
}

/* Writes text as a Markdown table cell: '|' would end the cell early. */
static void md_cell(const char *text, FILE *out)
{
    for (; *text != '\0'; text++) {
        if (*text == '|')
            fputc('\\', out);
        fputc(*text, out);
    }
}

/* Writes the settings as the README's Markdown table. */
void config_print_markdown(FILE *out)
{
    char flag[64], env[64];
    fputs("| Key | Flag | Environment | Default | Range | Live reload | Description |\n", out);
    fputs("|---|---|---|---|---|---|---|\n", out);
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        flag_name(s, flag, sizeof flag);
        env_name(s, env, sizeof env);
        fprintf(out, "| `%s` | `--%s` | `%s` | ", s->name, flag, env);
        /* An empty code span is not one in Markdown: "none" stands for the empty default. */
        if (s->default_value[0] == '\0') {
            fputs("none", out);
        } else {
            fputc('`', out);
            md_cell(s->default_value, out);
            fputc('`', out);
        }
        fputs(" | ", out);
        switch (s->type) {
        case SETTING_INTEGER:
            fprintf(out, "%s%s%lld..%lld%s%s", s->auto_word != NULL ? s->auto_word : "",
                    s->auto_word != NULL ? ", " : "", s->min, s->max, s->unit != NULL ? " " : "",
                    s->unit != NULL ? s->unit : "");
            break;
        case SETTING_LOG_LEVEL:
            fputs("error, warn, info, debug", out);
            break;
        case SETTING_LISTEN:
            fputs("HOST:PORT; HOST an IPv4 address, [IPv6 address] or localhost", out);
            break;
        case SETTING_URL:
            fputs(s->default_value[0] == '\0' ? "empty, or an http:// or https:// URL, no path"
                                               : "http:// or https:// URL, no path", out);
            break;
        case SETTING_STRING:
            fputs("non-empty text", out);
            break;
        case SETTING_CHOICE: {
            char words[160];
            choice_words(s, words, sizeof words);
            fputs(words, out);
            break;
        }
        case SETTING_CITY_LIST:
            fputs("empty, `all`, or slugs of `GET /cities` separated by commas or spaces", out);
            break;
        case SETTING_REDIS_URL:
            fputs("empty, `redis://` or `unix://` URL", out);
            break;
        case SETTING_PATH:
            fputs("empty or a file name", out);
            break;
        case SETTING_ORIGIN_LIST:
            fputs("`*`, empty, or origins separated by commas or spaces", out);
            break;
        }
        fprintf(out, " | %s | ", s->live ? "yes" : "no (restart)");
        md_cell(s->help, out);
        fputs(" |\n", out);
    }
}
