#!/usr/bin/env python3
"""The daemon's side of Type=notify, with this test playing the service manager: a datagram
socket as NOTIFY_SOCKET, WATCHDOG_USEC=1000000 and WATCHDOG_PID set to the daemon's PID, as
systemd sets them. Expected: READY=1 once /healthz already answers, STATUS= lines, WATCHDOG=1
at about half the interval, STOPPING=1 on SIGTERM and exit status 0. Then the same with
WATCHDOG_PID naming another process: no watchdog pings at all.
"""
import os
import signal
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

WATCHDOG_USEC = 1_000_000


class Manager:
    """Receives notifications on a datagram socket and keeps (time, line) pairs."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.lines = []
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._cv:
                for line in data.decode("utf-8", "replace").split("\n"):
                    if line:
                        self.lines.append((now, line))
                self._cv.notify_all()

    def wait_for(self, line, timeout):
        """The time line arrived, waiting up to timeout seconds; None if it did not."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for t, got in self.lines:
                    if got == line:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(left)

    def times(self, line, since=0.0):
        with self._cv:
            return [t for t, got in self.lines if got == line and t >= since]

    def starting(self, prefix):
        with self._cv:
            return [got for _, got in self.lines if got.startswith(prefix)]

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def start(moviesd, upstream_url, notify_path, port, watchdog_pid):
    """Starts the daemon under a shell that exports WATCHDOG_PID (its own PID after exec, or
    another one) the way systemd does, then execs it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MOVIESD_", "LISTEN_", "WATCHDOG_"))}
    env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    pid = "$$" if watchdog_pid is None else str(watchdog_pid)
    script = f'WATCHDOG_PID={pid}; export WATCHDOG_PID; exec "$0" "$@"'
    return dt.Process(["/bin/sh", "-c", script, moviesd, "--listen", f"127.0.0.1:{port}",
                       "--upstream", upstream_url], env=env)


def supervised(c, moviesd, upstream_url, tmp):
    """The daemon is the watched process: READY, STATUS, pings, STOPPING, exit 0."""
    mgr = Manager(os.path.join(tmp, "notify"))
    port = dt.free_port()
    daemon = start(moviesd, upstream_url, os.path.join(tmp, "notify"), port, None)
    try:
        ready = mgr.wait_for("READY=1", 20)
        healthy = dt.http_get(f"http://127.0.0.1:{port}/healthz", timeout=5)[0] == 200
        c.check(ready is not None, "READY=1 received", daemon.stderr.text()[-2000:])
        c.check(healthy, "/healthz answers as soon as READY=1 arrives")
        if ready is None:
            return
        # Watch for three intervals.
        time.sleep(3 * WATCHDOG_USEC / 1e6)
        pings = mgr.times("WATCHDOG=1", since=ready)
        gaps = [b - a for a, b in zip([ready] + pings, pings)]
        print(f"watchdog pings in 3 s: {len(pings)}, gaps: " +
              " ".join(f"{g:.2f}" for g in gaps))
        half = WATCHDOG_USEC / 2e6
        c.check(len(pings) >= 4, "WATCHDOG=1 pings keep coming", f"{len(pings)} in 3 s")
        c.check(bool(gaps) and max(gaps) <= half * 1.5,
                f"pings at about half the interval (every gap <= {half * 1.5:.2f} s)",
                f"max gap {max(gaps) if gaps else None}")
        c.check(len(pings) <= 3 / (half / 2), "pings are not a busy loop", f"{len(pings)} in 3 s")
        status = mgr.starting("STATUS=")
        print("status lines: " + " | ".join(status))
        c.check(len(status) >= 1 and all(len(s) > len("STATUS=") for s in status),
                "STATUS= lines with text")
        daemon.proc.send_signal(signal.SIGTERM)
        stopping = mgr.wait_for("STOPPING=1", 10)
        code = daemon.wait(15)
        c.check(stopping is not None, "STOPPING=1 on SIGTERM")
        c.check(code == 0, "SIGTERM -> exit status 0", f"status {code}")
    finally:
        daemon.kill()
        print("--- daemon stderr ---\n" + daemon.stderr.text()[-2000:])
        mgr.close()


def not_watched(c, moviesd, upstream_url, tmp):
    """WATCHDOG_PID names another process (PID 1): notifications yes, pings no."""
    mgr = Manager(os.path.join(tmp, "notify2"))
    port = dt.free_port()
    daemon = start(moviesd, upstream_url, os.path.join(tmp, "notify2"), port, 1)
    try:
        ready = mgr.wait_for("READY=1", 20)
        c.check(ready is not None, "READY=1 received with a foreign WATCHDOG_PID")
        time.sleep(1.5)
        pings = mgr.times("WATCHDOG=1")
        c.check(not pings, "no WATCHDOG=1 when WATCHDOG_PID is another process",
                f"{len(pings)} pings")
        code = daemon.terminate(15)
        c.check(code == 0, "SIGTERM -> exit status 0", f"status {code}")
    finally:
        daemon.kill()
        mgr.close()


def main():
    moviesd = dt.moviesd_bin()
    c = dt.Checks("notify")
    upstream, upstream_url = dt.start_fake_upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="moviesd-notify.") as tmp:
            supervised(c, moviesd, upstream_url, tmp)
            not_watched(c, moviesd, upstream_url, tmp)
    finally:
        upstream.kill()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
