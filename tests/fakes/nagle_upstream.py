"""A streaming upstream on the standard library's http.server, as small real servers are:
HTTP/1.1 keep-alive, an unbuffered socket (`wbufsize = 0`) and no TCP_NODELAY, so the
kernel holds each small write until the previous one is acknowledged (Nagle).

    with nagle_upstream(chunks=[b"data: 1\\n\\n", ...]) as upstream:
        ...  # POST anything to upstream.url; upstream.connections counts accepts
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class NagleUpstream:
    url: str
    accepted: list[object] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return len(self.accepted)


@contextmanager
def nagle_upstream(chunks: list[bytes]) -> Iterator[NagleUpstream]:
    """Every POST gets a chunked text/event-stream reply: the head, then one write per
    chunk, then the last chunk; all on a socket left with Nagle's algorithm on."""
    upstream = NagleUpstream("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 0

        def setup(self) -> None:
            upstream.accepted.append(self.client_address)
            super().setup()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for data in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
