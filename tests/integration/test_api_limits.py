#!/usr/bin/env python3
"""The API's own limits, enforced by libmicrohttpd: total connections, connections per IP,
idle connection timeout and per-connection memory. Past each limit the daemon sheds the
extra client and keeps serving the others."""

import socket
import time

from harness import expect, expect_eq, run, scenario, serve_once, test, wait_until


def open_keepalive(port):
    """A connection that has completed one request and stays open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b'"ok"}'):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    expect(data.startswith(b"HTTP/1.1 200"), "keep-alive request answered: %r" % data[:60])
    return s


def refused_or_closed(port):
    """True when a new connection gets no answer within 2 s: refused, reset, closed, or left
    unaccepted in the kernel's backlog (what libmicrohttpd does at its connection limit)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return True
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(4096) == b""
    except OSError:
        return True
    finally:
        s.close()


def shed_then_served_again(flags, holders, what):
    """With holders connections open the next one is shed; once they close, new clients are
    served again (at its limit MHD stops watching its listening socket: it must resume)."""
    with scenario(flags) as (fake, d):
        held = [open_keepalive(d.port) for _ in range(holders)]
        try:
            expect(refused_or_closed(d.port), what)
        finally:
            for s in held:
                s.close()
        wait_until(lambda: serve_once(d.port), 5, "served again once connections close")
        expect_eq(d.get("/healthz").status, 200)


@test
def connection_limit():
    shed_then_served_again(["--max-connections", "3", "--max-connections-per-ip", "0"], 3,
                           "a fourth connection is shed")


@test
def per_ip_connection_limit():
    shed_then_served_again(["--max-connections-per-ip", "2"], 2,
                           "a third connection from the same IP is shed")


@test
def idle_connection_timeout():
    with scenario(["--connection-timeout", "1"]) as (fake, d):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            t0 = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # a request that never finishes
            data = s.recv(4096)
            elapsed = time.monotonic() - t0
            expect_eq(data, b"", "the idle connection is closed without an answer")
            expect(0.5 <= elapsed < 5, "closed after about 1 s, took %.2f s" % elapsed)
        finally:
            s.close()
        expect_eq(d.get("/healthz").status, 200)


@test
def connection_memory_limit():
    with scenario(["--connection-memory-limit", "8192"]) as (fake, d):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            status = data[9:12]
            expect(status != b"200", "a request larger than the memory limit is not served (%r)" % data[:40])
            expect(status in (b"", b"413", b"414", b"431"), "refused with a 4xx or closed: %r" % data[:40])
        finally:
            s.close()
        expect_eq(d.get("/healthz").status, 200)


if __name__ == "__main__":
    run(deadline=120)
