"""Shared pieces of the deployment tests: locating the daemon, free loopback ports, the fake
upstream, HTTP probes and a check counter that ends with the "N passed, N failed" line.

Everything talks to 127.0.0.1 only, waits with deadlines and stops what it started by PID.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MISSING = 1  # a missing tool is a failure: deps/test.txt installs them


def moviesd_bin():
    """The daemon under test: $TEST_DAEMON_BIN (set by CTest), else build/moviesd."""
    path = os.environ.get("TEST_DAEMON_BIN") or os.path.join(REPO, "build", "moviesd")
    if not os.access(path, os.X_OK):
        print(f"FAIL: no daemon at {path} (build it or set TEST_DAEMON_BIN)")
        sys.exit(MISSING)
    return path


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_refuses(port):
    """True when a connection to 127.0.0.1:port is refused (nothing listens there)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def http_get(url, timeout=10):
    """(status, body bytes) of a GET; status 0 when the connection itself failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def movies_in(body):
    """The movie list of a /movies answer (a bare list, or under "movies"), or None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict):
        doc = doc.get("movies")
    return doc if isinstance(doc, list) else None


class Output:
    """Collects a child's stream in a thread, so the pipe never fills and stalls it."""

    def __init__(self, stream):
        self.lines = []
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()

    def wait_for(self, needle, timeout):
        """The first line containing needle, waiting up to timeout seconds; None if none."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(left)

    def text(self):
        with self._cv:
            return "\n".join(self.lines)


class Process:
    """A child started by this test, stopped by its own PID (group) whatever happens."""

    def __init__(self, argv, env=None, stdout=subprocess.DEVNULL):
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.stderr = Output(self.proc.stderr)
        self.stdout = Output(self.proc.stdout) if stdout == subprocess.PIPE else None

    @property
    def pid(self):
        return self.proc.pid

    def terminate(self, timeout=10):
        """SIGTERM, then wait; returns the exit status, or None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def wait(self, timeout=10):
        """Waits for the exit without signalling; the status, or None if it had to be killed."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


def start_fake_upstream(movies=40, timeout=15):
    """Starts tests/fake_upstream.py on a free port; returns (Process, base URL)."""
    script = os.path.join(REPO, "tests", "fake_upstream.py")
    if not os.path.exists(script):
        print(f"FAIL: {script} is missing")
        sys.exit(MISSING)
    proc = Process([sys.executable, script, "--port", "0", "--movies", str(movies)],
                   stdout=subprocess.PIPE)
    line = proc.stdout.wait_for("listening on", timeout)
    if line is None:
        proc.kill()
        raise RuntimeError("fake upstream did not start:\n" + proc.stderr.text())
    addr = line.split("listening on", 1)[1].split()[0]
    return proc, "http://" + addr


def wait_http(url, timeout, status=200):
    """Polls url until it answers with status; returns True if it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_get(url, timeout=2)[0] == status:
            return True
        time.sleep(0.1)
    return False


class Checks:
    """Counts checks, prints each, and ends with the summary line CTest logs keep."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
        return cond

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1
