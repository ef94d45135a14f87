"""Headless Chromium driven over the DevTools protocol on a pipe (not a test script).

    with Chromium(width=390, height=844) as browser:   # skips nothing: raises when it cannot start
        page = browser.new_page()                      # a tab, attached (flat session)
        page.call("Page.navigate", url="http://...")
        page.wait_event("Page.loadEventFired", timeout=10)
        page.evaluate("document.title")
        page.events                                    # every event of the tab, in order

Chromium is started with --remote-debugging-pipe: it reads commands from its fd 3 and writes
answers and events to its fd 4, each a JSON message ended by a NUL byte. No port is opened.
Its own time is bounded by each call's timeout, and it is stopped by PID. As root Chromium
refuses to run sandboxed, so --no-sandbox is passed then (the pages it loads are the test's
own). Flags keep it off the network: no component updates, no background requests.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

FLAGS = ["--headless=new", "--remote-debugging-pipe", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-domain-reliability", "--no-pings", "--mute-audio",
         "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
         "--hide-scrollbars"]


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(Exception):
    pass


class Page:
    def __init__(self, browser, session):
        self.browser = browser
        self.session = session
        self.events = []

    def call(self, method, timeout=30.0, **params):
        return self.browser.call(method, timeout=timeout, session=self.session, **params)

    def evaluate(self, expression, timeout=30.0):
        r = self.call("Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise CdpError("evaluate %r: %r" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_event(self, method, timeout):
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            with self.browser.cond:
                for e in self.events[seen:]:
                    if e["method"] == method:
                        return e
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CdpError("no %s within %.1f s" % (method, timeout))
                self.browser.cond.wait(left)


class Chromium:
    def __init__(self, width=390, height=844):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="moviesd-chromium-")
        self.cond = threading.Condition()
        self.replies = {}
        self.pages = {}
        self.next_id = 0
        self.proc = None

    def __enter__(self):
        path = chromium_path()
        if path is None:
            raise CdpError("no chromium")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        args = FLAGS + ["--user-data-dir=" + self.profile,
                        "--window-size=%d,%d" % (self.width, self.height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        args.append("about:blank")
        # The pipes come in as stdin and stdout, and the shell moves them to fds 3 (what
        # Chromium reads) and 4 (what it writes) before it becomes Chromium.
        wrapper = 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null'
        self.proc = subprocess.Popen(["sh", "-c", wrapper, path] + args, stdin=to_child_r,
                                     stdout=from_child_w, stderr=subprocess.PIPE,
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self.out = os.fdopen(to_child_w, "wb", buffering=0)
        self.inp = os.fdopen(from_child_r, "rb", buffering=0)
        self.stderr_lines = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip())

    def _read(self):
        buf = b""
        while True:
            chunk = self.inp.read(65536)
            if not chunk:
                with self.cond:
                    self.replies["closed"] = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    elif msg.get("sessionId") in self.pages:
                        self.pages[msg["sessionId"]].events.append(msg)
                    self.cond.notify_all()

    # 30 s: a cold Chromium on two busy cores (the TSan suite beside it) once took over
    # 10 s to open its first tab.
    def call(self, method, timeout=30.0, session=None, **params):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.replies.get("closed"):
                    raise CdpError("%s: no answer within %.1f s (chromium: %s)"
                                   % (method, timeout, " | ".join(self.stderr_lines[-5:])))
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise CdpError("%s: %r" % (method, reply["error"]))
        return reply.get("result", {})

    def new_page(self):
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        with self.cond:
            self.pages[session] = page
        for domain in ("Page", "Runtime", "Log"):
            page.call(domain + ".enable")
        page.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=True)
        return page

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        for f in (getattr(self, "out", None), getattr(self, "inp", None)):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        shutil.rmtree(self.profile, ignore_errors=True)
