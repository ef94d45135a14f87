#!/usr/bin/env python3
"""bench/side_by_side.py --quick runs every row to the end: its table has each row of ROWS
with a figure and, where the row has a target, met or not met; its chart is a PNG; and
README.md is left alone. Two runs: one with --skip-polite, whose table lacks that row alone;
one with --before, given the same daemon behind a wrapper that plays an older build (its
--help lacks --max-upstream-connections and it refuses that setting): every moviesd row then
has a before figure and a ratio, the seed's rows neither, and the table names the setting left
out. Skipped (exit 77), with the reason, when deps/bench.txt is not installed. The figures of a
smoke run are not checked: they mean nothing.

deps/bench.txt's Python packages are Debian's, so they serve Debian's python3: this test runs
the benchmark with the first of its own interpreter, python3 on PATH and /usr/bin/python3
that has them.
"""
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(REPO, "bench"))
from side_by_side import ROWS  # noqa: E402

MODULES = ("requests", "aiohttp", "bs4", "matplotlib")
# What the benchmark must measure: the seed's two scrapers, moviesd cold both ways, warm
# plain and gzip, cached latency idle and during cold scrapes, RSS.
EXPECTED_ROWS = ["seed_sequential", "seed_asyncio", "cold_fast", "cold_polite", "warm_plain",
                 "warm_gzip", "latency_idle", "latency_cold", "rss"]
daemon = os.environ.get("TEST_DAEMON_BIN") or os.path.join(REPO, "build", "moviesd")


def skip(reason):
    print("skipped: %s; scripts/install-deps.sh bench installs what is missing" % reason)
    sys.exit(77)


def python_with_modules():
    check = "import %s" % ", ".join(MODULES)
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and os.access(candidate, os.X_OK) and subprocess.run([candidate, "-c", check],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def readme_digest():
    with open(os.path.join(REPO, "README.md"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


sbin = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"      # nginx lives in sbin
for tool in ("wrk", "nginx"):
    if not shutil.which(tool, path=sbin):
        skip("no %s" % tool)
python = python_with_modules()
if python is None:
    skip("no python3 with %s" % ", ".join(MODULES))

failed = 0


def check(cond, what):
    global failed
    if not cond:
        failed += 1
        print("FAIL:", what)


SEED_ROWS = ("seed_sequential", "seed_asyncio")
HIDDEN = "--max-upstream-connections"    # a setting the benchmark passes
# An older build as the benchmark meets one: a setting missing from --help, and refused.
OLDER = """#!/bin/sh
for arg in "$@"; do
    if [ "$arg" = %(hidden)s ]; then echo "unknown setting $arg" >&2; exit 2; fi
done
if [ "$1" = --help ]; then %(daemon)s --help | grep -v -e '%(hidden)s '; exit 0; fi
exec %(daemon)s "$@"
"""
RATIO = r"\d+\.\d\d \((better|worse|same)\)"


def bench(out, *flags):
    """The table side_by_side.py --quick writes to out with flags, its rows and the run's
    exit code."""
    r = subprocess.run([python, os.path.join(REPO, "bench", "side_by_side.py"), "--quick",
                        "--out", out, "--daemon", daemon, "--wrk-seconds", "1",
                        "--latency-seconds", "1"] + list(flags),
                       capture_output=True, text=True, timeout=135)
    print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
    check(r.returncode == 0, "side_by_side.py %s exited %d" % (" ".join(flags), r.returncode))
    table_path = os.path.join(out, "results.md")
    table = open(table_path, encoding="utf-8").read() if os.path.exists(table_path) else ""
    check("**Smoke run (--quick)" in table, "the table does not say it is a smoke run")
    png = os.path.join(out, "results.png")
    data = open(png, "rb").read() if os.path.exists(png) else b""
    check(data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20000,
          "results.png is not a chart (%d bytes)" % len(data))
    rows = [line for line in table.splitlines() if line.startswith("| ") and " | " in line]
    return table, rows


def check_rows(rows, keys, columns):
    """Each row of keys once, with a figure; with a target, a verdict; and nothing else."""
    check(len(rows) == len(keys) + 1, "%d table lines, expected a header and %d rows"
          % (len(rows), len(keys)))
    found = {}
    for key, label in ROWS:
        row = [line for line in rows if line.startswith("| %s | " % label)]
        if key not in keys:
            check(not row, "row %s is there: %r" % (key, row))
            continue
        check(len(row) == 1, "row %s (%s) missing" % (key, label))
        if not row:
            continue
        cells = [c.strip() for c in row[0].strip("|").split(" | ")]
        found[key] = cells
        if len(cells) != columns:
            check(False, "row %s has %d cells, not %d: %r" % (key, len(cells), columns, row[0]))
            continue
        check(cells[1] not in ("", "—"), "row %s has no figure: %r" % (key, row[0]))
        if cells[-3] != "—":
            check(cells[-2].startswith(("met", "**not met**")),
                  "row %s has a target but no verdict: %r" % (key, row[0]))
    return found


check([key for key, _ in ROWS] == EXPECTED_ROWS, "the benchmark's rows are %r" % ROWS)
readme = readme_digest()
with tempfile.TemporaryDirectory(prefix="moviesd-bench-smoke-") as out:
    table, rows = bench(out, "--skip-polite")
    check_rows(rows, [k for k in EXPECTED_ROWS if k != "cold_polite"], 5)
    check("--skip-polite" in table, "the table does not say the polite row was left out")
    check("Before" not in rows[0] if rows else False, "a before column without --before")

with tempfile.TemporaryDirectory(prefix="moviesd-bench-smoke-") as out:
    older = os.path.join(out, "older-moviesd")
    with open(older, "w") as f:
        f.write(OLDER % {"hidden": HIDDEN, "daemon": shlex.quote(os.path.abspath(daemon))})
    os.chmod(older, 0o755)
    table, rows = bench(out, "--before", older, "--before-name", "the same build")
    cells = check_rows(rows, EXPECTED_ROWS, 7)
    check(bool(rows) and "| Before (the same build) | This ÷ before |" in rows[0],
          "no before column and ratio: %r" % rows[:1])
    for key, row in cells.items():
        if len(row) != 7:
            continue
        if key in SEED_ROWS:
            check(row[2:4] == ["—", "—"], "seed row %s has a before figure: %r" % (key, row))
            continue
        check(row[2] not in ("", "—"), "row %s has no before figure: %r" % (key, row))
        pattern = "p50 %s, p99 %s" % (RATIO, RATIO) if key.startswith("latency") else RATIO
        check(re.fullmatch(pattern, row[3]) is not None, "row %s has no ratio: %r" % (key, row))
        check("**before:**" in row[6], "row %s has no note on the before build: %r" % (key, row))
    check("`%s`" % HIDDEN in table, "the table does not name the setting left out")
check(readme_digest() == readme, "a --quick run changed README.md")
print("bench smoke: %s" % ("FAILED" if failed else "ok"))
sys.exit(1 if failed else 0)
