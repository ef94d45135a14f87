#!/usr/bin/env python3
"""The calendar and the feeds of a city: GET /movies.ics, /movies.atom and /movies.rss,
rendered from the same answer as /movies. The calendar is read with python3-icalendar and
checked byte by byte (CRLF, lines of at most 75 octets, each whole UTF-8), the feeds with
python3-feedparser and ElementTree; ids stay the same across scrapes and restarts; a title
with , ; \\ <script> and & comes out escaped and intact (a line break in a title
reaches no answer: the scraper folds white space; the calendar's descriptions carry them); every representation
has its own ETag, revalidates to 304 and is gzip-compressed; errors are /movies' JSON ones.
Prints each representation's size for a 40-movie city."""

import datetime
import gzip
import time
import xml.etree.ElementTree as ET

import feedparser
import icalendar

from harness import (expect, expect_eq, expect_error, run, running, scenario, test, wait_until,
                     FAST)

ODD_TITLE = "逗号,分号;反斜杠\\换行\n第二行<script>alert(1)</script>&amp"
ATOM = "{http://www.w3.org/2005/Atom}"
PATHS = ("/movies.ics", "/movies.atom", "/movies.rss")
TYPES = {"/movies.ics": "text/calendar; charset=utf-8",
         "/movies.atom": "application/atom+xml; charset=utf-8",
         "/movies.rss": "application/rss+xml; charset=utf-8"}


def odd_city(fake, n=40):
    """beijing with n movies, its second one titled ODD_TITLE; returns that movie's id."""
    ids = fake.set_city("beijing", n)
    fake.set_title(ids[1], ODD_TITLE)
    return ids[1]


def get_ok(d, path):
    r = d.get(path)
    expect(r.status == 200, "GET %s: %d %r" % (path, r.status, r.body[:300]))
    return r


def check_ics_bytes(body):
    """CRLF line ends only, every line at most 75 octets and valid UTF-8 on its own."""
    expect(body.endswith(b"\r\n"), "the calendar does not end with CRLF")
    expect(b"\n" not in body.replace(b"\r\n", b""), "a bare LF in the calendar")
    expect(b"\r" not in body.replace(b"\r\n", b""), "a bare CR in the calendar")
    lines = body[:-2].split(b"\r\n")
    for line in lines:
        expect(len(line) <= 75, "a line of %d octets: %r" % (len(line), line))
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError("a fold split a UTF-8 sequence: %r" % line)
    return lines


def ics_events(body):
    cal = icalendar.Calendar.from_ical(body.decode("utf-8"))
    return cal, [c for c in cal.walk() if c.name == "VEVENT"]


def expect_calendar(r, doc):
    """r is the calendar of the /movies document doc; returns its events by UID."""
    expect_eq(r.headers.get("content-type"), TYPES["/movies.ics"], "Content-Type")
    check_ics_bytes(r.body)
    cal, events = ics_events(r.body)
    expect_eq(str(cal.get("X-WR-CALNAME")), "即将上映 · %s" % doc["city_name"], "X-WR-CALNAME")
    expect_eq(str(cal.get("VERSION")), "2.0", "VERSION")
    by_id = {m["id"]: m for m in doc["movies"]}
    days = [m for m in doc["movies"] if m["release_date_precision"] == "day"]
    expect_eq(len(events), len(days), "one VEVENT per movie with a release day")
    stamp = datetime.datetime.strptime(doc["fetched_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    out = {}
    for ev in events:
        uid = str(ev["UID"])
        mid = uid.split("-")[1]
        m = by_id[mid]
        expect_eq(uid, "douban-%s-%s@moviesd" % (mid, doc["city"]), "UID")
        start, end = ev.decoded("DTSTART"), ev.decoded("DTEND")
        expect(type(start) is datetime.date, "DTSTART is not a DATE: %r" % start)
        expect_eq(start.isoformat(), m["release_date_iso"], "DTSTART of %s" % mid)
        expect_eq(end - start, datetime.timedelta(days=1), "DTEND of %s" % mid)
        expect_eq(ev.decoded("DTSTAMP"), stamp, "DTSTAMP")
        expect_eq(str(ev["SUMMARY"]), m["title"], "SUMMARY of %s" % mid)
        expect_eq(str(ev["URL"]), m["url"], "URL of %s" % mid)
        desc = str(ev["DESCRIPTION"])
        expect(desc.split("\n")[-1] == "%d 人想看" % m["wish_count"],
               "the description's last line is not its wish count: %r" % desc)
        expect("%d 人想看" % m["wish_count"] in desc, "wish count not in %r" % desc)
        for g in m["genres"] + m["regions"] + m["directors"]:
            expect(g in desc, "%r not in the description %r" % (g, desc))
        out[uid] = ev
    return out


def expect_atom(r, doc, base=""):
    """r is the Atom feed of doc; returns its entries' ids."""
    expect_eq(r.headers.get("content-type"), TYPES["/movies.atom"], "Content-Type")
    root = ET.fromstring(r.body)   # well-formed, or this raises
    expect_eq(root.tag, ATOM + "feed", "root element")
    expect_eq(root.find(ATOM + "id").text, "tag:moviesd,2026:movies/%s" % doc["city"], "feed id")
    entries = root.findall(ATOM + "entry")
    expect_eq(len(entries), len(doc["movies"]), "one entry per movie")
    f = feedparser.parse(r.body)
    expect(not f.bozo, "feedparser: %r" % f.get("bozo_exception"))
    expect_eq(f.version, "atom10", "feed version")
    expect_eq(len(f.entries), len(doc["movies"]), "feedparser's entries")
    ids = []
    for e, fe, m in zip(entries, f.entries, doc["movies"]):
        eid = e.find(ATOM + "id").text
        expect_eq(eid, "tag:moviesd,2026:movies/%s/%s" % (doc["city"], m["id"]), "entry id")
        expect_eq(fe.id, eid, "feedparser's id")
        expect_eq(e.find(ATOM + "title").text, m["title"], "entry title")
        expect_eq(e.find(ATOM + "updated").text, doc["fetched_at"], "entry updated")
        links = {l.get("rel"): l for l in e.findall(ATOM + "link")}
        expect_eq(links["alternate"].get("href"), m["url"], "entry link")
        expect_eq(fe.link, m["url"], "feedparser's link")
        expect_eq(links["enclosure"].get("href"), "%s/posters/%s" % (base, m["id"]), "poster link")
        summary = e.find(ATOM + "summary").text
        expect("%d 人想看" % m["wish_count"] in summary, "wish count not in %r" % summary)
        ids.append(eid)
    return ids


def expect_rss(r, doc, base=""):
    """r is the RSS feed of doc; returns its items' guids."""
    expect_eq(r.headers.get("content-type"), TYPES["/movies.rss"], "Content-Type")
    root = ET.fromstring(r.body)
    expect_eq(root.tag, "rss", "root element")
    items = root.find("channel").findall("item")
    expect_eq(len(items), len(doc["movies"]), "one item per movie")
    f = feedparser.parse(r.body)
    expect(not f.bozo, "feedparser: %r" % f.get("bozo_exception"))
    expect_eq(f.version, "rss20", "feed version")
    guids = []
    for item, fe, m in zip(items, f.entries, doc["movies"]):
        expect_eq(item.find("title").text, m["title"], "item title")
        expect_eq(item.find("link").text, m["url"], "item link")
        guid = item.find("guid").text
        expect_eq(guid, "tag:moviesd,2026:movies/%s/%s" % (doc["city"], m["id"]), "guid")
        expect_eq(fe.id, guid, "feedparser's guid")
        enc = item.find("enclosure")
        if base:
            expect_eq(enc.get("url"), "%s/posters/%s" % (base, m["id"]), "enclosure")
            expect_eq(fe.enclosures[0].href, "%s/posters/%s" % (base, m["id"]), "feedparser's enclosure")
        else:
            expect(enc is None, "an enclosure without public_url: RSS wants absolute URLs")
        expect(("/posters/%s" % m["id"]) in item.find("description").text, "no poster in the description")
        guids.append(guid)
    return guids


@test
def calendar_and_feeds_of_a_city():
    """A 40-movie city in all four forms: each parses, has one event or entry per movie, the
    odd title intact, and the sizes are printed."""
    with scenario() as (fake, d):
        odd = odd_city(fake)
        doc = get_ok(d, "/movies?city=beijing").json()
        expect(doc["complete"], "the answer is not complete")
        title = [m for m in doc["movies"] if m["id"] == str(odd)][0]["title"]
        for ch in (",", ";", "\\", "<script>", "&"):
            expect(ch in title, "the JSON title %r lost %r" % (title, ch))
        ics = get_ok(d, "/movies.ics?city=beijing")
        events = expect_calendar(ics, doc)
        expect("douban-%d-beijing@moviesd" % odd in events, "no event for the odd title")
        raw = ics.body.replace(b"\r\n ", b"").decode("utf-8")
        expect("SUMMARY:逗号\\,分号\\;反斜杠\\\\换行 第二行<script>alert(1)</script>&amp\r\n" in raw,
               "the odd title is not escaped as RFC 5545 says")
        atom = get_ok(d, "/movies.atom?city=beijing")
        expect_atom(atom, doc)
        rss = get_ok(d, "/movies.rss?city=beijing")
        expect_rss(rss, doc)
        for r in (atom, rss):
            expect(b"<script>" not in r.body, "a raw <script> in a feed")
        plain = get_ok(d, "/movies?city=beijing")
        sizes = []
        for name, path in (("JSON", "/movies"), ("ICS", "/movies.ics"), ("Atom", "/movies.atom"),
                           ("RSS", "/movies.rss")):
            p = get_ok(d, path + "?city=beijing").body
            z = d.get(path + "?city=beijing", headers={"Accept-Encoding": "gzip"})
            expect_eq(z.headers.get("content-encoding"), "gzip", path + " Content-Encoding")
            expect_eq(gzip.decompress(z.body), p, path + " gzip body")
            sizes.append("%s %d bytes (gzip %d)" % (name, len(p), len(z.body)))
        expect_eq(len(plain.json()["movies"]), 40, "movies")
        print("    sizes for a 40-movie city: " + ", ".join(sizes))


@test
def month_only_dates_have_no_event():
    """A movie whose release day is not announced (the listing's month alone, no mainland
    day on its page) is in the feeds but not in the calendar."""
    with scenario() as (fake, d):
        fake.set_city("shanghai", 12)
        fake.set_text_quirks("shanghai", month_only=True)
        doc = get_ok(d, "/movies?city=shanghai").json()
        months = [m for m in doc["movies"] if m["release_date_precision"] == "month"]
        expect(months, "no month-only movie: the quirk did not apply")
        events = expect_calendar(get_ok(d, "/movies.ics?city=shanghai"), doc)
        for m in months:
            expect("douban-%s-shanghai@moviesd" % m["id"] not in events,
                   "an event for %s, whose day is unknown" % m["id"])
        expect_atom(get_ok(d, "/movies.atom?city=shanghai"), doc)


@test
def ids_stable_across_scrapes_and_public_url():
    """Two scrapes (a restart between them: nothing cached) give the same UIDs and entry
    ids; with public_url the RSS items get absolute poster enclosures, and no id changes."""
    with scenario() as (fake, d):
        odd_city(fake, 12)
        doc1 = get_ok(d, "/movies?city=beijing").json()
        uids1 = set(expect_calendar(get_ok(d, "/movies.ics?city=beijing"), doc1))
        atom1 = expect_atom(get_ok(d, "/movies.atom?city=beijing"), doc1)
        rss1 = expect_rss(get_ok(d, "/movies.rss?city=beijing"), doc1)
        base = "https://movies.example.org:8443"
        with running(fake, ["--public-url", base + "/"]) as d2:
            before = fake.count("/cinema/later/beijing/")
            doc2 = get_ok(d2, "/movies?city=beijing").json()
            expect_eq(fake.count("/cinema/later/beijing/"), before + 1, "a second scrape")
            uids2 = set(expect_calendar(get_ok(d2, "/movies.ics?city=beijing"), doc2))
            expect_eq(uids2, uids1, "UIDs across scrapes")
            expect_eq(expect_atom(get_ok(d2, "/movies.atom?city=beijing"), doc2, base), atom1,
                      "Atom ids")
            expect_eq(expect_rss(get_ok(d2, "/movies.rss?city=beijing"), doc2, base), rss1, "RSS guids")
            atom = get_ok(d2, "/movies.atom?city=beijing").body
            expect(('href="%s/movies.atom?city=beijing"' % base).encode() in atom, "no absolute self link")
            expect(('href="%s/posters/' % base).encode() in atom, "no absolute poster link")


@test
def etags_304_head_and_errors():
    """Each representation has its own ETag (and its gzip one), a matching If-None-Match
    gets 304, HEAD has the headers; bad requests get /movies' JSON errors."""
    with scenario() as (fake, d):
        fake.set_city("beijing", 12)
        tags = {}
        for path in ("/movies",) + PATHS:
            r = get_ok(d, path + "?city=beijing")
            etag = r.headers.get("etag")
            expect(etag and etag.startswith('"'), "%s: ETag %r" % (path, etag))
            expect(r.headers.get("cache-control", "").startswith("public, max-age="),
                   "%s: Cache-Control %r" % (path, r.headers.get("cache-control")))
            expect_eq(r.headers.get("vary"), "Accept-Encoding", path + " Vary")
            tags[path] = etag
            nm = d.get(path + "?city=beijing", headers={"If-None-Match": etag})
            expect_eq(nm.status, 304, path + " with If-None-Match")
            expect_eq(nm.body, b"", path + " 304 body")
            z = d.get(path + "?city=beijing", headers={"Accept-Encoding": "gzip"})
            gz = z.headers.get("etag")
            expect_eq(gz, etag[:-1] + '-gz"', path + " gzip ETag")
            nm = d.get(path + "?city=beijing", headers={"Accept-Encoding": "gzip", "If-None-Match": gz})
            expect_eq(nm.status, 304, path + " gzip with If-None-Match")
            other = d.get(path + "?city=beijing", headers={"If-None-Match": '"0000000000000000"'})
            expect_eq(other.status, 200, path + " with another ETag")
            h = d.head(path + "?city=beijing")
            expect_eq(h.status, 200, path + " HEAD")
            expect_eq(h.body, b"", path + " HEAD body")
            expect_eq(h.headers.get("etag"), etag, path + " HEAD ETag")
        expect_eq(len(set(tags.values())), 4, "one ETag per representation")
        for path in PATHS:
            expect_error(d.get(path), 400, "missing_city", path)
            expect_error(d.get(path + "?city=Bei-jing"), 400, "invalid_city", path)
            expect_error(d.get(path + "?city=nowhere"), 404, "unknown_city", path)
            expect_error(d.get(path + "?city=beijing&wait=soon"), 400, "invalid_wait", path)
            r = d.request("POST", path + "?city=beijing")
            expect_error(r, 405, "method_not_allowed", path)
            expect_eq(r.headers.get("allow"), "GET, HEAD, OPTIONS", path + " Allow")
        fake.add_fault(r"^/cinema/later/shanghai/$", 500)
        for path in PATHS:
            expect_error(d.get(path + "?city=shanghai"), 502, "upstream_error", path)


@test
def calendar_waits_for_details_within_the_deadline():
    """A cold city's calendar waits for the movie pages, as wait=details does (subscribers
    poll seldom and keep what they get), and is complete; when the pages take longer than
    request_deadline it comes at the deadline with what is in, not as an error."""
    slow = ["--min-request-interval-ms", "150", "--max-requests-per-minute", "0",
            "--max-host-connections", "1"]
    with scenario(flags=slow, fast=False) as (fake, d):
        d.complete_answers = False
        fake.set_city("beijing", 8)
        r = get_ok(d, "/movies.ics?city=beijing")
        doc = d.get_json("/movies?city=beijing")[1]
        expect(doc["complete"], "the calendar was answered before the details were in")
        expect_eq(fake.count_matching(r"^/subject/"), 8, "movie pages fetched")
        expect_calendar(r, doc)
    with scenario(flags=slow + ["--request-deadline", "1"], fast=False) as (fake, d):
        d.complete_answers = False
        fake.set_city("beijing", 12)   # 12 pages 150 ms apart: past the 1 s deadline
        t0 = time.monotonic()
        r = get_ok(d, "/movies.atom?city=beijing")
        took = time.monotonic() - t0
        expect(0.9 <= took < 3.0, "answered after %.2fs, not at the 1 s deadline" % took)
        f = feedparser.parse(r.body)
        expect_eq(len(f.entries), 12, "entries of the partial answer")
        max_age = int(r.headers["cache-control"].rsplit("=", 1)[1])
        expect(max_age <= 10, "a partial feed kept for %d s" % max_age)
        wait_until(lambda: d.get_json("/movies?city=beijing")[1]["complete"], 20, "the details")
        later = get_ok(d, "/movies.atom?city=beijing")
        expect(later.headers["etag"] != r.headers["etag"], "the complete feed has the partial one's ETag")


if __name__ == "__main__":
    run(deadline=240)
