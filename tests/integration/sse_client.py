"""A small Server-Sent Events client for the tests of GET /movies/events (not a test script).

    stream = SseStream(port, "/movies/events?city=beijing")
    stream.status, stream.headers          # of the response
    for item in stream.items(timeout=10):  # ("event", name, data), ("comment", text),
        ...                                # ("retry", ms), each with its arrival time
    stream.closed                          # True once the server ended the stream
    stream.close()
"""

import http.client
import socket
import time


class SseStream:
    def __init__(self, port, path, timeout=10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.connect()
        # The response takes the socket over when the server says Connection: close.
        self.sock = self.conn.sock
        self.started = time.monotonic()
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.closed = False

    def body(self):
        """The whole body, for a response that is not a stream."""
        return self.resp.read()

    def items(self, timeout):
        """Yields what the stream sends, as (kind, ..., seconds since the request), until
        the server ends it or timeout seconds pass (then it returns, closed False)."""
        deadline = time.monotonic() + timeout
        name, data = None, []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                raw = self.resp.readline()
            except (socket.timeout, TimeoutError):
                return
            except http.client.IncompleteRead:
                raw = b""
            at = time.monotonic() - self.started
            if raw == b"":
                self.closed = True
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if name is not None or data:
                    yield ("event", name or "message", "\n".join(data), at)
                name, data = None, []
            elif line.startswith(":"):
                yield ("comment", line[1:].strip(), at)
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                elif field == "retry":
                    yield ("retry", int(value), at)

    def close(self):
        self.resp.close()
        self.conn.close()
        self.sock.close()
