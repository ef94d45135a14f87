#!/usr/bin/env python3
"""Strict HTTP/1.1, over raw sockets: every request a proxy in front could frame differently
gets one 400 bad_request (JSON, a single status line) and its connection closed, and
whatever follows it on the connection never runs as a request; the shapes libmicrohttpd
would leave hanging are answered at once; well-formed requests, pipelined ones included,
are served as before."""

import json
import re
import socket
import time

from harness import expect, expect_eq, run, scenario, test, wait_until

# Sent after each refused request: it would reach the access log if the daemon read on.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
N = b"%d" % len(SMUGGLED)                                     # a length that takes it as the body
CHUNKED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)  # it as a chunked body
STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
PARAMS_1000 = b"&".join(b"p%d=1" % i for i in range(1000))


def req(*headers, method=b"GET", target=b"/healthz", body=b""):
    """An HTTP/1.1 request: its request line, the header lines given, an empty line, body."""
    return b"%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, b"".join(h + b"\r\n" for h in headers),
                                             body)


# (name, request, expected status): each is refused before anything after it is read.
REFUSED = [
    ("http11_without_host", req(), 400),
    ("two_hosts", req(b"Host: a", b"Host: b"), 400),
    ("two_different_lengths", req(b"Host: x", b"Content-Length: 0", b"Content-Length: " + N), 400),
    ("two_equal_lengths", req(b"Host: x", b"Content-Length: 0", b"Content-Length: 0"), 400),
    ("length_list", req(b"Host: x", b"Content-Length: %s, %s" % (N, N)), 400),
    ("length_junk", req(b"Host: x", b"Content-Length: 3x"), 400),
    ("length_plus", req(b"Host: x", b"Content-Length: +" + N), 400),
    ("length_negative", req(b"Host: x", b"Content-Length: -1"), 400),
    ("length_huge", req(b"Host: x", b"Content-Length: 99999999999999999999999"), 400),
    ("length_and_chunked_post", req(b"Host: x", b"Content-Length: 42", b"Transfer-Encoding: chunked",
                                    method=b"POST", target=b"/movies", body=b"0\r\n\r\n"), 400),
    ("length_and_chunked_get", req(b"Host: x", b"Content-Length: 5", b"Transfer-Encoding: chunked",
                                   body=b"0\r\n\r\n"), 400),
    ("space_before_colon", req(b"Host: x", b"Transfer-Encoding : chunked", body=CHUNKED), 400),
    ("tab_before_colon", req(b"Host: x", b"Content-Length\t: " + N), 400),
    ("control_in_value", req(b"Host: x", b"X-A: a\x01b"), 400),
    ("chunked_get", req(b"Host: x", b"Transfer-Encoding: chunked", body=CHUNKED), 400),
    ("get_with_body", req(b"Host: x", b"Content-Length: " + N), 400),
    ("head_with_body", req(b"Host: x", b"Content-Length: " + N, method=b"HEAD"), 400),
    ("post_with_body", req(b"Host: x", b"Content-Length: " + N, method=b"POST",
                           target=b"/movies?city=beijing"), 405),
]

# Shapes libmicrohttpd 0.9.75 leaves unanswered until the idle timeout (30 s by default).
HANGING = [
    ("transfer_encoding_gzip", req(b"Host: x", b"Transfer-Encoding: gzip")),
    ("transfer_encoding_chunked_gzip", req(b"Host: x", b"Transfer-Encoding: chunked, gzip")),
    ("query_1000_parameters", req(b"Host: x", target=b"/movies?city=beijing&" + PARAMS_1000)),
]


def exchange(port, data, timeout=5.0):
    """Sends data on a new connection and reads until the daemon closes it or timeout
    seconds pass: (bytes received, closed, seconds from sending to the close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        t0 = time.monotonic()
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass    # answered and closed before all was sent
        chunks = []
        deadline = t0 + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                return b"".join(chunks), False, time.monotonic() - t0
            except ConnectionResetError:
                b = b""
            if not b:
                return b"".join(chunks), True, time.monotonic() - t0
            chunks.append(b)
    finally:
        s.close()


def split_response(data, head_request=False):
    """(status, headers dict lower-case, body, rest after the body) of the first response."""
    head, sep, after = data.partition(b"\r\n\r\n")
    expect(sep, "a complete response head: %r" % data[:200])
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0])
    expect(m, "a status line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_request else int(headers.get("content-length", "0"))
    return int(m.group(1)), headers, after[:length], after[length:]


def expect_refused(name, data, closed, status, head_request=False):
    """One answer, status with a JSON error body (none for HEAD) and Connection: close, then
    the close; no second status line anywhere."""
    expect(closed, "%s: the connection is closed after the answer: %r" % (name, data[:200]))
    statuses = [int(s) for s in STATUS_RE.findall(data)]
    expect_eq(statuses, [status], "%s: the status lines received" % name)
    got, headers, body, rest = split_response(data, head_request)
    expect_eq(got, status, name)
    expect_eq(rest, b"", "%s: nothing after the answer's body" % name)
    expect_eq(headers.get("connection", "").lower(), "close", "%s: Connection" % name)
    expect_eq(headers.get("content-type", "").replace(" ", ""), "application/json;charset=utf-8",
              "%s: Content-Type" % name)
    if head_request:
        return
    doc = json.loads(body)
    want = "bad_request" if status == 400 else "method_not_allowed"
    expect_eq(doc["error"]["code"], want, "%s: error code" % name)
    expect(doc["error"]["message"].strip(), "%s: an error message" % name)


def refused_lines(d, start):
    """Access-log lines after start of requests answered 400 or 405."""
    return d.find_lines(r" (400|405) \d+ [\d.]+ms", start)


@test
def smuggling_shapes_get_one_400_and_nothing_after_them_runs():
    with scenario() as (fake, d):
        # The control: after a well-formed request the next one on the connection runs,
        # so the daemon's log would show /smuggled had it read past a refused request.
        mark = d.mark()
        last = req(b"Host: x", b"Connection: close")
        data, closed, _ = exchange(d.port, req(b"Host: x") + SMUGGLED + last)
        expect_eq([int(s) for s in STATUS_RE.findall(data)], [200, 404, 200], "the control's answers")
        wait_until(lambda: d.find_lines(r"GET /smuggled 404", mark), 5, "the control's /smuggled logged")

        mark = d.mark()
        for name, request, status in REFUSED:
            data, closed, seconds = exchange(d.port, request + SMUGGLED)
            expect_refused(name, data, closed, status, request.startswith(b"HEAD"))
            expect(seconds < 1.0, "%s: answered and closed within 1 s, took %.2f s" % (name, seconds))
        wait_until(lambda: len(refused_lines(d, mark)) >= len(REFUSED), 5,
                   "the %d refused requests in the access log" % len(REFUSED))
        expect_eq(len(refused_lines(d, mark)), len(REFUSED), "refused requests logged, once each")
        expect_eq(d.find_lines(r"/smuggled", mark), [], "no request after a refused one ran")
        expect_eq(fake.snapshot(), [], "the upstream was asked nothing")
        # Refusals are in the access log; libmicrohttpd's own account of them is not a warning.
        expect_eq(d.find_lines(r" WARN http: ", mark), [], "no warnings from libmicrohttpd")
        expect_eq(d.get("/healthz").status, 200, "still serving")


@test
def shapes_the_library_would_leave_hanging_are_answered_at_once():
    with scenario() as (fake, d):
        mark = d.mark()
        for name, request in HANGING:
            data, closed, seconds = exchange(d.port, request + SMUGGLED)
            print("  %s: answered and closed in %.3f s" % (name, seconds))
            expect(closed, "%s: closed within 5 s (got %r)" % (name, data[:100]))
            expect(seconds < 1.0, "%s: answered and closed within 1 s, took %.2f s" % (name, seconds))
            expect_refused(name, data, closed, 400)
        wait_until(lambda: len(refused_lines(d, mark)) >= len(HANGING), 5, "the refusals logged")
        expect_eq(d.find_lines(r"/smuggled", mark), [], "no request after a refused one ran")
        expect_eq(fake.snapshot(), [], "the 1,000-parameter request for beijing asked the upstream")
        expect_eq(d.get("/healthz").status, 200, "still serving")


@test
def a_refusal_after_a_good_request_on_the_same_connection_comes_once_after_its_answer():
    with scenario() as (fake, d):
        for name, bad in [("without_host", req()),
                          ("length_junk", req(b"Host: x", b"Content-Length: 3x")),
                          ("query_1000_parameters", req(b"Host: x", target=b"/healthz?" + PARAMS_1000))]:
            data, closed, seconds = exchange(d.port, req(b"Host: x") + bad + SMUGGLED)
            status, _, body, rest = split_response(data)
            expect_eq((status, body), (200, b'{"status":"ok"}'), "%s: the good request's answer" % name)
            expect_refused(name, rest, closed, 400)
            expect(seconds < 1.0, "%s: took %.2f s" % (name, seconds))


@test
def well_formed_requests_are_served():
    with scenario() as (fake, d):
        data, closed, _ = exchange(d.port, b"GET /healthz HTTP/1.0\r\n\r\n")
        status, _, body, _ = split_response(data)
        expect_eq((status, body), (200, b'{"status":"ok"}'), "HTTP/1.0 without Host")
        expect(closed, "HTTP/1.0 closes after its answer")

        data, closed, _ = exchange(d.port, req(b"Host: localhost", b"Content-Length: 0",
                                               b"Connection: close"))
        expect_eq(split_response(data)[0], 200, "HTTP/1.1 with Host and Content-Length: 0")

        # Two pipelined GETs on a keep-alive connection: both answered, in order, and the
        # connection stays open for more.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            s.sendall(req(b"Host: x", target=b"/cities") +
                      req(b"Host: x", target=b"/movies?city=beijing"))
            data = b""
            answers = []
            deadline = time.monotonic() + 10
            while len(answers) < 2 and time.monotonic() < deadline:
                chunk = s.recv(65536)
                expect(chunk, "the connection stays open (got %r)" % data[:200])
                data += chunk
                while b"\r\n\r\n" in data:
                    status, headers, body, rest = split_response(data)
                    if len(body) < int(headers["content-length"]):
                        break
                    answers.append((status, json.loads(body)))
                    data = rest
            expect_eq([a[0] for a in answers], [200, 200], "both pipelined answers")
            expect_eq(answers[0][1]["count"], len(answers[0][1]["cities"]), "/cities first")
            expect_eq(answers[1][1]["city"], "beijing", "then /movies?city=beijing")
            s.sendall(req(b"Host: x", b"Connection: close"))
            rest, closed = data, False
            while not closed:
                chunk = s.recv(65536)
                closed = not chunk
                rest += chunk
            expect_eq(split_response(rest)[0], 200, "a third request on the same connection")
        finally:
            s.close()


if __name__ == "__main__":
    run(deadline=120)
