#!/usr/bin/env python3
"""The breaker: after any sign of a block (403, 429, the "有异常请求" page, a redirect to
sec.douban.com) no upstream request at all for block_backoff seconds; cached cities still
served; /readyz (still 200: cached answers are served) and /metrics tell; block_backoff 0
turns it off. And the request deadline."""

import re
import time

from harness import (breaker_closed, expect, expect_answer, expect_eq, expect_error, get_metrics,
                     listing_path, metric, readyz_breaker, run, scenario, test, wait_until)

BACKOFF = 600



def retry_after(r):
    ra = r.headers.get("retry-after")
    expect(ra is not None and re.fullmatch(r"\d+", ra.strip()),
           "Retry-After missing or not a number of seconds: %r" % ra)
    return int(ra)


def expect_ready(d):
    """/readyz is 200 ready with the breaker closed."""
    expect_eq(readyz_breaker(d), {"open": False}, "/readyz breaker while closed")


def expect_ready_while_open(d, most):
    """/readyz is 200 ready, the breaker open for at most `most` more seconds; returns them."""
    b = readyz_breaker(d)
    expect_eq(b["open"], True, "/readyz breaker.open while the breaker is open")
    expect(b["retry_after"] <= most, "/readyz breaker.retry_after %d, at most %d expected"
           % (b["retry_after"], most))
    return b["retry_after"]


def breaker_open(d):
    return metric(get_metrics(d), "moviesd_breaker_open")


def _block(kind, **params):
    """shanghai is cached; beijing's listing answers with kind: 503 upstream_blocked with a
    Retry-After of about block_backoff; then cold cities get 503 without upstream traffic,
    shanghai is still served, /readyz stays 200 and says the breaker is open for about
    block_backoff, moviesd_breaker_open is 1 and moviesd_breaker_trips_total 1."""
    flags = ["--block-backoff", str(BACKOFF), "--retries", "0"]

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), kind, **params)
    with scenario(flags=flags, setup=setup) as (fake, d):
        expect_ready(d)
        expect_eq(breaker_open(d), 0, "moviesd_breaker_open before the block")
        cached = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")

        r = d.get("/movies?city=beijing")
        expect_error(r, 503, "upstream_blocked", "listing answering %s" % kind)
        ra = retry_after(r)
        expect(BACKOFF - 10 <= ra <= BACKOFF,
               "Retry-After %d after a block (--block-backoff %d)" % (ra, BACKOFF))
        expect_eq(fake.count(listing_path("beijing")), 1, "beijing listing requests")

        total = fake.total
        for city in ("guangzhou", "shenzhen", "beijing"):
            r = d.get("/movies?city=%s" % city)
            expect_error(r, 503, "upstream_blocked", "%s while the breaker is open" % city)
            ra = retry_after(r)
            expect(0 < ra <= BACKOFF, "Retry-After %d while the breaker is open" % ra)
        expect_eq(fake.total, total, "upstream requests while the breaker is open")

        r = d.get("/movies?city=shanghai")
        doc = expect_answer(r, fake, "shanghai")
        expect_eq(doc["movies"], cached["movies"], "cached city's movies while the breaker is open")

        left = expect_ready_while_open(d, BACKOFF)
        expect(left >= BACKOFF - 10, "/readyz breaker.retry_after %d after a block "
               "(--block-backoff %d)" % (left, BACKOFF))
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_breaker_open"), 1, "moviesd_breaker_open while the breaker is open")
        expect_eq(metric(m, "moviesd_breaker_trips_total"), 1,
                  "moviesd_breaker_trips_total after one block (refusals while open are no trips)")
        expect_eq(fake.total, total, "upstream requests in all")


@test
def blocked_by_403():
    _block(403)


@test
def blocked_by_429():
    _block(429)


@test
def blocked_by_abnormal_requests_page():
    _block("block_page")


@test
def blocked_by_redirect_to_sec_douban():
    _block("redirect")


def _cached_past_ttl(flags):
    """shanghai cached, beijing blocked, shanghai's TTL passes: shanghai is answered 200 with
    stale true and its old fetched_at, and no request reaches the upstream."""
    flags = ["--listing-ttl", "1", "--block-backoff", str(BACKOFF), "--retries", "0"] + flags

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), 403)
    with scenario(flags=flags, setup=setup) as (fake, d):
        doc1 = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        t1 = time.monotonic()
        expect_error(d.get("/movies?city=beijing"), 503, "upstream_blocked")
        total = fake.total
        wait_until(lambda: time.monotonic() >= t1 + 1.2, 3, "shanghai's TTL to pass")
        for _ in range(2):
            doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
            expect_eq(doc["stale"], True, "stale of a city past its TTL while the breaker is open")
            expect_eq(doc["fetched_at"], doc1["fetched_at"], "fetched_at of the stale answer")
            expect_eq(doc["movies"], doc1["movies"], "movies of the stale answer")
        wait_until(lambda: metric(get_metrics(d), "moviesd_scrapes_in_flight") == 0, 5,
                   "the refresh to end")
        expect_eq(fake.total, total, "upstream requests while the breaker is open")


@test
def cached_city_past_ttl_served_stale_while_open():
    _cached_past_ttl([])


@test
def cached_city_past_ttl_served_stale_while_open_without_swr():
    _cached_past_ttl(["--stale-while-revalidate", "0"])


@test
def breaker_closes_after_backoff():
    """--block-backoff 1: /readyz says the breaker closed after about a second, and
    requests flow."""
    flags = ["--block-backoff", "1", "--retries", "0"]

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), 403, times=1)
    with scenario(flags=flags, setup=setup) as (fake, d):
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing")
        expect_error(r, 503, "upstream_blocked")
        expect(1 <= retry_after(r) <= 2, "Retry-After %s with --block-backoff 1" % retry_after(r))
        expect_ready_while_open(d, 2)
        wait_until(lambda: breaker_closed(d), 5, "/readyz: breaker closed after the backoff",
                   interval=0.05)
        dt = time.monotonic() - t0
        expect(dt >= 0.8, "breaker closed after %.2f s (--block-backoff 1)" % dt)
        expect_eq(breaker_open(d), 0, "moviesd_breaker_open after the backoff")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq(fake.count(listing_path("beijing")), 2, "beijing listing requests")
        expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        expect_eq(fake.count(listing_path("shanghai")), 1, "shanghai listing requests")


@test
def backoff_doubles_while_blocks_repeat():
    """A second block with no success in between doubles the pause (README: doubled on each
    repeat)."""
    flags = ["--block-backoff", "1", "--block-backoff-max", "100", "--retries", "0"]

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), 403)
    with scenario(flags=flags, setup=setup) as (fake, d):
        r = d.get("/movies?city=beijing")
        expect_error(r, 503, "upstream_blocked")
        expect_eq(retry_after(r), 1, "Retry-After of the first block")
        wait_until(lambda: breaker_closed(d), 5, "the breaker to close", interval=0.05)
        r = d.get("/movies?city=beijing")
        expect_error(r, 503, "upstream_blocked")
        expect_eq(fake.count(listing_path("beijing")), 2, "beijing listing requests")
        expect_eq(retry_after(r), 2, "Retry-After of the repeated block")
        expect_eq(metric(get_metrics(d), "moviesd_breaker_trips_total"), 2,
                  "moviesd_breaker_trips_total after two blocks")


def wait_ready(d, timeout, what):
    """Polls /readyz until it says the breaker closed; returns the monotonic time."""
    wait_until(lambda: breaker_closed(d), timeout, what, interval=0.05)
    return time.monotonic()


def block_beijing(fake, d, kind, what, **params):
    """Makes beijing's listing answer with kind and asks for beijing: 503 upstream_blocked.
    Returns (Retry-After of the answer, moviesd_breaker_remaining_seconds read right after,
    monotonic time just before the request)."""
    f = fake.add_fault("^%s$" % listing_path("beijing"), kind, **params)
    t0 = time.monotonic()
    r = d.get("/movies?city=beijing")
    remaining = metric(get_metrics(d), "moviesd_breaker_remaining_seconds")
    fake.remove_fault(f)
    expect_error(r, 503, "upstream_blocked", what)
    return retry_after(r), remaining, t0


@test
def backoff_doubles_on_repeated_block_pages_and_resets_after_a_usable_page():
    """The 200 "有异常请求" page is a block like a 403: seen twice in a row (the second
    time once the first pause is over) the pause doubles, 1 s then 2 s. The page is an
    HTTP 200, and a 200 must not count as the success that stops the doubling: only a
    usable page, fetched after the block, does. After one (shanghai's listing and movie
    pages, once the pause is over) a new block starts again at 1 s."""
    flags = ["--block-backoff", "1", "--block-backoff-max", "100", "--retries", "0"]
    with scenario(flags=flags) as (fake, d):
        ra, left, _ = block_beijing(fake, d, "block_page", "first block page")
        expect_eq(ra, 1, "Retry-After of the first block page")
        expect_eq(left, 1, "moviesd_breaker_remaining_seconds after the first block page")
        wait_ready(d, 5, "the breaker to close after the first block")

        ra, left, t0 = block_beijing(fake, d, "block_page", "repeated block page")
        expect_eq(ra, 2, "Retry-After of the repeated block page (no usable page in between: "
                  "the 1 s pause must double)")
        expect_eq(left, 2, "moviesd_breaker_remaining_seconds after the repeated block page")
        t_open = wait_ready(d, 6, "the breaker to close after the repeated block")
        expect(t_open - t0 >= 1.9, "breaker closed %.2f s after a repeated block (2 s pause)"
               % (t_open - t0))
        expect_eq(fake.count(listing_path("beijing")), 2, "beijing listing requests")

        # A usable listing and movie pages, fetched after the block: the doubling is over.
        doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        bad = [(m["id"], m["detail_error"]) for m in doc["movies"] if m["detail_error"]]
        expect(not bad, "shanghai after the pause: detail errors %r" % bad)

        ra, left, _ = block_beijing(fake, d, "block_page", "block page after a usable page")
        expect_eq(ra, 1, "Retry-After of a block after a usable page (the pause starts again "
                  "at --block-backoff)")
        expect_eq(fake.count(listing_path("beijing")), 3, "beijing listing requests")


@test
def site_retry_after_longer_than_the_backoff_wins():
    """A 429 with Retry-After: 5 and --block-backoff 1: the breaker stays open ~5 s, not
    1 s, and the 503 tells the client so (Retry-After >= 4)."""
    flags = ["--block-backoff", "1", "--block-backoff-max", "100", "--retries", "0"]
    with scenario(flags=flags) as (fake, d):
        ra, left, t0 = block_beijing(fake, d, 429, "429 with Retry-After: 5", retry_after=5)
        expect(4 <= ra <= 5, "Retry-After %d on the 503 after the site's 429 with Retry-After: "
               "5 (--block-backoff 1): the site's longer pause must win" % ra)
        expect(left is not None and left >= 4,
               "moviesd_breaker_remaining_seconds %r after a 429 with Retry-After: 5" % left)
        total = fake.total
        # Past --block-backoff 1 the breaker is still open: cold cities get 503 at once.
        wait_until(lambda: time.monotonic() >= t0 + 2.0, 4, "2 s to pass", interval=0.05)
        expect_ready_while_open(d, 4)
        r = d.get("/movies?city=guangzhou")
        expect_error(r, 503, "upstream_blocked", "cold city 2 s into a 5 s pause")
        ra2 = retry_after(r)
        expect(2 <= ra2 <= 4, "Retry-After %d 2 s into a 5 s pause" % ra2)
        expect_eq(fake.total, total, "upstream requests while the breaker is open")
        t_open = wait_ready(d, 8, "the breaker to close")
        print("    (breaker closed %.2f s after the 429)" % (t_open - t0))
        expect(t_open - t0 >= 4.5, "breaker closed %.2f s after a 429 with Retry-After: 5"
               % (t_open - t0))
        expect_answer(d.get("/movies?city=guangzhou"), fake, "guangzhou")


@test
def backoff_zero_turns_the_breaker_off():
    flags = ["--block-backoff", "0", "--retries", "0"]

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), 403)
    with scenario(flags=flags, setup=setup) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 503, "upstream_blocked")
        expect_ready(d)
        expect_eq(breaker_open(d), 0, "moviesd_breaker_open with --block-backoff 0")
        expect_eq(metric(get_metrics(d), "moviesd_breaker_trips_total"), 0,
                  "moviesd_breaker_trips_total with --block-backoff 0")
        expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        expect_eq(fake.count(listing_path("shanghai")), 1, "shanghai listing requests")
        expect_error(d.get("/movies?city=beijing"), 503, "upstream_blocked")
        expect_eq(fake.count(listing_path("beijing")), 2, "beijing listing requests")


@test
def request_deadline():
    """--request-deadline 2 with a hanging upstream and --upstream-timeout 60: 504 within
    about 2 s. (--drain-timeout 1: the hanging scrape must not hold up the SIGTERM at the
    end for the default 10 s.)"""
    flags = ["--request-deadline", "2", "--upstream-timeout", "60", "--drain-timeout", "1"]

    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "hang")
    with scenario(flags=flags, setup=setup) as (fake, d):
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing", timeout=30)
        dt = time.monotonic() - t0
        expect_error(r, 504, "upstream_timeout")
        print("    (504 after %.2f s)" % dt)
        expect(1.9 <= dt <= 4.0, "504 after %.2f s (--request-deadline 2)" % dt)


if __name__ == "__main__":
    run(deadline=180)
