#!/usr/bin/env python3
"""The poster proxy: GET /posters/<movie id> serves a listed movie's poster, fetched once from
its https://img<N>.doubanio.com URL (poster_upstream points at the fake) with a Douban
Referer, typed from its magic bytes (the fake sends every image as text/html), with an ETag
and a year's immutable Cache-Control; single-flight; 404 for ids moviesd has not listed or
whose poster is off Douban's image hosts; 503 with Retry-After when the image host fails,
while the pages go on; the disk cache survives a restart, finds a corrupted file and
fetches the poster again, and stays within poster_cache_max_bytes. Prints the median
latency of a cached poster."""

import concurrent.futures
import contextlib
import http.client
import os
import random
import statistics
import struct
import time
import zlib

from harness import (FakeDouban, TempDir, city_ids, expect, expect_eq, expect_error, get_metrics, metric,
                     movie_spec, run, running, test, wait_until)

IMAGES = r"^/view/photo/"


def poster_flags(fake, *more):
    return ["--poster-upstream", fake.base_url, "--poster-min-request-interval-ms", "0",
            "--poster-max-requests-per-minute", "0"] + list(more)


def image_path(url):
    """The path of an https://img<N>.doubanio.com URL: what the fake is asked for."""
    expect(url.startswith("https://img") and ".doubanio.com/" in url, "poster URL %r" % url)
    return url[url.index(".doubanio.com/") + len(".doubanio.com"):]


def noise_png(seed, size):
    """A real PNG of about size bytes of noise (it does not compress)."""
    rnd = random.Random(seed)
    width = 64
    height = max(1, size // (3 * width))
    rows = b"".join(b"\0" + bytes(rnd.getrandbits(8) for _ in range(3 * width)) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@contextlib.contextmanager
def setup(flags=(), movies=6, before=None, dir_flags=()):
    fake = FakeDouban(cities=["beijing", "shanghai"], default_movies=movies)
    fake.start()
    try:
        if before:
            before(fake)
        with running(fake, poster_flags(fake, *dir_flags) + list(flags)) as d:
            yield fake, d
    finally:
        fake.stop()


def listed(d, city="beijing"):
    """The city's movies once every movie page is in."""
    r = d.get("/movies?city=%s&wait=details" % city)
    expect_eq(r.status, 200, "movies")
    return r.json()["movies"]


@test
def poster_is_served_typed_from_its_bytes_with_etag_and_cache_control():
    mid = city_ids("beijing", 6)[0]
    path = image_path(movie_spec(mid)["poster"])
    png = noise_png(1, 3000)

    def before(fake):
        fake.set_image(path, png)   # a PNG at a .webp URL, sent as text/html
    with setup(before=before) as (fake, d):
        movies = listed(d)
        for m in movies:
            expect_eq(m["poster_proxy"], "/posters/%s" % m["id"], "poster_proxy")
        r = d.get("/posters/%d" % mid)
        expect_eq(r.status, 200, "poster")
        expect_eq(r.body, png, "the image's bytes")
        expect_eq(r.headers.get("content-type"), "image/png", "Content-Type from the magic bytes")
        expect_eq(r.headers.get("cache-control"), "public, max-age=31536000, immutable")
        etag = r.headers.get("etag", "")
        expect(etag.startswith('"') and etag.endswith('"') and len(etag) > 2, "ETag %r" % etag)
        expect_eq(fake.count(path), 1, "fetches of the image")
        seen = fake.headers_seen(IMAGES)
        expect(seen and all(h.get("referer", "").startswith("https://movie.douban.com/") for _, h in seen),
               "a Douban Referer on every image fetch: %r" % seen)
        expect(all("Mozilla/5.0" in h.get("user-agent", "") for _, h in seen), "a browser User-Agent")

        r2 = d.get("/posters/%d" % mid, {"If-None-Match": etag})
        expect_eq(r2.status, 304, "If-None-Match")
        expect_eq(r2.body, b"")
        expect_eq(r2.headers.get("etag"), etag)
        other = d.get("/posters/%d" % mid, {"If-None-Match": '"other"'})
        expect_eq(other.status, 200, "another ETag")
        head = d.head("/posters/%d" % mid)
        expect_eq((head.status, head.body, head.headers.get("content-type")), (200, b"", "image/png"))
        expect_eq(fake.count(path), 1, "fetches of the image after revalidation")
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_posters_cached"), 1.0, "posters cached")
        expect_eq(metric(m, "moviesd_poster_fetches_total"), 1.0, "poster fetches")
        expect(metric(m, "moviesd_poster_cache_bytes") >= len(png), "poster cache bytes")
        expect_eq(metric(m, "moviesd_poster_breaker_open"), 0.0, "the posters' breaker")
        expect(metric(m, "moviesd_requests_total", route="posters", status="304") == 1.0,
               "requests by route")

        # The other formats, each at a URL of another extension.
        webp_mid, jpeg_mid = city_ids("beijing", 6)[1:3]
        fake.set_image(image_path(movie_spec(jpeg_mid)["poster"]), fake_jpeg())
        expect_eq(d.get("/posters/%d" % webp_mid).headers.get("content-type"), "image/webp")
        expect_eq(d.get("/posters/%d" % jpeg_mid).headers.get("content-type"), "image/jpeg")

        # Something that is not an image is not passed on.
        bad_mid = city_ids("beijing", 6)[3]
        fake.set_image(image_path(movie_spec(bad_mid)["poster"]), b"<html>not an image</html>")
        r = d.get("/posters/%d" % bad_mid)
        expect_error(r, 503, "poster_unavailable", "not an image")
        expect(r.headers.get("retry-after", "").isdigit(), "Retry-After: %r" % r.headers)


def read_file(path):
    """The bytes of path, or None while it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def fake_jpeg():
    import fake_upstream
    return fake_upstream.JPEG_1X1


@test
def fifty_concurrent_requests_cost_one_fetch():
    mid = city_ids("beijing", 6)[1]
    path = image_path(movie_spec(mid)["poster"])
    with setup() as (fake, d):
        listed(d)
        fake.add_fault("^%s$" % path, "delay", ms=400)   # all 50 arrive while it is fetched
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: d.get("/posters/%d" % mid), range(50)))
        expect_eq(sorted({r.status for r in answers}), [200], "statuses")
        expect_eq(len({r.body for r in answers}), 1, "one body for all")
        expect_eq(fake.count(path), 1, "upstream fetches for 50 concurrent requests")


@test
def unknown_ids_and_off_host_posters_are_404():
    ids = city_ids("beijing", 6)
    off = ids[2]

    def before(fake):
        fake.set_poster(off, "https://evil.example/view/photo/s_ratio_poster/public/p1.jpg")
    with setup(before=before) as (fake, d):
        listed(d)
        for path in ("/posters/99999999", "/posters/abc", "/posters/", "/posters/1/2",
                     "/posters/%d" % off):
            expect_error(d.get(path), 404, "unknown_poster", path)
        expect_eq(fake.count_matching(IMAGES), 0, "image fetches")
        # The log line reaches the harness through a pipe, maybe after the answer.
        wait_until(lambda: d.find_lines(r"poster of movie %d refused" % off), 5,
                   "the refusal to be logged")
        expect_eq(d.request("POST", "/posters/%d" % ids[0]).status, 405, "POST")


@test
def failed_fetch_is_503_with_retry_after_and_pages_go_on():
    ids = city_ids("beijing", 6)
    with setup(flags=["--retries", "0"]) as (fake, d):
        listed(d)
        fake.add_fault(r"^/view/photo/.*/p%d\." % (2900000000 + ids[0] % 100000000), 500)
        r = d.get("/posters/%d" % ids[0])
        expect_error(r, 503, "poster_unavailable", "5xx")
        expect(int(r.headers.get("retry-after", "0")) > 0, "Retry-After: %r" % r.headers)

        # The image host refusing us opens the posters' breaker, not the pages'.
        fake.clear_faults()
        fake.add_fault(IMAGES, 403)
        r = d.get("/posters/%d" % ids[1])
        expect_error(r, 503, "poster_unavailable", "403")
        expect(int(r.headers.get("retry-after", "0")) > 0, "Retry-After: %r" % r.headers)
        before = fake.count_matching(IMAGES)
        expect_error(d.get("/posters/%d" % ids[2]), 503, "poster_unavailable", "breaker open")
        expect_eq(fake.count_matching(IMAGES), before, "no fetch while the breaker is open")
        expect_eq(d.get_json("/readyz")[1]["breaker"]["open"], False, "the pages' breaker")
        expect_eq(metric(get_metrics(d), "moviesd_poster_breaker_open"), 1.0, "the posters' breaker")
        expect_eq(len(listed(d, "shanghai")), 6, "a city scraped while the image host refuses")


@test
def disk_cache_survives_restart_and_finds_corrupted_files():
    ids = city_ids("beijing", 6)[:3]
    with TempDir() as tmp:
        cache = os.path.join(tmp, "posters")
        dir_flags = ["--poster-cache-dir", cache]
        fake = FakeDouban(cities=["beijing"], default_movies=6)
        fake.start()
        try:
            bodies = {}
            with running(fake, poster_flags(fake, *dir_flags)) as d:
                listed(d)
                for mid in ids:
                    r = d.get("/posters/%d" % mid)
                    expect_eq(r.status, 200)
                    bodies[mid] = (r.body, r.headers["etag"])
                wait_until(lambda: len(os.listdir(cache)) == 3, 10, "three files")
            names = sorted(os.listdir(cache))
            expect(all(n.split("-")[0].isdigit() for n in names), "file names %r" % names)

            fake.reset_stats()
            with running(fake, poster_flags(fake, *dir_flags)) as d:
                for mid in ids:   # not listed since the restart: the files answer
                    r = d.get("/posters/%d" % mid)
                    expect_eq((r.status, r.body, r.headers.get("etag")), (200,) + bodies[mid])
                expect_eq(fake.count_matching(IMAGES), 0, "image fetches after the restart")

            # One byte of one file changed while the daemon was down.
            victim = [n for n in names if n.startswith("%d-" % ids[0])][0]
            with open(os.path.join(cache, victim), "r+b") as f:
                f.seek(10)
                b = f.read(1)
                f.seek(10)
                f.write(bytes([b[0] ^ 0xff]))
            fake.reset_stats()
            with running(fake, poster_flags(fake, *dir_flags)) as d:
                listed(d)
                r = d.get("/posters/%d" % ids[0])
                expect_eq((r.status, r.body), (200, bodies[ids[0]][0]), "served right after all")
                expect_eq(fake.count_matching(IMAGES), 1, "fetched again")
                wait_until(lambda: d.find_lines(r"do not match the hash"), 5,
                           "the corruption to be logged")
                wait_until(lambda: read_file(os.path.join(cache, victim)) == bodies[ids[0]][0],
                           10, "the file written again")
                r = d.get("/posters/%d" % ids[1])
                expect_eq((r.status, r.body), (200, bodies[ids[1]][0]))
                expect_eq(fake.count_matching(IMAGES), 1, "the sound file is served as it is")
        finally:
            fake.stop()


@test
def eviction_keeps_the_cache_under_its_max():
    ids = city_ids("beijing", 12)
    size = 20000
    limit = 100000

    def before(fake):
        for i, mid in enumerate(ids):
            fake.set_image(image_path(movie_spec(mid)["poster"]), noise_png(i, size))
    with TempDir() as tmp:
        cache = os.path.join(tmp, "posters")
        with setup(before=before, movies=12, flags=["--poster-cache-max-bytes", str(limit)],
                   dir_flags=["--poster-cache-dir", cache]) as (fake, d):
            listed(d)
            for mid in ids:
                expect_eq(d.get("/posters/%d" % mid).status, 200)

            def held():
                return sum(os.path.getsize(os.path.join(cache, n)) for n in os.listdir(cache))
            def has(mid):
                return any(n.startswith("%d-" % mid) for n in os.listdir(cache))
            # The disk queue is written in order: once the newest is in, the evictions are done.
            wait_until(lambda: has(ids[-1]) and not has(ids[0]), 10, "the newest file, the oldest gone")
            names = os.listdir(cache)
            expect(held() <= limit, "%d bytes of files, more than %d" % (held(), limit))
            expect(3 <= len(names) < len(ids), "evicted: %d files left of %d" % (len(names), len(ids)))
            fake.reset_stats()
            expect_eq(d.get("/posters/%d" % ids[-1]).status, 200)
            expect_eq(fake.count_matching(IMAGES), 0, "a kept poster is not fetched again")
            expect_eq(d.get("/posters/%d" % ids[0]).status, 200)
            expect_eq(fake.count_matching(IMAGES), 1, "an evicted one is")
            print("    cache: %d of %d posters of %d bytes within %d bytes (%d bytes of files)"
                  % (len(names), len(ids), size, limit, held()))


@test
def cached_poster_latency():
    mid = city_ids("beijing", 6)[0]
    with setup() as (fake, d):
        listed(d)
        expect_eq(d.get("/posters/%d" % mid).status, 200)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        times = []
        try:
            for _ in range(200):
                t = time.perf_counter()
                conn.request("GET", "/posters/%d" % mid)
                r = conn.getresponse()
                r.read()
                times.append(time.perf_counter() - t)
                expect_eq(r.status, 200)
        finally:
            conn.close()
        times.sort()
        print("    cached poster latency over 200 requests on loopback: median %.3f ms, p90 %.3f ms"
              % (statistics.median(times) * 1000, times[179] * 1000))


if __name__ == "__main__":
    run(deadline=240)
