#!/usr/bin/env python3
"""Client connections at the daemon's defaults: slow clients cannot hold the API, clients that
leave are let go at once, clients that only shut their sending side still get their answers,
and what clients can make the daemon log over and over is logged once a second with a count.

  request_header_timeout_closes_slow_requests   a request trickled byte by byte, or none at
                              all, gets 408 and is closed at the deadline; an idle kept-alive
                              connection is not, and its next request has a deadline of its own
  trickling_connections_do_not_hold_the_api     2,000 connections from 40 addresses sending a
                              byte every 5 s: a normal client is answered in under 100 ms all
                              along, each slow one gets 408 at 10 s; RSS and p99 reported
  keepalive_connections_from_one_address        1,000 kept-alive connections from 127.0.0.1,
                              none refused (behind a proxy every client has one address)
  clients_that_leave_are_let_go                 64 clients close 0.3 s after a cold request
                              (and 16 reset): every connection freed within 1 s, the scrape
                              goes on and its answer is cached
  half_closing_clients_get_their_answers        300 clients shut their sending side after the
                              request (HTTP/1.1 and 1.0, cold and cached): no answer lost
  repeated_warnings_once_a_second               connections refused at a per-address limit:
                              one line a second, the counts adding up to every refusal

Clients bind 127.0.0.x source addresses to pose as many addresses; all traffic stays on
loopback. Figures are printed as "  [test] ..." lines.
"""

import re
import socket
import threading
import time

from harness import (TestFailure, expect, expect_eq, get_metrics, metric, run, scenario,
                     tcp_sockets, test, wait_until)
from slow_clients import SlowClients, raise_open_file_limit

CACHED = "beijing"
COLD = ["shanghai", "guangzhou", "shenzhen", "chengdu", "hangzhou"]
# A cached answer takes well under a millisecond of the daemon's time; 100 ms leaves room for
# a loaded 2-CPU machine and the ASan build, not for waiting behind slow clients.
FAST_ANSWER_SECONDS = 0.1
RSS_GROWTH_MAX_KIB = 64 * 1024          # 2,000 slow connections; measured about a tenth of it
RSS_GROWTH_MAX_KIB_ASAN = 256 * 1024
LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"   # struct linger {1, 0}: close with a reset


def report(name, fmt, *args):
    print("  [%s] %s" % (name, fmt % args), flush=True)


def connect_from(address, port, timeout=10):
    """A TCP connection to the daemon from the loopback source address given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((address, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_until_closed(s):
    """Every byte until the peer closes (or resets: what came before it counts)."""
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def read_response(s, buf=b""):
    """(status, headers {lower-case: value}, body, rest) of the next final response on s,
    skipping interim 1xx responses; status None when the connection ends first."""
    while True:
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                return None, {}, buf, b""
            buf += b
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (l.split(":", 1) for l in lines[1:] if ":" in l)}
        if 100 <= status < 200:
            continue
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            b = s.recv(65536)
            if not b:
                return None, headers, buf, b""
            buf += b
        return status, headers, buf[:length], buf[length:]


def api_connections(d):
    """The daemon's client connections: its TCP sockets on its own port, but the listener."""
    tcp = tcp_sockets()
    n = 0
    for t in d.fd_targets().values():
        if t.startswith("socket:["):
            info = tcp.get(int(t[8:-1]))
            if info is not None and info[0] == d.port and info[2] != "0A":
                n += 1
    return n


def daemon_sockets(d):
    """How many sockets the daemon has open: quicker to count than api_connections(), which
    reads every TCP socket of the machine."""
    return sum(t.startswith("socket:[") for t in d.fd_targets().values())


COUNT_RE = re.compile(r"\(and (\d+) more in the last second\)$")


def logged_count(lines):
    """How many events lines of one kind stand for: each itself, and the N more it counts."""
    return sum(1 + int(m.group(1)) if m else 1 for m in (COUNT_RE.search(l) for l in lines))


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else 0.0


@test
def request_header_timeout_closes_slow_requests():
    with scenario(["--request-header-timeout", "1"]) as (fake, d):
        # A byte every 0.2 s: the idle timeout (30 s) would never fire.
        s = connect_from("127.0.0.2", d.port)
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        got = b""
        s.settimeout(0.2)
        while time.monotonic() - t0 < 5:
            try:
                b = s.recv(4096)
            except socket.timeout:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
                continue
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
        trickled = time.monotonic() - t0
        s.close()
        expect(got.startswith(b"HTTP/1.1 408 "), "a trickled request gets 408: %r" % got[:80])
        expect(b"Connection: close" in got and b'"code":"request_timeout"' in got,
               "the 408 closes and is a JSON request_timeout: %r" % got)
        expect(0.9 <= trickled < 2.5, "closed at the 1 s deadline, took %.2f s" % trickled)

        # Nothing at all: the deadline runs from accept.
        s = connect_from("127.0.0.3", d.port)
        t0 = time.monotonic()
        got = read_until_closed(s)
        silent = time.monotonic() - t0
        s.close()
        expect(got.startswith(b"HTTP/1.1 408 "), "a silent connection gets 408: %r" % got[:80])
        expect(0.9 <= silent < 2.5, "closed at the 1 s deadline, took %.2f s" % silent)

        # Kept alive: idle past the deadline is the idle timeout's business; the next
        # request, once begun, has its own deadline.
        s = connect_from("127.0.0.4", d.port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, rest = read_response(s)
        expect_eq(status, 200, "first request")
        time.sleep(1.5)   # the idle time under test, longer than the deadline
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body, rest = read_response(s, rest)
        expect_eq((status, body), (200, b'{"status":"ok"}'),
                  "an idle kept-alive connection is still served after the deadline")
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        got = rest + read_until_closed(s)
        second = time.monotonic() - t0
        s.close()
        expect(got.startswith(b"HTTP/1.1 408 "), "its unfinished next request gets 408: %r"
               % got[:80])
        expect(0.9 <= second < 2.5, "closed 1 s after that request began, took %.2f s" % second)
        logged = d.find_lines(r"INFO http: 127\.0\.0\.[234] sent no complete request within "
                              r"1 s: 408, closed")
        expect(len(logged) >= 1, "the closes are logged: %r" % d.lines()[-10:])
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_requests_total", route="other", status="408"), 3.0,
                  "408s counted")
        report("header_timeout", "trickled %.2f s, silent %.2f s, kept-alive next request %.2f s",
               trickled, silent, second)


@test
def trickling_connections_do_not_hold_the_api():
    count, addresses, interval = 2000, 40, 5.0
    raise_open_file_limit()
    with scenario() as (fake, d):
        expect_eq(d.get("/movies?city=%s" % CACHED).status, 200, "warm-up")
        ref = d.get("/movies?city=%s&wait=details" % CACHED).body
        wait_until(lambda: api_connections(d) == 0, 5, "the warm-up connections closed")
        rss_before = d.rss_kib()
        latencies, failures = [], []
        stop = threading.Event()

        def normal_client():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = d.get("/movies?city=%s&wait=details" % CACHED, timeout=5)
                    ok = r.status == 200 and r.body == ref
                except OSError as e:
                    ok, r = False, e
                latencies.append(time.monotonic() - t0)
                if not ok:
                    failures.append(repr(r)[:200])
                stop.wait(0.05)

        with SlowClients(d.port, count, addresses, interval, seconds=14.0) as slow:
            opened_in = slow.wait_open(30)
            held = wait_until(lambda: (lambda n: n if n >= count else None)(api_connections(d)),
                              5, "the daemon holds every slow connection", interval=0.05)
            rss_held = d.rss_kib()
            client = threading.Thread(target=normal_client, daemon=True)
            client.start()
            result = slow.result(30)
            stop.set()
            client.join(10)
        expect_eq(result["connect_errors"], [], "connect errors")
        expect_eq(result["opened"], count, "slow connections opened")
        expect_eq(result["still_open"], 0, "slow connections still open after 14 s")
        times = [c[0] for c in result["closed"]]
        not_408 = [c[1][:60] for c in result["closed"] if not c[1].startswith("HTTP/1.1 408 ")]
        expect(not not_408, "%d slow connections closed without a 408: %r"
               % (len(not_408), not_408[:3]))
        expect(min(times) >= 9.5 and max(times) < 12.5,
               "slow connections closed between %.2f and %.2f s after they opened, not at the "
               "10 s deadline" % (min(times), max(times)))
        expect(not failures, "the normal client failed %d times: %r" % (len(failures), failures[:3]))
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        report("slowloris", "%d slow connections from %d addresses opened in %.1f s, the daemon "
               "held %d; RSS %.1f MiB -> %.1f MiB (+%.1f MiB); closed with 408 after %.2f-%.2f s",
               count, addresses, opened_in, held, rss_before / 1024, rss_held / 1024,
               (rss_held - rss_before) / 1024, min(times), max(times))
        report("slowloris", "normal client meanwhile: %d answers, p50 %.1f ms, p99 %.1f ms, "
               "max %.1f ms", len(latencies), p50 * 1000, p99 * 1000, max(latencies) * 1000)
        expect(len(latencies) >= 50, "the normal client asked only %d times" % len(latencies))
        expect(p99 < FAST_ANSWER_SECONDS, "the normal client's p99 %.1f ms" % (p99 * 1000))
        bound = RSS_GROWTH_MAX_KIB_ASAN if d.uses_asan() else RSS_GROWTH_MAX_KIB
        expect(rss_held - rss_before < bound, "2,000 slow connections cost %d KiB of RSS"
               % (rss_held - rss_before))
        expect_eq(d.get("/healthz").status, 200, "served after")
        closes = wait_until(lambda: (lambda l: l if logged_count(l) >= count else None)(
            d.find_lines(r"INFO http: 127\.0\.0\.\d+ sent no complete request within 10 s")),
            3, "every close counted in the log")
        expect_eq(logged_count(closes), count, "closes the log counts")
        expect(len(closes) <= 4, "%d log lines for %d closes within a second" % (len(closes), count))


@test
def keepalive_connections_from_one_address():
    count = 1000
    raise_open_file_limit()
    with scenario() as (fake, d):
        expect_eq(d.get("/movies?city=%s" % CACHED).status, 200, "warm-up")
        request = b"GET /movies?city=%s HTTP/1.1\r\nHost: x\r\n\r\n" % CACHED.encode()
        socks, problems = [], []
        t0 = time.monotonic()
        try:
            for rnd in range(2):
                for i in range(count):
                    try:
                        if rnd == 0:
                            socks.append([connect_from("127.0.0.1", d.port), b""])
                        s = socks[i]
                        s[0].sendall(request)
                        status, _, _, s[1] = read_response(s[0], s[1])
                    except OSError as e:
                        status = "%s: %s" % (type(e).__name__, e)
                    if status != 200:
                        problems.append((rnd, i, status))
                if rnd == 0:
                    held = api_connections(d)
            elapsed = time.monotonic() - t0
        finally:
            for s in socks:
                s[0].close()
        expect(not problems, "%d requests not answered 200 (round, connection, status): %r"
               % (len(problems), problems[:5]))
        expect_eq(held, count, "connections the daemon held at once")
        expect(not d.find_lines(r"connection limit"), "a connection was refused at a limit")
        report("keepalive", "%d connections from 127.0.0.1 held at once, 2 requests each, all "
               "answered, in %.1f s", count, elapsed)


@test
def clients_that_leave_are_let_go():
    closers, resetters = 64, 16
    city = COLD[0]
    with scenario() as (fake, d):
        fake.add_fault(r"^/cinema/later/%s/$" % city, "delay", ms=6000)
        request = b"GET /movies?city=%s HTTP/1.1\r\nHost: x\r\n\r\n" % city.encode()
        socks = []
        for i in range(closers + resetters):
            s = connect_from("127.0.0.%d" % (2 + i), d.port)
            s.sendall(request)
            socks.append(s)
        wait_until(lambda: fake.count("/cinema/later/%s/" % city) == 1 and
                   api_connections(d) == closers + resetters, 5,
                   "every connection held, the listing asked for")
        others = daemon_sockets(d) - (closers + resetters)   # listener, upstream
        time.sleep(0.3)   # how long these clients wait before they give up
        for i, s in enumerate(socks):
            if i >= closers:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            s.close()
        t0 = time.monotonic()
        try:
            wait_until(lambda: daemon_sockets(d) <= others, 1.0, "every connection freed",
                       interval=0.002)
        except TestFailure:
            raise TestFailure("%d of %d connections still held 1 s after their clients left"
                              % (api_connections(d), closers + resetters))
        freed = time.monotonic() - t0
        expect_eq(api_connections(d), 0, "client connections left")
        gone = wait_until(lambda: (lambda l: l if len(l) == closers + resetters else None)(
            d.find_lines(r"GET /movies\?city=%s 499 0 .*\(client gone\)" % city)), 2,
            "each logged as client gone")
        report("hung_up", "%d closed and %d reset connections freed %.0f ms after their clients "
               "left (%d logged 499)", closers, resetters, freed * 1000, len(gone))
        expect_eq(d.find_lines(r"WARN"), [], "warnings about clients that left")
        # The scrape they started goes on: its listing, asked once, is cached.
        wait_until(lambda: d.find_lines(r"scraped %s" % city), 10, "the scrape finishes")
        expect_eq(fake.count("/cinema/later/%s/" % city), 1, "listing requests")
        t0 = time.monotonic()
        r = d.get("/movies?city=%s&wait=details" % city)
        expect_eq(r.status, 200, "the city after the scrape")
        expect(time.monotonic() - t0 < 1.0, "answered from the cache")


def half_close_client(port, address, request, results, i):
    """Sends request, shuts the sending side, reads the whole answer; results[i] = (status,
    body) or the error."""
    try:
        s = connect_from(address, port, timeout=20)
        try:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            status, headers, body, _ = read_response(s)
            results[i] = (status, body)
        finally:
            s.close()
    except OSError as e:
        results[i] = "%s: %s" % (type(e).__name__, e)


@test
def half_closing_clients_get_their_answers():
    n = 300
    with scenario() as (fake, d):
        ref = d.get("/movies?city=%s" % CACHED, headers={"Connection": "close"}).body
        expect(ref.startswith(b"{"), "warm-up")
        for city in COLD:
            fake.add_fault(r"^/cinema/later/%s/$" % city, "delay", ms=1500)
        jobs = []
        for i in range(n):
            cold = i % 2 == 1
            city = COLD[i % len(COLD)] if cold else CACHED
            version = "HTTP/1.0" if i % 4 >= 2 else "HTTP/1.1"
            # wait=details for cached ones: the answer the warm-up got, byte for byte.
            path = "/movies?city=%s%s" % (city, "" if cold else "&wait=details")
            req = ("GET %s %s\r\nHost: x\r\n\r\n" % (path, version)).encode()
            jobs.append((cold, version, req))
        results = [None] * n
        threads = [threading.Thread(target=half_close_client, daemon=True,
                                    args=(d.port, "127.0.0.%d" % (2 + i % 200), jobs[i][2], results, i))
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        lost = {}
        for (cold, version, _), res in zip(jobs, results):
            key = ("cold" if cold else "cached", version)
            ok = isinstance(res, tuple) and res[0] == 200 and (
                res[1] == ref if not cold else res[1].startswith(b'{"city":'))
            if not ok:
                lost.setdefault(key, []).append(res if not isinstance(res, tuple)
                                                else (res[0], res[1][:80]))
        counts = {k: len(v) for k, v in lost.items()}
        report("half_close", "%d half-closing clients (cold and cached, HTTP/1.1 and 1.0): "
               "%d answers lost %r", n, sum(counts.values()), counts)
        expect(not lost, "answers lost: %r" % {k: v[:2] for k, v in lost.items()})
        expect(not d.find_lines(r"\(connection lost\)|\(client gone\)"),
               "the log says answers were lost: %r" % d.find_lines(r"connection lost|client gone")[:3])


@test
def repeated_warnings_once_a_second():
    with scenario(["--max-connections-per-ip", "1"]) as (fake, d):
        holder = connect_from("127.0.0.5", d.port)
        holder.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        expect_eq(read_response(holder)[0], 200, "the one connection 127.0.0.5 may have")
        start = d.mark()
        refused = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            s = connect_from("127.0.0.5", d.port)
            expect_eq(read_until_closed(s), b"", "a connection past the limit is closed")
            s.close()
            refused += 1
        holder.close()
        pattern = r"WARN http: Server reached connection limit\. Closing inbound connection\."
        lines = wait_until(lambda: (lambda l: l if logged_count(l) >= refused else None)(
            d.find_lines(pattern, start)), 3, "the counts of %d refusals logged" % refused)
        total = logged_count(lines)
        stamps = [time.mktime(time.strptime(l[:19], "%Y-%m-%dT%H:%M:%S")) + float(l[19:23])
                  for l in lines]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        report("warnings", "%d refusals in %.1f s logged in %d lines, %s s apart: %r", refused,
               2.5, len(lines), ", ".join("%.2f" % g for g in gaps[:5]),
               [l[24:] for l in lines[:5]])
        expect_eq(total, refused, "refusals the lines count")
        expect(refused > 100, "only %d refusals" % refused)
        expect(2 <= len(lines) <= 5, "%d lines for %.1f s of refusals" % (len(lines), 2.5))
        expect(all(g >= 0.99 for g in gaps), "lines less than a second apart: %r" % gaps)
        expect(COUNT_RE.search(lines[-1]), "the last line has the count: %r" % lines[-1])


if __name__ == "__main__":
    run(deadline=240)
