"""What the Redis tests (test_redis_*.py) share: a redis-server of their own, a small client
to look at it, and tests/redis_driver.c, which runs lib/redis.c and lib/fleet.c.

    from redis_support import RedisServer, Driver, require_redis

    require_redis()                 # exits 77 (skipped), with the reason, without redis-server
    with RedisServer() as server:
        with Driver(server.url) as d:
            d.wait_up()
            expect_eq(d.call("cmd", "PING")["reply"], "PONG")

A server listens on a free loopback port (and a unix socket) with no persistence, in a
temporary folder, and is stopped by PID (SIGKILL) at the end of its block; pause() and
resume() SIGSTOP and SIGCONT it. A driver is one process: call() sends a command and waits
for the event with its id; its stderr (the log) is kept for assertions.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import (SANITIZER_RE, TestFailure, track_child, untrack_child,  # noqa: F401
                     wait_until)

START_TIMEOUT = 10.0


def redis_server_bin():
    return os.environ.get("TEST_REDIS_SERVER") or shutil.which("redis-server") or ""


def require_redis():
    """Exits 77, which CTest shows as skipped, when there is no redis-server to test with."""
    if not redis_server_bin():
        print("skipped: no redis-server (deps/test.txt installs it; TEST_REDIS_SERVER names it)")
        sys.exit(77)
    driver_bin()


def driver_bin():
    path = os.environ.get("TEST_REDIS_DRIVER") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "redis_driver")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise TestFailure("redis_driver not found: %s (set TEST_REDIS_DRIVER)" % path)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ----------------------------------------------------------------------------------------
# A minimal RESP client, to look at the server from outside the code under test
# ----------------------------------------------------------------------------------------

def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError("bad reply %r" % line)


class RedisError(Exception):
    pass


def raw(port, *args, password=None, db=0, timeout=5.0):
    """The reply to one command (bytes for bulk strings, RedisError for an error reply)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        f = s.makefile("rb")
        if password is not None:
            s.sendall(_encode(["AUTH", password]))
            _read_reply(f)
        if db:
            s.sendall(_encode(["SELECT", db]))
            _read_reply(f)
        s.sendall(_encode(args))
        return _read_reply(f)
    finally:
        s.close()


# ----------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------

class RedisServer:
    """A redis-server of the test's own; with RedisServer(args) as server: ..."""

    def __init__(self, args=(), password=None):
        self.args = list(args)
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="moviesd-redis-")
        self.port = None
        self.proc = None
        self.socket_path = os.path.join(self.dir, "redis.sock")

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        """Starts (or restarts, on the same port) the server and waits until it answers."""
        for attempt in range(5):
            port = self.port or free_port()
            cmd = [redis_server_bin(), "--port", str(port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.dir,
                   "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                   "--daemonize", "no", "--loglevel", "warning", "--logfile", ""]
            if self.password is not None:
                cmd += ["--requirepass", self.password]
            self.proc = subprocess.Popen(cmd + self.args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            track_child(self.proc)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if raw(port, "PING", password=self.password, timeout=1) == "PONG":
                        self.port = port
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            self._reap()
            if self.port is not None and attempt >= 2:
                break   # the port it must keep is taken
        raise TestFailure("redis-server did not start")

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                # A stopped process dies of SIGKILL without running again.
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        untrack_child(self.proc)
        self.proc = None

    def kill(self):
        """SIGKILL by PID: connections drop at once, as when the host dies."""
        self._reap()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def cmd(self, *args, db=0):
        return raw(self.port, *args, password=self.password, db=db)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self._reap()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


# ----------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------

class Driver:
    """One tests/redis_driver.c process; with Driver(url, ...) as d: ..."""

    def __init__(self, url, timeout_ms=250, window_ms=None, poll_ms=None, env=None):
        self.args = [driver_bin(), "--url", url, "--timeout-ms", str(timeout_ms)]
        if window_ms is not None:
            self.args += ["--window-ms", str(window_ms)]
        if poll_ms is not None:
            self.args += ["--poll-ms", str(poll_ms)]
        self.env = env
        self.events = []
        self.log = []
        self.cond = threading.Condition()
        self.next_id = 0
        self.proc = None
        self.threads = []
        self.killed = False

    def start(self):
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        track_child(self.proc)
        for target, stream in ((self._read_events, self.proc.stdout),
                               (self._read_log, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _read_events(self, stream):
        for line in iter(stream.readline, b""):
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "text": line.decode("utf-8", "replace")}
            event["at"] = time.monotonic()
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def _read_log(self, stream):
        for line in iter(stream.readline, b""):
            with self.cond:
                self.log.append(line.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()

    def send(self, *words):
        """Sends one command; returns its id."""
        with self.cond:
            self.next_id += 1
            rid = "r%d" % self.next_id
        self.proc.stdin.write((" ".join([rid] + [str(w) for w in words]) + "\n").encode())
        self.proc.stdin.flush()
        return rid

    def wait_event(self, pred, timeout, what="an event"):
        """The first event for which pred(event) is true, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TestFailure("redis_driver: no %s within %.1fs (exit %r)\n%s"
                                      % (what, timeout, self.proc.poll(), self.tail()))
                self.cond.wait(min(left, 0.1))

    def reply(self, rid, timeout=5.0, event=None):
        return self.wait_event(lambda e: e.get("id") == rid and (event is None or
                                                                 e["event"] == event),
                               timeout, "answer to %s" % rid)

    def call(self, *words, timeout=5.0):
        """Sends a command and returns the event answering it."""
        return self.reply(self.send(*words), timeout)

    def events_of(self, rid, event):
        with self.cond:
            return [e for e in self.events if e.get("id") == rid and e["event"] == event]

    def state_events(self):
        with self.cond:
            return [e["event"] for e in self.events if e["event"] in ("up", "down")]

    def wait_up(self, timeout=5.0):
        wait_until(lambda: self.call("state")["up"], timeout, "the driver's client up",
                   interval=0.02)

    def wait_subscribed(self, timeout=5.0):
        wait_until(lambda: self.call("state")["subscribed"], timeout,
                   "the driver's subscription", interval=0.02)

    def log_lines(self, needle):
        with self.cond:
            return [l for l in self.log if needle in l]

    def tail(self, n=30):
        with self.cond:
            return "\n".join(self.log[-n:])

    def quit(self, timeout=10.0):
        """Asks the driver to free everything and exit; checks it exits 0 without a sanitizer
        report (ASan builds report leaks and use-after-free there)."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("redis_driver did not exit within %.0fs of quit" % timeout)
        for t in self.threads:
            t.join(5)
        untrack_child(self.proc)
        report = [l for l in self.log if SANITIZER_RE.search(l)]
        if report:
            raise TestFailure("sanitizer report from redis_driver:\n" + "\n".join(self.log[-60:]))
        if rc != 0:
            raise TestFailure("redis_driver exited %r\n%s" % (rc, self.tail()))

    def kill(self):
        """SIGKILL by PID, as a replica dies; the block's end then checks nothing more."""
        self.killed = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        untrack_child(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            sys.stdout.write("---- redis_driver log (last lines) ----\n%s\n----\n" % self.tail())
            self.kill()
            return False
        if not self.killed:
            self.quit()
        return False
