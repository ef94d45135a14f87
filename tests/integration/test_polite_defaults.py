#!/usr/bin/env python3
"""moviesd at its default politeness against a fake Douban that blocks like the real one.

Douban blocks an IP for the whole domain, for hours, once it sends too many requests in a
minute (reported at about 110; anonymous scrapers see trouble at 10-30). The fake's limiter
(FakeDouban.set_block_after) is set to 35, above the daemon's default budget of 30 a minute
and well below Douban's reported limit: a daemon that keeps to its defaults never trips it.

The first two tests share one run (about 65 s): the daemon with no politeness flag at all
(fast=False; only --drain-timeout, which is not about Douban, so that stopping takes a
second), 100 ms a page, ten cold cities of 40 movies each (76 distinct movies: neighbouring
cities share most of them) asked for at once by 100 clients, 10 a city, each city's clients
from a loopback address of their own (they are 100 users, not one). The run then watches the upstream for just over a minute while movie
pages are fetched in the background. Everything about the upstream is asserted from the
fake's own record of what it received, not from the daemon's account. The fake runs in a
process of its own (FakeProcess): in this one, its threads would wait for the GIL behind the
100 clients' and stamp the first requests tens of milliseconds late.

The third shows the limiter is a real threat: with politeness off (FAST) a fake limit of 20
trips, the daemon opens its breaker and stops asking.
"""

import threading
import time

from fake_process import FakeProcess
from harness import (FAST, Response, expect, expect_doc, expect_eq, expect_error, fake_upstream,
                     get_metrics, get_when_released, listing_path, metric, most_in_window,
                     readyz_breaker, run, running, scenario, test, wait_until)

# The defaults under test (README, "Being polite to Douban"): what the assertions hold the
# daemon to, not flags given to it.
MIN_INTERVAL = 2.0          # min_request_interval_ms 2000
PER_MINUTE = 30             # max_requests_per_minute 30
# The daemon spaces the moments it hands requests to libcurl; the fake stamps a request when
# its handler thread has read the request head. Connection setup, the loop turn until curl
# writes, and the handler thread's wake-up on a shared 2-core machine shift each stamp by a
# few milliseconds, so a gap can look that much shorter than the one the daemon kept. 20 ms
# is 1% of the interval.
TOLERANCE = 0.020
FAKE_LIMIT = 35
LATENCY_MS = 100
CITIES = fake_upstream.CITY_ORDER[:10]      # real Douban slugs
MOVIES = 40
CLIENTS_PER_CITY = 10
OBSERVE = 62.0              # seconds from the burst: every 60 s window from the first start
CLIENT_TIMEOUT = 45.0       # beyond the default request_deadline of 30 s

DOUBAN_REFERER = "https://movie.douban.com/"
BROWSER_UA_PREFIX = "Mozilla/5.0 ("


_run = {}


def polite_run():
    """The shared run (made once): {"t0", "observed_until", "requests" (the fake's records),
    "trips", "answers" {city: [(arrival, Response or exception)]}, "fake"}."""
    if _run:
        return _run
    fake = FakeProcess(LATENCY_MS, movies=MOVIES, block_after=FAKE_LIMIT, record=True)
    with fake, running(fake, ["--drain-timeout", "1"], fast=False) as d:
        answers = {city: [] for city in CITIES}
        lock = threading.Lock()
        barrier = threading.Barrier(len(CITIES) * CLIENTS_PER_CITY + 1)

        def client(city, source_ip):
            got = get_when_released(d.port, source_ip, "/movies?city=%s" % city,
                                    CLIENT_TIMEOUT, barrier)
            with lock:
                answers[city].append(got)
        threads = [threading.Thread(target=client, args=(city, "127.0.0.%d" % (2 + k)),
                                    daemon=True)
                   for k, city in enumerate(CITIES) for _ in range(CLIENTS_PER_CITY)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.monotonic()
        for t in threads:
            t.join(max(0.0, t0 + CLIENT_TIMEOUT + 5 - time.monotonic()))
        expect(not any(t.is_alive() for t in threads), "clients still waiting %.0f s after the "
               "burst" % (time.monotonic() - t0))
        wait_until(lambda: time.monotonic() >= t0 + OBSERVE, OBSERVE + 1,
                   "the end of the observed minute", interval=0.1)
        observed_until = time.monotonic()
    _run.update(t0=t0, observed_until=observed_until, requests=fake.requests, trips=fake.trips,
                answers=answers, fake=fake)
    return _run


@test
def defaults_keep_to_douban_limits():
    """From the fake's record of every request start over just over a minute: at most 30 in
    any 60 s, never two closer than 2 s, the limiter of 35 never tripped, every request with
    a Douban Referer and a browser User-Agent; and the daemon did work at its pace (more than
    20 starts in the first minute: gaps are at most 3 s)."""
    r = polite_run()
    reqs = r["requests"]
    starts = sorted(q.start for q in reqs if q.start <= r["observed_until"])
    expect(starts, "no request reached the fake")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    most = most_in_window(starts)
    first_minute = sum(1 for s in starts if s < starts[0] + 60.0)
    print("    (%d upstream requests in %.1f s observed; most starts in a 60 s window: %d; "
          "gaps: smallest %.3f s, mean %.3f s, largest %.3f s)"
          % (len(starts), r["observed_until"] - starts[0], most, min(gaps),
             sum(gaps) / len(gaps), max(gaps)))
    expect(r["observed_until"] - starts[0] >= 60.0, "observed %.1f s from the first request: "
           "less than a minute" % (r["observed_until"] - starts[0]))
    expect(most <= PER_MINUTE, "%d request starts within 60 s (max_requests_per_minute %d)"
           % (most, PER_MINUTE))
    expect(min(gaps) >= MIN_INTERVAL - TOLERANCE,
           "two requests started %.3f s apart (min_request_interval_ms 2000); gaps: %s"
           % (min(gaps), [round(g, 3) for g in gaps]))
    expect_eq(r["trips"], [], "trips of the fake's limiter of %d a minute" % FAKE_LIMIT)
    expect(first_minute > 20, "only %d requests started in the first minute: the daemon is "
           "slower than its own spacing (2-3 s)" % first_minute)
    for q in reqs:
        ref = q.headers.get("referer", "")
        ua = q.headers.get("user-agent", "")
        expect(ref.startswith(DOUBAN_REFERER), "%s sent with Referer %r" % (q.path, ref))
        expect(ua.startswith(BROWSER_UA_PREFIX) and ("Chrome/" in ua or "Firefox/" in ua),
               "%s sent with User-Agent %r, not a browser's" % (q.path, ua))


@test
def defaults_answer_cold_cities_from_their_listing():
    """Listing-first: all 100 clients get 200; every listing is served before any movie page
    (listings jump the queue); each client's answer arrives less than one minimum interval
    (2 s) after the fake served its city's listing, without waiting for movie pages; the
    answer says "complete": false with "pending" the number of its movies still without
    details (here all of them: no movie page was fetched yet)."""
    r = polite_run()
    reqs = r["requests"]
    listings = {c: [q for q in reqs if q.path == listing_path(c)] for c in CITIES}
    for city, qs in listings.items():
        expect_eq(len(qs), 1, "requests of %s's listing" % city)
        expect(qs[0].end is not None and qs[0].status == 200,
               "%s's listing: status %r, end %r" % (city, qs[0].status, qs[0].end))
    served = {c: qs[0].end for c, qs in listings.items()}
    pages = sorted(q.start for q in reqs if q.path.startswith("/subject/"))
    print("    (listings served %.1f s to %.1f s after the burst; first movie page started at "
          "%s)" % (min(served.values()) - r["t0"], max(served.values()) - r["t0"],
                   "%.1f s" % (pages[0] - r["t0"]) if pages else "never"))
    for city in CITIES:
        arrivals = sorted(t for t, _ in r["answers"][city])
        print("    (%s: first answer %.2f s after the burst, %.3f s after its listing was "
              "served; last client %.3f s after)" % (city, arrivals[0] - r["t0"],
                                                     arrivals[0] - served[city],
                                                     arrivals[-1] - served[city]))
    for city in CITIES:
        ids = [str(i) for i in fake_upstream.city_ids(city, MOVIES)]
        for arrival, got in r["answers"][city]:
            expect(isinstance(got, Response), "a client of %s got no answer: %r" % (city, got))
            expect(got.status == 200, "a client of %s got %d %r, %.1f s after the burst"
                   % (city, got.status, got.body[:200], arrival - r["t0"]))
            doc = expect_doc(got.json(), r["fake"], city)
            expect_eq([m["id"] for m in doc["movies"]], ids, "%s's movies" % city)
            wait = arrival - served[city]
            expect(wait < MIN_INTERVAL, "a client of %s got its answer %.3f s after the fake "
                   "served the listing (less than %.0f s expected)" % (city, wait, MIN_INTERVAL))
            statuses = [m.get("detail_status") for m in doc["movies"]]
            expect(set(statuses) <= {"ok", "pending"}, "%s detail_status values %r"
                   % (city, sorted(set(map(str, statuses)))))
            expect_eq(doc.get("complete"), False, "%s: complete" % city)
            expect_eq(doc.get("pending"), statuses.count("pending"),
                      "%s: pending (movies without details)" % city)
            expect(doc["pending"] > 0, "%s answered with no movie pending" % city)
    if pages:
        expect(max(served.values()) <= pages[0], "a movie page started %.2f s before the last "
               "listing was served: listings do not jump the queue"
               % (max(served.values()) - pages[0]))


@test
def impolite_daemon_trips_the_limiter():
    """Politeness off (FAST) and a fake limit of 20 a minute: the 21st request trips the
    fake's limiter and is answered 302 to sec.douban.com. The daemon takes that for a block:
    its breaker opens (/readyz, /metrics), it sends nothing more (at most the one request
    its other connection had started before the 302 came back), and a cold city is answered
    503 upstream_blocked with a Retry-After, without asking the upstream."""
    limit = 20

    def setup(fake):
        fake.set_city("beijing", MOVIES)
        fake.set_latency(20)
        fake.set_block_after(limit)
    with scenario(["--max-host-connections", "2"], setup=setup) as (fake, d):
        expect(FAST[0] in d.args, "politeness not off: %r" % d.args)
        r = d.get("/movies?city=beijing", timeout=CLIENT_TIMEOUT)
        expect_eq(r.status, 200, "beijing's answer (its listing came before the block)")
        wait_until(lambda: fake.limiter_trips(), 20, "the fake's limiter to trip")
        wait_until(lambda: readyz_breaker(d)["open"], 10, "the breaker to open")
        trips = fake.limiter_trips()
        starts = sorted(q.start for q in fake.snapshot())
        expect_eq(len(trips), 1, "trips")
        expect_eq(trips[0][0], starts[limit], "the trip: the start of request %d" % (limit + 1))
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_breaker_open"), 1, "moviesd_breaker_open")
        expect_eq(metric(m, "moviesd_breaker_trips_total"), 1, "moviesd_breaker_trips_total")
        after = fake.total - (limit + 1)
        print("    (tripped at request %d, %.2f s after the first; %d request(s) after it)"
              % (limit + 1, trips[0][0] - starts[0], after))
        expect(after <= 1, "%d requests reached the fake after the one that tripped it" % after)
        total = fake.total
        r = d.get("/movies?city=shanghai")
        expect_error(r, 503, "upstream_blocked", "a cold city while blocked")
        ra = r.headers.get("retry-after", "")
        expect(ra.isdigit() and int(ra) > 0, "Retry-After %r" % ra)
        expect_eq(fake.total, total, "upstream requests for a cold city while the breaker is open")
        expect_eq(fake.count(listing_path("shanghai")), 0, "shanghai listing requests")


if __name__ == "__main__":
    # The shared run takes about 65 s, the third test a few.
    run(deadline=100)
