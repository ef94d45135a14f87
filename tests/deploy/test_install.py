#!/usr/bin/env python3
"""`cmake --install` with prefix /usr puts every file where the systemd unit and the man page
say it is: the daemon at ExecStart's path, the config at its --config path, the units where
systemd looks, the man page in section 8. The installed unit then verifies silently.

It configures and builds its own tree (prefix /usr, daemon target only) in a temporary folder
and installs with DESTDIR, so nothing lands on this machine's real /usr or /etc.
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


def run(argv, **kw):
    """Runs a build step, bounded; returns the CompletedProcess."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


def main():
    for tool in ("cmake", "systemd-analyze"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is missing")
            return dt.MISSING
    c = dt.Checks("install")
    with open(os.path.join(dt.REPO, "systemd", "moviesd.service")) as f:
        service = f.read()
    m = re.search(r"^ExecStart=(\S+) --config (\S+)", service, re.M)
    if not c.check(m is not None, "ExecStart names the binary and --config FILE"):
        return c.finish()
    exe, conf = m.group(1), m.group(2)

    with tempfile.TemporaryDirectory(prefix="moviesd-install.") as tmp:
        build, dest = os.path.join(tmp, "build"), os.path.join(tmp, "dest")
        r = run(["cmake", "-S", dt.REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                 "-DCMAKE_INSTALL_PREFIX=/usr", "-DMOVIESD_BUILD_TESTS=OFF"])
        if not c.check(r.returncode == 0, "configure with prefix /usr", r.stderr[-2000:]):
            return c.finish()
        r = run(["cmake", "--build", build, "--target", "moviesd", "-j", str(os.cpu_count() or 2)])
        if not c.check(r.returncode == 0, "build the daemon", (r.stdout + r.stderr)[-2000:]):
            return c.finish()
        r = run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest))
        print(r.stdout.strip())
        if not c.check(r.returncode == 0, "cmake --install with DESTDIR", r.stderr[-2000:]):
            return c.finish()

        def there(path):
            return os.path.join(dest, path.lstrip("/"))

        c.check(os.access(there(exe), os.X_OK), f"daemon installed at ExecStart's {exe}")
        c.check(os.path.isfile(there(conf)), f"config installed at --config's {conf}")
        for unit in ("moviesd.service", "moviesd.socket"):
            c.check(os.path.isfile(there("/usr/lib/systemd/system/" + unit)),
                    f"{unit} installed in /usr/lib/systemd/system")
        c.check(os.path.isfile(there("/usr/share/man/man8/moviesd.8")),
                "man page installed in /usr/share/man/man8")

        # The installed unit, pointed at the installed binary, verifies silently.
        installed = there("/usr/lib/systemd/system/moviesd.service")
        if os.path.isfile(installed) and os.access(there(exe), os.X_OK):
            units = os.path.join(tmp, "units")
            os.mkdir(units)
            with open(installed) as f:
                text = f.read().replace(f"ExecStart={exe} ", f"ExecStart={there(exe)} ", 1)
            with open(os.path.join(units, "moviesd.service"), "w") as f:
                f.write(text)
            shutil.copy(there("/usr/lib/systemd/system/moviesd.socket"), units)
            r = run(["systemd-analyze", "verify", "--man=no",
                     os.path.join(units, "moviesd.service"), os.path.join(units, "moviesd.socket")])
            out = (r.stdout + r.stderr).strip()
            c.check(r.returncode == 0 and out == "", "installed units verify silently", out)
            r = run([there(exe), "--version"])
            c.check(r.returncode == 0 and r.stdout.strip() != "", "installed daemon runs --version",
                    f"exit {r.returncode}: {r.stdout}{r.stderr}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
