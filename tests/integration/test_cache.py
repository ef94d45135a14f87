#!/usr/bin/env python3
"""The cache: city answers (listing_ttl) and movie records (detail_ttl, shared across
cities), HTTP caching headers and 304s, single-flight, stale-while-revalidate,
stale-if-error and stale_max_age, and the LRU bound on cities.

Waiting for a TTL to pass is done by polling the clock (wait_past), never by sleeping on a
race: the TTLs here are 1 s."""

import re
import threading
import time

from harness import (breaker_closed, call_in_background, expect, expect_answer, expect_eq,
                     expect_error, expect_movie, listing_path, movie_spec, raw_request, run,
                     scenario, subject_path, test, wait_until)

BLOCK_BACKOFF = 1




def wait_past(t, seconds):
    """Waits until `seconds` have passed since monotonic time t (a TTL running out)."""
    wait_until(lambda: time.monotonic() >= t + seconds, seconds + 2,
               "%.1f s to pass" % seconds, interval=0.02)


def movies(city, d, fake, **kw):
    """GET /movies?city=city, expected 200; returns (document, response, seconds taken)."""
    t0 = time.monotonic()
    r = d.get("/movies?city=%s" % city, **kw)
    dt = time.monotonic() - t0
    return expect_answer(r, fake, city), r, dt


def expect_subjects_once(fake, ids, what=""):
    for mid in ids:
        expect_eq(fake.count(subject_path(mid)), 1, "%srequests of %s" % (what, subject_path(mid)))


def without_stale(doc):
    return {k: v for k, v in doc.items() if k != "stale"}


# ----------------------------------------------------------------------------------------
# Two levels
# ----------------------------------------------------------------------------------------

@test
def second_request_makes_no_upstream_request():
    with scenario() as (fake, d):
        ids = fake.city_ids("beijing")
        doc1, r1, _ = movies("beijing", d, fake)
        expect_eq(doc1["count"], len(ids), "count")
        expect_eq(doc1["stale"], False, "stale")
        expect_eq(fake.total, 1 + len(ids), "upstream requests of the first (cold) request")
        doc2, r2, _ = movies("beijing", d, fake)
        expect_eq(fake.total, 1 + len(ids), "upstream requests after the second request")
        expect_eq(r2.body, r1.body, "second answer's body")
        expect_eq(doc2["stale"], False, "stale of the cached answer")


@test
def after_listing_ttl_only_the_listing_is_fetched_again():
    """--listing-ttl 1: the city is scraped again, but the movie records (detail_ttl one day)
    come from the cache; --stale-while-revalidate 0 so the request waits for that scrape."""
    flags = ["--listing-ttl", "1", "--stale-while-revalidate", "0"]
    with scenario(flags=flags) as (fake, d):
        ids = fake.city_ids("beijing")
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        expect_eq(fake.count(listing_path("beijing")), 1, "listing requests")
        expect_subjects_once(fake, ids)
        wait_past(t1, 1.2)
        doc2, _, _ = movies("beijing", d, fake)
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests after the TTL")
        expect_subjects_once(fake, ids, "after the TTL: ")
        expect_eq(fake.total, 2 + len(ids), "upstream requests in all")
        expect_eq(doc2["stale"], False, "stale")
        expect(doc2["fetched_at"] > doc1["fetched_at"],
               "fetched_at not newer after the refresh: %s then %s"
               % (doc1["fetched_at"], doc2["fetched_at"]))
        expect_eq([m["id"] for m in doc2["movies"]], [str(i) for i in ids], "ids")
        for m in doc2["movies"]:
            expect_movie(m, int(m["id"]),
                         skip=("regions",) if int(m["id"]) % 10 == 7 else ())


@test
def second_city_fetches_only_new_movies():
    """beijing lists ids B..B+11, shanghai B+4..B+15: shanghai costs its listing and the
    four movies beijing does not have."""
    with scenario() as (fake, d):
        bj = fake.city_ids("beijing")
        sh = fake.city_ids("shanghai")
        shared = sorted(set(bj) & set(sh))
        new = [i for i in sh if i not in bj]
        expect(len(shared) >= 4 and new, "fake cities do not overlap as expected")
        movies("beijing", d, fake)
        before = fake.total
        doc, _, _ = movies("shanghai", d, fake)
        expect_eq(fake.count(listing_path("shanghai")), 1, "shanghai listing requests")
        expect_eq(fake.total - before, 1 + len(new),
                  "upstream requests for shanghai (listing + %d new movies)" % len(new))
        expect_subjects_once(fake, bj + new)
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in sh], "shanghai ids")
        for m in doc["movies"]:
            expect(m["detail_error"] is None, "movie %s: %r" % (m["id"], m["detail_error"]))
            expect_movie(m, int(m["id"]),
                         skip=("regions",) if int(m["id"]) % 10 == 7 else ())


# ----------------------------------------------------------------------------------------
# HTTP caching headers
# ----------------------------------------------------------------------------------------

CACHE_CONTROL_RE = re.compile(r"^public,\s*max-age=(\d+)$")


def cache_headers(r):
    """(etag, max_age, age) of an answer, checked for shape."""
    etag = r.headers.get("etag")
    expect(etag is not None and re.fullmatch(r'(W/)?"[^"]+"', etag),
           "ETag missing or not a quoted string: %r" % etag)
    cc = r.headers.get("cache-control", "")
    m = CACHE_CONTROL_RE.match(cc.strip())
    expect(m, "Cache-Control is not 'public, max-age=N': %r" % cc)
    age = r.headers.get("age")
    expect(age is not None and re.fullmatch(r"\d+", age.strip()),
           "Age missing or not a number of seconds: %r" % age)
    return etag, int(m.group(1)), int(age)


@test
def caching_headers_and_conditional_requests():
    ttl = 600
    with scenario(flags=["--listing-ttl", str(ttl)]) as (fake, d):
        _, r1, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        etag, max_age, age = cache_headers(r1)
        expect(ttl - 2 <= max_age <= ttl, "max-age %d of a new answer (listing_ttl %d)"
               % (max_age, ttl))
        expect(age <= 1, "Age %d of a new answer" % age)

        # Age grows and max-age shrinks with the entry's age.
        def aged():
            r = d.get("/movies?city=beijing")
            e, ma, a = cache_headers(r)
            return (r, e, ma, a) if a >= 1 else None
        r2, etag2, max_age2, age2 = wait_until(aged, 4, "Age >= 1", interval=0.1)
        elapsed = time.monotonic() - t1
        expect(age2 <= elapsed + 1, "Age %d after %.1f s" % (age2, elapsed))
        expect(max_age2 <= ttl - 1, "max-age %d when Age is %d" % (max_age2, age2))
        expect(abs((max_age2 + age2) - ttl) <= 1,
               "max-age %d + Age %d should be listing_ttl %d (seconds left)"
               % (max_age2, age2, ttl))
        expect_eq(etag2, etag, "ETag of the same cached answer")
        expect_eq(r2.body, r1.body, "body of the same cached answer")

        r = d.get("/movies?city=beijing", headers={"If-None-Match": etag})
        expect_eq(r.status, 304, "If-None-Match with the ETag: status")
        expect_eq(r.body, b"", "body of the 304")
        r = d.get("/movies?city=beijing", headers={"If-None-Match": '"0123456789abcdef"'})
        expect_eq(r.status, 200, "If-None-Match with another ETag: status")
        expect_eq(r.body, r1.body, "body with a non-matching If-None-Match")
        expect_eq(fake.total, 13, "upstream requests")


def raw_answer(d, method, etag=None):
    """(status line, [(lower-case name, value)], bytes after the header section) of a raw
    METHOD /movies?city=beijing, with If-None-Match: etag when given."""
    inm = "If-None-Match: %s\r\n" % etag if etag else ""
    data = raw_request(d.port, ("%s /movies?city=beijing HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                                "Connection: close\r\n\r\n" % (method, inm)).encode())
    head, sep, rest = data.partition(b"\r\n\r\n")
    expect(sep, "%s: no end of the header section in %r" % (method, data[:300]))
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:])]
    return lines[0], headers, rest


@test
def not_modified_has_no_content_length():
    """A 304 is its header section alone (RFC 9110 15.4.5) and carries neither
    Content-Length (a 304 may only repeat the 200's, 8.6; never 0) nor Transfer-Encoding,
    for GET and HEAD alike. Checked on the raw bytes: http.client would hide both. The 200
    it stands for carries the length of its body."""
    with scenario() as (fake, d):
        _, r1, _ = movies("beijing", d, fake)
        etag = r1.headers["etag"]
        status, headers, body = raw_answer(d, "GET")
        expect_eq(status, "HTTP/1.1 200 OK", "status line of the GET")
        expect_eq([v for k, v in headers if k == "content-length"], [str(len(body))],
                  "Content-Length of the 200")
        for method in ("GET", "HEAD"):
            status, headers, rest = raw_answer(d, method, etag)
            expect_eq(status, "HTTP/1.1 304 Not Modified", "status line of %s with the ETag" % method)
            names = [k for k, _ in headers]
            expect("content-length" not in names, "Content-Length in the 304 to %s: %r"
                   % (method, headers))
            expect("transfer-encoding" not in names, "Transfer-Encoding in the 304 to %s: %r"
                   % (method, headers))
            expect_eq([v for k, v in headers if k == "etag"], [etag], "ETag of the 304 to %s" % method)
            expect_eq(rest, b"", "bytes after the 304's header section (%s)" % method)


# ----------------------------------------------------------------------------------------
# Single-flight
# ----------------------------------------------------------------------------------------

@test
def fifty_concurrent_requests_one_scrape():
    n = 50

    def setup(fake):
        fake.set_latency(200)
    with scenario(setup=setup) as (fake, d):
        ids = fake.city_ids("beijing")
        barrier = threading.Barrier(n)

        def client():
            barrier.wait(10)
            return d.get("/movies?city=beijing", timeout=30)
        clients = [call_in_background(client) for _ in range(n)]
        for t, _ in clients:
            t.join(40)
        errors = [result.get("e") for _, result in clients if "r" not in result]
        expect(not errors, "%d clients failed: %r" % (len(errors), errors[:3]))
        results = [result["r"] for _, result in clients]
        statuses = sorted(set(r.status for r in results))
        expect_eq(statuses, [200], "statuses of %d concurrent requests" % n)
        bodies = set(r.body for r in results)
        expect_eq(len(bodies), 1, "distinct bodies among %d answers" % n)
        expect_answer(results[0], fake, "beijing")
        expect_eq(fake.count(listing_path("beijing")), 1, "listing requests")
        expect_subjects_once(fake, ids)
        expect_eq(fake.total, 1 + len(ids), "upstream requests")


# ----------------------------------------------------------------------------------------
# Stale answers
# ----------------------------------------------------------------------------------------

LATENCY_MS = 1000


@test
def stale_while_revalidate():
    """After the TTL the answer comes at once, marked stale with the old fetched_at, while
    one refresh runs; once it is done the answer is fresh again."""
    with scenario(flags=["--listing-ttl", "1"]) as (fake, d):
        ids = fake.city_ids("beijing")
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        wait_past(t1, 1.2)
        fake.set_latency(LATENCY_MS)
        doc2, _, dt = movies("beijing", d, fake)
        expect(dt < 0.5 * LATENCY_MS / 1000.0,
               "stale answer took %.2f s with an upstream latency of %d ms: it waited for the "
               "refresh" % (dt, LATENCY_MS))
        expect_eq(doc2["stale"], True, "stale")
        expect_eq(doc2["fetched_at"], doc1["fetched_at"], "fetched_at of the stale answer")
        expect_eq(doc2["movies"], doc1["movies"], "movies of the stale answer")
        wait_until(lambda: fake.count(listing_path("beijing")) >= 2, 3, "the background refresh")

        def fresh():
            doc, _, _ = movies("beijing", d, fake)
            return doc if doc["stale"] is False else None
        doc3 = wait_until(fresh, 6, "a fresh answer after the refresh", interval=0.05)
        expect(doc3["fetched_at"] > doc1["fetched_at"],
               "fetched_at not newer after the refresh: %s then %s"
               % (doc1["fetched_at"], doc3["fetched_at"]))
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests (one refresh)")
        expect_subjects_once(fake, ids)


@test
def stale_while_revalidate_off_waits_for_refresh():
    flags = ["--listing-ttl", "1", "--stale-while-revalidate", "0"]
    with scenario(flags=flags) as (fake, d):
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        wait_past(t1, 1.2)
        fake.set_latency(LATENCY_MS)
        doc2, _, dt = movies("beijing", d, fake)
        expect(dt >= 0.9 * LATENCY_MS / 1000.0,
               "answer after %.2f s: did not wait for the refresh (latency %d ms)"
               % (dt, LATENCY_MS))
        expect_eq(doc2["stale"], False, "stale")
        expect(doc2["fetched_at"] > doc1["fetched_at"],
               "fetched_at not newer: %s then %s" % (doc1["fetched_at"], doc2["fetched_at"]))
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests")


def _stale_if_error(kind, flags=(), **params):
    """The city is cached, its TTL passes, then the listing fails with kind: the old answer
    is served, marked stale, with its fetched_at."""
    flags = ["--listing-ttl", "1", "--stale-while-revalidate", "0", "--retries", "0"] + list(flags)
    with scenario(flags=flags) as (fake, d):
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        wait_past(t1, 1.2)
        fake.add_fault("^%s$" % listing_path("beijing"), kind, **params)
        doc2, _, dt = movies("beijing", d, fake, timeout=30)
        expect_eq(doc2["stale"], True, "stale (upstream %s)" % kind)
        expect_eq(doc2["fetched_at"], doc1["fetched_at"], "fetched_at of the stale answer")
        expect_eq(without_stale(doc2), without_stale(doc1), "the stale answer's data")
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests (the refresh was tried)")
        return dt


@test
def stale_if_error_500():
    _stale_if_error(500)


@test
def stale_if_error_timeout():
    dt = _stale_if_error("hang", ["--upstream-timeout", "1"])
    expect(dt < 10, "stale answer after %.1f s (upstream timeout 1 s)" % dt)


@test
def stale_if_error_blocked():
    _stale_if_error(403)


@test
def stale_if_error_request_deadline():
    """The refresh outlasts the request deadline (hanging upstream, --upstream-timeout 60,
    --request-deadline 2): the old answer, still within stale_max_age, is served (200,
    stale) rather than a 504. README: "a failing or refusing upstream gets the last good
    answer served instead of an error". With the defaults (upstream_timeout 15, retries 2,
    request_deadline 30) a hanging upstream always runs into the deadline first, so this is
    the stale-if-error case a city past its stale-while-revalidate window meets."""
    flags = ["--listing-ttl", "1", "--stale-while-revalidate", "0", "--upstream-timeout", "60",
             "--request-deadline", "2", "--drain-timeout", "1"]
    with scenario(flags=flags) as (fake, d):
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        wait_past(t1, 1.2)
        fake.add_fault("^%s$" % listing_path("beijing"), "hang")
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing", timeout=30)
        dt = time.monotonic() - t0
        expect(r.status == 200, "a cached answer exists but the request got %d after %.1f s: %r"
               % (r.status, dt, r.body[:200]))
        doc2 = expect_answer(r, fake, "beijing")
        expect_eq(doc2["stale"], True, "stale")
        expect_eq(doc2["fetched_at"], doc1["fetched_at"], "fetched_at of the stale answer")
        expect(dt <= 4.0, "stale answer after %.1f s (--request-deadline 2)" % dt)


@test
def stale_max_age_exceeded_returns_the_error():
    """--stale-max-age 1: once the answer is more than 1 s old (and more than 1 s past its
    TTL), a failing refresh is answered with the error, not the old answer."""
    flags = ["--listing-ttl", "1", "--stale-while-revalidate", "0", "--retries", "0",
             "--stale-max-age", "1"]
    with scenario(flags=flags) as (fake, d):
        movies("beijing", d, fake)
        t1 = time.monotonic()
        wait_past(t1, 2.3)
        fake.add_fault("^%s$" % listing_path("beijing"), 500)
        r = d.get("/movies?city=beijing")
        expect_error(r, 502, "upstream_error", "refresh failing past stale_max_age")
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests")


# ----------------------------------------------------------------------------------------
# Unknown cities and degraded scrapes
# ----------------------------------------------------------------------------------------

@test
def unknown_city_is_cached():
    """A city the upstream does not know (404 on its listing) is answered 404 unknown_city;
    asked again within listing_ttl, the answer comes from the cache without an upstream
    request; once the TTL has passed (--listing-ttl 1) the upstream is asked again (the
    cached 404 is not data to serve while revalidating). --cities any: only a name outside the
    table gets Douban's 404, the others being cities it knows."""
    with scenario(flags=["--listing-ttl", "1", "--cities", "any"]) as (fake, d):
        expect(fake.city_ids("nowhere") is None, "the fake knows 'nowhere'")
        expect_error(d.get("/movies?city=nowhere"), 404, "unknown_city", "first request")
        t1 = time.monotonic()
        expect_eq(fake.count(listing_path("nowhere")), 1, "listing requests of the first request")
        total = fake.total
        expect_error(d.get("/movies?city=nowhere"), 404, "unknown_city",
                     "second request within the TTL")
        expect_eq(fake.total, total, "upstream requests for an unknown city asked again within "
                  "listing_ttl (it should be cached)")
        wait_past(t1, 1.2)
        expect_error(d.get("/movies?city=nowhere"), 404, "unknown_city", "request after the TTL")
        expect_eq(fake.count(listing_path("nowhere")), 2, "listing requests after the TTL")
        expect_eq(fake.total, total + 1, "upstream requests after the TTL")


def blocked_movies(doc):
    return [m["id"] for m in doc["movies"] if m["detail_error"] is not None
            and m["detail_error"].get("code") == "upstream_blocked"]


@test
def degraded_scrape_does_not_replace_good_data():
    """beijing (40 movies) cached complete; its TTL (and its movies', --detail-ttl 1)
    passes; on the refresh the first movie page (the most wished-for) is the "有异常请求" page, so the breaker
    opens mid-scrape and the pages still queued fail as blocked (--max-host-connections 1:
    no other page is under way when the block page arrives, so all of them are queued, and
    none of them may be requested while the breaker is open). That answer, missing most
    movie details, must not replace the complete one: the request gets the old data marked
    stale (no detail_error anywhere). Once the block is over (--block-backoff 1) a later
    refresh brings fresh complete data. A city with no older answer (shanghai, cold) is
    answered with the degraded scrape: 200, movies with detail_error upstream_blocked."""
    flags = ["--listing-ttl", "1", "--detail-ttl", "1", "--stale-while-revalidate", "0",
             "--block-backoff", str(BLOCK_BACKOFF), "--retries", "0",
             "--max-host-connections", "1"]
    bj_ids = list(range(36100000, 36100040))
    sh_ids = list(range(36200000, 36200012))

    def setup(fake):
        fake.set_city("beijing", bj_ids)
        fake.set_city("shanghai", sh_ids)
    with scenario(flags=flags, setup=setup) as (fake, d):
        doc1, _, _ = movies("beijing", d, fake)
        t1 = time.monotonic()
        expect_eq(doc1["count"], 40, "count")
        expect_eq(doc1["stale"], False, "stale of the first answer")
        bad = [(m["id"], m["detail_error"]) for m in doc1["movies"] if m["detail_error"]]
        expect(not bad, "detail errors in the first answer: %r" % bad)
        wait_past(t1, 1.2)

        first = max(bj_ids, key=lambda mid: movie_spec(mid)["wish"])
        block = fake.add_fault("^%s$" % subject_path(first), "block_page")
        doc2, _, _ = movies("beijing", d, fake, timeout=30)
        expect_eq(fake.count(listing_path("beijing")), 2, "listing requests (the refresh ran)")
        expect_eq(fake.count(subject_path(first)), 2,
                  "requests of the page answering the block page")
        fetched = fake.count_matching(r"^/subject/361") - 40
        expect(fetched <= 2, "%d movie page requests in the refresh: the pages queued behind "
               "the block page were not stopped by the breaker" % fetched)
        refused = blocked_movies(doc2)
        expect(not refused, "a scrape degraded by a block replaced the complete answer: %d "
               "movies with detail_error upstream_blocked (%s...)" % (len(refused), refused[:5]))
        bad = [(m["id"], m["detail_error"]) for m in doc2["movies"] if m["detail_error"]]
        expect(not bad, "detail errors in the answer after a blocked refresh: %r" % bad[:5])
        expect_eq(doc2["stale"], True, "stale of the old answer served instead")
        expect_eq(doc2["fetched_at"], doc1["fetched_at"], "fetched_at of the old answer")
        expect_eq(without_stale(doc2), without_stale(doc1), "the old answer's data")

        # The block passes; the next refresh is complete and fresh.
        fake.remove_fault(block)
        wait_until(lambda: breaker_closed(d), BLOCK_BACKOFF + 5,
                   "the breaker to close", interval=0.05)
        doc3, _, _ = movies("beijing", d, fake, timeout=30)
        expect_eq(doc3["stale"], False, "stale after the block passed")
        expect(doc3["fetched_at"] > doc1["fetched_at"],
               "fetched_at not newer after the block passed: %s then %s"
               % (doc1["fetched_at"], doc3["fetched_at"]))
        expect_eq([m["id"] for m in doc3["movies"]], [str(i) for i in bj_ids], "ids")
        for m in doc3["movies"]:
            expect_movie(m, int(m["id"]),
                         skip=("regions",) if int(m["id"]) % 10 == 7 else ())
        expect_eq(fake.count(listing_path("beijing")), 3, "listing requests")

        # No older answer: the degraded scrape is what there is.
        sh_first = max(sh_ids, key=lambda mid: movie_spec(mid)["wish"])
        fake.add_fault("^%s$" % subject_path(sh_first), "block_page")
        r = d.get("/movies?city=shanghai", timeout=30)
        doc4 = expect_answer(r, fake, "shanghai")
        expect_eq(doc4["count"], len(sh_ids), "count of the degraded answer")
        expect_eq(doc4["stale"], False, "stale of the degraded answer")
        refused = blocked_movies(doc4)
        expect(str(sh_first) in refused, "movie %d (block page) without detail_error "
               "upstream_blocked: %r" % (sh_first, refused))
        expect(len(refused) >= len(sh_ids) - 2, "only %r with detail_error upstream_blocked: "
               "the pages queued behind the block page were fetched" % refused)
        expect(fake.count_matching(r"^/subject/362") <= 3, "%d shanghai movie page requests "
               "after the block page" % fake.count_matching(r"^/subject/362"))


# ----------------------------------------------------------------------------------------
# LRU bound
# ----------------------------------------------------------------------------------------

@test
def lru_evicts_the_oldest_city():
    with scenario(flags=["--cache-max-entries", "2"]) as (fake, d):
        for city in ("beijing", "shanghai", "guangzhou"):
            movies(city, d, fake)
            expect_eq(fake.count(listing_path(city)), 1, "%s listing requests" % city)
        for city in ("guangzhou", "shanghai"):
            movies(city, d, fake)
            expect_eq(fake.count(listing_path(city)), 1,
                      "%s listing requests (should still be cached)" % city)
        movies("beijing", d, fake)
        expect_eq(fake.count(listing_path("beijing")), 2,
                  "beijing listing requests (evicted: fetched again)")


@test
def lru_keeps_the_recently_used_city():
    """Least recently used, not first in: beijing and shanghai cached, beijing read again,
    then guangzhou: shanghai is the one evicted."""
    with scenario(flags=["--cache-max-entries", "2"]) as (fake, d):
        movies("beijing", d, fake)
        movies("shanghai", d, fake)
        movies("beijing", d, fake)
        expect_eq(fake.count(listing_path("beijing")), 1, "beijing listing requests")
        movies("guangzhou", d, fake)
        movies("beijing", d, fake)
        expect_eq(fake.count(listing_path("beijing")), 1,
                  "beijing listing requests (recently used: must stay cached)")
        movies("shanghai", d, fake)
        expect_eq(fake.count(listing_path("shanghai")), 2,
                  "shanghai listing requests (least recently used: evicted)")


if __name__ == "__main__":
    run(deadline=180)
