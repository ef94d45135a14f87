#!/usr/bin/env python3
"""CORS and the contract: Access-Control-Allow-Origin on answers, errors and 304s as
cors_origins says (* by default, a listed Origin echoed with Vary: Origin, nothing when
empty); OPTIONS preflights; GET /openapi.json is docs/openapi.json byte for byte, with its
caching headers; and the contract check of the harness refuses a body its schema does
not allow."""

import gzip
import json
import os

from harness import (REPO, Response, TestFailure, check_contract, expect, expect_eq,
                     expect_error, raw_request, run, scenario, test)

EXPOSED = "ETag, Age, Retry-After"


def header_values(r, name):
    """Every value of header name in r, in order."""
    return [v for k, v in r.header_list if k.lower() == name.lower()]


def expect_cors(r, allow, what, vary_origin=False):
    """r allows origin allow ("*", an origin, or None for no CORS headers at all)."""
    got = header_values(r, "Access-Control-Allow-Origin")
    expect_eq(got, [allow] if allow else [], "%s: Access-Control-Allow-Origin" % what)
    vary = ",".join(header_values(r, "Vary"))
    expect_eq("Origin" in [v.strip() for v in vary.split(",")], vary_origin,
              "%s: Vary: Origin in %r" % (what, vary))
    if allow:
        expect_eq(r.headers.get("access-control-expose-headers"), EXPOSED,
                  "%s: Access-Control-Expose-Headers" % what)


@test
def any_origin_by_default():
    """cors_origins = * (the default): answers, errors, 304s, the in-place 400 and gzip
    bodies carry Access-Control-Allow-Origin: *, with or without an Origin."""
    with scenario() as (fake, d):
        site = {"Origin": "https://app.example"}
        for path in ("/movies?city=beijing", "/cities", "/healthz", "/readyz", "/metrics",
                     "/openapi.json"):
            expect_cors(d.get(path, headers=site), "*", path)
            expect_cors(d.get(path), "*", path + " without Origin")
        r = d.get("/movies?city=beijing")
        expect_eq(r.status, 200, "status")
        again = d.get("/movies?city=beijing", headers=dict(site, **{"If-None-Match": r.headers["etag"]}))
        expect_eq(again.status, 304, "revalidation")
        expect_cors(again, "*", "304")
        z = d.get("/cities", headers=dict(site, **{"Accept-Encoding": "gzip"}))
        expect_eq(z.headers.get("content-encoding"), "gzip", "gzip")
        expect_cors(z, "*", "gzip /cities")
        for path, status, code in (("/nowhere", 404, "not_found"), ("/movies", 400, "missing_city"),
                                   ("/movies?city=Bad", 400, "invalid_city"),
                                   ("/movies?city=atlantis", 404, "unknown_city")):
            r = d.get(path, headers=site)
            expect_error(r, status, code, path)
            expect_cors(r, "*", path)
        r = d.request("DELETE", "/movies?city=beijing", headers=site)
        expect_error(r, 405, "method_not_allowed")
        expect_cors(r, "*", "405")
        expect_eq(r.headers.get("allow"), "GET, HEAD, OPTIONS", "Allow")
        # A 400 written in MHD's place (an HTTP/1.1 request without Host).
        data = raw_request(d.port, b"GET /healthz HTTP/1.1\r\nOrigin: https://app.example\r\n\r\n")
        head = data.partition(b"\r\n\r\n")[0].decode("iso-8859-1")
        expect(head.startswith("HTTP/1.1 400"), "no Host: %r" % head[:80])
        expect("\r\nAccess-Control-Allow-Origin: *\r\n" in head, "no Host: CORS header in %r" % head)


@test
def preflight():
    """OPTIONS on a path the API serves: 204, no body, Allow and the CORS preflight headers;
    on an unknown path 404."""
    with scenario() as (fake, d):
        req = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "if-none-match"}
        for path in ("/movies?city=beijing", "/cities", "/healthz", "/readyz", "/metrics",
                     "/openapi.json"):
            r = d.request("OPTIONS", path, headers=req)
            expect_eq(r.status, 204, "OPTIONS %s" % path)
            expect_eq(r.body, b"", "OPTIONS %s body" % path)
            expect_eq(r.headers.get("allow"), "GET, HEAD, OPTIONS", "Allow")
            expect_eq(r.headers.get("access-control-allow-methods"), "GET, HEAD, OPTIONS", "methods")
            allowed = [h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")]
            for h in ("if-none-match", "cache-control", "last-event-id"):
                expect(h in allowed, "%s not in Access-Control-Allow-Headers %r" % (h, allowed))
            expect_eq(r.headers.get("access-control-max-age"), "86400", "Max-Age")
            expect("content-length" not in r.headers or r.headers["content-length"] == "0",
                   "204 with Content-Length %r" % r.headers.get("content-length"))
            expect_cors(r, "*", "OPTIONS %s" % path)
        expect_error(d.request("OPTIONS", "/nowhere", headers=req), 404, "not_found")
        expect_eq(fake.total, 0, "upstream requests for preflights")


@test
def listed_origins():
    """cors_origins lists origins: a listed Origin is echoed on answers, errors, 304s and
    preflights (responses made once are not shared with it), any other Origin and a request
    without one get none; every answer says Vary: Origin."""
    flags = ["--cors-origins", "https://a.example, http://localhost:3000"]
    with scenario(flags=flags) as (fake, d):
        for origin, allow in (("https://a.example", "https://a.example"),
                              ("http://localhost:3000", "http://localhost:3000"),
                              ("https://evil.example", None), (None, None),
                              ("https://a.example.evil", None)):
            h = {"Origin": origin} if origin else {}
            for path in ("/movies?city=beijing", "/cities", "/healthz", "/nowhere",
                         "/movies?city=atlantis"):
                # Twice: the second may come from a response made once, for an earlier request.
                for n in (1, 2):
                    expect_cors(d.get(path, headers=h), allow, "%s %s (%d)" % (origin, path, n),
                                vary_origin=True)
            r = d.get("/cities", headers=h)
            r304 = d.get("/cities", headers=dict(h, **{"If-None-Match": r.headers["etag"]}))
            expect_eq(r304.status, 304, "revalidation")
            expect_cors(r304, allow, "304 for %s" % origin, vary_origin=True)
            p = d.request("OPTIONS", "/movies?city=beijing", headers=h)
            expect_eq(p.status, 204, "preflight")
            expect_cors(p, allow, "preflight for %s" % origin, vary_origin=True)


@test
def cors_off():
    """cors_origins empty: no CORS header on any answer; OPTIONS still answers 204 with Allow
    and nothing of CORS."""
    with scenario(flags=["--cors-origins", ""]) as (fake, d):
        h = {"Origin": "https://app.example"}
        for path in ("/movies?city=beijing", "/cities", "/healthz", "/nowhere", "/openapi.json"):
            r = d.get(path, headers=h)
            expect_cors(r, None, path)
            expect(not any(k.lower().startswith("access-control-") for k, _ in r.header_list),
                   "%s: CORS headers %r" % (path, r.header_list))
        p = d.request("OPTIONS", "/cities", headers=h)
        expect_eq((p.status, p.headers.get("allow")), (204, "GET, HEAD, OPTIONS"), "OPTIONS")
        expect(not any(k.lower().startswith("access-control-") for k, _ in p.header_list),
               "OPTIONS: CORS headers %r" % (p.header_list,))


@test
def bad_setting_stops_startup():
    """A cors_origins that is not *, empty or a list of origins stops startup, naming it."""
    from harness import run_cli
    for value in ("example.com", "https://a.example/path", "https://a.example, *"):
        rc, out, err = run_cli(["--check-config", "--cors-origins", value])
        expect(rc != 0, "--cors-origins %r accepted" % value)
        expect("cors-origins" in err or "cors_origins" in err, "message %r" % err[-300:])


@test
def openapi_served():
    """GET /openapi.json is docs/openapi.json byte for byte: OpenAPI 3.1 JSON, cacheable for
    a day with an ETag that a 304 honours, gzip with its own ETag; HEAD without a body."""
    with open(os.path.join(REPO, "docs", "openapi.json"), "rb") as f:
        want = f.read()
    with scenario() as (fake, d):
        r = d.get("/openapi.json")
        expect_eq(r.status, 200, "status")
        expect_eq(r.headers.get("content-type"), "application/json; charset=utf-8", "type")
        expect(r.body == want, "served %d bytes, docs/openapi.json has %d, or they differ"
               % (len(r.body), len(want)))
        doc = json.loads(r.body)
        expect(doc["openapi"].startswith("3.1."), "openapi %r" % doc["openapi"])
        expect_eq(r.headers.get("cache-control"), "public, max-age=86400", "Cache-Control")
        etag = r.headers.get("etag")
        expect(etag, "ETag")
        expect_eq(d.get("/openapi.json", headers={"If-None-Match": etag}).status, 304, "304")
        z = d.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        expect_eq(z.headers.get("content-encoding"), "gzip", "gzip")
        expect(gzip.decompress(z.body) == want, "gzip body")
        expect_eq(z.headers.get("etag"), etag[:-1] + '-gz"', "gzip ETag")
        h = d.head("/openapi.json")
        expect_eq((h.status, h.body), (200, b""), "HEAD")
        expect_eq(fake.total, 0, "upstream requests")
        for path in doc["paths"]:
            expect(path.startswith("/"), "path %r" % path)


@test
def contract_check_refuses():
    """The harness's check: a body with an undocumented field, a field of the wrong type, or
    an undocumented status fails; an error at an unknown path must be an Error."""
    ok = b'{"status":"ok"}'
    check_contract("GET", "/healthz", Response(200, [("Content-Type", "application/json")], ok))
    cases = [("/healthz", 200, b'{"status":"ok","extra":1}', "extra"),
             ("/healthz", 200, b'{"status":"fine"}', "/status"),
             ("/healthz", 418, ok, "418"),
             ("/nowhere", 404, b'{"error":{"code":"no_such_code","message":"x"}}', "no_such_code"),
             ("/cities", 200, b'{"count":"1","cities":[]}', "'1'")]
    for path, status, body, word in cases:
        try:
            check_contract("GET", path, Response(status, [("Content-Type", "application/json")], body))
        except TestFailure as e:
            expect(word in str(e), "message %r does not name %r" % (str(e), word))
        else:
            raise TestFailure("GET %s %d %r passed the contract check" % (path, status, body))


if __name__ == "__main__":
    run(deadline=180)
