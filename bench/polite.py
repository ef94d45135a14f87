#!/usr/bin/env python3
"""moviesd at its default politeness, against the fake upstream (nothing else is changed):

    python3 bench/polite.py [--daemon build/moviesd] [--latency-ms 100] [--movies 40]
                            [--cities 1]

For `--cities` cold cities asked for at once (one client each, not waiting for details),
prints the time to each city's first answer and until it is complete (polled once a
second), and from the fake's own record of request arrivals the most request starts seen in
any 60 s window and the smallest and mean gap between two starts. A 40-movie city takes
about 41 spaced requests to complete: expect minutes. Traffic goes to 127.0.0.1 only;
everything stops by itself.
"""

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
from fake_upstream import FakeDouban  # noqa: E402
from run import Daemon  # noqa: E402

CITIES = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu", "hangzhou", "wuhan",
          "xian", "nanjing", "chongqing"]


def window_max(starts, seconds=60.0):
    """The most starts in any window of the given length (half-open)."""
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - seconds:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(HERE, "..", "build", "moviesd"))
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--movies", type=int, default=40)
    ap.add_argument("--cities", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    cities = CITIES[:args.cities]
    fake = FakeDouban()
    fake.start()
    # Distinct movies per city: nothing is shared, the worst case.
    for k, c in enumerate(cities):
        fake.set_city(c, list(range(38000000 + 1000 * k, 38000000 + 1000 * k + args.movies)))
    fake.set_latency(args.latency_ms)
    d = Daemon(args.daemon, fake.base_url, [], polite=True)
    first, complete = {}, {}
    try:
        t0 = time.monotonic()

        def ask(city):
            status, body = d.get("/movies?city=%s" % city)
            first[city] = (time.monotonic() - t0, status, json.loads(body).get("pending"))
        threads = [threading.Thread(target=ask, args=(c,)) for c in cities]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        while len(complete) < len(cities) and time.monotonic() - t0 < args.timeout:
            for c in cities:
                if c not in complete:
                    status, body = d.get("/movies?city=%s" % c)
                    if status == 200 and json.loads(body)["complete"]:
                        complete[c] = time.monotonic() - t0
            time.sleep(1.0)
    finally:
        d.stop()
        fake.stop()
    starts = sorted(s for _, s, _ in fake.timeline())
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    print("moviesd at its default politeness: %d cold %d-movie cities, upstream latency %d ms"
          % (len(cities), args.movies, args.latency_ms))
    for c in cities:
        f = first.get(c)
        print("  %-10s first answer %.2f s (HTTP %s, %s pending), complete after %s"
              % (c, f[0], f[1], f[2], "%.1f s" % complete[c] if c in complete else "(not yet)"))
    print("  upstream requests %d; most starts in any 60 s window %d; smallest gap %.3f s, "
          "mean gap %.3f s" % (len(starts), window_max(starts), min(gaps) if gaps else 0,
                               sum(gaps) / len(gaps) if gaps else 0))


if __name__ == "__main__":
    main()
