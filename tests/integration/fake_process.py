"""The fake upstream (tests/fake_upstream.py's FakeDouban) in a child process of its own.

    from fake_process import FakeProcess

    faults = [(r"^/cinema/later/err[a-z]+/$", 500, {}),
              (r"^/cinema/later/blockcity/$", "block_page", {"times": 1})]
    with FakeProcess(latency_ms=50, faults=faults) as fake, running(fake, flags) as d:
        ...

For tests whose own process is too busy to serve pages: in it, FakeDouban's threads would
share the GIL with the test's client threads, and the fake, not the daemon, would decide how
fast pages come. Every [a-z]{1,32} city exists (any_city) with DEFAULT_MOVIES movies; each
fault is (pattern, kind, params) as FakeDouban.add_fault(pattern, kind, **params) takes it
("times" among the params), applied in order. The object offers what running() and
expect_doc() need of a fake: port, base_url, city_ids(), set_city(). The child is this file
run as a script: it prints its port, serves until its stdin closes, and is tracked by the
harness and stopped by PID.

    with FakeProcess(latency_ms=100, movies=40, block_after=35, record=True) as fake: ...
    fake.requests, fake.trips      # after the block: FakeDouban.snapshot(), limiter_trips()

movies sets how many movies every city lists, distinct_ids gives every city beyond
CITY_ORDER movies of its own, block_after turns on FakeDouban's limiter, and record has the child hand back, as it stops, its record of every request (start and end are
time.monotonic(), one clock for every process of the machine).

Python 3.11 standard library only.
"""

import json
import os
import select
import subprocess
import sys

from harness import TestFailure, fake_upstream, track_child, untrack_child

START_TIMEOUT = 10.0     # seconds for the child to print its port
STOP_TIMEOUT = 5.0       # seconds for it to exit once its stdin is closed


class FakeProcess:
    """with FakeProcess(latency_ms, faults) as fake: a FakeDouban (any_city) in a child
    process, stopped (stdin closed, then SIGKILL) and reaped at the end."""

    def __init__(self, latency_ms=0, faults=(), movies=fake_upstream.DEFAULT_MOVIES,
                 block_after=None, record=False, distinct_ids=False):
        self.latency_ms = latency_ms
        self.faults = [list(f) for f in faults]
        self.options = {"movies": movies, "block_after": block_after, "record": record,
                        "distinct_ids": distinct_ids}
        self.proc = None
        self.port = None
        self.requests = None        # with record, once stopped: [fake_upstream.Request]
        self.trips = None           # with record, once stopped: [(monotonic time, path)]

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                      str(self.latency_ms), json.dumps(self.faults),
                                      json.dumps(self.options)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        track_child(self.proc)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.__exit__()
            raise TestFailure("the fake upstream process did not start: %r" % line)
        self.port = int(line)
        return self

    def __exit__(self, *exc):
        out = b""
        try:
            out = self.proc.communicate(timeout=STOP_TIMEOUT)[0]    # closes stdin first
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        untrack_child(self.proc)
        if self.options["record"] and exc and exc[0] is None:     # the block ended well
            try:
                record = json.loads(out)
            except ValueError:
                raise TestFailure("the fake upstream process handed back no record: %r"
                                  % out[:200])
            self.requests = []
            for r in record["requests"]:
                req = fake_upstream.Request(r["method"], r["path"], r["query"], r["headers"],
                                            r["start"])
                req.end, req.status, req.fault = r["end"], r["status"], r["fault"]
                self.requests.append(req)
            self.trips = [tuple(t) for t in record["trips"]]
        return False

    @property
    def base_url(self):
        """"http://127.0.0.1:PORT" of the child's server."""
        return "http://127.0.0.1:%d" % self.port

    def city_ids(self, city):
        """The ids the child lists for city (every city has the same number of movies)."""
        if self.options["distinct_ids"] and city not in fake_upstream.CITY_ORDER:
            return fake_upstream.distinct_city_ids(city, self.options["movies"])
        return fake_upstream.city_ids(city, self.options["movies"])

    def set_city(self, city):
        """Every city exists already (any_city): its ids."""
        return self.city_ids(city)


def child_main(argv):
    """The child: python3 fake_process.py LATENCY_MS FAULTS_JSON [OPTIONS_JSON]. Serves until
    stdin closes; then, with the option record, prints its record as one JSON document."""
    latency_ms, faults = int(argv[0]), json.loads(argv[1])
    options = json.loads(argv[2]) if len(argv) > 2 else {}
    fake = fake_upstream.FakeDouban(any_city=True, default_movies=options.get(
        "movies", fake_upstream.DEFAULT_MOVIES), distinct_ids=options.get("distinct_ids", False))
    fake.set_latency(latency_ms)
    fake.set_block_after(options.get("block_after"))
    for pattern, kind, params in faults:
        fake.add_fault(pattern, kind, **params)
    fake.start()
    print(fake.port, flush=True)
    sys.stdin.read()                # until the test closes stdin or dies
    fake.stop()
    if options.get("record"):
        json.dump({"requests": [{"method": r.method, "path": r.path, "query": r.query,
                                 "headers": r.headers, "start": r.start, "end": r.end,
                                 "status": r.status, "fault": r.fault}
                                for r in fake.snapshot()],
                   "trips": fake.limiter_trips()}, sys.stdout)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
