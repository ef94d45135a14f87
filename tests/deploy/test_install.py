#!/usr/bin/env python3
"""`cmake --install` lands every file where the installed systemd unit says it is, in each of
the three layouts people use:

- `cmake --install build --prefix P`: everything under P, nothing outside it;
- `DESTDIR=D cmake --install build` (default prefix /usr/local): everything under D/usr/local;
- `-DCMAKE_INSTALL_PREFIX=/usr` with DESTDIR: /usr/bin, /etc/moviesd, /usr/lib/systemd/system,
  /usr/share/man/man8, as a distribution package has them; and a tree configured for /usr
  installed with `--prefix P` keeps to P.

In each, the unit's ExecStart names the installed binary and its --config the installed config,
the installed unit verifies silently, and the installed daemon runs. It configures and builds
its own tree (daemon target only) in a temporary folder, so nothing lands on this machine's
/usr or /etc.
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


def files_under(root):
    """Every file below root, as paths relative to it, sorted."""
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)


def check_layout(c, name, root, prefix, confdir, manifest, tmp):
    """Checks one installed tree: root is where files really are (P, or DESTDIR), prefix the
    install prefix as the unit must name it, confdir the config's folder as installed."""
    def there(path):
        return path if root == prefix else os.path.join(root, path.lstrip("/"))

    listing = files_under(root)
    print(f"--- layout {name}: {len(listing)} files under {root}")
    for f in listing:
        print("   ", f)
    exe = f"{prefix}/bin/moviesd"
    conf = f"{confdir}/moviesd.conf"
    unitdir = f"{prefix}/lib/systemd/system"
    c.check(os.access(there(exe), os.X_OK), f"{name}: daemon at {exe}")
    c.check(os.path.isfile(there(conf)), f"{name}: config at {conf}")
    c.check(os.path.isfile(there(f"{prefix}/share/man/man8/moviesd.8")),
            f"{name}: man page in {prefix}/share/man/man8")
    for unit in ("moviesd.service", "moviesd.socket"):
        c.check(os.path.isfile(there(f"{unitdir}/{unit}")), f"{name}: {unit} in {unitdir}")
    installed = there(f"{unitdir}/moviesd.service")
    if not os.path.isfile(installed):
        return
    text = open(installed).read()
    m = re.search(r"^ExecStart=(\S+) --config (\S+)$", text, re.M)
    c.check(m is not None and m.group(1) == exe and m.group(2) == conf,
            f"{name}: ExecStart runs {exe} --config {conf}", m.group(0) if m else text[:400])
    c.check("@MOVIESD_" not in text, f"{name}: no placeholder left in the unit")
    # The manifest names files as the running system will see them (without DESTDIR): each
    # is under the prefix or the config folder, and is exactly what landed under root.
    with open(manifest) as f:
        logical = sorted(f.read().split())
    stray = [p for p in logical if not (p.startswith(prefix + "/") or p.startswith(confdir + "/"))]
    c.check(not stray, f"{name}: every file under {prefix} or {confdir}", "\n".join(stray))
    base = prefix if root == prefix else "/"
    landed = sorted(os.path.join(base, f) for f in listing)
    c.check(landed == logical, f"{name}: what landed under {root} is what was installed",
            f"landed {landed}, manifest {logical}")

    # verify wants ExecStart's binary to exist at that path: point a copy at the real file.
    units = os.path.join(tmp, "units-" + name)
    os.mkdir(units)
    with open(os.path.join(units, "moviesd.service"), "w") as f:
        f.write(text.replace(f"ExecStart={exe} ", f"ExecStart={there(exe)} ", 1))
    shutil.copy(there(f"{unitdir}/moviesd.socket"), units)
    r = run(["systemd-analyze", "verify", "--man=no",
             os.path.join(units, "moviesd.service"), os.path.join(units, "moviesd.socket")])
    out = (r.stdout + r.stderr).strip()
    c.check(r.returncode == 0 and out == "", f"{name}: installed units verify silently", out)
    r = run([there(exe), "--check-config", "--config", there(conf)],
            env={k: v for k, v in os.environ.items() if not k.startswith("MOVIESD_")})
    c.check(r.returncode == 0, f"{name}: installed daemon reads the installed config",
            f"exit {r.returncode}: {r.stdout[-500:]}{r.stderr}")


def main():
    for tool in ("cmake", "systemd-analyze"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is missing")
            return dt.MISSING
    c = dt.Checks("install")
    with tempfile.TemporaryDirectory(prefix="moviesd-install.") as tmp:
        build = os.path.join(tmp, "build")
        r = run(["cmake", "-S", dt.REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                 "-DBUILD_TESTING=OFF"])
        if not c.check(r.returncode == 0, "configure (default prefix)", r.stderr[-2000:]):
            return c.finish()
        r = run(["cmake", "--build", build, "--target", "moviesd", "-j", str(os.cpu_count() or 2)])
        if not c.check(r.returncode == 0, "build the daemon", (r.stdout + r.stderr)[-2000:]):
            return c.finish()
        manifest = os.path.join(build, "install_manifest.txt")

        prefix = os.path.join(tmp, "opt", "moviesd")
        r = run(["cmake", "--install", build, "--prefix", prefix])
        if c.check(r.returncode == 0, "cmake --install --prefix P", r.stderr[-2000:]):
            check_layout(c, "prefix", prefix, prefix, prefix + "/etc/moviesd", manifest, tmp)

        dest = os.path.join(tmp, "destdir-local")
        r = run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest))
        if c.check(r.returncode == 0, "DESTDIR=D cmake --install (prefix /usr/local)", r.stderr[-2000:]):
            check_layout(c, "destdir", dest, "/usr/local", "/usr/local/etc/moviesd", manifest, tmp)

        r = run(["cmake", "-S", dt.REPO, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr"])
        if not c.check(r.returncode == 0, "configure with prefix /usr", r.stderr[-2000:]):
            return c.finish()
        dest = os.path.join(tmp, "destdir-usr")
        r = run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest))
        if c.check(r.returncode == 0, "DESTDIR=D cmake --install (prefix /usr)", r.stderr[-2000:]):
            check_layout(c, "usr", dest, "/usr", "/etc/moviesd", manifest, tmp)

        # A tree configured for /usr and installed elsewhere still keeps to --prefix.
        prefix = os.path.join(tmp, "elsewhere")
        r = run(["cmake", "--install", build, "--prefix", prefix])
        if c.check(r.returncode == 0, "configured for /usr, cmake --install --prefix P", r.stderr[-2000:]):
            check_layout(c, "usr-then-prefix", prefix, prefix, prefix + "/etc/moviesd", manifest, tmp)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
