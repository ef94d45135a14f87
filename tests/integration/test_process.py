#!/usr/bin/env python3
"""The process: `moviesd fetch`, SIGTERM with a scrape in flight, configuration errors."""

import json
import os
import signal

from harness import (Daemon, FakeDouban, TempDir, expect, expect_answer, expect_doc, expect_eq,
                     expect_movie, get_in_background, movie_spec, run, run_cli, scenario, test,
                     wait_until)



def _write(dirname, name, text):
    path = os.path.join(dirname, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@test
def fetch_prints_the_answer():
    """`moviesd fetch CITY --upstream URL` prints the API's JSON and exits 0."""
    def setup(fake):
        fake.set_city("hangzhou", 3)
    with scenario(setup=setup) as (fake, d):
        api = expect_answer(d.get("/movies?city=hangzhou"), fake, "hangzhou")
        fake.reset_stats()
        rc, out, err = run_cli(["fetch", "hangzhou", "--upstream", fake.base_url], timeout=90)
        expect_eq(rc, 0, "exit status (stderr: %s)" % err[-2000:])
        try:
            doc = json.loads(out)
        except ValueError as e:
            raise AssertionError("stdout is not JSON (%s): %r" % (e, out[:500]))
        expect_doc(doc, fake, "hangzhou")
        for m in doc["movies"]:
            expect_movie(m, int(m["id"]),
                         skip=() if movie_spec(m["id"])["listing_has_regions"] else ("regions",))
        api.pop("fetched_at")
        doc.pop("fetched_at")
        expect_eq(doc, api, "fetch output vs the API answer")
        expect_eq(fake.count("/cinema/later/hangzhou/"), 1, "listing requests by fetch")


@test
def fetch_upstream_error_exits_nonzero():
    with FakeDouban() as fake:
        fake.add_fault(r"^/cinema/later/", 500)
        rc, out, err = run_cli(["fetch", "beijing", "--upstream", fake.base_url, "--retries", "0"])
        expect(rc != 0, "exit status 0 on an upstream 500")
        expect(err.strip(), "nothing on stderr")
        expect('"movies"' not in out, "stdout has an answer: %r" % out[:300])
        fake.clear_faults()
        # lasa: a city of the table that the fake does not serve (Douban's 404).
        rc, out, err = run_cli(["fetch", "lasa", "--upstream", fake.base_url])
        expect_eq(rc, 3, "exit status for an unknown city")
        expect("unknown_city" in err, "stderr for an unknown city: %r" % err)
        rc, out, err = run_cli(["fetch", "Bad City", "--upstream", fake.base_url])
        expect_eq(rc, 2, "exit status for an invalid city")
        expect_eq(fake.total, 2, "upstream requests (none for the invalid city)")


@test
def fetch_refuses_a_city_outside_the_table():
    """moviesd fetch, like the API, asks Douban about no slug outside the city table unless
    --cities any; then the slug is asked (and here found: the fake serves atlantis)."""
    with FakeDouban() as fake:
        fake.set_city("atlantis", 2)
        rc, out, err = run_cli(["fetch", "atlantis", "--upstream", fake.base_url])
        expect_eq(rc, 3, "exit status")
        expect_eq(out, "", "stdout")
        expect("unknown_city: no city 'atlantis' in the city table" in err and "--cities any" in err,
               "stderr %r" % err)
        expect_eq(fake.total, 0, "upstream requests")
        rc, out, err = run_cli(["fetch", "atlantis", "--upstream", fake.base_url, "--cities", "any",
                                "--min-request-interval-ms", "0"])
        expect_eq(rc, 0, "exit status with --cities any: %s" % err)
        expect_doc(json.loads(out), fake, "atlantis")
        expect_eq(fake.count("/cinema/later/atlantis/"), 1, "listing requests with --cities any")


@test
def sigterm_during_scrape_answers_then_exits_0():
    def setup(fake):
        fake.set_city("beijing", 6)
        fake.set_latency(400)
    with scenario(flags=["--max-host-connections", "2"], setup=setup) as (fake, d):
        t, result = get_in_background(d, "/movies?city=beijing", timeout=40)
        wait_until(lambda: fake.count_matching(r"^/subject/") >= 1, 10, "scrape in flight")
        d.signal(signal.SIGTERM)
        t.join(40)
        expect(not t.is_alive(), "client still waiting 40s after SIGTERM")
        expect("e" not in result, "in-flight request failed: %r" % result.get("e"))
        doc = expect_answer(result["r"], fake, "beijing")
        expect_eq(doc["count"], 6, "count")
        for m in doc["movies"]:
            expect(m["detail_error"] is None, "movie %s: %r" % (m["id"], m["detail_error"]))
        rc = d.wait(20)
        expect_eq(rc, 0, "exit status after SIGTERM")


@test
def sigterm_idle_exits_0():
    with scenario() as (fake, d):
        expect_eq(d.get("/healthz").status, 200, "healthz")
        d.signal(signal.SIGTERM)
        expect_eq(d.wait(10), 0, "exit status after SIGTERM")


def _expect_startup_failure(args, must_mention, what):
    rc, out, err = run_cli(args, timeout=15)
    expect(rc != 0, "%s: exit status 0" % what)
    expect(must_mention in err, "%s: stderr does not mention %r:\n%s" % (what, must_mention, err[-2000:]))
    expect("listening on" not in err, "%s: it started serving" % what)


@test
def config_bad_lines():
    with TempDir() as tmp:
        cases = [
            ("no-equals.conf", "# moviesd\n\nlisten = 127.0.0.1:0\nthis line has no equals sign\n", 4),
            ("unknown-key.conf", "listen = 127.0.0.1:0\nno_such_setting = 1\n", 2),
            ("bad-value.conf", "max_host_connections = lots\n", 1),
            ("out-of-bounds.conf", "# c\nmax_host_connections = -5\n", 2),
        ]
        for name, text, line in cases:
            path = _write(tmp, name, text)
            _expect_startup_failure(["--config", path, "--listen", "127.0.0.1:0",
                                     "--upstream", "http://127.0.0.1:9"],
                                    "%s:%d" % (path, line), name)


@test
def config_missing_file():
    with TempDir() as tmp:
        path = os.path.join(tmp, "absent.conf")
        _expect_startup_failure(["--config", path, "--listen", "127.0.0.1:0",
                                 "--upstream", "http://127.0.0.1:9"], path,
                                "missing config file")


@test
def config_file_applies():
    """A good file: its settings are used (listen, upstream, user_agent)."""
    with FakeDouban() as fake, TempDir() as tmp:
        path = _write(tmp, "good.conf",
                      "# test\nlisten = 127.0.0.1:0\nupstream = %s\nuser_agent = Mozilla/5.0 FromFile\n"
                      "min_request_interval_ms = 0\nmax_requests_per_minute = 0\n" % fake.base_url)
        d = Daemon(["--config", path])
        try:
            d.start()
            expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
            for p, h in fake.headers_seen():
                expect_eq(h.get("user-agent"), "Mozilla/5.0 FromFile", "User-Agent of %s" % p)
            expect_eq(d.stop(), 0, "exit status")
            expect(not d.sanitizer_report(), "sanitizer report:\n%s" % d.sanitizer_report())
        finally:
            d.kill()


@test
def unknown_flag_fails():
    _expect_startup_failure(["--no-such-flag", "--listen", "127.0.0.1:0",
                             "--upstream", "http://127.0.0.1:9"],
                            "no-such-flag", "unknown flag")
    _expect_startup_failure(["--listen", "127.0.0.1:0", "--max-host-connections", "abc",
                             "--upstream", "http://127.0.0.1:9"], "max-host-connections",
                            "bad flag value")


def _open_files_limit(pid):
    """(soft, hard) 'Max open files' of a running process, from /proc/PID/limits."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line in /proc/%d/limits" % pid)


@test
def open_file_limit_raised_to_what_settings_need():
    """Started with a soft limit of 256, the daemon raises it to max_connections +
    max_upstream_connections + 64 spares when the hard limit allows; below what the hard limit
    allows it says so at warn level, naming the settings."""
    with FakeDouban() as fake:
        for hard, flags, soft_wanted, warns in (
                (4096, ["--max-connections", "1024", "--max-upstream-connections", "16"], 1104, False),
                (512, ["--max-connections", "1024"], 512, True)):
            d = Daemon(["--listen", "127.0.0.1:0", "--upstream", fake.base_url] + flags)
            d.args = ["prlimit", "--nofile=256:%d" % hard, "--"] + d.args
            try:
                d.start()
                expect_eq(_open_files_limit(d.pid), (soft_wanted, hard), "open-file limits")
                warned = d.find_lines(r"WARN.*open-file limit \(512\).*max_connections 1024")
                expect(bool(warned) == warns, "warning about the limit: %r" % warned)
                expect_eq(d.get("/healthz").status, 200, "/healthz")
                expect_eq(d.stop(), 0, "exit status")
            finally:
                d.kill()


if __name__ == "__main__":
    run(deadline=180)
