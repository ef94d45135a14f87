#!/usr/bin/env python3
"""How moviesd talks to the upstream: per-host parallelism, browser-like headers, the
cookie, off-host links, listing order under out-of-order completion."""

import time

from harness import (OFFHOST_IDS, SIDEBAR_IDS, breaker_closed, expect, expect_answer, expect_eq,
                     expect_movie, movie_spec, run, scenario, test)

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 moviesd-test"


def _parallelism(n):
    # (the harness adds --min-request-interval-ms 0 --max-requests-per-minute 0)
    flags = ["--max-host-connections", str(n), "--max-upstream-connections", "64"]

    def setup(fake):
        fake.set_city("beijing", 40)
        fake.set_latency(100)
    with scenario(flags=flags, setup=setup) as (fake, d):
        t0 = time.monotonic()
        doc = expect_answer(d.get("/movies?city=beijing", timeout=60), fake, "beijing")
        dt = time.monotonic() - t0
        expect_eq(doc["count"], 40, "count")
        expect(all(m["detail_error"] is None for m in doc["movies"]),
               "detail errors: %r" % [(m["id"], m["detail_error"]) for m in doc["movies"]
                                      if m["detail_error"]])
        expect_eq(fake.count_matching(r"^/subject/"), 40, "subject requests")
        expect_eq(fake.peak_in_flight, n, "peak concurrent upstream requests")
        # 41 requests of >= 100 ms over n connections cannot finish faster than this.
        expect(dt >= 0.1 * (1 + 40 / n) * 0.9, "answer after %.2fs: latency not applied?" % dt)
        print("    (max-host-connections %d: 41 requests in %.2fs)" % (n, dt))


@test
def parallelism_4():
    _parallelism(4)


@test
def parallelism_8():
    _parallelism(8)


@test
def request_headers():
    """Browser User-Agent (the --user-agent value), Accept-Language zh-CN, a Douban Referer,
    and the cookie the listing set sent back on the movie pages."""
    with scenario(flags=["--user-agent", UA]) as (fake, d):
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        seen = fake.headers_seen()
        expect_eq(len(seen), 13, "upstream requests")
        for path, h in seen:
            expect_eq(h.get("user-agent"), UA, "User-Agent of %s" % path)
            al = h.get("accept-language", "")
            expect(al.lower().startswith("zh-cn"), "Accept-Language of %s: %r" % (path, al))
            ref = h.get("referer", "")
            expect(ref.startswith("https://movie.douban.com/"), "Referer of %s: %r" % (path, ref))
        for path, h in seen:
            if path.startswith("/subject/"):
                cookies = [c.strip() for c in h.get("cookie", "").split(";")]
                expect("bid=abc123" in cookies,
                       "Cookie of %s: %r (listing set bid=abc123)" % (path, h.get("cookie")))


@test
def default_user_agent_is_a_browser():
    with scenario() as (fake, d):
        expect_answer(d.get("/movies?city=shanghai"), fake, "shanghai")
        for path, h in fake.headers_seen():
            ua = h.get("user-agent", "")
            expect(ua.startswith("Mozilla/5.0") and "curl" not in ua.lower(),
                   "default User-Agent of %s: %r" % (path, ua))


@test
def offhost_links_skipped():
    """Listing items linking to evil.example, other.douban.com, movie.douban.com.evil.example
    ... are not in the answer and never requested; links outside #showing-soon neither."""
    def setup(fake):
        fake.set_city("beijing", 6, offhost=True)
    with scenario(setup=setup) as (fake, d):
        ids = fake.city_ids("beijing")
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids (off-host skipped)")
        for m in doc["movies"]:
            expect_movie(m, int(m["id"]), skip=("regions",) if not movie_spec(m["id"])["listing_has_regions"] else ())
        for i in OFFHOST_IDS + SIDEBAR_IDS:
            expect_eq(fake.count("/subject/%d/" % i), 0, "requests of /subject/%d/" % i)
        expect_eq(fake.total, 1 + len(ids), "upstream requests")
        for path, _ in fake.headers_seen():
            expect(path == "/cinema/later/beijing/" or path in ["/subject/%d/" % i for i in ids],
                   "unexpected upstream request %s" % path)


@test
def order_kept_when_pages_finish_out_of_order():
    """The first movie's page is the slowest: the answer still follows the listing."""
    def setup(fake):
        ids = fake.city_ids("beijing")
        fake.add_fault(r"^/subject/%d/$" % ids[0], "delay", ms=600)
        fake.add_fault(r"^/subject/%d/$" % ids[1], "delay", ms=300)
    with scenario(flags=["--max-host-connections", "4"], setup=setup) as (fake, d):
        ids = fake.city_ids("beijing")
        doc = expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids in listing order")
        ends = {p: e for p, _, e in fake.timeline()}
        first_end = ends["/subject/%d/" % ids[0]]
        expect(any(e < first_end for p, e in ends.items() if p.startswith("/subject/")),
               "pages did not finish out of order (fetches not concurrent?)")
        for m in doc["movies"]:
            expect(m["detail_error"] is None, "movie %s: %r" % (m["id"], m["detail_error"]))


@test
def redirects_within_the_upstream_followed():
    """A redirect to the upstream's own host is followed (relative or absolute Location)."""
    def setup(fake):
        fake.add_fault(r"^/cinema/later/beijing/$", "redirect", times=1,
                       location="/cinema/later/beijing/?from=redirect")
        fake.add_fault(r"^/subject/%d/$" % fake.city_ids("beijing")[0], "redirect", times=1,
                       location=fake.base_url + "/subject/%d/?moved=1" % fake.city_ids("beijing")[0])
    with scenario(setup=setup) as (fake, d):
        r = d.get("/movies?city=beijing")
        expect_answer(r, fake, "beijing")
        expect(all(m["detail_error"] is None for m in r.json()["movies"]), "every movie complete")
        expect_eq(fake.count("/cinema/later/beijing/"), 2, "listing asked twice: redirect, then target")


@test
def redirect_loop_within_the_upstream_fails_after_three():
    def setup(fake):
        fake.add_fault(r"^/cinema/later/beijing/$", "redirect", location="/cinema/later/beijing/")
    with scenario(setup=setup) as (fake, d):
        r = d.get("/movies?city=beijing")
        expect_eq(r.status, 502)
        expect_eq(r.json()["error"]["code"], "upstream_error")
        expect_eq(fake.count("/cinema/later/beijing/"), 4, "the first request and 3 redirects")
        expect(breaker_closed(d), "an in-host redirect is no block, but the breaker opened")


if __name__ == "__main__":
    run(deadline=120)
