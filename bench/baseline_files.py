"""The files floor (issue 17): a bare ASGI app under uvicorn --http h11.

POST /file writes the raw request body to BENCH_FILES_PATH as it arrives (one
``file.write`` per ``http.request.body`` message: uvicorn's h11 protocol hands over
what each socket read returned). GET /file streams that file back with Content-Length,
as a plain ASGI app does: blocking 1 MiB reads on the loop (page-cache speed, no
thread hop), each sent as one ``http.response.body`` message with ``more_body=True``.
Measured here, 64 KiB (Starlette's), 256 KiB and 1 MiB chunks give this floor the same
speed within the noise, 16 KiB half of it; 1 MiB is also the chunk astrlite read before
it used sendfile. Any other path answers a small 200 (the readiness probe).
"""

from __future__ import annotations

import os
from typing import Any

from bench.baseline_sse import Receive, Send

PATH = os.environ.get("BENCH_FILES_PATH", "baseline-files.bin")
CHUNK = 1024 * 1024
OK = b"ok\n"


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/file" and scope["method"] == "POST":
        size = 0
        with open(PATH, "wb") as file:
            while True:
                message = await receive()
                body = message.get("body", b"")
                file.write(body)
                size += len(body)
                if not message.get("more_body", False):
                    break
        await _small(send, b"%d\n" % size)
    elif scope["path"] == "/file" and scope["method"] == "GET":
        size = os.path.getsize(PATH)
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(size).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(PATH, "rb") as file:
            while chunk := file.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _small(send, OK)


async def _small(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
