#!/usr/bin/env python3
"""lib/redis.c against a real redis-server (through tests/redis_driver.c): one pipelined
connection plus one for subscriptions, AUTH and SELECT, unix sockets, and what happens when
Redis dies mid-command, comes back, or stops answering: every pending command is called back
once with an error, the client goes down with one log line, reconnects with back-off and
works again."""

import os
import time

from harness import TempDir, expect, expect_eq, run, run_cli, test, wait_until
from redis_support import Driver, RedisServer, require_redis


@test
def pipelined_in_order_on_one_connection():
    """Fifty commands written at once come back in order, each answered once, over one
    command connection (and one subscription connection)."""
    with RedisServer() as server, Driver(server.url) as d:
        d.wait_up()
        d.wait_subscribed()
        ids = [d.send("cmd", "INCR", "counter") for _ in range(50)]
        replies = [d.reply(i) for i in ids]
        expect_eq([r["reply"] for r in replies], list(range(1, 51)), "INCR replies in order")
        for i in ids:
            expect_eq(len(d.events_of(i, "reply")), 1, "answers to %s" % i)
        clients = [l for l in server.cmd("CLIENT", "LIST").decode().splitlines()
                   if "cmd=client" not in l]
        kinds = sorted("sub=1" in l for l in clients)
        expect_eq(kinds, [False, True], "the driver's connections: one for commands, one "
                                        "subscribed (%r)" % clients)
        st = d.call("stats")
        expect(st["round_trips"] >= 51, "round trips counted: %r" % st)
        expect_eq(st["in_flight"], 0, "in flight")


@test
def auth_select_and_unix_socket():
    """A password from a file, a db from the URL, a unix socket; a wrong password keeps the
    client down with one line naming Redis's refusal."""
    with TempDir() as tmp, RedisServer(password="s3cret pass") as server:
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("s3cret pass\n")
        with Driver(server.url + "/3", env={"TEST_REDIS_PASSWORD_FILE": pw}) as d:
            d.wait_up()
            expect_eq(d.call("cmd", "SET", "where", "db3")["reply"], "OK", "SET")
        expect_eq(server.cmd("GET", "where", db=3), b"db3", "the key, in db 3")
        expect_eq(server.cmd("GET", "where"), None, "the key, not in db 0")
        with Driver("unix://%s?db=2" % server.socket_path,
                    env={"TEST_REDIS_PASSWORD_FILE": pw}) as d:
            d.wait_up()
            d.wait_subscribed()   # the subscription connection authenticates too
            expect_eq(d.call("cmd", "SET", "via", "socket")["reply"], "OK", "SET over the socket")
        expect_eq(server.cmd("GET", "via", db=2), b"socket", "the key, in db 2")
        # A host name, resolved without blocking the loop.
        with Driver("redis://localhost:%d/1" % server.port,
                    env={"TEST_REDIS_PASSWORD_FILE": pw}) as d:
            d.wait_up()
            expect_eq(d.call("cmd", "SET", "by", "name")["reply"], "OK", "SET by host name")
        expect_eq(server.cmd("GET", "by", db=1), b"name", "the key, in db 1")
        with open(pw, "w") as f:
            f.write("wrong\n")
        with Driver(server.url, env={"TEST_REDIS_PASSWORD_FILE": pw}) as d:
            wait_until(lambda: d.log_lines("WRONGPASS"), 5, "the refusal logged")
            time.sleep(0.5)   # several attempts, still one line
            expect_eq(len(d.log_lines("redis:")), 1, "log lines\n" + d.tail())
            r = d.call("cmd", "PING")
            expect_eq(r["result"], "down", "a command while refused")
            expect("WRONGPASS" in r["error"], "the reason given: %r" % r["error"])


@test
def killed_mid_command_then_back():
    """Redis killed with commands in flight: each is called back once with a connection
    error, the client goes down logging one line for the whole outage, commands fail at once
    while it is down, and the client is back, without a restart, when Redis is."""
    with RedisServer() as server, Driver(server.url, timeout_ms=5000) as d:
        d.wait_up()
        expect_eq(d.call("cmd", "SET", "k", "v")["reply"], "OK", "SET")
        server.pause()   # the commands below reach the socket but get no reply
        ids = [d.send("cmd", "GET", "k") for _ in range(5)]
        time.sleep(0.1)
        expect(all(not d.events_of(i, "reply") for i in ids), "answered while stopped")
        killed = time.monotonic()
        server.kill()
        replies = [d.reply(i, timeout=3) for i in ids]
        expect_eq([r["result"] for r in replies], ["connection"] * 5, "results")
        expect(max(r["at"] for r in replies) - killed < 1.0, "errors within a second of the "
               "kill, not after the 5 s timeout")
        wait_until(lambda: d.state_events() == ["up", "down"], 2, "down")
        t0 = time.monotonic()
        r = d.call("cmd", "GET", "k")
        expect_eq(r["result"], "down", "a command while down")
        expect(r["at"] - t0 < 0.2, "failed at once (%.3fs)" % (r["at"] - t0))
        time.sleep(1.6)   # attempts at +0.1, +0.3, +0.7, +1.5 s
        expect_eq(len(d.log_lines("WARN")), 1, "one line for the outage\n" + d.tail())
        server.start()   # the same port, empty
        wait_until(lambda: d.state_events() == ["up", "down", "up"], 10, "up again")
        expect_eq(d.call("cmd", "SET", "k", "w")["reply"], "OK", "SET after the restart")
        wait_until(lambda: d.log_lines("answers again"), 2, "a line when it is back")
        expect_eq(len(d.log_lines("WARN")), 1, "one warning for the outage\n" + d.tail())
        st = d.call("stats")
        expect_eq(st["outages"], 1, "outages")
        expect(st["reconnects"] >= 4, "reconnects %d" % st["reconnects"])
        expect_eq(st["errors"]["connection"], 5, "connection errors")
        for i in ids:
            expect_eq(len(d.events_of(i, "reply")), 1, "answers to %s" % i)


@test
def stopped_redis_times_out():
    """A stopped (SIGSTOP) Redis: a command fails with a timeout after redis_timeout_ms, the
    client goes down, and it is back after SIGCONT."""
    with RedisServer() as server, Driver(server.url, timeout_ms=200) as d:
        d.wait_up()
        server.pause()
        t0 = time.monotonic()
        r = d.call("cmd", "GET", "k", timeout=3)
        took = r["at"] - t0
        expect_eq(r["result"], "timeout", "result")
        expect_eq(r["error"], "no reply within 200 ms", "error")
        expect(0.18 <= took < 1.0, "failed after %.3fs" % took)
        wait_until(lambda: d.state_events() == ["up", "down"], 1, "down")
        wait_until(lambda: d.log_lines("lost (no reply within 200 ms)"), 2, "the line")
        server.resume()
        wait_until(lambda: d.state_events() == ["up", "down", "up"], 10, "up again")
        expect_eq(d.call("cmd", "PING")["reply"], "PONG", "PING after SIGCONT")
        expect_eq(len(d.log_lines("WARN")), 1, "one line for the outage\n" + d.tail())
        expect_eq(d.call("stats")["errors"]["timeout"], 1, "timeouts counted")


@test
def freed_with_commands_pending():
    """The client freed with commands in flight calls each back once with "closed", and the
    process exits cleanly (under ASan: no use after free, no leak)."""
    with RedisServer() as server:
        d = Driver(server.url, timeout_ms=5000).start()
        d.wait_up()
        server.pause()
        ids = [d.send("cmd", "GET", "k") for _ in range(3)]
        time.sleep(0.1)
        d.quit()
        for i in ids:
            got = d.events_of(i, "reply")
            expect_eq([e["result"] for e in got], ["closed"], "answers to %s" % i)
        server.resume()


@test
def password_file_read_at_start():
    """The daemon reads redis_password_file at start: one it cannot read, or one given with
    a password in redis_url too, stops it with the reason (status 2, as any bad setting)."""
    with TempDir() as tmp:
        missing = os.path.join(tmp, "missing")
        rc, out, err = run_cli(["--check-config", "--redis-url", "redis://127.0.0.1:1",
                                "--redis-password-file", missing])
        expect_eq(rc, 2, "exit status (stderr %r)" % err)
        expect_eq(err.strip(), "moviesd: redis_password_file: %s: No such file or directory"
                  % missing, "the reason")
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("secret\n")
        rc, out, err = run_cli(["--check-config", "--redis-url", "redis://:x@127.0.0.1:1",
                                "--redis-password-file", pw])
        expect_eq(rc, 2, "exit status (stderr %r)" % err)
        expect("redis_url holds a password too" in err, err)
        rc, out, err = run_cli(["--check-config", "--redis-url", "redis://127.0.0.1:1",
                                "--redis-password-file", pw])
        expect_eq(rc, 0, "exit status (stderr %r)" % err)
        expect("redis_password_file = %s\n" % pw in out, out)
        expect("secret" not in out.replace(pw, ""), "the password printed")
        rc, out, err = run_cli(["--check-config", "--redis-url", "rediss://h"])
        expect_eq(rc, 2, "exit status")
        expect("--redis-url: rediss:// (TLS) is not supported" in err, err)


if __name__ == "__main__":
    require_redis()
    run(deadline=120, needs_daemon=False)
