#!/usr/bin/env python3
"""Replicas sharing one Redis share their cache and their single-flight: 300 requests for one
cold city spread over three replicas cost one listing and each movie page once, and every
replica sends the same bytes and ETags; an answer made by one replica is served by the others
without asking the upstream (and a corrupted shared value is refused, not believed); the
replica scraping a city killed with SIGKILL mid-scrape, another takes the city over within
the lock's expiry and completes it; Redis killed, every replica answers what it has and
scrapes cold cities alone; Redis back, sharing resumes without a restart."""

import concurrent.futures
import statistics
import threading
import time

from harness import (FakeDouban, expect, expect_answer, expect_eq, get_metrics, listing_path,
                     metric, run, running, subject_path, test, wait_until)
from redis_support import RedisServer, require_redis

REPLICAS = 3
# The daemon's city and movie locks (CITY_LOCK_TTL_MS, MOVIE_LOCK_TTL_MS): a dead owner's
# work is taken over within this.
LOCK_TTL_S = 6.0


def agent(i):
    """Each replica sends its own User-Agent, so the fake's log tells whose a request was."""
    return "moviesd-replica-%d" % i


def fleet(stack, fake, redis_url, extra=(), fast=True):
    """Three replicas; their /movies requests get the listing-first answer unless they ask
    for wait=details (complete())."""
    replicas = [stack.enter_context(running(fake, ["--redis-url", redis_url, "--user-agent",
                                                   agent(i), "--redis-timeout-ms", "2000"] +
                                            list(extra), fast=fast))
                for i in range(REPLICAS)]
    for d in replicas:
        d.complete_answers = False
    return replicas


def complete(d, city):
    r = d.get("/movies?city=%s&wait=details" % city, timeout=60)
    expect(r.status == 200, "replica answered %d: %r" % (r.status, r.body[:200]))
    return r


def upstream_by_agent(fake, path):
    """User-Agents of the fake's requests for path."""
    return [r.headers.get("user-agent", "") for r in fake.snapshot() if r.path == path]


class Stack:
    """A minimal ExitStack that stops daemons in reverse order."""

    def __init__(self):
        self.exits = []

    def enter_context(self, cm):
        v = cm.__enter__()
        self.exits.append(cm)
        return v

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        failure = None
        for cm in reversed(self.exits):
            try:
                cm.__exit__(*exc)
            except BaseException as e:   # the first failure wins; every daemon is stopped
                failure = failure or e
        if failure is not None and exc[0] is None:
            raise failure
        return False


@test
def fan_in_300_requests_one_scrape():
    """300 concurrent requests for one cold city, spread over three replicas: the fake sees one
    listing and each movie page once; all are answered 200; the complete answer is the same
    bytes and the same ETags (plain and gzip) on every replica."""
    fake = FakeDouban(default_movies=8)
    fake.set_latency(100)
    fake.start()
    try:
        with RedisServer() as server, Stack() as stack:
            replicas = fleet(stack, fake, server.url)
            city = "beijing"
            barrier = threading.Barrier(300)

            def one(k):
                barrier.wait(10)
                return replicas[k % REPLICAS].get("/movies?city=%s" % city, timeout=60)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(300) as pool:
                answers = list(pool.map(one, range(300)))
            took = time.monotonic() - started
            statuses = sorted(set(r.status for r in answers))
            expect_eq(statuses, [200], "statuses of the 300 answers")
            partial = 0
            for r in answers:
                partial += not expect_answer(r, fake, city)["complete"]
            print("%d of 300 answers listing-first (incomplete)" % partial)
            docs = [complete(d, city) for d in replicas]
            listing = fake.count(listing_path(city))
            pages = {mid: fake.count(subject_path(mid)) for mid in fake.city_ids(city)}
            print("300 requests over %d replicas in %.2f s: %d listing fetch(es), movie pages "
                  "fetched %r; %d upstream requests in all"
                  % (REPLICAS, took, listing, sorted(pages.values()), fake.total))
            expect_eq(listing, 1, "listing fetches for 300 requests over three replicas")
            expect(all(n == 1 for n in pages.values()), "movie pages fetched: %r" % pages)
            expect_eq(fake.total, 1 + len(pages), "upstream requests in all")
            bodies = set(r.body for r in docs)
            etags = set(r.headers.get("etag") for r in docs)
            expect(len(bodies) == 1 and len(etags) == 1,
                   "replicas differ: %d bodies, ETags %r" % (len(bodies), etags))
            gz = [d.get("/movies?city=%s" % city, headers={"Accept-Encoding": "gzip"})
                  for d in replicas]
            expect(len(set(r.body for r in gz)) == 1 and
                   len(set(r.headers.get("etag") for r in gz)) == 1,
                   "gzip answers differ between replicas")
            expect(all(r.headers.get("content-encoding") == "gzip" for r in gz), "not gzip")
            expect(docs[0].json()["complete"], "the shared answer is not complete")
    finally:
        fake.stop()


@test
def shared_cache_across_replicas():
    """Cities scraped through replica 0 are answered by replicas 1 and 2 without an upstream
    request, byte for byte; the keys carry TTLs; the first answer through Redis costs a round
    trip more than one from the replica's own cache (printed); a corrupted shared answer or
    movie record is refused with a warning and fetched again."""
    fake = FakeDouban(default_movies=3)
    fake.start()
    try:
        with RedisServer() as server, Stack() as stack:
            replicas = fleet(stack, fake, server.url)
            cities = ["shanghai", "guangzhou", "shenzhen", "chengdu", "hangzhou", "wuhan",
                      "xian", "nanjing", "chongqing", "tianjin", "suzhou"]
            made = {c: complete(replicas[0], c) for c in cities}
            before = fake.total
            via_redis, local = [], []
            for c in cities:
                for d in replicas[1:]:
                    t0 = time.perf_counter()
                    r = d.get("/movies?city=%s" % c)
                    t1 = time.perf_counter()
                    r2 = d.get("/movies?city=%s" % c)
                    t2 = time.perf_counter()
                    via_redis.append(t1 - t0)
                    local.append(t2 - t1)
                    expect_answer(r, fake, c)
                    expect(r.body == made[c].body and r.body == r2.body,
                           "%s differs between replicas" % c)
                    expect_eq(r.headers.get("etag"), made[c].headers.get("etag"), "ETag of " + c)
            expect_eq(fake.total, before, "upstream requests for answers another replica made")
            print("answer time, first from Redis: median %.2f ms, max %.2f ms; from the "
                  "replica's own cache: median %.2f ms, max %.2f ms (%d each)"
                  % (statistics.median(via_redis) * 1e3, max(via_redis) * 1e3,
                     statistics.median(local) * 1e3, max(local) * 1e3, len(local)))
            wait_until(lambda: server.cmd("PTTL", "moviesd:v1:movie:%s"
                                          % fake.city_ids("shanghai")[0]) > 0, 5, "the record")
            city_ttl = server.cmd("PTTL", "moviesd:v1:city:shanghai")
            movie_ttl = server.cmd("PTTL", "moviesd:v1:movie:%s" % fake.city_ids("shanghai")[0])
            print("TTLs: city %d ms, movie %d ms" % (city_ttl, movie_ttl))
            expect(city_ttl > 0 and movie_ttl > 0, "keys without TTLs: %r %r" % (city_ttl, movie_ttl))
            keys = server.cmd("KEYS", "*")
            expect(all(k.startswith(b"moviesd:v1:") for k in keys),
                   "keys outside the namespace: %r" % keys)
            no_ttl = [k for k in keys if server.cmd("PTTL", k) == -1]   # -2: gone meanwhile
            expect(no_ttl == [], "keys without a TTL: %r" % no_ttl)

            # Corrupted values: a city answer cut short, a movie record that is no envelope.
            city, mid = "beijing", fake.city_ids("beijing")[0]
            complete(replicas[0], city)
            # The answer can reach the client before Redis has the daemon's SET of it.
            key = "moviesd:v1:city:%s" % city
            wait_until(lambda: server.cmd("GET", key) is not None, 5, "the shared answer")
            value = server.cmd("GET", key)
            server.cmd("SET", "moviesd:v1:city:%s" % city, value[:len(value) // 2], "PX", "60000")
            server.cmd("SET", "moviesd:v1:movie:%s" % mid, "MVENV 1 1\nexpires_ms 3\n999",
                       "PX", "60000")
            mark = replicas[1].mark()
            fake.reset_stats()
            r = complete(replicas[1], city)
            expect_answer(r, fake, city)
            expect_eq(fake.count(listing_path(city)), 1, "listing fetched again after corruption")
            replicas[1].wait_for_line(r"shared answer of beijing is unreadable", 5, start=mark)
            # Another city using the corrupted movie: its record is refused and fetched anew.
            fake.set_city("lanzhou", movies=[mid])
            mark = replicas[2].mark()
            r = complete(replicas[2], "lanzhou")
            replicas[2].wait_for_line(r"shared record of movie %s is unreadable" % mid, 5,
                                      start=mark)
            expect(all(m["detail_status"] == "ok" for m in r.json()["movies"]),
                   "movies not ok after a corrupted record")
            for d in replicas:
                expect(d.get("/healthz").status == 200, "a replica is unhealthy")
    finally:
        fake.stop()


@test
def owner_killed_mid_scrape_is_taken_over():
    """The replica scraping a city is killed with SIGKILL after its listing, its movie pages
    still coming: a waiting replica takes the city over within the lock's expiry plus one
    request, and the waiting requests get the complete answer."""
    spacing_ms = 400
    fake = FakeDouban(default_movies=6)
    fake.start()
    try:
        with RedisServer() as server, Stack() as stack:
            replicas = fleet(stack, fake, server.url,
                             ["--min-request-interval-ms", str(spacing_ms),
                              "--max-requests-per-minute", "0", "--retries", "0"], fast=False)
            city = "beijing"
            first = replicas[0].get("/movies?city=%s" % city)
            expect_answer(first, fake, city)
            expect(not first.json()["complete"], "complete at once: nothing to take over")
            expect_eq(upstream_by_agent(fake, listing_path(city)), [agent(0)], "the listing's owner")
            results = {}

            def wait_complete(i):
                results[i] = replicas[i].get("/movies?city=%s&wait=details" % city, timeout=60)
            waiters = [threading.Thread(target=wait_complete, args=(i,)) for i in (1, 2)]
            for t in waiters:
                t.start()
            # Both are waiting on the fleet (they fetch nothing while replica 0 owns the city).
            wait_until(lambda: all((metric(get_metrics(d), "moviesd_fleet_locks_total",
                                           result="held") or 0) >= 1
                                   for d in replicas[1:]), 10, "the two waiters")
            stack.exits[0].check_exit = False   # its exit status is SIGKILL's
            replicas[0].kill()
            killed = time.monotonic()
            for t in waiters:
                t.join(60)
            others = [r for r in fake.snapshot() if r.start > killed]
            expect(others, "nobody took over")
            takeover = min(r.start for r in others) - killed
            done = max(r.start for r in others) - killed
            print("owner killed: first request of the new owner after %.2f s, last after %.2f s "
                  "(lock expiry %.0f s, spacing %d ms); %d requests after the kill"
                  % (takeover, done, LOCK_TTL_S, spacing_ms, len(others)))
            expect(takeover <= LOCK_TTL_S + spacing_ms / 1000 * 1.5 + 1.0,
                   "takeover after %.2f s" % takeover)
            expect(all(r.headers.get("user-agent") in (agent(1), agent(2)) for r in others),
                   "requests from a dead replica")
            for i in (1, 2):
                expect(i in results, "replica %d did not answer" % i)
                doc = expect_answer(results[i], fake, city)
                expect(doc["complete"], "replica %d: not complete after the takeover" % i)
            expect_eq(results[1].body, results[2].body, "the two survivors' answers")
            pages = {mid: fake.count(subject_path(mid)) for mid in fake.city_ids(city)}
            expect(all(1 <= n <= 2 for n in pages.values()),
                   "movie pages fetched %r (at most once more for the one in flight)" % pages)
            takeovers = sum(metric(get_metrics(d), "moviesd_fleet_waits_total",
                                   result="takeover") or 0 for d in replicas[1:])
            expect(takeovers >= 1, "no takeover counted in the metrics")
    finally:
        fake.stop()


@test
def redis_killed_then_back():
    """Redis killed: cities the replicas hold still answer everywhere without the upstream,
    a cold one is scraped by the replica asked; Redis restarted on its port: a city one
    replica scrapes is served by another from Redis again, without restarting anything."""
    fake = FakeDouban(default_movies=2)
    fake.start()
    try:
        with RedisServer() as server, Stack() as stack:
            replicas = fleet(stack, fake, server.url)
            complete(replicas[0], "shanghai")
            for d in replicas:
                expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
            server.kill()
            wait_until(lambda: all(metric(get_metrics(d), "moviesd_redis_up") == 0
                                   for d in replicas), 10, "the replicas to see Redis down")
            before = fake.total
            for d in replicas:
                expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
                expect(d.get("/readyz").status == 200, "not ready without Redis")
            expect_eq(fake.total, before, "upstream requests for cached answers")
            expect_answer(complete(replicas[1], "guangzhou"), fake, "guangzhou")
            expect_eq(upstream_by_agent(fake, listing_path("guangzhou")), [agent(1)],
                      "the cold city's listing without Redis")
            server.start()
            wait_until(lambda: all(metric(get_metrics(d), "moviesd_redis_up") == 1
                                   for d in replicas), 15, "the replicas to reconnect")
            complete(replicas[2], "shenzhen")
            before = fake.total
            expect_answer(replicas[0].get("/movies?city=shenzhen"), fake, "shenzhen")
            expect_eq(fake.total, before, "upstream requests once Redis is back")
    finally:
        fake.stop()


if __name__ == "__main__":
    require_redis()
    run(deadline=240)
