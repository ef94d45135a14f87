#!/usr/bin/env python3
"""moviesd beside the seed's scrapers and nginx, measured in one run on one machine.

    scripts/install-deps.sh bench && python3 bench/side_by_side.py

Against the fake upstream (tests/fake_upstream.py, in a child process of its own, every
response delayed by --latency-ms, movie pages padded to --page-kib like Douban's) it measures
  - the seed's scrapers (bench/seed/: sequential requests, and aiohttp with asyncio.gather,
    both parsing with BeautifulSoup) on a --movies city;
  - moviesd on the same city cold, politeness off with 64 upstream connections, against the
    network bound (one listing round trip, then one round of movie pages: 2 x latency), and
    on a city of the same size at its default politeness;
  - moviesd warm (the city cached) under wrk -t2 -c100 beside nginx serving the same bytes
    as a static file, plain and gzip;
  - the latency of that cached answer (wrk -t2 -c20 --latency) idle, and while 16 cold
    scrapes of other cities are in flight the whole time, politeness off;
  - moviesd's RSS with 50 cities cached, each city with movies of its own (the worst case),
    and again with movies shared as cities share them.
It writes bench/results.md (a Markdown table, each row with the target of issue 10's point 5
where one applies, met or not) and bench/results.png (the chart), and rewrites README.md's
Benchmarks section, between its markers, from them. --quick shrinks every row (smaller
cities, second-long wrk runs) for a smoke run; it needs --out, so bench/ only ever holds full
runs. Traffic goes to 127.0.0.1 only; every process started is stopped by its PID, also on
SIGTERM or Ctrl-C; a full run takes about four minutes, 100 s of them the polite city.

--before DAEMON (--before-name says which build it is) measures an older moviesd in the same
run: every moviesd row for both builds, taking turns so that a change in the machine's load
falls alike on each (cold runs alternate fresh daemons, A B A B; the wrk runs of a row go
A B B A, each half as long, nginx in their middle; the two polite daemons run at once, as
their spacing, not the CPU, sets their pace), and the table gains a before column and this
build ÷ before. The seed's scrapers and nginx are measured once. A setting the older build's
--help does not list is left out of its command line, and the table says so. --skip-polite
drops the polite row (about 100 s) for quick checks; like --quick it needs --out.
"""

import argparse
import concurrent.futures
import gzip
import http.client
import importlib.util
import json
import multiprocessing
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.managers import BaseManager

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)
from fake_upstream import FakeDouban  # noqa: E402
from run import Daemon, cpu_seconds, rss_kib, table_slugs  # noqa: E402

FAST = ["--min-request-interval-ms", "0", "--max-requests-per-minute", "0"]
WIDE = ["--max-host-connections", "64", "--max-upstream-connections", "64"]
COLD_SCRAPES = 16          # cold scrapes kept in flight while the cached answer is timed
RSS_CITIES = 50
ID_BASE = 38000000         # city k of the table lists ID_BASE + 1000 k + i: nothing shared
README_BEGIN = "<!-- benchmarks: written by bench/side_by_side.py -->"
README_END = "<!-- end of benchmarks -->"

# The rows of the table, in order: (key, what is measured). The smoke test checks each.
ROWS = [
    ("seed_sequential", "seed scraper, sequential (requests + bs4)"),
    ("seed_asyncio", "seed scraper, asyncio.gather (aiohttp + bs4)"),
    ("cold_fast", "moviesd cold, politeness off, 64 connections"),
    ("cold_polite", "moviesd cold, default politeness"),
    ("warm_plain", "moviesd warm, wrk -t2 -c100, plain"),
    ("warm_gzip", "moviesd warm, wrk -t2 -c100, Accept-Encoding: gzip"),
    ("latency_idle", "cached answer latency, idle (wrk -t2 -c20)"),
    ("latency_cold", "cached answer latency, %d cold scrapes in flight (wrk -t2 -c20)"
     % COLD_SCRAPES),
    ("rss", "moviesd RSS, %d cities cached, each with movies of its own" % RSS_CITIES),
]


# ----------------------------------------------------------------------------------------
# The fake upstream, in a child process: in ours its threads would share the GIL with the
# clients timing the daemon, and the fake, not the daemon, would set the pace.
# ----------------------------------------------------------------------------------------

_COMMENT = ('<div class="comment-item" data-cid="%(cid)d">\n'
            '    <div class="avatar"><a title="影迷%(u)d" href="https://www.douban.com/people/%(u)d/">'
            '<img src="https://img1.doubanio.com/icon/u%(u)d-3.jpg" class="" /></a></div>\n'
            '    <div class="comment">\n        <h3>\n'
            '            <span class="comment-vote"><span class="votes vote-count">%(v)d</span>\n'
            '                <a href="javascript:;" class="j a_show_login" data-id="%(cid)d">有用</a></span>\n'
            '            <span class="comment-info"><a href="https://www.douban.com/people/%(u)d/" class="">'
            '影迷%(u)d</a><span>想看</span>\n'
            '                <span class="comment-time" title="2025-%(m)02d-%(d)02d 20:%(m)02d:%(d)02d">'
            '2025-%(m)02d-%(d)02d</span><span class="comment-location">北京</span></span>\n'
            '        </h3>\n        <p class=" comment-content"><span class="short">'
            '预告片看得人心潮澎湃，配乐和摄影都很用心，希望正片不要让人失望，首映那天一定去电影院看。'
            '</span></p>\n    </div>\n</div>\n')


def _padding(size):
    """About size bytes of Douban-like markup (a hot-comments section): what makes a real
    movie page ~126 KB while the fake's carries only the parts that are read."""
    parts, total, k = [], 0, 0
    while total < size:
        item = _COMMENT % {"cid": 3000000000 + k, "u": 150000000 + 7919 * k, "v": k % 97,
                           "m": 1 + k % 12, "d": 1 + k % 28}
        parts.append(item)
        total += len(item.encode())
        k += 1
    return ('<div id="comments-section"><div class="mod-bd" id="hot-comments">\n%s</div></div>\n'
            % "".join(parts)).encode()


class BenchFake(FakeDouban):
    """FakeDouban with no cities until set, and movie pages padded to page_bytes."""

    def __init__(self, page_bytes):
        super().__init__(cities=[])
        self.page_bytes = page_bytes
        self._pads = {}

    def _page(self, path):
        status, body, extra = super()._page(path)
        if status == 200 and path.startswith("/subject/") and len(body) < self.page_bytes:
            need = self.page_bytes - len(body)
            if need not in self._pads:
                self._pads[need] = _padding(need)
            at = body.rindex(b'<div id="footer">')
            body = body[:at] + self._pads[need] + body[at:]
        return status, body, extra

    def serve(self):
        """start(), without handing the object back across processes."""
        self.start()

    def url(self):
        return self.base_url

    def stats(self):
        with self.lock:
            return {"total": self.total, "peak_in_flight": self.peak_in_flight}


class _FakeManager(BaseManager):
    pass


_FakeManager.register("BenchFake", BenchFake, exposed=(
    "serve", "stop", "set_city", "set_latency", "reset_stats", "url", "stats", "timeline"))


# ----------------------------------------------------------------------------------------
# Processes: each one started is recorded and stopped by its PID.
# ----------------------------------------------------------------------------------------

class Stack:
    """Things to stop, stopped last-first however the run ends."""

    def __init__(self):
        self.stops = []

    def push(self, stop):
        self.stops.append(stop)

    def close(self):
        while self.stops:
            try:
                self.stops.pop()()
            except Exception as e:  # one failing stop must not leave the others running
                print("bench: while stopping: %r" % e, file=sys.stderr)


def stop_popen(proc, grace=10):
    """SIGTERM to proc's PID, SIGKILL if it is still there after grace seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_fake(stack, page_bytes):
    mgr = _FakeManager(ctx=multiprocessing.get_context("fork"))
    mgr.start()
    pid = mgr._process.pid

    def stop():
        mgr.shutdown()
        try:
            os.kill(pid, signal.SIGKILL)   # normally gone already: shutdown waited for it
        except ProcessLookupError:
            pass
    stack.push(stop)
    fake = mgr.BenchFake(page_bytes)
    fake.serve()
    stack.push(fake.stop)
    return fake, pid


class Build:
    """A moviesd binary under test: its path, its name in the table and chart, the settings its
    --help lists (an older build may lack some), its defaults and version."""

    # What every daemon of the benchmark is started with (bench/run.py's Daemon adds them).
    NEEDED = ("listen", "upstream", "min-request-interval-ms", "max-requests-per-minute")

    def __init__(self, path, name):
        self.path, self.name = path, name
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
        self.settings = set(re.findall(r"^\s+--([a-z][a-z0-9-]*)\s", out.stdout, re.M))
        missing = ["--" + s for s in self.NEEDED if s not in self.settings]
        if missing:
            raise SystemExit("%s (%s): its --help lists no %s" % (name, path, ", ".join(missing)))
        self.defaults = defaults(path)
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.split()
        self.version = version[-1] if version else "?"
        self.left_out = set()

    def flags(self, flags):
        """flags (--setting value pairs) less the settings this build does not know, which are
        recorded for the table: an older build given a newer setting would not start."""
        kept = []
        for name, value in zip(flags[::2], flags[1::2]):
            if name[2:] in self.settings:
                kept += [name, value]
            elif name not in self.left_out:
                self.left_out.add(name)
                print("bench: %s does not know %s: left out" % (self.name, name), file=sys.stderr)
        return kept

    def parsing(self):
        if "parse_threads" in self.defaults:
            return "parse_threads %s" % self.defaults["parse_threads"]
        return "this build parses pages on its loop (no parse_threads)"


def start_daemon(stack, build, base_url, flags, polite=False):
    d = Daemon(build.path, base_url, build.flags(flags), polite=polite)
    stack.push(d.stop)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
# One process, one event loop: the like of moviesd's one loop.
master_process off;
daemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    # moviesd keeps a client's connection for as many requests as it sends.
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:%(port)d;
        root %(dir)s/www;
        location = /movies {
            default_type "application/json; charset=utf-8";
            gzip_static on;
            gzip_vary on;
        }
    }
}
"""


def start_nginx(stack, tmp, plain, gzipped):
    """nginx serving plain (and gzipped, to clients that accept it) at /movies on a free
    loopback port; its own prefix, config and temp paths under tmp; never as root."""
    base = os.path.join(tmp, "nginx")
    www = os.path.join(base, "www")
    os.makedirs(www)
    with open(os.path.join(www, "movies"), "wb") as f:
        f.write(plain)
    with open(os.path.join(www, "movies.gz"), "wb") as f:
        f.write(gzipped)
    port = free_port()
    conf = os.path.join(base, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"dir": base, "port": port})
    user = {}
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(tmp):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    proc = subprocess.Popen([shutil.which("nginx"), "-p", base, "-c", conf,
                             "-e", os.path.join(base, "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **user)
    stack.push(lambda: stop_popen(proc))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("nginx did not start: %s" % proc.stderr.read().decode(errors="replace"))
        try:
            status, _, body = get(port, "/movies")
            if status == 200 and body == plain:
                return port, proc.pid
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("nginx did not answer on 127.0.0.1:%d" % port)


# ----------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------

def get(port, path, headers=None, timeout=60):
    """(status, headers as a lower-case dict, body) of one GET on a connection of its own."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(port, path, seconds, connections, headers=()):
    """wrk -t2 on 127.0.0.1:port: requests/s, p50 and p99 in seconds, and what went wrong
    (non-2xx answers, socket errors) as text."""
    cmd = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + ["http://127.0.0.1:%d%s" % (port, path)], capture_output=True,
                         text=True, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise SystemExit("wrk printed no figures:\n" + out)
    trouble = [m.group(0).strip() for m in
               re.finditer(r"^\s+(Non-2xx or 3xx responses|Socket errors):.*$", out, re.M)]
    return float(rps.group(1)), _seconds(p50.group(1)), _seconds(p99.group(1)), "; ".join(trouble)


def with_cpu(pid, fn, *args):
    """(fn(*args), CPU seconds the process pid used per second of it)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    result = fn(*args)
    return result, (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def cache_bytes(port):
    """The daemon's moviesd_cache_bytes, summed over its caches."""
    status, _, body = get(port, "/metrics")
    return sum(int(v) for v in re.findall(rb'^moviesd_cache_bytes\{[^}]*\} (\d+)$', body, re.M))


def complete_city(d, city, timeout=120):
    """Asks for a city with wait=details: (seconds, the answer) once it is complete."""
    t0 = time.monotonic()
    status, _, body = get(d.port, "/movies?city=%s&wait=details" % city, timeout=timeout)
    wall = time.monotonic() - t0
    doc = json.loads(body)
    if status != 200 or not doc.get("complete"):
        raise SystemExit("%s: %d %s" % (city, status, body[:300]))
    errors = [m["id"] for m in doc["movies"] if m.get("detail_error") is not None]
    if errors:
        raise SystemExit("%s: movies without details: %s" % (city, errors))
    return wall, doc


# ----------------------------------------------------------------------------------------
# The measurements
# ----------------------------------------------------------------------------------------

def run_seed(script, base_url, city, movies):
    """Seconds the seed's script takes over the city, by its own clock (imports left out)."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "seed", script), base_url, city],
                       capture_output=True, text=True, timeout=900)
    m = re.search(r"elapsed ([\d.]+) movies (\d+)", r.stderr)
    if r.returncode != 0 or not m or int(m.group(2)) != movies:
        raise SystemExit("%s failed (%d): %s" % (script, r.returncode, r.stderr[-2000:]))
    return float(m.group(1))


def where_the_time_went(t0, t1, timeline):
    """The cold city's seconds split by the fake's record of its requests (one monotonic
    clock for every process): before the listing, the listing, till the first movie page,
    the movie pages (first start to last end), after the last page."""
    listing = [r for r in timeline if r[0].startswith("/cinema/later/")]
    pages = [r for r in timeline if r[0].startswith("/subject/")]
    if len(listing) != 1 or not pages or any(r[2] is None for r in timeline):
        return "upstream requests: %d listings, %d movie pages" % (len(listing), len(pages))
    first = min(r[1] for r in pages)
    last = max(r[2] for r in pages)
    return ("%.3f s to the listing's request, listing %.3f s, %.3f s to the first movie page, "
            "movie pages %.3f s (first start to last end), %.3f s after the last page"
            % (listing[0][1] - t0, listing[0][2] - listing[0][1], first - listing[0][2],
               last - first, t1 - last))


def cold_fast(args, fake, city, runs, builds):
    """Fresh daemons, politeness off, 64 connections, the builds taking turns (A B A B ...):
    for each build (median seconds, every run's seconds, the median run's daemon CPU seconds,
    upstream peak in flight and where its time went)."""
    results = [[] for _ in builds]
    for _ in range(runs):
        for k, build in enumerate(builds):
            d = Daemon(build.path, fake.url(), build.flags(WIDE))
            try:
                fake.reset_stats()
                cpu0 = cpu_seconds(d.proc.pid)
                t0 = time.monotonic()
                wall, doc = complete_city(d, city)
                t1 = time.monotonic()
                results[k].append((wall, cpu_seconds(d.proc.pid) - cpu0,
                                   fake.stats()["peak_in_flight"],
                                   where_the_time_went(t0, t1, fake.timeline())))
            finally:
                d.stop()
            if doc["count"] != args.movies:
                raise SystemExit("cold city (%s): %d movies, expected %d"
                                 % (build.name, doc["count"], args.movies))
    medians = []
    for runs_of_build in results:
        runs_of_build.sort()
        wall, cpu, peak, split = runs_of_build[len(runs_of_build) // 2]
        medians.append((wall, [r[0] for r in runs_of_build], cpu, peak, split))
    return medians


def defaults(binary):
    """The daemon's settings when nothing is set: {name: value as printed}."""
    out = subprocess.run([binary, "--check-config"], capture_output=True, text=True, timeout=10,
                         env={k: v for k, v in os.environ.items()
                              if not k.startswith("MOVIESD_")}).stdout
    return dict(re.findall(r"^(\w+) = (.*)$", out, re.M))


def polite_city(d, city, movies):
    """(seconds to the first answer, to the complete one) of a fresh polite daemon."""
    t0 = time.monotonic()
    first = None
    deadline = t0 + 60 + 4 * movies        # the defaults space 41 requests over ~100 s
    while time.monotonic() < deadline:
        status, _, body = get(d.port, "/movies?city=%s" % city)
        if status == 200:
            if first is None:
                first = time.monotonic() - t0
            doc = json.loads(body)
            if doc["complete"]:
                if doc["count"] != movies:
                    raise SystemExit("polite city: %d movies" % doc["count"])
                return first, time.monotonic() - t0
        time.sleep(0.1)        # polled: a wait=details request would meet its deadline
    raise SystemExit("the polite city was not complete in %.0f s" % (deadline - t0))


def cold_polite(stack, fake, city, movies, builds):
    """A fresh daemon at its defaults for each build, all at once: the spacing sets their pace
    and they barely use the CPU, so they do not slow each other and a second build costs no
    100 s more. For each build (seconds to the first answer, to the complete one)."""
    daemons = [start_daemon(stack, b, fake.url(), [], polite=True) for b in builds]
    results = [None] * len(builds)

    def one(k):
        try:
            results[k] = polite_city(daemons[k], city, movies)
        except BaseException as e:  # handed to the main thread, which raises it
            results[k] = e
    # Daemon threads: should the run end early, the main thread's cleanup stops the daemons.
    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(builds))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for d in daemons:
            d.stop()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def latency_during_cold(d, seconds, pool):
    """wrk on the cached answer while COLD_SCRAPES cold cities, taken from the iterator pool,
    are in flight the whole time: wrk's figures, the seconds of each cold city completed, and
    whether the pool lasted the whole run."""
    lock = threading.Lock()
    done = threading.Event()
    ran_out = threading.Event()
    times = []
    failures = []

    def worker():
        while not done.is_set():
            with lock:
                city = next(pool, None)
            if city is None:
                ran_out.set()
                return
            try:
                wall, _ = complete_city(d, city)
                with lock:
                    times.append(wall)
            except (SystemExit, OSError) as e:
                with lock:
                    failures.append("%s: %s" % (city, e))
                return
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(COLD_SCRAPES)]
    for t in threads:
        t.start()
    try:
        figures = wrk(d.port, "/movies?city=beijing", seconds, 20)
    finally:
        done.set()
        for t in threads:
            t.join(120)
    if failures:
        raise SystemExit("cold scrapes failed: %s" % failures[:3])
    return figures, times, not ran_out.is_set()


def rss_with_cities(stack, build, base, cities):
    """A fresh daemon's RSS in KiB at start and with the cities cached (asked for 8 at a
    time, each until complete), and the bytes its caches then charge."""
    d = start_daemon(stack, build, base, FAST + WIDE)
    try:
        rss_start = rss_kib(d.proc.pid)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda c: complete_city(d, c), cities))
        return rss_start, rss_kib(d.proc.pid), cache_bytes(d.port)
    finally:
        d.stop()


def turns(builds, rounds):
    """The order the builds' runs of one row go in: A B B A for two rounds of two builds, so
    that a steady change in the machine's load falls alike on both; A alone for one build."""
    order = []
    for r in range(rounds):
        order += list(range(builds)) if r % 2 == 0 else list(range(builds))[::-1]
    return order


def merged(runs):
    """Rounds of wrk figures, each (rps, p50, p99, trouble), as one: the median of each
    figure, the troubles of every round."""
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs), "; ".join(r[3] for r in runs if r[3]))


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------

def ms(s):
    return "%.1f ms" % (s * 1e3) if s >= 0.01 else "%.2f ms" % (s * 1e3)


def verdict(ok):
    return "met" if ok else "**not met**"


def ratio(now, then, lower_is_better):
    """This build's figure ÷ the older one's, and which way that is."""
    if then <= 0:
        return "—"
    r = now / then
    text = "%.2f" % r
    if text == "1.00":
        return text + " (same)"
    return text + (" (better)" if (r < 1) == lower_is_better else " (worse)")


def write_table(path, rows, header, before_column=None):
    """The Markdown table of the rows measured, in ROWS's order; with before_column, that
    column and this build ÷ before beside the result."""
    columns = ["Measurement", "Result"]
    if before_column:
        columns += [before_column, "This ÷ before"]
    columns += ["Target (issue 10)", "Met?", "Notes"]
    lines = header + ["", "| %s |" % " | ".join(columns), "|%s" % ("---|" * len(columns))]
    for key, label in ROWS:
        if key not in rows:
            continue              # --skip-polite
        r = rows[key]
        cells = [label, r["result"]]
        if before_column:
            cells += [r.get("before", "—"), r.get("ratio", "—")]
        cells += [r.get("target", "—"), r.get("met", "—"), r.get("note", "")]
        lines.append("| %s |" % " | ".join(cells))
    text = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


AFTER_COLOURS = ("#7fb3d5", "#2a7ab9")       # light, dark
BEFORE_COLOURS = ("#d7bde2", "#8e44ad")


def grouped_bars(ax, groups, series, fmt):
    """One group of bars per group name; series: (label, values, colour) each."""
    width = 0.8 / len(series)
    for n, (label, values, colour) in enumerate(series):
        at = [g - 0.4 + width * (n + 0.5) for g in range(len(groups))]
        bars = ax.bar(at, values, width, label=label, color=colour)
        ax.bar_label(bars, labels=[fmt % v for v in values], fontsize=7)
    ax.set_xticks(list(range(len(groups))), groups, fontsize=8)


def write_chart(path, fig_data, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = fig_data["names"]          # this build's, and the older one's or None
    before = names[1] is not None
    fig, axes = plt.subplots(2, 2, figsize=(13 if before else 12, 9 if before else 8.5))
    fig.suptitle(title, fontsize=11)

    ax = axes[0][0]
    labels, values, colours = zip(*fig_data["cold"])
    bars = ax.barh(labels, values, color=colours)
    ax.axvline(fig_data["bound"], color="#c0392b", linestyle="--", label="network bound")
    ax.axvline(1.5 * fig_data["bound"], color="#e67e22", linestyle=":", label="target 1.5 x bound")
    ax.set_xscale("log")
    ax.set_xlim(min(min(values), fig_data["bound"]) / 2, max(values) * 4)
    ax.set_xlabel("seconds to a complete city (log scale)")
    ax.set_title("Cold city: %d movies" % fig_data["movies"])
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.bar_label(bars, labels=["%.2f s" % v for v in values], padding=3, fontsize=8)
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[0][1]
    warm = fig_data["warm"]
    groups = ["plain", "gzip"]
    series = [(names[0], [warm[g]["after"] for g in groups], AFTER_COLOURS[1])]
    if before:
        series.append((names[1], [warm[g]["before"] for g in groups], BEFORE_COLOURS[1]))
    series.append(("nginx, static file", [warm[g]["nginx"] for g in groups], "#27ae60"))
    grouped_bars(ax, [warm[g]["label"] for g in groups], series, "%.0f")
    ax.set_ylabel("requests/s")
    ax.set_title("Warm: wrk -t2 -c100 (target 0.9 x nginx)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    series = []
    for name, figures, colours in ((names[0], fig_data["latency"], AFTER_COLOURS),
                                   (names[1], fig_data["latency_before"], BEFORE_COLOURS)):
        if figures is None:
            continue
        who = "" if not before else name + ", "
        series.append((who + "p50", [f[0] * 1e3 for f in figures], colours[0]))
        series.append((who + "p99", [f[1] * 1e3 for f in figures], colours[1]))
    grouped_bars(ax, ["idle", "%d cold scrapes in flight" % COLD_SCRAPES], series, "%.2f")
    ax.axhline(fig_data["latency_target"] * 1e3, color="#e67e22", linestyle=":",
               label="target for p99 during cold scrapes")
    ax.set_yscale("log")
    ax.set_ylabel("ms (log scale)")
    ax.set_title("Cached answer latency (wrk -t2 -c20)")
    ax.legend(fontsize=7)

    ax = axes[1][1]
    groups = ["at start", "%d cities,\neach its own movies" % RSS_CITIES,
              "%d cities,\nmovies shared" % RSS_CITIES]
    series = [(names[0], [v / 1024 for v in fig_data["rss"]], AFTER_COLOURS[1])]
    if before:
        series.append((names[1], [v / 1024 for v in fig_data["rss_before"]], BEFORE_COLOURS[1]))
    grouped_bars(ax, groups, series, "%.1f")
    ax.axhline(20, color="#e67e22", linestyle=":", label="target 20 MiB")
    ax.set_ylim(0, 1.25 * max([20] + [v for _, values, _ in series for v in values]))
    ax.set_ylabel("RSS, MiB")
    ax.set_title("Memory")
    ax.legend(fontsize=8, loc="upper left")

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def update_readme(table):
    """Rewrites README.md's Benchmarks section between its markers from the table."""
    path = os.path.join(REPO, "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        raise SystemExit("README.md lacks the benchmark markers")
    body = ("%s\n![moviesd beside the seed's scrapers and nginx](bench/results.png)\n\n%s\n"
            % (README_BEGIN, table))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:i] + body + text[j:])


# ----------------------------------------------------------------------------------------

def add_before(row, figure, ratio_text, note):
    row["before"], row["ratio"] = figure, ratio_text
    row["note"] += "; **before:** " + note


def warm_answers(d):
    """The cached city's plain answer, its answer to Accept-Encoding: gzip, and whether that
    one is gzip (checked to decode to the plain one)."""
    complete_city(d, "beijing")
    status, _, plain = get(d.port, "/movies?city=beijing")
    status_gz, headers_gz, body_gz = get(d.port, "/movies?city=beijing",
                                         {"Accept-Encoding": "gzip"})
    if status != 200 or status_gz != 200:
        raise SystemExit("the cached city answered %d, %d" % (status, status_gz))
    is_gzip = headers_gz.get("content-encoding") == "gzip"
    if is_gzip and gzip.decompress(body_gz) != plain:
        raise SystemExit("moviesd's gzip answer does not decode to its plain one")
    return plain, body_gz, is_gzip


def measure(args, stack, tmp):
    builds = args.builds                 # this build first, then the older one if any
    now, then = builds[0], (builds[1] if len(builds) > 1 else None)
    rounds = 2 if then else 1            # A B B A with an older build

    def round_seconds(total):
        return max(1, total // rounds)   # each build gets about total seconds in all

    slugs = table_slugs()
    cities = ["beijing"] + [c for c in slugs if c != "beijing"]
    quick_movies = 2 if args.quick else args.movies   # the defaults space every request 2 s
    fake, fake_pid = start_fake(stack, args.page_kib * 1024)
    for k, c in enumerate(cities):
        fake.set_city(c, list(range(ID_BASE + 1000 * k, ID_BASE + 1000 * k + args.movies)))
    polite_city_slug = cities[-1]
    fake.set_city(polite_city_slug, list(range(ID_BASE + 1000 * len(cities),
                                               ID_BASE + 1000 * len(cities) + quick_movies)))
    fake.set_latency(args.latency_ms)
    base = fake.url()
    rows = {}
    bound = 2 * args.latency_ms / 1000.0
    n = args.movies
    chart = {"names": (now.name, then.name if then else None), "bound": bound, "movies": n,
             "cold": []}

    print("bench: seed scrapers", flush=True)
    seq = run_seed("sequential.py", base, "beijing", n)
    asy = run_seed("asyncio_gather.py", base, "beijing", n)

    print("bench: moviesd cold%s" % (", the builds taking turns" if then else ""), flush=True)
    runs = 1 if args.quick else 3
    colds = cold_fast(args, fake, "beijing", runs, builds)
    cold, cold_all, cold_cpu, peak, split = colds[0]
    rows["seed_sequential"] = {"result": "%.2f s" % seq,
                               "note": "%d movies, one page after another; %.0fx moviesd cold"
                               % (n, seq / cold)}
    rows["seed_asyncio"] = {"result": "%.2f s" % asy,
                            "note": "every movie page at once, then parsed one by one; "
                            "%.1fx moviesd cold" % (asy / cold)}
    ok = cold <= 1.5 * bound
    rows["cold_fast"] = {
        "result": "%.3f s" % cold, "target": "≤ 1.5 × network bound (%.2f s)" % (1.5 * bound),
        "met": verdict(ok),
        "note": "%.2f × the bound of %.2f s (listing, then one round of movie pages); median of "
                "%d (%s); daemon CPU %.3f s; upstream peak in flight %d; %s"
                % (cold / bound, bound, runs, ", ".join("%.3f" % w for w in cold_all), cold_cpu,
                   peak, split)}
    chart["cold"] += [("seed, sequential", seq, "#999999"),
                      ("seed, asyncio.gather", asy, "#999999"),
                      ("%s, politeness off" % now.name, cold, AFTER_COLOURS[1])]
    if then:
        b_cold, b_all, b_cpu, b_peak, b_split = colds[1]
        add_before(rows["cold_fast"], "%.3f s" % b_cold, ratio(cold, b_cold, True),
                   "%.2f × the bound; median of %d (%s); daemon CPU %.3f s; upstream peak in "
                   "flight %d; %s" % (b_cold / bound, runs, ", ".join("%.3f" % w for w in b_all),
                                      b_cpu, b_peak, b_split))
        chart["cold"].append(("%s, politeness off" % then.name, b_cold, BEFORE_COLOURS[1]))

    if args.skip_polite:
        print("bench: the polite row is skipped (--skip-polite)", flush=True)
    else:
        if args.quick:
            print("bench: moviesd at default politeness (%d-movie city)" % quick_movies,
                  flush=True)
        else:
            print("bench: moviesd at default politeness (about 100 s)", flush=True)
        polites = cold_polite(stack, fake, polite_city_slug, quick_movies, builds)
        first, polite = polites[0]
        conf = now.defaults
        rows["cold_polite"] = {
            "result": "%.1f s" % polite,
            "note": "%d movies; the first answer (listing only) at %.2f s; at most one request "
                    "start every %s ms and %s a minute, %s connections: the spacing, not the "
                    "machinery, sets this" % (quick_movies, first, conf["min_request_interval_ms"],
                                              conf["max_requests_per_minute"],
                                              conf["max_host_connections"])}
        sized = " (%d movies)" % quick_movies if quick_movies != n else ""
        chart["cold"].append(("%s, default politeness%s" % (now.name, sized), polite,
                              AFTER_COLOURS[0]))
        if then:
            b_first, b_polite = polites[1]
            spacing = ("min_request_interval_ms", "max_requests_per_minute",
                       "max_host_connections")
            same = all(then.defaults.get(s) == conf[s] for s in spacing)
            add_before(rows["cold_polite"], "%.1f s" % b_polite, ratio(polite, b_polite, True),
                       "the first answer at %.2f s; %s; its daemon ran beside this build's"
                       % (b_first, "the same spacing" if same else
                          "spacing %s" % ", ".join("%s %s" % (s, then.defaults.get(s, "?"))
                                                   for s in spacing)))
            chart["cold"].append(("%s, default politeness%s" % (then.name, sized), b_polite,
                                  BEFORE_COLOURS[0]))

    print("bench: moviesd warm beside nginx", flush=True)
    daemons = [start_daemon(stack, b, base, FAST + WIDE) for b in builds]
    answers = [warm_answers(d) for d in daemons]
    plain, body_gz, daemon_gzip = answers[0]
    # nginx serves the very bytes this build sends
    gzipped = body_gz if daemon_gzip else gzip.compress(plain, 6, mtime=0)
    nginx_port, nginx_pid = start_nginx(stack, tmp, plain, gzipped)
    status, headers, body = get(nginx_port, "/movies", {"Accept-Encoding": "gzip"})
    if headers.get("content-encoding") != "gzip" or body != gzipped:
        raise SystemExit("nginx did not serve the gzip file")
    path = "/movies?city=beijing"
    order = turns(len(builds), rounds)
    chart["warm"] = {}
    for enc, hdrs in (("plain", ()), ("gzip", ("Accept-Encoding: gzip",))):
        measured = [[] for _ in builds]      # (wrk's figures, CPU per second) of each round
        nginx_at = (len(order) + 1) // 2     # A then nginx; A B nginx B A
        g = None
        for i, k in enumerate(order + [None]):
            if i == nginx_at:
                g, g_cpu = with_cpu(nginx_pid, wrk, nginx_port, path, args.wrk_seconds, 100, hdrs)
            if k is not None:
                d = daemons[k]
                measured[k].append(with_cpu(d.proc.pid, wrk, d.port, path,
                                            round_seconds(args.wrk_seconds), 100, hdrs))
        figures = [(merged([r[0] for r in m]), statistics.mean(r[1] for r in m))
                   for m in measured]
        (m, m_cpu) = figures[0]
        share = m[0] / g[0]
        note = ("nginx %.0f req/s (one process, the same bytes as a static file); %.2f × nginx; "
                "CPU per second: moviesd %.2f s, nginx %.2f s (wrk's two threads share the "
                "cores)" % (g[0], share, m_cpu, g_cpu))
        if enc == "plain":
            note += "; %d-byte answer" % len(plain)
        elif daemon_gzip:
            note += "; moviesd answered gzip, %d bytes (plain %d)" % (len(body_gz), len(plain))
        else:
            note += ("; moviesd answered plain (%d bytes) to Accept-Encoding: gzip, so it sent "
                     "%.1fx nginx's %d gzip bytes" % (len(body_gz), len(body_gz) / len(gzipped),
                                                      len(gzipped)))
        if rounds > 1:
            note += "; rounds %s req/s" % ", ".join("%.0f" % r[0][0] for r in measured[0])
        for who, f in (("moviesd", m), ("nginx", g)):
            if f[3]:
                note += "; %s: %s" % (who, f[3])
        met = verdict(share >= 0.9) if (enc == "plain" or daemon_gzip) else \
            "**not met** (no gzip)"
        row = rows["warm_" + enc] = {"result": "%.0f req/s" % m[0], "target": "≥ 0.9 × nginx",
                                     "met": met, "note": note}
        chart["warm"][enc] = {"after": m[0], "nginx": g[0], "before": None,
                              "label": "gzip (%s answered %s)" % (
                                  now.name, "gzip" if daemon_gzip else "plain")
                              if enc == "gzip" else "plain"}
        if then:
            (b, b_cpu) = figures[1]
            b_plain, b_body_gz, b_gzip = answers[1]
            what = ("%d-byte answer" % len(b_plain) if enc == "plain" else
                    "answered %s, %d bytes" % ("gzip" if b_gzip else "plain", len(b_body_gz)))
            add_before(row, "%.0f req/s" % b[0], ratio(m[0], b[0], False),
                       "%.2f × nginx; CPU per second %.2f s; %s; rounds %s req/s%s"
                       % (b[0] / g[0], b_cpu, what,
                          ", ".join("%.0f" % r[0][0] for r in measured[1]),
                          "; " + b[3] if b[3] else ""))
            chart["warm"][enc]["before"] = b[0]
            if enc == "gzip":
                chart["warm"][enc]["label"] = "gzip (answered %s;\nbefore %s)" % (
                    "gzip" if daemon_gzip else "plain", "gzip" if b_gzip else "plain")

    print("bench: cached answer latency, idle and during %d cold scrapes%s"
          % (COLD_SCRAPES, ", the builds taking turns" if then else ""), flush=True)
    idle_runs = [[] for _ in builds]
    for k in order:
        idle_runs[k].append(wrk(daemons[k].port, path, round_seconds(args.latency_seconds), 20))
    idles = [merged(r) for r in idle_runs]
    # Each daemon takes its cold cities from its own pool, so a later round gets cities that
    # are still cold for it; both builds scrape the same cities in the same order.
    pools = [iter(cities[1:]) for _ in builds]
    during = [{"runs": [], "times": [], "covered": True, "cpu": 0.0, "fake_cpu": 0.0,
               "wall": 0.0} for _ in builds]
    for k in order:
        d, acc = daemons[k], during[k]
        cpu0, fake_cpu0, t0 = cpu_seconds(d.proc.pid), cpu_seconds(fake_pid), time.monotonic()
        figures, times, covered = latency_during_cold(d, round_seconds(args.latency_seconds),
                                                      pools[k])
        acc["cpu"] += cpu_seconds(d.proc.pid) - cpu0
        acc["fake_cpu"] += cpu_seconds(fake_pid) - fake_cpu0
        acc["wall"] += time.monotonic() - t0
        acc["runs"].append(figures)
        acc["times"] += times
        acc["covered"] = acc["covered"] and covered
    for d in daemons:
        d.stop()

    def cold_note(k, idle, cold_figures):
        acc = during[k]
        times = acc["times"]
        return ("p99 %.1f × idle; %.0f req/s; %d cold cities completed (median %.2f s each)%s; "
                "CPU per second: daemon %.2f s, fake upstream %.2f s; %s%s%s"
                % (cold_figures[2] / idle[2], cold_figures[0], len(times),
                   statistics.median(times) if times else 0.0,
                   "" if acc["covered"] else "; the cities ran out before wrk ended",
                   acc["cpu"] / acc["wall"], acc["fake_cpu"] / acc["wall"], builds[k].parsing(),
                   "; rounds p99 %s" % ", ".join(ms(r[2]) for r in acc["runs"])
                   if rounds > 1 else "",
                   "; " + cold_figures[3] if cold_figures[3] else ""))

    idle = idles[0]
    cold_figures = merged(during[0]["runs"])
    target = max(0.010, 5 * idle[2])
    rows["latency_idle"] = {"result": "p50 %s, p99 %s" % (ms(idle[1]), ms(idle[2])),
                            "note": "%.0f req/s%s%s" % (
                                idle[0], "; rounds p99 %s" % ", ".join(ms(r[2]) for r in
                                                                       idle_runs[0])
                                if rounds > 1 else "", "; " + idle[3] if idle[3] else "")}
    rows["latency_cold"] = {
        "result": "p50 %s, p99 %s" % (ms(cold_figures[1]), ms(cold_figures[2])),
        "target": "p99 ≤ max(10 ms, 5 × idle p99) = %s" % ms(target),
        "met": verdict(cold_figures[2] <= target), "note": cold_note(0, idle, cold_figures)}
    chart["latency"] = ((idle[1], idle[2]), (cold_figures[1], cold_figures[2]))
    chart["latency_target"] = target
    chart["latency_before"] = None
    if then:
        b_idle = idles[1]
        b_cold = merged(during[1]["runs"])
        for key, f, b, note in (
                ("latency_idle", idle, b_idle, "%.0f req/s; rounds p99 %s%s" % (
                    b_idle[0], ", ".join(ms(r[2]) for r in idle_runs[1]),
                    "; " + b_idle[3] if b_idle[3] else "")),
                ("latency_cold", cold_figures, b_cold, cold_note(1, b_idle, b_cold))):
            add_before(rows[key], "p50 %s, p99 %s" % (ms(b[1]), ms(b[2])),
                       "p50 %s, p99 %s" % (ratio(f[1], b[1], True), ratio(f[2], b[2], True)),
                       note)
        chart["latency_before"] = ((b_idle[1], b_idle[2]), (b_cold[1], b_cold[2]))

    print("bench: RSS with %d cities cached" % RSS_CITIES, flush=True)
    own = [rss_with_cities(stack, b, base, cities[:RSS_CITIES]) for b in builds]
    # Douban's cities list mostly the same films: the same 50 cities sharing theirs as the
    # fake's cities do by default, neighbours 4 movies apart.
    for k, c in enumerate(cities[:RSS_CITIES]):
        fake.set_city(c, list(range(ID_BASE + 4 * k, ID_BASE + 4 * k + n)))
    shared = [rss_with_cities(stack, b, base, cities[:RSS_CITIES]) for b in builds]
    records_shared = n + 4 * (RSS_CITIES - 1)

    def rss_note(k):
        (rss_start, _, held), (_, rss_shared, held_shared) = own[k], shared[k]
        return ("%.1f MiB at start, the caches charged %.1f MiB; with movies shared as cities "
                "share them (%d records): %.1f MiB, the caches charged %.1f MiB"
                % (rss_start / 1024, held / 1048576, records_shared, rss_shared / 1024,
                   held_shared / 1048576))
    rss = own[0][1]
    rows["rss"] = {"result": "%.1f MiB" % (rss / 1024), "target": "≤ 20 MiB",
                   "met": verdict(rss <= 20 * 1024),
                   "note": "%d movies a city, %d movie records; %s"
                           % (n, n * RSS_CITIES, rss_note(0))}
    chart["rss"] = (own[0][0], own[0][1], shared[0][1])
    if then:
        add_before(rows["rss"], "%.1f MiB" % (own[1][1] / 1024), ratio(rss, own[1][1], True),
                   rss_note(1))
        chart["rss_before"] = (own[1][0], own[1][1], shared[1][1])
    return rows, chart


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else ""
    except OSError:
        pass
    return "%d CPUs%s, %s" % (os.cpu_count(), " (%s)" % model if model else "", platform.system())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "moviesd"))
    ap.add_argument("--before", metavar="DAEMON",
                    help="an older moviesd binary (one built from an earlier commit) to measure "
                    "beside --daemon in the same run: a before column and the ratio")
    ap.add_argument("--before-name", metavar="TEXT",
                    help="what the older build is (a commit, a version) for the table and chart")
    ap.add_argument("--out", help="directory for results.md and results.png (default bench/; "
                    "README.md is rewritten only then)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: smaller cities, short wrk runs (needs --out)")
    ap.add_argument("--skip-polite", action="store_true",
                    help="leave out the default-politeness row, about 100 s (needs --out)")
    ap.add_argument("--latency-ms", type=int, default=100, help="upstream latency")
    ap.add_argument("--movies", type=int, help="movies per city (default 40, --quick 6)")
    ap.add_argument("--page-kib", type=int, default=126, help="size of a movie page")
    ap.add_argument("--wrk-seconds", type=int,
                    help="each warm wrk run of a build (default 10, --quick 1; with --before, "
                    "two rounds of half that)")
    ap.add_argument("--latency-seconds", type=int,
                    help="each latency wrk run of a build (default 10, --quick 1; with --before, "
                    "two rounds of half that)")
    args = ap.parse_args()
    if args.quick and not args.out:
        ap.error("--quick needs --out: bench/ holds full runs only")
    if args.skip_polite and not args.out:
        ap.error("--skip-polite needs --out: bench/ holds full runs only")
    if args.before_name and not args.before:
        ap.error("--before-name names the --before build: give that too")
    args.movies = args.movies or (6 if args.quick else 40)
    args.wrk_seconds = args.wrk_seconds or (1 if args.quick else 10)
    args.latency_seconds = args.latency_seconds or (1 if args.quick else 10)
    missing = [m for m in ("requests", "aiohttp", "bs4", "matplotlib")
               if importlib.util.find_spec(m) is None]
    if missing:
        ap.error("%s missing for %s: scripts/install-deps.sh bench installs them for Debian's "
                 "python3" % (", ".join(missing), sys.executable))
    for what, binary in (("daemon", args.daemon), ("--before daemon", args.before)):
        if binary is not None and not os.access(binary, os.X_OK):
            ap.error("no %s at %s: build it first (cmake -B build && cmake --build build)"
                     % (what, binary))
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            ap.error("%s is missing: scripts/install-deps.sh bench" % tool)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    out = os.path.abspath(args.out or HERE)
    os.makedirs(out, exist_ok=True)
    args.builds = [Build(args.daemon, "moviesd")]
    if args.before:
        args.builds.append(Build(args.before, "moviesd before" + (
            " (%s)" % args.before_name if args.before_name else "")))

    # SIGTERM ends the run like Ctrl-C: through the finally below, which stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = Stack()
    tmp = tempfile.mkdtemp(prefix="moviesd-bench-")
    t0 = time.monotonic()
    try:
        rows, chart = measure(args, stack, tmp)
    finally:
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - t0

    now = args.builds[0]
    title = ("moviesd %s, fake upstream at %d ms, %d-movie city, %d KiB movie pages"
             % (now.version, args.latency_ms, args.movies, args.page_kib))
    command = "python3 bench/side_by_side.py" + (" --before OLD" if args.before else "")
    flags = [f for f, on in (("--quick", args.quick), ("--skip-polite", args.skip_polite),
                             ("--before", args.before)) if on]
    header = [
        "<!-- Written by bench/side_by_side.py%s; do not edit. -->"
        % "".join(" " + f for f in flags),
        "",
        "%s%s: every figure from one run of `%s` (%.0f s) on one "
        "machine, %s, the fake upstream in a process of its own. Seed scrapers: "
        "`bench/seed/`. Cold: a fresh daemon, time until `wait=details` answers. Warm and "
        "latency: wrk on `/movies?city=beijing` once it is cached; nginx serves the same bytes "
        "from a file." % ("**Smoke run (--quick): the figures mean nothing.** " if args.quick else "",
                          title, command, took, machine()),
    ]
    before_column = None
    if args.before:
        then = args.builds[1]
        before_column = "Before" + (" (%s)" % args.before_name if args.before_name else "")
        header += ["", "Before: an older build, moviesd %s%s, measured in the same run, the two "
                   "taking turns (cold runs alternate fresh daemons; each wrk row runs A B B A, "
                   "rounds half as long, nginx in their middle; the two polite daemons run at "
                   "once); the seed's scrapers and nginx are measured once. Targets are judged "
                   "on this build; this ÷ before below 1 is better for times, latency and RSS, "
                   "above 1 for requests/s.%s"
                   % (then.version, " (%s)" % args.before_name if args.before_name else "",
                      " Settings the older build does not have were left out of its command "
                      "line: %s." % ", ".join("`%s`" % f for f in sorted(then.left_out))
                      if then.left_out else "")]
    if args.skip_polite:
        header += ["", "The default-politeness row was left out (--skip-polite)."]
    table = write_table(os.path.join(out, "results.md"), rows, header, before_column)
    write_chart(os.path.join(out, "results.png"), chart, title)
    if not args.out:
        update_readme(table)
    print(table)
    print("bench: wrote %s and %s in %.0f s" % (os.path.join(out, "results.md"),
                                                os.path.join(out, "results.png"), took))


if __name__ == "__main__":
    main()
