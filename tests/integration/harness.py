"""Integration test harness: runs the real moviesd against tests/fake_upstream.py.

    from harness import *

    @test
    def healthz():
        with scenario() as (fake, d):
            r = d.get("/healthz")
            expect_eq(r.status, 200)

    if __name__ == "__main__":
        run(deadline=120)

Every daemon is started as `$TEST_DAEMON_BIN --listen 127.0.0.1:0 --upstream <fake> [flags]`, its
stderr read on a thread (all lines kept: d.lines()), and killed by PID when the block ends
(and at exit). Polling with a deadline (wait_until) replaces sleeps. Python 3.11 stdlib, and
python3-jsonschema: every JSON response the daemon gives a request made here is checked
against docs/openapi.json (check_contract).

Beside it, helpers that are not test scripts (only test_*.py are): loadgen.py, the load
tests' client threads; fake_process.py, the fake upstream in a child process.
"""

import atexit
import calendar
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)

import fake_upstream  # noqa: E402
from fake_upstream import (FakeDouban, MOVIE_KEYS, OFFHOST_IDS, SIDEBAR_IDS,  # noqa: E402,F401
                           city_ids, expected_listing_only, expected_movie, movie_spec)

# Politeness spacing off: most tests are about behaviour, not pacing.
FAST = ["--min-request-interval-ms", "0", "--max-requests-per-minute", "0"]
START_TIMEOUT = 10.0
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                          r"SUMMARY: \w+Sanitizer")
HTTP_TIMEOUT = 30.0


class TestFailure(AssertionError):
    pass


# ----------------------------------------------------------------------------------------
# Assertions and polling
# ----------------------------------------------------------------------------------------

def expect(cond, msg="expectation failed"):
    if not cond:
        raise TestFailure(msg)


def expect_eq(actual, expected, msg=""):
    if actual != expected:
        raise TestFailure("%s%sexpected %r, got %r" % (msg, ": " if msg else "", expected, actual))


def listing_path(city):
    """The fake upstream's path of a city's coming-soon listing."""
    return "/cinema/later/%s/" % city


def subject_path(mid):
    """The fake upstream's path of a movie's page."""
    return "/subject/%d/" % mid


class TempDir:
    """with TempDir() as path: a new folder, removed with what it holds at the end."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="moviesd-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# --- many clients at once (the politeness tests) -------------------------------------

def get_when_released(port, source_ip, path, timeout, barrier):
    """Connects to the daemon from source_ip, waits at barrier, then GETs path: (monotonic
    time the whole answer was in, Response), or (time, exception). Connected beforehand, the
    clients' requests leave together."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source_ip, 0))
    try:
        try:
            conn.connect()
        finally:
            barrier.wait()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return time.monotonic(), Response(r.status, r.getheaders(), body)
    except (OSError, http.client.HTTPException) as e:
        return time.monotonic(), e
    finally:
        conn.close()


def most_in_window(starts, width=60.0):
    """The most of the sorted starts within any half-open window [t, t + width)."""
    best, j = 0, 0
    for i, t in enumerate(starts):
        while j < len(starts) and starts[j] < t + width:
            j += 1
        best = max(best, j - i)
    return best


def wait_until(pred, timeout, msg="condition", interval=0.01):
    """Polls pred() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, msg))
        time.sleep(interval)


# ----------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------

_children = set()
_children_lock = threading.Lock()


def track_child(proc):
    """Adds a started subprocess.Popen to those kill_children() kills (at the end of each test,
    on the script deadline and at exit); its owner still stops it by PID and untracks it."""
    with _children_lock:
        _children.add(proc)


def untrack_child(proc):
    """Removes proc from the tracked children once its owner has stopped and reaped it."""
    with _children_lock:
        _children.discard(proc)


def kill_children():
    """Kills (SIGKILL) and reaps every process the harness started that is still alive."""
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        untrack_child(p)


atexit.register(kill_children)


def moviesd_bin():
    path = os.environ.get("TEST_DAEMON_BIN") or os.path.join(REPO, "build", "moviesd")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise TestFailure("moviesd binary not found or not executable: %s (set TEST_DAEMON_BIN)" % path)
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers                       # [(name, value)] as received
        self.headers = {k.lower(): v for k, v in headers}  # last wins
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TestFailure("body is not JSON (%s): %r" % (e, self.body[:300]))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


_contract = {}   # "doc": docs/openapi.json; JSON pointer -> its validator


def check_contract(method, path, r):
    """Fails when r, a JSON response to method path, does not match the schema
    docs/openapi.json gives its path, method and status (a path it does not describe must
    answer an Error). Responses without a JSON body pass."""
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    if not r.body or ctype != "application/json":
        return
    import jsonschema
    body = r.body
    if r.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if "doc" not in _contract:
        with open(os.path.join(REPO, "docs", "openapi.json"), encoding="utf-8") as f:
            _contract["doc"] = json.load(f)
    doc = _contract["doc"]
    route = path.split("?", 1)[0]
    where = "%s %s: %d" % (method, path[:100], r.status)
    pointer = "#/components/schemas/Error"
    for template, item in doc["paths"].items():
        pattern = "/".join("[^/]+" if seg.startswith("{") else re.escape(seg) for seg in template.split("/"))
        if not re.fullmatch(pattern, route):
            continue
        op = "/".join(("#/paths", template.replace("~", "~0").replace("/", "~1"),
                       method.lower() if method.lower() in item else "get"))
        responses = item.get(method.lower(), item["get"])["responses"]
        if str(r.status) not in responses:
            raise TestFailure("%s: docs/openapi.json documents no %d for %s" % (where, r.status, op))
        at = "%s/responses/%d" % (op, r.status)
        response = responses[str(r.status)]
        if "$ref" in response:
            at = response["$ref"]
            response = doc["components"]["responses"][at.rsplit("/", 1)[1]]
        if ctype not in response.get("content", {}):
            raise TestFailure("%s: docs/openapi.json has no %s body at %s" % (where, ctype, at))
        pointer = "%s/content/%s/schema" % (at, ctype.replace("/", "~1"))
        break
    if pointer not in _contract:
        # The whole document as the root schema, so that every $ref in it resolves.
        _contract[pointer] = jsonschema.Draft202012Validator(dict(doc, **{"$ref": pointer}))
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise TestFailure("%s: the body is not JSON (%s): %r" % (where, e, body[:300]))
    errors = sorted(_contract[pointer].iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        raise TestFailure("%s: the body does not match docs/openapi.json's %s: %s" % (
            where, pointer, "; ".join("%s at /%s" % (e.message[:300], "/".join(map(str, e.absolute_path)))
                                      for e in errors[:5])))


def http_request(port, method, path, headers=None, body=None, timeout=HTTP_TIMEOUT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        response = Response(r.status, r.getheaders(), data)
    finally:
        conn.close()
    check_contract(method, path, response)
    return response


def http_get(port, path, headers=None, timeout=HTTP_TIMEOUT):
    """(status, headers dict lower-case, body bytes) of GET path."""
    r = http_request(port, "GET", path, headers, timeout=timeout)
    return r.status, r.headers, r.body


def get_json(port, path, headers=None, timeout=HTTP_TIMEOUT):
    r = http_request(port, "GET", path, headers, timeout=timeout)
    return r.status, r.json()


def raw_request(port, data, timeout=HTTP_TIMEOUT):
    """Sends raw bytes, returns every byte received until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


class Daemon:
    """One moviesd process. Output lines are kept (self.lines()) for assertions."""

    def __init__(self, args, env=None):
        self.args = [moviesd_bin()] + list(args)
        self.env = env
        self.proc = None
        self.port = None
        self._lines = []            # (stream, text)
        self._cond = threading.Condition()
        self._readers = []

    def start(self, wait_listening=True):
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_PID", None)
        env.pop("LISTEN_FDS", None)
        for k in list(env):
            if k.startswith("MOVIESD_") and k != "TEST_DAEMON_BIN":
                env.pop(k)
        env.pop("TEST_DAEMON_BIN", None)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        track_child(self.proc)
        for name, stream in (("stderr", self.proc.stderr), ("stdout", self.proc.stdout)):
            t = threading.Thread(target=self._reader, args=(name, stream), daemon=True)
            t.start()
            self._readers.append(t)
        if wait_listening:
            m = self.wait_for_line(r"listening on 127\.0\.0\.1:(\d+)", START_TIMEOUT,
                                   stop_on_exit=True)
            if not m:
                raise TestFailure("moviesd did not report 'listening on 127.0.0.1:PORT' within "
                                  "%.0fs (exit status %r)\n%s"
                                  % (START_TIMEOUT, self.proc.poll(), self.output_tail()))
            self.port = int(m.group(1))
        return self

    def _reader(self, name, stream):
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self._lines.append((name, text))
                self._cond.notify_all()
        with self._cond:
            self._lines.append((name, None))    # EOF marker
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def lines(self, stream="stderr"):
        with self._cond:
            return [t for s, t in self._lines if s == stream and t is not None]

    def mark(self, stream="stderr"):
        """A position in the output: later waits/finds can start there."""
        return len(self.lines(stream))

    def _eof(self, stream):
        return any(s == stream and t is None for s, t in self._lines)

    def wait_for_line(self, pattern, timeout, start=0, stream="stderr", stop_on_exit=True):
        """The re.search match of the first line from index start matching pattern, or None
        after timeout (or, with stop_on_exit, once the stream has ended)."""
        found = self.wait_for_line_index(pattern, timeout, start, stream, stop_on_exit)
        return found[1] if found else None

    def wait_for_line_index(self, pattern, timeout, start=0, stream="stderr", stop_on_exit=True):
        """(index, match) of the first line from index start matching pattern, or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                lines = [t for s, t in self._lines if s == stream and t is not None]
                for i in range(start, len(lines)):
                    m = rx.search(lines[i])
                    if m:
                        return i, m
                left = deadline - time.monotonic()
                if left <= 0 or (stop_on_exit and self._eof(stream)):
                    return None
                self._cond.wait(min(left, 0.1))

    def find_lines(self, pattern, start=0, stream="stderr"):
        rx = re.compile(pattern)
        return [l for l in self.lines(stream)[start:] if rx.search(l)]

    def output_tail(self, n=60):
        """The last n output lines; a sanitizer report is shown from its start."""
        with self._cond:
            lines = ["[%s] %s" % (s, t) for s, t in self._lines if t is not None]
        first = next((i for i, l in enumerate(lines) if SANITIZER_RE.search(l)), None)
        if first is not None and first < len(lines) - n:
            head = lines[max(0, first - 2):first + 40]
            return "\n".join(head + ["[...]"] + lines[-n:])
        return "\n".join(lines[-n:])

    def sanitizer_report(self):
        """The first lines of an ASan/UBSan/LSan report in the output, or None."""
        lines = self.lines()
        first = next((i for i, l in enumerate(lines) if SANITIZER_RE.search(l)), None)
        return None if first is None else "\n".join(lines[first:first + 25])

    # -- HTTP --------------------------------------------------------------------------
    # Most tests check what a complete answer holds: their /movies requests ask for it
    # (wait=details) unless the test turns this off to see the listing-first answer.
    complete_answers = True

    def target(self, path):
        if self.complete_answers and path.startswith("/movies?") and "wait=" not in path:
            return path + "&wait=details"
        return path

    def request(self, method, path, headers=None, body=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, method, self.target(path), headers, body, timeout)

    def get(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, "GET", self.target(path), headers, timeout=timeout)

    def head(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, "HEAD", self.target(path), headers, timeout=timeout)

    def get_json(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return get_json(self.port, self.target(path), headers, timeout)

    # -- process -----------------------------------------------------------------------
    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Exit status, or raises TestFailure if still running after timeout."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("moviesd (pid %d) still running after %.1fs" % (self.pid, timeout))
        for t in self._readers:
            t.join(2)
        return rc

    def stop(self, timeout=10.0):
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure("moviesd did not exit within %.1fs of SIGTERM" % timeout)
        rc = self.proc.wait()
        for t in self._readers:
            t.join(2)
        untrack_child(self.proc)
        return rc

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for t in self._readers:
            t.join(2)
        untrack_child(self.proc)

    def rss_peak_kib(self):
        """VmHWM of the running process in KiB (Linux), or None."""
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def rss_kib(self):
        """VmRSS (resident set size now) of the running process in KiB (Linux), or None."""
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def fd_targets(self):
        """{fd number: readlink target} of the running process's open fds (Linux); fds
        closed while listing are skipped."""
        out = {}
        base = "/proc/%d/fd" % self.pid
        for name in os.listdir(base):
            try:
                out[int(name)] = os.readlink(os.path.join(base, name))
            except OSError:
                pass
        return out

    def uses_asan(self):
        """True when the running process has the AddressSanitizer runtime loaded."""
        try:
            with open("/proc/%d/maps" % self.pid) as f:
                return "libasan" in f.read()
        except OSError:
            return False


def tcp_sockets():
    """{socket inode: (local port, remote port, state hex)} of the IPv4 and IPv6 TCP sockets in
    this network namespace (/proc/net/tcp, tcp6). State "0A" is LISTEN."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) < 10:
                        continue
                    out[int(p[9])] = (int(p[1].rsplit(":", 1)[1], 16),
                                      int(p[2].rsplit(":", 1)[1], 16), p[3])
        except OSError:
            pass
    return out


def daemon_args(fake, flags=(), fast=True):
    args = ["--listen", "127.0.0.1:0", "--upstream", fake.base_url]
    if fast:
        args += FAST
    return args + list(flags)


class running:
    """with running(fake, flags) as d: a started daemon, stopped (SIGTERM, then SIGKILL) and
    reaped at the end; on failure inside the block its output is printed. With check_exit
    (the default) the block fails if the daemon's exit status is not 0 (SIGTERM must exit 0;
    sanitizer builds exit non-zero on leaks) or its output holds a sanitizer report."""

    def __init__(self, fake, flags=(), fast=True, env=None, check_exit=True):
        self.daemon = Daemon(daemon_args(fake, flags, fast), env)
        self.check_exit = check_exit

    def __enter__(self):
        try:
            return self.daemon.start()
        except BaseException:
            self._dump()
            self.daemon.kill()
            raise

    def _dump(self):
        sys.stdout.write("---- moviesd output (pid %s, last lines) ----\n%s\n----\n"
                         % (self.daemon.proc.pid if self.daemon.proc else "?",
                            self.daemon.output_tail()))

    def __exit__(self, exc_type, exc, tb):
        rc = None
        try:
            if self.daemon.proc is not None and self.daemon.proc.poll() is None:
                try:
                    rc = self.daemon.stop(10)
                except TestFailure:
                    if exc_type is None:
                        raise
            else:
                rc = self.daemon.proc.poll() if self.daemon.proc else None
                self.daemon.kill()
        finally:
            if exc_type is not None:
                self._dump()
        if exc_type is None:
            report = self.daemon.sanitizer_report()
            if report:
                self._dump()
                raise TestFailure("sanitizer report in moviesd's output:\n" + report)
            if self.check_exit and rc != 0:
                self._dump()
                raise TestFailure("moviesd exited with status %r (expected 0 after SIGTERM)" % rc)
        return False


class scenario:
    """with scenario(flags, cities=..., setup=fn) as (fake, d): a fresh fake upstream and a
    daemon pointed at it; both are stopped at the end."""

    def __init__(self, flags=(), fast=True, cities=None, movies=None, env=None, setup=None,
                 check_exit=True):
        kw = {}
        if cities is not None:
            kw["cities"] = cities
        if movies is not None:
            kw["default_movies"] = movies
        self.fake = FakeDouban(**kw)
        self.flags = flags
        self.fast = fast
        self.env = env
        self.setup = setup
        self.check_exit = check_exit
        self._running = None

    def __enter__(self):
        self.fake.start()
        try:
            if self.setup:
                self.setup(self.fake)
            self._running = running(self.fake, self.flags, self.fast, self.env, self.check_exit)
            d = self._running.__enter__()
        except BaseException:
            self.fake.stop()
            raise
        return self.fake, d

    def __exit__(self, *exc):
        try:
            return self._running.__exit__(*exc)
        finally:
            self.fake.stop()


def run_cli(args, timeout=60.0, env=None):
    """Runs moviesd with args to completion: (exit status, stdout text, stderr text)."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("MOVIESD_"):
            e.pop(k)
    if env:
        e.update(env)
    p = subprocess.Popen([moviesd_bin()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    track_child(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise TestFailure("moviesd %s did not finish within %.0fs; stderr:\n%s"
                          % (" ".join(args), timeout, err.decode("utf-8", "replace")[-3000:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        untrack_child(p)
    err_text = err.decode("utf-8", "replace")
    m = SANITIZER_RE.search(err_text)
    if m:
        raise TestFailure("sanitizer report from moviesd %s:\n%s"
                          % (" ".join(args), err_text[max(0, m.start() - 200):][:3000]))
    return p.returncode, out.decode("utf-8", "replace"), err_text


# ----------------------------------------------------------------------------------------
# Contract checks shared by the scripts
# ----------------------------------------------------------------------------------------

def _city_names():
    """slug -> Chinese name, from the city table the daemon is built with."""
    with open(os.path.join(REPO, "lib", "city_table.c"), encoding="utf-8") as f:
        return dict(re.findall(r'^\s*\{"([a-z0-9]+)", "[0-9]+", "([^"]+)"\},', f.read(), re.M))


CITY_NAMES = _city_names()
TOP_KEYS = {"city", "city_name", "source", "fetched_at", "count", "complete", "pending", "stale", "movies"}
FETCHED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def expect_json_type(r):
    ct = r.headers.get("content-type", "")
    expect_eq(ct.replace(" ", "").lower(), "application/json;charset=utf-8", "Content-Type")


def expect_error(r, status, code, msg=""):
    """r is an error answer: status, JSON {"error": {"code": code, "message": str}}."""
    where = (msg + ": ") if msg else ""
    expect(r.status == status, "%sexpected HTTP %d %s, got %d: %r" % (where, status, code,
                                                                      r.status, r.body[:300]))
    expect_json_type(r)
    doc = r.json()
    expect(isinstance(doc, dict) and isinstance(doc.get("error"), dict),
           "%serror body is not {\"error\": {...}}: %r" % (where, doc))
    expect_eq(doc["error"].get("code"), code, where + "error.code")
    m = doc["error"].get("message")
    expect(isinstance(m, str) and m.strip(), "%serror.message missing or empty: %r" % (where, doc))
    return doc


def expect_answer(r, fake, city, kind="later"):
    """r is a 200 movies answer for city's listing of kind; returns the document."""
    expect(r.status == 200, "GET /movies?city=%s: expected 200, got %d: %r"
           % (city, r.status, r.body[:400]))
    expect_json_type(r)
    return expect_doc(r.json(), fake, city, kind)


def expect_doc(doc, fake, city, kind="later"):
    """doc is a movies document for city's listing of kind ("later", "nowplaying"), from the
    API or `moviesd fetch`."""
    expect(isinstance(doc, dict), "answer is not an object: %r" % (doc,))
    expect_eq(set(doc), TOP_KEYS, "top-level keys")
    expect_eq(doc["city"], city, "city")
    expect_eq(doc["city_name"], CITY_NAMES.get(city), "city_name")
    expect_eq(doc["source"], "%s/cinema/%s/%s/" % (fake.base_url, kind, city), "source")
    expect(isinstance(doc["fetched_at"], str) and FETCHED_AT_RE.match(doc["fetched_at"]),
           "fetched_at not YYYY-MM-DDTHH:MM:SSZ: %r" % doc["fetched_at"])
    t = calendar.timegm(time.strptime(doc["fetched_at"], "%Y-%m-%dT%H:%M:%SZ"))
    expect(abs(t - time.time()) < 300, "fetched_at %s is not now" % doc["fetched_at"])
    expect(isinstance(doc["movies"], list), "movies is not a list")
    expect_eq(doc["count"], len(doc["movies"]), "count")
    for m in doc["movies"]:
        expect(isinstance(m, dict), "movie is not an object: %r" % (m,))
        expect_eq(sorted(m), sorted(MOVIE_KEYS), "keys of movie %s" % m.get("id"))
        expect(m["detail_status"] in ("ok", "pending", "failed"),
               "detail_status of %s: %r" % (m["id"], m["detail_status"]))
        expect_eq(m["detail_error"] is not None, m["detail_status"] == "failed",
                  "movie %s: detail_error set exactly when detail_status is failed" % m["id"])
    pending = sum(m["detail_status"] == "pending" for m in doc["movies"])
    failed = sum(m["detail_status"] == "failed" for m in doc["movies"])
    expect_eq(doc["pending"], pending, "pending: the movies marked pending")
    # Not complete: movies pending, or failed ones still to be asked again.
    expect(not doc["complete"] or pending == 0, "complete with %d movies pending" % pending)
    expect(doc["complete"] or pending > 0 or failed > 0,
           "not complete with nothing pending or failed")
    return doc


def diff_movie(actual, expected, skip=()):
    """Field names (and values) where actual differs from expected."""
    out = []
    for k in MOVIE_KEYS:
        if k in skip:
            continue
        if actual.get(k) != expected.get(k):
            out.append("%s: expected %r, got %r" % (k, expected.get(k), actual.get(k)))
    return out


def expect_movie(actual, mid, skip=()):
    d = diff_movie(actual, expected_movie(mid), skip)
    expect(not d, "movie %s differs:\n    %s" % (mid, "\n    ".join(d)))


def access_log_lines(d, path_fragment, start=0):
    return d.find_lines(re.escape(path_fragment), start)


# Prometheus text format: one sample per line, "name{label="value",...} number".
_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_metrics(text):
    """{(name, ((label, value), ...) sorted): float} of a Prometheus text exposition;
    TestFailure on a line that is neither a comment nor a well-formed sample."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise TestFailure("malformed /metrics line: %r" % line)
        labels = []
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = _LABEL_RE.match(rest, pos)
            if not lm or lm.end() == pos:
                raise TestFailure("malformed labels in /metrics line: %r" % line)
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        try:
            value = float(m.group(3))
        except ValueError:
            raise TestFailure("malformed value in /metrics line: %r" % line)
        out[(m.group(1), tuple(sorted(labels)))] = value
    return out


def get_metrics(d):
    """The daemon's /metrics, parsed (see parse_metrics)."""
    r = d.get("/metrics")
    expect(r.status == 200, "GET /metrics: %d %r" % (r.status, r.body[:200]))
    return parse_metrics(r.body.decode("utf-8"))


def metric(samples, name, **labels):
    """The value of one sample of parse_metrics() output, or None if absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def readyz_breaker(d):
    """The breaker as /readyz reports it, {"open": bool} plus "retry_after" (seconds) while
    open; TestFailure unless /readyz is 200 {"status": "ready", "breaker": ...}. An open
    breaker leaves the daemon ready: cached answers are still served."""
    r = d.get("/readyz")
    expect(r.status == 200, "GET /readyz: %d %r" % (r.status, r.body[:200]))
    doc = r.json()
    expect(isinstance(doc, dict) and doc.get("status") == "ready", "/readyz body %r" % (doc,))
    b = doc.get("breaker")
    expect(isinstance(b, dict) and isinstance(b.get("open"), bool),
           "/readyz without a breaker {\"open\": bool}: %r" % (doc,))
    if b["open"]:
        ra = b.get("retry_after")
        expect(isinstance(ra, int) and not isinstance(ra, bool) and ra > 0,
               "/readyz breaker.retry_after %r while open" % (ra,))
    else:
        expect_eq(set(b), {"open"}, "/readyz breaker keys while closed")
    return b


def breaker_closed(d):
    """True when /readyz says the breaker is closed (requests go to the upstream). For polling."""
    return not readyz_breaker(d)["open"]


# ----------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------

_tests = []
_state = {"passed": 0, "failed": 0, "current": None, "done": False}
_state_lock = threading.Lock()


def test(fn):
    """Registers fn as a test (run in definition order)."""
    _tests.append(fn)
    return fn


def _on_deadline(deadline):
    with _state_lock:
        if _state["done"]:
            return
        _state["done"] = True
        sys.stdout.write("\nTIMEOUT: script deadline of %.0fs exceeded during %s\n"
                         % (deadline, _state["current"]))
        kill_children()
        failed = _state["failed"] + 1
        sys.stdout.write("%d passed, %d failed\n" % (_state["passed"], failed))
        sys.stdout.flush()
    os._exit(1)


def run(deadline=120.0, needs_daemon=True):
    """Runs the registered tests (or those named on the command line), prints one line per
    test and a final "N passed, N failed"; exits non-zero on any failure or on the deadline."""
    names = sys.argv[1:]
    selected = [t for t in _tests if not names or t.__name__ in names]
    timer = threading.Timer(deadline, _on_deadline, args=(deadline,))
    timer.daemon = True
    timer.start()
    script = os.path.basename(sys.argv[0])
    try:
        if needs_daemon:
            moviesd_bin()
    except TestFailure as e:
        print("%s: %s" % (script, e))
        with _state_lock:
            _state["done"] = True
        timer.cancel()
        print("0 passed, %d failed" % len(selected))
        sys.exit(1)
    t_start = time.monotonic()
    for fn in selected:
        with _state_lock:
            _state["current"] = fn.__name__
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            dt = time.monotonic() - t0
            with _state_lock:
                _state["failed"] += 1
            print("FAIL %s (%.1fs): %s" % (fn.__name__, dt, e if isinstance(e, TestFailure)
                                           else "%s: %s" % (type(e).__name__, e)))
            if not isinstance(e, TestFailure):
                traceback.print_exc(file=sys.stdout)
        else:
            dt = time.monotonic() - t0
            with _state_lock:
                _state["passed"] += 1
            print("PASS %s (%.1fs)" % (fn.__name__, dt))
        sys.stdout.flush()
        kill_children()
    with _state_lock:
        if _state["done"]:
            return
        _state["done"] = True
        passed, failed = _state["passed"], _state["failed"]
    timer.cancel()
    print("%s: %.1fs" % (script, time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    sys.exit(0 if failed == 0 else 1)


def serve_once(port, timeout=2.0):
    """True when a new connection gets /healthz answered 200 within timeout; False while the
    daemon sheds it (refused, reset, closed or unanswered). For polling."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def call_in_background(fn, *args, **kwargs):
    """Starts fn(*args, **kwargs) on a daemon thread; returns (thread, result) where result gets
    "r" (what fn returned) or "e" (the exception it raised) once the thread ends, and is empty
    while it runs."""
    result = {}

    def call():
        try:
            result["r"] = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            result["e"] = e
    t = threading.Thread(target=call, daemon=True)
    t.start()
    return t, result


def get_in_background(d, path, timeout=30):
    """Starts d.get(path) on a thread: (thread, result) as call_in_background, "r" the Response."""
    return call_in_background(d.get, path, timeout=timeout)
