"""Large transfers over real sockets (issue 17 goal 6): multi-MiB uploads whose body is
full of near-delimiters, whichever way the reads cut it, and downloads sent with
sendfile: byte-identical whole and ranged (httpx and curl), a client that hangs up
half-way, and one that stops reading (the write deadline)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server

MIB = 1024 * 1024
SIZE = 12 * MIB  # more than loopback's socket buffers hold
BOUNDARY = "transferBoundary0123"
AUTH = {"X-API-Key": TEST_KEY}
WRITE_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    with running_server(max_upload_bytes=4 * SIZE, write_timeout=WRITE_TIMEOUT) as running:
        yield running


@pytest.fixture(scope="module")
def big(srv: Running) -> tuple[bytes, str]:
    """A SIZE-byte random file, uploaded once: (content, attachment_id)."""
    content = os.urandom(SIZE)
    response = httpx.post(
        srv.url + "/api/v1/file",
        files={"file": ("big.bin", content, "application/octet-stream")},
        headers=AUTH,
        timeout=30,
    )
    data: dict[str, Any] = response.json()["data"]
    assert data["size"] == SIZE
    return content, data["attachment_id"]


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def url_of(srv: Running, attachment_id: str) -> str:
    return f"{srv.url}/api/v1/file?attachment_id={attachment_id}"


def request_head(attachment_id: str) -> bytes:
    return (
        f"GET /api/v1/file?attachment_id={attachment_id} HTTP/1.1\r\nHost: x\r\n"
        f"X-API-Key: {TEST_KEY}\r\n\r\n"
    ).encode()


def small_buffer_connection(srv: Running) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(5)
    sock.connect((srv.host, srv.port))
    return sock


# -- uploads ---------------------------------------------------------------------------


def test_a_multi_mib_upload_full_of_near_delimiters_arrives_intact(srv: Running) -> None:
    # Every 4093 bytes (prime: it falls at every offset of every read size) a delimiter
    # short of its last character, then one followed by neither CRLF nor "--": data all.
    near = b"\r\n--" + BOUNDARY[:-1].encode()
    almost = b"\r\n--" + BOUNDARY.encode() + b"x"
    pieces = []
    for index in range(SIZE // 4093):
        pieces.append(os.urandom(4093 - len(near)))
        pieces.append(near if index % 2 else almost)
    content = b"".join(pieces)
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="n.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:  # odd-sized sends, so reads fall anywhere
        for start in range(0, len(body), 777_777):
            yield body[start : start + 777_777]

    response = httpx.post(
        srv.url + "/api/v1/file",
        content=chunks(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=30,
    )
    data = response.json()["data"]
    assert data["size"] == len(content)
    download = httpx.get(url_of(srv, data["attachment_id"]), headers=AUTH, timeout=30)
    assert download.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert download.content == content


# -- downloads (sendfile) --------------------------------------------------------------


def test_a_download_is_byte_identical_whole_and_ranged(
    srv: Running, big: tuple[bytes, str]
) -> None:
    content, attachment_id = big
    with httpx.Client(headers=AUTH, timeout=30) as client:  # one keep-alive connection
        whole = client.get(url_of(srv, attachment_id))
        assert whole.content == content
        for first, last in ((0, 0), (1, MIB), (SIZE - 5000, SIZE - 1), (3 * MIB + 7, 9 * MIB)):
            ranged = client.get(
                url_of(srv, attachment_id), headers={"Range": f"bytes={first}-{last}"}
            )
            assert ranged.status_code == 206
            assert ranged.content == content[first : last + 1]
        head = client.head(url_of(srv, attachment_id))
        assert (head.content, head.headers["content-length"]) == (b"", str(SIZE))
        assert client.get(url_of(srv, attachment_id)).content == content


def test_curl_downloads_the_same_bytes(
    srv: Running, big: tuple[bytes, str], tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    content, attachment_id = big
    target = tmp_path / "out.bin"
    command = ["curl", "-sS", "-H", f"X-API-Key: {TEST_KEY}", "-o", str(target)]
    subprocess.run([*command, url_of(srv, attachment_id)], check=True, timeout=30)
    assert target.read_bytes() == content
    subprocess.run(
        [*command, "-r", "100-2000000", url_of(srv, attachment_id)], check=True, timeout=30
    )
    assert target.read_bytes() == content[100:2000001]


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_gone_mid_download_costs_no_traceback(
    srv: Running, big: tuple[bytes, str], how: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, attachment_id = big
    lifecycle = srv.server.lifecycle
    eventually(lambda: lifecycle.active == 0)
    with caplog.at_level(logging.DEBUG, logger="astrlite"):
        sock = small_buffer_connection(srv)
        sock.sendall(request_head(attachment_id))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        eventually(lambda: lifecycle.busy == 1)  # mid-response: the file outgrows buffers
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        eventually(lambda: lifecycle.active == 0)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert httpx.get(srv.url + "/api/v1/file", headers=AUTH).status_code == 200  # serving on


def test_a_client_that_stops_reading_is_dropped_at_the_write_deadline(
    srv: Running, big: tuple[bytes, str]
) -> None:
    _, attachment_id = big
    lifecycle = srv.server.lifecycle
    eventually(lambda: lifecycle.active == 0)
    with small_buffer_connection(srv) as sock:
        sock.sendall(request_head(attachment_id))
        eventually(lambda: lifecycle.busy == 1)
        eventually(lambda: lifecycle.active == 0)  # the server gave up on us
        received = 0
        while chunk := sock.recv(MIB):
            received += len(chunk)
        assert 0 < received < SIZE  # what was sent before the deadline, then the close
