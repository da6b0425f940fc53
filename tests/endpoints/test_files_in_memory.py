"""Upload and download through a whole server's App over the memory transport: F9 for
content that claims to be active, and H4 on the upload route (its own 413 message)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

import anyio
import pytest

from astrlite.endpoints.files import MULTIPART_ENVELOPE_ALLOWANCE as ENVELOPE_ALLOWANCE
from astrlite.options import Options
from astrlite.runtime import start
from tests.support.memory import Harness, MemoryClient, serve_app_in_memory

pytestmark = pytest.mark.anyio

KEY = "abk_memory_test_key_0123456789abcdefghijklmnopq"
BOUNDARY = "memoryBoundary"
LIMIT = 4096


@pytest.fixture
async def server() -> AsyncIterator[Harness]:
    with tempfile.TemporaryDirectory(prefix="astrlite-memory-") as data_dir:
        options = Options(port=0, data_dir=data_dir, max_upload_bytes=LIMIT)
        with start(options, {"ASTRLITE_API_KEY": KEY}) as runtime, anyio.fail_after(10):
            async with serve_app_in_memory(runtime.server.app) as harness:
                yield harness


def form(content: bytes, filename: str, content_type: str) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def upload(client: MemoryClient, content: bytes, filename: str, declared: str) -> str:
    client.request(
        "POST",
        "/api/v1/file",
        headers=[
            ("x-api-key", KEY),
            ("content-type", f"multipart/form-data; boundary={BOUNDARY}"),
        ],
        body=form(content, filename, declared),
    )
    reply = await client.response()
    assert reply.json()["status"] == "ok", reply.body
    attachment_id: str = reply.json()["data"]["attachment_id"]
    return attachment_id


SCRIPT = b"fetch('/api/v1/chat/sessions?username=admin')\n"


@pytest.mark.parametrize(
    ("filename", "declared"),
    [
        ("notes.txt", "text/javascript"),
        ("notes.txt", "application/javascript; charset=utf-8"),
        ("run.js", "text/plain"),
        ("page.html", "text/plain"),
        ("image.svg", "application/octet-stream"),
    ],
)
async def test_content_that_claims_to_be_active_is_served_as_bytes(
    server: Harness, filename: str, declared: str
) -> None:
    """F9: it reads as plain text, yet what it was declared or named decides."""
    client = server.connect()
    attachment_id = await upload(client, SCRIPT, filename, declared)
    client.request(
        "GET", f"/api/v1/file?attachment_id={attachment_id}", headers=[("x-api-key", KEY)]
    )
    reply = await client.response()
    assert reply.body == SCRIPT
    assert reply.header(b"content-type") == b"application/octet-stream"
    assert (reply.header(b"content-disposition") or b"").startswith(b"attachment;")
    assert reply.header(b"x-content-type-options") == b"nosniff"


async def test_plain_text_stays_text(server: Harness) -> None:
    client = server.connect()
    attachment_id = await upload(client, b"just words\n", "notes.txt", "text/plain")
    client.request(
        "GET", f"/api/v1/file?attachment_id={attachment_id}", headers=[("x-api-key", KEY)]
    )
    reply = await client.response()
    assert reply.header(b"content-type") == b"text/plain; charset=utf-8"


async def test_a_chunked_upload_declared_over_the_limit_is_413_with_the_file_message(
    server: Harness,
) -> None:
    client = server.connect()
    client.send_raw(
        b"POST /api/v1/file HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % (LIMIT + ENVELOPE_ALLOWANCE + 1),
        method=b"POST",
    )
    reply = await client.response()
    assert (reply.status, reply.json()["message"]) == (413, f"File too large (limit {LIMIT} bytes)")
    await client.closed_by_server()
