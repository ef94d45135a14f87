#!/usr/bin/env python3
"""How long `prefetch_cities = all` takes from cold until every city's answer is complete,
at the default politeness, simulated faster against the fake upstream:

    python3 bench/prefetch_all.py [--daemon build/moviesd] [--speedup 50] [--movies 40]
                                  [--pool 60]

Every city in the table lists `--movies` movies out of a national pool of `--pool`
(deterministically chosen), as Douban's cities share most of their coming-soon films. The
request spacing, the listing TTL and the upstream latency are divided by the speed-up and
the per-minute cap multiplied by it, so every rate keeps its ratio to the others; the time
measured, multiplied by the speed-up, is the time at the defaults. The cap's window stays
60 s, so a speed-up of F lets F times as many starts into one window: keep F small enough
that the run spans many windows (the default, 10, runs for a few minutes). Prints that, the
upstream requests made, and the most prefetch starts in any (scaled) minute. Traffic goes
to 127.0.0.1 only; everything stops by itself.
"""

import argparse
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
from fake_upstream import FakeDouban  # noqa: E402
from run import Daemon  # noqa: E402
from polite import window_max  # noqa: E402

DEFAULT_INTERVAL_MS, DEFAULT_PER_MINUTE, DEFAULT_TTL, LATENCY_MS = 2000, 30, 3600, 100


def table_slugs():
    with open(os.path.join(HERE, "..", "lib", "city_table.c"), encoding="utf-8") as f:
        return re.findall(r'^\s*\{"([a-z0-9]+)", "[0-9]+", "[^"]+"\},', f.read(), re.M)


def cached_cities(d):
    status, body = d.get("/metrics")
    m = re.search(rb"^moviesd_cached_cities (\d+)", body, re.M)
    return int(m.group(1)) if m else -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(HERE, "..", "build", "moviesd"))
    ap.add_argument("--speedup", type=float, default=10)
    ap.add_argument("--movies", type=int, default=40)
    ap.add_argument("--pool", type=int, default=60)
    args = ap.parse_args()
    f = args.speedup
    slugs = table_slugs()
    pool = list(range(38500000, 38500000 + args.pool))
    rnd = random.Random(343)
    fake = FakeDouban(cities=[])
    fake.start()
    for slug in slugs:
        fake.set_city(slug, sorted(rnd.sample(pool, min(args.movies, len(pool)))))
    fake.set_latency(max(1, int(LATENCY_MS / f)))
    flags = ["--prefetch-cities", "all",
             "--min-request-interval-ms", str(max(1, int(DEFAULT_INTERVAL_MS / f))),
             "--max-requests-per-minute", str(int(DEFAULT_PER_MINUTE * f)),
             "--listing-ttl", str(max(1, int(DEFAULT_TTL / f)))]
    t0 = time.monotonic()
    d = Daemon(args.daemon, fake.base_url, flags, polite=True)
    try:
        while cached_cities(d) < len(slugs) and time.monotonic() - t0 < 3600:
            time.sleep(0.05)
        took = time.monotonic() - t0
        n = cached_cities(d)
    finally:
        d.stop()
        fake.stop()
    starts = sorted(s for p, s, _ in fake.timeline() if s <= t0 + took)
    listings = sum(1 for p, s, _ in fake.timeline() if p.startswith("/cinema/later/")
                   and s <= t0 + took)
    print("prefetch_cities = all: %d cities, %d movies each from a pool of %d, speed-up %g"
          % (len(slugs), args.movies, args.pool, f))
    print("  every city complete after %.1f s simulated = %.1f min at the defaults (%d of %d cached)"
          % (took, took * f / 60, n, len(slugs)))
    print("  upstream requests until then: %d (%d listings, %d movie pages)"
          % (len(starts), listings, len(starts) - listings))
    # The cap's own window is 60 s of real time: prefetch may start half the scaled cap in it.
    print("  most starts in any 60 s: %d (prefetch's half of the scaled cap: %d)"
          % (window_max(starts, 60.0), int(DEFAULT_PER_MINUTE * f) // 2))


if __name__ == "__main__":
    main()
