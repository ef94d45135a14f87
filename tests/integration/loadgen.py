"""Load generators for the load tests (test_load.py): client threads that send a bounded
mix of requests to a running daemon and check every answer they get.

    load = Load(fake, d, ref, block_backoff=2, fresh_per_second=12)
    load.start(seconds=8, block_after=3, keepalive=40, oneshot=33, raw=8, disconnect=8,
               slow=10)
    stuck = load.join(by)                 # load.stats: answers by kind and status, failures
    state = churn(port, requests, connections=5000, threads=8, seconds=25)
    errors, seconds = impatient(port, clients=400, threads=8)
    with Trickle(socks, data) as t: ...   # a slowloris sender on held sockets

The mixed load (Load) expects an upstream where every city exists except the ones named in
UPSTREAM_FAULTS (fake_process.FakeProcess(latency_ms, UPSTREAM_FAULTS) is one) and a daemon
that has answered the city CACHED once (ref, the Response it got). Every loop is bounded by a
request count and by time; all traffic goes to 127.0.0.1. Client threads are Python (one
GIL): their throughput measures this client as much as the daemon.

Python 3.11 standard library only.
"""

import collections
import http.client
import json
import random
import socket
import struct
import threading
import time

from harness import Response, expect_doc, expect_eq, parse_metrics

CACHED = "beijing"                       # the city the mix treats as cached
MAX_REQUESTS_PER_CLIENT = 2000           # count bound next to the time bound
CLIENT_TIMEOUT = 10.0                    # no well-formed request may go unanswered this long
LINGER_RESET = struct.pack("ii", 1, 0)   # SO_LINGER 0: close() sends a reset


def slug(prefix, n):
    """prefix followed by n written in letters a-z (a valid city slug)."""
    s = ""
    while True:
        s = chr(ord("a") + n % 26) + s
        n //= 26
        if n == 0:
            return prefix + s


COLD = [slug("cold", i) for i in range(16)]
ERR = ["erra", "errb", "errc"]           # listing answers 500: 502 upstream_error
HANG = ["hanga", "hangb"]                # listing never answers: 504 upstream_timeout
UNKNOWN = ["nocitya", "nocityb", "nocityc"]
BLOCK_CITY = "blockcity"                 # "有异常请求" page once: opens the breaker

# What the upstream does for the cities above and for some movie pages: FakeDouban.add_fault
# arguments, (pattern, kind, params), in order. Cold and fresh cities are served normally.
UPSTREAM_FAULTS = [
    (r"^/cinema/later/nocity[a-z]*/$", 404, {}),
    (r"^/cinema/later/err[a-z]+/$", 500, {}),
    (r"^/cinema/later/hang[a-z]+/$", "hang", {}),
    (r"^/cinema/later/%s/$" % BLOCK_CITY, "block_page", {"times": 1}),
    # Some movie pages fail (the movie keeps its listing fields and a detail_error) or are slow.
    (r"^/subject/\d*3/$", 500, {}),
    (r"^/subject/\d*9/$", "delay", {"ms": 300}),
]

DOC = "doc"          # 200 with a movies document for the city asked
SAME = "same"        # 200 with exactly the cached city's body
EMPTY = "empty"      # no body (304, HEAD)
OK = "ok"            # {"status":"ok"}
READY = "ready"      # /readyz document
METRICS = "metrics"  # Prometheus text

# What each kind of request may be answered: {status: body check or error code}. A breaker
# opened by the block makes every request that needs the upstream 503 upstream_blocked
# (with Retry-After) for the daemon's --block-backoff seconds; cached answers and errors that need no
# upstream request are unaffected.
BLOCKED = {503: "upstream_blocked"}
EXPECT = {
    "cached": {200: SAME},
    "cached_304": {304: EMPTY},
    "head_cached": {200: EMPTY},
    "healthz": {200: OK},
    "head_healthz": {200: EMPTY},
    "readyz": {200: READY},
    "metrics": {200: METRICS},
    "cold": {200: DOC, **BLOCKED},
    "fresh": {200: DOC, **BLOCKED},
    "err": {502: "upstream_error", **BLOCKED},
    "hang": {504: "upstream_timeout", **BLOCKED},
    "unknown": {404: "unknown_city", **BLOCKED},
    "block": dict(BLOCKED),
    "invalid": {400: "invalid_city"},
    "missing": {400: "missing_city"},
    "nopath": {404: "not_found"},
    "post": {405: "method_not_allowed"},
    "post_nopath": {404: "not_found"},
    "other_method": {405: "method_not_allowed"},
}
# The cached city's requests (a slowloris one timed from its last byte).
CACHED_KINDS = ("cached", "cached_304", "head_cached", "slowloris")

INVALID = ["Beijing", "bei+jing", "bei%20jing", "beijing1", "a" * 33, "", "%E5%8C%97%E4%BA%AC",
           "bei%00jing", "..%2F..%2Fetc", "beijing%0d%0aX-Injected:%201", "%zz",
           "bei%26city%3Djing"]
# "/" is the page. A %00 ends the path where it stands ("/%00" is "/"), so the NUL sits
# after a name that is no route.
NOPATH = ["/movie", "/movies/", "/movies/beijing", "/healthz/x", "/metricsx",
          "/x%00", "/" + "x" * 2000, "/..%2f..%2fetc%2fpasswd", "/readyz%20",
          "//movies?city=beijing"]


class Stats:
    """Thread-safe counters shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = collections.Counter()       # (kind, status)
        self.latency = collections.defaultdict(list)
        self.failures = []
        self.nfailures = 0
        self.raw = collections.Counter()           # raw outcomes
        self.reconnects = 0
        self.events = collections.Counter()

    def fail(self, msg):
        """Counts a bad or missing answer; the first 25 reasons are kept."""
        with self.lock:
            self.nfailures += 1
            if len(self.failures) < 25:
                self.failures.append(msg)

    def answered(self, kind, status, seconds):
        """Counts an answer of status to a request of kind that took seconds."""
        with self.lock:
            self.by_kind[(kind, status)] += 1
            self.latency[kind].append(seconds)

    def count(self, name, n=1):
        """Adds n to the event counter name."""
        with self.lock:
            self.events[name] += n



class Load:
    """The mixed load: its requests, its client threads and the checks of their answers.
    fake is the upstream d scrapes, ref the Response d gave for CACHED, block_backoff d's
    --block-backoff (the bound of Retry-After), fresh_per_second how many never-seen cities
    the clients may ask for each second."""

    def __init__(self, fake, d, ref, block_backoff, fresh_per_second):
        self.fake = fake
        self.d = d
        self.ref = ref
        self.block_backoff = block_backoff
        self.fresh_per_second = fresh_per_second
        self.stats = Stats()
        self.fresh_n = 0
        self.fresh_lock = threading.Lock()
        self.started = time.monotonic()
        self.stop_at = self.started
        self.threads = []

    def start(self, seconds, block_after, keepalive, oneshot, raw, disconnect, slow):
        """Starts the client threads for `seconds` (each seeded by its place, so a run can be
        replayed): keepalive and oneshot http_client threads, raw_client, disconnect_client
        and slow_client threads, and one blocker asking for BLOCK_CITY after block_after
        seconds. Returns the threads (daemon threads; join() waits for them)."""
        self.started = time.monotonic()
        self.stop_at = self.started + seconds
        plan = [(keepalive, self.http_client, (True, self.stop_at)),
                (oneshot, self.http_client, (False, self.stop_at)),
                (raw, self.raw_client, (self.stop_at,)),
                (disconnect, self.disconnect_client, (self.stop_at,)),
                (slow, self.slow_client, (self.stop_at,))]
        threads = []
        for k, (n, fn, args) in enumerate(plan):
            for i in range(n):
                threads.append(threading.Thread(target=fn, args=(1000 * (k + 1) + i,) + args,
                                                daemon=True))
        threads.append(threading.Thread(target=self.blocker,
                                        args=(self.started + block_after,), daemon=True))
        for t in threads:
            t.start()
        self.threads = threads
        return threads

    def join(self, by):
        """Waits for the client threads until time.monotonic() reaches by; returns how many
        are still running."""
        for t in self.threads:
            t.join(max(0.0, by - time.monotonic()))
        return sum(1 for t in self.threads if t.is_alive())

    def fresh_city(self, rng):
        """A city never asked for before, within fresh_per_second; past it one of COLD."""
        with self.fresh_lock:
            if self.fresh_n >= self.fresh_per_second * (time.monotonic() - self.started):
                return rng.choice(COLD)
            self.fresh_n += 1
            n = self.fresh_n
        city = slug("fresh", n)
        self.fake.set_city(city)
        return city

    def pick(self, rng):
        """(kind, method, path, headers, body, city) of one well-formed request."""
        kinds = ["cached", "cached_304", "head_cached", "healthz", "head_healthz", "readyz",
                 "metrics", "cold", "fresh", "err", "hang", "unknown", "invalid", "missing",
                 "nopath", "post", "post_nopath", "other_method"]
        weights = [40, 5, 5, 5, 1, 2, 1, 10, 3, 3, 2, 3, 5, 1, 4, 4, 1, 1]
        kind = rng.choices(kinds, weights)[0]
        city = None
        method, headers, body = "GET", {}, None
        if kind == "cached":
            city = CACHED
        elif kind == "cached_304":
            city = CACHED
            headers["If-None-Match"] = self.ref.headers["etag"]
        elif kind == "head_cached":
            city, method = CACHED, "HEAD"
        elif kind in ("healthz", "head_healthz", "readyz", "metrics"):
            path = "/" + kind.replace("head_", "")
            if kind.startswith("head_"):
                method = "HEAD"
            return kind, method, path, headers, body, None
        elif kind == "cold":
            city = rng.choice(COLD)
        elif kind == "fresh":
            city = self.fresh_city(rng)
        elif kind == "err":
            city = rng.choice(ERR)
        elif kind == "hang":
            city = rng.choice(HANG)
        elif kind == "unknown":
            city = rng.choice(UNKNOWN)
        elif kind == "invalid":
            return kind, method, "/movies?city=" + rng.choice(INVALID), headers, body, None
        elif kind == "missing":
            return kind, method, rng.choice(["/movies", "/movies?town=beijing", "/movies?"]), \
                headers, body, None
        elif kind == "nopath":
            return kind, method, rng.choice(NOPATH), headers, body, None
        elif kind in ("post", "post_nopath"):
            size = rng.choice([0, 10, 1000, 100000])
            body = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * max(1, size // 64)
            body = body[:size]
            headers["Content-Type"] = rng.choice(["application/json", "application/octet-stream"])
            path = "/movies?city=%s" % CACHED if kind == "post" else "/nope?x=1"
            return kind, "POST", path, headers, body, None
        elif kind == "other_method":
            m = rng.choice(["PUT", "DELETE", "PATCH"])
            body = b"x" if m != "DELETE" else None
            return kind, m, "/movies?city=%s" % CACHED, headers, body, None
        return kind, method, "/movies?city=%s" % city, headers, body, city

    # -- checks ------------------------------------------------------------------------
    def check(self, kind, r, city, method, path):
        """A message when r is not an allowed answer for kind, else None."""
        allowed = EXPECT[kind]
        where = "%s %s (%s)" % (method, path[:80], kind)
        if r.status not in allowed:
            return "%s: status %d not in %s: %r" % (where, r.status, sorted(allowed), r.body[:200])
        want = allowed[r.status]
        ctype = r.headers.get("content-type", "").replace(" ", "").lower()
        if want == METRICS:
            if not ctype.startswith("text/plain"):
                return "%s: Content-Type %r" % (where, ctype)
            try:
                parse_metrics(r.body.decode("utf-8"))
            except (AssertionError, UnicodeDecodeError) as e:
                return "%s: %s" % (where, e)
            return None
        if want != EMPTY and ctype != "application/json;charset=utf-8":
            return "%s: Content-Type %r" % (where, ctype)
        if want == EMPTY:
            if r.body != b"":
                return "%s: body of a %d/HEAD answer: %r" % (where, r.status, r.body[:100])
            if kind == "head_cached" and r.headers.get("etag") != self.ref.headers["etag"]:
                return "%s: ETag %r, GET had %r" % (where, r.headers.get("etag"),
                                                   self.ref.headers["etag"])
            return None
        try:
            doc = json.loads(r.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return "%s: body is not JSON (%s): %r" % (where, e, r.body[:200])
        if want == SAME:
            if r.body != self.ref.body:
                return "%s: body differs from the cached answer: %r" % (where, r.body[:200])
            return None
        if want == OK:
            return None if doc == {"status": "ok"} else "%s: %r" % (where, doc)
        if want == READY:
            breaker = doc.get("breaker") if isinstance(doc, dict) else None
            good = (doc.get("status") == "ready" and isinstance(breaker, dict)
                    and isinstance(breaker.get("open"), bool))
            if good and breaker["open"]:
                self.stats.count("readyz_breaker_open")
            return None if good else "%s: %r" % (where, doc)
        if want == DOC:
            try:
                expect_doc(doc, self.fake, city)
                expect_eq([m["id"] for m in doc["movies"]],
                          [str(i) for i in self.fake.city_ids(city)], "ids")
            except AssertionError as e:
                return "%s: %s" % (where, e)
            n = sum(1 for m in doc["movies"] if m["detail_error"] is not None)
            if n:
                self.stats.count("detail_errors", n)
            return None
        # An error: {"error": {"code": want, "message": "..."}}
        err = doc.get("error") if isinstance(doc, dict) else None
        if not (isinstance(doc, dict) and set(doc) == {"error"} and isinstance(err, dict)
                and err.get("code") == want and isinstance(err.get("message"), str)
                and err["message"].strip()):
            return "%s: expected {\"error\": {\"code\": %r, \"message\"}}, got %d %r" % (
                where, want, r.status, doc)
        if want == "upstream_blocked":
            ra = r.headers.get("retry-after", "")
            if not (ra.isdigit() and 0 < int(ra) <= self.block_backoff + 1):
                return "%s: Retry-After %r on 503 (block_backoff %d)" % (where, ra,
                                                                         self.block_backoff)
        allow = r.headers.get("allow", "").replace(" ", "")
        if want == "method_not_allowed" and allow != "GET,HEAD,OPTIONS":
            return "%s: Allow %r" % (where, r.headers.get("allow"))
        return None

    # -- client threads ----------------------------------------------------------------
    def http_client(self, seed, keepalive, stop_at):
        """Well-formed requests with http.client: one persistent connection, or a new
        connection (Connection: close) per request."""
        rng = random.Random(seed)
        conn = None
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            kind, method, path, headers, body, city = self.pick(rng)
            if not keepalive:
                headers["Connection"] = "close"
            t0 = time.monotonic()
            r = None
            for attempt in (1, 2):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.d.port,
                                                          timeout=CLIENT_TIMEOUT)
                    reused = conn.sock is not None
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    r = Response(resp.status, resp.getheaders(), data)
                    if resp.will_close or not keepalive:
                        conn.close()
                        conn = None
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                    conn.close()
                    conn = None
                    # A server may close an idle persistent connection at any time; the
                    # client retries once on a new one. Counted and reported.
                    if reused and attempt == 1:
                        with self.stats.lock:
                            self.stats.reconnects += 1
                        continue
                    self.stats.fail("%s %s (%s): %s: %s" % (method, path[:80], kind,
                                                            type(e).__name__, e))
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                        conn = None
                    self.stats.fail("%s %s (%s): no answer after %.1f s: %s: %s"
                                    % (method, path[:80], kind, time.monotonic() - t0,
                                       type(e).__name__, e))
                    break
            if r is None:
                continue
            dt = time.monotonic() - t0
            self.stats.answered(kind, r.status, dt)
            msg = self.check(kind, r, city, method, path)
            if msg:
                self.stats.fail(msg)
        if conn is not None:
            conn.close()

    RAW = [
        # (name, bytes, expected first status (None: closed without an answer is expected;
        #  a tuple: any of these), whether staying open until the idle timeout is allowed)
        ("nul_line", b"\x00\xff\xfegarbage\r\n\r\n", (None, 400), True),
        ("no_spaces", b"GARBAGE\r\n\r\n", (None, 400), False),
        ("http09", b"GET /\r\n\r\n", (400,), False),
        ("bad_version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", (505, 400), False),
        ("no_colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", (400,), False),
        ("big_header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
         (431, 413, None), False),
        ("big_url", b"GET /movies?city=" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
         (414, 431, None), False),
        ("many_headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
         (431, 413, None), False),
        ("bad_chunk", b"POST /movies?city=beijing HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", (400,), False),
        ("negative_length", b"POST /movies HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
         (400,), False),
        ("huge_length", b"POST /movies HTTP/1.1\r\nHost: x\r\nContent-Length: "
         b"99999999999999999999999\r\n\r\n", (413, 400), False),
        ("ctl_method", b"FOO\x01 /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         (405, 400), False),
        ("binary_junk", bytes(range(256)) * 4 + b"\r\n\r\n", (None, 400), True),
    ]

    def read_all(self, s, limit):
        """Bytes until the peer closes or limit seconds pass: (data, closed)."""
        s.settimeout(limit)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    return b"".join(chunks), True
                chunks.append(b)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True

    def raw_client(self, seed, stop_at):
        """Malformed and oversize requests, and well-formed ones sent in one piece that
        http.client cannot send: pipelined, a POST body followed by the next request, Expect.
        No endpoint takes a body: a request with one is answered before it and closed."""
        rng = random.Random(seed)
        raw = list(self.RAW) + [
            ("pipelined", (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3 +
                           b"GET /movies?city=beijing HTTP/1.1\r\nHost: x\r\n\r\n" +
                           b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
             [200, 200, 200, 200, 200], False),
            ("post_then_get", (b"POST /movies?city=beijing HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 10\r\n\r\n0123456789"
                               b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
             [405], False),    # answered before its body, then closed: the GET never runs
            ("expect_continue", (b"POST /movies?city=beijing HTTP/1.1\r\nHost: x\r\n"
                                 b"Expect: 100-continue\r\nContent-Length: 5\r\n"
                                 b"Connection: close\r\n\r\nhello"), [405], False),  # no 100: the body is not wanted
        ]
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            name, data, want, may_idle = rng.choice(raw)
            try:
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
            except OSError as e:
                self.stats.fail("raw %s: connect: %s" % (name, e))
                continue
            try:
                try:
                    s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass    # the server may answer and close before reading it all
                out, closed = self.read_all(s, 1.0 if may_idle else 5.0)
            finally:
                s.close()
            statuses, framed = parse_responses(out)
            if not closed and not may_idle:
                self.stats.fail("raw %s: neither answered and closed within 5 s: %r"
                                % (name, out[:100]))
                continue
            if isinstance(want, list):
                # Sequences of well-formed requests: every answer, in order. MHD 0.9.75 may
                # write its own error responses' head twice: those are checked by their
                # first status only (tuples above).
                ok = statuses == want and framed and closed
            else:
                ok = (statuses[:1] or [None])[0] in want
            if not ok:
                self.stats.fail("raw %s: got statuses %r (closed %s), want %r: %r"
                                % (name, statuses, closed, want, out[:200]))
            with self.stats.lock:
                self.stats.raw[(name, statuses[0] if statuses else
                                ("closed" if closed else "open"))] += 1

    def disconnect_client(self, seed, stop_at):
        """Sends a request that must wait for a scrape (a fresh city, a hanging one, a cold
        one) and leaves at once, half of the time with a reset: the daemon holds a suspended
        connection whose client is gone."""
        rng = random.Random(seed)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            city = rng.choice([self.fresh_city(rng), rng.choice(HANG), rng.choice(COLD)])
            try:
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
                s.sendall(b"GET /movies?city=%s HTTP/1.1\r\nHost: x\r\n\r\n" % city.encode())
                time.sleep(rng.uniform(0, 0.02))
                if rng.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                s.close()
                self.stats.count("disconnects")
            except OSError as e:
                self.stats.fail("disconnect client: %s" % e)
            time.sleep(0.1)

    def slow_client(self, seed, stop_at):
        """Slowloris: the cached city's request one byte per 100 ms, then its answer."""
        rng = random.Random(seed)
        req = b"GET /movies?city=%s HTTP/1.1\r\nHost: slow\r\nX-Slow: %d\r\n\r\n" % (
            CACHED.encode(), rng.randrange(10 ** 6))
        done = 0
        while time.monotonic() + len(req) * 0.1 < stop_at + 1.0:
            try:
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=CLIENT_TIMEOUT)
            except OSError as e:
                self.stats.fail("slowloris: connect: %s" % e)
                return
            try:
                for i in range(len(req)):
                    s.sendall(req[i:i + 1])
                    time.sleep(0.1)
                t0 = time.monotonic()
                f = s.makefile("rb")
                resp = http.client.HTTPResponse(s, method="GET")
                resp.begin()
                body = resp.read()
                f.close()
                dt = time.monotonic() - t0
                self.stats.answered("slowloris", resp.status, dt)
                if resp.status != 200 or body != self.ref.body:
                    self.stats.fail("slowloris: %d %r" % (resp.status, body[:100]))
                done += 1
            except (OSError, http.client.HTTPException) as e:
                self.stats.fail("slowloris: %s: %s" % (type(e).__name__, e))
                return
            finally:
                s.close()
        if done == 0:
            self.stats.fail("a slowloris client completed no request")

    def blocker(self, at):
        """Once, at `at`: the block page for one city, which opens the breaker. Its listing
        goes ahead of the queued movie pages (listings are urgent), so it is answered 503
        at once even while the cold cities' pages are queued."""
        time.sleep(max(0.0, at - time.monotonic()))
        t0 = time.monotonic()
        try:
            r = self.d.get("/movies?city=%s" % BLOCK_CITY, timeout=CLIENT_TIMEOUT)
        except OSError as e:
            self.stats.fail("block request: %s" % e)
            return
        self.stats.answered("block", r.status, time.monotonic() - t0)
        msg = self.check("block", r, BLOCK_CITY, "GET", "/movies?city=" + BLOCK_CITY)
        if msg:
            self.stats.fail(msg)


def parse_responses(out):
    """(statuses, framed) of the HTTP/1.1 responses in out, read one after the other by their
    Content-Length; framed is False when bytes are left over or a head is cut or malformed."""
    statuses = []
    pos = 0
    while pos < len(out):
        end = out.find(b"\r\n\r\n", pos)
        head = out[pos:end].split(b"\r\n") if end >= 0 else []
        if not head or not head[0].startswith(b"HTTP/1.1 ") or not head[0][9:12].isdigit():
            return statuses, False
        status = int(head[0][9:12])
        statuses.append(status)
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        pos = end + 4 + (0 if 100 <= status < 200 else length)
    return statuses, pos == len(out)


def percentile(xs, p):
    """The p-quantile (0 <= p <= 1) of xs, nearest rank; NaN when xs is empty."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def churn(port, requests, connections, threads, seconds):
    """Opens `connections` short connections to port from `threads` threads within `seconds`:
    each sends one of requests, [(name, raw request, expected 200 body)], picked at random,
    reads the answer and closes, one in five with a reset. Returns {"next": connections
    opened, "ok": answered as expected, "nfail": the others, "failures": the first 10
    reasons, "elapsed": seconds taken, "stuck": threads still running 12 s past the time}."""
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failures": [], "nfail": 0}
    deadline = time.monotonic() + seconds

    def worker(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= connections:
                    return
                state["next"] += 1
            name, data, want = rng.choice(requests)
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                try:
                    s.sendall(data)
                    resp = http.client.HTTPResponse(s, method="GET")
                    resp.begin()
                    body = resp.read()
                    status = resp.status
                    if rng.random() < 0.2:    # leave with a reset
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                finally:
                    s.close()
                good = status == 200 and body == want
                msg = None if good else "%s: %d %r" % (name, status, body[:100])
            except (OSError, http.client.HTTPException) as e:
                msg = "%s: %s: %s" % (name, type(e).__name__, e)
            with lock:
                if msg:
                    state["nfail"] += 1
                    if len(state["failures"]) < 10:
                        state["failures"].append(msg)
                else:
                    state["ok"] += 1

    t0 = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(max(0.0, deadline + 12 - time.monotonic()))
    with lock:
        out = dict(state, failures=list(state["failures"]))
    out["elapsed"] = time.monotonic() - t0
    out["stuck"] = sum(1 for t in workers if t.is_alive())
    return out


def impatient(port, clients, threads):
    """`clients` connections to port from `threads` threads, each sending the start of a
    request (no end of head) and closing at once. Returns (connect or send errors, seconds
    taken)."""
    errors = []

    def worker(n):
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /movies?city=beijing HTTP/1.1\r\nHost: x\r\nX-Pa")
                s.close()
            except OSError as e:
                errors.append(e)
    t0 = time.monotonic()
    workers = [threading.Thread(target=worker, args=(clients // threads,), daemon=True)
               for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(20)
    return errors, time.monotonic() - t0


class Trickle:
    """with Trickle(socks, data) as t: a thread sends data to every socket of socks, one byte
    each interval seconds, until all of it is sent or the block ends (the thread is then
    stopped and joined); t.errors counts failed sends by exception name."""

    def __init__(self, socks, data, interval=0.1):
        self.socks = socks
        self.data = data
        self.interval = interval
        self.errors = collections.Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.send, daemon=True)

    def send(self):
        """The thread: one byte to each socket per interval."""
        i = 0
        while not self.stop.wait(self.interval) and i < len(self.data):
            for s in self.socks:
                try:
                    s.send(self.data[i:i + 1])
                except OSError as e:
                    self.errors[type(e).__name__] += 1
            i += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        return False
