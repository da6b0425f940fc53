"""A fake OpenAI-compatible upstream on the standard library's ``http.server``, run as its
own process: `python -m bench.fake_openai_stdlib PORT TOKENS GAP_MS`.

Small real upstreams are built like this: HTTP/1.1 keep-alive, an unbuffered socket
(``wbufsize = 0``), the response head and every chunk its own ``send`` and no
``TCP_NODELAY``, so Nagle's algorithm holds each small write until the previous one is
acknowledged. The replies are those of bench/fake_openai.py (same bytes, same pacing).
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.fake_openai import LAST_CHUNK, reply_chunks


def serve(port: int, tokens: int, gap: float) -> None:
    chunks, ending = reply_chunks(tokens)
    accepted = 0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 0  # every write is a send(), as in the real servers

        def setup(self) -> None:
            nonlocal accepted
            accepted += 1
            super().setup()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = str(accepted).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self.path.endswith("/chat/completions"):
                self.do_GET()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in chunks:
                if gap:
                    time.sleep(gap)
                self.wfile.write(piece)
            body, last = ending[: -len(LAST_CHUNK)], LAST_CHUNK
            self.wfile.write(body)
            self.wfile.write(last)

    ThreadingHTTPServer.daemon_threads = True
    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000)
