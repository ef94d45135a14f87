#!/usr/bin/env python3
"""The systemd units are clean and tight: `systemd-analyze verify` prints nothing at all for
moviesd.service and moviesd.socket, and `systemd-analyze security --offline=true` rates the
service's exposure at most 1.3. The man page renders without a warning and has the sections
a section 8 page needs.

verify insists that ExecStart's binary exists, and /usr/bin/moviesd is only there once
installed, so the units are verified as copies whose ExecStart names an executable that
exists (the built daemon, or /bin/true); every other line is verified as shipped.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

MAX_EXPOSURE = 1.3
UNITS = os.path.join(dt.REPO, "systemd")


def verify(c, workdir):
    """Checks that verify is silent and succeeds on both units."""
    target = os.environ.get("TEST_DAEMON_BIN")
    if not target or not os.access(target, os.X_OK):
        target = "/bin/true"
    with open(os.path.join(UNITS, "moviesd.service")) as f:
        service = f.read()
    c.check(re.search(r"^ExecStart=/usr/bin/moviesd ", service, re.M) is not None,
            "ExecStart runs /usr/bin/moviesd, where an install with prefix /usr puts it")
    copy = re.sub(r"^ExecStart=/usr/bin/moviesd ", f"ExecStart={target} ", service, flags=re.M)
    with open(os.path.join(workdir, "moviesd.service"), "w") as f:
        f.write(copy)
    shutil.copy(os.path.join(UNITS, "moviesd.socket"), workdir)
    argv = ["systemd-analyze", "verify", "--man=no",
            os.path.join(workdir, "moviesd.service"), os.path.join(workdir, "moviesd.socket")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    c.check(r.returncode == 0 and out == "", "systemd-analyze verify prints nothing",
            f"exit {r.returncode}: {out}")


def security(c):
    """Checks the offline exposure score of the shipped service."""
    argv = ["systemd-analyze", "security", "--offline=true", "--no-pager",
            os.path.join(UNITS, "moviesd.service")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for moviesd\.service:\s*([0-9.]+)", r.stdout)
    score = float(m.group(1)) if m else None
    print(f"exposure: {score}")
    for line in r.stdout.splitlines():
        if line.startswith("✗"):
            print("  " + " ".join(line.split()))
    c.check(score is not None and score <= MAX_EXPOSURE,
            f"exposure {score} <= {MAX_EXPOSURE}", r.stdout[-2000:] + r.stderr)


def man_page(c):
    """Checks docs/moviesd.8: its sections, and groff's warnings when groff is there."""
    page = os.path.join(dt.REPO, "docs", "moviesd.8")
    with open(page) as f:
        text = f.read()
    wanted = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "ENVIRONMENT", "SIGNALS",
              "EXIT STATUS", "SEE ALSO"]
    found = [m.strip('"') for m in re.findall(r"^\.SH\s+(.+)$", text, re.M)]
    missing = [s for s in wanted if s not in found]
    c.check(not missing, "man page has every section", f"missing {missing}")
    if shutil.which("groff") is None:
        print("groff is missing: man page rendering not checked")
        return
    r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True,
                       timeout=60)
    c.check(r.returncode == 0 and r.stderr.strip() == "", "man page renders without warnings",
            r.stderr.strip())


def main():
    if shutil.which("systemd-analyze") is None:
        print(f"FAIL: systemd-analyze is missing")
        return dt.MISSING
    c = dt.Checks("units")
    with tempfile.TemporaryDirectory(prefix="moviesd-units.") as workdir:
        verify(c, workdir)
    security(c)
    man_page(c)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
