#!/usr/bin/env python3
"""GET /: the page, in headless Chromium (Debian's chromium, over the DevTools protocol on a
pipe: tests/integration/cdp.py). For a cold city whose movie pages land one after another,
the page's HTML already holds one card per movie; in the browser the cards fill in as the
details arrive over /movies/events, until complete; a title holding <script> shows as text
and runs nothing; nothing breaks the page's CSP or logs an error; at 390 px there is no
sideways scrolling. The screenshot is kept as build/artifacts/page.png. Skipped, with the
reason, without chromium (deps/test.txt installs it)."""

import base64
import os
import re
import sys
import time

from harness import expect, expect_eq, run, scenario, test, wait_until
import cdp

MOVIES = 12
HOSTILE = "<script>alert(1)</script>午夜列车"
ARTIFACTS = os.path.join(os.path.dirname(os.environ.get("TEST_DAEMON_BIN") or
                                         os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "build", "moviesd")), "artifacts")
# Movie pages start this far apart: the details land over a few seconds.
SPACED = ["--min-request-interval-ms", "450", "--max-requests-per-minute", "0"]


def setup(fake):
    fake.set_title(fake.city_ids("beijing")[1], HOSTILE)


def card_states(page):
    return page.evaluate("""Array.from(document.querySelectorAll('#cards .card')).map(c =>
        [c.dataset.id, c.dataset.status, c.querySelector('.directors').textContent])""")


def problems(page):
    """Console errors, exceptions, CSP reports and dialogs seen by the tab, but for the
    posters' own loads: /posters/<id> is the poster proxy's route, not the page's."""
    out = []
    for e in page.events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append(("exception", p["exceptionDetails"].get("text")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(("console", p.get("args")))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            url = entry.get("url", "")
            if entry.get("source") == "network" and re.search(r"/(posters/\d+|favicon\.ico)$", url):
                continue
            out.append(("log", entry.get("source"), entry.get("text"), url))
        elif m == "Page.javascriptDialogOpening":
            out.append(("dialog", p.get("message")))
    return out


@test
def page_fills_in_while_details_arrive():
    with scenario(SPACED, movies=MOVIES, setup=setup) as (fake, d):
        ids = [str(i) for i in fake.city_ids("beijing")]
        with cdp.Chromium(width=390, height=844) as browser:
            page = browser.new_page()
            page.call("Page.navigate", url="http://127.0.0.1:%d/?city=beijing" % d.port)
            page.wait_event("Page.loadEventFired", timeout=15)
            first = card_states(page)
            expect_eq([c[0] for c in first], ids, "one card per movie, in the listing's order")
            pending_at_load = sum(1 for c in first if c[1] == "pending")
            expect(pending_at_load >= MOVIES // 2,
                   "most details still on their way when the page loaded: %r" % first)
            expect(all(c[2] == "" for c in first if c[1] == "pending"),
                   "a pending card has no directors yet")
            # Fills in: a moment with some cards done and some not, then all done.
            seen_partial = wait_until(
                lambda: (lambda s: 0 < sum(c[1] == "ok" for c in s) < MOVIES and s)(card_states(page)),
                20, "some cards filled in while others wait")
            wait_until(lambda: page.evaluate("document.body.dataset.complete") == "true", 30,
                       "the page says complete")
            last = card_states(page)
            expect(all(c[1] == "ok" and c[2] != "" for c in last),
                   "every card has its details: %r" % last)
            print("at load %d of %d cards pending; later %d filled in, %d waiting"
                  % (pending_at_load, MOVIES, sum(c[1] == "ok" for c in seen_partial),
                     sum(c[1] == "pending" for c in seen_partial)))
            expect_eq(page.evaluate("document.getElementById('status').textContent"),
                      "%d movies coming soon" % MOVIES)
            # The hostile title is text: nothing ran, nothing was parsed as markup.
            expect_eq(page.evaluate("document.querySelector('#m-%s .title').textContent" % ids[1]),
                      HOSTILE)
            expect_eq(page.evaluate("document.querySelectorAll('script').length"), 1)
            expect_eq(page.evaluate("document.querySelectorAll('#cards script').length"), 0)
            rating = page.evaluate("Array.from(document.querySelectorAll('.rating'))"
                                   ".map(r => r.textContent).filter(t => t)")
            expect(rating and all(re.fullmatch(r"\d+\.\d", r) for r in rating),
                   "ratings as numbers: %r" % rating)
            # A phone's width: no sideways scrolling.
            expect_eq(page.evaluate("window.innerWidth"), 390)
            width = page.evaluate("document.scrollingElement.scrollWidth")
            expect(width <= 390, "scrollWidth %r at 390 px" % width)
            expect_eq(problems(page), [], "console errors, CSP reports or dialogs")
            shot = page.call("Page.captureScreenshot", format="png", timeout=20)
            os.makedirs(ARTIFACTS, exist_ok=True)
            with open(os.path.join(ARTIFACTS, "page.png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print("screenshot: %s" % os.path.join(ARTIFACTS, "page.png"))
        # The stream's connection counted and ended like any request.
        wait_until(lambda: d.find_lines(r"GET /movies/events\?city=beijing 200 "), 5,
                   "the stream's access line")


@test
def server_renders_the_cards():
    with scenario(SPACED, movies=MOVIES, setup=setup) as (fake, d):
        r = d.get("/?city=beijing")
        expect_eq(r.status, 200)
        expect_eq(r.headers.get("content-type"), "text/html; charset=utf-8")
        expect_eq(r.headers.get("content-security-policy"), "default-src 'self'")
        html = r.body.decode("utf-8")
        expect_eq(html.count('<li class="card"'), MOVIES, "one card per movie in the HTML")
        expect('data-complete="false"' in html, "the first answer is the listing's")
        expect("&lt;script&gt;alert(1)&lt;/script&gt;午夜列车" in html, "the title escaped")
        expect("<script>alert" not in html)
        expect('<meta name="viewport" content="width=device-width, initial-scale=1">' in html)
        for path, ctype in (("/page.js", "text/javascript"), ("/page.css", "text/css")):
            a = d.get(path)
            expect_eq(a.status, 200, path)
            expect_eq(a.headers.get("content-type"), ctype + "; charset=utf-8")
            again = d.get(path, headers={"If-None-Match": a.headers["etag"]})
            expect_eq(again.status, 304, path + " revalidated")
        picker = d.get("/")
        expect_eq(picker.status, 200)
        expect('<option value="beijing">北京 beijing</option>' in picker.body.decode("utf-8"))
        bad = d.get("/?city=Bei-jing")
        expect_eq(bad.status, 400)
        expect_eq(bad.headers.get("content-type"), "text/html; charset=utf-8")
        expect_eq(d.get("/?city=atlantis").status, 404)


if __name__ == "__main__":
    if cdp.chromium_path() is None:
        print("skipped: no chromium (deps/test.txt installs it)")
        sys.exit(77)
    run(deadline=150)
