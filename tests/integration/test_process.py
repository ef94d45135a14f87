#!/usr/bin/env python3
"""The process: `moviesd fetch`, SIGTERM with a scrape in flight, configuration errors."""

import json
import os
import shutil
import signal
import tempfile
import threading

from harness import (Daemon, FakeDouban, expect, expect_answer, expect_doc, expect_eq,
                     expect_movie, movie_spec, run, run_cli, scenario, test, wait_until)


class _TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="moviesd-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


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
        rc, out, err = run_cli(["fetch", "atlantis", "--upstream", fake.base_url])
        expect(rc != 0, "exit status 0 for an unknown city")
        expect(err.strip(), "nothing on stderr for an unknown city")
        rc, out, err = run_cli(["fetch", "Bad City", "--upstream", fake.base_url])
        expect(rc != 0, "exit status 0 for an invalid city")
        expect_eq(fake.total, 2, "upstream requests (none for the invalid city)")


@test
def sigterm_during_scrape_answers_then_exits_0():
    def setup(fake):
        fake.set_city("beijing", 6)
        fake.set_latency(400)
    with scenario(flags=["--max-host-connections", "2"], setup=setup) as (fake, d):
        result = {}

        def client():
            try:
                result["r"] = d.get("/movies?city=beijing", timeout=40)
            except Exception as e:  # noqa: BLE001
                result["e"] = e
        t = threading.Thread(target=client, daemon=True)
        t.start()
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
    with _TempDir() as tmp:
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
    with _TempDir() as tmp:
        path = os.path.join(tmp, "absent.conf")
        _expect_startup_failure(["--config", path, "--listen", "127.0.0.1:0",
                                 "--upstream", "http://127.0.0.1:9"], path,
                                "missing config file")


@test
def config_file_applies():
    """A good file: its settings are used (listen, upstream, user_agent)."""
    with FakeDouban() as fake, _TempDir() as tmp:
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


if __name__ == "__main__":
    run(deadline=180)
