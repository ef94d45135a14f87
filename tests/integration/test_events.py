#!/usr/bin/env python3
"""GET /movies/events: the city's answer, then one event per movie whose details landed,
then complete, as Server-Sent Events; heartbeats while nothing happens; the stream closes
at completion or at request_deadline; bad cities get JSON errors; and the streams count
against the connection limit like any connection."""

import json
import signal
import socket
import time

from harness import (expect, expect_eq, expect_error, run, scenario, serve_once, subject_path,
                     test, wait_until)
from sse_client import SseStream

SPACED = ["--min-request-interval-ms", "200", "--max-requests-per-minute", "0"]


def events_of(items):
    return [(i[1], i[2]) for i in items if i[0] == "event"]


@test
def answer_then_movies_then_complete():
    with scenario(SPACED, movies=6) as (fake, d):
        s = SseStream(d.port, "/movies/events?city=beijing")
        expect_eq(s.status, 200)
        expect_eq(s.headers.get("content-type"), "text/event-stream; charset=utf-8")
        expect_eq(s.headers.get("cache-control"), "no-store")
        items = list(s.items(timeout=30))
        s.close()
        expect(s.closed, "the stream closes after complete")
        expect_eq(items[0][0:2], ("retry", 2000))
        events = events_of(items)
        names = [n for n, _ in events]
        expect_eq(names[0], "answer", "the first event")
        expect_eq(names[-1], "complete", "the last event")
        first = json.loads(events[0][1])
        expect_eq(first["complete"], False)
        expect_eq(first["count"], 6)
        awaited = {m["id"] for m in first["movies"] if m["detail_status"] == "pending"}
        expect(len(awaited) >= 5, "movie pages still awaited at the first event: %r" % awaited)
        movies = [json.loads(data) for n, data in events if n == "movie"]
        expect_eq(names[1:-1], ["movie"] * len(movies), "only movie events in between")
        expect_eq(sorted(m["id"] for m in movies), sorted(awaited), "one event per movie that landed")
        for m in movies:
            expect_eq(m["detail_status"], "ok")
            expect(m["directors"], "a landed movie carries its details: %r" % m)
        expect_eq(json.loads(events[-1][1]), {"count": 6, "pending": 0})
        # Each movie event came as its page landed, not all at the end.
        times = [i[3] for i in items if i[0] == "event" and i[1] == "movie"]
        expect(times[-1] - times[0] >= 0.5, "movie events spread over the scrape: %r" % times)
        # Now cached and complete: the answer and complete at once, then the end.
        s = SseStream(d.port, "/movies/events?city=beijing")
        events = events_of(list(s.items(timeout=5)))
        s.close()
        expect(s.closed)
        expect_eq([n for n, _ in events], ["answer", "complete"])
        expect_eq(json.loads(events[0][1])["complete"], True)


@test
def heartbeats_and_request_deadline():
    def setup(fake):
        fake.add_fault(r"^/subject/", "hang")
    with scenario(["--events-heartbeat", "1", "--request-deadline", "4"], movies=3,
                  setup=setup) as (fake, d):
        s = SseStream(d.port, "/movies/events?city=beijing")
        items = list(s.items(timeout=15))
        s.close()
        expect(s.closed, "the stream closed at request_deadline")
        end = time.monotonic() - s.started
        expect(3.8 <= end <= 6.0, "closed %.2f s after the request (deadline 4 s)" % end)
        events = events_of(items)
        expect_eq([n for n, _ in events], ["answer"], "no movie landed, no complete")
        beats = [i[2] for i in items if i[0] == "comment" and i[1] == "heartbeat"]
        expect(len(beats) >= 3, "a heartbeat a second: %r" % items)
        # The daemon still answers, and the stream's access line says 200.
        expect_eq(d.get("/healthz").status, 200)
        wait_until(lambda: d.find_lines(r"GET /movies/events\?city=beijing 200 "), 5, "access line")


@test
def bad_cities_get_json_errors():
    with scenario() as (fake, d):
        expect_error(d.get("/movies/events"), 400, "missing_city")
        expect_error(d.get("/movies/events?city=Bei-jing"), 400, "invalid_city")
        expect_error(d.get("/movies/events?city=atlantis"), 404, "unknown_city")
        expect_eq(fake.total, 0, "no upstream request for a bad city")
        r = d.request("POST", "/movies/events?city=beijing")
        expect_error(r, 405, "method_not_allowed")


@test
def upstream_error_before_the_listing_is_json():
    def setup(fake):
        fake.add_fault(r"^/cinema/later/beijing/$", 404)
    with scenario(setup=setup) as (fake, d):
        expect_error(d.get("/movies/events?city=beijing"), 404, "unknown_city")


@test
def streams_count_against_the_connection_limit():
    def setup(fake):
        fake.add_fault(r"^/subject/", "hang")
    with scenario(["--max-connections", "2", "--max-connections-per-ip", "0",
                   "--request-deadline", "60"], movies=2, setup=setup) as (fake, d):
        held = [SseStream(d.port, "/movies/events?city=beijing") for _ in range(2)]
        for s in held:
            expect_eq(s.status, 200)
            first = next(i for i in s.items(timeout=5) if i[0] == "event")
            expect_eq(first[1], "answer")
        expect(not serve_once(d.port, timeout=1.5), "a third connection is not served")
        held[0].close()
        wait_until(lambda: serve_once(d.port), 5, "served again once a stream's client left")
        held[1].close()


@test
def client_leaving_ends_its_stream():
    def setup(fake):
        fake.add_fault(r"^/subject/", "hang")
    with scenario(["--request-deadline", "60"], movies=2, setup=setup) as (fake, d):
        s = SseStream(d.port, "/movies/events?city=beijing")
        expect_eq(s.status, 200)
        list(s.items(timeout=1))
        s.sock.shutdown(socket.SHUT_RDWR)
        s.close()
        wait_until(lambda: d.find_lines(r"GET /movies/events\?city=beijing 200 .*client gone|"
                                        r"GET /movies/events\?city=beijing 200 .*connection lost"),
                   5, "the stream's request ended when its client left")


@test
def shutdown_ends_streams():
    def setup(fake):
        fake.add_fault(r"^/subject/", "hang")
    with scenario(["--request-deadline", "60"], movies=2, setup=setup) as (fake, d):
        s = SseStream(d.port, "/movies/events?city=beijing")
        expect_eq(next(i for i in s.items(timeout=5) if i[0] == "event")[1], "answer")
        d.signal(signal.SIGTERM)
        list(s.items(timeout=5))
        expect(s.closed, "the stream ended when the daemon began to stop")
        s.close()
        expect_eq(d.wait(10), 0)


if __name__ == "__main__":
    run(deadline=180)
