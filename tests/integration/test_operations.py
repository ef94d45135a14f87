#!/usr/bin/env python3
"""Operating moviesd: /metrics (counters, histograms, gauges), configuration (errors that
name file:line, flag or variable; flags > environment > file; --check-config), SIGHUP
reloads, SIGTERM draining, and the log format (journal priorities, escaped scraped text)."""

import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

from harness import (Daemon, FAST, FakeDouban, Response, TempDir, TestFailure, expect,
                     expect_answer, expect_eq, expect_error, get_in_background, get_metrics,
                     listing_path, metric, parse_metrics, run, run_cli, running, scenario,
                     subject_path, test, wait_until)





def write_file(path, text):
    """Writes path atomically (a reload must never see half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------
# /metrics
# ----------------------------------------------------------------------------------------

def requests_total(m, status, route="movies"):
    return metric(m, "moviesd_requests_total", route=route, status=str(status)) or 0


def cache_total(m, result):
    return metric(m, "moviesd_cache_total", result=result)


def upstream_total(m, outcome):
    return metric(m, "moviesd_upstream_requests_total", outcome=outcome)


def expect_histogram(m, name, count=None, **labels):
    """name_bucket (cumulative, ending in le="+Inf"), name_sum and name_count of the series
    with these labels are there and agree; returns the count."""
    want = sorted(labels.items())
    buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in m.items()
                      if n == name + "_bucket" and [l for l in ls if l[0] != "le"] == want),
                     key=lambda b: b[0])
    expect(buckets, "no %s_bucket samples" % name)
    expect_eq(buckets[-1][0], float("inf"), "last bucket of %s" % name)
    values = [v for _, v in buckets]
    expect(values == sorted(values), "%s buckets not cumulative: %r" % (name, buckets))
    c = metric(m, name + "_count", **labels)
    s = metric(m, name + "_sum", **labels)
    expect(c is not None and s is not None, "%s_count or %s_sum missing" % (name, name))
    expect_eq(values[-1], c, "%s le=\"+Inf\" vs _count" % name)
    expect(s >= 0 and (c == 0 or s > 0), "%s_sum %r with _count %r" % (name, s, c))
    if count is not None:
        expect_eq(c, count, "%s_count" % name)
    return c


@test
def metrics_requests_cache_and_gauges():
    """requests_total per request; cache miss, hit and stale; cached_cities; the request
    duration histogram counts every request."""
    with scenario(flags=["--listing-ttl", "1"]) as (fake, d):
        m = get_metrics(d)
        expect_eq(requests_total(m, 200), 0, "movies 200 before any request")
        expect_eq(metric(m, "moviesd_cached_cities"), 0, "moviesd_cached_cities at start")
        for name in ("hit", "miss", "stale"):
            expect_eq(cache_total(m, name), 0, "moviesd_cache_total{result=%s} at start" % name)

        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        t1 = time.monotonic()
        m = get_metrics(d)
        expect_eq(requests_total(m, 200), 1, "movies 200 after one request")
        expect_eq(cache_total(m, "miss"), 1, "cache misses")
        expect_eq(cache_total(m, "hit"), 0, "cache hits")
        expect_eq(metric(m, "moviesd_cached_cities"), 1, "moviesd_cached_cities")

        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        m = get_metrics(d)
        expect_eq(requests_total(m, 200), 2, "movies 200 after two requests")
        expect_eq(cache_total(m, "hit"), 1, "cache hits")
        expect_eq(cache_total(m, "miss"), 1, "cache misses")

        wait_until(lambda: time.monotonic() >= t1 + 1.2, 3, "the listing TTL to pass")
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq(doc["stale"], True, "stale after the TTL")
        m = get_metrics(d)
        expect_eq(requests_total(m, 200), 3, "movies 200 after three requests")
        expect_eq(cache_total(m, "stale"), 1, "stale answers")

        expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        expect_error(d.get("/movies"), 400, "missing_city")
        m = get_metrics(d)
        expect_eq(requests_total(m, 200), 4, "movies 200")
        expect_eq(requests_total(m, 400), 1, "movies 400")
        expect_eq(cache_total(m, "miss"), 2, "cache misses")
        expect_eq(metric(m, "moviesd_cached_cities"), 2, "moviesd_cached_cities")
        cached_movies = metric(m, "moviesd_cached_movies")
        expect(cached_movies is not None and cached_movies >= 16,
               "moviesd_cached_movies %r (beijing and shanghai list 16 movies)" % cached_movies)
        by_route = {}
        for (n, labels), v in m.items():
            if n == "moviesd_requests_total":
                route = dict(labels)["route"]
                by_route[route] = by_route.get(route, 0) + v
        expect_eq(sorted(by_route), ["metrics", "movies"], "routes with requests")
        for route, count in by_route.items():
            expect_histogram(m, "moviesd_request_duration_seconds", count, route=route)


@test
def metrics_upstream_outcomes():
    """One movie page 404 (not_found), one 500 (error), one hanging past --upstream-timeout
    (timeout), the rest ok; then a 403 listing (blocked)."""
    nf, err, slow = 36000001, 36000002, 36000003

    def setup(fake):
        fake.add_fault("^%s$" % subject_path(nf), 404)
        fake.add_fault("^%s$" % subject_path(err), 500)
        fake.add_fault("^%s$" % subject_path(slow), "hang")
        fake.add_fault("^%s$" % listing_path("shanghai"), 403)
    flags = ["--retries", "0", "--detail-retries", "0", "--upstream-timeout", "1",
             "--drain-timeout", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        m = get_metrics(d)
        for o in ("ok", "not_found", "blocked", "error", "timeout"):
            expect_eq(upstream_total(m, o), 0, "upstream %s at start" % o)
        expect_histogram(m, "moviesd_upstream_duration_seconds", 0)

        doc = expect_answer(d.get("/movies?city=beijing", timeout=30), fake, "beijing")
        n = doc["count"]
        m = get_metrics(d)
        expect_eq(upstream_total(m, "ok"), 1 + n - 3, "upstream ok (listing + good pages)")
        expect_eq(upstream_total(m, "not_found"), 1, "upstream not_found")
        expect_eq(upstream_total(m, "error"), 1, "upstream error")
        expect_eq(upstream_total(m, "timeout"), 1, "upstream timeout")
        expect_eq(upstream_total(m, "blocked"), 0, "upstream blocked")
        expect_histogram(m, "moviesd_upstream_duration_seconds", 1 + n)

        expect_error(d.get("/movies?city=shanghai"), 503, "upstream_blocked")
        m = get_metrics(d)
        expect_eq(upstream_total(m, "blocked"), 1, "upstream blocked")
        expect_eq(requests_total(m, 503), 1, "movies 503")
        expect_eq(metric(m, "moviesd_breaker_open"), 1, "moviesd_breaker_open")
        expect_histogram(m, "moviesd_upstream_duration_seconds", 2 + n)


@test
def metrics_block_page_counts_as_blocked():
    """The 200 "有异常请求" page is a block too: counted blocked, not ok."""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "block_page")
    with scenario(setup=setup) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 503, "upstream_blocked")
        m = get_metrics(d)
        expect_eq(upstream_total(m, "blocked"), 1, "upstream blocked")
        expect_eq(upstream_total(m, "ok"), 0, "upstream ok")


@test
def metrics_scrapes_in_flight():
    def setup(fake):
        fake.set_latency(1000)
    with scenario(setup=setup) as (fake, d):
        expect_eq(metric(get_metrics(d), "moviesd_scrapes_in_flight"), 0, "scrapes at start")
        t, result = get_in_background(d, "/movies?city=beijing")
        wait_until(lambda: metric(get_metrics(d), "moviesd_scrapes_in_flight") == 1, 3,
                   "moviesd_scrapes_in_flight 1 during a slow scrape", interval=0.05)
        expect(t.is_alive(), "the scrape ended before it was seen in flight")
        t.join(30)
        expect("e" not in result, "the slow request failed: %r" % result.get("e"))
        expect_answer(result["r"], fake, "beijing")
        expect_eq(metric(get_metrics(d), "moviesd_scrapes_in_flight"), 0, "scrapes after it")


def live_metrics_body(d, fake):
    """/metrics after a request on every route (a 304 and a 404 among them), an upstream
    failure given up and a breaker trip: (text, parsed)."""
    r = d.get("/movies?city=beijing")
    expect_answer(r, fake, "beijing")
    expect_eq(d.get("/movies?city=beijing", headers={"If-None-Match": r.headers["etag"]}).status,
              304, "conditional GET")
    for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/nope", 404)):
        expect_eq(d.get(path).status, status, "GET %s" % path)
    expect_error(d.get("/movies?city=shenzhen"), 502, "upstream_error")
    expect_error(d.get("/movies?city=shanghai"), 503, "upstream_blocked")
    r = d.get("/metrics")
    expect_eq(r.status, 200, "GET /metrics")
    text = r.body.decode("utf-8")
    return text, parse_metrics(text)


def metrics_faults(fake):
    fake.add_fault("^%s$" % listing_path("shenzhen"), 500)
    fake.add_fault("^%s$" % listing_path("shanghai"), 403)


@test
def metrics_build_process_routes_and_trips():
    """moviesd_build_info{version, revision} 1; the process_* metrics match what /proc and
    getrlimit say of the daemon; the request-duration histogram has one series per route
    of the route table; moviesd_breaker_trips_total counts the trip."""
    t_before = time.time()
    with scenario(flags=["--retries", "0"], setup=metrics_faults) as (fake, d):
        t_after = time.time()
        _, m = live_metrics_body(d, fake)
        version = run_cli(["--version"])[1].split()[-1]
        info = [(dict(ls), v) for (n, ls), v in m.items() if n == "moviesd_build_info"]
        expect_eq(len(info), 1, "moviesd_build_info series")
        labels, value = info[0]
        expect_eq(value, 1, "moviesd_build_info value")
        expect_eq(sorted(labels), ["revision", "version"], "moviesd_build_info labels")
        expect_eq(labels["version"], version, "moviesd_build_info version (moviesd --version)")
        revision = os.environ.get("TEST_MOVIESD_REVISION")
        if revision is not None:
            expect_eq(labels["revision"], revision, "moviesd_build_info revision (MOVIESD_REVISION)")
        expect(re.fullmatch(r"[0-9a-f]{4,40}|unknown", labels["revision"]),
               "moviesd_build_info revision %r" % labels["revision"])

        start = metric(m, "process_start_time_seconds")
        expect(start is not None and t_before - 2 <= start <= t_after + 2,
               "process_start_time_seconds %r, daemon started between %.1f and %.1f"
               % (start, t_before, t_after))
        cpu = metric(m, "process_cpu_seconds_total")
        expect(cpu is not None and 0 <= cpu <= (time.time() - t_before) * (os.cpu_count() or 1),
               "process_cpu_seconds_total %r" % cpu)
        fds = metric(m, "process_open_fds")
        now_fds = len(d.fd_targets())
        expect(fds is not None and abs(fds - now_fds) <= 4,
               "process_open_fds %r, /proc/%d/fd lists %d" % (fds, d.pid, now_fds))
        with open("/proc/%d/limits" % d.pid) as f:
            soft = [int(l.split()[3]) for l in f if l.startswith("Max open files")][0]
        expect_eq(metric(m, "process_max_fds"), soft,
                  "process_max_fds (the daemon's soft RLIMIT_NOFILE, which it may have raised)")
        rss = metric(m, "process_resident_memory_bytes")
        rss_now = d.rss_kib() * 1024
        expect(rss is not None and rss_now / 2 <= rss <= rss_now * 2,
               "process_resident_memory_bytes %r, VmRSS %d bytes" % (rss, rss_now))
        vsz = metric(m, "process_virtual_memory_bytes")
        expect(vsz is not None and vsz >= rss, "process_virtual_memory_bytes %r" % vsz)

        for route, count in (("movies", 4), ("healthz", 1), ("readyz", 1), ("metrics", 1),
                             ("other", 1)):
            expect_histogram(m, "moviesd_request_duration_seconds", count, route=route)
        expect_eq(metric(m, "moviesd_request_duration_seconds_count"), None,
                  "an unlabelled request-duration series")
        expect_eq(metric(m, "moviesd_breaker_trips_total"), 1, "moviesd_breaker_trips_total")


@test
def metrics_pass_promtool():
    """`promtool check metrics` (which lints names, types and help too) accepts a live
    /metrics body. promtool comes with Debian's prometheus package: without it the test
    fails under CI and is skipped, saying so, elsewhere."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            raise TestFailure("promtool not found (Debian package prometheus), and CI is set")
        print("    SKIPPED: promtool not found (Debian package prometheus); CI=1 makes this fail")
        return
    with scenario(flags=["--retries", "0"], setup=metrics_faults) as (fake, d):
        text, _ = live_metrics_body(d, fake)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    problems = (r.stdout + r.stderr).strip()
    expect(r.returncode == 0 and not problems, "promtool check metrics: exit %d: %s"
           % (r.returncode, problems))


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------

NO_UPSTREAM = ["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"]


def expect_startup_fails(args, env=None, what=""):
    """Runs the daemon; it must exit non-zero without serving. Returns stderr."""
    rc, out, err = run_cli(args, timeout=15, env=env)
    expect(rc != 0, "%s: exit status 0" % what)
    expect("listening on" not in err, "%s: it started serving:\n%s" % (what, err[-1500:]))
    return err


@test
def config_file_errors_name_file_line_and_reason():
    with TempDir() as tmp:
        cases = [
            # (name, bad line, what stderr must also say)
            ("unknown-key", "listing_tl = 5", [r"listing_tl", r"(?i)unknown"]),
            ("bad-value", "listing_ttl = abc", [r"listing_ttl", r"abc"]),
            ("out-of-range", "listing_ttl = 0", [r"listing_ttl", r"(?i)range|1\.\.31536000"]),
        ]
        for name, line, reasons in cases:
            path = write_file(os.path.join(tmp, name + ".conf"),
                              "# moviesd test\nlog_level = info\n%s\ndetail_ttl = 60\n" % line)
            err = expect_startup_fails(["--config", path] + NO_UPSTREAM, what=name)
            expect("%s:3" % path in err, "%s: stderr does not name %s:3:\n%s"
                   % (name, path, err[-1500:]))
            for rx in reasons:
                expect(re.search(rx, err), "%s: stderr does not say %r:\n%s"
                       % (name, rx, err[-1500:]))


@test
def config_flag_and_environment_errors_name_them():
    err = expect_startup_fails(NO_UPSTREAM + ["--listing-ttl", "0"], what="--listing-ttl 0")
    expect("--listing-ttl" in err, "stderr does not name --listing-ttl:\n%s" % err[-1500:])
    expect(re.search(r"(?i)range|1\.\.31536000", err), "no reason given:\n%s" % err[-1500:])
    err = expect_startup_fails(NO_UPSTREAM, env={"MOVIESD_LISTING_TTL": "abc"},
                               what="MOVIESD_LISTING_TTL=abc")
    expect("MOVIESD_LISTING_TTL" in err, "stderr does not name MOVIESD_LISTING_TTL:\n%s"
           % err[-1500:])
    expect("abc" in err, "stderr does not show the bad value:\n%s" % err[-1500:])


def check_config(args, env=None):
    """`moviesd --check-config ARGS`: {key: value}; every line must be "key = value"."""
    rc, out, err = run_cli(["--check-config"] + list(args), timeout=15, env=env)
    expect_eq(rc, 0, "--check-config exit status (stderr: %s)" % err[-1000:])
    settings = {}
    for line in out.splitlines():
        m = re.fullmatch(r"([a-z_]+) = (.*)", line)
        expect(m, "--check-config line is not 'key = value': %r" % line)
        settings[m.group(1)] = m.group(2)
    return settings


@test
def config_precedence_flag_env_file():
    with TempDir() as tmp:
        path = write_file(os.path.join(tmp, "m.conf"), "listing_ttl = 100\ndetail_ttl = 77\n")
        s = check_config(["--config", path])
        expect_eq(s.get("listing_ttl"), "100", "listing_ttl from the file")
        s = check_config([], env={"MOVIESD_CONFIG": path})
        expect_eq(s.get("listing_ttl"), "100", "listing_ttl from the file named by MOVIESD_CONFIG")
        s = check_config(["--config", path], env={"MOVIESD_LISTING_TTL": "200"})
        expect_eq(s.get("listing_ttl"), "200", "listing_ttl: environment over file")
        expect_eq(s.get("detail_ttl"), "77", "detail_ttl still from the file")
        s = check_config(["--config", path, "--listing-ttl", "300"],
                         env={"MOVIESD_LISTING_TTL": "200"})
        expect_eq(s.get("listing_ttl"), "300", "listing_ttl: flag over environment")
        expect_eq(s.get("detail_ttl"), "77", "detail_ttl still from the file")


@test
def check_config_prints_every_setting():
    rc, out, err = run_cli(["--help"], timeout=15)
    expect_eq(rc, 0, "--help exit status")
    flags = re.findall(r"^\s+--([a-z][a-z-]*)\s+[A-Z]", out, re.M)
    keys = {f.replace("-", "_") for f in flags} - {"config"}
    expect(len(keys) >= 20, "--help lists only %d settings: %r" % (len(keys), sorted(keys)))
    s = check_config([])
    expect_eq(sorted(s), sorted(keys), "--check-config keys vs the settings --help lists")
    for key, value in (("listing_ttl", "3600"), ("detail_ttl", "86400"),
                       ("max_host_connections", "2"), ("min_request_interval_ms", "2000"),
                       ("max_requests_per_minute", "30"), ("block_backoff", "600"),
                       ("stale_while_revalidate", "86400"), ("retries", "2")):
        expect_eq(s.get(key), value, "default of %s" % key)


# ----------------------------------------------------------------------------------------
# SIGHUP
# ----------------------------------------------------------------------------------------

class config_daemon(running):
    """running() with --config FILE; listen comes from the file (no --listen flag, which
    would win over it)."""

    def __init__(self, fake, conf, flags=()):
        super().__init__(fake, flags)
        self.daemon = Daemon(["--config", conf, "--upstream", fake.base_url] + FAST + list(flags))


CONF = "# moviesd test\nlisten = 127.0.0.1:0\nlisting_ttl = %s\n"


def reload(d, pattern, what):
    mark = d.mark()
    d.signal(signal.SIGHUP)
    m = d.wait_for_line(pattern, 5, start=mark)
    expect(m, "no log line matching %r after SIGHUP (%s)" % (pattern, what))
    return mark


@test
def sighup_applies_a_new_listing_ttl():
    with FakeDouban() as fake, TempDir() as tmp:
        conf = write_file(os.path.join(tmp, "m.conf"), CONF % 600)
        with config_daemon(fake, conf) as d:
            expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
            expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
            expect_eq(fake.count(listing_path("beijing")), 1, "listing requests (cached, TTL 600)")
            write_file(conf, CONF % 1)
            reload(d, r"configuration reloaded", "listing_ttl 1")
            t0 = time.monotonic()

            def refetched():
                expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
                return fake.count(listing_path("beijing")) >= 2
            wait_until(refetched, 4, "the city to be fetched again with listing_ttl 1",
                       interval=0.1)
            print("    (refetched %.1f s after the reload)" % (time.monotonic() - t0))
            expect_eq(fake.count_matching(r"^/subject/"), 12, "movie page requests")


@test
def sighup_with_a_bad_file_keeps_the_old_settings():
    with FakeDouban() as fake, TempDir() as tmp:
        conf = write_file(os.path.join(tmp, "m.conf"), CONF % 600)
        with config_daemon(fake, conf) as d:
            expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
            t0 = time.monotonic()
            # listing_ttl = 1 followed by a bad line: nothing of the file may be applied.
            write_file(conf, CONF % 1 + "no_such_key = 1\n")
            mark = reload(d, r"ERROR|<3>", "bad file")
            errors = d.find_lines(r"ERROR|<3>", mark)
            expect(any("%s:4" % conf in l for l in errors),
                   "the error does not name %s:4: %r" % (conf, errors))
            expect(not d.find_lines(r"configuration reloaded", mark),
                   "'configuration reloaded' logged for a bad file")
            expect_eq(d.get("/healthz").status, 200, "healthz after a failed reload")
            # Old listing_ttl (600) still applies: no refetch once 1 s has passed.
            wait_until(lambda: time.monotonic() >= t0 + 1.5, 3, "1.5 s to pass")
            doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
            expect_eq(doc["stale"], False, "stale")
            expect_eq(fake.count(listing_path("beijing")), 1,
                      "listing requests (listing_ttl 1 of the bad file must not apply)")


@test
def sighup_listen_change_warns_and_keeps_the_port():
    with FakeDouban() as fake, TempDir() as tmp:
        conf = write_file(os.path.join(tmp, "m.conf"), CONF % 600)
        with config_daemon(fake, conf) as d:
            port = d.port
            expect_eq(d.get("/healthz").status, 200, "healthz")
            write_file(conf, CONF.replace("127.0.0.1:0", "127.0.0.1:1") % 600)
            mark = reload(d, r"configuration reloaded", "listen changed")
            warnings = [l for l in d.find_lines(r"\blisten\b", mark)
                        if re.search(r"WARN|<4>", l)]
            expect(warnings, "no warning naming listen after changing it: %r"
                   % d.lines()[mark:])
            expect_eq(d.port, port, "port")
            expect_eq(d.get("/healthz").status, 200, "healthz on the old port after the reload")
            expect_answer(d.get("/movies?city=beijing"), fake, "beijing")


# ----------------------------------------------------------------------------------------
# SIGTERM
# ----------------------------------------------------------------------------------------

def connect_refused(port):
    """True if a connection to port is refused. A reset counts as refused: a SYN that
    races the listening socket's close is answered with RST, not served."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    s.close()
    return False


@test
def sigterm_mid_scrape_finishes_the_answer():
    """40 movies at 500 ms over 4 connections: the scrape takes ~5 s. SIGTERM in the
    middle: new connections are refused at once, the waiting client gets the whole answer,
    the daemon exits 0."""
    def setup(fake):
        fake.set_city("beijing", 40)
        fake.set_latency(500)
    flags = ["--max-host-connections", "4", "--drain-timeout", "30"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        t, result = get_in_background(d, "/movies?city=beijing", timeout=60)
        wait_until(lambda: fake.count_matching(r"^/subject/") >= 1, 10, "the scrape under way")
        d.signal(signal.SIGTERM)
        wait_until(lambda: connect_refused(d.port), 3,
                   "new connections to be refused after SIGTERM", interval=0.05)
        expect(t.is_alive() and d.proc.poll() is None,
               "the scrape was over before new connections were refused (too fast to tell)")
        t.join(60)
        expect(not t.is_alive(), "client still waiting")
        expect("e" not in result, "the waiting request failed: %r" % result.get("e"))
        doc = expect_answer(result["r"], fake, "beijing")
        expect_eq(doc["count"], 40, "count")
        bad = [(m["id"], m["detail_error"]) for m in doc["movies"] if m["detail_error"]]
        expect(not bad, "detail errors: %r" % bad)
        expect_eq(d.wait(15), 0, "exit status after SIGTERM")


@test
def sigterm_drain_timeout_answers_503():
    """--drain-timeout 1, the upstream hangs: the waiting client gets 503 shutting_down and
    the daemon exits 0 within about 1-3 s."""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "hang")
    flags = ["--drain-timeout", "1", "--upstream-timeout", "60", "--request-deadline", "60"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        t, result = get_in_background(d, "/movies?city=beijing")
        wait_until(lambda: fake.count(listing_path("beijing")) >= 1, 5, "the listing request")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(10)
        dt = time.monotonic() - t0
        t.join(10)
        expect("e" not in result, "the waiting request failed: %r" % result.get("e"))
        expect_error(result["r"], 503, "shutting_down", "waiting client at the drain timeout")
        expect_eq(rc, 0, "exit status")
        print("    (exited %.2f s after SIGTERM)" % dt)
        expect(0.8 <= dt <= 3.5, "exited %.2f s after SIGTERM with --drain-timeout 1" % dt)


def keep_alive_connection(d):
    """An HTTP/1.1 connection to d that has served one request and stays open."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    expect_eq(r.status, 200, "healthz on the keep-alive connection")
    expect(not r.will_close, "the daemon closes the connection after /healthz: %r"
           % r.getheaders())
    return conn


def request_on(conn, path):
    """GET path on an open connection: (Response, seconds taken)."""
    t0 = time.monotonic()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return Response(r.status, r.getheaders(), body), time.monotonic() - t0


@test
def draining_starts_no_new_scrapes():
    """SIGTERM while a scrape for beijing hangs (the daemon drains, up to --drain-timeout 3):
    on connections opened before the signal, a cold city (guangzhou) gets 503
    shutting_down at once and no upstream request is made for it; a cached city (shanghai)
    still gets its cached answer; /readyz, 200 before, is 503 (the one time it is: the
    load balancer must stop sending). (Answers while draining carry Connection: close, so
    each of the requests uses its own connection.)"""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "hang")
    flags = ["--drain-timeout", "3", "--upstream-timeout", "60", "--request-deadline", "60"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        cached = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        expect_eq(d.get("/readyz").status, 200, "/readyz before SIGTERM")
        conn_b = keep_alive_connection(d)
        conn_c = keep_alive_connection(d)
        conn_r = keep_alive_connection(d)
        try:
            t, result = get_in_background(d, "/movies?city=beijing")
            wait_until(lambda: fake.count(listing_path("beijing")) >= 1, 5, "beijing's listing request")
            mark = d.mark()
            d.signal(signal.SIGTERM)
            expect(d.wait_for_line(r"draining", 5, start=mark), "no 'draining' log line after "
                   "SIGTERM")

            r, dt = request_on(conn_b, "/movies?city=guangzhou")
            print("    (cold city while draining: %d after %.3f s)" % (r.status, dt))
            expect_error(r, 503, "shutting_down", "cold city on an open connection while draining")
            expect(dt < 1.0, "503 for a cold city after %.2f s while draining" % dt)
            expect_eq(fake.count(listing_path("guangzhou")), 0,
                      "guangzhou listing requests (no new scrape while draining)")

            r, _ = request_on(conn_c, "/movies?city=shanghai")
            doc = expect_answer(r, fake, "shanghai")
            expect_eq(doc["movies"], cached["movies"], "cached city's movies while draining")

            r, _ = request_on(conn_r, "/readyz")
            expect_eq(r.status, 503, "/readyz while draining (%r)" % r.body)
            expect_eq(r.json(), {"status": "unavailable", "reason": "shutting down",
                                 "breaker": {"open": False}}, "/readyz body while draining")
            expect(d.proc.poll() is None and t.is_alive(),
                   "the daemon was not draining any more when the requests were answered")
        finally:
            conn_b.close()
            conn_c.close()
            conn_r.close()
        expect_eq(d.wait(10), 0, "exit status")
        t.join(10)
        expect("e" not in result, "the waiting request failed: %r" % result.get("e"))
        expect_error(result["r"], 503, "shutting_down", "beijing at the drain timeout")
        expect_eq(fake.count(listing_path("guangzhou")), 0, "guangzhou listing requests in all")
        expect_eq(fake.count_matching(r"^/subject/"), 12, "movie page requests (shanghai's)")


# ----------------------------------------------------------------------------------------
# Logs
# ----------------------------------------------------------------------------------------

TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")


# Starts the daemon with JOURNAL_STREAM naming its stderr, as systemd sets it for a service
# whose output goes to the journal: the "DEV:INODE" of that file (systemd.exec(5)). The
# wrapper execs, so the process is the daemon's.
JOURNAL_EXEC = ("import os, sys; st = os.fstat(2); "
                "os.environ['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino); "
                "os.execv(sys.argv[1], sys.argv[1:])")


@test
def journal_format_under_systemd():
    """JOURNAL_STREAM naming stderr: every line starts with a <N> priority, info is <6>,
    warn <4>, and no line carries a timestamp."""
    fake = FakeDouban()
    fake.start()
    try:
        fake.set_city("beijing", 3, offhost=True)
        under_journal = running(fake)
        under_journal.daemon.args = [sys.executable, "-c", JOURNAL_EXEC] + under_journal.daemon.args
        with under_journal as d:
            expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
            wait_until(lambda: d.find_lines(r"/movies\?city=beijing"), 5, "the access log line")
            lines = d.lines()
            expect(lines, "no output")
            for l in lines:
                expect(re.match(r"<[0-7]>", l), "line without a <N> priority prefix: %r" % l)
                expect(not TIMESTAMP_RE.search(l), "line with a timestamp: %r" % l)
            access = d.find_lines(r"/movies\?city=beijing")
            expect(all(l.startswith("<6>") for l in access), "access log not at <6>: %r" % access)
            expect(d.find_lines(r"^<6>.*listening on"), "'listening on' not at <6>")
            skipped = d.find_lines(r"evil\.example")
            expect(skipped and all(l.startswith("<4>") for l in skipped),
                   "skipped off-host links not logged at <4> (warn): %r" % skipped)
    finally:
        fake.stop()


@test
def journal_stream_of_another_file_is_ignored():
    """JOURNAL_STREAM naming another file than stderr (a service's `moviesd 2>file`, a
    variable inherited from a shell): the plain format, with timestamps."""
    st = os.stat("/")
    with scenario(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}) as (fake, d):
        expect_eq(d.get("/healthz").status, 200, "healthz")
        line = wait_until(lambda: d.find_lines(r"/healthz"), 5, "the access log line")[0]
        expect(TIMESTAMP_RE.search(line), "access log line without a timestamp: %r" % line)
        expect(not re.match(r"<\d>", line), "priority prefix for a JOURNAL_STREAM naming "
               "another file: %r" % line)


@test
def upstream_failures_are_logged_at_warn():
    """Every kind of upstream failure is a WARN line naming the URL and the reason: a 500
    retried then given up, a timeout, a body cut short (a transport error), an HTTP 410, a
    403 block (with the breaker's own line); and each city whose scrape failed. An unknown
    city (lasa: a city of the table that the fake does not serve, so Douban's 404) is an
    answer, not a failure: info."""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("shenzhen"), 500)
        fake.add_fault("^%s$" % listing_path("guangzhou"), "hang")
        fake.add_fault("^%s$" % listing_path("chengdu"), "truncated")
        fake.add_fault("^%s$" % listing_path("wuhan"), 410)
        fake.add_fault("^%s$" % listing_path("beijing"), 403)
    flags = ["--retries", "1", "--upstream-timeout", "1", "--drain-timeout", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        base = fake.base_url
        for city, status in (("shenzhen", 502), ("guangzhou", 504), ("chengdu", 502),
                             ("wuhan", 502), ("lasa", 404), ("beijing", 503)):
            expect_eq(d.get("/movies?city=%s" % city, timeout=30).status, status, city)

        def warned(pattern, what):
            lines = wait_until(lambda: d.find_lines(pattern), 5, what)
            expect(all(re.search(r" WARN ", l) for l in lines), "%s not at warn: %r" % (what, lines))
            return lines

        def url(city):
            return re.escape("%s/cinema/later/%s/" % (base, city))
        warned(r"upstream GET %s failed \(HTTP 500\); retry 1 of 1 in" % url("shenzhen"),
               "the retried 500")
        warned(r"upstream GET %s failed \(HTTP 500\); giving up after 2 attempts" % url("shenzhen"),
               "the 500 given up")
        warned(r"upstream GET %s failed \(.*timed out.*\); retry 1 of 1" % url("guangzhou"),
               "the retried timeout")
        warned(r"upstream GET %s failed \(.*timed out.*\); giving up after 2" % url("guangzhou"),
               "the timeout given up")
        warned(r"upstream GET %s failed \(.+\); giving up after 2" % url("chengdu"),
               "the body cut short")
        warned(r"upstream GET %s failed \(HTTP 410\)$" % url("wuhan"), "the 410")
        warned(r"upstream GET %s failed \(HTTP 403\)$" % url("beijing"), "the 403")
        warned(r"upstream 127\.0\.0\.1 refused us \(HTTP 403\)", "the breaker opening")
        for city in ("shenzhen", "guangzhou", "chengdu", "wuhan", "beijing"):
            warned(r"scrape of %s failed: upstream_" % city, "%s's failed scrape" % city)
        unknown = d.find_lines(r"scrape of lasa failed: unknown_city")
        expect(unknown and all(" INFO " in l for l in unknown),
               "the unknown city not logged at info: %r" % unknown)


@test
def plain_format_has_timestamps():
    with scenario() as (fake, d):
        expect_eq(d.get("/healthz").status, 200, "healthz")
        line = wait_until(lambda: d.find_lines(r"/healthz"), 5, "the access log line")[0]
        expect(TIMESTAMP_RE.search(line), "access log line without a timestamp: %r" % line)
        expect(not re.match(r"<\d>", line), "priority prefix without JOURNAL_STREAM: %r" % line)


@test
def scraped_control_characters_are_escaped_in_logs():
    """An off-host listing link whose href holds a newline, an ESC sequence and a BEL: the
    warning that skips it shows them escaped (\\x0a, \\x1b, \\x07), on one line, with no raw
    control byte. ESC and BEL are written as character references (&#27;, &#7;): the HTML
    parser replaces raw control bytes with U+FFFD but decodes references to them."""
    href = "https://evil.example/subject/99900009/\n&#27;[31mRED&#7;"

    def setup(fake):
        fake.set_city("beijing", 3, offhost=[(99900009, href)])
    with scenario(setup=setup) as (fake, d):
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq(doc["count"], 3, "count (off-host link skipped)")
        expect_eq(fake.count(subject_path(99900009)), 0, "requests of the off-host movie")
        hits = wait_until(lambda: d.find_lines(r"evil\.example/subject/99900009"), 5,
                          "the warning for the skipped link")
        expect(all(re.search(r"WARN", l) for l in hits), "not at warn: %r" % hits)
        escaped = [l for l in hits if "99900009/\\x0a\\x1b[31mRED\\x07" in l]
        expect(escaped, "href not shown escaped as \\x0a\\x1b...\\x07: %r" % hits)
        raw = [l for l in d.lines() if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", l)]
        expect(not raw, "log lines with raw control characters: %r" % raw)
        expect(not d.find_lines(r"^\[31mRED|^\x1b"), "a scraped newline started a log line")


# Bidirectional and line-breaking format controls (U+061C, U+200E-F, U+2028-E, U+2066-9):
# invisible, they make a log line read as other text than it holds.
FORMAT_CONTROL_RE = re.compile("[\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


@test
def bidi_controls_in_a_request_are_escaped_in_the_access_log():
    """A path and a city holding U+202E (RIGHT-TO-LEFT OVERRIDE, sent as %E2%80%AE), U+2066
    and U+200F: the access log lines show their bytes escaped (\\xe2\\x80\\xae ...), and no
    line of the log holds a raw format control."""
    with scenario() as (fake, d):
        expect_error(d.get("/movies%E2%80%AEexe.txt"), 404, "not_found")
        expect_error(d.get("/movies?city=%E2%81%A6gnijieb%E2%80%8F"), 400, "invalid_city")
        path = wait_until(lambda: d.find_lines(r"GET /movies\\xe2\\x80\\xaeexe\.txt 404 "), 5,
                          "the access log line of the path, escaped")
        city = wait_until(lambda: d.find_lines(r"GET /movies\?city=\\xe2\\x81\\xa6gnijieb"
                                               r"\\xe2\\x80\\x8f 400 "), 5,
                          "the access log line of the city, escaped")
        expect(all(" INFO " in l for l in path + city), "access lines not at info: %r" % (path + city))
        raw = [l for l in d.lines() if FORMAT_CONTROL_RE.search(l)]
        expect(not raw, "log lines with a raw format control: %r" % raw)


if __name__ == "__main__":
    run(deadline=240)
