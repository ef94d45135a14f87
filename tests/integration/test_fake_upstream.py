#!/usr/bin/env python3
"""Self-test of tests/fake_upstream.py with urllib/http.client (no daemon needed): the pages
have the documented shape, faults and accounting behave, stop() never blocks."""

import http.client
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from html.parser import HTMLParser

from harness import (OFFHOST_IDS, TESTS, FakeDouban, call_in_background, city_ids, expect,
                     expect_eq, expected_listing_only, expected_movie, movie_spec, run, test,
                     track_child, untrack_child, wait_until)


def fetch(url, headers=None, timeout=10):
    """(status, headers, body) without following redirects or raising on 4xx/5xx."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


import urllib.parse  # noqa: E402


@test
def listing_shape():
    with FakeDouban() as fake:
        status, h, body = fetch(fake.base_url + "/cinema/later/beijing/")
        expect_eq(status, 200, "status")
        expect_eq(h.get("set-cookie"), "bid=abc123; Path=/", "Set-Cookie")
        expect(h.get("content-type", "").startswith("text/html"), "content type")
        text = body.decode("utf-8")
        expect('<div id="showing-soon" class="tab-bd">' in text, "#showing-soon")
        items = re.findall(r'<div class="item mod (odd)?">', text)
        expect_eq(len(items), 12, "items")
        expect_eq(text.count('<div class="item mod ">'), 6, "items with the trailing space")
        expect_eq(text.count('<div class="item mod odd">'), 6, "odd items")
        expect(re.search(r'</li>\s*<a href="[^"]+" class="trailer_icon">预告片</a>\s*</ul>', text),
               "trailer_icon directly inside <ul>")
        expect(re.search(r'<h3>\s*<a href="[^"]+" class="">\n\s+\S+\n\s+</a>', text),
               "title with surrounding newlines")
        expect(re.search(r'<li class="dt">\d{2}月\d{2}日</li>', text), "date row")
        expect(re.search(r'<span class="">\d{1,3}(,\d{3})+人想看</span>', text), "wish count with a comma")
        ids = [int(x) for x in re.findall(r'class="thumb" href="https://movie.douban.com/subject/(\d+)/"', text)]
        expect_eq(ids, city_ids("beijing", 12), "listed ids")
        for mid in ids:
            s = movie_spec(mid)
            e = expected_movie(mid)
            expect(e["release_date"] in text and s["wish_text"] in text, "rows of %d" % mid)


@test
def cities_overlap_and_unknown():
    with FakeDouban() as fake:
        a, b = set(fake.city_ids("beijing")), set(fake.city_ids("shanghai"))
        expect_eq(len(a & b), 8, "shared movies between neighbouring cities")
        expect_eq(fetch(fake.base_url + "/cinema/later/atlantis/")[0], 404, "unknown city")
        st, h, _ = fetch(fake.base_url + "/cinema/later/")
        expect_eq(st, 302, "/cinema/later/")
        ids = fake.set_city("atlantis", [1, 2, 3])
        expect_eq(ids, [1, 2, 3], "explicit ids")
        expect_eq(fetch(fake.base_url + "/cinema/later/atlantis/")[0], 200, "configured city")
        fake.remove_city("atlantis")
        expect_eq(fetch(fake.base_url + "/cinema/later/atlantis/")[0], 404, "removed city")
        fake.set_city("beijing", 40)
        body = fetch(fake.base_url + "/cinema/later/beijing/")[2].decode()
        expect_eq(body.count('class="thumb"'), 40, "40-movie city")


@test
def listing_location_and_answer_as():
    """A listing names its city in #location, like Douban's; answer_as gives a city another
    city's page (Douban's answer for a city it does not know), whether it is served or not."""
    with FakeDouban() as fake:
        body = fetch(fake.base_url + "/cinema/later/beijing/")[2].decode()
        expect('<div id="location" data-uid="beijing" data-id="108288">' in body, "#location")
        fake.set_city("118378", 2)
        body = fetch(fake.base_url + "/cinema/later/118378/")[2].decode()
        expect('<div id="location" data-uid="118378" data-id="118378">' in body,
               "#location of a city known by its id")
        listed = r'class="thumb" href="https://movie.douban.com/subject/(\d+)/"'
        for city in ("beijing", "xyz"):
            fake.answer_as(city, "shanghai")
            st, _, body = fetch(fake.base_url + "/cinema/later/%s/" % city)
            expect_eq(st, 200, "%s answered as shanghai: status" % city)
            body = body.decode()
            expect('<div id="location" data-uid="shanghai" data-id="108296">' in body,
                   "%s answered as shanghai: #location" % city)
            expect_eq([int(i) for i in re.findall(listed, body)], fake.city_ids("shanghai"),
                      "%s answered as shanghai: movies" % city)
        fake.answer_as("beijing", None)
        body = fetch(fake.base_url + "/cinema/later/beijing/")[2].decode()
        expect('data-uid="beijing"' in body, "beijing answered as itself again")
        expect_eq(fake.count("/cinema/later/xyz/"), 1, "requests counted by the path asked")


@test
def offhost_links_listed():
    with FakeDouban() as fake:
        fake.set_city("beijing", 4, offhost=True)
        body = fetch(fake.base_url + "/cinema/later/beijing/")[2].decode()
        soon = body[body.index('id="showing-soon"'):body.index('class="aside"')]
        for host in ("https://evil.example/subject/", "http://other.douban.com/subject/",
                     "https://movie.douban.com.evil.example/subject/"):
            expect(host in soon, "%s in #showing-soon" % host)
        expect_eq(soon.count('class="thumb"'), 4 + len(OFFHOST_IDS), "items incl. off-host")


@test
def subject_shape():
    with FakeDouban() as fake:
        for mid in (36000000, 36000001, 36000004, 36000011, 36000013):
            st, h, body = fetch(fake.base_url + "/subject/%d/" % mid)
            expect_eq(st, 200, "status")
            t = body.decode()
            e = expected_movie(mid)
            tmpl = t.index('<img src="{{= img}}"')
            pic = t.index('<div id="mainpic"')
            expect(tmpl < pic, "template img before #mainpic")
            expect('rel="v:image"' in t and e["poster"] in t, "poster")
            expect('property="v:itemreviewed"' in t and '<span class="year">(%d)</span>' % e["year"] in t,
                   "title and year")
            expect(('content="%s(中国大陆)"' % e["release_date_iso"]) in t, "release date")
            expect(t.count('rel="v:directedBy"') == len(e["directors"]), "directors")
            expect(t.count('rel="v:starring"') == len(e["actors"]), "actors")
            expect(t.count('property="v:genre"') == len(e["genres"]), "genres")
            expect(('<span class="pl">IMDb:</span> %s' % e["imdb_id"] in t) == (e["imdb_id"] is not None), "imdb")
            expect(('property="v:runtime" content="%s"' % e["runtime_minutes"] in t)
                   == (e["runtime_minutes"] is not None), "runtime")
            expect('<span class="pl">制片国家/地区:</span> %s<br/>' % " / ".join(e["regions"]) in t, "regions")
            expect('<span class="pl">语言:</span> %s<br/>' % " / ".join(e["languages"]) in t, "languages")
            if e["rating"] is None:
                expect('property="v:average"></strong>' in t and "v:votes" not in t, "unrated")
            else:
                expect('property="v:average">%.1f</strong>' % e["rating"] in t, "rating")
            expect(('class="all hidden"' in t) != movie_spec(mid)["short_only"], "summary form")


class _RefParser(HTMLParser):
    """A tiny reference scraper (html.parser) written from what Douban's pages look like,
    used to check that expected_movie() is what the fake's pages really say."""

    VOID = {"img", "br", "meta", "link", "input", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []          # (tag, attrs dict)
        self.capture = []        # [(key, buffer list)]
        self.out = {"items": [], "directors": [], "actors": [], "genres": [], "dates": [],
                    "labels": {}, "paragraphs": []}
        self.label = None
        self.in_script = False

    def _in(self, pred):
        return any(pred(t, a) for t, a in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "script":
            self.in_script = True
        if self.label and tag == "br":
            self.out["labels"][self.label] = "".join(self.labelbuf).strip()
            self.label = None
        in_soon = self._in(lambda t, x: x.get("id") == "showing-soon")
        if in_soon and tag == "div" and {"item", "mod"} <= set(cls):
            self.out["items"].append({"rows": []})
        item = self.out["items"][-1] if self.out["items"] and in_soon else None
        if item is not None and tag == "a" and "thumb" in cls:
            item["href"] = a.get("href")
        if item is not None and tag == "img" and self._in(lambda t, x: "thumb" in (x.get("class") or "").split()):
            item["thumbnail"] = a.get("src")
        if item is not None and tag == "a" and self._in(lambda t, x: t == "h3"):
            self.capture.append(("title", []))
        if item is not None and tag == "li" and "dt" in cls:
            self.capture.append(("row", []))
        if tag == "span" and a.get("property") == "v:itemreviewed":
            self.capture.append(("itemreviewed", []))
        if tag == "span" and "year" in cls:
            self.capture.append(("year", []))
        if tag == "img" and a.get("rel") == "v:image" and self._in(lambda t, x: x.get("id") == "mainpic"):
            self.out["poster"], self.out["alt"] = a.get("src"), a.get("alt")
        if tag == "a" and a.get("rel") in ("v:directedBy", "v:starring"):
            self.capture.append(({"v:directedBy": "directors", "v:starring": "actors"}[a["rel"]], []))
        if tag == "span" and a.get("property") == "v:genre":
            self.capture.append(("genres", []))
        if tag == "span" and a.get("property") == "v:initialReleaseDate":
            self.out["dates"].append(a.get("content"))
        if tag == "span" and a.get("property") == "v:runtime":
            self.out["runtime"] = a.get("content")
        if tag == "strong" and a.get("property") == "v:average":
            self.capture.append(("rating", []))
        if tag == "span" and a.get("property") == "v:votes":
            self.capture.append(("votes", []))
        if tag == "span" and "pl" in cls and self._in(lambda t, x: x.get("id") == "info"):
            self.capture.append(("label", []))
        if tag == "span" and {"all", "hidden"} <= set(cls):
            self.capture.append(("summary", []))
        if tag == "span" and a.get("property") == "v:summary":
            self.capture.append(("vsummary", []))
        if tag == "br" and self.capture and self.capture[-1][0] in ("summary", "vsummary"):
            self.capture[-1][1].append("\n")
        if tag not in self.VOID:
            self.stack.append((tag, a))
        else:
            return

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False
        if tag in self.VOID:
            return
        while self.stack:
            t, a = self.stack.pop()
            self._close(t, a)
            if t == tag:
                break

    def _close(self, tag, a):
        cls = (a.get("class") or "").split()
        if not self.capture:
            return
        key, buf = self.capture[-1]
        closes = {"title": "a", "directors": "a", "actors": "a", "row": "li", "itemreviewed": "span",
                  "year": "span", "genres": "span", "rating": "strong", "votes": "span",
                  "label": "span", "summary": "span", "vsummary": "span"}
        if closes.get(key) != tag:
            return
        if key in ("summary", "vsummary") and not ({"all", "hidden"} <= set(cls) or
                                                   a.get("property") == "v:summary"):
            return
        self.capture.pop()
        text = "".join(buf)
        if key == "title":
            self.out["items"][-1]["title"] = text.strip()
        elif key == "row":
            self.out["items"][-1]["rows"].append(text.strip())
        elif key in ("directors", "actors", "genres"):
            self.out[key].append(text.strip())
        elif key == "label":
            self.label = text.strip().rstrip(":")
            self.labelbuf = []
        elif key in ("summary", "vsummary"):
            if key == "summary" or not self.out["paragraphs"]:
                self.out["paragraphs"] = [p.strip().strip("\u3000").strip() for p in text.split("\n")
                                          if p.strip().strip("\u3000").strip()]
        else:
            self.out[key] = text.strip()

    def handle_data(self, data):
        if self.in_script:
            return
        for _, buf in self.capture:
            buf.append(data)
        if self.label and not self.capture:
            self.labelbuf.append(data)


def _reference_listing(html):
    p = _RefParser()
    p.feed(html)
    out = []
    for it in p.out["items"]:
        m = re.fullmatch(r"https://movie\.douban\.com/subject/(\d+)/", it.get("href", ""))
        if not m:
            continue
        rec = {"id": m.group(1), "title": it["title"], "thumbnail": it["thumbnail"],
               "release_date": None, "genres": [], "regions": [], "wish_count": None}
        rest = []
        for row in it["rows"]:
            if re.fullmatch(r"\d{2}月\d{2}日", row):
                rec["release_date"] = row
            elif re.search(r"([\d,]+)\s*人?\s*想看", row):
                rec["wish_count"] = int(re.search(r"([\d,]+)", row).group(1).replace(",", ""))
            else:
                rest.append(row.split(" / "))
        if rest:
            rec["genres"] = rest[0]
        if len(rest) > 1:
            rec["regions"] = rest[1]
        out.append(rec)
    return out


def _reference_detail(html):
    p = _RefParser()
    p.feed(html)
    o = p.out
    cn = [d for d in o["dates"] if d.endswith("(中国大陆)")]
    return {
        "original_title": o.get("alt"), "poster": o.get("poster"),
        "year": int(o["year"].strip("()")), "directors": o["directors"], "actors": o["actors"],
        "genres": o["genres"], "release_date_iso": cn[0][:10] if cn else None,
        "runtime_minutes": int(o["runtime"]) if o.get("runtime") else None,
        "rating": float(o["rating"]) if o.get("rating") else None,
        "votes": int(o["votes"]) if o.get("votes") else None,
        "imdb_id": o["labels"].get("IMDb"),
        "regions": o["labels"]["制片国家/地区"].split(" / "),
        "languages": o["labels"]["语言"].split(" / "),
        "summary": "\n".join(o["paragraphs"]),
    }


@test
def reference_extraction_matches_expected():
    """An independent html.parser scrape of the fake's pages gives expected_movie()."""
    with FakeDouban() as fake:
        fake.set_city("beijing", 40)
        listing = _reference_listing(fetch(fake.base_url + "/cinema/later/beijing/")[2].decode())
        expect_eq([int(r["id"]) for r in listing], fake.city_ids("beijing"), "ids")
        for r in listing:
            mid = int(r["id"])
            e = expected_movie(mid)
            lo = expected_listing_only(mid)
            for k in ("title", "thumbnail", "release_date", "genres", "regions", "wish_count"):
                expect_eq(r[k], lo[k], "listing %s of %d" % (k, mid))
            det = _reference_detail(fetch(fake.base_url + "/subject/%d/" % mid)[2].decode())
            for k, v in det.items():
                expect_eq(v, e[k], "detail %s of %d" % (k, mid))


@test
def text_quirks():
    """set_text_quirks: the marks are insertions only (taken out, the page is the plain one),
    in the city's listing and its movies' pages alone; month_only cuts every date to its month."""
    from fake_upstream import MARKS

    def get(fake, path):
        return fetch(fake.base_url + path)[2].decode()

    def unmarked(text):
        for m in MARKS:
            text = text.replace(m, "")
        return text

    with FakeDouban() as fake:
        ids = fake.city_ids("beijing")
        paths = ["/cinema/later/beijing/"] + ["/subject/%d/" % i for i in ids[:3]]
        plain = [get(fake, p) for p in paths]
        fake.set_text_quirks("beijing", invisible_marks=True)
        for p, before in zip(paths, plain):
            page = get(fake, p)
            expect(sum(page.count(m) for m in MARKS) > 20, "marks in " + p)
            expect(all(m in page for m in MARKS), "every mark in " + p)
            expect_eq(unmarked(page), before, "%s without its marks" % p)
        for p in ("/cinema/later/chengdu/", "/subject/%d/" % fake.city_ids("chengdu")[-1]):
            expect(not any(m in get(fake, p) for m in MARKS), "no marks in " + p)

        fake.set_text_quirks("beijing", month_only=True)
        listing = get(fake, paths[0])
        expect(not any(m in listing for m in MARKS), "marks off again")
        expect_eq(len(re.findall(r'<li class="dt">\d{2}月</li>', listing)), len(ids), "month rows")
        expect(not re.search(r"\d{2}月\d{2}日", listing), "no day left in the listing")
        for i in ids[:3]:
            e = expected_movie(i)
            expect('<li class="dt">%s</li>' % e["release_date"][:3] in listing, "month of %d" % i)
            page = get(fake, "/subject/%d/" % i)
            expect('content="%s(中国大陆)"' % e["release_date_iso"][:7] in page, "page month of %d" % i)
            expect(not re.search(r"\d{4}-\d{2}-\d{2}\(", page), "no release day left on %d" % i)
        fake.set_text_quirks("beijing")
        expect_eq(get(fake, paths[0]), plain[0], "quirks off")


@test
def faults_status_and_once():
    with FakeDouban() as fake:
        url = fake.base_url + "/cinema/later/beijing/"
        f = fake.add_fault(r"^/cinema/later/beijing/$", 503, times=1, retry_after=30)
        st, h, _ = fetch(url)
        expect_eq((st, h.get("retry-after")), (503, "30"), "503 once")
        expect_eq(fetch(url)[0], 200, "after the once fault")
        expect_eq(f.hits, 1, "hits")
        for code in (404, 500, 403, 418, 429):
            fake.clear_faults()
            fake.add_fault(r"beijing", code)
            expect_eq(fetch(url)[0], code, "status %d" % code)
            expect_eq(fetch(url)[0], code, "status %d again (persistent)" % code)
        fake.clear_faults()
        fake.add_fault(r"^/subject/", "redirect")
        st, h, _ = fetch(fake.base_url + "/subject/1/")
        expect_eq(st, 302, "redirect")
        expect(h.get("location", "").startswith("https://sec.douban.com/"), "Location %r" % h.get("location"))
        expect_eq(fetch(url)[0], 200, "listing unaffected by a subject fault")
        try:
            fake.add_fault("x", "nonsense")
            raise AssertionError("unknown fault kind accepted")
        except ValueError:
            pass


@test
def faults_pages():
    with FakeDouban() as fake:
        url = fake.base_url + "/cinema/later/beijing/"
        fake.add_fault("beijing", "block_page", times=1)
        fake.add_fault("beijing", "login_page", times=1)
        fake.add_fault("beijing", "no_anchor", times=1)
        fake.add_fault("beijing", "empty_listing", times=1)
        fake.add_fault("beijing", "garbage", times=1)
        b = fetch(url)[2].decode()
        expect("有异常请求从你的 IP 发出" in b, "block page")
        expect("登录跳转页" in fetch(url)[2].decode(), "login page")
        b = fetch(url)[2].decode()
        expect("showing-soon" not in b and 'class="thumb"' in b, "no anchor, items still there")
        b = fetch(url)[2].decode()
        expect(re.search(r'<div id="showing-soon" class="tab-bd">\s*</div>', b), "empty listing")
        g = fetch(url)[2]
        try:
            g.decode("utf-8")
            raise AssertionError("garbage body is valid UTF-8")
        except UnicodeDecodeError:
            pass
        expect_eq(fake.count("/cinema/later/beijing/"), 5, "count")


@test
def faults_bodies():
    with FakeDouban() as fake:
        url = fake.base_url + "/cinema/later/beijing/"
        fake.add_fault("beijing", "truncated", times=1)
        try:
            fetch(url)
            raise AssertionError("truncated body read completely")
        except http.client.IncompleteRead:
            pass
        fake.add_fault("beijing", "chunked_big", times=1, size=3 << 20)
        st, h, body = fetch(url)
        expect_eq(h.get("transfer-encoding"), "chunked", "chunked")
        expect("content-length" not in h, "no Content-Length")
        expect(len(body) >= 3 << 20, "chunked body size %d" % len(body))
        fake.add_fault("beijing", "gzip_bomb", times=1, size=16 << 20)
        st, h, body = fetch(url, {"Accept-Encoding": "gzip"})
        expect_eq(h.get("content-encoding"), "gzip", "Content-Encoding")
        expect(len(body) < 64 << 10, "bomb on the wire: %d bytes" % len(body))
        d = zlib.decompressobj(31)
        out = d.decompress(body, 32 << 20)
        expect_eq(len(out), 16 << 20, "decoded size")
        expect_eq(out.count(b"\0"), len(out), "zeros")
        fake.add_fault("beijing", "gzip_bomb", times=1, size=1 << 20, require_accept=True)
        st, h, body = fetch(url)
        expect("content-encoding" not in h and b"showing-soon" in body, "require_accept without gzip")
        fake.add_fault("beijing", "deep_nesting", times=1, depth=100000)
        body = fetch(url)[2].decode()
        expect(body.count("<div>") == 100000 and 'id="showing-soon"' in body, "deep nesting")


@test
def latency_hang_and_stop():
    fake = FakeDouban().start()
    try:
        fake.set_latency(100)
        t0 = time.monotonic()
        fetch(fake.base_url + "/subject/1/")
        expect(time.monotonic() - t0 >= 0.1, "latency")
        fake.set_latency(0)
        fake.add_fault("^/subject/2/$", "hang")
        fake.add_fault("^/subject/3/$", "delay", ms=60000)
        clients = [call_in_background(fetch, fake.base_url + p, timeout=30)
                   for p in ("/subject/2/", "/subject/3/")]
        wait_until(lambda: fake.in_flight == 2, 5, "two requests in flight")
    finally:
        t0 = time.monotonic()
        fake.stop()
        dt = time.monotonic() - t0
    expect(dt < 3, "stop() took %.1fs with hanging requests" % dt)
    for t, _ in clients:
        t.join(5)
        expect(not t.is_alive(), "client still blocked after stop()")
    errors = [result["e"] for _, result in clients if "e" in result]
    expect_eq(len(errors), 2, "hanging clients saw the connection close")


@test
def accounting():
    with FakeDouban() as fake:
        fake.set_latency(200)
        paths = ["/subject/%d/" % i for i in range(6)]
        clients = [call_in_background(fetch, fake.base_url + p,
                                      headers={"User-Agent": "UA-%s" % p,
                                               "Referer": "https://movie.douban.com/",
                                               "Cookie": "bid=abc123",
                                               "Accept-Language": "zh-CN,zh;q=0.9"})
                   for p in paths]
        for t, _ in clients:
            t.join(10)
        expect_eq(fake.peak_in_flight, 6, "peak in flight")
        # The fake notes a request's end just after its last byte leaves: a client may read
        # the answer first.
        wait_until(lambda: fake.in_flight == 0 and all(e is not None for _, _, e in fake.timeline()),
                   5, "every request noted as ended")
        expect_eq(fake.total, 6, "total")
        expect_eq(fake.counts(), {p: 1 for p in paths}, "counts")
        tl = fake.timeline()
        expect(all(e is not None and e - s >= 0.2 for _, s, e in tl), "timeline %r" % tl)
        seen = dict(fake.headers_seen(r"^/subject/"))
        expect_eq(seen["/subject/3/"]["user-agent"], "UA-/subject/3/", "User-Agent recorded")
        expect_eq(seen["/subject/3/"]["cookie"], "bid=abc123", "Cookie recorded")
        fake.reset_stats()
        expect_eq((fake.total, fake.peak_in_flight, fake.counts(), fake.timeline()), (0, 0, {}, []),
                  "after reset_stats")


@test
def script_mode():
    script = os.path.join(TESTS, "fake_upstream.py")
    p = subprocess.Popen([sys.executable, script, "--port", "0", "--movies", "5", "--any-city"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    track_child(p)
    try:
        line = p.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        expect(m, "first line %r" % line)
        base = "http://127.0.0.1:%s" % m.group(1)
        body = fetch(base + "/cinema/later/beijing/")[2].decode()
        expect_eq(body.count('class="thumb"'), 5, "movies per city")
        body = fetch(base + "/cinema/later/somewhere/")[2].decode()
        expect_eq(body.count('class="thumb"'), 5, "--any-city")
        p.terminate()
        expect_eq(p.wait(10), 0, "exit status on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        untrack_child(p)


# ----------------------------------------------------------------------------------------
# The limiter: Douban's site-wide block after too many requests in a minute
# ----------------------------------------------------------------------------------------

SEC = "https://sec.douban.com/"


def _blocked(status, headers):
    """True for the limiter's answer: 302 to sec.douban.com."""
    return status == 302 and headers.get("location", "").startswith(SEC)


@test
def limiter_trips_on_request_n_plus_one():
    """set_block_after(5): five requests in a minute (any paths, a 404 among them) are
    served; the sixth trips the limiter and is answered 302 to sec.douban.com, and so is
    everything after it, listings and movie pages alike; the trip is recorded once, at the
    sixth request's start, with its path."""
    with FakeDouban() as fake:
        fake.set_block_after(5)
        paths = ["/cinema/later/beijing/", "/subject/1/", "/nonexistent", "/subject/2/",
                 "/cinema/later/shanghai/"]
        for p in paths:
            st, h, _ = fetch(fake.base_url + p)
            expect(not _blocked(st, h), "request %s (of 5 allowed) answered %d %r"
                   % (p, st, h.get("location")))
        expect_eq(fake.limiter_trips(), [], "trips after 5 of 5 allowed requests")
        expect(not fake.blocked_now(), "blocked after 5 of 5 allowed requests")
        st, h, _ = fetch(fake.base_url + "/subject/3/")
        expect(_blocked(st, h), "the sixth request: %d %r, not 302 to %s"
               % (st, h.get("location"), SEC))
        sixth_start = fake.timeline()[5][1]
        expect_eq(fake.limiter_trips(), [(sixth_start, "/subject/3/")], "trips")
        expect(fake.blocked_now(), "not blocked after the sixth request")
        fake.add_fault("^/cinema/later/beijing/$", 500, times=1)
        for p in ("/cinema/later/beijing/", "/subject/1/", "/cinema/later/"):
            st, h, _ = fetch(fake.base_url + p)
            expect(_blocked(st, h), "%s during the block: %d %r" % (p, st, h.get("location")))
        expect_eq(len(fake.limiter_trips()), 1, "trips: requests during a block are no new trip")
        expect_eq(fake.faults[0].hits, 0, "a fault used up during the block")
        fake.set_block_after(None)
        expect_eq(fetch(fake.base_url + "/subject/1/")[0], 200, "with the limiter off")


@test
def limiter_counts_a_sliding_window():
    """set_block_after(3, window=1.0) (a one-second minute): what counts is the starts within
    the last window, not the total. r1, then r2 and r3 0.6 s later; once r1 is more than a
    window old r4 is the third in the window and is served; r5, right after, is the fourth
    and trips."""
    with FakeDouban() as fake:
        fake.set_block_after(3, window=1.0)
        base = fake.base_url + "/subject/%d/"
        expect_eq(fetch(base % 1)[0], 200, "r1")
        t1 = fake.timeline()[0][1]
        wait_until(lambda: time.monotonic() >= t1 + 0.6, 2, "0.6 s after r1")
        expect_eq([fetch(base % i)[0] for i in (2, 3)], [200, 200], "r2, r3")
        wait_until(lambda: time.monotonic() > t1 + 1.05, 2, "r1 to leave the window")
        expect_eq(fetch(base % 4)[0], 200, "r4: the third start in the last window")
        st, h, _ = fetch(base % 5)
        starts = [s for _, s, _ in fake.timeline()]
        expect(starts[4] < starts[1] + 1.0, "r5 started %.2f s after r2: too late to test the "
               "window" % (starts[4] - starts[1]))
        expect(_blocked(st, h), "r5, the fourth start in the window: %d %r"
               % (st, h.get("location")))
        expect_eq(fake.limiter_trips(), [(starts[4], "/subject/5/")], "trips")


@test
def limiter_block_lasts_block_seconds():
    """set_block_after(2, block_seconds=1.5, window=0.5): after the trip at T every request
    that starts before T + 1.5 is answered 302 to sec.douban.com (the fake's own start
    times decide), the first one after it is served; requests made during the block count
    in the window, so a burst right after the block trips it again."""
    with FakeDouban() as fake:
        fake.set_block_after(2, block_seconds=1.5, window=0.5)
        url = fake.base_url + "/cinema/later/beijing/"
        answers = [fetch(url)[:2] for _ in range(3)]
        trips = fake.limiter_trips()
        expect_eq(len(trips), 1, "trips after 3 requests")
        trip = trips[0][0]
        # During the block, then a pause longer than the window so that the block's end is
        # not a new trip, then one request just before the end and one after it.
        for at in (0.2, 0.4, 1.2, 1.6):
            wait_until(lambda: time.monotonic() >= trip + at, 3, "T + %.1f s" % at)
            if at == 1.6:
                expect(not fake.blocked_now(), "blocked_now() after the block's end")
            else:
                expect(fake.blocked_now(), "blocked_now() at T + %.1f s" % at)
            answers.append(fetch(url)[:2])
        starts = [s for _, s, _ in fake.timeline()]
        for (st, h), start in zip(answers, starts):
            want_blocked = trip <= start < trip + 1.5
            expect_eq(_blocked(st, h), want_blocked, "request at T %+.2f s answered %d %r"
                      % (start - trip, st, h.get("location")))
            if not want_blocked:
                expect_eq(st, 200, "request at T %+.2f s" % (start - trip))
        expect(any(trip + 1.0 < s < trip + 1.5 for s in starts), "no request late in the block: "
               "%r" % [round(s - trip, 2) for s in starts])
        expect(any(s >= trip + 1.5 for s in starts), "no request after the block")
        for _ in range(3):
            fetch(url)
        expect_eq(len(fake.limiter_trips()), 2, "trips after a burst right after the block")


@test
def limiter_from_the_command_line():
    """python3 fake_upstream.py --block-after 2 --block-seconds 60: the third request is 302
    to sec.douban.com, and so is the fourth."""
    script = os.path.join(TESTS, "fake_upstream.py")
    p = subprocess.Popen([sys.executable, script, "--port", "0", "--block-after", "2",
                          "--block-seconds", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    track_child(p)
    try:
        line = p.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        expect(m, "first line %r" % line)
        url = "http://127.0.0.1:%s/cinema/later/beijing/" % m.group(1)
        answers = [fetch(url)[:2] for _ in range(4)]
        expect_eq([st for st, _ in answers[:2]], [200, 200], "the two allowed requests")
        for st, h in answers[2:]:
            expect(_blocked(st, h), "past --block-after 2: %d %r" % (st, h.get("location")))
        p.terminate()
        expect_eq(p.wait(10), 0, "exit status on SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        untrack_child(p)


@test
def limiter_and_record_in_a_child_process():
    """FakeProcess(movies=3, block_after=2, record=True): cities list 3 movies, the third
    request is 302 to sec.douban.com, and once stopped the child hands back its record: every
    request's path, status and times (one clock across processes), and the trip."""
    from fake_process import FakeProcess
    t0 = time.monotonic()
    with FakeProcess(movies=3, block_after=2, record=True) as fake:
        expect_eq(fake.city_ids("beijing"), city_ids("beijing", 3), "city_ids")
        body = fetch(fake.base_url + "/cinema/later/beijing/")[2].decode()
        expect_eq(body.count('class="thumb"'), 3, "movies listed")
        expect_eq(fetch(fake.base_url + "/subject/1/")[0], 200, "second request")
        st, h, _ = fetch(fake.base_url + "/subject/2/")
        expect(_blocked(st, h), "third request: %d %r" % (st, h.get("location")))
        expect_eq(fake.requests, None, "the record before the child stopped")
    t1 = time.monotonic()
    expect_eq([(r.path, r.status) for r in fake.requests],
              [("/cinema/later/beijing/", 200), ("/subject/1/", 200), ("/subject/2/", 302)],
              "the record")
    expect(all(t0 <= r.start <= r.end <= t1 for r in fake.requests),
           "record times outside the test's own: %r" % [(r.start, r.end) for r in fake.requests])
    expect_eq(fake.trips, [(fake.requests[2].start, "/subject/2/")], "trips")


if __name__ == "__main__":
    run(deadline=120, needs_daemon=False)
