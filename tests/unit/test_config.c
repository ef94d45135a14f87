/* Unit tests of lib/config.c: the table's defaults and bounds, value validation, the file
 * and environment loaders, precedence, the printers, and the shipped config/moviesd.conf. */
#include "check.h"
#include "config.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHIPPED_CONF FIXTURES_DIR "/../../config/moviesd.conf"

/* Temporary files made by a test, removed at the end of main. */
static struct strlist temp_files;

/* Writes text to a new file under /tmp and returns its path (borrowed; removed at exit). */
static const char *temp_file(const char *text)
{
    char *path = xstrdup("/tmp/moviesd-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        perror("write");
        exit(2);
    }
    close(fd);
    strlist_push_owned(&temp_files, path);
    return path;
}

/* The string value of a string-like setting. */
static const char *string_of(const struct config *c, const struct setting *s)
{
    return *(char *const *)(const void *)((const char *)c + s->offset);
}

/* The value of an integer, log-level or choice setting. */
static long long integer_of(const struct config *c, const struct setting *s)
{
    return *(const long long *)(const void *)((const char *)c + s->offset);
}

/* Whether a setting holds a string. */
static int holds_string(const struct setting *s)
{
    return s->type == SETTING_STRING || s->type == SETTING_LISTEN || s->type == SETTING_URL ||
           s->type == SETTING_CITY_LIST || s->type == SETTING_REDIS_URL ||
           s->type == SETTING_PATH || s->type == SETTING_ORIGIN_LIST;
}

/* Compares two configs setting by setting, naming the first difference; 1 if equal. */
static int same_config(const struct config *a, const struct config *b)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        if (holds_string(s) ? strcmp(string_of(a, s), string_of(b, s)) != 0
                            : integer_of(a, s) != integer_of(b, s)) {
            fprintf(stderr, "configs differ in %s\n", s->name);
            return 0;
        }
    }
    return 1;
}

/* Sets a setting by key as a flag would, returning config_set's result; err gets the reason. */
static int set_flag(struct config *c, const char *key, const char *value, char *err, size_t errlen)
{
    const struct setting *s = config_find(key);
    if (s == NULL) {
        snprintf(err, errlen, "no setting %s", key);
        return -1;
    }
    char flag[80] = "--";
    for (size_t i = 0; key[i] != '\0' && i + 3 < sizeof flag; i++)
        flag[i + 2] = key[i] == '_' ? '-' : key[i];
    return config_set(c, s, value, flag, err, errlen);
}

/* Every default as the brief gives it, and every default text parses to the field. */
static void test_defaults(void)
{
    struct config c;
    config_init(&c);
    CHECK_STR(c.listen, "127.0.0.1:8080");
    CHECK_STR(c.upstream, "https://movie.douban.com");
    CHECK_INT(c.cities, CITIES_KNOWN);
    CHECK_STR(c.prefetch_cities, "");
    CHECK_STR(c.user_agent, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                            "Gecko) Chrome/120.0.0.0 Safari/537.36");
    CHECK_INT(c.log_level, LOG_INFO);
    CHECK_INT(c.max_host_connections, 2);
    CHECK_INT(c.max_upstream_connections, 16);
    CHECK_INT(c.upstream_timeout, 15);
    CHECK_INT(c.max_body_size, 4194304);
    CHECK_INT(c.listing_ttl, 3600);
    CHECK_INT(c.detail_ttl, 86400);
    CHECK_INT(c.cache_max_entries, 1000);
    CHECK_INT(c.cache_max_bytes, 67108864);
    CHECK_INT(c.stale_max_age, 604800);
    CHECK_INT(c.stale_while_revalidate, 86400);
    CHECK_INT(c.min_request_interval_ms, 2000);
    CHECK_INT(c.max_requests_per_minute, 30);
    CHECK_INT(c.retries, 2);
    CHECK_INT(c.detail_retries, 3);
    CHECK_INT(c.detail_retry_delay, 30);
    CHECK_INT(c.block_backoff, 600);
    CHECK_INT(c.block_backoff_max, 21600);
    CHECK_INT(c.request_deadline, 30);
    CHECK_INT(c.drain_timeout, 10);
    CHECK_INT(c.max_connections, 8192);
    CHECK_INT(c.max_connections_per_ip, 0);
    CHECK_INT(c.connection_timeout, 30);
    CHECK_INT(c.parse_threads, CONFIG_AUTO);
    CHECK_INT(c.request_header_timeout, 10);
    CHECK_INT(c.connection_memory_limit, 65536);
    CHECK_STR(c.redis_url, "");
    CHECK_STR(c.redis_password_file, "");
    CHECK_INT(c.redis_timeout_ms, 250);
    CHECK_INT(c.expected_replicas, 3);
    CHECK_STR(c.public_url, "");
    CHECK_INT(config_settings_count, 43);
    CHECK_STR(c.cors_origins, "*");
    CHECK_INT(c.events_heartbeat, 15);

    /* The table itself: names unique, help present, live flags as designed. */
    int not_live = 0;
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        CHECK(config_find(s->name) == s);
        CHECK(s->help != NULL && strlen(s->help) > 10 && s->help[strlen(s->help) - 1] == '.');
        CHECK(s->default_value != NULL);
        if (s->type == SETTING_INTEGER) {
            long long v = CONFIG_AUTO;
            CHECK(s->min <= s->max);
            CHECK(s->min >= 0);   /* a negative number would be taken for CONFIG_AUTO */
            if (s->auto_word == NULL || strcmp(s->default_value, s->auto_word) != 0)
                CHECK_INT(parse_integer(s->default_value, s->min, s->max, &v), 0);
            CHECK_INT(integer_of(&c, s), v);
        }
        not_live += !s->live;
    }
    CHECK_INT(not_live, 18);
    CHECK(!config_find("listen")->live);
    /* The caches and the breaker belong to one upstream: changing it needs a restart. */
    CHECK(!config_find("upstream")->live);
    CHECK(!config_find("connection_memory_limit")->live);
    CHECK(config_find("cities")->live);
    CHECK(config_find("prefetch_cities")->live);

    /* A copy is deep: freeing one leaves the other whole. */
    struct config d;
    config_copy(&d, &c);
    CHECK(d.upstream != c.upstream);
    CHECK(same_config(&c, &d));
    config_free(&c);
    CHECK(c.upstream == NULL);
    config_free(&c); /* twice is harmless */
    CHECK_STR(d.upstream, "https://movie.douban.com");
    config_free(&d);
    struct config zero = { 0 };
    config_free(&zero);
}

/* Both ends of every integer range, one step past each, and the exact messages. */
static void test_integer_bounds(void)
{
    struct config c;
    char err[256], text[32];
    config_init(&c);
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        if (s->type != SETTING_INTEGER)
            continue;
        long long before = integer_of(&c, s);
        snprintf(text, sizeof text, "%lld", s->min - 1);
        CHECK_INT(config_set(&c, s, text, "test", err, sizeof err), -1);
        CHECK_INT(integer_of(&c, s), before);
        snprintf(text, sizeof text, "%lld", s->max + 1);
        CHECK_INT(config_set(&c, s, text, "test", err, sizeof err), -1);
        CHECK(strstr(err, "out of range") != NULL);
        CHECK_INT(integer_of(&c, s), before);
        snprintf(text, sizeof text, "%lld", s->min);
        CHECK_INT(config_set(&c, s, text, "test", err, sizeof err), 0);
        CHECK_INT(integer_of(&c, s), s->min);
        snprintf(text, sizeof text, "%lld", s->max);
        CHECK_INT(config_set(&c, s, text, "test", err, sizeof err), 0);
        CHECK_INT(integer_of(&c, s), s->max);
    }

    CHECK_INT(set_flag(&c, "listing_ttl", "600", err, sizeof err), 0);
    CHECK_INT(set_flag(&c, "listing_ttl", "-5", err, sizeof err), -1);
    CHECK_STR(err, "--listing-ttl: '-5' is not a whole number");
    CHECK_INT(set_flag(&c, "listing_ttl", "99999999999", err, sizeof err), -1);
    CHECK_STR(err, "--listing-ttl: 99999999999 is out of range 1..31536000");
    CHECK_INT(set_flag(&c, "listing_ttl", "0", err, sizeof err), -1);
    CHECK_STR(err, "--listing-ttl: 0 is out of range 1..31536000");
    CHECK_INT(set_flag(&c, "retries", "99999999999999999999999999", err, sizeof err), -1);
    CHECK_STR(err, "--retries: 99999999999999999999999999 is out of range 0..10");
    CHECK_INT(set_flag(&c, "retries", "a\nb", err, sizeof err), -1);
    CHECK_STR(err, "--retries: 'a\\x0ab' is not a whole number");
    /* An integer with an auto word takes the word, round-trips it, and names it when refused. */
    CHECK_INT(set_flag(&c, "parse_threads", "3", err, sizeof err), 0);
    CHECK_INT(c.parse_threads, 3);
    CHECK_INT(config_parse_threads(&c), 3);
    CHECK_INT(set_flag(&c, "parse_threads", "auto", err, sizeof err), 0);
    CHECK_INT(c.parse_threads, CONFIG_AUTO);
    CHECK(config_parse_threads(&c) >= 1 && config_parse_threads(&c) <= 4);
    CHECK_INT(set_flag(&c, "parse_threads", "-1", err, sizeof err), -1);
    CHECK_STR(err, "--parse-threads: '-1' is not a whole number or auto");
    CHECK_INT(set_flag(&c, "parse_threads", "65", err, sizeof err), -1);
    CHECK_STR(err, "--parse-threads: 65 is out of range 0..64");
    CHECK_INT(set_flag(&c, "retries", "auto", err, sizeof err), -1);
    CHECK_STR(err, "--retries: 'auto' is not a whole number");

    const char *junk[] = { "", " 5", "5 ", "+5", "-0", "5x", "0x10", "1e3", "5.0", "five",
                           "5\t", "\"5\"" };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        CHECK_INT(set_flag(&c, "listing_ttl", junk[i], err, sizeof err), -1);
        CHECK(strstr(err, "is not a whole number") != NULL);
    }
    CHECK_INT(c.listing_ttl, 600);
    CHECK_INT(config_set(&c, config_find("retries"), NULL, "x", err, sizeof err), -1);
    /* A missing or tiny error buffer is not a crash. */
    CHECK_INT(config_set(&c, config_find("retries"), "x", "x", NULL, 0), -1);
    char tiny[4];
    CHECK_INT(config_set(&c, config_find("retries"), "x", "source", tiny, sizeof tiny), -1);
    CHECK_STR(tiny, "sou");
    config_free(&c);
}

/* Log levels, user agents and their messages. */
static void test_text_settings(void)
{
    struct config c;
    char err[256];
    config_init(&c);
    const char *levels[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++) {
        CHECK_INT(set_flag(&c, "log_level", levels[i], err, sizeof err), 0);
        CHECK_INT(c.log_level, i);
    }
    CHECK_INT(set_flag(&c, "log_level", "INFO", err, sizeof err), -1);
    CHECK_STR(err, "--log-level: 'INFO' is not a log level (error, warn, info, debug)");
    CHECK_INT(set_flag(&c, "log_level", "", err, sizeof err), -1);
    CHECK_INT(c.log_level, LOG_DEBUG);

    CHECK_INT(set_flag(&c, "user_agent", "moviesd/1.0 (+https://example.org/#bot)", err,
                       sizeof err), 0);
    CHECK_STR(c.user_agent, "moviesd/1.0 (+https://example.org/#bot)");
    CHECK_INT(set_flag(&c, "user_agent", "电影 bot", err, sizeof err), 0);
    CHECK_STR(c.user_agent, "电影 bot");
    CHECK_INT(set_flag(&c, "user_agent", "", err, sizeof err), -1);
    CHECK_STR(err, "--user-agent: must not be empty");
    CHECK_INT(set_flag(&c, "user_agent", "a\r\nX-Evil: 1", err, sizeof err), -1);
    CHECK_STR(err, "--user-agent: 'a\\x0d\\x0aX-Evil: 1' contains a control character");
    CHECK_INT(set_flag(&c, "user_agent", "tab\there", err, sizeof err), -1);
    CHECK_INT(set_flag(&c, "user_agent", "del\x7f", err, sizeof err), -1);
    CHECK_STR(c.user_agent, "电影 bot");
    /* cors_origins quotes a bad origin: a control byte or a broken UTF-8 sequence in it is
     * refused, escaped, before any part is quoted. */
    CHECK_INT(set_flag(&c, "cors_origins", "https://a.example\n\xfc", err, sizeof err), -1);
    CHECK_STR(err, "--cors-origins: 'https://a.example\\x0a\\xfc' is not a list of origins "
                   "(printable ASCII only)");
    CHECK_INT(set_flag(&c, "cors_origins", "https://a.example\thttps://b.example", err, sizeof err), 0);
    config_free(&c);
}

/* Upstream URLs: scheme, host, optional port, nothing else; a trailing slash is dropped. */
static void test_url(void)
{
    struct config c;
    char err[256];
    config_init(&c);
    const char *good[][2] = {
        { "https://movie.douban.com", "https://movie.douban.com" },
        { "https://movie.douban.com/", "https://movie.douban.com" },
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
        { "http://127.0.0.1:8080/", "http://127.0.0.1:8080" },
        { "http://localhost", "http://localhost" },
        { "http://[::1]:9000/", "http://[::1]:9000" },
        { "https://[2001:db8::5]", "https://[2001:db8::5]" },
        { "http://fake_upstream.test:65535", "http://fake_upstream.test:65535" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (set_flag(&c, "upstream", good[i][0], err, sizeof err) != 0)
            fprintf(stderr, "rejected %s: %s\n", good[i][0], err);
        CHECK_STR(c.upstream, good[i][1]);
    }
    const char *bad[] = { "", "movie.douban.com", "ftp://movie.douban.com", "HTTPS://x",
                          "https://", "https:///", "http://:80", "https://x/movie",
                          "https://x//", "https://x?q=1", "https://x#f", "https://user@x",
                          "https://x:0", "https://x:65536", "https://x:", "https://x:80a",
                          "https://x:123456789", "http://[::1", "http://[zz::1]/",
                          "http://.x", "http://-x", "https://x y", " https://x",
                          "https://x\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (set_flag(&c, "upstream", bad[i], err, sizeof err) == 0)
            fprintf(stderr, "accepted upstream '%s'\n", bad[i]);
        CHECK(strncmp(err, "--upstream: '", 13) == 0);
    }
    CHECK_STR(c.upstream, "http://fake_upstream.test:65535");
    CHECK_INT(set_flag(&c, "upstream", "ftp://x", err, sizeof err), -1);
    CHECK_STR(err, "--upstream: 'ftp://x' must start with http:// or https://");
    CHECK_INT(set_flag(&c, "upstream", "https://x/path", err, sizeof err), -1);
    CHECK_STR(err, "--upstream: 'https://x/path' may only hold a scheme, a host and a port "
                   "(no user, path or query)");
    /* public_url may be empty (its default: none); upstream may not. */
    CHECK_INT(set_flag(&c, "upstream", "", err, sizeof err), -1);
    CHECK_INT(set_flag(&c, "public_url", "https://movies.example.org:8443/", err, sizeof err), 0);
    CHECK_STR(c.public_url, "https://movies.example.org:8443");
    CHECK_INT(set_flag(&c, "public_url", "", err, sizeof err), 0);
    CHECK_STR(c.public_url, "");
    CHECK_INT(set_flag(&c, "public_url", "https://x/path", err, sizeof err), -1);
    config_free(&c);
}

/* Listen addresses: IPv4, [IPv6] or localhost, and a port 0..65535. */
static void test_listen(void)
{
    struct config c;
    char err[256];
    config_init(&c);
    const char *good[] = { "127.0.0.1:8080", "0.0.0.0:0", "localhost:65535", "[::1]:80",
                           "[::]:8080", "[fe80::1:2]:1", "10.1.2.3:080" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (set_flag(&c, "listen", good[i], err, sizeof err) != 0)
            fprintf(stderr, "rejected %s: %s\n", good[i], err);
        CHECK_STR(c.listen, good[i]);
    }
    const char *bad[] = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:+80", "example.com:80", "::1:80", "[::1]", "[::1]80",
                          "[::1]:", ":8080", "256.0.0.1:80", "127.0.0.1:8080 ",
                          " 127.0.0.1:8080", "127.1:80", "LOCALHOST:80", "[127.0.0.1]:80",
                          "*:80", "127.0.0.1:80:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (set_flag(&c, "listen", bad[i], err, sizeof err) == 0)
            fprintf(stderr, "accepted listen '%s'\n", bad[i]);
        CHECK(strncmp(err, "--listen: '", 11) == 0);
    }
    CHECK_STR(c.listen, "10.1.2.3:080");
    CHECK_INT(set_flag(&c, "listen", "example.com:80", err, sizeof err), -1);
    CHECK_STR(err, "--listen: 'example.com:80' is not HOST:PORT with HOST an IPv4 address, "
                   "[IPv6 address] or localhost");
    CHECK_INT(set_flag(&c, "listen", "127.0.0.1:70000", err, sizeof err), -1);
    CHECK_STR(err, "--listen: '127.0.0.1:70000' needs a port 0..65535 after the host");
    config_free(&c);
}

/* Keys by name and by flag spelling; only the exact spellings count. */
static void test_find(void)
{
    CHECK(config_find_flag("listing-ttl") == config_find("listing_ttl"));
    CHECK(config_find_flag("listen") == config_find("listen"));
    CHECK(config_find_flag("connection-memory-limit") == config_find("connection_memory_limit"));
    CHECK(config_find_flag("listing_ttl") == NULL);
    CHECK(config_find_flag("listing-ttl-") == NULL);
    CHECK(config_find_flag("listing") == NULL);
    CHECK(config_find_flag("Listing-ttl") == NULL);
    CHECK(config_find_flag("") == NULL);
    CHECK(config_find("listing-ttl") == NULL);
    CHECK(config_find("nope") == NULL);
    CHECK(config_find("") == NULL);
}

/* Loads text as a config file into a fresh default config; returns the load's result. */
static int load_text(struct config *c, const char *text, const char **path, char *err,
                     size_t errlen)
{
    *path = temp_file(text);
    config_init(c);
    return config_load_file(c, *path, err, errlen);
}

/* The file format: comments, blanks, quotes, CRLF, BOM, '#' in values, later keys win. */
static void test_file_format(void)
{
    struct config c;
    char err[512];
    const char *path;
    int r = load_text(&c,
                      "\xEF\xBB\xBF# moviesd test\n"
                      "\n"
                      "   # indented comment = still a comment\n"
                      "listing_ttl = 100\n"
                      "detail_ttl=200\r\n"
                      "\tretries\t=\t3\t\n"
                      "user_agent = bot #1 (see https://x.example/#about)\n"
                      "log_level = \"debug\"\n"
                      "listen = \"[::1]:0\"\n"
                      "upstream = http://127.0.0.1:9999/\n"
                      "listing_ttl = 150\n"
                      "   \t  \n"
                      "max_body_size = 1024", /* no final newline */
                      &path, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "load failed: %s\n", err);
    CHECK_INT(r, 0);
    CHECK_INT(c.listing_ttl, 150);
    CHECK_INT(c.detail_ttl, 200);
    CHECK_INT(c.retries, 3);
    CHECK_STR(c.user_agent, "bot #1 (see https://x.example/#about)");
    CHECK_INT(c.log_level, LOG_DEBUG);
    CHECK_STR(c.listen, "[::1]:0");
    CHECK_STR(c.upstream, "http://127.0.0.1:9999");
    CHECK_INT(c.max_body_size, 1024);
    CHECK_INT(c.drain_timeout, 10);
    config_free(&c);

    /* Quotes keep blanks; only one outer pair goes; a lone quote stays. */
    CHECK_INT(load_text(&c, "user_agent = \"  spaced  \"\n", &path, err, sizeof err), 0);
    CHECK_STR(c.user_agent, "  spaced  ");
    config_free(&c);
    CHECK_INT(load_text(&c, "user_agent = \"\"quoted\"\"\n", &path, err, sizeof err), 0);
    CHECK_STR(c.user_agent, "\"quoted\"");
    config_free(&c);
    CHECK_INT(load_text(&c, "user_agent = \"\n", &path, err, sizeof err), 0);
    CHECK_STR(c.user_agent, "\"");
    config_free(&c);
    CHECK_INT(load_text(&c, "user_agent = \"\"\n", &path, err, sizeof err), -1);
    config_free(&c);

    /* An empty file, and one of only comments, change nothing. */
    CHECK_INT(load_text(&c, "", &path, err, sizeof err), 0);
    struct config d;
    config_init(&d);
    CHECK(same_config(&c, &d));
    config_free(&c);
    CHECK_INT(load_text(&c, "#a\n\n# b = 1\n", &path, err, sizeof err), 0);
    CHECK(same_config(&c, &d));
    config_free(&c);
    config_free(&d);

    /* A line far longer than any buffer a fixed reader would use. */
    size_t n = 200000;
    char *big = xmalloc(n + 32);
    memcpy(big, "user_agent = ", 13);
    memset(big + 13, 'a', n);
    memcpy(big + 13 + n, "\n", 2);
    r = load_text(&c, big, &path, err, sizeof err);
    CHECK_INT(r, 0);
    CHECK_INT(strlen(c.user_agent), n);
    config_free(&c);
    free(big);
}

/* Every file error names the file and line and leaves the config as it was. */
static void test_file_errors(void)
{
    struct config c, d;
    char err[512], want[512];
    const char *path;
    config_init(&d);

    CHECK_INT(load_text(&c, "listing_ttl = 100\n# fine\nfoo = 1\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3: unknown key 'foo'", path);
    CHECK_STR(err, want);
    CHECK(same_config(&c, &d)); /* listing_ttl = 100 of line 1 was not kept */
    config_free(&c);

    CHECK_INT(load_text(&c, "\nlisting_ttl 100\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: expected 'key = value'", path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "= 5\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: expected 'key = value'", path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "a\n\n\nlisting_ttl = -5\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: expected 'key = value'", path);
    CHECK_STR(err, want); /* the first error wins */
    config_free(&c);

    CHECK_INT(load_text(&c, "\n\n\nlisting_ttl = -5\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:4: listing_ttl: '-5' is not a whole number", path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "listing_ttl = 600 # ten minutes\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: listing_ttl: '600 # ten minutes' is not a whole number",
             path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "detail_ttl = 31536001\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: detail_ttl: 31536001 is out of range 1..31536000", path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "Listing_TTL = 5\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: unknown key 'Listing_TTL'", path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "listing-ttl = 5\n", &path, err, sizeof err), -1);
    CHECK(strstr(err, ":1: unknown key 'listing-ttl'") != NULL);
    config_free(&c);

    CHECK_INT(load_text(&c, "upstream = ftp://x\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: upstream: 'ftp://x' must start with http:// or https://",
             path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "log_level =\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: log_level: '' is not a log level (error, warn, info, debug)",
             path);
    CHECK_STR(err, want);
    config_free(&c);

    CHECK_INT(load_text(&c, "\x1b[2J = 1\n", &path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: unknown key '\\x1b[2J'", path);
    CHECK_STR(err, want);
    config_free(&c);

    /* A NUL would hide the rest of the line from a C-string parser. */
    const char nul_text[] = "retries = 1\0junk\n";
    path = temp_file("");
    FILE *f = fopen(path, "w");
    fwrite(nul_text, 1, sizeof nul_text - 1, f);
    fclose(f);
    config_init(&c);
    CHECK_INT(config_load_file(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: line contains a NUL byte", path);
    CHECK_STR(err, want);
    config_free(&c);

    /* Missing files and directories. */
    config_init(&c);
    CHECK_INT(config_load_file(&c, "/nonexistent/moviesd.conf", err, sizeof err), -1);
    CHECK_STR(err, "/nonexistent/moviesd.conf: No such file or directory");
    CHECK_INT(config_load_file(&c, "/tmp", err, sizeof err), -1);
    CHECK(strncmp(err, "/tmp: ", 6) == 0);
    CHECK(same_config(&c, &d));
    config_free(&c);
    config_free(&d);
}

/* cities: one of its words; prefetch_cities: what city_list_parse accepts, kept as given. */
static void test_city_settings(void)
{
    struct config c;
    char err[256], want[512];
    const char *path;
    config_init(&c);
    CHECK_INT(set_flag(&c, "cities", "any", err, sizeof err), 0);
    CHECK_INT(c.cities, CITIES_ANY);
    CHECK_INT(set_flag(&c, "cities", "known", err, sizeof err), 0);
    CHECK_INT(c.cities, CITIES_KNOWN);
    const char *bad_choices[] = { "", "Known", "any ", "all", "known,any" };
    for (size_t i = 0; i < sizeof bad_choices / sizeof bad_choices[0]; i++) {
        CHECK_INT(set_flag(&c, "cities", "any", err, sizeof err), 0);
        CHECK_INT(set_flag(&c, "cities", bad_choices[i], err, sizeof err), -1);
        CHECK(strstr(err, "' is not one of known, any") != NULL);
        CHECK_INT(c.cities, CITIES_ANY);
    }
    CHECK_INT(set_flag(&c, "cities", "nowhere", err, sizeof err), -1);
    CHECK_STR(err, "--cities: 'nowhere' is not one of known, any");

    const char *good[] = { "", "   ", "all", "beijing", "beijing,shanghai", "beijing shanghai",
                           "beijing, shanghai ,xian", "beijing,beijing", "118378" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (set_flag(&c, "prefetch_cities", good[i], err, sizeof err) != 0)
            fprintf(stderr, "rejected prefetch_cities '%s': %s\n", good[i], err);
        CHECK_STR(c.prefetch_cities, good[i]);
    }
    CHECK_INT(set_flag(&c, "prefetch_cities", "beijing, atlantis", err, sizeof err), -1);
    CHECK_STR(err, "--prefetch-cities: no city 'atlantis' (GET /cities lists them)");
    CHECK_INT(set_flag(&c, "prefetch_cities", "Beijing", err, sizeof err), -1);
    CHECK_STR(err, "--prefetch-cities: no city 'Beijing' (GET /cities lists them)");
    CHECK_INT(set_flag(&c, "prefetch_cities", "all,beijing", err, sizeof err), -1);
    CHECK(strstr(err, "--prefetch-cities: 'all' stands alone") == err);
    CHECK_INT(set_flag(&c, "prefetch_cities", "beijing\nxian", err, sizeof err), -1);
    CHECK_STR(err, "--prefetch-cities: no city 'beijing\\x0axian' (GET /cities lists them)");
    CHECK_STR(c.prefetch_cities, "118378");
    config_free(&c);

    /* A bad name in a file stops the load at its line, like any bad value. */
    CHECK_INT(load_text(&c, "cities = any\nprefetch_cities = beijing xyz\n", &path, err,
                        sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: prefetch_cities: no city 'xyz' (GET /cities lists them)",
             path);
    CHECK_STR(err, want);
    CHECK_INT(c.cities, CITIES_KNOWN);
    config_free(&c);
    CHECK_INT(load_text(&c, "cities = any\nprefetch_cities = \"\"\n", &path, err, sizeof err), 0);
    CHECK_INT(c.cities, CITIES_ANY);
    CHECK_STR(c.prefetch_cities, "");
    config_free(&c);
}

/* redis_url takes empty or what redis_url_parse takes, with its reason in the message;
 * redis_password_file is a name (read at start, not here). */
static void test_redis_settings(void)
{
    struct config c;
    char err[256];
    const char *path;
    config_init(&c);
    CHECK_INT(set_flag(&c, "redis_url", "redis://10.0.0.5:6380/1", err, sizeof err), 0);
    CHECK_STR(c.redis_url, "redis://10.0.0.5:6380/1");
    CHECK_INT(set_flag(&c, "redis_url", "", err, sizeof err), 0);
    CHECK_STR(c.redis_url, "");
    CHECK_INT(set_flag(&c, "redis_url", "http://10.0.0.5", err, sizeof err), -1);
    CHECK_STR(err, "--redis-url: must start with redis:// or unix://");
    CHECK_INT(set_flag(&c, "redis_url", "redis://h:0", err, sizeof err), -1);
    CHECK_STR(err, "--redis-url: port '0' is not 1..65535");
    CHECK_STR(c.redis_url, "");
    CHECK_INT(set_flag(&c, "redis_password_file", "/run/secrets/redis", err, sizeof err), 0);
    CHECK_STR(c.redis_password_file, "/run/secrets/redis");
    CHECK_INT(set_flag(&c, "redis_password_file", "", err, sizeof err), 0);
    CHECK_INT(set_flag(&c, "redis_password_file", "a\nb", err, sizeof err), -1);
    CHECK_STR(err, "--redis-password-file: 'a\\x0ab' contains a control character");
    /* A file that does not exist is no error here: it is read once, at start. */
    CHECK_INT(set_flag(&c, "redis_password_file", "/nonexistent/x", err, sizeof err), 0);
    config_free(&c);
    CHECK_INT(load_text(&c, "redis_url = unix:///run/redis.sock?db=4\n", &path, err, sizeof err),
              0);
    CHECK_STR(c.redis_url, "unix:///run/redis.sock?db=4");
    config_free(&c);
    CHECK_INT(load_text(&c, "redis_url = redis://h:99999\n", &path, err, sizeof err), -1);
    CHECK(strstr(err, ":1: redis_url: port '99999' is not 1..65535") != NULL);
    config_free(&c);
}

/* MOVIESD_<KEY> variables apply; MOVIESD_CONFIG is main's; any other MOVIESD_ is an error. */
static void test_env(void)
{
    struct config c, d;
    char err[256];
    config_init(&c);
    config_init(&d);
    char *env[] = { "PATH=/usr/bin", "MOVIESD_LISTING_TTL=5", "MOVIESD_CONFIG=/etc/x.conf",
                    "MOVIESD_USER_AGENT=a = b # c", "HOME=/root", "MOVIESD_LOG_LEVEL=warn",
                    "MOVIESD", "MOVIESDX=1", "NOT_MOVIESD_FOO=1", NULL };
    CHECK_INT(config_load_env(&c, env, err, sizeof err), 0);
    CHECK_INT(c.listing_ttl, 5);
    CHECK_STR(c.user_agent, "a = b # c");
    CHECK_INT(c.log_level, LOG_WARN);
    CHECK_INT(c.detail_ttl, 86400);
    CHECK_INT(config_load_env(&c, NULL, err, sizeof err), 0);
    config_free(&c);

    char *unknown[] = { "MOVIESD_DETAIL_TTL=7", "MOVIESD_FOO=1", NULL };
    config_init(&c);
    CHECK_INT(config_load_env(&c, unknown, err, sizeof err), -1);
    CHECK_STR(err, "environment MOVIESD_FOO: unknown setting");
    CHECK(same_config(&c, &d)); /* MOVIESD_DETAIL_TTL was not kept */

    char *lower[] = { "MOVIESD_listing_ttl=5", NULL };
    CHECK_INT(config_load_env(&c, lower, err, sizeof err), -1);
    CHECK_STR(err, "environment MOVIESD_listing_ttl: unknown setting");
    char *empty_name[] = { "MOVIESD_=5", NULL };
    CHECK_INT(config_load_env(&c, empty_name, err, sizeof err), -1);
    CHECK_STR(err, "environment MOVIESD_: unknown setting");
    char *dashed[] = { "MOVIESD_LISTING-TTL=5", NULL };
    CHECK_INT(config_load_env(&c, dashed, err, sizeof err), -1);
    char *bad[] = { "MOVIESD_LISTING_TTL=abc", NULL };
    CHECK_INT(config_load_env(&c, bad, err, sizeof err), -1);
    CHECK_STR(err, "MOVIESD_LISTING_TTL: 'abc' is not a whole number");
    char *blank[] = { "MOVIESD_RETRIES=", NULL };
    CHECK_INT(config_load_env(&c, blank, err, sizeof err), -1);
    CHECK_STR(err, "MOVIESD_RETRIES: '' is not a whole number");
    char *range[] = { "MOVIESD_RETRIES=11", NULL };
    CHECK_INT(config_load_env(&c, range, err, sizeof err), -1);
    CHECK_STR(err, "MOVIESD_RETRIES: 11 is out of range 0..10");
    CHECK(same_config(&c, &d));
    config_free(&c);
    config_free(&d);
}

/* Applied in main's order (file, environment, flags), the later source wins per key. */
static void test_precedence(void)
{
    struct config c;
    char err[256];
    const char *path;
    CHECK_INT(load_text(&c, "listing_ttl = 100\ndetail_ttl = 200\nretries = 3\n", &path, err,
                        sizeof err), 0);
    char *env[] = { "MOVIESD_DETAIL_TTL=300", "MOVIESD_RETRIES=4", NULL };
    CHECK_INT(config_load_env(&c, env, err, sizeof err), 0);
    CHECK_INT(config_set(&c, config_find_flag("retries"), "5", "--retries", err, sizeof err), 0);
    CHECK_INT(c.listing_ttl, 100);
    CHECK_INT(c.detail_ttl, 300);
    CHECK_INT(c.retries, 5);
    CHECK_INT(c.drain_timeout, 10);
    config_free(&c);
}

/* Writes c with config_print into a temp file and returns the text (new). */
static char *printed(const struct config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print(c, f);
    fclose(f);
    return buf;
}

/* config_print's output loads back into the same settings. */
static void test_print_round_trip(void)
{
    struct config c, d;
    char err[256];
    config_init(&c);
    char *text = printed(&c);
    CHECK(strstr(text, "listing_ttl = 3600\n") != NULL);
    CHECK(strstr(text, "log_level = info\n") != NULL);
    CHECK(strstr(text, "upstream = https://movie.douban.com\n") != NULL);
    CHECK(strncmp(text, "listen = 127.0.0.1:8080\n", 24) == 0);
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    CHECK_INT(lines, config_settings_count);
    free(text);

    /* Every setting away from its default, with values that need quoting. */
    const char *values[][2] = {
        { "listen", "[::1]:0" }, { "upstream", "http://127.0.0.1:1234/" },
        { "user_agent", " \"bot\" #2 = yes " }, { "log_level", "debug" },
        { "cities", "any" }, { "prefetch_cities", " beijing, xian " },
        { "redis_url", "redis://:p%40ss%23@[::1]:6380/2" }, { "redis_password_file", " x y " },
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        CHECK_INT(config_set(&c, config_find(values[i][0]), values[i][1], "t", err, sizeof err), 0);
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        char v[32];
        if (s->type != SETTING_INTEGER)
            continue;
        snprintf(v, sizeof v, "%lld", s->max - (long long)i % 2);
        CHECK_INT(config_set(&c, s, v, "t", err, sizeof err), 0);
    }
    text = printed(&c);
    const char *path = temp_file(text);
    config_init(&d);
    int r = config_load_file(&d, path, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "round trip failed: %s\n--\n%s--\n", err, text);
    CHECK_INT(r, 0);
    CHECK(same_config(&c, &d));
    CHECK_STR(d.user_agent, " \"bot\" #2 = yes ");
    CHECK_STR(d.upstream, "http://127.0.0.1:1234");
    CHECK_INT(d.cities, CITIES_ANY);
    CHECK_STR(d.prefetch_cities, " beijing, xian ");
    free(text);
    config_free(&c);
    config_free(&d);

    char *quoted[] = { "MOVIESD_USER_AGENT=\"x\"", NULL };
    config_init(&c);
    CHECK_INT(config_load_env(&c, quoted, err, sizeof err), 0);
    text = printed(&c);
    path = temp_file(text);
    config_init(&d);
    CHECK_INT(config_load_file(&d, path, err, sizeof err), 0);
    CHECK_STR(d.user_agent, "\"x\"");
    free(text);
    config_free(&c);
    config_free(&d);
}

/* A value for s other than the one c has, as text config_set accepts. */
static const char *other_value(const struct config *c, const struct setting *s, char buf[32])
{
    switch (s->type) {
    case SETTING_INTEGER:
        snprintf(buf, 32, "%lld", integer_of(c, s) == s->max ? s->min : s->max);
        return buf;
    case SETTING_LOG_LEVEL:
        return integer_of(c, s) == LOG_DEBUG ? "error" : "debug";
    case SETTING_LISTEN:
        return "127.0.0.1:1";
    case SETTING_URL:
        return "http://127.0.0.1:2";
    case SETTING_STRING:
        return "another agent";
    case SETTING_CHOICE:
        return s->choices[integer_of(c, s) == 0 ? 1 : 0];
    case SETTING_CITY_LIST:
        return strcmp(string_of(c, s), "beijing") == 0 ? "shanghai" : "beijing";
    case SETTING_REDIS_URL:
        return strcmp(string_of(c, s), "redis://127.0.0.1") == 0 ? "unix:///tmp/r.sock"
                                                                 : "redis://127.0.0.1";
    case SETTING_PATH:
        return strcmp(string_of(c, s), "a") == 0 ? "b" : "a";
    case SETTING_ORIGIN_LIST:
        return strcmp(string_of(c, s), "*") == 0 ? "https://a.example" : "*";
    }
    return NULL;
}

/* A reload applies the live settings, keeps and names the restart-only ones, and changes
 * nothing when the loaded configuration holds a value loading would refuse. */
static void test_apply_live(void)
{
    struct config running, loaded, before;
    char err[256], kept[256];

    /* Nothing changed: nothing applied, nothing kept. */
    config_init(&running);
    config_init(&loaded);
    strcpy(kept, "junk");
    CHECK_INT(config_apply_live(&running, &loaded, kept, sizeof kept, err, sizeof err), 0);
    CHECK_STR(kept, "");
    config_free(&loaded);

    /* Each setting changed alone: live ones take the new value, the others are named. */
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        char buf[32];
        config_copy(&loaded, &running);
        config_copy(&before, &running);
        CHECK_INT(config_set(&loaded, s, other_value(&running, s, buf), "t", err, sizeof err), 0);
        CHECK_INT(config_apply_live(&running, &loaded, kept, sizeof kept, err, sizeof err), 0);
        if (s->live) {
            CHECK(same_config(&running, &loaded));
            CHECK_STR(kept, "");
        } else {
            CHECK(same_config(&running, &before));
            CHECK_STR(kept, s->name);
        }
        config_free(&loaded);
        config_free(&before);
    }
    config_free(&running);

    /* A file that changes live and restart-only settings at once. */
    config_init(&running);
    config_init(&loaded);
    CHECK_INT(set_flag(&loaded, "listen", "127.0.0.1:9", err, sizeof err), 0);
    CHECK_INT(set_flag(&loaded, "listing_ttl", "5", err, sizeof err), 0);
    CHECK_INT(set_flag(&loaded, "user_agent", "agent/2", err, sizeof err), 0);
    CHECK_INT(set_flag(&loaded, "max_connections", "7", err, sizeof err), 0);
    CHECK_INT(set_flag(&loaded, "log_level", "debug", err, sizeof err), 0);
    CHECK_INT(config_apply_live(&running, &loaded, kept, sizeof kept, err, sizeof err), 0);
    CHECK_STR(kept, "listen, max_connections");
    CHECK_STR(running.listen, "127.0.0.1:8080");
    CHECK_INT(running.max_connections, 8192);
    CHECK_INT(running.listing_ttl, 5);
    CHECK_STR(running.user_agent, "agent/2");
    CHECK(running.user_agent != loaded.user_agent);   /* a copy: loaded is freed next */
    CHECK_INT(running.log_level, LOG_DEBUG);

    /* The names are cut to the buffer, and may be left out. */
    char small[10];
    config_free(&running);
    config_init(&running);
    CHECK_INT(config_apply_live(&running, &loaded, small, sizeof small, err, sizeof err), 0);
    CHECK_STR(small, "listen, m");
    config_free(&running);
    config_init(&running);
    CHECK_INT(config_apply_live(&running, &loaded, NULL, 0, err, sizeof err), 0);
    CHECK_INT(running.listing_ttl, 5);
    config_free(&loaded);
    config_free(&running);

    /* Values loading refuses, set behind config_set's back: nothing is applied. */
    static const struct {
        const char *key, *why;
    } bad[] = {
        {"retries", "out of range 0..10"},
        {"log_level", "not a log level"},
        {"user_agent", "control character"},
        {"listen", "no value"},
        {"upstream", "must start with http"},
        {"detail_ttl", "not a whole number"},
        {"cities", "not one of known, any"},
        {"prefetch_cities", "no city 'atlantis'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_init(&running);
        config_init(&loaded);
        CHECK_INT(set_flag(&loaded, "listing_ttl", "5", err, sizeof err), 0);
        const struct setting *s = config_find(bad[i].key);
        switch (i) {
        case 0:
            *(long long *)(void *)((char *)&loaded + s->offset) = 11;
            break;
        case 1:
            loaded.log_level = 9;
            break;
        case 2:
            free(loaded.user_agent);
            loaded.user_agent = xstrdup("agent\r\nX-Evil: 1");
            break;
        case 3:
            free(loaded.listen);
            loaded.listen = NULL;
            break;
        case 4:
            free(loaded.upstream);
            loaded.upstream = xstrdup("ftp://example.com");
            break;
        case 5:
            loaded.detail_ttl = -1;
            break;
        case 6:
            loaded.cities = 2;
            break;
        case 7:
            free(loaded.prefetch_cities);
            loaded.prefetch_cities = xstrdup("beijing atlantis");
            break;
        }
        config_copy(&before, &running);
        strcpy(kept, "untouched");
        err[0] = '\0';
        CHECK_INT(config_apply_live(&running, &loaded, kept, sizeof kept, err, sizeof err), -1);
        if (strstr(err, bad[i].key) == NULL || strstr(err, bad[i].why) == NULL)
            fprintf(stderr, "apply_live error for %s: %s\n", bad[i].key, err);
        CHECK(strstr(err, bad[i].key) != NULL && strstr(err, bad[i].why) != NULL);
        CHECK(same_config(&running, &before));
        CHECK_STR(kept, "untouched");
        config_free(&before);
        config_free(&loaded);
        config_free(&running);
    }
}

/* --help: one aligned line per setting with its placeholder, help and default. */
static void test_help(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    CHECK(strstr(buf, "  --listing-ttl SECONDS ") != NULL);
    CHECK(strstr(buf, "How long a city's listing of movies stays fresh in the cache. "
                      "(default 3600)\n") != NULL);
    CHECK(strstr(buf, "  --log-level LEVEL ") != NULL);
    CHECK(strstr(buf, "  --listen HOST:PORT ") != NULL);
    CHECK(strstr(buf, "  --retries N ") != NULL);
    CHECK(strstr(buf, "  --cities CHOICE ") != NULL);
    CHECK(strstr(buf, "  --prefetch-cities CITIES ") != NULL);
    CHECK(strstr(buf, "commas or spaces. (default \"\")\n") != NULL);
    CHECK(strstr(buf, "  --min-request-interval-ms MILLISECONDS ") != NULL);
    CHECK(strstr(buf, "(default \"Mozilla/5.0 (X11;") != NULL);

    /* Every help text starts in the same column. */
    size_t lines = 0;
    long column = -1;
    int aligned = 1;
    for (char *line = buf; *line != '\0' && lines < config_settings_count;) {
        char *nl = strchr(line, '\n');
        const struct setting *s = &config_settings[lines];
        char *help = strstr(line, s->help);
        CHECK(help != NULL && help < nl);
        CHECK(strncmp(line, "  --", 4) == 0);
        if (help != NULL) {
            if (column < 0)
                column = help - line;
            aligned &= column == help - line;
            aligned &= help[-1] == ' ' && help[-2] == ' ' && help[-3] == ' ';
        }
        lines++;
        line = nl + 1;
    }
    CHECK(aligned);
    CHECK_INT(lines, config_settings_count);
    free(buf);
}

/* The README table: header, one row per setting, and the columns in order. */
static void test_markdown(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_markdown(f);
    fclose(f);
    const char *head = "| Key | Flag | Environment | Default | Range | Live reload | Description |\n"
                       "|---|---|---|---|---|---|---|\n";
    CHECK(strncmp(buf, head, strlen(head)) == 0);
    CHECK(strstr(buf, "| `listing_ttl` | `--listing-ttl` | `MOVIESD_LISTING_TTL` | `3600` | "
                      "1..31536000 seconds | yes | How long a city's listing of movies stays "
                      "fresh in the cache. |\n") != NULL);
    CHECK(strstr(buf, "| `listen` | `--listen` | `MOVIESD_LISTEN` | `127.0.0.1:8080` |") != NULL);
    CHECK(strstr(buf, "| `cities` | `--cities` | `MOVIESD_CITIES` | `known` | known, any | yes |")
          != NULL);
    CHECK(strstr(buf, "| `prefetch_cities` | `--prefetch-cities` | `MOVIESD_PREFETCH_CITIES` | "
                      "none | empty, `all`, or slugs of `GET /cities` separated by commas or "
                      "spaces | yes |") != NULL);
    CHECK(strstr(buf, "| `max_connections` | `--max-connections` | `MOVIESD_MAX_CONNECTIONS` | "
                      "`8192` | 1..100000 | no (restart) |") != NULL);
    size_t lines = 0;
    for (const char *p = buf; *p != '\0'; p++) {
        if (*p == '\n')
            lines++;
    }
    CHECK_INT(lines, config_settings_count + 2);
    free(buf);
}

/* The shipped config/moviesd.conf: loads as is, and with every "# key = value" line
 * uncommented it names each setting exactly once, with its default. */
static void test_shipped_conf(void)
{
    struct config c, d;
    char err[512];
    config_init(&d);
    config_init(&c);
    int r = config_load_file(&c, SHIPPED_CONF, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_INT(r, 0);
    CHECK(same_config(&c, &d));
    config_free(&c);

    FILE *f = fopen(SHIPPED_CONF, "r");
    CHECK(f != NULL);
    if (f == NULL) {
        config_free(&d);
        return;
    }
    char *out = NULL, *line = NULL;
    size_t outlen = 0, cap = 0;
    FILE *uncommented = open_memstream(&out, &outlen);
    int seen[64] = { 0 };
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        const char *key = line + 2;
        size_t klen = strspn(key, "abcdefghijklmnopqrstuvwxyz_");
        if (strncmp(line, "# ", 2) != 0 || klen == 0 || strncmp(key + klen, " = ", 3) != 0) {
            fputs(line, uncommented);
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)klen, key);
        const struct setting *s = config_find(name);
        if (s == NULL)
            fprintf(stderr, "moviesd.conf names no setting: %s", line);
        CHECK(s != NULL);
        if (s != NULL) {
            seen[s - config_settings]++;
            char *value = xstrndup(key + klen + 3, strcspn(key + klen + 3, "\n"));
            /* An empty default is written "" (a line must not end in a blank): the quotes go,
             * as loading removes them. */
            size_t vlen = strlen(value);
            if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
                memmove(value, value + 1, vlen - 2);
                value[vlen - 2] = '\0';
            }
            CHECK_STR(value, s->default_value);
            free(value);
        }
        fputs(line + 2, uncommented);
    }
    free(line);
    fclose(f);
    fclose(uncommented);
    for (size_t i = 0; i < config_settings_count; i++) {
        if (seen[i] != 1)
            fprintf(stderr, "moviesd.conf lists %s %d times\n", config_settings[i].name, seen[i]);
        CHECK_INT(seen[i], 1);
    }

    /* Start away from the defaults so the load has to set every one. */
    config_init(&c);
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        if (s->type == SETTING_INTEGER) {
            char v[32];
            snprintf(v, sizeof v, "%lld", s->default_value[0] == '1' ? s->max : s->min);
            config_set(&c, s, v, "t", err, sizeof err);
        }
    }
    config_set(&c, config_find("user_agent"), "other", "t", err, sizeof err);
    config_set(&c, config_find("log_level"), "error", "t", err, sizeof err);
    config_set(&c, config_find("listen"), "[::1]:1", "t", err, sizeof err);
    config_set(&c, config_find("upstream"), "http://x", "t", err, sizeof err);
    config_set(&c, config_find("cities"), "any", "t", err, sizeof err);
    config_set(&c, config_find("prefetch_cities"), "all", "t", err, sizeof err);
    const char *path = temp_file(out);
    r = config_load_file(&c, path, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_INT(r, 0);
    CHECK(same_config(&c, &d));
    free(out);
    config_free(&c);
    config_free(&d);
}

int main(void)
{
    test_defaults();
    test_integer_bounds();
    test_text_settings();
    test_url();
    test_listen();
    test_city_settings();
    test_redis_settings();
    test_find();
    test_file_format();
    test_file_errors();
    test_env();
    test_precedence();
    test_print_round_trip();
    test_apply_live();
    test_help();
    test_markdown();
    test_shipped_conf();
    for (size_t i = 0; i < temp_files.n; i++)
        unlink(temp_files.v[i]);
    strlist_free(&temp_files);
    return check_summary();
}
