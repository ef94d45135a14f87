#!/usr/bin/env python3
"""moviesd benchmarks, measured side by side in one run against the fake upstream.

    python3 bench/run.py [--daemon build/moviesd] [--latency-ms 100] [--movies 40]

Prints, for one cold 40-movie city at the given upstream latency:
  - wall time and daemon CPU time with 1 connection (the sequential seed's way) and with
    4 and 8 (moviesd's default and a wider cap), and their ratios;
  - the latency of cached requests (keep-alive, sequential) and the cold/cached ratio;
  - upstream requests made for 50 concurrent cold requests of one city (single-flight);
  - the daemon's RSS after start, after one city, and with 100 cities cached.
Politeness spacing is turned off so the numbers show the fetching machinery, not the
deliberate pauses. Traffic goes to 127.0.0.1 only; everything stops by itself.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from fake_upstream import FakeDouban  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def table_slugs():
    """The slugs of lib/city_table.c: the daemon asks the upstream about those alone."""
    with open(os.path.join(HERE, "..", "lib", "city_table.c"), encoding="utf-8") as f:
        return re.findall(r'^    \{"([^"]+)"', f.read(), re.M)


def cpu_seconds(pid):
    """User+system CPU seconds the process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Daemon:
    """The real daemon on a free loopback port."""

    def __init__(self, binary, upstream, flags, polite=False):
        # Politeness off unless asked for: the numbers are then the fetching machinery's.
        off = [] if polite else ["--min-request-interval-ms", "0", "--max-requests-per-minute", "0"]
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--upstream", upstream] + off + flags,
            stderr=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items()
                                                    if not k.startswith("MOVIESD_")})
        # The port comes from the startup line; the rest of the log is drained by a thread.
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if not line:
                break
        if self.port is None:
            self.stop()
            raise SystemExit("daemon did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def get(self, path, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if conn is None:
            c.close()
        return r.status, body

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cold_city(binary, fake, connections):
    """Wall and CPU seconds of one cold city, complete, with the given per-host connection
    cap."""
    fake.reset_stats()
    flags = ["--max-host-connections", str(connections)]
    d = Daemon(binary, fake.base_url, flags)
    try:
        cpu0 = cpu_seconds(d.proc.pid)
        t0 = time.monotonic()
        status, body = d.get("/movies?city=beijing&wait=details")
        wall = time.monotonic() - t0
        cpu = cpu_seconds(d.proc.pid) - cpu0
        doc = json.loads(body)
        assert status == 200 and doc["count"] == fake_movies, (status, body[:200])
        assert all(m["detail_error"] is None for m in doc["movies"])
        return wall, cpu, rss_kib(d.proc.pid), fake.peak_in_flight, len(body)
    finally:
        d.stop()


def main():
    global fake_movies
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(HERE, "..", "build", "moviesd"))
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--movies", type=int, default=40)
    ap.add_argument("--cached-requests", type=int, default=2000)
    args = ap.parse_args()
    fake_movies = args.movies

    fake = FakeDouban()
    fake.start()
    try:
        # beijing and 99 more cities of the table; shanghai is kept for the fan-in below.
        cities = ["beijing"] + [c for c in table_slugs() if c not in ("beijing", "shanghai")][:99]
        for c in cities:
            fake.set_city(c, args.movies)
        fake.set_latency(args.latency_ms)
        print("moviesd benchmark: %d-movie city, upstream latency %d ms" % (args.movies, args.latency_ms))

        runs = {}
        for n in (1, 4, 8):
            runs[n] = cold_city(args.daemon, fake, n)
            wall, cpu, rss, peak, size = runs[n]
            print("  cold city, %d connection(s): wall %.2f s, daemon CPU %.3f s, peak in flight %d, "
                  "answer %d bytes, RSS %d KiB" % (n, wall, cpu, peak, size, rss))
        print("  ratio 1 connection / 4 connections: %.2fx; 1 / 8: %.2fx"
              % (runs[1][0] / runs[4][0], runs[1][0] / runs[8][0]))
        print("  (the default politeness, 2000 ms spacing and 30 a minute, is measured by "
              "bench/polite.py)")

        d = Daemon(args.daemon, fake.base_url, [])
        try:
            rss_start = rss_kib(d.proc.pid)
            t0 = time.monotonic()
            d.get("/movies?city=beijing&wait=details")
            cold = time.monotonic() - t0
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            samples = []
            for _ in range(args.cached_requests):
                t = time.perf_counter()
                status, _ = d.get("/movies?city=beijing", conn)
                samples.append(time.perf_counter() - t)
                assert status == 200
            conn.close()
            samples.sort()
            p50 = samples[len(samples) // 2]
            p99 = samples[int(len(samples) * 0.99)]
            print("  cached request (keep-alive, client included): p50 %.3f ms, p99 %.3f ms, mean %.3f ms"
                  % (p50 * 1e3, p99 * 1e3, statistics.mean(samples) * 1e3))
            print("  ratio cold / cached p50: %.0fx" % (cold / p50))
            if shutil.which("wrk"):
                out = subprocess.run(["wrk", "-t2", "-c50", "-d5s", "--latency",
                                      "http://127.0.0.1:%d/movies?city=beijing" % d.port],
                                     capture_output=True, text=True, timeout=60).stdout
                rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
                p99 = re.search(r"99%\s+(\S+)", out)
                print("  cached, wrk 2 threads 50 connections 5 s: %s requests/s, p99 %s"
                      % (rps.group(1) if rps else "?", p99.group(1) if p99 else "?"))

            # 50 concurrent cold requests for one city: one listing, each movie page once.
            fake.reset_stats()
            fake.set_city("shanghai", args.movies)
            results = []
            barrier = threading.Barrier(50)

            def one():
                barrier.wait()
                results.append(d.get("/movies?city=shanghai&wait=details")[0])
            threads = [threading.Thread(target=one) for _ in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            listing = fake.count("/cinema/later/shanghai/")
            print("  50 concurrent cold requests: %d answered 200, upstream requests %d "
                  "(listing %d, movie pages %d; movies shared with cached cities come from the cache)"
                  % (results.count(200), fake.total, listing, fake.total - listing))

            rss_one = rss_kib(d.proc.pid)
            fake.set_latency(0)
            for c in cities:
                status, _ = d.get("/movies?city=%s&wait=details" % c)
                assert status == 200
            print("  RSS: at start %d KiB, one city cached %d KiB, %d cities cached %d KiB"
                  % (rss_start, rss_one, len(cities) + 1, rss_kib(d.proc.pid)))
        finally:
            d.stop()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
