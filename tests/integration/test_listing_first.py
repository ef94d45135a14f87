#!/usr/bin/env python3
"""Listing-first answers: a cold city is answered once its listing is in, the movie pages
follow in the background (most wished-for first) whether or not anyone waits, the answer
says how complete it is, and `wait=details` waits for all of it.

Spacing is lowered explicitly (not off) where a test needs movie pages to trickle in slowly
enough to look at an answer in between. Every /movies request here says whether it waits
for details: the harness's default of asking for complete answers is turned off."""

import json
import os
import pty
import re
import select
import subprocess
import time

from harness import (expect, expect_answer, expect_eq, expect_error, expect_movie, get_metrics,
                     listing_path, metric, moviesd_bin, movie_spec, run, scenario, test,
                     wait_until, expected_listing_only, FAST)

SLOW = ["--min-request-interval-ms", "300", "--max-requests-per-minute", "0",
        "--max-host-connections", "1"]


def listing_first(d):
    d.complete_answers = False
    return d


def listing_served_at(fake, city):
    ends = [end for path, _, end in fake.timeline() if path == listing_path(city) and end]
    expect(ends, "the fake never answered %s's listing" % city)
    return ends[0]


def subject_order(fake):
    """Movie ids in the order their pages were requested."""
    return [int(re.match(r"^/subject/(\d+)/$", p).group(1))
            for p, _, _ in sorted(fake.timeline(), key=lambda t: t[1])
            if p.startswith("/subject/")]


def max_age(r):
    m = re.search(r"max-age=(\d+)", r.headers.get("cache-control", ""))
    expect(m, "no max-age in Cache-Control %r" % r.headers.get("cache-control"))
    return int(m.group(1))


@test
def cold_city_answered_from_its_listing():
    """The first answer comes as soon as the listing is in: every movie listed, none with
    details yet (no record cached), marked pending, a short max-age. Nobody asks again,
    yet every movie page is fetched; the next answer is complete and cacheable."""
    def setup(fake):
        fake.set_city("beijing", 12)
        fake.set_latency(100)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        r = d.get("/movies?city=beijing")
        answered = time.monotonic()
        doc = expect_answer(r, fake, "beijing")
        served = listing_served_at(fake, "beijing")
        print("    (answered %.3f s after the listing was served; %d movie pages asked by then)"
              % (answered - served, fake.count_matching(r"^/subject/")))
        # Well within one spacing (300 ms) on an idle machine; the bound leaves room for a
        # loaded one (sanitizers, parallel tests) while staying far below the 12 pages' 3.6 s.
        expect(answered - served < 1.0, "answered %.3f s after the listing" % (answered - served))
        expect_eq(doc["count"], 12, "count")
        expect_eq(doc["complete"], False, "complete")
        expect_eq(doc["pending"], 12, "pending")
        for m in doc["movies"]:
            expect_eq(m, expected_listing_only(int(m["id"]), status="pending"),
                      "movie %s before its page" % m["id"])
        expect(max_age(r) <= 10, "max-age %d of an incomplete answer" % max_age(r))
        first_etag = r.headers.get("etag")
        expect(first_etag, "no ETag on the incomplete answer")

        wait_until(lambda: fake.count_matching(r"^/subject/") == 12, 20,
                   "every movie page fetched with nobody waiting")
        wait_until(lambda: d.get("/movies?city=beijing").json()["complete"], 5,
                   "the complete answer")
        r = d.get("/movies?city=beijing")
        doc = expect_answer(r, fake, "beijing")
        expect_eq(doc["pending"], 0, "pending once complete")
        for m in doc["movies"]:
            expect_movie(m, int(m["id"]), skip=("regions",) if int(m["id"]) % 10 == 7 else ())
        expect(max_age(r) > 3000, "max-age %d of the complete answer" % max_age(r))
        expect(r.headers.get("etag") != first_etag, "the ETag did not change as details landed")
        expect_eq(fake.count(listing_path("beijing")), 1, "listing requests")


@test
def details_fill_in_wish_order():
    """Movie pages are asked for in descending wish count, listing order breaking ties."""
    def setup(fake):
        fake.set_city("beijing", 15)
    flags = ["--max-host-connections", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        doc = expect_answer(d.get("/movies?city=beijing&wait=details"), fake, "beijing")
        expect_eq(doc["complete"], True, "complete")
        ids = fake.city_ids("beijing")
        wished = sorted(ids, key=lambda mid: (-movie_spec(mid)["wish"], ids.index(mid)))
        expect(wished != ids, "the fixture's wish order is its listing order: proves nothing")
        expect_eq(subject_order(fake), wished, "order of movie page requests")


@test
def etag_changes_as_details_land():
    """Each landed movie makes a new partial answer: new ETag, fewer pending; an old ETag
    gets the new body, not 304; once complete the ETag holds and revalidates to 304."""
    def setup(fake):
        fake.set_city("beijing", 8)
        fake.set_latency(50)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        r1 = d.get("/movies?city=beijing")
        e1, p1 = r1.headers.get("etag"), r1.json()["pending"]
        wait_until(lambda: d.get("/movies?city=beijing").json()["pending"] <= p1 - 2, 10,
                   "two movies to land")
        r2 = d.get("/movies?city=beijing", headers={"If-None-Match": e1})
        expect_eq(r2.status, 200, "If-None-Match with the first ETag")
        doc2 = r2.json()
        expect(doc2["pending"] < p1, "pending did not fall: %d then %d" % (p1, doc2["pending"]))
        expect(r2.headers.get("etag") != e1, "the ETag stayed %s as movies landed" % e1)
        landed = [m for m in doc2["movies"] if m["detail_status"] == "ok"]
        expect_eq(len(landed), p1 - doc2["pending"], "movies marked ok")
        for m in landed:
            expect_movie(m, int(m["id"]), skip=("regions",) if int(m["id"]) % 10 == 7 else ())
        r3 = d.get("/movies?city=beijing&wait=details")
        expect_eq(r3.json()["complete"], True, "complete")
        r4 = d.get("/movies?city=beijing", headers={"If-None-Match": r3.headers.get("etag")})
        expect_eq(r4.status, 304, "the complete answer revalidated")


@test
def wait_details_waits_for_the_complete_answer():
    def setup(fake):
        fake.set_city("beijing", 10)
        fake.set_latency(50)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        r = d.get("/movies?city=beijing&wait=details", timeout=30)
        got = time.monotonic()
        doc = expect_answer(r, fake, "beijing")
        expect_eq((doc["complete"], doc["pending"]), (True, 0), "complete, pending")
        last = max(end for p, _, end in fake.timeline() if p.startswith("/subject/"))
        expect(got >= last, "answered before the last movie page was served")
        expect_eq(fake.count_matching(r"^/subject/"), 10, "movie page requests")


@test
def wait_details_past_the_deadline_gets_the_partial_answer():
    """The deadline passes with movie pages still queued: the answer is the incomplete one,
    200, never an error once the listing is in."""
    def setup(fake):
        fake.set_city("beijing", 20)
    flags = SLOW + ["--request-deadline", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        listing_first(d)
        t0 = time.monotonic()
        r = d.get("/movies?city=beijing&wait=details", timeout=10)
        took = time.monotonic() - t0
        doc = expect_answer(r, fake, "beijing")
        expect_eq(doc["complete"], False, "complete")
        expect(0 < doc["pending"] < 20, "pending %d after a second of 300 ms spacing"
               % doc["pending"])
        expect(0.9 < took < 3, "answered after %.2f s, deadline 1 s" % took)


@test
def bad_wait_value_is_400():
    with scenario() as (fake, d):
        listing_first(d)
        for value in ("listing", "", "DETAILS", "details%00"):
            r = d.get("/movies?city=beijing&wait=%s" % value)
            expect_error(r, 400, "invalid_wait", "wait=%s" % value)
        expect_eq(fake.total, 0, "upstream requests")


@test
def shared_records_fill_a_new_city_at_once():
    """Movies another city already fetched come with their details in the first answer of a
    cold city; only the others are pending."""
    ids_a = list(range(37000000, 37000010))
    ids_b = list(range(37000005, 37000015))

    def setup(fake):
        fake.set_city("beijing", ids_a)
        fake.set_city("shanghai", ids_b)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        expect_eq(d.get("/movies?city=beijing&wait=details").json()["complete"], True,
                  "beijing complete")
        doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        status = {int(m["id"]): m["detail_status"] for m in doc["movies"]}
        expect_eq(sorted(k for k, v in status.items() if v == "ok"), ids_b[:5], "movies with details")
        expect_eq(sorted(k for k, v in status.items() if v == "pending"), ids_b[5:], "pending")
        expect_eq(doc["pending"], 5, "pending")
        for m in doc["movies"]:
            if m["detail_status"] == "ok":
                expect_movie(m, int(m["id"]), skip=("regions",) if int(m["id"]) % 10 == 7 else ())


@test
def a_waited_listing_jumps_the_movie_pages():
    """While one city's 30 movie pages trickle in, a second city's listing goes next (after
    the page under way), so its client waits about one spacing, not 30."""
    def setup(fake):
        fake.set_city("beijing", 30)
        fake.set_city("shanghai", 5)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        wait_until(lambda: fake.count_matching(r"^/subject/") >= 2, 10, "movie pages under way")
        t0 = time.monotonic()
        doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        took = time.monotonic() - t0
        # 27 pages were still queued, 300 ms apart: behind them it would wait over 8 s.
        expect(took < 2.0, "the second city's listing waited %.2f s behind movie pages" % took)
        before = [p for p, s, _ in sorted(fake.timeline(), key=lambda t: t[1])
                  if s < listing_served_at(fake, "shanghai")]
        expect(sum(p.startswith("/subject/") for p in before) <= 5,
               "%d movie pages went before the waited listing" % len(before))
        expect_eq(doc["complete"], False, "shanghai complete")


@test
def budget_metrics():
    """Mid-scrape, /metrics shows the queue by kind, the pending movie pages, the starts of
    the last minute (equal to what the fake received) and the listing's queue wait."""
    def setup(fake):
        fake.set_city("beijing", 20)
    with scenario(flags=SLOW, setup=setup) as (fake, d):
        listing_first(d)
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        before = fake.total
        m = get_metrics(d)
        after = fake.total
        queued = metric(m, "moviesd_upstream_queued", queue="details")
        pending = metric(m, "moviesd_details_pending")
        starts = metric(m, "moviesd_upstream_starts_last_minute")
        print("    (details queued %s, pending %s, starts %s, fake saw %d-%d)"
              % (queued, pending, starts, before, after))
        # Each page that started has left the queue; at most two are in flight.
        expect(queued is not None and 20 - after - 1 <= queued <= 20 - (before - 1),
               "details queued %r with %d-%d requests seen" % (queued, before, after))
        expect(pending is not None and queued <= pending <= queued + 2,
               "details pending %r, queued %r" % (pending, queued))
        expect(starts is not None and before <= starts <= after + 1,
               "starts in the last minute %r, fake saw %d-%d" % (starts, before, after))
        expect_eq(metric(m, "moviesd_upstream_queued", queue="listing"), 0, "listings queued")
        expect_eq(metric(m, "moviesd_upstream_queued", queue="prefetch"), 0, "prefetch queued")
        expect_eq(metric(m, "moviesd_listing_queue_wait_seconds_count"), 1, "listing waits")
        expect_eq(metric(m, "moviesd_cache_total", result="miss"), 1, "cache misses")
        d.get("/movies?city=beijing")
        expect_eq(metric(get_metrics(d), "moviesd_cache_total", result="partial"), 1,
                  "partial answers")
        wait_until(lambda: metric(get_metrics(d), "moviesd_details_pending") == 0, 20,
                   "no movie page pending")


def _fetch_with_pty(fake, city):
    """Runs `moviesd fetch` with stderr on a terminal: (exit status, stdout, stderr text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([moviesd_bin(), "fetch", city, "--upstream", fake.base_url] + FAST +
                         ["--min-request-interval-ms", "50"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                err += chunk
            elif p.poll() is not None:
                break
        out = p.stdout.read()
        rc = p.wait(5)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return rc, out, err.decode("utf-8", "replace")


@test
def fetch_shows_progress_on_a_terminal_only():
    def setup(fake):
        fake.set_city("beijing", 6)
    with scenario(setup=setup) as (fake, d):
        rc, out, err = _fetch_with_pty(fake, "beijing")
        expect_eq(rc, 0, "exit status; stderr %r" % err)
        doc = json.loads(out)
        expect_eq((doc["complete"], doc["pending"], doc["count"]), (True, 0, 6), "the document")
        shown = re.findall(r"beijing: (\d+)/6 movie pages", err)
        expect(shown and shown[-1] == "6", "progress on the terminal: %r" % err)
        expect_eq([int(n) for n in shown], sorted(int(n) for n in shown), "progress order")
        p = subprocess.run([moviesd_bin(), "fetch", "beijing", "--upstream", fake.base_url] + FAST,
                           capture_output=True, timeout=30)
        expect_eq(p.returncode, 0, "exit status without a terminal")
        expect(b"movie pages" not in p.stderr, "progress without a terminal: %r" % p.stderr)
        expect_eq(json.loads(p.stdout)["complete"], True, "complete without a terminal")


if __name__ == "__main__":
    run(deadline=240)
