#!/usr/bin/env python3
"""How upstream failures map to answers: errors, blocks, timeouts, hostile bodies, and a
failing movie page inside an otherwise good scrape. Each test gets a fresh fake and daemon
(blocks start a back-off, answers are cached)."""

import re
import time

from harness import (MOVIE_KEYS, expect, expect_answer, expect_eq, expect_error,
                     expected_listing_only, expect_movie, run, scenario, test)

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
    """200 "登录跳转页" page (STRUCTURE.md section 4, douban.h DOUBAN_BLOCKED)."""
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
    """Beijing with faults on some movie pages: {id: (kind, params)}. Returns (fake, doc)."""
    def setup(fake):
        for mid, (kind, params) in fault_for.items():
            fake.add_fault(r"^/subject/%d/$" % mid, kind, **params)
    with scenario(flags=list(flags), setup=setup) as (fake, d):
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


if __name__ == "__main__":
    run(deadline=240)
