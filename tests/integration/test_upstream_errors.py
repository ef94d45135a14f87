#!/usr/bin/env python3
"""How upstream failures map to answers: errors, blocks, timeouts, hostile bodies, and a
failing movie page inside an otherwise good scrape. Each test gets a fresh fake and daemon
(blocks start a back-off, answers are cached)."""

import re
import time

from harness import (MOVIE_KEYS, expect, expect_answer, expect_eq, expect_error,
                     expected_listing_only, expect_movie, get_in_background, get_metrics, run,
                     scenario, subject_path, test, wait_until)

LISTING = r"^/cinema/later/beijing/$"
NO_RETRY = ["--retries", "0"]


def _listing_fault(kind, flags=(), times=None, **params):
    def setup(fake):
        fake.add_fault(LISTING, kind, times=times, **params)
    return scenario(flags=list(flags), setup=setup)


def _expect_retry_after(r):
    ra = r.headers.get("retry-after")
    expect(ra is not None and re.fullmatch(r"\d+", ra.strip()) and int(ra) > 0,
           "Retry-After must be a positive number of seconds, got %r" % ra)


@test
def listing_5xx_is_upstream_error():
    for code, extra in ((500, {}), (502, {}), (503, {"retry_after": 30}), (504, {})):
        with _listing_fault(code, NO_RETRY, **extra) as (fake, d):
            r = d.get("/movies?city=beijing")
            expect_error(r, 502, "upstream_error", "upstream %d" % code)
            expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests after %d" % code)


@test
def listing_5xx_with_default_retries():
    """With the default retry settings a persistent 500 still ends in 502, in bounded time."""
    with _listing_fault(500) as (fake, d):
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing", timeout=60)
        expect_error(r, 502, "upstream_error")
        expect(time.monotonic() - t0 < 30, "took %.1fs" % (time.monotonic() - t0))
        expect(fake.count("/cinema/later/beijing/") >= 1, "listing requested")


@test
def listing_truncated_is_upstream_error():
    with _listing_fault("truncated", NO_RETRY) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 502, "upstream_error")
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests")


@test
def listing_garbage_is_upstream_error():
    with _listing_fault("garbage", NO_RETRY) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 502, "upstream_error")


@test
def listing_over_size_cap_is_upstream_error():
    """A chunked body (no Content-Length) of 4 MiB against --max-body-size 1 MiB."""
    with _listing_fault("chunked_big", NO_RETRY + ["--max-body-size", "1048576"],
                        size=4 << 20) as (fake, d):
        t0 = time.monotonic()
        expect_error(d.get("/movies?city=beijing"), 502, "upstream_error")
        expect(time.monotonic() - t0 < 10, "took %.1fs" % (time.monotonic() - t0))


@test
def listing_gzip_bomb_is_upstream_error():
    """64 MiB of zeros gzip-compressed (~64 KiB on the wire): the cap counts decoded bytes,
    and the daemon's memory never holds the decoded bomb."""
    with _listing_fault("gzip_bomb", NO_RETRY + ["--max-body-size", "1048576"],
                        size=64 << 20) as (fake, d):
        expect_error(d.get("/movies?city=beijing", timeout=30), 502, "upstream_error")
        peak = d.rss_peak_kib()
        print("    (peak RSS of moviesd: %s KiB)" % peak)
        expect(peak is None or peak < 48 * 1024,
               "peak RSS %d KiB after a 64 MiB gzip bomb: decoded bytes not capped" % (peak or 0))
        ae = [h.get("accept-encoding") for _, h in fake.headers_seen(LISTING)]
        print("    (Accept-Encoding sent: %r)" % ae)


@test
def listing_deep_nesting_is_upstream_error():
    """100000 nested <div> around a valid listing: refused, quickly."""
    with _listing_fault("deep_nesting", NO_RETRY + ["--max-body-size", str(16 << 20)],
                        depth=100000) as (fake, d):
        t0 = time.monotonic()
        expect_error(d.get("/movies?city=beijing", timeout=30), 502, "upstream_error")
        dt = time.monotonic() - t0
        expect(dt < 10, "deep nesting took %.1fs" % dt)
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests")


@test
def listing_without_anchor_is_upstream_changed():
    with _listing_fault("no_anchor", NO_RETRY) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 502, "upstream_changed")
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests")


@test
def listing_empty_is_zero_movies():
    with _listing_fault("empty_listing") as (fake, d):
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq(doc["count"], 0, "count")
        expect_eq(doc["movies"], [], "movies")
        expect_eq(doc["stale"], False, "stale")
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests")


def _expect_blocked(kind, **params):
    with _listing_fault(kind, NO_RETRY, **params) as (fake, d):
        r = d.get("/movies?city=beijing")
        expect_error(r, 503, "upstream_blocked", "%s %s" % (kind, params))
        _expect_retry_after(r)
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests after a block")
        expect_eq(fake.count("/cinema/later/beijing/"), 1, "listing requests (no retry on a block)")


@test
def blocked_403():
    _expect_blocked(403)


@test
def blocked_418():
    _expect_blocked(418)


@test
def blocked_429():
    _expect_blocked(429, retry_after=120)


@test
def blocked_redirect_to_sec():
    """302 to https://sec.douban.com/...: blocked, and the redirect is not followed."""
    _expect_blocked("redirect")


@test
def blocked_abnormal_requests_page():
    """200 "有异常请求从你的 IP 发出" page."""
    _expect_blocked("block_page")


@test
def blocked_login_bounce_page():
    """200 "登录跳转页" page (douban.h DOUBAN_BLOCKED)."""
    _expect_blocked("login_page")


@test
def hanging_listing_times_out():
    with _listing_fault("hang", ["--upstream-timeout", "2"]) as (fake, d):
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing", timeout=40)
        dt = time.monotonic() - t0
        expect_error(r, 504, "upstream_timeout")
        expect(1.5 <= dt <= 15, "504 after %.1fs (upstream timeout 2s)" % dt)


def _detail_failure(fault_for, flags=(), timeout=30):
    """Beijing with faults on some movie pages: {id: (kind, params)}. Returns (fake, doc).
    A failure is final after the fetcher's quick retries (no background attempts: those
    are tested on their own below)."""
    def setup(fake):
        for mid, (kind, params) in fault_for.items():
            fake.add_fault(r"^/subject/%d/$" % mid, kind, **params)
    with scenario(flags=["--detail-retries", "0"] + list(flags), setup=setup) as (fake, d):
        ids = fake.city_ids("beijing")
        r = d.get("/movies?city=beijing", timeout=timeout)
        doc = expect_answer(r, fake, "beijing")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids in listing order")
        return fake, doc


def _expect_detail_error(m, status):
    mid = int(m["id"])
    err = m["detail_error"]
    expect(isinstance(err, dict), "movie %s: detail_error %r" % (mid, err))
    expect_eq(sorted(err), ["code", "message", "status"], "detail_error keys of %s" % mid)
    expect(isinstance(err["code"], str) and err["code"], "detail_error.code %r" % err["code"])
    expect(isinstance(err["message"], str) and err["message"], "detail_error.message %r" % err)
    expect_eq(err["status"], status, "detail_error.status of %s" % mid)
    exp = expected_listing_only(mid)
    diffs = ["%s: expected %r, got %r" % (k, exp[k], m[k]) for k in MOVIE_KEYS
             if k != "detail_error" and m[k] != exp[k]]
    expect(not diffs, "movie %s (detail failed) differs from its listing fields:\n    %s"
           % (mid, "\n    ".join(diffs)))


@test
def one_movie_page_500_and_one_404():
    bad500, bad404 = 36000001, 36000003
    fake, doc = _detail_failure({bad500: (500, {}), bad404: (404, {})}, NO_RETRY)
    for m in doc["movies"]:
        mid = int(m["id"])
        if mid == bad500:
            _expect_detail_error(m, 500)
        elif mid == bad404:
            _expect_detail_error(m, 404)
        else:
            expect_movie(m, mid, skip=("regions",) if mid % 10 == 7 else ())


@test
def one_movie_page_500_with_default_retries():
    bad = 36000002
    fake, doc = _detail_failure({bad: (500, {})}, timeout=60)
    for m in doc["movies"]:
        if int(m["id"]) == bad:
            _expect_detail_error(m, 500)
        else:
            expect(m["detail_error"] is None, "movie %s: detail_error %r" % (m["id"], m["detail_error"]))


@test
def one_movie_page_hangs():
    """A movie page that never answers: that movie gets detail_error with status null."""
    bad = 36000005
    t0 = time.monotonic()
    fake, doc = _detail_failure({bad: ("hang", {})}, NO_RETRY + ["--upstream-timeout", "2"],
                                timeout=40)
    dt = time.monotonic() - t0
    for m in doc["movies"]:
        if int(m["id"]) == bad:
            _expect_detail_error(m, None)
        else:
            expect(m["detail_error"] is None, "movie %s: detail_error %r" % (m["id"], m["detail_error"]))
    expect(dt < 15, "answer took %.1fs" % dt)


@test
def one_movie_page_layout_changed():
    bad = 36000006
    fake, doc = _detail_failure({bad: ("no_anchor", {})}, NO_RETRY)
    for m in doc["movies"]:
        if int(m["id"]) == bad:
            _expect_detail_error(m, 200)
        else:
            expect(m["detail_error"] is None, "movie %s: detail_error %r" % (m["id"], m["detail_error"]))


SCRAPE_OUTCOMES = ("ok", "unknown_city", "upstream_error", "upstream_changed", "upstream_blocked",
                   "upstream_timeout")


def _scrapes(d):
    """moviesd_scrapes_total by outcome."""
    return {dict(labels).get("outcome"): v for (name, labels), v in get_metrics(d).items()
            if name == "moviesd_scrapes_total"}


@test
def scrape_outcomes_counted_in_metrics():
    """moviesd_scrapes_total{outcome} counts each finished city scrape once, under ok or the
    code its answer carries: not again for cached answers (an unknown city is cached too),
    once for two requests sharing a scrape, never for requests that scrape nothing (a name
    outside the city table among them). lasa is a city of the table that the fake does not
    serve: Douban's 404."""
    def setup(fake):
        fake.add_fault(r"^/cinema/later/shanghai/$", "no_anchor")
        fake.add_fault(r"^/cinema/later/guangzhou/$", 500)
        fake.add_fault(r"^/cinema/later/shenzhen/$", "hang")
        fake.add_fault(r"^/cinema/later/chengdu/$", 403)
    with scenario(flags=NO_RETRY + ["--upstream-timeout", "3"], setup=setup) as (fake, d):
        expect_eq(_scrapes(d), {o: 0 for o in SCRAPE_OUTCOMES}, "scrape outcomes at start")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_error(d.get("/movies?city=shanghai"), 502, "upstream_changed")
        expect_error(d.get("/movies?city=guangzhou"), 502, "upstream_error")
        expect_error(d.get("/movies?city=lasa"), 404, "unknown_city")
        expect_error(d.get("/movies?city=lasa"), 404, "unknown_city")
        expect_error(d.get("/movies?city=atlantis"), 404, "unknown_city")
        expect_error(d.get("/movies"), 400, "missing_city")
        expect_error(d.get("/nowhere"), 404, "not_found")
        waits = [get_in_background(d, "/movies?city=shenzhen")]
        wait_until(lambda: fake.count("/cinema/later/shenzhen/") == 1, 5, "the shenzhen listing request")
        waits.append(get_in_background(d, "/movies?city=shenzhen"))
        for t, result in waits:
            t.join(20)
            expect("r" in result, "a shenzhen request failed: %r" % result.get("e"))
            if "r" in result:
                expect_error(result["r"], 504, "upstream_timeout", "shenzhen")
        expect_eq(fake.count("/cinema/later/shenzhen/"), 1, "shenzhen listing requests")
        r = d.get("/movies?city=chengdu")
        expect_error(r, 503, "upstream_blocked")
        _expect_retry_after(r)
        want = {"ok": 1, "unknown_city": 1, "upstream_error": 1, "upstream_changed": 1,
                "upstream_blocked": 1, "upstream_timeout": 1}
        expect_eq(_scrapes(d), want, "scrape outcomes")


def _max_age(r):
    m = re.search(r"max-age=(\d+)", r.headers.get("cache-control", ""))
    expect(m, "no max-age in %r" % r.headers.get("cache-control"))
    return int(m.group(1))


@test
def failed_movie_page_is_asked_again_in_the_background():
    """A movie page answering 500 twice is asked again 2 s, then 4 s later (no quick
    retries here). Until it lands the answer shows it failed, with nothing pending, and is
    not complete; then it is complete and cached for the full TTL."""
    bad = 36000004

    def setup(fake):
        fake.add_fault(r"^/subject/%d/$" % bad, 500, times=2)
    flags = ["--retries", "0", "--detail-retries", "3", "--detail-retry-delay", "2"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        d.complete_answers = False
        wait_until(lambda: d.get("/movies?city=beijing").json()["pending"] == 0, 10,
                   "every page in once")
        r = d.get("/movies?city=beijing")
        doc = expect_answer(r, fake, "beijing")
        # The first background attempt is 2 s away; the other pages took milliseconds.
        expect_eq(fake.count(subject_path(bad)), 1, "attempts at the failing page so far")
        m = [m for m in doc["movies"] if int(m["id"]) == bad][0]
        expect_eq(m["detail_status"], "failed", "the failed movie's status")
        expect_eq(m["detail_error"]["status"], 500, "its detail_error.status")
        expect_eq(doc["complete"], False, "complete while a retry is due")
        expect(_max_age(r) <= 10, "max-age %d while a retry is due" % _max_age(r))
        wait_until(lambda: d.get("/movies?city=beijing").json()["complete"], 15,
                   "the page landing on its third attempt")
        r = d.get("/movies?city=beijing")
        doc = expect_answer(r, fake, "beijing")
        for m in doc["movies"]:
            expect_movie(m, int(m["id"]), skip=("regions",) if int(m["id"]) % 10 == 7 else ())
        starts = sorted(st for p, st, _ in fake.timeline() if p == subject_path(bad))
        expect_eq(len(starts), 3, "attempts at the failing page")
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        print("    (attempts %.2f s and %.2f s apart)" % tuple(gaps))
        expect(1.9 <= gaps[0] < 3.5 and 3.9 <= gaps[1] < 6, "back-off gaps %r" % gaps)
        expect(_max_age(r) > 60, "max-age %d of the complete answer" % _max_age(r))


@test
def movie_page_failing_past_its_retries_is_trusted_briefly():
    """Attempts spent: the answer is complete with the movie failed, and cached for 60 s at
    most instead of the listing TTL."""
    bad = 36000006

    def setup(fake):
        fake.add_fault(r"^/subject/%d/$" % bad, 500)
    flags = ["--retries", "0", "--detail-retries", "1", "--detail-retry-delay", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing", timeout=20)
        took = time.monotonic() - t0
        doc = expect_answer(r, fake, "beijing")
        expect_eq(doc["complete"], True, "complete once the attempts are spent")
        m = [m for m in doc["movies"] if int(m["id"]) == bad][0]
        _expect_detail_error(m, 500)
        expect_eq(fake.count(subject_path(bad)), 2, "attempts at the failing page")
        expect(took >= 0.9, "answered %.2f s in: before the background attempt" % took)
        expect(_max_age(r) <= 60, "max-age %d of an answer missing a movie" % _max_age(r))


if __name__ == "__main__":
    run(deadline=240)
