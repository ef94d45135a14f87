#!/usr/bin/env python3
"""The HTTP API: the answer's shape and content, request validation, methods, HEAD, healthz,
access log."""

import os
import re
import signal
import uuid

from harness import (MOVIE_KEYS, OFFHOST_IDS, REPO, SIDEBAR_IDS, TempDir, expect, expect_answer,
                     expect_eq, expect_error, expect_json_type, expect_movie, movie_spec,
                     raw_request, run, scenario, test, wait_until)
from harness import diff_movie, expected_movie
from fake_upstream import MARKS, expected_month_only


@test
def healthz():
    with scenario() as (fake, d):
        r = d.get("/healthz")
        expect_eq(r.status, 200, "status")
        expect_json_type(r)
        expect_eq(r.json(), {"status": "ok"}, "body")
        expect_eq(fake.total, 0, "upstream requests for /healthz")


def table_rows():
    """The (slug, id, name) rows of lib/city_table.c, in its order."""
    with open(os.path.join(REPO, "lib", "city_table.c"), encoding="utf-8") as f:
        return re.findall(r'^    \{"([^"]*)", "([^"]*)", "([^"]*)"\},$', f.read(), re.M)


@test
def cities_list():
    """GET /cities: {"count", "cities": [{"slug", "id", "name"}]}, the whole table sorted by
    slug, cacheable with an ETag that a 304 honours; HEAD alike without a body; no upstream
    request."""
    with scenario() as (fake, d):
        r = d.get("/cities")
        expect_eq(r.status, 200, "status")
        expect_json_type(r)
        doc = r.json()
        expect_eq(list(doc), ["count", "cities"], "keys")
        cities = doc["cities"]
        expect_eq(doc["count"], 343, "count")
        expect_eq(len(cities), doc["count"], "entries vs count")
        expect(all(list(c) == ["slug", "id", "name"] for c in cities), "entry keys")
        expect_eq([(c["slug"], c["id"], c["name"]) for c in cities], table_rows(),
                  "entries vs lib/city_table.c")
        slugs = [c["slug"].encode() for c in cities]
        expect_eq(slugs, sorted(set(slugs)), "sorted by slug, each once")
        expect({"slug": "beijing", "id": "108288", "name": "北京"} in cities, "beijing")
        expect({"slug": "118378", "id": "118378", "name": "榆林"} in cities, "a city by its id")
        expect(all(re.fullmatch(r"[a-z]{1,32}|[0-9]{1,32}", c["slug"]) for c in cities),
               "slugs the API accepts")
        expect_eq(r.headers.get("cache-control"), "public, max-age=86400", "Cache-Control")
        etag = r.headers.get("etag")
        expect(etag and re.fullmatch(r'"[0-9a-f]{16}"', etag), "ETag %r" % etag)
        again = d.get("/cities")
        expect_eq((again.headers.get("etag"), again.body), (etag, r.body), "second answer")
        nm = d.get("/cities", headers={"If-None-Match": etag})
        expect_eq((nm.status, nm.body), (304, b""), "If-None-Match")
        h = d.head("/cities")
        expect_eq((h.status, h.body, h.headers.get("etag")), (200, b"", etag), "HEAD")
        expect_eq(h.headers.get("content-length"), str(len(r.body)), "HEAD Content-Length")
        expect_error(d.request("POST", "/cities"), 405, "method_not_allowed")
        expect_eq(fake.total, 0, "upstream requests for /cities")


@test
def movies_full_answer():
    """12 movies: top-level shape, every field of every movie, listing order, one upstream
    request per page."""
    with scenario() as (fake, d):
        ids = fake.city_ids("beijing")
        r = d.get("/movies?city=beijing")
        doc = expect_answer(r, fake, "beijing")
        expect_eq(doc["stale"], False, "stale")
        expect_eq(doc["count"], 12, "count")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids in listing order")
        problems = []
        for m in doc["movies"]:
            spec = movie_spec(m["id"])
            # Movies whose listing lacks the regions row: regions checked in its own test.
            skip = () if spec["listing_has_regions"] else ("regions",)
            try:
                expect_movie(m, int(m["id"]), skip)
            except AssertionError as e:
                problems.append(str(e))
        expect(not problems, "\n".join(problems))
        expect_eq(fake.count("/cinema/later/beijing/"), 1, "listing requests")
        for i in ids:
            expect_eq(fake.count("/subject/%d/" % i), 1, "requests of /subject/%d/" % i)
        for i in SIDEBAR_IDS + OFFHOST_IDS:
            expect_eq(fake.count("/subject/%d/" % i), 0, "requests of non-listing /subject/%d/" % i)
        expect_eq(fake.total, 1 + len(ids), "total upstream requests")


@test
def movies_types():
    """JSON types: ids and urls strings, counts integers, rating a number, lists of strings."""
    with scenario() as (fake, d):
        doc = expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        for m in doc["movies"]:
            expect(isinstance(m["id"], str) and m["id"].isdigit(), "id %r" % m["id"])
            expect_eq(m["url"], "https://movie.douban.com/subject/%s/" % m["id"], "url")
            expect(type(m["wish_count"]) is int, "wish_count %r" % m["wish_count"])
            expect(type(m["year"]) is int, "year %r" % m["year"])
            expect(m["rating"] is None or type(m["rating"]) in (int, float), "rating %r" % m["rating"])
            expect(m["votes"] is None or type(m["votes"]) is int, "votes %r" % m["votes"])
            for k in ("genres", "regions", "directors", "actors", "languages"):
                expect(isinstance(m[k], list) and all(isinstance(x, str) for x in m[k]),
                       "%s of %s: %r" % (k, m["id"], m[k]))
            expect(re.fullmatch(r"\d{4}-\d{2}-\d{2}", m["release_date_iso"] or ""),
                   "release_date_iso %r" % m["release_date_iso"])


@test
def listing_row_missing_matched_by_content():
    """Listing items without the regions row: the date and wish rows are still recognised
    by content, and regions come from the movie page."""
    with scenario() as (fake, d):
        ids = [i for i in range(36000000, 36000200) if not movie_spec(i)["listing_has_regions"]][:3]
        ids += [36000001, 36000002]
        fake.set_city("beijing", ids)
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids")
        for m in doc["movies"]:
            expect_movie(m, int(m["id"]))


@test
def title_entities_decoded():
    """&amp; and &#47; in titles are decoded; surrounding whitespace trimmed."""
    with scenario() as (fake, d):
        ids = [i for i in range(36000000, 36000100) if i % 9 in (4, 5)][:4]
        fake.set_city("beijing", ids)
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        got = [m["title"] for m in doc["movies"]]
        expect_eq(got, [movie_spec(i)["title"] for i in ids], "titles")
        expect(all(("&" in t) or ("/" in t) for t in got), "titles carry & or /: %r" % got)


def _strings(v):
    """Every string in a JSON value, keys included."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from _strings(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from _strings(x)


@test
def douban_text_quirks():
    """Douban's invisible marks (U+200E, U+200F, U+200B, U+FEFF) in and around every text and
    attribute of the listing and the movie pages never reach the answer; a date with the month
    alone ("07月") is release_date "07月", release_date_iso "YYYY-MM", precision "month"."""
    with scenario() as (fake, d):
        both = fake.city_ids("beijing")
        marks_only = fake.set_city("chengdu", [36000500 + i for i in range(12)])
        fake.set_text_quirks("beijing", month_only=True, invisible_marks=True)
        fake.set_text_quirks("chengdu", invisible_marks=True)
        for city, ids in (("beijing", both), ("chengdu", marks_only)):
            r = d.get("/movies?city=" + city)
            doc = expect_answer(r, fake, city)
            expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], city + " ids")
            for raw in [m.encode() for m in MARKS] + [b"\\u200", b"\\ufeff", b"\\uFEFF"]:
                expect(raw not in r.body, "%s answer holds %r" % (city, raw))
            marked = [s for s in _strings(doc) if any(m in s for m in MARKS)]
            expect(not marked, "%s strings with marks: %r" % (city, marked[:5]))
            problems = []
            for m in doc["movies"]:
                want = expected_movie(int(m["id"]))
                if city == "beijing":
                    want = expected_month_only(want)
                    expect(re.fullmatch(r"\d{2}月", m["release_date"] or ""), "release_date %r"
                           % m["release_date"])
                    expect(re.fullmatch(r"\d{4}-\d{2}", m["release_date_iso"] or ""),
                           "release_date_iso %r" % m["release_date_iso"])
                else:
                    expect_eq(m["release_date_precision"], "day", "precision of " + m["id"])
                problems += diff_movie(m, want)
            expect(not problems, "%s:\n    %s" % (city, "\n    ".join(problems)))
        for i in both + marks_only:
            expect_eq(fake.count("/subject/%d/" % i), 1, "requests of /subject/%d/" % i)


@test
def missing_city():
    with scenario() as (fake, d):
        for path in ("/movies", "/movies?", "/movies?town=beijing"):
            expect_error(d.get(path), 400, "missing_city", path)
        expect_eq(fake.total, 0, "upstream requests")


@test
def invalid_city():
    with scenario() as (fake, d):
        bad = ["Beijing", "BEIJING", "bei%20jing", "bei+jing", "../x", "..%2Fx", "a" * 33,
               "", "bei-jing", "beijing1", "%E5%8C%97%E4%BA%AC", "bei%00jing", "beijing/"]
        for city in bad:
            path = "/movies?city=" + city
            expect_error(d.get(path), 400, "invalid_city", path)
        expect_eq(fake.total, 0, "upstream requests for invalid cities")


@test
def city_length_bounds():
    """1 and 32 letters, and 1 and 32 digits, are valid slugs (asked upstream: the fake does
    not know them). --cities any: no such city is in the table, and the point is that the
    slug's shape passes and reaches the upstream."""
    with scenario(flags=["--cities", "any"]) as (fake, d):
        for city in ("a", "z" * 32, "0", "9" * 32):
            r = d.get("/movies?city=" + city)
            expect_error(r, 404, "unknown_city", city)
            expect_eq(fake.count("/cinema/later/%s/" % city), 1, "listing requests for " + city)


@test
def unknown_city():
    """Douban's own 404 for a city: with --cities any, since every city of the table is one
    Douban knows; with the default, the same name is refused before any request."""
    with scenario(flags=["--cities", "any"]) as (fake, d):
        expect_error(d.get("/movies?city=atlantis"), 404, "unknown_city")
        expect_eq(fake.count("/cinema/later/atlantis/"), 1, "listing requests")
        expect_eq(fake.count_matching(r"^/subject/"), 0, "subject requests")


@test
def city_outside_the_table_costs_no_request():
    """cities=known (the default): a slug not in GET /cities is 404 unknown_city at once,
    naming it, and the upstream is never asked; a slug of the table is asked as usual."""
    with scenario(setup=lambda fake: fake.set_city("atlantis", 3)) as (fake, d):
        for city in ("atlantis", "beijingx", "118"):
            for method in ("GET", "HEAD"):
                r = d.request(method, "/movies?city=" + city)
                expect_eq(r.status, 404, "%s %s: status" % (method, city))
                if method == "GET":
                    doc = expect_error(r, 404, "unknown_city", city)
                    expect_eq(doc["error"]["message"],
                              "no city '%s' (GET /cities lists them)" % city, "message")
                else:
                    expect_eq(r.body, b"", "HEAD body")
        expect_eq(fake.total, 0, "upstream requests for slugs outside the table")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq(fake.count("/cinema/later/beijing/"), 1, "listing requests for beijing")


@test
def cities_any_passes_unknown_slugs_on():
    """--cities any: a slug outside the table (a city newer than it) is asked of Douban and
    answered like any other; --cities known refuses it; a SIGHUP switches between the two."""
    def setup(fake):
        fake.set_city("atlantis", 3)
    with TempDir() as tmp:
        conf = os.path.join(tmp, "moviesd.conf")
        with open(conf, "w") as f:
            f.write("cities = any\n")
        with scenario(flags=["--config", conf], setup=setup) as (fake, d):
            doc = expect_answer(d.get("/movies?city=atlantis"), fake, "atlantis")
            expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in fake.city_ids("atlantis")],
                      "atlantis's movies")
            expect_eq(fake.count("/cinema/later/atlantis/"), 1, "listing requests")
            with open(conf, "w") as f:
                f.write("cities = known\n")
            mark = d.mark()
            d.signal(signal.SIGHUP)
            expect(d.wait_for_line("configuration reloaded", 10, start=mark), "no reload line")
            total = fake.total
            expect_error(d.get("/movies?city=atlantis"), 404, "unknown_city", "after the reload")
            expect_eq(fake.total, total, "upstream requests after cities = known")


@test
def city_known_by_its_id():
    """A city Douban gives no pinyin slug goes by its id (/cinema/later/118378/, 榆林): the
    API takes it, the table has it."""
    with scenario(setup=lambda fake: fake.set_city("118378", 2)) as (fake, d):
        expect_answer(d.get("/movies?city=118378"), fake, "118378")
        expect_eq(fake.count("/cinema/later/118378/"), 1, "listing requests")


@test
def listing_for_another_city_is_upstream_changed():
    """Douban answers a city it does not know with its default city's page: a listing whose
    #location names another city is 502 upstream_changed, not that city's movies."""
    with scenario(setup=lambda fake: fake.answer_as("beijing", "shanghai")) as (fake, d):
        doc = expect_error(d.get("/movies?city=beijing"), 502, "upstream_changed")
        expect("the upstream answered for city 'shanghai' instead of 'beijing'"
               in doc["error"]["message"], "message %r" % doc["error"]["message"])
        expect_eq(fake.count_matching(r"^/subject/"), 0, "movie pages of the wrong city fetched")
        expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
    # The same with a name outside the table, which only --cities any lets through.
    with scenario(flags=["--cities", "any"],
                  setup=lambda fake: fake.answer_as("xyz", "shanghai")) as (fake, d):
        doc = expect_error(d.get("/movies?city=xyz"), 502, "upstream_changed")
        expect("the upstream answered for city 'shanghai' instead of 'xyz'"
               in doc["error"]["message"], "message %r" % doc["error"]["message"])
        expect_eq(fake.count("/cinema/later/xyz/"), 1, "listing requests")


@test
def unknown_path():
    with scenario() as (fake, d):
        for path in ("/index.html", "/nope", "/movies/events/x", "/movie?city=beijing",
                     "/api/movies?city=beijing", "/healthz/extra", "/moviesx"):
            expect_error(d.get(path), 404, "not_found", path)
        expect_eq(fake.total, 0, "upstream requests")


@test
def method_not_allowed():
    with scenario() as (fake, d):
        for method in ("POST", "PUT", "DELETE"):
            for path in ("/movies?city=beijing", "/healthz"):
                r = d.request(method, path, body=b"x=1" if method != "DELETE" else None,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
                expect_error(r, 405, "method_not_allowed", "%s %s" % (method, path))
                allow = r.headers.get("allow", "")
                expect_eq([a.strip() for a in allow.split(",")], ["GET", "HEAD", "OPTIONS"],
                          "Allow header of %s %s" % (method, path))
        expect_eq(fake.total, 0, "upstream requests")


def _raw_head(port, path):
    data = raw_request(port, ("HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                              % path).encode())
    head, sep, rest = data.partition(b"\r\n\r\n")
    expect(sep, "HEAD %s: no end of headers in %r" % (path, data[:300]))
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


@test
def head_like_get():
    """HEAD answers the same status and headers as GET, without a body."""
    with scenario() as (fake, d):
        paths = ["/healthz", "/movies?city=shanghai", "/movies", "/movies?city=Beijing", "/nope",
                 "/movies?city=atlantis"]
        for path in paths:
            status, headers, rest = _raw_head(d.port, d.target(path))
            g = d.get(path)
            expect_eq(status, g.status, "HEAD %s status" % path)
            expect_eq(rest, b"", "HEAD %s body bytes" % path)
            for k in ("content-type", "content-length"):
                expect_eq(headers.get(k), g.headers.get(k), "HEAD %s %s" % (path, k))
        # The HEAD of the city scraped it (or the GET used the cache): never more than once.
        expect(fake.count("/cinema/later/shanghai/") in (1, 2), "listing requests")


@test
def access_log():
    """One access log line per request with method, path, status, bytes and ms."""
    with scenario() as (fake, d):
        probes = []
        for path, status in (("/healthz", 200), ("/nope-%s" % uuid.uuid4().hex[:8], 404),
                             ("/movies?city=Bad", 400), ("/movies?city=guangzhou", 200)):
            start = d.mark()
            r = d.get(path)
            expect_eq(r.status, status, path)
            probes.append((path, status, len(r.body), start))
        # A last request: once its line is out, every earlier line is out too.
        sync = "/nope-sync-%s" % uuid.uuid4().hex[:8]
        start_sync = d.mark()
        expect_eq(d.get(sync).status, 404, sync)
        found = d.wait_for_line_index(re.escape(sync), 5, start_sync)
        expect(found, "no access log line for GET %s" % sync)
        end = found[0]
        for path, status, nbytes, start in probes:
            base = path.split("?")[0]
            lines = [l for l in d.lines()[start:end]
                     if re.search(r"\bGET\b", l) and base in l and re.search(r"\b%d\b" % status, l)]
            expect_eq(len(lines), 1, "access log lines for GET %s (%d)" % (path, status))
            line = lines[0]
            expect(re.search(r"\b%d\b" % nbytes, line),
                   "access log line lacks the byte count %d: %r" % (nbytes, line))
            expect(re.search(r"\d(\.\d+)?\s*ms\b|\bms[=:]\s*\d", line),
                   "access log line lacks a duration in ms: %r" % line)


if __name__ == "__main__":
    run(deadline=120)
