#!/usr/bin/env python3
"""Now playing across replicas sharing one Redis: a city's now-playing answer is shared under
a key of its own (moviesd:v1:city:nowplaying:<slug>, beside coming soon's
moviesd:v1:city:<slug>), served by the other replicas byte for byte without asking the
upstream, never served for coming soon, and single-flighted fleet-wide apart from it.
Skipped (exit 77) without redis-server."""

import contextlib

from harness import (FakeDouban, expect, expect_answer, expect_eq, get_in_background,
                     listing_path, run, running, test, wait_until)
from redis_support import RedisServer, require_redis


def nowplaying_path(city):
    return "/cinema/nowplaying/%s/" % city


@test
def nowplaying_shared_apart_from_later():
    fake = FakeDouban(default_movies=4)
    fake.start()
    try:
        with RedisServer() as server, contextlib.ExitStack() as stack:
            a, b = [stack.enter_context(running(fake, ["--redis-url", server.url,
                                                       "--redis-timeout-ms", "2000"]))
                    for _ in range(2)]
            made = a.get("/movies?city=beijing&kind=nowplaying")
            expect_answer(made, fake, "beijing", "nowplaying")
            wait_until(lambda: server.cmd("PTTL", "moviesd:v1:city:nowplaying:beijing") > 0, 5,
                       "the shared now-playing answer")
            expect_eq(server.cmd("EXISTS", "moviesd:v1:city:beijing"), 0,
                      "a coming-soon value made by a now-playing answer")
            before = fake.total
            r = b.get("/movies?city=beijing&kind=nowplaying")
            expect_eq((r.body, r.headers.get("etag")), (made.body, made.headers.get("etag")),
                      "the other replica's now-playing answer")
            expect_eq(fake.total, before, "upstream requests for an answer shared")
            later = expect_answer(b.get("/movies?city=beijing"), fake, "beijing")
            expect_eq(fake.count(listing_path("beijing")), 1, "coming-soon listing requests")
            expect(later["movies"] and all(m["wish_count"] is not None for m in later["movies"]),
                   "coming soon answered with now playing's movies")
            wait_until(lambda: server.cmd("PTTL", "moviesd:v1:city:beijing") > 0, 5,
                       "the shared coming-soon answer")
            # Cold, asked of both replicas at once: one now-playing page request fleet-wide.
            t1, r1 = get_in_background(a, "/movies?city=shanghai&kind=nowplaying")
            t2, r2 = get_in_background(b, "/movies?city=shanghai&kind=nowplaying")
            t1.join(30)
            t2.join(30)
            expect("r" in r1 and "r" in r2, "both answers arrived")
            for res in (r1, r2):
                expect_answer(res["r"], fake, "shanghai", "nowplaying")
            expect_eq(fake.count(nowplaying_path("shanghai")), 1, "now-playing page requests")
            expect_eq(fake.count(listing_path("shanghai")), 0, "coming-soon listing requests")
            for mid in fake.nowplaying_ids_of("shanghai"):
                expect_eq(fake.count("/subject/%d/" % mid), 1, "requests for movie %d" % mid)
    finally:
        fake.stop()


if __name__ == "__main__":
    require_redis()
    run(deadline=120)
