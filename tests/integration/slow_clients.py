"""Slow clients (slowloris) in a child process of their own, so that their thousands of
sockets share no interpreter lock with the test's own client, whose times are measured.

    with SlowClients(port, count=2000, addresses=40, interval=5.0, seconds=14.0) as t:
        t.wait_open(timeout)           # every connection is open and has sent its first bytes
        ...
        result = t.result(timeout)     # once `seconds` have passed

Each connection comes from its own loopback source address among 127.0.0.2 ..
127.0.0.<addresses + 1> (taken in turn), sends the start of a request to 127.0.0.1:port, then
one more header byte every `interval` seconds, never finishing it. result() is
{"opened": n, "connect_errors": [text], "closed": [[seconds open, bytes received]], "still_open": n}:
"closed" lists the connections the server closed, with what it sent them (the first 512 bytes).
The child is this file run as a script; the harness tracks it and it is stopped by PID.

Python 3.11 standard library only.
"""

import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

REQUEST_START = b"GET /movies?city=beijing HTTP/1.1\r\nHost: x\r\nX-Slow: "


def raise_open_file_limit():
    """Raises this process's soft RLIMIT_NOFILE to its hard limit (thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SlowClients:
    """The child process running slow_clients(); stopped (SIGKILL) and reaped at the end."""

    def __init__(self, port, count, addresses, interval, seconds):
        self.args = [str(port), str(count), str(addresses), str(interval), str(seconds)]
        self.proc = None

    def __enter__(self):
        from harness import track_child
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        track_child(self.proc)
        return self

    def _line(self, timeout):
        """The child's next stdout line, or TestFailure after timeout seconds."""
        from harness import TestFailure
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TestFailure("the slow clients' process said nothing within %.0f s" % timeout)
        line = self.proc.stdout.readline()
        if not line:
            raise TestFailure("the slow clients' process ended early (status %r)" % self.proc.wait())
        return line.decode()

    def wait_open(self, timeout):
        """Seconds the child took to open every connection (it prints "open SECONDS")."""
        words = self._line(timeout).split()
        return float(words[1])

    def result(self, timeout):
        return json.loads(self._line(timeout))

    def __exit__(self, *exc):
        from harness import untrack_child
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        untrack_child(self.proc)
        return False


def slow_clients(port, count, addresses, interval, seconds):
    raise_open_file_limit()
    sel = selectors.DefaultSelector()
    socks = {}          # fd -> [socket, opened at, next send at, received]
    errors = []
    t_start = time.monotonic()
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.%d" % (2 + i % addresses), 0))
            s.connect(("127.0.0.1", port))
            s.sendall(REQUEST_START)
        except OSError as e:
            errors.append("%s: %s" % (type(e).__name__, e))
            s.close()
            continue
        s.setblocking(False)
        now = time.monotonic()
        socks[s.fileno()] = [s, now, now + interval, b""]
        sel.register(s, selectors.EVENT_READ)
    print("open %.3f" % (time.monotonic() - t_start), flush=True)
    closed = []
    stop_at = t_start + seconds
    while socks and time.monotonic() < stop_at:
        now = time.monotonic()
        next_send = min(v[2] for v in socks.values())
        for key, _ in sel.select(max(0.0, min(next_send, stop_at) - now)):
            entry = socks[key.fd]
            s = entry[0]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                entry[3] += data
                continue
            closed.append([time.monotonic() - entry[1], entry[3][:512].decode("latin-1")])
            sel.unregister(s)
            s.close()
            del socks[key.fd]
        now = time.monotonic()
        for entry in socks.values():
            if entry[2] <= now:
                entry[2] = now + interval
                try:
                    entry[0].send(b"a")
                except OSError:
                    pass    # closed by the server: the read above sees it
    print(json.dumps({"opened": count - len(errors), "connect_errors": errors[:10],
                      "closed": closed, "still_open": len(socks)}), flush=True)
    for entry in socks.values():
        entry[0].close()


if __name__ == "__main__":
    p, n, a, iv, sec = sys.argv[1:6]
    slow_clients(int(p), int(n), int(a), float(iv), float(sec))
