#!/usr/bin/env python3
"""The parse pool: pages are parsed on parse_threads worker threads named moviesd-parse, at
a lower priority than the loop (SCHED_BATCH, nice 10), and their CPU time is spent there,
not on the loop; parse_threads 0 parses on the loop with the same answers; auto starts one
worker per online CPU, at most 4; stopping while pages wait to be parsed ends cleanly.
Threads are read from /proc/PID/task."""

import os
import signal

from harness import (expect, expect_answer, expect_eq, get_metrics, metric, run, scenario,
                     test, wait_until)

SCHED_OTHER, SCHED_BATCH = 0, 3
TICKS = os.sysconf("SC_CLK_TCK")


def threads(pid):
    """{tid: (name, nice, policy, cpu seconds)} of the process's threads."""
    out = {}
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        try:
            with open("%s/%s/comm" % (task, tid)) as f:
                name = f.read().strip()
            with open("%s/%s/stat" % (task, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:   # a thread that just ended
            continue
        # After the name: state is field 3, so field N is fields[N - 3].
        out[int(tid)] = (name, int(fields[16]), int(fields[38]),
                         (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def workers(pid):
    return {t: v for t, v in threads(pid).items() if v[0] == "moviesd-parse"}


@test
def workers_are_named_and_run_below_the_loop():
    with scenario(flags=["--parse-threads", "3"]) as (fake, d):
        pool = workers(d.pid)
        expect_eq(len(pool), 3, "moviesd-parse threads")
        for tid, (name, nice, policy, _) in pool.items():
            expect_eq((nice, policy), (10, SCHED_BATCH), "nice and policy of worker %d" % tid)
        main = threads(d.pid)[d.pid]
        expect_eq((main[1], main[2]), (0, SCHED_OTHER), "nice and policy of the loop")
        m = get_metrics(d)
        expect_eq(metric(m, "moviesd_parse_threads"), 3, "moviesd_parse_threads")
        expect_answer(d.get("/movies?city=beijing"), fake, "beijing")


@test
def auto_takes_the_online_cpus_up_to_four():
    with scenario() as (fake, d):
        want = max(1, min(4, os.sysconf("SC_NPROCESSORS_ONLN")))
        expect_eq(len(workers(d.pid)), want, "moviesd-parse threads by default")


def scrape_heavy(threads_flag):
    """Scrapes a 40-movie city whose pages each carry ~256 KB of markup; returns the movies
    and the CPU seconds (loop thread, parse workers) spent on it."""
    def setup(fake):
        fake.set_city("beijing", 40)
        fake.set_detail_padding(256 << 10)
    with scenario(flags=["--parse-threads", threads_flag, "--max-host-connections", "8"],
                  setup=setup) as (fake, d):
        before = threads(d.pid)
        doc = expect_answer(d.get("/movies?city=beijing", timeout=60), fake, "beijing")
        expect_eq((doc["complete"], doc["count"]), (True, 40), "complete, count")
        after = threads(d.pid)
        spent = {t: after[t][3] - before.get(t, (0, 0, 0, 0))[3] for t in after}
        loop = spent.pop(d.pid)
        pool = sum(v for t, v in spent.items() if after[t][0] == "moviesd-parse")
        return doc["movies"], loop, pool


@test
def parsing_runs_on_the_workers_with_the_same_answers():
    on_loop, loop0, pool0 = scrape_heavy("0")
    pooled, loop2, pool2 = scrape_heavy("2")
    print("    (CPU s: parse_threads 0: loop %.2f; parse_threads 2: loop %.2f, workers %.2f)"
          % (loop0, loop2, pool2))
    expect_eq(pool0, 0, "worker CPU with parse_threads 0")
    expect(pool2 > 2 * loop2, "workers spent %.2f s, the loop %.2f s: parsing is not on the "
           "workers" % (pool2, loop2))
    expect(loop0 > 2 * loop2, "the loop spent %.2f s parsing on its own and %.2f s with "
           "workers" % (loop0, loop2))
    expect_eq(pooled, on_loop, "movies parsed on workers and on the loop")


@test
def a_parse_backlog_holds_new_requests():
    """One worker, pages that take it long to parse, one connection fetching them fast: the
    fetcher stops starting requests once 4 pages wait for the worker (PARSE_BACKLOG_PER_THREAD),
    so the pages held never pile up beyond that and the one in flight."""
    def setup(fake):
        fake.set_city("beijing", 12)
        fake.set_detail_padding(256 << 10)
    flags = ["--parse-threads", "1", "--max-host-connections", "1"]
    with scenario(flags=flags, setup=setup) as (fake, d):
        d.complete_answers = False
        expect_eq(d.get("/movies?city=beijing").status, 200, "the listing's answer")
        peak = 0
        while True:
            m = get_metrics(d)
            peak = max(peak, metric(m, "moviesd_parse_queued"))
            if metric(m, "moviesd_details_pending") == 0:
                break
        print("    (most pages waiting for the worker: %d)" % peak)
        expect(peak >= 3, "the backlog never formed (peak %d): the test shows nothing" % peak)
        expect(peak <= 5, "%d pages waited for the one worker: the fetcher did not hold" % peak)
        doc = expect_answer(d.get("/movies?city=beijing&wait=details", timeout=90), fake,
                            "beijing")
        expect_eq(doc["complete"], True, "complete")


@test
def stopping_while_pages_wait_for_a_worker_ends_cleanly():
    def setup(fake):
        fake.set_city("beijing", 20)
        fake.set_detail_padding(1 << 20)
    flags = ["--parse-threads", "1", "--max-host-connections", "16"]
    with scenario(flags=flags, setup=setup, check_exit=False) as (fake, d):
        d.complete_answers = False
        expect_eq(d.get("/movies?city=beijing").status, 200, "the listing's answer")
        wait_until(lambda: metric(get_metrics(d), "moviesd_parse_queued") >= 3, 30,
                   "pages waiting for the one worker")
        d.signal(signal.SIGTERM)
        status = d.wait(20)
        expect_eq(status, 0, "exit status")
        expect(d.find_lines(r"INFO stopped"), "no 'stopped' line")
        expect(d.sanitizer_report() is None, "sanitizer report:\n%s" % d.sanitizer_report())


if __name__ == "__main__":
    run(deadline=300)
