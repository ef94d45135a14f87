#!/usr/bin/env python3
"""Soak: the real daemon under a flood of cities for minutes, its memory and fds sampled.

    python3 tests/soak/soak.py [--seconds 600] [--cache-max-bytes 67108864] [--movies 40]
                               [--clients 6] [--rss-slack-mib 8] [--rss-slack-pct 10]

The daemon (TEST_DAEMON_BIN, else build/moviesd) runs with --cities any and politeness off
(the harness's FAST flags) against tests/fake_upstream.py in a child process, where every
made-up slug is a city listing --movies movies of its own (distinct_ids), so each new city
adds records until the caches reach cache_max_bytes and evict. Client threads ask for new
cities with wait=details, and every fifth request for an earlier one (a cached answer, or
one evicted and scraped again). Every --sample-every seconds it reads the daemon's VmRSS and
open fds from /proc and the cache gauges from /metrics, and prints a table.

It fails (exit 1) when
  - the caches never fill: they must hold 90% of cache_max_bytes within the first half of
    the run (that moment ends the warm-up);
  - moviesd_cache_bytes (cities + movies) is ever above cache_max_bytes;
  - RSS is not flat after the warm-up: the highest VmRSS of the last third of the samples
    after it may exceed the highest of the first third by at most --rss-slack-mib or
    --rss-slack-pct percent, whichever is larger;
  - fds ever exceed their count before the load plus one per client and per upstream
    connection allowed (max_upstream_connections, 16) and a few spare;
  - an answer is not a complete 200, or the daemon does not exit 0 on SIGTERM with no
    sanitizer report.

Under AddressSanitizer, RSS would measure ASan's bookkeeping: its stack depot keeps every
distinct allocation stack for good (measured: +9 MiB between minutes 1 and 5, still rising,
where the plain build stays within 0.2 MiB), and its quarantine holds up to 256 MiB of freed
memory. So the daemon runs with ASAN_OPTIONS malloc_context_size=0 (reports lose allocation
stacks; every access is still checked) and quarantine_size_mb=16. tests/CMakeLists.txt registers a two-minute run with a 2 MiB bound (soak_short,
in the default suite); the full run is by hand, a few minutes and the default 64 MiB bound.
Python 3.11 standard library only.
"""

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from fake_process import FakeProcess  # noqa: E402
from harness import TestFailure, get_metrics, kill_children, metric, running  # noqa: E402

MIB = 1024 * 1024
UPSTREAM_CONNECTIONS = 16       # max_upstream_connections' default
SPARE_FDS = 4
WARM_FRACTION = 0.9
ASAN_QUARANTINE_MB = 16
CLIENT_TIMEOUT = 60.0


def slug(i):
    """The i-th made-up city: letters only, as slugs are, and none of CITY_ORDER."""
    s = ""
    while True:
        s = chr(ord("a") + i % 26) + s
        i //= 26
        if i == 0:
            return "soak" + s


class Flood:
    """Client threads asking for cities until stop(); counts what they got."""

    def __init__(self, port, clients, movies):
        self.port = port
        self.movies = movies
        self.lock = threading.Lock()
        self.next = 0
        self.answered = 0
        self.again = 0
        self.failures = []
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(k,), daemon=True)
                        for k in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 5)
        return not any(t.is_alive() for t in self.threads)

    def _pick(self, rng):
        with self.lock:
            if self.next > 0 and rng.random() < 0.2:
                self.again += 1
                return slug(rng.randrange(self.next))
            self.next += 1
            return slug(self.next - 1)

    def _client(self, k):
        rng = random.Random(k)
        conn = None
        while not self._stop.is_set():
            city = self._pick(rng)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=CLIENT_TIMEOUT)
                conn.request("GET", "/movies?city=%s&wait=details" % city)
                r = conn.getresponse()
                body = r.read()
                doc = json.loads(body) if r.status == 200 else None
                ok = (doc is not None and doc.get("complete") is True
                      and doc.get("count") == self.movies)
                why = "" if ok else "%s: %d %r" % (city, r.status, body[:200])
            except (OSError, http.client.HTTPException, ValueError) as e:
                ok, why = False, "%s: %s: %s" % (city, type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                if ok:
                    self.answered += 1
                else:
                    self.failures.append(why)
        if conn is not None:
            conn.close()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def sample(d, flood, t0):
    """One row: seconds, RSS KiB, fds, cache bytes (cities, movies), cached cities, movies,
    answers so far."""
    m = get_metrics(d)
    cities_b = metric(m, "moviesd_cache_bytes", cache="cities")
    movies_b = metric(m, "moviesd_cache_bytes", cache="movies")
    if cities_b is None or movies_b is None:
        raise TestFailure("moviesd_cache_bytes{cache=cities|movies} missing from /metrics")
    with flood.lock:
        answered = flood.answered
    return {"t": time.monotonic() - t0, "rss": d.rss_kib(), "fds": fd_count(d.pid),
            "cities_b": int(cities_b), "movies_b": int(movies_b),
            "cities": int(metric(m, "moviesd_cached_cities")),
            "movies": int(metric(m, "moviesd_cached_movies")), "answered": answered}


HEADER = "%7s %9s %5s %10s %10s %10s %7s %8s %9s" % (
    "t (s)", "RSS MiB", "fds", "cities MiB", "movies MiB", "total MiB", "cities", "records",
    "answered")


def row(s):
    return "%7.1f %9.1f %5d %10.2f %10.2f %10.2f %7d %8d %9d" % (
        s["t"], s["rss"] / 1024.0, s["fds"], s["cities_b"] / MIB, s["movies_b"] / MIB,
        (s["cities_b"] + s["movies_b"]) / MIB, s["cities"], s["movies"], s["answered"])


def check(cond, msg, problems):
    if not cond:
        problems.append(msg)


def soak(args):
    problems = []
    env = {}
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = ((asan + ":" if asan else "") + "malloc_context_size=0:"
                           "quarantine_size_mb=%d" % ASAN_QUARANTINE_MB)
    flags = ["--cities", "any", "--cache-max-bytes", str(args.cache_max_bytes),
             "--max-host-connections", "8", "--max-connections-per-ip", "0"]
    bound = args.cache_max_bytes
    with FakeProcess(movies=args.movies, distinct_ids=True) as fake, \
            running(fake, flags, env=env) as d:
        fds_before = fd_count(d.pid)
        fd_bound = fds_before + args.clients + UPSTREAM_CONNECTIONS + SPARE_FDS
        print("moviesd pid %d, cache_max_bytes %d (%.1f MiB), %d movies a city, %d clients, "
              "%d s; fds before the load %d (bound %d)%s"
              % (d.pid, bound, bound / MIB, args.movies, args.clients, args.seconds, fds_before,
                 fd_bound, "; AddressSanitizer build" if d.uses_asan() else ""))
        print(HEADER)
        flood = Flood(d.port, args.clients, args.movies)
        t0 = time.monotonic()
        flood.start()
        samples = []
        next_at = 0.0
        try:
            while time.monotonic() - t0 < args.seconds:
                s = sample(d, flood, t0)
                samples.append(s)
                print(row(s), flush=True)
                next_at += args.sample_every
                time.sleep(max(0.0, t0 + next_at - time.monotonic()))
        finally:
            stopped = flood.stop()
        check(stopped, "client threads still running after the flood", problems)
        over = [s for s in samples if s["cities_b"] + s["movies_b"] > bound]
        check(not over, "%d samples with moviesd_cache_bytes over cache_max_bytes %d, the first "
              "%d at %.1f s" % (len(over), bound, over[0]["cities_b"] + over[0]["movies_b"],
                               over[0]["t"]) if over else "", problems)
        fds_over = [s for s in samples if s["fds"] > fd_bound]
        check(not fds_over, "%d samples with more than %d fds open, the first %d at %.1f s"
              % (len(fds_over), fd_bound, fds_over[0]["fds"], fds_over[0]["t"])
              if fds_over else "", problems)
        print("%d answers (%d for an earlier city), %d failures"
              % (flood.answered, flood.again, len(flood.failures)))
        check(not flood.failures, "%d requests failed, first ones:\n    %s"
              % (len(flood.failures), "\n    ".join(flood.failures[:5])), problems)

        warm = next((i for i, s in enumerate(samples)
                     if s["cities_b"] + s["movies_b"] >= WARM_FRACTION * bound), None)
        if warm is None or samples[warm]["t"] > args.seconds / 2:
            problems.append("the caches did not reach %d%% of cache_max_bytes in the first half "
                            "of the run (%s): the flood is too slow for this bound; run longer"
                            % (WARM_FRACTION * 100, "never" if warm is None
                               else "at %.1f s" % samples[warm]["t"]))
        else:
            after = samples[warm:]
            third = max(1, len(after) // 3)
            level = max(s["rss"] for s in after[:third])
            last = max(s["rss"] for s in after[-third:])
            slack = max(args.rss_slack_mib * 1024, level * args.rss_slack_pct / 100.0)
            print("warm-up over at %.1f s (caches at %d%% of the bound); RSS: first third after "
                  "it peaks at %.1f MiB, last third at %.1f MiB (%+.1f MiB, allowed %+.1f MiB); "
                  "fds %d..%d" % (samples[warm]["t"], WARM_FRACTION * 100, level / 1024.0,
                                  last / 1024.0, (last - level) / 1024.0, slack / 1024.0,
                                  min(s["fds"] for s in after), max(s["fds"] for s in after)))
            check(last <= level + slack, "RSS grew after the warm-up: %.1f MiB -> %.1f MiB"
                  % (level / 1024.0, last / 1024.0), problems)
            check(after[-1]["movies"] < flood.next * args.movies / 2,
                  "the record cache holds %d records of %d cities: they were not evicted"
                  % (after[-1]["movies"], flood.next), problems)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--cache-max-bytes", type=int, default=64 * MIB)
    ap.add_argument("--movies", type=int, default=40, help="movies a city lists")
    ap.add_argument("--clients", type=int, default=6, help="client threads")
    ap.add_argument("--sample-every", type=float, default=None,
                    help="seconds between samples (default: a fortieth of the run)")
    ap.add_argument("--rss-slack-mib", type=float, default=8.0)
    ap.add_argument("--rss-slack-pct", type=float, default=10.0)
    args = ap.parse_args()
    if args.sample_every is None:
        args.sample_every = max(1.0, args.seconds / 40.0)
    deadline = threading.Timer(args.seconds + 120, lambda: (print("TIMEOUT"), kill_children(),
                                                            os._exit(1)))
    deadline.daemon = True
    deadline.start()
    try:
        problems = soak(args)
    except TestFailure as e:
        problems = [str(e)]
    deadline.cancel()
    for p in problems:
        print("FAIL: %s" % p)
    print("soak: %s" % ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
