#!/usr/bin/env python3
"""Prefetch: prefetch_cities are scraped at start and refreshed before their listing TTL
runs out, turns spread evenly over the TTL; prefetch takes at most half of the per-minute
budget; movie pages of cities people ask for go before prefetch's, listings a client waits
for before both. What is asserted is the fake's record of requests."""

import os
import signal
import time

from harness import (TempDir, expect, expect_answer, expect_eq, get_metrics, listing_path, metric,
                     run, scenario, test, wait_until)


def ids(base, n):
    return list(range(base, base + n))


def starts_of(fake, prefix):
    return sorted(s for p, s, _ in fake.timeline() if p.startswith(prefix))


def order(fake):
    return [p for p, _, _ in sorted(fake.timeline(), key=lambda t: t[1])]


@test
def prefetch_cities_are_ready_before_anyone_asks():
    def setup(fake):
        fake.set_city("beijing", ids(39000000, 8))
        fake.set_city("shanghai", ids(39001000, 8))
    flags = ["--prefetch-cities", "beijing, shanghai"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        d.complete_answers = False
        wait_until(lambda: metric(get_metrics(d), "moviesd_cached_cities") == 2, 10,
                   "both cities cached with nobody asking")
        expect_eq(fake.count_matching(r"^/subject/"), 16, "movie pages fetched")
        for city in ("beijing", "shanghai"):
            doc = expect_answer(d.get("/movies?city=%s" % city), fake, city)
            expect_eq(doc["complete"], True, "%s complete on its first request" % city)
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_cache_total", result="miss"), 0, "cache misses")
        expect(metric(m, "moviesd_prefetch_refreshes_total") >= 2, "prefetch refreshes")


@test
def refreshes_come_before_the_ttl_and_are_spread():
    """Three cities, listing TTL 6 s: a turn every 1.8 s (0.9 × 6 / 3). For 14 s no request
    ever finds an expired or incomplete answer, and the listings are asked one turn apart,
    not three at a time."""
    def setup(fake):
        for k, city in enumerate(("beijing", "shanghai", "guangzhou")):
            fake.set_city(city, ids(39100000 + 1000 * k, 3))
    flags = ["--prefetch-cities", "beijing shanghai guangzhou", "--listing-ttl", "6",
             "--stale-while-revalidate", "0"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        d.complete_answers = False
        wait_until(lambda: metric(get_metrics(d), "moviesd_cached_cities") == 3, 10,
                   "the cities cached")
        t_end = time.monotonic() + 14
        seen = 0
        while time.monotonic() < t_end:
            for city in ("beijing", "shanghai", "guangzhou"):
                doc = expect_answer(d.get("/movies?city=%s" % city), fake, city)
                expect(doc["complete"] and not doc["stale"],
                       "%s: complete %s, stale %s" % (city, doc["complete"], doc["stale"]))
                seen += 1
            time.sleep(0.1)
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_cache_total", result="miss"), 0, "cache misses")
        expect_eq(metric(m, "moviesd_cache_total", result="partial"), 0, "partial answers")
        listings = starts_of(fake, "/cinema/later/")
        refreshes = listings[3:]
        gaps = [b - a for a, b in zip(refreshes, refreshes[1:])]
        print("    (%d answers checked; %d listings, gaps between refreshes %s)"
              % (seen, len(listings), ", ".join("%.2f" % g for g in gaps)))
        expect(len(refreshes) >= 6, "only %d refreshes in 14 s" % len(refreshes))
        expect(min(gaps) > 0.9, "two refreshes %.2f s apart: bunched, not one per turn"
               % min(gaps))
        for city in ("beijing", "shanghai", "guangzhou"):
            expect(fake.count(listing_path(city)) >= 3, "%s refreshed %d times"
                   % (city, fake.count(listing_path(city))))
        expect_eq(fake.count_matching(r"^/subject/"), 9, "movie pages (records outlive listings)")


@test
def prefetch_takes_half_the_budget_and_leaves_the_rest():
    """10 requests a minute: prefetch starts 5 and then waits, while a client's city still
    gets its listing at once."""
    def setup(fake):
        for k, city in enumerate(("beijing", "shanghai", "guangzhou")):
            fake.set_city(city, ids(39200000 + 1000 * k, 5))
        fake.set_city("shenzhen", ids(39300000, 3))
    flags = ["--prefetch-cities", "beijing,shanghai,guangzhou", "--max-requests-per-minute", "10",
             "--min-request-interval-ms", "0"]
    with scenario(flags=flags, fast=False, setup=setup) as (fake, d):
        d.complete_answers = False
        wait_until(lambda: fake.total >= 5, 10, "the prefetch's first requests")
        time.sleep(1.0)  # a window in which a sixth prefetch start would show
        expect_eq(fake.total, 5, "prefetch starts in the first minute")
        m = get_metrics(d)
        expect(metric(m, "moviesd_upstream_queued", queue="prefetch") > 0, "prefetch queue")
        t0 = time.monotonic()
        doc = expect_answer(d.get("/movies?city=shenzhen"), fake, "shenzhen")
        expect(time.monotonic() - t0 < 1.0, "the client's listing waited behind prefetch")
        expect_eq(fake.count(listing_path("shenzhen")), 1, "shenzhen's listing")
        expect_eq(doc["pending"], 3, "shenzhen's movies pending")


@test
def asked_cities_go_before_prefetch():
    """Prefetch movie pages trickle in (300 ms apart); a client asks for a cold city: its
    listing goes next, then its movie pages before the prefetch ones still queued. A client
    asking for a prefetch city raises that city's pages above the other prefetch city's."""
    def setup(fake):
        fake.set_city("beijing", ids(39400000, 20))
        fake.set_city("shanghai", ids(39401000, 20))
        fake.set_city("guangzhou", ids(39402000, 6))
    flags = ["--prefetch-cities", "beijing,shanghai", "--min-request-interval-ms", "300",
             "--max-requests-per-minute", "0", "--max-host-connections", "1"]
    with scenario(flags=flags, fast=False, setup=setup) as (fake, d):
        d.complete_answers = False
        wait_until(lambda: fake.count_matching(r"^/subject/3940") >= 2, 15,
                   "prefetch movie pages under way")
        doc = expect_answer(d.get("/movies?city=guangzhou"), fake, "guangzhou")
        expect_eq(doc["complete"], False, "guangzhou complete")
        asked_at = len(fake.timeline())
        doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        wait_until(lambda: fake.count_matching(r"^/subject/394020") == 6, 15,
                   "guangzhou's movie pages")
        seq = order(fake)
        at = seq.index(listing_path("guangzhou"))
        after = [p for p in seq[at + 1:] if p.startswith("/subject/")]
        # One prefetch page may already be under way when the listing is asked for.
        first = after[:7]
        expect(sum(p.startswith("/subject/394020") for p in first) == 6,
               "guangzhou's pages did not go before the prefetch ones: %s" % first)
        wait_until(lambda: fake.count_matching(r"^/subject/3940") >= asked_at + 12, 20,
                   "more movie pages")
        seq = order(fake)
        later = [p for p in seq[asked_at:] if p.startswith("/subject/39401")
                 or p.startswith("/subject/39400")]
        # shanghai was asked for: its queued pages now go before beijing's.
        shanghai_first = later[1:6]
        expect(all(p.startswith("/subject/39401") for p in shanghai_first),
               "after a client asked for shanghai its pages were not first: %s" % later[:8])


@test
def sighup_changes_the_prefetch_cities():
    def setup(fake):
        fake.set_city("beijing", ids(39500000, 3))
        fake.set_city("shanghai", ids(39501000, 3))
    with TempDir() as tmp:
        path = os.path.join(tmp, "moviesd.conf")
        with open(path, "w") as f:
            f.write("prefetch_cities = beijing\n")
        with scenario(flags=["--config", path], setup=setup) as (fake, d):
            wait_until(lambda: fake.count(listing_path("beijing")) == 1, 10, "beijing prefetched")
            expect_eq(fake.count(listing_path("shanghai")), 0, "shanghai before the reload")
            with open(path, "w") as f:
                f.write("prefetch_cities = beijing shanghai\n")
            d.signal(signal.SIGHUP)
            wait_until(lambda: fake.count(listing_path("shanghai")) == 1, 10,
                       "shanghai prefetched after SIGHUP")
            wait_until(lambda: metric(get_metrics(d), "moviesd_cached_cities") == 2, 10,
                       "both cached")


if __name__ == "__main__":
    run(deadline=180)
