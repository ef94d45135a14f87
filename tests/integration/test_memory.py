#!/usr/bin/env python3
"""Memory in bytes: cache_max_bytes bounds the city and movie caches together, least
recently used first across both; /metrics reports what each holds (moviesd_cache_bytes);
a SIGHUP applies a changed bound at once; an answer bigger than the whole bound is served
but not kept. Cities are made-up slugs (--cities any) whose movies are their own
(distinct_ids), so every city adds records. The minutes-long version is tests/soak/."""

import os
import signal

from harness import (Daemon, FAST, FakeDouban, TempDir, expect, expect_answer, expect_eq,
                     get_metrics, listing_path, metric, run, running, subject_path, test)

MOVIES = 40
CONF = "listen = 127.0.0.1:0\ncache_max_bytes = %d\n"
MIB = 1024 * 1024


def write_file(path, text):
    """Writes path atomically (a reload must never see half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


class config_daemon(running):
    """running() with --config FILE, where cache_max_bytes lives (a flag would win over the
    file on reload too)."""

    def __init__(self, fake, conf):
        super().__init__(fake)
        self.daemon = Daemon(["--config", conf, "--upstream", fake.base_url, "--cities", "any"]
                             + FAST)


def slug(i):
    """The i-th made-up city: letters only, as slugs are."""
    s = ""
    while True:
        s = chr(ord("a") + i % 26) + s
        i //= 26
        if i == 0:
            return "mem" + s


def cache_figures(d):
    """(bytes of cities, bytes of movies, cached cities, cached movies) from /metrics."""
    m = get_metrics(d)
    figures = (metric(m, "moviesd_cache_bytes", cache="cities"),
               metric(m, "moviesd_cache_bytes", cache="movies"),
               metric(m, "moviesd_cached_cities"), metric(m, "moviesd_cached_movies"))
    expect(None not in figures, "cache gauges missing from /metrics: %r" % (figures,))
    return tuple(int(v) for v in figures)


def ask(d, fake, city):
    """The city's complete answer, expected 200."""
    doc = expect_answer(d.get("/movies?city=%s&wait=details" % city), fake, city)
    expect(doc["complete"], "%s: answer not complete" % city)
    return doc


def reload(d, conf, bound):
    mark = d.mark()
    write_file(conf, CONF % bound)
    d.signal(signal.SIGHUP)
    expect(d.wait_for_line(r"configuration reloaded", 5, start=mark),
           "no 'configuration reloaded' after SIGHUP (cache_max_bytes %d)" % bound)


@test
def byte_bound_holds_across_both_caches_and_reload_applies_it():
    with FakeDouban(any_city=True, distinct_ids=True, default_movies=MOVIES) as fake, \
            TempDir() as tmp:
        conf = write_file(os.path.join(tmp, "m.conf"), CONF % (64 * MIB))
        with config_daemon(fake, conf) as d:
            cities = [slug(i) for i in range(24)]
            ids = set()
            for c in cities:
                ask(d, fake, c)
                ids.update(fake.city_ids(c))
            cb, mb, nc, nm = cache_figures(d)
            print("    64 MiB bound, %d cities: cities %d B, movies %d B (%d records, %.0f B "
                  "each)" % (len(cities), cb, mb, nm, mb / nm))
            # Under a roomy bound nothing goes: what the small bound evicts below is its doing.
            expect_eq(nc, len(cities), "cached cities under 64 MiB")
            expect_eq(nm, len(ids), "cached movies under 64 MiB")
            # A record is charged near what jansson spends on it (about 3.5 KB for the fake's
            # pages), a city its two bodies (fresh and stale) of about 1 KB per movie each.
            expect(2000 < mb / nm < 8000, "bytes charged per movie record: %.0f" % (mb / nm))
            expect(2 * 500 * MOVIES < cb / nc < 2 * 3000 * MOVIES,
                   "bytes charged per city: %.0f" % (cb / nc))
            expect(cb + mb > 4 * MIB, "the caches hold %d B: too little to shrink below" % (cb + mb))

            # SIGHUP to 1 MiB: evicted at once, the least recently used first.
            reload(d, conf, MIB)
            cb, mb, nc2, nm2 = cache_figures(d)
            print("    after SIGHUP to 1 MiB: cities %d B, movies %d B, %d cities, %d records"
                  % (cb, mb, nc2, nm2))
            expect(cb + mb <= MIB, "moviesd_cache_bytes %d + %d over the new bound" % (cb, mb))
            expect(0 < nc2 < nc and 0 < nm2 < nm, "cities %d, records %d after the shrink"
                   % (nc2, nm2))
            newest, oldest = cities[-1], cities[0]
            before = fake.total
            ask(d, fake, newest)
            expect_eq(fake.total, before, "upstream requests for %s, the most recently used "
                      "city (still cached)" % newest)
            ask(d, fake, oldest)
            expect_eq(fake.count(listing_path(oldest)), 2, "listings of %s, the least recently "
                      "used city (evicted)" % oldest)
            refetched = sum(fake.count(subject_path(m)) == 2 for m in fake.city_ids(oldest))
            expect_eq(refetched, MOVIES, "movie pages of %s fetched again (its records were "
                      "evicted)" % oldest)

            # A flood under the small bound: every reading stays within it.
            peak = 0
            for i in range(24, 40):
                ask(d, fake, slug(i))
                cb, mb, _, _ = cache_figures(d)
                peak = max(peak, cb + mb)
                expect(cb + mb <= MIB, "after %s: moviesd_cache_bytes %d + %d over 1 MiB"
                       % (slug(i), cb, mb))
            print("    16 more cities under 1 MiB: peak %d B" % peak)
            expect(peak > MIB // 2, "the flood filled only %d B of the 1 MiB bound" % peak)

            # An answer bigger than the whole bound is served, and not kept.
            reload(d, conf, 65536)
            cb, mb, nc3, _ = cache_figures(d)
            expect(cb + mb <= 65536, "moviesd_cache_bytes %d + %d over 64 KiB" % (cb, mb))
            big = slug(100)
            ask(d, fake, big)
            ask(d, fake, big)
            expect_eq(fake.count(listing_path(big)), 2, "listings of %s, whose answer (~%d B) "
                      "does not fit 64 KiB" % (big, 2 * 1000 * MOVIES))
            cb, mb, _, _ = cache_figures(d)
            expect(cb + mb <= 65536, "moviesd_cache_bytes %d + %d over 64 KiB" % (cb, mb))


if __name__ == "__main__":
    run(deadline=240)
