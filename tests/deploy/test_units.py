#!/usr/bin/env python3
"""The systemd units are clean and tight: `systemd-analyze verify` prints nothing at all for
moviesd.service and moviesd.socket, and `systemd-analyze security --offline=true` rates the
service's exposure at most 1.3. The man page renders without a warning, has the sections
a section 8 page needs and a date in .TH, and cites only pages that exist.

The service is a template (systemd/moviesd.service.in) whose ExecStart the install fills in;
verify insists that ExecStart's binary exists, so it is verified rendered with the built
daemon's path; every other line is verified as shipped. LimitNOFILE covers what the default
settings can open.
"""
import datetime
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
# Pages the man page may cite that this machine may lack, and the package that has them.
NOT_INSTALLED_HERE = {("sd_notify", "3"): "libsystemd-dev"}


def render(workdir, exe):
    """Writes the service as an install with prefix /usr renders it (systemd/render-units.cmake),
    but with ExecStart naming exe, and the socket beside it; returns the service's path."""
    with open(os.path.join(UNITS, "moviesd.service.in")) as f:
        text = f.read()
    text = text.replace("@MOVIESD_EXEC@", exe).replace("@MOVIESD_CONFIG@", "/etc/moviesd/moviesd.conf")
    path = os.path.join(workdir, "moviesd.service")
    with open(path, "w") as f:
        f.write(text)
    shutil.copy(os.path.join(UNITS, "moviesd.socket"), workdir)
    return path


def verify(c, workdir):
    """Checks that verify is silent and succeeds on both units."""
    with open(os.path.join(UNITS, "moviesd.service.in")) as f:
        template = f.read()
    c.check(re.search(r"^ExecStart=@MOVIESD_EXEC@ --config @MOVIESD_CONFIG@$", template, re.M),
            "ExecStart names the installed binary and config, filled in at install time")
    service = render(workdir, dt.moviesd_bin())
    argv = ["systemd-analyze", "verify", "--man=no", service, os.path.join(workdir, "moviesd.socket")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    c.check(r.returncode == 0 and out == "", "systemd-analyze verify prints nothing",
            f"exit {r.returncode}: {out}")


def fd_limit(c):
    """Checks that LimitNOFILE's soft value covers the default settings' descriptors: one per API
    connection, one per upstream connection, and spares for the loop, listener and logs."""
    with open(os.path.join(UNITS, "moviesd.service.in")) as f:
        m = re.search(r"^LimitNOFILE=(\d+)(?::(\d+))?$", f.read(), re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIESD_")}
    r = subprocess.run([dt.moviesd_bin(), "--check-config"], capture_output=True, text=True,
                       timeout=30, env=env)
    settings = dict(re.findall(r"^(\w+) = (\S+)", r.stdout, re.M))
    need = int(settings.get("max_connections", 0)) + int(settings.get("max_upstream_connections", 0)) + 64
    soft = int(m.group(1)) if m else 0
    hard = int(m.group(2) or m.group(1)) if m else 0
    print(f"LimitNOFILE={soft}:{hard}, the defaults need {need}")
    c.check(m is not None and soft >= need and hard >= soft,
            f"LimitNOFILE ({soft}) covers max_connections + max_upstream_connections + 64 ({need})")


def security(c, workdir):
    """Checks the offline exposure score of the shipped service."""
    argv = ["systemd-analyze", "security", "--offline=true", "--no-pager",
            render(workdir, "/usr/bin/moviesd")]
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
    """Checks docs/moviesd.8: its sections, the date in .TH, the pages it cites, and groff's
    warnings when groff is there."""
    page = os.path.join(dt.REPO, "docs", "moviesd.8")
    with open(page) as f:
        text = f.read()
    wanted = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "ENVIRONMENT", "SIGNALS",
              "EXIT STATUS", "SEE ALSO"]
    found = [m.strip('"') for m in re.findall(r"^\.SH\s+(.+)$", text, re.M)]
    missing = [s for s in wanted if s not in found]
    c.check(not missing, "man page has every section", f"missing {missing}")
    th = re.search(r"^\.TH\b.*$", text, re.M)
    th_line = th.group(0) if th else "no .TH line"
    m = re.match(r'\.TH\s+MOVIESD\s+8\s+"?(\d{4}-\d{2}-\d{2})"?\s', th_line)
    try:
        dated = m is not None and datetime.date.fromisoformat(m.group(1)) is not None
    except ValueError:
        dated = False
    c.check(dated, "man page has a YYYY-MM-DD date in .TH", th_line)
    cited_pages(c, text)
    if shutil.which("groff") is None:
        print("groff is missing: man page rendering not checked")
        return
    r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True,
                       timeout=60)
    c.check(r.returncode == 0 and r.stderr.strip() == "", "man page renders without warnings",
            r.stderr.strip())


def cited_pages(c, text):
    """Checks that every page cited as name(section) exists: moviesd's own in docs/, the
    others as installed pages (man -w), or known to come with a package not installed here."""
    cited = sorted(set((name.replace("\\-", "-"), sec) for name, sec in
                       re.findall(r"^\.BR\s+(\S+)\s+\((\d)\)", text, re.M)))
    c.check(cited, "man page cites other pages", "no .BR name (N) references")
    have_man = shutil.which("man") is not None
    if not have_man:
        print("man is missing: cited pages outside moviesd not checked")
    for name, sec in cited:
        if name.startswith("moviesd"):
            path = os.path.join(dt.REPO, "docs", f"{name}.{sec}")
            c.check(os.path.isfile(path), f"cited {name}({sec}) is shipped", f"no {path}")
        elif have_man:
            r = subprocess.run(["man", "-w", sec, name], capture_output=True, text=True, timeout=30)
            known = (name, sec) in NOT_INSTALLED_HERE
            c.check(r.returncode == 0 or known, f"cited {name}({sec}) exists",
                    f"man -w {sec} {name}: {r.stderr.strip()}")
            if r.returncode != 0 and known:
                print(f"{name}({sec}) is not installed here (package "
                      f"{NOT_INSTALLED_HERE[(name, sec)]})")


def main():
    if shutil.which("systemd-analyze") is None:
        print(f"FAIL: systemd-analyze is missing")
        return dt.MISSING
    c = dt.Checks("units")
    with tempfile.TemporaryDirectory(prefix="moviesd-units.") as workdir:
        verify(c, workdir)
    with tempfile.TemporaryDirectory(prefix="moviesd-units.") as workdir:
        security(c, workdir)
    fd_limit(c)
    man_page(c)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
