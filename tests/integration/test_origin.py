#!/usr/bin/env python3
"""Same-origin fetching: moviesd fetches only from the upstream's origin (scheme, host and
port, as libcurl reads them). A movie page or a listing redirecting to another port of the
upstream's host, or to another spelling of its address (2130706433, 0x7f000001,
017700000001, 127.1, [::ffff:127.0.0.1]), is never followed: a canary listening there sees
no connection, the movie's detail_error (or the listing's error) is upstream_error, nothing
the canary would answer reaches a client, and the breaker stays closed. Redirects within
the origin still work, and a redirect to Douban's captcha or login host is still a block."""

import socket
import threading

from harness import (breaker_closed, expect, expect_answer, expect_eq, expect_error,
                     listing_path, run, scenario, subject_path, test, wait_until)

MARKER = "canary-answer-7f3a"
# What the canary answers, should anything reach it: a movie page's title, so a followed
# redirect would show in original_title or in an error message.
CANARY_PAGE = ("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n"
               "\r\n<html><head><title>%s</title></head><body><h1><span property=\"v:itemreviewed\">"
               "%s</span></h1><div id=\"mainpic\"></div></body></html>" % (MARKER, MARKER)).encode()

# Host spellings of 127.0.0.1 that the resolver and curl both read as that address.
NUMERIC_FORMS = ["2130706433", "0x7f000001", "017700000001", "127.1", "[::ffff:127.0.0.1]"]


class Canary:
    """A listener on 127.0.0.1 that records every connection it accepts (and answers it
    with MARKER), on a thread; stop() closes it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    first = conn.recv(200)
                except OSError:
                    first = b""
                with self.lock:
                    self.connections.append((peer, first))
                try:
                    conn.sendall(CANARY_PAGE)
                except OSError:
                    pass

    def count(self):
        with self.lock:
            return len(self.connections)

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


def reaches(host, port):
    """Whether a plain connection to host (a URL's spelling: brackets for IPv6) gets to port."""
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, addr in infos:
        s = socket.socket(family, kind, proto)
        s.settimeout(2)
        try:
            s.connect(addr)
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False


def control(canary):
    """The spellings that do reach the canary from this machine (the tests below would prove
    nothing for a spelling that could not): each is connected to once, then forgotten."""
    forms = [f for f in ["127.0.0.1"] + NUMERIC_FORMS if reaches(f, canary.port)]
    wait_until(lambda: canary.count() == len(forms), 5, "the canary to record the control connections")
    with canary.lock:
        canary.connections.clear()
    expect("127.0.0.1" in forms and "2130706433" in forms,
           "the canary is not reachable as 127.0.0.1 and 2130706433: %r" % forms)
    return forms


def shapes(canary, fake):
    """Location values that leave the origin: another port of the upstream's host (where
    the canary listens), other spellings of its address on that port and on the upstream's
    own port, another scheme, protocol-relative forms, a user name, another name."""
    c, p = canary.port, fake.port
    out = ["http://127.0.0.1:%d/subject/1/" % c, "//127.0.0.1:%d/subject/1/" % c,
           "https://127.0.0.1:%d/subject/1/" % c, "http://localhost:%d/subject/1/" % c,
           "http://127.0.0.1:%d@127.0.0.1:%d/subject/1/" % (p, c)]
    out += ["http://%s:%d/subject/1/" % (h, c) for h in NUMERIC_FORMS]
    # The upstream's own port, spelled otherwise: the fake would see these on /followed/.
    out += ["http://%s:%d/followed/%d/" % (h, p, i) for i, h in enumerate(NUMERIC_FORMS)]
    out += ["//2130706433:%d/followed/9/" % p]
    return out


def expect_nothing_from_canary(canary, fake, *answers):
    expect_eq(canary.count(), 0, "connections to the canary: %r" % canary.connections[:3])
    expect_eq(fake.count_matching(r"^/followed/"), 0, "requests of a redirect target on the "
              "upstream's port spelled otherwise")
    for r in answers:
        expect(MARKER not in r.body.decode("utf-8", "replace"), "the canary's answer reached a client")


@test
def movie_page_redirects_off_the_origin_are_not_followed():
    """One movie page per shape answers 302 to it: every such movie has detail_error
    upstream_error (status 302) and its page was asked once; one movie redirected within
    the origin is complete; the canary sees no connection."""
    canary = Canary()
    try:
        forms = control(canary)
        holder = {}

        def setup(fake):
            locations = shapes(canary, fake)
            ids = fake.set_city("beijing", len(locations) + 1)
            holder["bad"] = dict(zip(ids, locations))
            holder["good"] = ids[-1]
            for mid, loc in holder["bad"].items():
                fake.add_fault("^%s$" % subject_path(mid), "redirect", location=loc)
            fake.add_fault("^%s$" % subject_path(ids[-1]), "redirect", times=1,
                           location="%s?moved=1" % subject_path(ids[-1]))
        with scenario(setup=setup) as (fake, d):
            r = d.get("/movies?city=beijing&wait=details", timeout=60)
            doc = expect_answer(r, fake, "beijing")
            by_id = {int(m["id"]): m for m in doc["movies"]}
            for mid, loc in holder["bad"].items():
                err = by_id[mid]["detail_error"]
                expect(err is not None and err["code"] == "upstream_error" and err["status"] == 302,
                       "movie redirected to %s: detail_error %r" % (loc, err))
                expect_eq(fake.count(subject_path(mid)), 1, "requests of the page redirecting to %s" % loc)
            good = by_id[holder["good"]]
            expect(good["detail_error"] is None and good["detail_status"] == "ok",
                   "the movie redirected within the origin: %r" % good)
            expect_eq(fake.count(subject_path(holder["good"])), 2, "the in-origin redirect and its target")
            expect_nothing_from_canary(canary, fake, r)
            expect(breaker_closed(d), "a redirect off the origin opened the breaker")
            expect(d.find_lines(r"WARN .*redirected off the upstream's origin to http://127\.0\.0\.1:%d "
                                r"\(host written '2130706433'\)" % canary.port),
                   "no warning naming the refused redirect")
            expect(not d.find_lines(MARKER), "the canary's answer reached the log")
            print("    (%d redirect shapes, %d address spellings reaching the canary directly, "
                  "0 canary connections)" % (len(holder["bad"]), len(forms)))
    finally:
        canary.stop()


@test
def listing_redirects_off_the_origin_are_not_followed():
    """A listing answering 302 off the origin: 502 upstream_error naming no canary content,
    no movie page asked, the canary untouched; a listing redirected within the origin is
    answered."""
    canary = Canary()
    try:
        control(canary)
        cities = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu", "wuhan", "hangzhou"]
        holder = {}

        def setup(fake):
            c, p = canary.port, fake.port
            locations = ["http://127.0.0.1:%d/cinema/later/beijing/" % c,
                         "http://2130706433:%d/cinema/later/beijing/" % c,
                         "http://0x7f000001:%d/" % c, "http://017700000001:%d/" % c,
                         "http://[::ffff:127.0.0.1]:%d/" % c, "http://127.1:%d/" % c,
                         "http://2130706433:%d/followed/0/" % p]
            holder["bad"] = dict(zip(cities, locations))
            for city, loc in holder["bad"].items():
                fake.add_fault("^%s$" % listing_path(city), "redirect", location=loc)
            fake.add_fault("^%s$" % listing_path("xian"), "redirect", times=1,
                           location="%s?from=redirect" % listing_path("xian"))
        with scenario(setup=setup) as (fake, d):
            answers = []
            for city, loc in holder["bad"].items():
                r = d.get("/movies?city=%s" % city)
                answers.append(r)
                expect_error(r, 502, "upstream_error", "listing redirected to %s" % loc)
                expect_eq(fake.count(listing_path(city)), 1, "listing requests of %s" % city)
            expect_eq(fake.count_matching(r"^/subject/"), 0, "movie pages asked")
            answers.append(d.get("/movies?city=xian&wait=details", timeout=60))
            expect_answer(answers[-1], fake, "xian")
            expect_eq(fake.count(listing_path("xian")), 2, "the in-origin redirect and its target")
            expect_nothing_from_canary(canary, fake, *answers)
            expect(breaker_closed(d), "a redirect off the origin opened the breaker")
    finally:
        canary.stop()


@test
def redirect_to_the_login_host_is_a_block():
    """302 to accounts.douban.com, Douban's login page, is a block as sec.douban.com is:
    503 upstream_blocked and the breaker open; it is not followed."""
    def setup(fake):
        fake.add_fault("^%s$" % listing_path("beijing"), "redirect",
                       location="https://accounts.douban.com/passport/login?redir=https%3A%2F%2Fmovie.douban.com%2F")
    with scenario(flags=["--retries", "0"], setup=setup) as (fake, d):
        expect_error(d.get("/movies?city=beijing"), 503, "upstream_blocked", "redirect to the login host")
        expect(not breaker_closed(d), "the breaker did not open")
        expect_eq(fake.total, 1, "upstream requests")


if __name__ == "__main__":
    run(deadline=180)
