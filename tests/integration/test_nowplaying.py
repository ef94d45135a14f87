#!/usr/bin/env python3
"""Now playing: `GET /movies?city=<slug>&kind=nowplaying` answers a city's now-playing page
(its #nowplaying items, never its #upcoming block), with details from the movie records both
kinds share; `kind=later` is the default and the answer of before; any other kind is
`400 invalid_kind`. The two kinds of a city are cached, single-flighted and revalidated apart,
and a movie in both lists has its page fetched once."""

import xml.etree.ElementTree as ET

from harness import (expect, expect_answer, expect_eq, expect_error, expect_movie,
                     get_in_background, listing_path, run, scenario, subject_path, test,
                     wait_until)
from fake_upstream import (UPCOMING_SHOWN, expected_nowplaying, expected_nowplaying_only,
                           nowplaying_ids)

NOWPLAYING = "/movies?city=beijing&kind=nowplaying"


def nowplaying_path(city):
    """The fake upstream's path of a city's now-playing page."""
    return "/cinema/nowplaying/%s/" % city


def expect_nowplaying_movie(actual, mid):
    want = expected_nowplaying(mid)
    diff = ["%s: expected %r, got %r" % (k, want[k], actual.get(k))
            for k in want if actual.get(k) != want[k]]
    expect(not diff, "now-playing movie %s differs:\n    %s" % (mid, "\n    ".join(diff)))


@test
def nowplaying_answers_its_movies_not_upcoming():
    """Every #nowplaying movie in page order, with its page's details and the listing's
    rating and votes; none of the page's #upcoming movies, whose pages are never asked for;
    the coming-soon listing is not asked for either."""
    with scenario() as (fake, d):
        ids = fake.nowplaying_ids_of("beijing")
        upcoming = fake.city_ids("beijing")[:UPCOMING_SHOWN]
        doc = expect_answer(d.get(NOWPLAYING), fake, "beijing", "nowplaying")
        expect_eq([m["id"] for m in doc["movies"]], [str(i) for i in ids], "ids in page order")
        expect_eq((doc["complete"], doc["pending"], doc["stale"]), (True, 0, False), "state")
        for m in doc["movies"]:
            expect_nowplaying_movie(m, int(m["id"]))
        got = {m["id"] for m in doc["movies"]}
        for mid in upcoming:
            expect(str(mid) not in got, "upcoming movie %d in the now-playing answer" % mid)
            expect_eq(fake.count(subject_path(mid)), 0, "requests for upcoming movie %d" % mid)
        expect_eq(fake.count(nowplaying_path("beijing")), 1, "now-playing page requests")
        expect_eq(fake.count(listing_path("beijing")), 0, "coming-soon listing requests")
        # At least one unrated movie ("0" on the page) and one rated: both kinds of score.
        ratings = [m["rating"] for m in doc["movies"]]
        expect(None in ratings and any(r is not None for r in ratings), "ratings %r" % ratings)


@test
def nowplaying_listing_first():
    """A cold now-playing city is answered from its page alone, with what its attributes
    say (poster, year, runtime, directors, actors, rating, votes), the movie pages pending."""
    with scenario(flags=["--min-request-interval-ms", "200", "--max-requests-per-minute", "0",
                         "--max-host-connections", "1"]) as (fake, d):
        d.complete_answers = False
        ids = fake.nowplaying_ids_of("beijing")
        doc = expect_answer(d.get(NOWPLAYING), fake, "beijing", "nowplaying")
        expect_eq(doc["complete"], False, "complete")
        pending = [m for m in doc["movies"] if m["detail_status"] == "pending"]
        expect(pending, "no movie pending in the first answer")
        for m in pending:
            want = expected_nowplaying_only(int(m["id"]))
            diff = ["%s: expected %r, got %r" % (k, want[k], m.get(k))
                    for k in want if m.get(k) != want[k]]
            expect(not diff, "listing-only movie %s differs:\n    %s" % (m["id"], "\n    ".join(diff)))
        wait_until(lambda: all(fake.count(subject_path(i)) == 1 for i in ids), 30,
                   "every movie page fetched without anyone waiting")
        wait_until(lambda: d.get_json(NOWPLAYING)[1].get("complete") is True, 10, "complete answer")


@test
def later_is_the_default_and_unchanged():
    """kind=later is the answer without kind, byte for byte (one cache entry, one ETag), and
    is the coming-soon answer as before: its source, its movies."""
    with scenario() as (fake, d):
        plain = d.get("/movies?city=beijing")
        doc = expect_answer(plain, fake, "beijing")
        for m, mid in zip(doc["movies"], fake.city_ids("beijing")):
            expect_movie(m, mid)
        later = d.get("/movies?city=beijing&kind=later")
        expect_eq((later.status, later.body, later.headers.get("etag")),
                  (200, plain.body, plain.headers.get("etag")), "kind=later")
        nm = d.get("/movies?city=beijing&kind=later",
                   headers={"If-None-Match": plain.headers.get("etag")})
        expect_eq(nm.status, 304, "kind=later revalidated with the default's ETag")
        expect_eq(fake.count(listing_path("beijing")), 1, "coming-soon listing requests")
        expect_eq(fake.count(nowplaying_path("beijing")), 0, "now-playing page requests")


@test
def invalid_kind_is_400():
    """Any kind but later or nowplaying: 400 invalid_kind, JSON, and Douban is not asked."""
    with scenario() as (fake, d):
        for q in ("kind=soon", "kind=", "kind", "kind=NowPlaying", "kind=nowplaying%00x",
                  "kind=later%20", "kind=nowplaying&wait=never"):
            r = d.get("/movies?city=beijing&" + q)
            expect_error(r, 400, "invalid_kind" if "wait=never" not in q else "invalid_wait", q)
        # The city's own errors come first, as without kind.
        expect_error(d.get("/movies?kind=soon"), 400, "missing_city")
        expect_error(d.get("/movies?city=Beijing&kind=soon"), 400, "invalid_city")
        expect_eq(fake.total, 0, "upstream requests")


@test
def kinds_cached_apart():
    """Each kind of a city has its own answer: one page request each however often asked,
    bodies and ETags of their own, and one kind's ETag does not revalidate the other."""
    with scenario() as (fake, d):
        later = d.get("/movies?city=beijing")
        playing = d.get(NOWPLAYING)
        expect_answer(later, fake, "beijing")
        expect_answer(playing, fake, "beijing", "nowplaying")
        for _ in range(3):
            again_later = d.get("/movies?city=beijing")
            again_playing = d.get(NOWPLAYING)
            expect_eq(again_later.body, later.body, "cached coming-soon answer")
            expect_eq(again_playing.body, playing.body, "cached now-playing answer")
        expect_eq(fake.count(listing_path("beijing")), 1, "coming-soon listing requests")
        expect_eq(fake.count(nowplaying_path("beijing")), 1, "now-playing page requests")
        expect(later.headers.get("etag") != playing.headers.get("etag"), "one ETag for both")
        cross = d.get(NOWPLAYING, headers={"If-None-Match": later.headers.get("etag")})
        expect_eq((cross.status, cross.body), (200, playing.body),
                  "now playing revalidated with coming soon's ETag")
        cross = d.get("/movies?city=beijing", headers={"If-None-Match": playing.headers.get("etag")})
        expect_eq((cross.status, cross.body), (200, later.body),
                  "coming soon revalidated with now playing's ETag")
        same = d.get(NOWPLAYING, headers={"If-None-Match": playing.headers.get("etag")})
        expect_eq(same.status, 304, "now playing revalidated with its own ETag")
        # Another city's now playing is its own too.
        sh = expect_answer(d.get("/movies?city=shanghai&kind=nowplaying"), fake, "shanghai",
                           "nowplaying")
        expect_eq([m["id"] for m in sh["movies"]],
                  [str(i) for i in fake.nowplaying_ids_of("shanghai")], "shanghai's movies")


@test
def details_shared_between_kinds():
    """A movie both coming soon and now playing (as when it opens early in some cinemas) has
    its page fetched once: asked for both kinds at once, cold, each listing is fetched once
    and each shared movie page once; the answers carry the same details."""
    shared = []

    def setup(fake):
        soon = fake.city_ids("beijing")
        shared[:] = soon[:2]
        fake.set_nowplaying("beijing", shared + nowplaying_ids("beijing", 3))
        fake.set_latency(50)
    with scenario(setup=setup) as (fake, d):
        t1, r1 = get_in_background(d, "/movies?city=beijing")
        t2, r2 = get_in_background(d, NOWPLAYING)
        t1.join(30)
        t2.join(30)
        expect("r" in r1 and "r" in r2, "both answers arrived")
        later = expect_answer(r1["r"], fake, "beijing")
        playing = expect_answer(r2["r"], fake, "beijing", "nowplaying")
        expect_eq(fake.count(listing_path("beijing")), 1, "coming-soon listing requests")
        expect_eq(fake.count(nowplaying_path("beijing")), 1, "now-playing page requests")
        for mid in shared:
            expect_eq(fake.count(subject_path(mid)), 1, "requests for shared movie %d" % mid)
        by_id = {m["id"]: m for m in later["movies"]}
        for m in playing["movies"]:
            expect_eq(m["detail_status"], "ok", "movie %s" % m["id"])
            expect_nowplaying_movie(m, int(m["id"]))
            if int(m["id"]) in shared:
                for k in ("original_title", "poster", "genres", "summary", "imdb_id"):
                    expect_eq(m[k], by_id[m["id"]][k], "%s of shared movie %s" % (k, m["id"]))
        expect_eq(sum(fake.count(subject_path(int(m["id"]))) for m in playing["movies"]),
                  len(playing["movies"]), "one page request per now-playing movie")


@test
def nowplaying_upstream_faults():
    """The now-playing page goes through the same fetcher and faults as the listing: a 5xx is
    502 upstream_error, a page without #nowplaying 502 upstream_changed, an unknown city 404;
    meanwhile the same city's coming-soon answer is unaffected."""
    with scenario() as (fake, d):
        fake.add_fault(r"^/cinema/nowplaying/beijing/$", 500)
        expect_error(d.get(NOWPLAYING), 502, "upstream_error", "500 upstream")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")
        fake.clear_faults()
        fake.add_fault(r"^/cinema/nowplaying/shanghai/$", "no_anchor")
        r = expect_error(d.get("/movies?city=shanghai&kind=nowplaying"), 502, "upstream_changed")
        expect("#nowplaying" in r["error"]["message"], "message %r" % r["error"]["message"])
        fake.clear_faults()
        fake.add_fault(r"^/cinema/nowplaying/guangzhou/$", "empty_listing")
        doc = expect_answer(d.get("/movies?city=guangzhou&kind=nowplaying"), fake, "guangzhou",
                            "nowplaying")
        expect_eq(doc["count"], 0, "an empty #nowplaying")
        fake.clear_faults()
        fake.remove_city("shenzhen")
        expect_error(d.get("/movies?city=shenzhen&kind=nowplaying"), 404, "unknown_city")
        expect_answer(d.get(NOWPLAYING), fake, "beijing", "nowplaying")


@test
def feeds_take_kind():
    """The calendar and feeds take kind like /movies: kind=nowplaying's Atom and RSS list the
    now-playing movies under a title and ids of their own (a movie in both lists has two
    entries that do not collide), kind=later's are the default's, and a bad kind is
    400 invalid_kind for every representation."""
    atom = "{http://www.w3.org/2005/Atom}"
    with scenario() as (fake, d):
        ids = [str(i) for i in fake.nowplaying_ids_of("beijing")]

        def entries(path):
            r = d.get(path)
            expect_eq(r.status, 200, path)
            return ET.fromstring(r.body)
        now = entries("/movies.atom?city=beijing&kind=nowplaying")
        later = entries("/movies.atom?city=beijing")
        expect_eq(entries("/movies.atom?city=beijing&kind=later").findtext(atom + "id"),
                  later.findtext(atom + "id"), "kind=later's feed id")
        expect(now.findtext(atom + "title").startswith("正在上映"),
               "now playing's feed title %r" % now.findtext(atom + "title"))
        expect(later.findtext(atom + "title").startswith("即将上映"),
               "coming soon's feed title %r" % later.findtext(atom + "title"))
        now_ids = [e.findtext(atom + "id") for e in now.findall(atom + "entry")]
        later_ids = {e.findtext(atom + "id") for e in later.findall(atom + "entry")}
        expect_eq([i.rsplit("/", 1)[1] for i in now_ids], ids, "now-playing entries")
        expect_eq(set(now_ids) & later_ids, set(), "entry ids shared by the two kinds")
        rss = ET.fromstring(d.get("/movies.rss?city=beijing&kind=nowplaying").body)
        expect_eq([g.text.rsplit("/", 1)[1] for g in rss.iter("guid")], ids, "RSS items")
        for path in ("/movies.ics", "/movies.atom", "/movies.rss"):
            expect_error(d.get(path + "?city=beijing&kind=soon"), 400, "invalid_kind", path)


if __name__ == "__main__":
    run(deadline=120)
