#!/usr/bin/env python3
"""Compressed answers and responses made once: an answer goes gzip-compressed to clients
whose Accept-Encoding takes it, with Content-Encoding, Vary and an ETag of its own; HEAD
and 304 say what the GET would; a refresh changes both bodies and both ETags; errors stay
plain. A cached city's response object is made once a second per encoding and status
(moviesd_responses_made_total), with an Age that is still each request's own, and not
shared while draining (when every answer says Connection: close)."""

import calendar
import collections
import gzip
import http.client
import math
import re
import signal
import time

from harness import (expect, expect_answer, expect_eq, expect_error, get_in_background,
                     get_metrics, listing_path, metric, run, scenario, test, wait_until)

GZ = {"Accept-Encoding": "gzip"}
# Headers a HEAD and a 304 must carry as the GET does.
SAME = ("etag", "vary", "cache-control", "age")


def gz_etag(etag):
    """The gzip body's ETag for the plain body's: -gz inside the quotes."""
    expect(etag and etag.startswith('"') and etag.endswith('"'), "ETag %r" % etag)
    return etag[:-1] + '-gz"'


def expect_plain(r, what):
    expect_eq(r.status, 200, what + ": status")
    expect("content-encoding" not in r.headers, "%s: Content-Encoding %r on a plain answer"
           % (what, r.headers.get("content-encoding")))
    expect_eq(r.headers.get("vary"), "Accept-Encoding", what + ": Vary")


def expect_gzip(r, plain, what):
    """r is plain's answer gzip-compressed: its body inflates to exactly plain's."""
    expect_eq(r.status, 200, what + ": status")
    expect_eq(r.headers.get("content-encoding"), "gzip", what + ": Content-Encoding")
    expect_eq(r.headers.get("vary"), "Accept-Encoding", what + ": Vary")
    expect(r.body[:3] == b"\x1f\x8b\x08", "%s: not a gzip member: %r" % (what, r.body[:10]))
    inflated = gzip.decompress(r.body)
    expect(inflated == plain.body, "%s: the inflated body (%d bytes) is not the plain one (%d)"
           % (what, len(inflated), len(plain.body)))
    expect(len(r.body) < len(plain.body) / 2, "%s: %d gzip bytes for %d plain"
           % (what, len(r.body), len(plain.body)))
    expect_eq(r.headers.get("etag"), gz_etag(plain.headers.get("etag")), what + ": ETag")
    expect_eq(int(r.headers["content-length"]), len(r.body), what + ": Content-Length")


def same_second(fetch):
    """fetch() -> list of responses, retried until their Age headers agree (the second of
    an answer's age may turn between two requests)."""
    def agree():
        rs = fetch()
        return rs if len({r.headers.get("age") for r in rs}) == 1 else None
    return wait_until(agree, 5, "answers within one second of age", interval=0)


def get_with_fields(d, path, fields):
    """(headers, body) of a GET sending exactly the given (name, value) header lines, in
    order: one field may come twice, and no Accept-Encoding is added (http.client's
    request() adds "identity" when none is given)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.putrequest("GET", d.target(path), skip_accept_encoding=True)
        for name, value in fields:
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@test
def gzip_answer_is_the_plain_body_compressed():
    """A cold request taking gzip waits for the scrape and gets it compressed; cached, the
    gzip body inflates to exactly the plain one, with an ETag of its own, and every way of
    saying gzip in Accept-Encoding gets it; gzip;q=0, identity and other codings do not."""
    with scenario() as (fake, d):
        cold = d.get("/movies?city=beijing", headers=GZ)
        plain = d.get("/movies?city=beijing")
        expect_plain(plain, "plain")
        expect_answer(plain, fake, "beijing")
        expect_gzip(cold, plain, "the cold request's answer")
        expect_gzip(d.get("/movies?city=beijing", headers=GZ), plain, "cached")
        for value in ("x-gzip", "*", "GZIP", " deflate , Gzip ;Q=0.5 ", "br;q=1, gzip;q=0.2",
                      "gzip;q=0.5, identity;q=0.5", "identity;q=0, *"):
            expect_gzip(d.get("/movies?city=beijing", headers={"Accept-Encoding": value}),
                        plain, "Accept-Encoding: %s" % value)
        for value in ("gzip;q=0", "x-gzip;q=0.000", "*;q=0", "identity", "deflate, br", "",
                      "gzip;q=0.5, identity", "gzip;q=2", "*, gzip;q=0"):
            r = d.get("/movies?city=beijing", headers={"Accept-Encoding": value})
            expect_plain(r, "Accept-Encoding: %s" % value)
            expect_eq(r.headers.get("etag"), plain.headers["etag"], "Accept-Encoding: %s: ETag" % value)
            expect(r.body == plain.body, "Accept-Encoding: %s: not the plain body" % value)
        # No Accept-Encoding at all: plain.
        headers, body = get_with_fields(d, "/movies?city=beijing", [])
        expect_eq((headers.get("content-encoding"), headers.get("etag"), headers.get("vary")),
                  (None, plain.headers["etag"], "Accept-Encoding"), "no Accept-Encoding")
        expect(body == plain.body, "no Accept-Encoding: not the plain body")
        # A list split over two fields is one list: identity below gzip.
        headers, body = get_with_fields(d, "/movies?city=beijing",
                                        [("Accept-Encoding", "identity;q=0.5"),
                                         ("Accept-Encoding", "gzip")])
        expect_eq(headers.get("content-encoding"), "gzip", "Accept-Encoding in two fields")
        expect(gzip.decompress(body) == plain.body, "Accept-Encoding in two fields: the body")
        expect_eq(fake.count(listing_path("beijing")), 1, "listing requests")
        # Both bodies, fresh and stale ("stale":true, a byte shorter, its gzip about as
        # long), in both encodings are charged to cache_max_bytes.
        charged = metric(get_metrics(d), "moviesd_cache_bytes", cache="cities")
        bodies = 2 * len(plain.body) - 1 + 2 * len(cold.body) - 16
        expect(bodies <= charged <= bodies + 1024, "the cities cache holds %d bytes for bodies "
               "of %d in all" % (charged, bodies))


@test
def cities_and_errors():
    """GET /cities goes compressed like an answer; error answers stay plain JSON, whatever
    the client takes."""
    with scenario() as (fake, d):
        plain = d.get("/cities")
        expect_plain(plain, "/cities")
        expect_gzip(d.get("/cities", headers=GZ), plain, "/cities with gzip")
        for path, status, code in (("/movies?city=zzzzzz", 404, "unknown_city"),
                                   ("/movies", 400, "missing_city"),
                                   ("/movies?city=beijing&wait=soon", 400, "invalid_wait"),
                                   ("/nowhere", 404, "not_found")):
            r = d.get(path, headers=GZ)
            expect("content-encoding" not in r.headers, "Content-Encoding on %s" % path)
            expect_error(r, status, code, path + " with gzip")
        fake.add_fault("^%s$" % listing_path("shanghai"), 500)
        r = d.get("/movies?city=shanghai", headers=GZ)
        expect("content-encoding" not in r.headers, "Content-Encoding on the upstream error")
        expect_error(r, 502, "upstream_error", "an upstream error with gzip")


@test
def head_says_what_get_would():
    """HEAD gets the GET's status and headers, Content-Encoding and Content-Length
    included, and no body, for each encoding."""
    with scenario() as (fake, d):
        d.get("/movies?city=beijing")
        for headers, what in (({}, "plain"), (GZ, "gzip")):
            get, head = same_second(lambda: [d.get("/movies?city=beijing", headers=headers),
                                             d.head("/movies?city=beijing", headers=headers)])
            expect_eq(head.status, 200, what + " HEAD status")
            expect_eq(head.body, b"", what + " HEAD body")
            for name in SAME + ("content-encoding", "content-length", "content-type"):
                expect_eq(head.headers.get(name), get.headers.get(name),
                          "%s HEAD's %s" % (what, name))


@test
def not_modified_per_encoding():
    """Each encoding revalidates with its own ETag (a 304 with the GET's ETag, Vary,
    Cache-Control and Age), not with the other's; lists and weak tags match."""
    with scenario() as (fake, d):
        plain = d.get("/movies?city=beijing")
        zipped = d.get("/movies?city=beijing", headers=GZ)
        e, g = plain.headers["etag"], zipped.headers["etag"]
        expect_eq(g, gz_etag(e), "the gzip ETag")
        for headers, own, other, what in (({}, e, g, "plain"), (GZ, g, e, "gzip")):
            for inm in (own, "W/" + own, '"other", ' + own, other + ", " + own, "*"):
                get, nm = same_second(lambda: [
                    d.get("/movies?city=beijing", headers=headers),
                    d.get("/movies?city=beijing", headers=dict(headers, **{"If-None-Match": inm}))])
                expect_eq((nm.status, len(nm.body)), (304, 0), "%s, If-None-Match: %s" % (what, inm))
                for name in SAME:
                    expect_eq(nm.headers.get(name), get.headers.get(name),
                              "%s 304's %s" % (what, name))
                nm = d.head("/movies?city=beijing", headers=dict(headers, **{"If-None-Match": inm}))
                expect_eq(nm.status, 304, "%s HEAD, If-None-Match: %s" % (what, inm))
            r = d.get("/movies?city=beijing", headers=dict(headers, **{"If-None-Match": other}))
            expect_eq(r.status, 200, "%s with the other encoding's ETag %s" % (what, other))
            expect_eq(r.headers.get("etag"), own, "%s ETag after the other's" % what)
            expect_eq(r.headers.get("content-encoding"), "gzip" if headers else None,
                      "%s Content-Encoding after the other's ETag" % what)


@test
def refresh_changes_both_encodings():
    """Past the TTL the old answer is served marked stale, compressed too, while the refresh
    runs (its listing delayed); once the new listing is in, both ETags are new, the gzip
    body is the new plain body compressed, and the old ETags get 200."""
    with scenario(flags=["--listing-ttl", "1"]) as (fake, d):
        old_plain = d.get("/movies?city=beijing")
        old_gzip = d.get("/movies?city=beijing", headers=GZ)
        expect_gzip(old_gzip, old_plain, "before the refresh")
        fake.set_city("beijing", 5)
        fake.add_fault("^%s$" % listing_path("beijing"), "delay", times=1, ms=2000)

        def pair(stale):
            p = d.get("/movies?city=beijing")
            z = d.get("/movies?city=beijing", headers=GZ)
            doc = p.json()
            if doc["stale"] != stale or doc["count"] != (12 if stale else 5) or \
                    z.headers.get("etag") != gz_etag(p.headers["etag"]):
                return None
            return p, z
        stale_plain, stale_gzip = wait_until(lambda: pair(True), 10, "the stale answer",
                                             interval=0.05)
        expect_gzip(stale_gzip, stale_plain, "the stale answer")
        expect(stale_gzip.headers["etag"] != old_gzip.headers["etag"],
               "the stale answer has the fresh one's gzip ETag")
        new_plain, new_gzip = wait_until(lambda: pair(False), 10, "the refreshed answer",
                                         interval=0.05)
        expect_gzip(new_gzip, new_plain, "after the refresh")
        expect(new_plain.headers["etag"] != old_plain.headers["etag"], "plain ETag unchanged")
        expect(new_gzip.headers["etag"] != old_gzip.headers["etag"], "gzip ETag unchanged")
        expect(new_gzip.body != old_gzip.body, "gzip body unchanged")
        for headers, old in (({}, old_plain), (GZ, old_gzip)):
            r = d.get("/movies?city=beijing",
                      headers=dict(headers, **{"If-None-Match": old.headers["etag"]}))
            expect_eq(r.status, 200, "the old ETag %s after the refresh" % old.headers["etag"])


@test
def partial_answers_compress_as_they_change():
    """A listing-first answer goes compressed too, made anew as movies land: each partial
    answer's gzip body inflates to that partial answer, with its ETag plus -gz."""
    def setup(fake):
        fake.set_city("beijing", 6)
        ids = fake.city_ids("beijing")
        fake.add_fault("^/subject/%d/$" % ids[0], "delay", ms=1500)
        fake.add_fault("^/subject/%d/$" % ids[1], "delay", ms=4000)
    with scenario(setup=setup) as (fake, d):
        d.complete_answers = False

        def partial(pending):
            def both():
                p = d.get("/movies?city=beijing")
                z = d.get("/movies?city=beijing", headers=GZ)
                if p.json()["pending"] != pending or z.headers.get("etag") != gz_etag(p.headers["etag"]):
                    return None
                return p, z
            return wait_until(both, 10, "a partial answer with %d pending" % pending, interval=0.05)
        p2, z2 = partial(2)
        expect_gzip(z2, p2, "partial, 2 pending")
        p1, z1 = partial(1)
        expect_gzip(z1, p1, "partial, 1 pending")
        expect(z1.headers["etag"] != z2.headers["etag"], "the partial gzip ETag did not change")


ACCESS_RE = re.compile(r"\b(GET|HEAD) /movies\?city=beijing (\d+) (\d+) ")
# fetched_at is time(), which reads the kernel's coarse clock: a few milliseconds behind
# time.time() at most.
COARSE = 0.02


def age_bounds(t0, t1, fetched_at):
    """The Age an answer fetched at fetched_at (whole seconds, as the JSON says) may have
    for a request sent at t0 and answered at t1 (wall clock)."""
    return math.floor(t0 - fetched_at - COARSE) - 1, math.floor(t1 - fetched_at + COARSE)


@test
def cached_answer_made_once_a_second():
    """Requests for a cached city, both encodings, 200 and 304, GET and HEAD, for over two
    seconds: moviesd_responses_made_total grows by one per (encoding, status, Age) seen (and
    one for /metrics), not per request; each Age is still the answer's age as fetched_at
    says, and each body the right one."""
    with scenario() as (fake, d):
        plain = d.get("/movies?city=beijing")
        zipped = d.get("/movies?city=beijing", headers=GZ)
        fetched_at = calendar.timegm(time.strptime(plain.json()["fetched_at"], "%Y-%m-%dT%H:%M:%SZ"))
        kinds = [("GET", {}, 200, plain.body), ("GET", GZ, 200, zipped.body),
                 ("HEAD", {}, 200, b""), ("HEAD", GZ, 200, b""),
                 ("GET", {"If-None-Match": plain.headers["etag"]}, 304, b""),
                 ("GET", dict(GZ, **{"If-None-Match": zipped.headers["etag"]}), 304, b"")]
        path = d.target("/movies?city=beijing")
        before = metric(get_metrics(d), "moviesd_responses_made_total")
        mark = d.mark()
        sent = collections.Counter()
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        seen, n, start = set(), 0, time.time()
        try:
            while n < 200 or time.time() - start < 2.5:
                method, headers, status, body = kinds[n % len(kinds)]
                t0 = time.time()
                conn.request(method, path, headers=headers)
                r = conn.getresponse()
                got = r.read()
                t1 = time.time()
                if r.will_close:   # a 304 closes its connection (see test_cache.py)
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
                expect(r.status == status and got == body, "%s %r: %d with %d bytes, expected %d "
                       "with %d" % (method, headers, r.status, len(got), status, len(body)))
                age = int(r.getheader("Age"))
                lo, hi = age_bounds(t0, t1, fetched_at)
                expect(lo <= age <= hi, "Age %d of a request %.3f-%.3f s after fetched_at: "
                       "expected %d to %d" % (age, t0 - fetched_at, t1 - fetched_at, lo, hi))
                seen.add(("gzip" in headers.get("Accept-Encoding", ""), status, age))
                sent["%s %d %d" % (method, status, len(body))] += 1
                n += 1
                if n == 200:
                    print("    (200 requests in %.2f s)" % (time.time() - start))
        finally:
            conn.close()
        made = metric(get_metrics(d), "moviesd_responses_made_total") - before
        print("    (%d requests over %.1f s, %d kinds of answer: %d responses made)"
              % (n, time.time() - start, len(seen), made))
        expect(len({age for _, _, age in seen}) >= 3, "Age took %r over 2.5 s" % sorted(seen))
        expect(made <= len(seen) + 1, "%d responses made for %d requests of %d (encoding, "
               "status, Age)" % (made, n, len(seen)))
        # The access log counts each request's bytes: the gzip body's length for gzip, none
        # for HEAD and 304.
        expect_eq(sorted(sent), sorted(["GET 200 %d" % len(plain.body), "GET 200 %d" % len(zipped.body),
                                        "HEAD 200 0", "GET 304 0"]), "kinds sent")

        def logged():
            got = collections.Counter(
                "%s %s %s" % m.groups() for m in (ACCESS_RE.search(l) for l in d.lines()[mark:]) if m)
            return got if got == sent else None
        wait_until(logged, 5, "an access log line with the bytes sent for each request")


@test
def draining_answers_are_not_shared():
    """While draining every answer says Connection: close, those of a cached city too, in
    both encodings, though its responses were made and shared before."""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "hang")
    flags = ["--drain-timeout", "2", "--upstream-timeout", "60", "--request-deadline", "60"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        plain = d.get("/movies?city=shanghai")
        zipped = d.get("/movies?city=shanghai", headers=GZ)
        conns = []
        try:
            for headers in ({}, GZ):
                conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
                conns.append(conn)
                conn.request("GET", d.target("/movies?city=shanghai"), headers=headers)
                r = conn.getresponse()
                r.read()
                expect(not r.will_close, "Connection: close before draining: %r" % r.getheaders())
            t, result = get_in_background(d, "/movies?city=beijing")
            wait_until(lambda: fake.count(listing_path("beijing")) >= 1, 5, "beijing's listing request")
            mark = d.mark()
            d.signal(signal.SIGTERM)
            expect(d.wait_for_line(r"draining", 5, start=mark), "no 'draining' line after SIGTERM")
            for conn, headers, want in ((conns[0], {}, plain), (conns[1], GZ, zipped)):
                conn.request("GET", d.target("/movies?city=shanghai"), headers=headers)
                r = conn.getresponse()
                body = r.read()
                expect(r.status == 200 and body == want.body, "cached answer while draining: %d"
                       % r.status)
                expect_eq(r.getheader("Connection"), "close", "Connection while draining (%r)"
                          % (headers,))
                expect_eq(r.getheader("Content-Encoding"), want.headers.get("content-encoding"),
                          "Content-Encoding while draining")
            expect(t.is_alive(), "the daemon was not draining any more when it answered")
        finally:
            for conn in conns:
                conn.close()
        expect_eq(d.wait(10), 0, "exit status")
        t.join(10)
        expect_error(result["r"], 503, "shutting_down", "beijing at the drain timeout")


if __name__ == "__main__":
    run(deadline=150)
