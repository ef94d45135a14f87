#!/usr/bin/env python3
"""lib/fleet.c against a real redis-server, with several tests/redis_driver.c processes as
replicas: the shared budget (spacing and per-minute cap over a shortened window, on Redis's
clock), the shared breaker, locks (exclusive, renewed, taken over when the owner dies),
waiting for a flight (woken by its message, or by a poll when the message is lost) and
shared values in envelopes (corrupt ones refused)."""

import time

from harness import expect, expect_eq, run, test, wait_until
from redis_support import Driver, RedisServer, require_redis

WINDOW_MS = 2000


def key(kind, name):
    return "moviesd:v1:%s:%s" % (kind, name)


@test
def budget_holds_across_three_replicas():
    """Three replicas asking as fast as they are allowed for 6 s: no two starts closer than
    the spacing, never more than the cap in any window, and the cap reached (so the test
    could fail)."""
    spacing, cap, seconds = 60, 8, 6
    with RedisServer() as server:
        drivers = [Driver(server.url, window_ms=WINDOW_MS).start() for _ in range(3)]
        try:
            for d in drivers:
                d.wait_up()
            loops = [(d, d.send("budget_loop", spacing, cap, seconds)) for d in drivers]
            for d, rid in loops:
                d.reply(rid, timeout=seconds + 5, event="loop_done")
            grants = sorted((e["ms"], i) for i, (d, rid) in enumerate(loops)
                            for e in d.events_of(rid, "grant"))
            starts = [ms for ms, _ in grants]
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            most = max(sum(1 for s in starts if t - WINDOW_MS < s <= t) for t in starts)
            print("  %d grants (%s per replica), smallest gap %d ms, most in a %d ms window %d"
                  % (len(starts), [sum(1 for _, i in grants if i == k) for k in range(3)],
                     min(gaps), WINDOW_MS, most))
            expect(min(gaps) >= spacing, "smallest gap %d ms < %d" % (min(gaps), spacing))
            expect(most <= cap, "%d starts in one window, cap %d" % (most, cap))
            expect_eq(most, cap, "the cap reached")
            expect(len(starts) >= cap * (seconds * 1000 // WINDOW_MS) - cap,
                   "only %d grants in %d s" % (len(starts), seconds))
            expect(len({i for _, i in grants}) >= 2, "grants went to one replica only")
            # Nothing without a TTL: the window and the spacing expire.
            expect(0 < server.cmd("PTTL", key("budget", "starts")) <= WINDOW_MS, "window TTL")
            expect(server.cmd("PTTL", key("budget", "next")) <= spacing, "spacing TTL")
        finally:
            for d in drivers:
                d.quit()


@test
def budget_prefetch_share():
    """A prefetch also counts against its own cap; other starts do not."""
    with RedisServer() as server, Driver(server.url, window_ms=WINDOW_MS) as d:
        d.wait_up()
        verdicts = [d.call("budget", 0, 10, 2)["verdict"] for _ in range(3)]
        expect_eq(verdicts, ["granted", "granted", "wait"], "prefetches against a share of 2")
        expect_eq(d.call("budget", 0, 10, 0)["verdict"], "granted", "a listing still goes")
        wait = d.call("budget", 0, 10, 2)
        expect(0 < wait["ms"] <= WINDOW_MS + 1, "the wait %r" % wait)


@test
def breaker_is_shared():
    """A trip by one replica is seen by another (check and budget); a trip while open changes
    nothing; repeats double the pause fleet-wide up to the max; a good page resets it;
    Retry-After wins when longer; the pause is the key's expiry."""
    with RedisServer() as server, Driver(server.url) as a, Driver(server.url) as b:
        a.wait_up()
        b.wait_up()
        t = a.call("trip", 1, 3, 0)
        expect_eq((t["opened"], t["ms"]), (True, 1000), "first trip")
        c = b.call("check")
        expect(800 < c["ms"] <= 1000, "seen by the other replica: %r" % c)
        expect_eq(b.call("budget", 0, 0, 0)["verdict"], "blocked", "the other replica's budget")
        again = b.call("trip", 1, 3, 0)
        expect_eq(again["opened"], False, "a trip while open")
        expect(again["ms"] <= 1000, "and the pause unchanged: %r" % again)
        expect_eq(a.call("breaker_ok")["ms"] > 0, True, "breaker_ok while open reports it open")
        expect(0 < server.cmd("PTTL", key("breaker", "level")) <= 6000, "level TTL 2x max")
        wait_until(lambda: b.call("check")["ms"] == 0, 3, "the pause over by its expiry")
        expect_eq(b.call("budget", 0, 0, 0)["verdict"], "granted", "granted again")
        expect_eq(b.call("trip", 1, 3, 0)["ms"], 2000, "a repeat doubles, from another replica")
        server.cmd("PEXPIRE", key("breaker", "open"), 1)   # skip the wait
        time.sleep(0.01)
        expect_eq(a.call("trip", 1, 3, 0)["ms"], 3000, "doubling stops at max")
        server.cmd("PEXPIRE", key("breaker", "open"), 1)
        time.sleep(0.01)
        expect_eq(a.call("breaker_ok")["ms"], 0, "breaker_ok when closed")
        expect_eq(server.cmd("EXISTS", key("breaker", "level")), 0, "the level forgotten")
        expect_eq(b.call("trip", 1, 3, 0)["ms"], 1000, "back to the first pause")
        server.cmd("PEXPIRE", key("breaker", "open"), 1)
        time.sleep(0.01)
        expect_eq(b.call("trip", 1, 3, 5)["ms"], 5000, "Retry-After longer than the pause")
        expect_eq(a.call("stats")["breaker_trips"] + b.call("stats")["breaker_trips"], 5,
                  "trips that opened it")


@test
def lock_exclusive_renewed_released():
    """One owner at a time; a renewal extends it and keeps it across its TTL; a renewal or a
    release by a token no longer holding it changes nothing and marks the lock lost."""
    with RedisServer() as server, Driver(server.url) as a, Driver(server.url) as b:
        a.wait_up()
        b.wait_up()
        got = a.call("lock", "city:x", 600)
        expect_eq(got["result"], "acquired", "first")
        held = b.call("lock", "city:x", 600)
        expect_eq((held["result"], held["holder"]), ("held", got["token"]), "second")
        expect_eq(server.cmd("GET", key("lock", "city:x")).decode(), got["token"], "the key")
        expect(0 < server.cmd("PTTL", key("lock", "city:x")) <= 600, "its TTL")
        expect_eq(a.call("renew", "city:x", 3000)["yes"], True, "renewed")
        expect(2000 < server.cmd("PTTL", key("lock", "city:x")) <= 3000, "extended")
        # Held past several TTLs of 300 ms by its own renewals (every 100 ms).
        a.call("renew", "city:x", 300)
        time.sleep(1.2)
        expect_eq(b.call("lock", "city:x", 600)["result"], "held", "still held after 1.2 s")
        expect(0 < server.cmd("PTTL", key("lock", "city:x")) <= 300, "TTL kept short")
        # Someone else's now (as after an expiry and a takeover).
        server.cmd("SET", key("lock", "city:x"), "another-token", "PX", 5000)
        expect_eq(a.call("renew", "city:x", 300)["yes"], False, "a renewal of a lock lost")
        expect_eq(a.call("lost", "city:x")["lost"], True, "lost")
        a.call("release", "city:x")
        time.sleep(0.1)
        expect_eq(server.cmd("GET", key("lock", "city:x")), b"another-token",
                  "a release of a lock lost leaves the other owner's")
        server.cmd("DEL", key("lock", "city:x"))
        expect_eq(b.call("lock", "city:x", 600)["result"], "acquired", "free again")
        expect_eq(a.call("stats")["locks_lost"], 1, "locks lost")


@test
def watcher_woken_by_the_message():
    """A waiter that only polls every 5 s is woken within a fraction of a second by the
    owner's notification, and the flight is marked done for later pollers."""
    with RedisServer() as server, Driver(server.url) as a, \
            Driver(server.url, poll_ms=5000) as b:
        a.wait_up()
        b.wait_up()
        b.wait_subscribed()
        token = a.call("lock", "f1", 5000)["token"]
        held = b.call("lock", "f1", 5000)
        rid = b.send("watch", "f1", held["holder"], 5000, 10000)
        time.sleep(0.3)
        expect(not b.events_of(rid, "watch"), "woken before the notification")
        sent = time.monotonic()
        a.call("notify", "f1")
        w = b.reply(rid, timeout=3, event="watch")
        expect_eq(w["result"], "done", "result")
        expect(w["at"] - sent < 0.5, "woken %.3fs after the notification" % (w["at"] - sent))
        expect_eq(server.cmd("GET", key("done", "f1")).decode(), token, "the done marker")
        expect(0 < server.cmd("PTTL", key("done", "f1")) <= 30000, "its TTL")
        expect_eq(server.cmd("EXISTS", key("lock", "f1")), 0, "the lock released")
        # A watch that starts after the flight ended sees it done at once.
        late = b.call("watch", "f1", token, 5000, 10000)
        expect_eq(late["result"], "done", "a late waiter")
        expect(late["seconds"] < 0.5, "at once (%.3fs)" % late["seconds"])


@test
def watcher_polls_when_the_message_is_lost():
    """The flight marked done without a message: the waiter finds out by its next poll."""
    with RedisServer() as server, Driver(server.url) as a, \
            Driver(server.url, poll_ms=200) as b:
        a.wait_up()
        b.wait_up()
        token = a.call("lock", "f2", 5000)["token"]
        rid = b.send("watch", "f2", token, 5000, 10000)
        time.sleep(0.3)
        expect(not b.events_of(rid, "watch"), "done before anything happened")
        # What fleet_notify does, without the PUBLISH.
        server.cmd("SET", key("done", "f2"), token, "PX", 30000)
        server.cmd("DEL", key("lock", "f2"))
        marked = time.monotonic()
        w = b.reply(rid, timeout=3, event="watch")
        expect_eq(w["result"], "done", "result")
        expect(w["at"] - marked < 0.6, "found %.3fs after (poll 200 ms)" % (w["at"] - marked))


@test
def owner_killed_then_taken_over():
    """The owner dies (SIGKILL): its lock expires within its TTL and one waiter takes it;
    another waiter then waits for the new owner, and is woken when it finishes."""
    with RedisServer() as server, Driver(server.url, poll_ms=100) as b, \
            Driver(server.url, poll_ms=100) as c:
        a = Driver(server.url).start()
        for d in (a, b, c):
            d.wait_up()
        token = a.call("lock", "f3", 400)["token"]
        rb = b.send("watch", "f3", token, 400, 10000)
        rc = c.send("watch", "f3", token, 400, 10000)
        time.sleep(0.5)   # past the TTL: the owner's renewals keep it
        expect(not b.events_of(rb, "watch") and not c.events_of(rc, "watch"),
               "taken over from a live owner")
        killed = time.monotonic()
        a.kill()
        waiters = [(rb, b), (rc, c)]
        first = None
        deadline = time.monotonic() + 3
        while first is None and time.monotonic() < deadline:
            for k, (rid, d) in enumerate(waiters):
                got = d.events_of(rid, "watch")
                if got:
                    first = (k, got[0])
                    break
            time.sleep(0.01)
        expect(first is not None, "nobody took over within 3 s")
        k, w = first
        expect_eq(w["result"], "takeover", "the first waiter's result")
        took = w["at"] - killed
        expect(0.15 < took < 0.4 + 0.1 + 0.3, "taken over %.3fs after the kill" % took)
        expect_eq(server.cmd("GET", key("lock", "f3")).decode(), w["token"], "the new owner's")
        owner = waiters.pop(k)[1]
        (other_rid, other), = waiters
        time.sleep(0.3)
        expect(not other.events_of(other_rid, "watch"), "the second waiter took it too")
        owner.call("notify", "f3")
        w2 = other.reply(other_rid, timeout=3, event="watch")
        expect_eq(w2["result"], "done", "the second waiter, when the new owner is done")
        print("  takeover %.0f ms after SIGKILL (lock TTL 400 ms, poll 100 ms)" % (took * 1000))


@test
def released_lock_taken_over_at_once():
    """An owner giving up (fleet_lock_release) wakes a waiter to take over without waiting
    for a poll."""
    with RedisServer() as server, Driver(server.url) as a, \
            Driver(server.url, poll_ms=5000) as b:
        a.wait_up()
        b.wait_up()
        b.wait_subscribed()
        token = a.call("lock", "f4", 10000)["token"]
        rid = b.send("watch", "f4", token, 10000, 20000)
        time.sleep(0.2)
        sent = time.monotonic()
        a.call("release", "f4")
        w = b.reply(rid, timeout=3, event="watch")
        expect_eq(w["result"], "takeover", "result")
        expect(w["at"] - sent < 0.5, "after %.3fs" % (w["at"] - sent))
        expect_eq(server.cmd("GET", key("lock", "f4")).decode(), w["token"], "the new owner")


@test
def watch_times_out_and_cancels():
    with RedisServer() as server, Driver(server.url) as a, Driver(server.url, poll_ms=100) as b:
        a.wait_up()
        b.wait_up()
        token = a.call("lock", "f5", 5000)["token"]
        w = b.call("watch", "f5", token, 5000, 400)
        expect_eq(w["result"], "timeout", "result")
        expect(0.38 < w["seconds"] < 1.0, "after %.3fs" % w["seconds"])
        rid = b.send("watch", "f5", token, 5000, 10000)
        b.call("cancel_watch", rid)
        a.call("notify", "f5")
        time.sleep(0.3)
        expect_eq(b.events_of(rid, "watch"), [], "a cancelled watch called back")


@test
def values_shared_and_corruption_refused():
    """Binary fields round-trip between replicas with their TTL; a missing key, a corrupt
    value and a key of another type are told apart, and none stops the replica."""
    with RedisServer() as server, Driver(server.url, timeout_ms=2000) as a, \
            Driver(server.url, timeout_ms=2000) as b:
        a.wait_up()
        b.wait_up()
        body = bytes(range(256)) * 4000   # 1 MB with every byte value
        fields = {"body": body.hex(), "gzip": "1f8b0800", "status": b"200".hex(), "etag": ""}
        r = a.call("vset", "answer", "beijing", 60000,
                   *["%s=%s" % kv for kv in fields.items()])
        expect_eq(r["status"], "ok", "set")
        got = b.call("vget", "answer", "beijing")
        expect_eq(got["result"], "found", "get")
        expect_eq(got["fields"], fields, "fields")
        expect(59000 < server.cmd("PTTL", key("answer", "beijing")) <= 60000, "TTL")
        expect_eq(b.call("vget", "answer", "nowhere")["result"], "missing", "missing")
        corrupt = {
            "cut": b"MVENV 1 1\nbody 10\nabc",
            "garbage": b"\x00\xff" * 50,
            "newer": b"MVENV 2 0\n",
            "json": b'{"movies": []}',
        }
        for name, value in corrupt.items():
            server.cmd("SET", key("answer", name), value)
            v = b.call("vget", "answer", name)
            expect_eq(v["result"], "corrupt", name)
            expect(v["error"], "a reason for %s" % name)
        server.cmd("HSET", key("answer", "hash"), "a", "b")
        v = b.call("vget", "answer", "hash")
        expect_eq(v["result"], "error", "a key of another type")
        expect("WRONGTYPE" in v["error"], v["error"])
        expect_eq(b.call("vget", "lock", "x")["result"], "refused", "a kind of the fleet's own")
        expect_eq(b.call("vget", "answer", "beijing")["result"], "found", "still working")
        expect_eq(len(b.log_lines("; ignored")), len(corrupt), "corrupt values logged")


@test
def redis_down_fails_fast():
    """With Redis gone every primitive answers with an error at once: the caller falls back."""
    with RedisServer() as server, Driver(server.url) as d:
        d.wait_up()
        token = d.call("lock", "f6", 5000)["token"]
        rid = d.send("watch", "f6", token, 5000, 10000)
        server.kill()
        w = d.reply(rid, timeout=3, event="watch")
        expect_eq(w["result"], "error", "a watch when Redis dies")
        wait_until(lambda: d.state_events() == ["up", "down"], 2, "down")
        t0 = time.monotonic()
        answers = [d.call("budget", 100, 10, 0)["verdict"], d.call("lock", "f7", 100)["result"],
                   d.call("check")["status"], d.call("vget", "answer", "x")["result"],
                   d.call("watch", "f6", token, 100, 5000)["result"]]
        expect_eq(answers, ["error"] * 5, "answers while down")
        expect(time.monotonic() - t0 < 1.0, "at once")


@test
def round_trip_figures():
    """Serial round trips on loopback: PING, and a budget ask (one EVAL of the budget
    script); and PINGs pipelined. Printed for the record; checked only to be sane."""
    with RedisServer() as server, Driver(server.url, timeout_ms=2000) as d:
        d.wait_up()
        n = 3000
        ping = d.call("bench", n, "PING", timeout=30)
        budget = d.call("bench_budget", n, timeout=30)
        piped = d.call("bench_pipelined", n * 10, "PING", timeout=30)
        for b in (ping, budget, piped):
            expect_eq(b["result"], "ok", "bench %r" % b)
        print("  serial PING %.1f us, budget ask %.1f us (script cost %.1f us), pipelined PING "
              "%.2f us" % (ping["mean_us"], budget["mean_us"], budget["mean_us"] - ping["mean_us"],
                           piped["mean_us"]))
        expect(ping["mean_us"] < 5000 and budget["mean_us"] < 10000, "loopback round trips")


if __name__ == "__main__":
    require_redis()
    run(deadline=180, needs_daemon=False)
