#!/usr/bin/env python3
"""Politeness towards the upstream: the per-host connection cap, the spacing between
request starts, the per-minute window, 0 turning a limit off, and retries (5xx and timeouts
retried, Retry-After honoured, 404 not retried, a bounded number of attempts).

The fake records when every request starts and ends (fake.timeline()) and the peak number
in flight; those are what is asserted, not the daemon's own account."""

import email.utils
import time

from harness import (TestFailure, expect, expect_answer, expect_eq, get_in_background,
                     get_metrics, metric, run, scenario, test, wait_until)

LISTING = "/cinema/later/beijing/"


def subject(mid):
    return "/subject/%d/" % mid


def starts(fake):
    return sorted(s for _, s, _ in fake.timeline())


def _peak(flags, movies=40, latency_ms=100):
    """Scrapes a city of `movies` movies; returns (fake peak in flight, document)."""
    def setup(fake):
        fake.set_city("beijing", movies)
        fake.set_latency(latency_ms)
    with scenario(flags=flags, setup=setup) as (fake, d):
        doc = expect_answer(d.get("/movies?city=beijing", timeout=60), fake, "beijing")
        expect_eq(doc["count"], movies, "count")
        bad = [(m["id"], m["detail_error"]) for m in doc["movies"] if m["detail_error"]]
        expect(not bad, "detail errors: %r" % bad)
        expect_eq(fake.count_matching(r"^/subject/"), movies, "movie page requests")
        return fake.peak_in_flight, doc


# ----------------------------------------------------------------------------------------
# Connections
# ----------------------------------------------------------------------------------------

@test
def host_connection_cap():
    peak, _ = _peak(["--max-host-connections", "3", "--max-upstream-connections", "16"])
    print("    (peak in flight with --max-host-connections 3: %d)" % peak)
    expect(peak <= 3, "peak in-flight upstream requests %d exceeds --max-host-connections 3"
           % peak)
    expect(peak >= 2, "peak in flight %d: movie pages not fetched in parallel" % peak)


@test
def host_connection_cap_zero_is_off():
    """--max-host-connections 0: only --max-upstream-connections 16 bounds the parallelism."""
    peak, _ = _peak(["--max-host-connections", "0", "--max-upstream-connections", "16"])
    print("    (peak in flight with --max-host-connections 0: %d)" % peak)
    expect(peak > 4, "peak in flight %d with --max-host-connections 0: the limit is not off "
           "(4 is the default)" % peak)
    expect(peak <= 16, "peak in flight %d exceeds --max-upstream-connections 16" % peak)


# ----------------------------------------------------------------------------------------
# Spacing and the per-minute window
# ----------------------------------------------------------------------------------------

@test
def spacing_between_request_starts():
    """--min-request-interval-ms 150 with 4 connections allowed: starts are >= ~150 ms apart
    (140 ms allowed for scheduling on the fake's side), even though connections are free."""
    flags = ["--min-request-interval-ms", "150", "--max-requests-per-minute", "0",
             "--max-host-connections", "4"]

    def setup(fake):
        fake.set_latency(200)
    with scenario(flags=flags, fast=False, setup=setup) as (fake, d):
        expect_answer(d.get("/movies?city=beijing", timeout=60), fake, "beijing")
        s = starts(fake)
        expect_eq(len(s), 13, "upstream requests")
        gaps = [b - a for a, b in zip(s, s[1:])]
        print("    (gaps between starts: min %.0f ms, max %.0f ms)"
              % (1000 * min(gaps), 1000 * max(gaps)))
        expect(min(gaps) >= 0.140, "two upstream requests started %.0f ms apart "
               "(--min-request-interval-ms 150); gaps in ms: %s"
               % (1000 * min(gaps), [round(1000 * g) for g in gaps]))


@test
def per_minute_window():
    """--max-requests-per-minute 4, a city of 5 movies (6 requests): the first 4 start at
    once, then nothing starts for the rest of the minute: the other requests wait in the
    queue (/metrics) and the client's request is still pending. Not waited out: the daemon
    is stopped after a few seconds (--drain-timeout 0)."""
    flags = ["--max-requests-per-minute", "4", "--min-request-interval-ms", "0",
             "--max-host-connections", "4", "--drain-timeout", "0"]

    def setup(fake):
        fake.set_city("beijing", 5)
    with scenario(flags=flags, fast=False, setup=setup) as (fake, d):
        t, result = get_in_background(d, "/movies?city=beijing", timeout=60)
        wait_until(lambda: fake.total >= 4, 5, "the first 4 upstream requests")
        s = starts(fake)
        expect(s[3] - s[0] < 1.0, "the first 4 requests did not start at once: %s"
               % [round(x - s[0], 3) for x in s])
        # Nothing more may start within the minute; watch for 3 s.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if fake.total > 4:
                raise TestFailure("request %d started %.2f s after the first with "
                                  "--max-requests-per-minute 4"
                                  % (fake.total, starts(fake)[4] - s[0]))
            time.sleep(0.05)
        queued = metric(get_metrics(d), "moviesd_upstream_queue_length")
        print("    (moviesd_upstream_queue_length: %s)" % queued)
        expect(queued is not None and queued > 0,
               "moviesd_upstream_queue_length %r: the waiting requests are not queued" % queued)
        expect(t.is_alive() and not result, "the client's request is not pending: %r" % (result,))
        expect_eq(fake.total, 4, "upstream requests")
        rc = d.stop(10)
        expect_eq(rc, 0, "exit status after SIGTERM")
        t.join(10)
        expect(result, "the waiting client got no answer after the daemon stopped")


# ----------------------------------------------------------------------------------------
# Order: listings before movie pages
# ----------------------------------------------------------------------------------------

@test
def listings_go_before_movie_pages():
    """One connection to the host (--max-host-connections 1), 100 ms a page: city A's 40
    movie pages take ~4 s. City B, asked for once A's listing and a couple of its pages are
    done, must not wait behind A's remaining pages: its listing starts as soon as the page
    under way ends (at most 1-2 more of A's pages start first), well before A's last page.
    A and B share no movies (set_city with distinct ids)."""
    flags = ["--max-requests-per-minute", "0", "--min-request-interval-ms", "0",
             "--max-host-connections", "1"]
    a_ids = list(range(36300000, 36300040))
    b_ids = list(range(36400000, 36400005))
    a_listing, b_listing = "/cinema/later/beijing/", "/cinema/later/shanghai/"

    def setup(fake):
        fake.set_city("beijing", a_ids)
        fake.set_city("shanghai", b_ids)
        fake.set_latency(100)
    with scenario(flags=flags, fast=False, setup=setup) as (fake, d):
        ta, result_a = get_in_background(d, "/movies?city=beijing", timeout=60)
        wait_until(lambda: fake.count(a_listing) == 1 and fake.count_matching(r"^/subject/363")
                   >= 3, 10, "A's listing and a couple of its movie pages")
        t_b = time.monotonic()
        tb, result_b = get_in_background(d, "/movies?city=shanghai", timeout=60)
        ta.join(60)
        tb.join(60)
        for city, n, result in (("beijing", 40, result_a), ("shanghai", 5, result_b)):
            expect("r" in result, "request for %s failed: %r" % (city, result.get("e")))
            doc = expect_answer(result["r"], fake, city)
            expect_eq(doc["count"], n, "%s count" % city)
            bad = [(m["id"], m["detail_error"]) for m in doc["movies"] if m["detail_error"]]
            expect(not bad, "%s detail errors: %r" % (city, bad))
        tl = fake.timeline()
        b_start = [s for p, s, _ in tl if p == b_listing]
        expect_eq(len(b_start), 1, "B's listing requests")
        b_start = b_start[0]
        a_pages = sorted(s for p, s, _ in tl if p.startswith("/subject/363"))
        expect_eq(len(a_pages), 40, "A's movie page requests")
        between = [s for s in a_pages if t_b <= s < b_start]
        after = [s for s in a_pages if s > b_start]
        print("    (B's listing started %.2f s after B was asked; %d of A's pages started in "
              "between, %d after)" % (b_start - t_b, len(between), len(after)))
        expect(b_start < a_pages[-1], "B's listing started after A's last movie page (%.2f s "
               "later): listings do not go before movie pages" % (b_start - a_pages[-1]))
        expect(len(between) <= 2, "%d of A's movie pages started between B's request and B's "
               "listing (at most 2 expected: B's listing should go first)" % len(between))
        expect(len(after) >= 30, "only %d of A's movie pages started after B's listing"
               % len(after))


# ----------------------------------------------------------------------------------------
# Retries
# ----------------------------------------------------------------------------------------

def _scrape(setup, flags=(), timeout=60):
    """Scrapes beijing with setup(fake) applied; returns (fake, doc, movies by id). The
    fetcher's quick retries are what is counted: no background attempts."""
    with scenario(flags=["--detail-retries", "0"] + list(flags), setup=setup) as (fake, d):
        doc = expect_answer(d.get("/movies?city=beijing", timeout=timeout), fake, "beijing")
        return fake, doc, {int(m["id"]): m for m in doc["movies"]}


def _others_ok(by_id, bad):
    for mid, m in by_id.items():
        if mid != bad:
            expect(m["detail_error"] is None, "movie %s: %r" % (mid, m["detail_error"]))


BAD = 36000002


@test
def movie_page_503_once_is_retried():
    fake, doc, by_id = _scrape(lambda f: f.add_fault("^%s$" % subject(BAD), 503, times=1))
    expect_eq(by_id[BAD]["detail_error"], None, "detail_error after a retried 503")
    expect_eq(fake.count(subject(BAD)), 2, "requests of the page that failed once")
    _others_ok(by_id, BAD)


@test
def listing_503_once_is_retried():
    fake, doc, by_id = _scrape(lambda f: f.add_fault("^%s$" % LISTING, 503, times=1))
    expect_eq(fake.count(LISTING), 2, "listing requests")
    expect_eq(doc["count"], 12, "count")
    _others_ok(by_id, None)


@test
def movie_page_timeout_once_is_retried():
    fake, doc, by_id = _scrape(lambda f: f.add_fault("^%s$" % subject(BAD), "hang", times=1),
                               ["--upstream-timeout", "1"])
    expect_eq(by_id[BAD]["detail_error"], None, "detail_error after a retried timeout")
    expect_eq(fake.count(subject(BAD)), 2, "requests of the page that hung once")


@test
def retry_after_is_honoured():
    """503 with Retry-After: 2 (longer than the first exponential backoff, <= 1 s, so that
    honouring it is what is measured): the retry starts >= 2 s after the 503 was sent."""
    fake, doc, by_id = _scrape(
        lambda f: f.add_fault("^%s$" % subject(BAD), 503, times=1, retry_after=2))
    expect_eq(by_id[BAD]["detail_error"], None, "detail_error after a retried 503")
    tl = sorted((s, e) for p, s, e in fake.timeline() if p == subject(BAD))
    expect_eq(len(tl), 2, "requests of the page")
    wait = tl[1][0] - tl[0][1]
    print("    (retry started %.2f s after the 503)" % wait)
    expect(wait >= 1.95, "retry started %.2f s after a 503 with Retry-After: 2" % wait)


@test
def retry_after_http_date_is_honoured():
    """503 with Retry-After as an HTTP date about 3 s ahead (the header has 1 s resolution):
    the retry starts >= 1.5 s after the 503 (the date was parsed: the exponential backoff
    alone waits < 1 s) and not much later than the date (it is not taken for a long pause)."""
    with scenario() as (fake, d):
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        fake.add_fault("^%s$" % subject(BAD), 503, times=1, retry_after=when)
        doc = expect_answer(d.get("/movies?city=beijing", timeout=60), fake, "beijing")
        by_id = {int(m["id"]): m for m in doc["movies"]}
        expect_eq(by_id[BAD]["detail_error"], None,
                  "detail_error after a 503 with Retry-After: %s" % when)
        tl = sorted((s, e) for p, s, e in fake.timeline() if p == subject(BAD))
        expect_eq(len(tl), 2, "requests of the page")
        wait = tl[1][0] - tl[0][1]
        print("    (Retry-After: %s; retry started %.2f s after the 503)" % (when, wait))
        expect(wait >= 1.5, "retry started %.2f s after a 503 with Retry-After: %s (about 3 s "
               "ahead)" % (wait, when))
        expect(wait <= 4.5, "retry started %.2f s after a 503 with Retry-After: %s (about 3 s "
               "ahead)" % (wait, when))
        _others_ok(by_id, BAD)


@test
def movie_page_404_is_not_retried():
    fake, doc, by_id = _scrape(lambda f: f.add_fault("^%s$" % subject(BAD), 404))
    expect_eq(fake.count(subject(BAD)), 1, "requests of a 404 page")
    err = by_id[BAD]["detail_error"]
    expect(isinstance(err, dict), "detail_error %r" % err)
    expect_eq(err.get("code"), "not_found", "detail_error.code")
    expect_eq(err.get("status"), 404, "detail_error.status")
    _others_ok(by_id, BAD)


@test
def movie_page_500_every_time_gives_up_after_retries():
    fake, doc, by_id = _scrape(lambda f: f.add_fault("^%s$" % subject(BAD), 500),
                               ["--retries", "2"])
    expect_eq(fake.count(subject(BAD)), 3, "requests of a page failing with 500 (--retries 2)")
    err = by_id[BAD]["detail_error"]
    expect(isinstance(err, dict), "detail_error %r" % err)
    expect_eq(err.get("code"), "upstream_error", "detail_error.code")
    expect_eq(err.get("status"), 500, "detail_error.status")
    _others_ok(by_id, BAD)


@test
def scrapes_nobody_waits_for_leave_the_queue():
    """A city whose clients all gave up before its listing was requested is dropped from the
    queue; one whose listing went out goes on and fills the cache (its client, asking for
    details, gets the listing's answer at the deadline)."""
    flags = ["--max-requests-per-minute", "1", "--min-request-interval-ms", "0",
             "--request-deadline", "1"]
    with scenario(flags, fast=False) as (fake, d):
        # Past the deadline a client waiting for details gets what the listing gave.
        r = d.get("/movies?city=beijing")
        expect_eq(r.status, 200, "beijing: listing in, pages queued")
        expect_eq(r.json()["complete"], False, "beijing: the answer says it is incomplete")
        expect_eq(d.get("/movies?city=shanghai").status, 504, "shanghai: listing never sent")
        expect_eq(d.get("/movies?city=wuhan").status, 504, "wuhan: listing never sent")
        wait_until(lambda: metric(get_metrics(d), "moviesd_scrapes_in_flight") == 1, 5,
                   "only beijing's scrape left")
        expect_eq(fake.count("/cinema/later/shanghai/") + fake.count("/cinema/later/wuhan/"), 0,
                  "abandoned listings never requested")
        expect_eq(fake.count("/cinema/later/beijing/"), 1)


if __name__ == "__main__":
    run(deadline=180)
