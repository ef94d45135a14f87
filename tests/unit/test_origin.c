/* Origins as libcurl reads them, and the allow-list every fetched URL is checked against. */
#include <stdlib.h>

#include "check.h"
#include "origin.h"

/* Whether url parses and its origin is on l. */
static int allowed(const struct origin_list *l, const char *url)
{
    struct origin o;
    char err[128];
    CURLU *u = origin_parse(url, &o, err, sizeof err);
    if (u == NULL)
        return 0;
    int ok = origin_list_allows(l, &o);
    curl_url_cleanup(u);
    origin_clear(&o);
    return ok;
}

/* Whether a Location of reference on a page at base resolves to an allowed origin; the
 * resolved URL is compared with expected when that is not NULL. */
static int redirect_allowed(const struct origin_list *l, const char *base, const char *reference,
                            const char *expected)
{
    struct origin o;
    char err[128];
    char *url = origin_resolve(base, reference, &o, err, sizeof err);
    if (url == NULL)
        return 0;
    if (expected != NULL)
        CHECK_STR(url, expected);
    int ok = origin_list_allows(l, &o);
    free(url);
    origin_clear(&o);
    return ok;
}

/* What origin_parse reads: curl's scheme, host and port, and the host as written. */
static void test_parse(void)
{
    struct origin o;
    char err[128], buf[128];
    CURLU *u = origin_parse("https://movie.douban.com", &o, err, sizeof err);
    CHECK(u != NULL);
    CHECK_STR(o.scheme, "https");
    CHECK_STR(o.host, "movie.douban.com");
    CHECK_INT(o.port, 443);
    CHECK_STR(o.spelling, "movie.douban.com");
    CHECK_STR(origin_format(&o, buf, sizeof buf), "https://movie.douban.com:443");
    curl_url_cleanup(u);
    origin_clear(&o);
    CHECK(o.host == NULL);
    origin_clear(&o);  /* a cleared origin may be cleared again */

    u = origin_parse("HTTP://Movie.Douban.COM:8080/subject/1/?a=b#c", &o, err, sizeof err);
    CHECK(u != NULL);
    CHECK_STR(o.scheme, "http");
    CHECK_STR(o.host, "movie.douban.com");
    CHECK_INT(o.port, 8080);
    CHECK_STR(o.spelling, "movie.douban.com");
    curl_url_cleanup(u);
    origin_clear(&o);

    /* curl normalises numeric forms of an IPv4 address; the spelling keeps what was written. */
    u = origin_parse("http://0x7F000001:9/", &o, err, sizeof err);
    CHECK(u != NULL);
    CHECK_STR(o.host, "127.0.0.1");
    CHECK_STR(o.spelling, "0x7f000001");
    curl_url_cleanup(u);
    origin_clear(&o);

    u = origin_parse("http://[::1]:9/", &o, err, sizeof err);
    CHECK(u != NULL);
    CHECK_STR(o.host, "[::1]");
    CHECK_STR(o.spelling, "[::1]");
    CHECK_INT(o.port, 9);
    curl_url_cleanup(u);
    origin_clear(&o);

    /* Refused outright, with a reason. */
    const char *bad[] = {"/subject/1/", "subject/1/", "", "http://", "http://127.0.0.1:65536/",
                         "http://user@127.0.0.1/", "http://user:pw@127.0.0.1/", "javascript:alert(1)",
                         "http://127.0.0.1/a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        u = origin_parse(bad[i], &o, err, sizeof err);
        CHECK(u == NULL);
        CHECK(err[0] != '\0');
        CHECK(o.host == NULL && o.scheme == NULL && o.spelling == NULL);
        if (u != NULL) {
            fprintf(stderr, "    parsed: %s\n", bad[i]);
            curl_url_cleanup(u);
            origin_clear(&o);
        }
    }
}

/* A loopback upstream, as the tests configure it: only that address, written that way, on
 * that port and scheme. */
static void test_loopback_upstream(void)
{
    struct origin_list l = {0};
    char err[128];
    CHECK_INT(origin_list_add(&l, "http://127.0.0.1:4567", err, sizeof err), 0);
    CHECK(allowed(&l, "http://127.0.0.1:4567/cinema/later/beijing/"));
    CHECK(allowed(&l, "HTTP://127.0.0.1:4567/subject/1/?x=1#y"));
    CHECK(allowed(&l, "http://127.0.0.1:04567/"));  /* the same port, as curl reads it */

    const char *refused[] = {
        "http://127.0.0.1:4568/",              /* another port */
        "http://127.0.0.1/",                   /* the default port */
        "https://127.0.0.1:4567/",             /* another scheme */
        "ftp://127.0.0.1:4567/",
        "http://2130706433:4567/",             /* 127.0.0.1 as one number */
        "http://0x7f000001:4567/",             /* hex */
        "http://017700000001:4567/",           /* octal */
        "http://0177.0.0.1:4567/",
        "http://127.1:4567/",                  /* short form */
        "http://[::ffff:127.0.0.1]:4567/",     /* IPv6-mapped */
        "http://[::1]:4567/",
        "http://localhost:4567/",
        "http://127.0.0.1.:4567/",             /* trailing dot */
        "http://%31%32%37.0.0.1:4567/",        /* percent-encoded */
        "http://127.0.0.1:4567\\@evil:4567/",  /* curl reads the host evil */
        "http://127.0.0.1:4567@evil:4567/",
        "http:127.0.0.1:4567/",                /* no "//": curl may read it, we do not */
        "http:/127.0.0.1:4567/",
        "http:///127.0.0.1:4567/",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int ok = allowed(&l, refused[i]);
        CHECK(!ok);
        if (ok)
            fprintf(stderr, "    allowed: %s\n", refused[i]);
    }
    origin_list_clear(&l);
    CHECK(l.count == 0 && l.items == NULL);
    CHECK(!allowed(&l, "http://127.0.0.1:4567/"));  /* an empty list allows nothing */
}

/* Douban's own host: the default port filled in, names compared without case. */
static void test_named_upstream(void)
{
    struct origin_list l = {0};
    char err[128];
    CHECK_INT(origin_list_add(&l, "https://movie.douban.com", err, sizeof err), 0);
    CHECK(allowed(&l, "https://movie.douban.com/subject/35275131/"));
    CHECK(allowed(&l, "https://movie.douban.com:443/subject/35275131/"));
    CHECK(allowed(&l, "https://MOVIE.douban.com/"));
    CHECK(!allowed(&l, "http://movie.douban.com/"));
    CHECK(!allowed(&l, "https://movie.douban.com:8443/"));
    CHECK(!allowed(&l, "https://movie.douban.com./"));
    CHECK(!allowed(&l, "https://sec.douban.com/"));
    CHECK(!allowed(&l, "https://movie.douban.com.evil.example/"));
    /* A second origin (a poster host) is allowed beside the first, and only it. */
    CHECK_INT(origin_list_add(&l, "https://img9.doubanio.com", err, sizeof err), 0);
    CHECK(allowed(&l, "https://img9.doubanio.com/view/photo/p1.jpg"));
    CHECK(allowed(&l, "https://movie.douban.com/"));
    CHECK(!allowed(&l, "https://img1.doubanio.com/view/photo/p1.jpg"));
    CHECK_INT(origin_list_add(&l, "not a url", err, sizeof err), -1);
    CHECK_INT(l.count, 2);
    origin_list_clear(&l);

    /* An upstream configured in a numeric form allows that spelling and curl's, no other. */
    CHECK_INT(origin_list_add(&l, "http://2130706433:4567", err, sizeof err), 0);
    CHECK(allowed(&l, "http://2130706433:4567/"));
    CHECK(allowed(&l, "http://127.0.0.1:4567/"));
    CHECK(!allowed(&l, "http://0x7f000001:4567/"));
    CHECK(!allowed(&l, "http://2130706433:4568/"));
    origin_list_clear(&l);
}

/* Location headers resolved against the page that sent them. */
static void test_redirects(void)
{
    struct origin_list l = {0};
    char err[128];
    const char *base = "http://127.0.0.1:4567/subject/1/";
    CHECK_INT(origin_list_add(&l, "http://127.0.0.1:4567", err, sizeof err), 0);
    CHECK(redirect_allowed(&l, base, "/subject/1/?moved=1", "http://127.0.0.1:4567/subject/1/?moved=1"));
    CHECK(redirect_allowed(&l, base, "?from=redirect", "http://127.0.0.1:4567/subject/1/?from=redirect"));
    CHECK(redirect_allowed(&l, base, "../2/", "http://127.0.0.1:4567/subject/2/"));
    CHECK(redirect_allowed(&l, base, "//127.0.0.1:4567/x", "http://127.0.0.1:4567/x"));
    CHECK(redirect_allowed(&l, base, "http://127.0.0.1:4567/y", "http://127.0.0.1:4567/y"));
    /* Every one of these names another port, scheme or host, or 127.0.0.1 spelled otherwise. */
    const char *refused[] = {
        "http://127.0.0.1:4568/", "//127.0.0.1:4568/", "https://127.0.0.1:4567/",
        "http://2130706433:4567/", "//2130706433:4567/", "http://0x7f000001:4568/",
        "http://017700000001:4567/", "http://[::ffff:127.0.0.1]:4567/", "http://127.1:4567/",
        "https://sec.douban.com/b?r=x", "http://127.0.0.1:4567@evil/", "http:2130706433:4567/",
        "javascript:alert(1)", "http://user@127.0.0.1:4567/",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int ok = redirect_allowed(&l, base, refused[i], NULL);
        CHECK(!ok);
        if (ok)
            fprintf(stderr, "    followed: %s\n", refused[i]);
    }

    /* The origin of a block target is read, to tell it from other hosts. */
    struct origin o;
    char *url = origin_resolve(base, "https://sec.douban.com/b?r=x", &o, err, sizeof err);
    CHECK_STR(url, "https://sec.douban.com/b?r=x");
    CHECK_STR(o.host, "sec.douban.com");
    CHECK_STR(o.spelling, "sec.douban.com");
    free(url);
    origin_clear(&o);
    /* A relative Location keeps the base's spelling. */
    url = origin_resolve("http://2130706433:4567/a", "/b", &o, err, sizeof err);
    CHECK_STR(o.spelling, "2130706433");
    free(url);
    origin_clear(&o);
    err[0] = '\0';
    CHECK(origin_resolve("/not-absolute", "/b", &o, err, sizeof err) == NULL);
    CHECK(err[0] != '\0');
    origin_list_clear(&l);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_parse();
    test_loopback_upstream();
    test_named_upstream();
    test_redirects();
    curl_global_cleanup();
    return check_summary();
}
