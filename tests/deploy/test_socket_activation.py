#!/usr/bin/env python3
"""Socket activation as moviesd.socket does it: systemd-socket-activate listens on a free
loopback port and hands the socket over as fd 3 with LISTEN_PID/LISTEN_FDS; the daemon serves
/healthz and /movies on it, never binds the address of its own --listen setting, and leaves on
SIGTERM with status 0.
"""
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402


def main():
    if shutil.which("systemd-socket-activate") is None:
        print(f"FAIL: systemd-socket-activate is missing")
        return dt.MISSING
    moviesd = dt.moviesd_bin()
    c = dt.Checks("socket_activation")
    upstream, upstream_url = dt.start_fake_upstream()
    daemon = None
    try:
        port, own = dt.free_port(), dt.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIESD_")}
        env.pop("NOTIFY_SOCKET", None)
        # The --listen address is a decoy: with a socket handed over it must stay unbound.
        # Politeness off: at the default 2 s between requests the fake's 40 movies would
        # outlast request_deadline, and the pacing is not what this test is about.
        daemon = dt.Process(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", moviesd,
                             "--upstream", upstream_url, "--listen", f"127.0.0.1:{own}",
                             "--min-request-interval-ms", "0", "--max-requests-per-minute", "0"],
                            env=env)
        # systemd-socket-activate execs the daemon on the first connection; the probe is it.
        base = f"http://127.0.0.1:{port}"
        c.check(dt.wait_http(base + "/healthz", 20), "/healthz answers 200 on the handed socket",
                daemon.stderr.text())
        status, body = dt.http_get(base + "/healthz")
        c.check(status == 200 and b'"ok"' in body, "/healthz says ok", f"{status} {body[:200]!r}")
        status, body = dt.http_get(base + "/movies?city=beijing", timeout=30)
        movies = dt.movies_in(body)
        c.check(status == 200 and movies, "/movies?city=beijing lists movies",
                f"{status} {body[:300]!r}")
        c.check(dt.port_refuses(own), f"its own --listen address 127.0.0.1:{own} is not bound")
        line = daemon.stderr.wait_for("listening on", 5)
        c.check(line is not None and f":{port}" in line and f":{own}" not in line,
                "the 'listening on' line names the handed socket, not --listen", str(line))
        c.check(line is not None and "socket activation" in line,
                "the 'listening on' line says socket activation", str(line))
        time.sleep(0.2)
        code = daemon.terminate(15)
        c.check(code == 0, "SIGTERM -> exit status 0", f"status {code}")
    finally:
        if daemon is not None:
            daemon.kill()
            print("--- daemon stderr ---\n" + daemon.stderr.text()[-3000:])
        upstream.kill()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
